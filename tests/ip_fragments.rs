//! TLS handshakes carried in IP fragments (IPv4 and IPv6) are read as tshark reads them.
//!
//! The captures are real OpenSSL handshakes: two cut into 96-byte IP fragments, out of
//! order and with duplicated first fragments, and one whose VXLAN tunnel the kernel
//! fragmented over a 256-byte MTU link (`pcaps/make_fragments.sh`); the expected values
//! (`pcaps/expected_fragments.json`) are tshark's dissection of the fragmented files:
//! its hellos after its own reassembly, the frames it shows as fragments, and the
//! datagrams it reassembled.

mod common;

use serde_json::Value;
use tlscensus::pipeline::Reading;

#[test]
fn fragmented_hellos_match_tshark_whatever_the_threads_and_reading() {
    let expected = common::expected_script("expected_fragments.json");
    assert_eq!(
        expected.len(),
        3,
        "IPv4, IPv6 and a fragmented VXLAN tunnel"
    );
    for want in &expected {
        let file = want["file"].as_str().unwrap();
        let path = common::pcaps_dir().join(file);
        let mut outputs = Vec::new();
        for (threads, reading) in [
            (1, Reading::OneReader),
            (2, Reading::OneReader),
            (2, Reading::Map),
            (3, Reading::Split),
        ] {
            let run = common::run_reading(
                std::slice::from_ref(&path),
                Default::default(),
                threads,
                reading,
            );
            assert!(run.errors.is_empty(), "{file}: {:?}", run.errors);
            assert_eq!(run.records.len(), 1, "{file}: one connection");
            let record = &run.records[0];
            let context = format!("{file}, {threads} threads, {reading:?}");
            assert_eq!(record.client.ip.to_string(), want["client_ip"], "{context}");
            assert_eq!(u64::from(record.client.port), want["client_port"]);
            assert_eq!(record.server.ip.to_string(), want["server_ip"]);
            assert_eq!(u64::from(record.server.port), want["server_port"]);
            let ch = record.client_hello.as_ref().expect("ClientHello");
            assert_eq!(ch.sni.as_deref(), want["sni"].as_str(), "{context}");
            assert_eq!(
                ch.cipher_suites.len() as u64,
                want["cipher_suites_offered"].as_u64().unwrap()
            );
            let sh = record.server_hello.as_ref().expect("ServerHello");
            assert_eq!(
                Value::from(format!("{:#06x}", sh.cipher_suite)),
                want["cipher_suite"],
                "{context}"
            );
            assert_eq!(Value::from(sh.version.name()), want["negotiated_version"]);
            let f = &run.stats.fragments;
            assert_eq!(
                f.fragments,
                want["fragment_frames"].as_u64().unwrap(),
                "{context}"
            );
            assert_eq!(
                f.reassembled,
                want["reassembled_datagrams"].as_u64().unwrap(),
                "{context}"
            );
            // Every frame counted once, fragments or not.
            let tcp_or_skipped = run.stats.tcp_segments + run.stats.skipped.iter().sum::<u64>();
            assert_eq!(run.stats.frames, tcp_or_skipped, "{context}");
            outputs.push(format!("{:?}", run.records));
        }
        assert!(
            outputs.windows(2).all(|w| w[0] == w[1]),
            "{file}: output differs"
        );
    }
}
