//! IIS and Exchange SMTP logs read by `tlscensus read` (issue 24).
//!
//! Expected values come from `tests/logs_expected.py`, an independent reading of the same
//! fixtures (`tests/logs/`) with Python's csv module driven by each `#Fields:` line and the
//! tables of Microsoft's documentation; the census test joins a log with a real capture
//! (`pcaps/smtp_starttls.pcap`), its ClientHello as tshark dissected it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn logs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logs")
}

fn tlscensus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .args(args)
        .output()
        .expect("tlscensus runs")
}

/// The fixtures in time order (what Python is given) as paths.
fn fixtures() -> Vec<String> {
    [
        "u_ex240501.log",
        "u_ex240502.log.gz",
        "RECV2018022213-1.LOG",
        "RECV2018022214-1.LOG",
        "SEND2018022213-1.LOG.gz",
    ]
    .iter()
    .map(|f| logs_dir().join(f).display().to_string())
    .collect()
}

/// Python's reading of the fixtures.
fn independent(files: &[String]) -> Value {
    independent_with(&[], files)
}

/// Python's reading of the fixtures, given `options` (`--client-field NAME`) first.
fn independent_with(options: &[&str], files: &[String]) -> Value {
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logs_expected.py"))
        .args(options)
        .args(files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A record of ours in the shape of the Python script's.
fn shape(r: &Value) -> Value {
    let log = &r["log"];
    json!({
        "file": r["capture"]["file"],
        "line": r["capture"]["frame"],
        "source": r["source"],
        "ts": r["ts"],
        "client": [r["client"]["ip"], r["client"]["port"]],
        "true_client": r["client"]["proxied"]["ip"],
        "server": [r["server"]["ip"], r["server"]["port"]],
        "service": r["service"],
        "version": log["version"],
        "protocol": log["protocol"],
        "side": log["schannel_side"],
        "cipher": log["cipher"],
        "hash": log["hash"],
        "key_exchange": log["key_exchange"],
        "bits": [log["cipher_bits"], log["hash_bits"], log["key_exchange_bits"]],
        "weak": log["weak"],
        "ehlo": log["ehlo"],
        "session": log["session"],
        "starttls": r["starttls"],
    })
}

#[test]
fn records_match_an_independent_reading_of_the_logs() {
    let files = fixtures();
    let want = independent(&files);
    // Given in reverse: tlscensus puts rotated files in time order itself.
    let mut args = vec!["read", "--events", "-"];
    args.extend(files.iter().rev().map(String::as_str));
    let out = tlscensus(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "malformed lines are not fatal: {stderr}"
    );
    let mut ours: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| shape(&serde_json::from_str(l).unwrap()))
        .collect();
    let key = |v: &Value| (v["file"].as_str().unwrap().to_string(), v["line"].as_u64());
    ours.sort_by_key(key);
    let mut theirs = want["records"].as_array().unwrap().clone();
    theirs.sort_by_key(key);
    assert!(theirs.len() >= 15, "the fixtures describe many sessions");
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o, t);
    }
    assert_eq!(ours.len(), theirs.len());
    // Every malformed line is named with its file and line; none more.
    let malformed = want["malformed"].as_array().unwrap();
    assert!(malformed.len() >= 4);
    for m in malformed {
        let at = format!("{}:{}:", m[0].as_str().unwrap(), m[1]);
        assert!(stderr.contains(&at), "{at} not reported in {stderr}");
    }
    assert!(
        stderr.contains(&format!("{} malformed lines", malformed.len())),
        "{stderr}"
    );
    // Plaintext, failed and cut-off sessions are counted, not lost.
    let without = &want["sessions_without_tls"];
    assert!(without.as_u64().unwrap() >= 3);
    assert!(
        stderr.contains(&format!("{without} SMTP sessions without a TLS result")),
        "{stderr}"
    );
}

