//! Our own captures from real TLS stacks (`pcaps/`, made by `pcaps/make_pcaps.sh`): every
//! connection's record must say what the tools that made it said (`pcaps/expected.json`).

mod common;

use serde_json::Value;
use tlscensus::record::{Outcome, Record};

fn expected(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(common::pcaps_dir().join(name)).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(records: &'a [Record], want: &Value) -> Option<&'a Record> {
    records.iter().find(|r| {
        r.client.ip.to_string() == want["client_ip"]
            && u64::from(r.client.port) == want["client_port"]
            && r.server.ip.to_string() == want["server_ip"]
            && u64::from(r.server.port) == want["server_port"]
    })
}

fn hex(v: u32) -> String {
    format!("{v:#06x}")
}

#[test]
fn every_connection_matches_what_the_tools_said() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for want in expected("expected.json") {
        let file = want["file"].as_str().unwrap();
        let run = common::run_file(&common::pcaps_dir().join(file));
        assert!(run.errors.is_empty(), "{file}: {:?}", run.errors);
        let scenario = want["scenario"].as_str().unwrap();
        let Some(record) = find(&run.records, &want) else {
            problems.push(format!("{scenario}: no record"));
            continue;
        };
        let mut check = |what: &str, ours: Value, theirs: &Value| {
            if &ours != theirs {
                problems.push(format!(
                    "{scenario}: {what}: expected {theirs}, ours {ours}"
                ));
            }
        };
        let ch = record.client_hello.as_ref().expect("ClientHello");
        check("sni", ch.sni.clone().into(), &want["sni"]);
        check("alpn", ch.alpn.clone().into(), &want["alpn_offered"]);
        check(
            "max_offered",
            ch.max_version.name().into(),
            &want["max_offered"],
        );
        let sh = record.server_hello.as_ref();
        let negotiated = sh
            .filter(|_| want["negotiated_version"].is_string())
            .map(|s| s.version.name());
        // A handshake that failed after the ServerHello still names what was selected.
        let selected = sh.map(|s| s.version.name());
        check(
            "negotiated_version",
            negotiated
                .or(selected.filter(|_| record.outcome != Outcome::Alert))
                .into(),
            &want["negotiated_version"],
        );
        let cipher = sh.map(|s| hex(s.cipher_suite));
        if want["cipher_suite"].is_string() {
            check("cipher_suite", cipher.into(), &want["cipher_suite"]);
        }
        check(
            "outcome",
            serde_json::to_value(record.outcome).unwrap(),
            &want["outcome"],
        );
        if let Some(alert) = want["alert"].as_object() {
            let found = record.alerts.iter().any(|a| {
                serde_json::to_value(a.from).unwrap() == alert["from"]
                    && u64::from(a.description) == alert["description"]
            });
            check("alert", found.into(), &true.into());
        }
        if want["hello_retry_request"] == true {
            check("hrr", sh.map(|s| s.hrr).into(), &true.into());
            check("client_hellos", record.client_hellos.into(), &2.into());
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} connections checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn non_tls_traffic_yields_no_record() {
    // An HTTP request to a TLS port and a connection that sends nothing (pcaps/README.md).
    let run = common::run_file(&common::pcaps_dir().join("not_tls.pcap"));
    assert!(run.errors.is_empty());
    assert!(run.stats.tcp_segments > 0, "the capture has TCP traffic");
    assert!(run.records.is_empty(), "{:?}", run.records);
}

#[test]
fn split_client_hello_is_reassembled_from_several_segments() {
    let run = common::run_file(&common::pcaps_dir().join("split_hello.pcap"));
    let record = &run.records[0];
    assert!(record.client_hello.is_some());
    // The relay wrote the hello in small chunks: several segments carried it.
    assert!(run.stats.tcp_segments > 10);
}
