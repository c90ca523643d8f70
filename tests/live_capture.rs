//! Live capture end to end (issue #6): `tlscensus capture` on the loopback device while
//! openssl makes real handshakes (TLS 1.0, 1.2, 1.3 and SMTP STARTTLS), stopped with SIGINT.
//! The expected versions and ciphers are the ones openssl printed, never our own output.
//!
//! Needs root (or the capture capabilities), `openssl` and `python3` (the small SMTP
//! server); skipped with a message otherwise. CI runs it as root.
#![cfg(feature = "live")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip_reason() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not root: live capture needs root (CI runs this as root)".into());
    }
    for tool in ["openssl", "python3"] {
        let found = Command::new(tool).arg("--version").output().is_ok()
            || Command::new(tool).arg("version").output().is_ok();
        if !found {
            return Some(format!("{tool} not found"));
        }
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlscensus-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn make_cert(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "server on {port} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `tlscensus capture` on lo for these ports; returns once it is capturing.
fn start_capture(dir: &Path, tls_port: u16, smtp_port: u16, every: &str) -> Killed {
    start_capture_with(dir, tls_port, smtp_port, every, &[])
}

/// The same with `extra` arguments.
fn start_capture_with(
    dir: &Path,
    tls_port: u16,
    smtp_port: u16,
    every: &str,
    extra: &[&str],
) -> Killed {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .args(["capture", "-i", "lo", "--immediate", "--threads", "2"])
        .args(["--tls-port", &tls_port.to_string()])
        .args(["--smtp-port", &smtp_port.to_string()])
        .args(["--events", "events.jsonl", "--report", "census.json"])
        .args(["--report", "census.csv", "--report-every", every])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("capturing on lo"), "unexpected: {line}");
    // Keep draining stderr so the child never blocks on it; print it for the log.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        eprint!("{rest}");
    });
    std::thread::sleep(Duration::from_millis(300));
    Killed(child)
}

/// What openssl s_client printed: ("TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384").
fn s_client(port: u16, extra: &[&str]) -> (String, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("New, "))
        .unwrap_or_else(|| panic!("no handshake: {text}"));
    // "New, TLSv1.2, Cipher is ECDHE-RSA-AES256-GCM-SHA384"
    let mut parts = line.trim_start_matches("New, ").split(", Cipher is ");
    let version = parts.next().unwrap().trim().to_string();
    let cipher = parts.next().unwrap().trim().to_string();
    let version = if version == "TLSv1" {
        "TLSv1.0".into()
    } else {
        version
    };
    (version, cipher)
}

const SMTP_SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("cert.pem", "key.pem")
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(5)
def session(c):
    f = c.makefile("rb")
    c.sendall(b"220 test ESMTP\r\n")
    while True:
        line = f.readline()
        if not line: break
        cmd = line.strip().upper()
        if cmd.startswith(b"EHLO"):
            c.sendall(b"250-test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
        elif cmd == b"STARTTLS":
            c.sendall(b"220 2.0.0 Ready to start TLS\r\n")
            try:
                t = ctx.wrap_socket(c, server_side=True)
                t.recv(100)
                t.close()
            except Exception:
                pass
            break
        else:
            c.sendall(b"250 ok\r\n")
while True:
    c, _ = srv.accept()
    # The test's readiness probe connects and leaves without reading the greeting, which
    # resets the connection: that must end the session, not the server.
    try:
        session(c)
    except OSError:
        pass
    c.close()
"#;

/// What every test here captures: a directory with a fresh certificate, and openssl's TLS
/// and SMTP (STARTTLS) servers on free ports.
struct Lab {
    dir: PathBuf,
    tls_port: u16,
    smtp_port: u16,
    servers: (Killed, Killed),
}

/// A [`Lab`] named `name`, or `None` (said on standard error) where live capture cannot run.
fn lab(name: &str) -> Option<Lab> {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED live capture test: {why}");
        return None;
    }
    let dir = temp_dir(name);
    make_cert(&dir);
    let (tls_port, smtp_port) = (free_port(), free_port());
    let servers = servers(&dir, tls_port, smtp_port);
    Some(Lab {
        dir,
        tls_port,
        smtp_port,
        servers,
    })
}