#[test]
fn one_file_alone_gives_the_same_records_as_in_company() {
    // The rotated file on its own: its session began in the file before, so only the TLS
    // result is known (no EHLO) — as the independent reading of that file alone says.
    let file = logs_dir()
        .join("RECV2018022214-1.LOG")
        .display()
        .to_string();
    let want = independent(std::slice::from_ref(&file));
    let out = tlscensus(&["read", "--events", "-", &file]);
    let ours: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| shape(&serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(&ours, want["records"].as_array().unwrap());
    assert!(ours.iter().any(|r| r["ehlo"].is_null()));
}

#[test]
fn other_exchange_logs_are_named_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("MSGTRK2024050110-1.LOG");
    std::fs::write(
        &path,
        "#Software: Microsoft Exchange Server\r\n#Version: 15.0.0.0\r\n\
         #Log-type: Message Tracking Log\r\n#Fields: date-time,client-ip\r\n",
    )
    .unwrap();
    let out = tlscensus(&["read", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MSGTRK2024050110-1.LOG") && stderr.contains("Message Tracking Log"),
        "{stderr}"
    );
}

/// `2026-11-23T18:48:52.543204Z` for tshark's epoch `1795459732.543204000`.
fn rfc3339_of_epoch(epoch: &str) -> String {
    let (secs, frac) = epoch.split_once('.').unwrap();
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    format!(
        "{}.{}Z",
        String::from_utf8(out.stdout).unwrap().trim(),
        &frac[..6]
    )
}

#[test]
fn census_over_a_capture_and_a_log_joins_the_same_client() {
    let pcap = common::pcaps_dir().join("smtp_starttls.pcap");
    let log = logs_dir().join("census/RECV2026112318-1.LOG");
    // The ClientHello's time and client, as tshark dissects them (recorded beside the log
    // by `tshark -r pcaps/smtp_starttls.pcap -Y "tls.handshake.type == 1" -T fields
    // -e frame.time_epoch -e ip.src`).
    let text =
        std::fs::read_to_string(logs_dir().join("census/smtp_starttls.client_hello.tsv")).unwrap();
    let mut fields = text.lines().next().expect("one ClientHello").split('\t');
    let hello_time = rfc3339_of_epoch(fields.next().unwrap());
    let client_ip = fields.next().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("census.json");
    let markdown = dir.path().join("census.md");
    let csv = dir.path().join("census.csv");
    let out = tlscensus(&[
        "read",
        pcap.to_str().unwrap(),
        log.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--report",
        markdown.to_str().unwrap(),
        "--report",
        csv.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let census: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let clients = census["clients"].as_array().unwrap();

    // The capture's client and the log's are one client, with both sources, seen from the
    // log's session a month before the capture to the capture's handshake.
    let same: Vec<&Value> = clients.iter().filter(|c| c["ip"] == client_ip).collect();
    assert_eq!(same.len(), 1, "{clients:#?}");
    let c = same[0];
    assert_eq!(c["sources"], json!(["smtp-log", "wire"]));
    // The log's first TLS result, as written in the fixture.
    assert_eq!(c["first_seen"], "2026-10-26T07:00:00.030000Z");
    // The latest of the wire's ClientHello and the log's TLS result of the same session
    // (Exchange logs the result once the handshake is done, after the hello).
    let log_result = "2026-11-23T18:48:52.545000Z".to_string();
    assert_eq!(c["last_seen"], Value::from(hello_time.max(log_result)));
    assert_eq!(
        c["services"]["smtp"]["sources"],
        json!({"smtp-log": 2, "wire": 1})
    );
    // The wire shows what it offers (TLS 1.3): the policy judges that, not the log.
    assert_eq!(c["would_fail"], false);
    assert_eq!(c["would_fail_negotiated_only"], false);

    // The client only the log saw: TLS 1.0 negotiated, offers unknown.
    let job = clients
        .iter()
        .find(|c| c["ip"] == "192.0.2.50")
        .expect("the log-only client");
    assert_eq!(job["sources"], json!(["smtp-log"]));
    assert_eq!(job["would_fail"], true);
    assert_eq!(job["would_fail_negotiated_only"], true);
    assert_eq!(job["primary"], "legacy-only");
    assert_eq!(job["services"]["smtp"]["negotiated_only"], 1);
    assert_eq!(job["services"]["smtp"]["max_offered"], json!({}));
    let reasons = job["would_fail_reasons"].as_array().unwrap();
    assert!(
        reasons[0]
            .as_str()
            .unwrap()
            .contains("offered versions unknown"),
        "{reasons:?}"
    );

    // The other formats say where the evidence came from.
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("smtp-log+wire"), "{md}");
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let sources = headers
        .iter()
        .position(|h| h == "sources")
        .expect("a sources column");
    let ip = headers
        .iter()
        .position(|h| h == "ip" || h == "client")
        .unwrap();
    let job_row = rows
        .records()
        .map(Result::unwrap)
        .find(|r| &r[ip] == "192.0.2.50")
        .unwrap();
    assert_eq!(&job_row[sources], "smtp-log");
}

#[test]
fn an_iis_log_without_crypt_fields_says_what_to_enable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u_ex240501.log");
    std::fs::write(
        &path,
        "#Software: Microsoft Internet Information Services 10.0\r\n\
         #Fields: date time s-ip cs-method cs-uri-stem s-port c-ip sc-status\r\n\
         2024-05-01 08:00:01 10.0.0.10 GET /owa/ 443 203.0.113.5 200\r\n",
    )
    .unwrap();
    let out = tlscensus(&["read", "--events", "-", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty(), "no TLS session is invented");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: #Fields: has no crypt-protocol",
            path.display()
        )),
        "{stderr}"
    );
}

