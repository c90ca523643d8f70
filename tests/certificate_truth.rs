//! Every server Certificate message tshark decoded in the test corpus must appear in our
//! records, on the right connection, with tshark's x509 fields for the leaf.
//!
//! The expected values are tshark 4.0's dissection (`tests/corpus/truth/*.x509.jsonl`,
//! written by `tests/corpus/regenerate.sh` through `tools/tshark_x509_truth.py`); the
//! SHA-256 of each leaf is computed there by Python's hashlib from the bytes tshark shows.

mod common;

use std::collections::BTreeSet;

use serde_json::Value;

/// Captures where our record differs from tshark's dissection for a documented reason.
const ALLOWED: &[(&str, &str)] = &[
    (
        "arkime/tests/pcap/arkime_synthetic.pcap",
        "crafted leaf with an invalid validity date: x509-parser rejects it (InvalidDate), so \
         the record has its chain and a leaf_error instead of a leaf; tshark shows the fields",
    ),
    (
        "nDPI/tests/cfgs/default/pcap/riot.pcapng",
        "the capture starts inside a server flight: its first record holds a Certificate, no \
         hello, and tlscensus recognises TLS by a hello, so that connection has no record",
    ),
    (
        "nDPI/tests/cfgs/default/pcap/reddit.pcap",
        "the client sent FIN, then RST on the ServerHello: tlscensus reports a connection once \
         both sides closed, before the rest of the server's flight (already on the wire) \
         arrives, so the record says the certificate was not seen whole",
    ),
    (
        "nDPI/tests/cfgs/default/pcap/pinterest.pcap",
        "the client sent FIN, then RST on the ServerHello (as in reddit.pcap): the record says \
         the certificate was not seen whole",
    ),
];

fn truth_rows(local_path: &str) -> Vec<Value> {
    let path = common::corpus_dir()
        .join("truth")
        .join(format!("{local_path}.x509.jsonl"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// tshark shows the serial's DER bytes, with a leading zero byte when the top bit is set;
/// we write the number's bytes.
fn serial_number(hex: &str) -> String {
    let mut s = hex;
    while s.len() > 2 && s.starts_with("00") {
        s = &s[2..];
    }
    if s == "00" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Compare one file: (mismatches, server certificates compared, client certificates seen).
fn check_file(local_path: &str) -> (Vec<String>, usize, usize) {
    let truth = truth_rows(local_path);
    if truth.is_empty() {
        return (Vec::new(), 0, 0);
    }
    let by_tuple = common::corpus_records_by_endpoints(local_path);
    let (mut problems, mut compared, mut client_certs) = (Vec::new(), 0, 0);
    // Only a connection's first server Certificate is read (a renegotiation's is encrypted
    // or rare); tshark's later ones on the same stream are not compared.
    let mut streams_done = BTreeSet::new();
    for t in &truth {
        let src = (
            t["src"].as_str().unwrap().to_string(),
            t["sport"].as_u64().unwrap(),
        );
        let dst = (
            t["dst"].as_str().unwrap().to_string(),
            t["dport"].as_u64().unwrap(),
        );
        let label = format!(
            "{local_path} frame {} {}:{} -> {}:{}",
            t["frame"], src.0, src.1, dst.0, dst.1
        );
        if by_tuple.contains_key(&(src.clone(), dst.clone())) {
            // Sent by the client: a client certificate, which the census does not keep.
            client_certs += 1;
            continue;
        }
        if !streams_done.insert(t["tcp_stream"].as_u64().unwrap()) {
            continue;
        }
        compared += 1;
        let Some(candidates) = by_tuple.get(&(dst.clone(), src.clone())) else {
            problems.push(format!("{label}: no record for this connection"));
            continue;
        };
        let Some(leaf_truth) = t["leaf"].as_object() else {
            continue;
        };
        let sha256 = &leaf_truth["sha256"];
        let Some(record) = candidates
            .iter()
            .find(|r| &r["certificate"]["leaf"]["sha256"] == sha256)
        else {
            let ours: Vec<&Value> = candidates.iter().map(|r| &r["certificate"]).collect();
            problems.push(format!(
                "{label}: no record with leaf {sha256}; ours: {ours:?}"
            ));
            continue;
        };
        let cert = &record["certificate"];
        let leaf = &cert["leaf"];
        let mut expect = |what: &str, want: Value, got: &Value| {
            if &want != got {
                problems.push(format!("{label}: {what}: tshark {want}, ours {got}"));
            }
        };
        expect(
            "message_length",
            t["hs_length"].clone(),
            &cert["message_length"],
        );
        if cert["seen_whole"] == true {
            expect(
                "chain_length",
                t["chain_length"].clone(),
                &cert["chain_length"],
            );
        }
        if leaf_truth["decoded"] != true {
            continue;
        }
        expect(
            "serial",
            serial_number(leaf_truth["serial"].as_str().unwrap()).into(),
            &leaf["serial"],
        );
        expect(
            "signature_algorithm_oid",
            leaf_truth["signature_oid"].clone(),
            &leaf["signature_algorithm_oid"],
        );
        expect(
            "not_before",
            leaf_truth["not_before"].clone(),
            &leaf["not_before"],
        );
        expect(
            "not_after",
            leaf_truth["not_after"].clone(),
            &leaf["not_after"],
        );
        expect(
            "common_name",
            leaf_truth["subject_cn"].clone(),
            &leaf["common_name"],
        );
        expect("san_dns", leaf_truth["dns_names"].clone(), &leaf["san_dns"]);
        if let Some(cn) = leaf_truth["issuer_cn"].as_str() {
            let issuer = leaf["issuer"].as_str().unwrap_or_default();
            expect(
                "issuer has the CN",
                true.into(),
                &issuer.contains(&format!("CN={cn}")).into(),
            );
        }
        // tshark leaves the modulus out when it cannot decode the key: nothing to compare.
        if leaf_truth["key_oid"] == "1.2.840.113549.1.1.1" && !leaf_truth["modulus_bits"].is_null()
        {
            expect("key_type", "RSA".into(), &leaf["key_type"]);
            expect(
                "key_bits",
                leaf_truth["modulus_bits"].clone(),
                &leaf["key_bits"],
            );
        }
    }
    (problems, compared, client_certs)
}

#[test]
fn every_server_certificate_tshark_decoded_is_in_our_records() {
    let mut problems = Vec::new();
    let (mut compared, mut client_certs, mut files) = (0, 0, 0);
    for (local_path, _) in common::manifest() {
        let (mut found, n, c) = check_file(&local_path);
        if let Some((_, why)) = ALLOWED.iter().find(|(f, _)| *f == local_path) {
            if !found.is_empty() {
                eprintln!("allowed difference in {local_path} ({why}): {found:?}");
                found.clear();
            }
        }
        compared += n;
        client_certs += c;
        files += usize::from(n > 0);
        problems.extend(found);
    }
    eprintln!(
        "compared {compared} server certificates in {files} corpus files \
         ({client_certs} client certificates not compared)"
    );
    assert!(compared > 100, "too few certificates compared: {compared}");
    assert!(
        problems.is_empty(),
        "{} mismatches against tshark:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
