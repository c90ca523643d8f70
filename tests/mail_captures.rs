//! Mail sessions and load-balanced connections captured from real stacks (`pcaps/`, made by
//! `pcaps/make_pcaps.sh`): SMTP STARTTLS on 25 and 587, Exchange's X-ANONYMOUSTLS, IMAP
//! STARTTLS, POP3 STLS, a refused STARTTLS, a plaintext session, PROXY v1/v2 before TLS.
//! Expected values: `pcaps/expected_mail.json`, written from what the clients, servers and
//! relays were told to do and printed.

mod common;

use serde_json::Value;

#[test]
fn mail_and_proxy_records_match_the_script() {
    let text = std::fs::read_to_string(common::pcaps_dir().join("expected_mail.json")).unwrap();
    let expected: Vec<Value> = serde_json::from_str(&text).unwrap();
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
    assert_eq!(expected.len(), 12, "the script describes 12 sessions");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