fn servers(dir: &Path, tls_port: u16, smtp_port: u16) -> (Killed, Killed) {
    let tls = Command::new("openssl")
        .args(["s_server", "-accept", &tls_port.to_string()])
        .args(["-cert", "cert.pem", "-key", "key.pem", "-quiet"])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let smtp = Command::new("python3")
        .args(["-c", SMTP_SERVER, &smtp_port.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(tls_port);
    wait_port(smtp_port);
    (Killed(tls), Killed(smtp))
}

fn sigint_and_wait(mut capture: Killed) -> std::process::ExitStatus {
    let pid = capture.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = capture.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < until, "capture did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each events line is JSON"))
        .collect()
}

fn cipher_name(record: &serde_json::Value) -> Option<String> {
    record["server_hello"]["cipher_suite"]
        .as_u64()
        .map(|code| format!("{code:#06x}"))
}

#[test]
fn captures_real_handshakes_and_stops_cleanly_on_sigint() {
    let Some(Lab {
        dir,
        tls_port,
        smtp_port,
        servers: _servers,
    }) = lab("handshakes")
    else {
        return;
    };
    let capture = start_capture(&dir, tls_port, smtp_port, "5m");

    let legacy = ["-cipher", "DEFAULT:@SECLEVEL=0"];
    let mut expected = vec![
        s_client(tls_port, &["-tls1", legacy[0], legacy[1]]),
        s_client(tls_port, &["-tls1_2"]),
        s_client(tls_port, &["-tls1_3"]),
    ];
    let smtp = s_client(smtp_port, &["-starttls", "smtp", "-tls1_2"]);
    assert_eq!(expected[0].0, "TLSv1.0");
    assert_eq!(expected[2].0, "TLSv1.3");
    std::thread::sleep(Duration::from_millis(500));
    let status = sigint_and_wait(capture);
    assert!(status.success(), "capture exited with {status}");

    let recs = records(&dir);
    let mut seen: Vec<(String, u16, String)> = recs
        .iter()
        .filter(|r| r["outcome"] == "negotiated")
        .map(|r| {
            (
                r["server_hello"]["version"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                r["server"]["port"].as_u64().unwrap() as u16,
                r["starttls"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    seen.sort();
    expected.push(smtp.clone());
    let mut want: Vec<(String, u16, String)> = expected
        .iter()
        .enumerate()
        .map(|(i, (v, _))| {
            if i == 3 {
                (v.clone(), smtp_port, "STARTTLS".to_string())
            } else {
                (v.clone(), tls_port, String::new())
            }
        })
        .collect();
    want.sort();
    assert_eq!(seen, want, "records: {recs:#?}");
    // Each negotiated cipher is the one openssl printed (by its IANA code via openssl).
    for (version, cipher) in &expected {
        let code = openssl_cipher_code(cipher);
        assert!(
            recs.iter()
                .any(|r| r["server_hello"]["version"] == version.as_str()
                    && cipher_name(r).as_deref() == Some(code.as_str())),
            "no record with {version} {cipher} ({code})"
        );
    }
    // Only handshake metadata: nothing of the session's payload (the SMTP banner) is kept.
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert!(!events.contains("ESMTP"));

    // The final report: the same connections, the legacy client, no drops.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("census.json")).unwrap()).unwrap();
    assert_eq!(report["format"], "tlscensus-census");
    assert_eq!(
        report["summary"]["connections"].as_u64(),
        Some(recs.len() as u64)
    );
    assert_eq!(report["capture"]["running"], false);
    assert_eq!(report["capture"]["dropped_by_kernel"], 0);
    assert!(report["capture"]["packets"].as_u64().unwrap() > 20);
    let json = report.to_string();
    assert!(json.contains("TLSv1.0") && json.contains("TLSv1.3"));
    assert!(dir.join("census.csv").exists());
    // No temporary files are left behind.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "left behind: {name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `0xc030` for `ECDHE-RSA-AES256-GCM-SHA384`, as openssl itself maps it.
fn openssl_cipher_code(name: &str) -> String {
    let out = Command::new("openssl")
        .args(["ciphers", "-V", "ALL:@SECLEVEL=0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        // "          0xC0,0x30 - ECDHE-RSA-AES256-GCM-SHA384 TLSv1.2 Kx=ECDH ..."
        let mut words = line.split_whitespace();
        let (Some(code), Some(_), Some(n)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if n == name {
            let bytes: Vec<&str> = code.split(',').collect();
            return format!(
                "0x{}{}",
                bytes[0].trim_start_matches("0x").to_lowercase(),
                bytes[1].trim_start_matches("0x").to_lowercase()
            );
        }
    }
    panic!("openssl does not know {name}");
}

/// `capture --events clickhouse://...` beside the events file (issue 25), with ClickHouse
/// down (its port refuses): the handshakes captured wait in the spool, each row carrying
/// the very record line the events file has, for the next run to send.
#[test]
fn capture_sends_to_clickhouse_and_spools_while_it_is_down() {
    let Some(Lab {
        dir,
        tls_port,
        smtp_port,
        servers: _servers,
    }) = lab("clickhouse")
    else {
        return;
    };
    let refused = free_port();
    let url = format!("clickhouse://127.0.0.1:{refused}/tls.events");
    let capture = start_capture_with(
        &dir,
        tls_port,
        smtp_port,
        "1h",
        &[
            "--events",
            &url,
            "--spool",
            "spool",
            "--clickhouse-timeout",
            "1s",
        ],
    );
    s_client(tls_port, &["-tls1_2"]);
    s_client(tls_port, &["-tls1_3"]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(sigint_and_wait(capture).success());
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    let mut want: Vec<&str> = events.lines().collect();
    want.sort();
    assert!(want.len() >= 2, "{events}");
    let mut spooled: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir.join("spool")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for row in text.lines() {
            let row: serde_json::Value = serde_json::from_str(row).unwrap();
            spooled.push(row["record"].as_str().unwrap().to_string());
        }
    }
    spooled.sort();
    assert_eq!(spooled, want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn periodic_report_is_valid_json_while_running() {
    let Some(Lab {
        dir,
        tls_port,
        smtp_port,
        servers: _servers,
    }) = lab("periodic")
    else {
        return;
    };
    let capture = start_capture(&dir, tls_port, smtp_port, "1s");
    let (version, _) = s_client(tls_port, &["-tls1_2"]);
    let report = dir.join("census.json");
    let until = Instant::now() + Duration::from_secs(15);
    let parsed = loop {
        // Read it repeatedly while it is being rewritten: it must always parse whole.
        if let Ok(text) = std::fs::read_to_string(&report) {
            let value: serde_json::Value =
                serde_json::from_str(&text).expect("a periodic report is whole JSON");
            if value["summary"]["connections"].as_u64() == Some(1) {
                break value;
            }
        }
        assert!(
            Instant::now() < until,
            "no periodic report with the handshake"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(parsed["capture"]["running"], true);
    assert!(parsed.to_string().contains(&version));
    assert!(capture.0.id() > 0);
    let status = sigint_and_wait(capture);
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::io::stdout().flush();
}

/// Names from the UDP name services in a live capture (issue 23.1), by default: dnsmasq on
/// 127.0.0.9:53 tells `dig` that ws1.corp.test is 127.0.0.2, then a TLS client connects
/// from 127.0.0.2. The report names that client as dig printed it (dnsmasq and dig are
/// Debian's: skipped with a message when missing).
#[test]
fn names_clients_from_the_dns_answers_it_captures() {
    for tool in ["dnsmasq", "dig"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("SKIPPED live names test: {tool} not found (Debian: dnsmasq dnsutils)");
            return;
        }
    }
    let Some(Lab {
        dir,
        tls_port,
        smtp_port,
        servers: _servers,
    }) = lab("names")
    else {
        return;
    };
    let capture = start_capture(&dir, tls_port, smtp_port, "5m");
    let _dnsmasq = Killed(
        Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-daemon",
                "--conf-file=/dev/null",
            ])
            .args(["--no-resolv", "--no-hosts", "--bind-interfaces"])
            .args(["--listen-address=127.0.0.9", "--port=53"])
            .arg("--host-record=ws1.corp.test,127.0.0.2")
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg(format!(
                "--log-facility={}",
                dir.join("dnsmasq.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let until = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let out = Command::new("dig")
            .args([
                "@127.0.0.9",
                "+short",
                "+tries=1",
                "+time=1",
                "ws1.corp.test",
                "A",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && !text.is_empty() && !text.starts_with(';') {
            break text;
        }
        assert!(Instant::now() < until, "dnsmasq did not answer: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer, "127.0.0.2", "dig's answer");
    let bind = format!("{answer}:{}", free_port());
    s_client(tls_port, &["-tls1_2", "-bind", &bind]);
    std::thread::sleep(Duration::from_millis(500));
    let status = sigint_and_wait(capture);
    assert!(status.success(), "capture exited with {status}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("census.json")).unwrap()).unwrap();
    let client = report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ip"] == answer.as_str())
        .unwrap_or_else(|| panic!("no client {answer}: {report:#}"));
    let names: Vec<(&str, &str)> = client["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap(), n["source"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("ws1.corp.test", "dns")], "{client:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
