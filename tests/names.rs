//! Client names learned from the traffic (issue 23.1), against tshark's dissection.
//!
//! `pcaps/names/expected_names.json` is written by `pcaps/names/expected_names.py` from
//! tshark's fields alone (`smtp.req.parameter` of EHLO/HELO commands; the DNS answer
//! fields): per file and client address, the names a dissector shows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn expected() -> serde_json::Map<String, serde_json::Value> {
    let path = root().join("pcaps/names/expected_names.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A capture named in the expectations (by its path from the repository root).
fn capture(name: &str) -> PathBuf {
    root().join(name)
}

fn scratch(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("tlscensus-names-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tlscensus read FILE --udp-names --report r.json`: the report's clients.
fn clients(file: &Path, dir: &Path) -> Vec<serde_json::Value> {
    clients_with(file, dir, &["--udp-names"])
}

/// `tlscensus read FILE ARGS --report r.json`: the report's clients.
fn clients_with(file: &Path, dir: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tlscensus"));
    command.arg("read").arg(file).args(args);
    report_clients(command, dir).0
}

/// Run a `tlscensus` command with `--report DIR/r.json`: the report's clients, and what
/// the command wrote to standard error.
fn report_clients(mut command: Command, dir: &Path) -> (Vec<serde_json::Value>, String) {
    let report = dir.join("r.json");
    let out = command
        .arg("--report")
        .arg(&report)
        .output()
        .expect("run tlscensus");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    (json["clients"].as_array().unwrap().clone(), stderr)
}

/// Per client address, the names of one source in the report.
fn names_by_source(
    clients: &[serde_json::Value],
    source: &str,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in clients {
        for n in c["names"].as_array().unwrap() {
            if n["source"] == source {
                assert_eq!(n["origin"], "seen");
                out.entry(c["ip"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(n["name"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

fn as_sets(v: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(ip, names)| {
            let set = names
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            (ip.clone(), set)
        })
        .collect()
}

#[test]
fn ehlo_names_are_those_tshark_shows() {
    let mut compared = 0;
    for (file, want) in expected() {
        let want = as_sets(&want["ehlo"]);
        let dir = scratch(&file.replace('/', "_"));
        let got = names_by_source(&clients(&capture(&file), &dir), "ehlo");
        assert_eq!(got, want, "{file}");
        compared += want.len();
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(compared >= 9, "only {compared} EHLO clients compared");
}

/// The JSON record of each SMTP session carries the EHLO argument as `smtp.helo`.
#[test]
fn records_carry_smtp_helo() {
    let expected = expected();
    for file in [
        "pcaps/smtp_starttls.pcap",
        "pcaps/smtp_plaintext.pcap",
        "pcaps/names/hostile_values.pcap",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
            .arg("read")
            .arg(capture(file))
            .args(["--events", "-"])
            .output()
            .expect("run tlscensus");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let want = as_sets(&expected[file]["ehlo"]);
        let mut got: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(helo) = record["smtp"]["helo"].as_str() {
                got.entry(record["client"]["ip"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(helo.to_string());
            }
        }
        assert_eq!(got, want, "{file}");
    }
}

/// DNS answers in the capture name the clients they map (A/AAAA for the address, PTR for
/// its reverse name), and so do mDNS answers, DHCP requests and acknowledgements and NetBIOS
/// registrations: exactly the names tshark's fields give for each client address (the first
/// 16 by name when there are more, as the report keeps them). The captures are
/// `pcaps/names/dns_names.pcap` (dnsmasq and dig on loopback, two clients named) and corpus
/// captures holding these protocols.
#[test]
fn udp_names_are_those_tshark_shows() {
    let mut named = BTreeMap::new();
    for (file, want) in expected() {
        let dir = scratch(&file.replace('/', "_"));
        let clients = clients(&capture(&file), &dir);
        assert_udp_names(&file, &clients, &[want], &mut named);
        let _ = std::fs::remove_dir_all(dir);
    }
    eprintln!("clients named, by source: {named:?}");
    assert!(named["dns"] >= 2, "{named:?}");
}

const UDP_SOURCES: [&str; 4] = ["dns", "mdns", "dhcp", "netbios"];

/// Each client's names from the UDP name services are exactly tshark's for the input
/// (`wants`: the expectations of the files read together, united), or a subset of them
/// when the client has more than the report keeps. Counts the clients named per source.
fn assert_udp_names(
    what: &str,
    clients: &[serde_json::Value],
    wants: &[serde_json::Value],
    named: &mut BTreeMap<&'static str, usize>,
) {
    for source in UDP_SOURCES {
        let mut want: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for w in wants {
            for (ip, names) in as_sets(&w[source]) {
                want.entry(ip).or_default().extend(names);
            }
        }
        let got = names_by_source(clients, source);
        for c in clients {
            let ip = c["ip"].as_str().unwrap();
            let mine = got.get(ip).cloned().unwrap_or_default();
            let theirs = want.get(ip).cloned().unwrap_or_default();
            if c["names_other"].as_u64().unwrap_or(0) > 0 {
                assert!(
                    mine.is_subset(&theirs),
                    "{what} {source} {ip}: {mine:?} vs {theirs:?}"
                );
            } else {
                assert_eq!(mine, theirs, "{what} {source} {ip}");
            }
            *named.entry(source).or_insert(0) += usize::from(!mine.is_empty());
        }
    }
}

/// Names from the UDP name services are read by default, in the same pass as TLS: `read`
/// without an option gives tshark's names, with any number of worker threads.
#[test]
fn udp_names_are_read_by_default() {
    let mut named = BTreeMap::new();
    for (file, want) in expected() {
        for threads in ["1", "3"] {
            let dir = scratch(&file.replace('/', "_"));
            let clients = clients_with(&capture(&file), &dir, &["--threads", threads]);
            assert_udp_names(&file, &clients, std::slice::from_ref(&want), &mut named);
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    eprintln!("clients named, by source: {named:?}");
    for source in UDP_SOURCES {
        assert!(named.get(source).copied().unwrap_or(0) >= 2, "{named:?}");
    }
}

/// `--no-udp-names` turns them off: clients tshark names by DNS get no such name, and
/// `--stats` reads no name message; the EHLO names stay.
#[test]
fn no_udp_names_turns_them_off() {
    let expected = expected();
    for file in [
        "pcaps/names/dns_names.pcap",
        "tests/corpus/arkime/tests/pcap/arkime_synthetic.pcap",
    ] {
        assert!(!as_sets(&expected[file]["dns"]).is_empty(), "{file}");
        let dir = scratch(&file.replace('/', "_"));
        let clients = clients_with(&capture(file), &dir, &["--no-udp-names", "--stats"]);
        for source in UDP_SOURCES {
            assert!(
                names_by_source(&clients, source).is_empty(),
                "{file} {source}"
            );
        }
        assert_eq!(
            names_by_source(&clients, "ehlo"),
            as_sets(&expected[file]["ehlo"]),
            "{file}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// DNS answers that arrive in IP fragments (`dns_fragmented.pcap`: `dns_names.pcap` cut
/// into 32-byte fragments by `pcaps/fragment.py`, some last-first, some twice) are joined
/// before they are read: the names are tshark's (which reassembles), the same as the
/// whole answers give.
#[test]
fn names_in_ip_fragments_are_learned() {
    let expected = expected();
    let whole = as_sets(&expected["pcaps/names/dns_names.pcap"]["dns"]);
    let cut = as_sets(&expected["pcaps/names/dns_fragmented.pcap"]["dns"]);
    assert_eq!(whole, cut, "tshark reads the fragmented answers whole");
    let dir = scratch("fragmented");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tlscensus"));
    command
        .arg("read")
        .arg(capture("pcaps/names/dns_fragmented.pcap"))
        .arg("--stats");
    let (clients, stderr) = report_clients(command, &dir);
    let reassembled: u64 = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("datagrams reassembled"))
        .and_then(|n| n.trim().parse().ok())
        .expect("--stats shows the datagrams reassembled");
    assert!(reassembled >= 4, "{stderr}");
    let got = names_by_source(&clients, "dns");
    assert!(!got.is_empty());
    for (ip, names) in &got {
        assert_eq!(Some(names), cut.get(ip), "{ip}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `watch` learns them too: a directory of captures read with `--once` gives each client
/// the names tshark finds in those files, and keeps them in its state for the next run.
#[test]
fn watch_learns_udp_names() {
    let files = [
        "pcaps/names/dns_names.pcap",
        "tests/corpus/nDPI/tests/cfgs/default/pcap/iphone.pcap",
        "tests/corpus/nDPI/tests/cfgs/default/pcap/gnutella.pcap",
    ];
    let expected = expected();
    let dir = scratch("watch");
    let captures = dir.join("captures");
    std::fs::create_dir_all(&captures).unwrap();
    for (i, file) in files.iter().enumerate() {
        std::fs::copy(capture(file), captures.join(format!("{i}.pcap"))).unwrap();
    }
    let wants: Vec<serde_json::Value> = files.iter().map(|f| expected[*f].clone()).collect();
    // The second run reads nothing new: the names come from the state the first one kept.
    for run in ["watch", "watch again"] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tlscensus"));
        command
            .arg("watch")
            .arg(&captures)
            .args(["--once", "--settle", "0s", "--idle", "0s"]);
        let (clients, _) = report_clients(command, &dir);
        let mut named = BTreeMap::new();
        assert_udp_names(run, &clients, &wants, &mut named);
        eprintln!("{run}: clients named, by source: {named:?}");
        for source in UDP_SOURCES {
            assert!(
                named.get(source).copied().unwrap_or(0) >= 1,
                "{run}: {named:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `merge` keeps the names of each report.
#[test]
fn merge_keeps_names() {
    let dir = scratch("merge");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    for (file, report) in [
        ("pcaps/smtp_starttls.pcap", &a),
        ("pcaps/names/dns_names.pcap", &b),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
            .arg("read")
            .arg(capture(file))
            .arg("--udp-names")
            .arg("--report")
            .arg(report)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let merged = dir.join("m.json");
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("merge")
        .arg(&a)
        .arg(&b)
        .arg("--report")
        .arg(&merged)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let clients = json["clients"].as_array().unwrap().clone();
    let expected = expected();
    let mut want = as_sets(&expected["pcaps/smtp_starttls.pcap"]["ehlo"]);
    assert_eq!(names_by_source(&clients, "ehlo"), want);
    want = as_sets(&expected["pcaps/names/dns_names.pcap"]["dns"]);
    let got = names_by_source(&clients, "dns");
    for (ip, names) in got {
        assert_eq!(Some(&names), want.get(&ip), "{ip}");
    }
}
