//! Damaged captures: truncated and byte-flipped copies of real files give a clean error or a
//! partial result, never a panic, and never a hello that the undamaged file does not have.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;

use tlscensus::engine::Config;
use tlscensus::record::Record;

/// A spread of link types and formats from the corpus, plus our own captures.
fn samples() -> Vec<PathBuf> {
    let corpus = common::corpus_dir();
    let mut files: Vec<PathBuf> = [
        "arkime/tests/pcap/openssl-tls1_2.pcap",
        "arkime/tests/pcap/tls-split-client-hello.pcap",
        "arkime/tests/pcap/smtp-starttls.pcap",
        "nDPI/tests/cfgs/default/pcap/tls_port_80.pcapng",
        "nDPI/tests/cfgs/default/pcap/6in4tunnel.pcap",
        "mercury/unit_tests/pcaps/tls_sgt.pcap",
        "wirerust/tests/fixtures/tls13-rfc8446.pcap",
        "nDPI/tests/cfgs/default/pcap/tls_heur__vmess-tcp.pcapng",
        "prot-od-netcaps/[MS-CCROD]-captureALL/MS-CCROD_Example2Peer1Version1_Win2016_X64_Win10_X64_Domain_CePark.cap",
    ]
    .iter()
    .map(|p| corpus.join(p))
    .filter(|p| p.is_file())
    .collect();
    for name in [
        "tls12.pcap",
        "split_hello.pcap",
        "multi_version.pcapng",
        "ipv6.pcap",
    ] {
        files.push(common::pcaps_dir().join(name));
    }
    assert!(files.len() >= 8, "sample captures missing: {files:?}");
    files
}

/// What identifies a ClientHello across runs.
fn hellos(records: &[Record]) -> HashSet<String> {
    records
        .iter()
        .filter_map(|r| {
            let ch = r.client_hello.as_ref()?;
            Some(format!(
                "{}:{} {:?} {} {}",
                r.client.ip,
                r.client.port,
                ch.sni,
                ch.max_version.name(),
                ch.ja3
            ))
        })
        .collect()
}

fn run_bytes(bytes: &[u8], name: &str) -> common::Run {
    let dir = std::env::temp_dir().join(format!("tlscensus-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let run = common::run_files(std::slice::from_ref(&path), Config::default());
    std::fs::remove_file(&path).ok();
    run
}

#[test]
fn truncated_files_keep_what_was_read_and_say_where_they_end() {
    for path in samples() {
        let bytes = std::fs::read(&path).unwrap();
        let full = common::run_file(&path);
        assert!(
            full.errors.is_empty(),
            "{}: {:?}",
            path.display(),
            full.errors
        );
        let all = hellos(&full.records);
        for cut in [1, 20, bytes.len() / 3, bytes.len() / 2 + 7, bytes.len() - 1] {
            let run = run_bytes(&bytes[..cut], "cut.pcap");
            assert_eq!(run.errors.len(), 1, "{} cut at {cut}", path.display());
            let err = &run.errors[0];
            assert!(err.offset <= cut as u64, "{err} beyond cut {cut}");
            assert!(
                err.to_string().contains("cut.pcap"),
                "error names the file: {err}"
            );
            let partial = hellos(&run.records);
            assert!(
                partial.is_subset(&all),
                "{} cut at {cut}: hellos not in the whole file: {:?}",
                path.display(),
                partial.difference(&all).collect::<Vec<_>>()
            );
        }
        // A cut near the end keeps nearly everything.
        let run = run_bytes(&bytes[..bytes.len() - 1], "cut.pcap");
        assert!(hellos(&run.records).len() + 1 >= all.len());
    }
}

#[test]
fn byte_flips_never_panic() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for path in samples() {
        let original = std::fs::read(&path).unwrap();
        for round in 0..40 {
            let mut bytes = original.clone();
            let flips = 1 + round % 8;
            for _ in 0..flips {
                // Past the file header, so the damage reaches records and packets.
                let at = 24 + rand(bytes.len() - 24);
                bytes[at] ^= 1 << rand(8);
            }
            let run = run_bytes(&bytes, "flipped.pcap");
            for record in &run.records {
                serde_json::to_string(record).expect("every record serialises");
            }
        }
    }
}

/// ETW logs: a real pktmon capture (compressed buffers from two processors) and two
/// constructed netsh ones (fragments to join; a circular log).
fn etl_samples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/etl");
    [
        "real/demikernel/PktMon.etl",
        "constructed/pktmon-tls11-compressed-2cpus.etl",
        "constructed/netsh-split-hello-fragments.etl",
        "constructed/netsh-tls12-circular-wrapped.etl",
    ]
    .iter()
    .map(|p| dir.join(p))
    .collect()
}

