//! The reader's fixed-offset fast path (`decode::tcp_endpoints`) names the same connection
//! as the full decoder for every TCP frame of every corpus capture and of our own, so each
//! connection's frames go to one worker.

mod common;

use tlscensus::decode;
use tlscensus::source::CaptureReader;

#[test]
fn fast_path_agrees_with_the_decoder_everywhere() {
    let corpus = common::corpus_dir();
    let mut files: Vec<_> = common::manifest()
        .into_iter()
        .map(|(p, _)| corpus.join(p))
        .collect();
    files.extend(
        std::fs::read_dir(common::pcaps_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng")),
    );
    let mut compared = 0u64;
    for path in files {
        let Ok(mut reader) = CaptureReader::open(&path) else {
            continue;
        };
        while let Ok(Some(p)) = reader.next_packet() {
            if let Ok(seg) = decode::decode(p.link_type, p.data) {
                let want = ((seg.src, seg.sport), (seg.dst, seg.dport));
                assert_eq!(
                    decode::tcp_endpoints(p.link_type, p.data),
                    Some(want),
                    "{} frame {}",
                    path.display(),
                    p.frame_number
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 50_000, "{compared} frames compared");
}
