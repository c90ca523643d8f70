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