/// `report --from` reads records back from their lines: every log record (all three
/// sources, weak ciphers, both Schannel sides) must read back to a record that writes the
/// very same line. Needs no server; tests/clickhouse.rs checks the census through one.
#[test]
fn every_log_record_line_reads_back_to_the_same_record() {
    let files = fixtures();
    let mut args = vec!["read"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--events", "-"]);
    let out = tlscensus(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut sources = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let record = tlscensus::sink::record_in::parse(line)
            .unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
        assert_eq!(serde_json::to_string(&record).unwrap(), line);
        sources.insert(record.source);
    }
    assert_eq!(
        sources.into_iter().collect::<Vec<_>>(),
        ["iis-log", "smtp-receive-log", "smtp-send-log"]
    );
    // A source no tlscensus writes is refused, not taken for the wire.
    let iis = text
        .lines()
        .find(|l| l.contains("\"source\":\"iis-log\""))
        .unwrap();
    let odd = iis.replace("\"source\":\"iis-log\"", "\"source\":\"syslog\"");
    assert!(tlscensus::sink::record_in::parse(&odd).is_err());
}

/// A capture on standard input beside a log: the log is recognised by its header and the
/// capture read from the pipe, untouched by the sniffing (`-` is never opened as a log).
/// The census must be the one of the capture read from its file with the same log.
#[test]
fn a_capture_on_standard_input_beside_a_log() {
    use std::io::Write;
    use std::process::Stdio;
    let pcap = common::pcaps_dir().join("smtp_starttls.pcap");
    let log = logs_dir().join("census/RECV2026112318-1.LOG");
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("file.json");
    let from_stdin = dir.path().join("stdin.json");
    let out = tlscensus(&[
        "read",
        pcap.to_str().unwrap(),
        log.to_str().unwrap(),
        "--report",
        from_file.to_str().unwrap(),
    ]);
    assert!(out.status.success());

    let mut child = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .args(["read", "-", log.to_str().unwrap(), "--report"])
        .arg(&from_stdin)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&pcap).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let census =
        |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let (file, stdin) = (census(&from_file), census(&from_stdin));
    // The wire's connection was read from the pipe, and the log's sessions too.
    let joined = |c: &Value| c["services"]["smtp"]["sources"] == json!({"smtp-log": 2, "wire": 1});
    assert!(
        stdin["clients"].as_array().unwrap().iter().any(joined),
        "{stdin:#}"
    );
    assert_eq!(stdin["clients"], file["clients"]);
    assert_eq!(stdin["summary"], file["summary"]);
}

/// A load balancer's client field under a name the admin chose: `--client-field` names it,
/// and it is looked for before the usual X-Forwarded-For; without the option the usual one
/// counts. Python's reading, given the same option, says which address is the client.
#[test]
fn a_true_client_field_named_by_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u_ex240601.log");
    std::fs::write(
        &path,
        "#Software: Microsoft Internet Information Services 10.0\r\n\
         #Version: 1.0\r\n\
         #Date: 2024-06-01 00:00:00\r\n\
         #Fields: date time s-ip cs-method cs-uri-stem s-port c-ip sc-status crypt-protocol \
         crypt-cipher crypt-hash crypt-keyexchange cs(X-Forwarded-For) cs(X-LB-Client)\r\n\
         2024-06-01 10:00:00 10.0.0.10 GET /owa/ 443 10.0.0.200 200 400 6610 800d ae06 \
         10.9.9.9 192.0.2.71:40001\r\n\
         2024-06-01 10:00:30 10.0.0.10 GET /owa/ 443 10.0.0.200 200 40 6603 8004 a400 \
         10.9.9.8 [2001:db8::72]\r\n\
         2024-06-01 10:01:00 10.0.0.10 GET /owa/ 443 10.0.0.201 200 400 6610 800d ae06 - -\r\n",
    )
    .unwrap();
    let file = path.display().to_string();
    for options in [vec![], vec!["--client-field", "X-LB-Client"]] {
        let want = independent_with(&options, std::slice::from_ref(&file));
        let mut args = vec!["read", "--events", "-"];
        args.extend(&options);
        args.push(&file);
        let out = tlscensus(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| shape(&serde_json::from_str(l).unwrap()))
            .collect();
        assert_eq!(&ours, want["records"].as_array().unwrap(), "{options:?}");
        let true_clients: Vec<&Value> = ours.iter().map(|r| &r["true_client"]).collect();
        let expected = if options.is_empty() {
            json!(["10.9.9.9", "10.9.9.8", null])
        } else {
            json!(["192.0.2.71", "2001:db8::72", null])
        };
        assert_eq!(json!(true_clients), expected);
    }
}