/// The frames the reader hands out for `bytes`, as (time, bytes), and its error.
fn etl_frames(bytes: &[u8]) -> (Vec<(i64, Vec<u8>)>, Option<tlscensus::source::SourceError>) {
    use tlscensus::source::CaptureReader;
    let input = Box::new(std::io::Cursor::new(bytes.to_vec()));
    let mut reader = match CaptureReader::from_reader("damaged.etl".into(), input) {
        Ok(reader) => reader,
        Err(err) => return (Vec::new(), Some(err)),
    };
    let mut frames = Vec::new();
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => frames.push((p.ts_nanos, p.data.to_vec())),
            Ok(None) => return (frames, None),
            Err(err) => return (frames, Some(err)),
        }
    }
}

#[test]
fn etl_every_truncation_keeps_what_was_read_and_says_where() {
    for path in etl_samples() {
        let bytes = std::fs::read(&path).unwrap();
        let (full, err) = etl_frames(&bytes);
        assert!(
            err.is_none() && !full.is_empty(),
            "{}: {err:?}",
            path.display()
        );
        let all: HashSet<&(i64, Vec<u8>)> = full.iter().collect();
        // A circular log's header cannot say how many buffers the file holds: one cut at a
        // buffer boundary reads as a whole (shorter) log. (LogFileMode at 0x88, the first
        // buffer's size at 0: these fixtures' buffers are all that size.)
        let circular = bytes[0x88] & 0x02 != 0;
        let buffer = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        for cut in 0..bytes.len() {
            let (frames, err) = etl_frames(&bytes[..cut]);
            let Some(err) = err else {
                assert!(
                    circular && cut % buffer == 0,
                    "{} cut at {cut}: no error",
                    path.display()
                );
                continue;
            };
            assert!(err.offset <= cut as u64, "{err} beyond the cut at {cut}");
            assert!(err.to_string().contains("damaged.etl"), "{err}");
            for frame in &frames {
                assert!(
                    all.contains(frame),
                    "{} cut at {cut}: a frame not in the whole file",
                    path.display()
                );
            }
        }
    }
    // The real capture's first processor's buffer survives a cut in the second's.
    let bytes = std::fs::read(&etl_samples()[0]).unwrap();
    let (frames, err) = etl_frames(&bytes[..bytes.len() - 1]);
    assert!(!frames.is_empty() && err.is_some());
}

#[test]
fn etl_byte_flips_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut rand = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    for path in etl_samples() {
        let original = std::fs::read(&path).unwrap();
        for round in 0..2000 {
            let mut bytes = original.clone();
            for _ in 0..1 + round % 8 {
                let at = rand(bytes.len());
                bytes[at] ^= 1 << rand(8);
            }
            let (frames, _) = etl_frames(&bytes);
            assert!(frames.iter().all(|(_, d)| d.len() <= bytes.len()));
        }
        // And the pipeline over a few of them.
        for round in 0..10 {
            let mut bytes = original.clone();
            for _ in 0..1 + round % 4 {
                let at = rand(bytes.len());
                bytes[at] ^= 1 << rand(8);
            }
            let run = run_bytes(&bytes, "flipped.etl");
            for record in &run.records {
                serde_json::to_string(record).expect("every record serialises");
            }
        }
    }
}
