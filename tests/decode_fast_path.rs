//! The fixed-offset fast path of `decode::decode` gives exactly what the general decoder
//! gives (segment or skip reason) for every frame of every corpus capture and of our own.

mod common;

use tlscensus::decode;
use tlscensus::source::CaptureReader;

#[test]
fn fast_path_agrees_with_the_decoder_everywhere() {
    let files = common::all_captures();
    let mut compared = 0u64;
    for path in files {
        let Ok(mut reader) = CaptureReader::open(&path) else {
            continue;
        };
        while let Ok(Some(p)) = reader.next_packet() {
            assert_eq!(
                decode::decode(p.link_type, p.data),
                decode::decode_general(p.link_type, p.data),
                "{} frame {}",
                path.display(),
                p.frame_number
            );
            compared += 1;
        }
    }
    assert!(compared > 50_000, "{compared} frames compared");
}
