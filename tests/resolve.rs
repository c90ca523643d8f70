//! `--resolve` (issue 23.2) against Debian's dnsmasq, started by the test on 127.0.0.1 with a
//! PTR record, and against a server that never answers. The expected names are what `dig -x`
//! gets from the same dnsmasq.
//!
//! Needs `dnsmasq` and `dig` (Debian: dnsmasq, dnsutils; `.ci/run` installs them). Without
//! them the test says SKIPPED, unless CI is set.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tools_or_skip() -> bool {
    let ok = have("dnsmasq") && have("dig");
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "dnsmasq or dig missing and CI is set: .ci/run installs dnsmasq and dnsutils"
        );
        eprintln!("SKIPPED resolve: apt-get install dnsmasq dnsutils");
    }
    ok
}

fn pcap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/names/dns_names.pcap")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlscensus-resolve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// dnsmasq on 127.0.0.1:`port`, answering only from its command line; stopped on drop.
struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_dnsmasq(port: u16) -> Dnsmasq {
    let child = Command::new("dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--pid-file=",
            "--log-facility=-",
            &format!("--port={port}"),
            "--ptr-record=2.0.0.127.in-addr.arpa,ws-resolved.corp.test",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    let server = Dnsmasq(child);
    // Up when dig gets an answer.
    for _ in 0..100 {
        if !dig(port, "127.0.0.2").is_empty() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("dnsmasq did not answer on port {port}");
}

/// `dig @127.0.0.1 -p PORT -x IP +short`: the PTR names, without the final dot.
fn dig(port: u16, ip: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+short",
            "+tries=1",
            "+time=1",
            "-x",
            ip,
        ])
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .map(|l| l.trim().trim_end_matches('.').to_string())
        .collect()
}

/// `tlscensus read dns_names.pcap --resolve --dns-server SERVER`: the report's
/// clients, standard error, and how long it took.
fn run(server: &str, dir: &Path) -> (Vec<serde_json::Value>, String, Duration) {
    let report = dir.join("r.json");
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("read")
        .arg(pcap())
        .args(["--resolve", "--dns-server", server, "--report"])
        .arg(&report)
        .output()
        .expect("run tlscensus");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    (json["clients"].as_array().unwrap().clone(), stderr, took)
}

fn resolved_names(client: &serde_json::Value) -> Vec<String> {
    client["names"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["source"] == "resolved")
        .map(|n| {
            assert_eq!(n["origin"], "resolved");
            n["name"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn resolve_names_clients_as_dig_does() {
    if !tools_or_skip() {
        return;
    }
    let port = 20000 + (std::process::id() % 20000) as u16;
    let _server = start_dnsmasq(port);
    let dir = scratch("dnsmasq");
    let (clients, stderr, _) = run(&format!("127.0.0.1:{port}"), &dir);
    assert_eq!(clients.len(), 2);
    let mut named = 0;
    for c in &clients {
        let ip = c["ip"].as_str().unwrap();
        let want = dig(port, ip);
        assert_eq!(resolved_names(c), want, "{ip}");
        named += usize::from(!want.is_empty());
    }
    assert_eq!(named, 1, "dnsmasq has one PTR record");
    assert!(stderr.contains("1 named, 0 unanswered"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_server_that_never_answers_delays_the_report_by_the_timeout_only() {
    // A socket that receives the queries and never replies.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let dir = scratch("silent");
    let (clients, stderr, took) = run(&server, &dir);
    assert_eq!(clients.len(), 2);
    for c in &clients {
        assert!(resolved_names(c).is_empty());
    }
    assert!(stderr.contains("0 named, 2 unanswered"), "{stderr}");
    // Two tries of 1.5 s each, well inside the 10 s deadline.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        took >= Duration::from_millis(2900),
        "gave up after {took:?}"
    );
    drop(silent);
    let _ = std::fs::remove_dir_all(dir);
}
