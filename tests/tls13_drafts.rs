//! TLS 1.3 draft-era ServerHellos (issue 22, point 3): every draft version tshark names
//! (0x7f0e-0x7f1c, drafts 14 to 28, and Facebook's 0xfb17 and 0xfb1a), with the layout each
//! draft's text gives (`pcaps/make_tls13_drafts.py`). The expectation is tshark's dissection
//! of the same capture (`pcaps/tls13_drafts.tshark.tsv`, written by that script): the version
//! it shows as selected (supported_versions where the ServerHello has it, else the version
//! field) and the cipher suite.

mod common;

use std::collections::BTreeMap;

fn hex(text: &str) -> u16 {
    u16::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn every_draft_server_hello_tshark_names_gives_its_version_and_cipher() {
    let pcaps = common::pcaps_dir();
    let truth = std::fs::read_to_string(pcaps.join("tls13_drafts.tshark.tsv")).unwrap();
    // client port -> (selected version, cipher suite), as tshark dissected them.
    let mut want = BTreeMap::new();
    for line in truth.lines().skip(1).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let selected = if f[3].is_empty() { f[2] } else { f[3] };
        let name = tlscensus::record::Version(hex(selected))
            .name()
            .into_owned();
        want.insert(f[1].parse::<u64>().unwrap(), (name, hex(f[4])));
    }
    assert_eq!(
        want.len(),
        17,
        "tshark dissected {} ServerHellos",
        want.len()
    );
    let drafts: Vec<&str> = want.values().map(|(v, _)| v.as_str()).collect();
    for code in (0x7f0e..=0x7f1c).chain([0xfb17, 0xfb1a]) {
        let name = format!("{code:#06x}");
        assert!(
            drafts.contains(&name.as_str()),
            "tshark has no ServerHello for {name}"
        );
    }

    let run = common::run_file(&pcaps.join("tls13_drafts.pcap"));
    assert!(run.errors.is_empty(), "{:?}", run.errors);
    let mut got = BTreeMap::new();
    for record in &run.records {
        let r = serde_json::to_value(record).unwrap();
        let sh = &r["server_hello"];
        assert!(!sh.is_null(), "no ServerHello read: {r}");
        got.insert(
            r["client"]["port"].as_u64().unwrap(),
            (
                sh["version"].as_str().unwrap().to_string(),
                sh["cipher_suite"].as_u64().unwrap() as u16,
            ),
        );
    }
    assert_eq!(got, want);
}
