//! Mail sessions and load-balanced connections captured from real stacks (`pcaps/`, made by
//! `pcaps/make_pcaps.sh`): SMTP STARTTLS on 25 and 587, Exchange's X-ANONYMOUSTLS, IMAP
//! STARTTLS, POP3 STLS, a refused STARTTLS, plaintext sessions (one with a 48 KiB message),
//! PROXY v1/v2 before TLS.
//! Expected values: `pcaps/expected_mail.json`, written from what the clients, servers and
//! relays were told to do and printed.

mod common;

use serde_json::Value;

#[test]
fn mail_and_proxy_records_match_the_script() {
    let expected = common::expected_script("expected_mail.json");
    let mut problems = Vec::new();
    for want in &expected {
        let file = want["file"].as_str().unwrap();
        let scenario = want["scenario"].as_str().unwrap();
        let run = common::run_file(&common::pcaps_dir().join(file));
        assert!(run.errors.is_empty(), "{file}: {:?}", run.errors);
        let records: Vec<Value> = run
            .records
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        let Some(record) = records.iter().find(|r| {
            r["client"]["port"] == want["client_port"] && r["server"]["port"] == want["server_port"]
        }) else {
            problems.push(format!("{scenario}: no record"));
            continue;
        };
        let mut check = |what: &str, ours: &Value, theirs: Value| {
            if *ours != theirs {
                problems.push(format!(
                    "{scenario}: {what}: expected {theirs}, ours {ours}"
                ));
            }
        };
        check(
            "client ip",
            &record["client"]["ip"],
            want["client_ip"].clone(),
        );
        check("outcome", &record["outcome"], want["outcome"].clone());
        // Mail services are named by their port; other ports are `tcp/PORT` (the rule).
        let service = if want["starttls_offered"].is_null() {
            Value::from(format!("tcp/{}", want["server_port"]))
        } else {
            want["service"].clone()
        };
        check("service", &record["service"], service);
        check(
            "starttls",
            &record["starttls"],
            want["starttls_verb"].clone(),
        );
        check(
            "starttls_offered",
            &record["starttls_offered"],
            want["starttls_offered"].clone(),
        );
        if let Some(code) = want.get("starttls_reply") {
            check(
                "starttls_reply",
                &record["starttls_reply"],
                Value::from(code.to_string()),
            );
        }
        let proxied = match want["proxied_ip"].as_str() {
            Some(ip) => serde_json::json!({"ip": ip, "port": want["proxied_port"]}),
            None => Value::Null,
        };
        check("client.proxied", &record["client"]["proxied"], proxied);
        if want["plaintext"] == true {
            check("client_hello", &record["client_hello"], Value::Null);
        } else {
            let ch = &record["client_hello"];
            check("sni", &ch["sni"], want["sni"].clone());
            check(
                "max_version",
                &ch["max_version"],
                want["max_offered"].clone(),
            );
            check(
                "negotiated",
                &record["server_hello"]["version"],
                want["negotiated_version"].clone(),
            );
            let cipher = record["server_hello"]["cipher_suite"].as_u64().unwrap_or(0);
            check(
                "cipher",
                &Value::from(format!("{cipher:#06x}")),
                want["cipher_suite"].clone(),
            );
        }
    }
    assert_eq!(expected.len(), 13, "the script describes 13 sessions");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A plaintext SMTP session with a 48 KiB message (`smtp_plaintext_large.pcap`: a server
/// that offers no STARTTLS, Python's smtplib sending in clear) is reported as soon as the
/// client has sent more plaintext than the mail dialogue reads, not at its close: the rest
/// of the message costs a table lookup per packet instead of reassembly. Frame by frame
/// through one engine, as a worker runs it.
#[test]
fn a_long_plaintext_session_is_reported_before_it_ends() {
    use tlscensus::decode;
    use tlscensus::engine::{Config, Engine};
    use tlscensus::proto::starttls::BUDGET;
    use tlscensus::source::CaptureReader;

    // The client port the script pinned, from its description of the capture.
    let client_port = common::expected_script("expected_mail.json")
        .iter()
        .find(|e| e["scenario"] == "smtp_plaintext_large")
        .and_then(|e| e["client_port"].as_u64())
        .expect("the script describes smtp_plaintext_large");
    let path = common::pcaps_dir().join("smtp_plaintext_large.pcap");
    let mut reader = CaptureReader::open(&path).unwrap();
    let mut engine = Engine::new(Config::default());
    engine.begin_file(path.display().to_string());
    let (mut client_bytes, mut first_fin, mut reported) = (0usize, None, None);
    let mut records = Vec::new();
    let mut n = 0u64;
    while let Some(packet) = reader.next_packet().unwrap() {
        n += 1;
        let segment = decode::decode(packet.link_type, packet.data).unwrap();
        if u64::from(segment.sport) == client_port {
            client_bytes += segment.payload.len();
        }
        if segment.flags.fin && first_fin.is_none() {
            first_fin = Some(n);
        }
        let before = records.len();
        engine.packet(2 * n + 1, &packet, &mut |e| records.push(e.record));
        if records.len() > before && reported.is_none() {
            reported = Some((n, client_bytes));
        }
    }
    engine.finish(&mut |e| records.push(e.record));
    assert_eq!(records.len(), 1, "one session, one record");
    assert_eq!(
        serde_json::to_value(records[0].outcome).unwrap(),
        "plaintext"
    );
    let (at, sent) = reported.expect("reported");
    let first_fin = first_fin.expect("the session closes with FINs");
    assert!(
        client_bytes > BUDGET + 8 * 1024,
        "the message is larger than the budget"
    );
    assert!(at < first_fin, "reported at frame {at}, FIN at {first_fin}");
    assert!(
        sent >= BUDGET,
        "reported after {sent} client bytes, budget {BUDGET}"
    );
}
