//! `--events clickhouse://...` and `report --from` against a real ClickHouse server:
//! Debian's `clickhouse-server` (18.16), started here on 127.0.0.1 on free ports with a
//! temporary data directory, and stopped at the end. Rows are read back with
//! `clickhouse-client`, independently of tlscensus; the census read back must equal
//! `read`'s report byte for byte, and over two sensors `merge` of their reports.
//!
//! Skipped, saying so, when the server is not installed (`.ci/run` installs it).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "census";
const PASSWORD: &str = "s3cret-for-tests";

fn server_binary() -> Option<PathBuf> {
    ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .filter(|_| Path::new("/usr/bin/clickhouse-client").exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One ClickHouse server with its own data directory, stoppable and restartable on the
/// same ports and data.
struct Server {
    dir: tempfile::TempDir,
    http: u16,
    tcp: u16,
    child: Option<Child>,
}

impl Server {
    fn new(http: u16) -> Option<Server> {
        let Some(_) = server_binary() else {
            eprintln!(
                "SKIPPED: clickhouse-server is not installed \
                 (apt-get install clickhouse-server clickhouse-client)"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let tcp = free_port();
        fs::write(
            dir.path().join("config.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <mark_cache_size>5368709</mark_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
</yandex>
"#
            ),
        )
        .unwrap();
        fs::write(
            dir.path().join("users.xml"),
            format!(
                r#"<?xml version="1.0"?>
<yandex>
  <profiles><default></default></profiles>
  <users>
    <{USER}><password>{PASSWORD}</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></{USER}>
  </users>
  <quotas><default></default></quotas>
</yandex>
"#
            ),
        )
        .unwrap();
        let mut server = Server {
            dir,
            http,
            tcp,
            child: None,
        };
        server.start();
        Some(server)
    }

    fn start(&mut self) {
        let child = Command::new(server_binary().unwrap())
            .arg(format!(
                "--config-file={}",
                self.dir.path().join("config.xml").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ok = self.client().arg("--query=SELECT 1").output();
            if ok.is_ok_and(|o| o.status.success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "clickhouse-server did not start: {}",
            fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default()
        );
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn client(&self) -> Command {
        let mut c = Command::new("/usr/bin/clickhouse-client");
        c.args([
            "--host=127.0.0.1",
            &format!("--port={}", self.tcp),
            &format!("--user={USER}"),
            &format!("--password={PASSWORD}"),
        ]);
        c
    }

    fn query(&self, q: &str) -> String {
        let out = self.client().arg(format!("--query={q}")).output().unwrap();
        assert!(
            out.status.success(),
            "{q}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn url(&self, table: &str) -> String {
        format!("clickhouse://127.0.0.1:{}/{table}", self.http)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tlscensus() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tlscensus"));
    c.env("TLSCENSUS_CLICKHOUSE_USER", USER)
        .env("TLSCENSUS_CLICKHOUSE_PASSWORD", PASSWORD)
        .env_remove("XDG_STATE_HOME");
    c
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run tlscensus");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn pcap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name)
}

/// Sorted lines of a text.
fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The records ClickHouse holds, each copy collapsed, as clickhouse-client prints them.
fn stored_records(server: &Server, table: &str) -> Vec<String> {
    lines(&server.query(&format!(
        "SELECT record FROM {table} FINAL FORMAT TabSeparatedRaw"
    )))
}

const SET_A: [&str; 5] = [
    "smtp_starttls.pcap",
    "imap_starttls.pcap",
    "multi_version.pcapng",
    "proxy_v2.pcap",
    "client_alert.pcap",
];
const SET_B: [&str; 5] = [
    "pop3_stls.pcap",
    "server_limited.pcap",
    "smtp_plaintext.pcap",
    "ipv6.pcap",
    "null_cipher.pcap",
];

#[test]
fn records_reach_clickhouse_and_report_from_equals_read_byte_for_byte() {
    let Some(server) = Server::new(free_port()) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let events = work.path().join("events.jsonl");
    let local = work.path().join("local.json");
    let mut read = tlscensus();
    read.arg("read")
        .args(SET_A.iter().chain(&SET_B).map(|p| pcap(p)))
        .arg("--events")
        .arg(&events)
        .arg("--events")
        .arg(server.url("tls.events"))
        .args(["--sensor", "exch01", "--stats", "--server", "127.0.0.1"])
        .arg("--spool")
        .arg(work.path().join("spool"))
        .arg("--report")
        .arg(&local);
    let out = run_ok(&mut read);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let written = fs::read_to_string(&events).unwrap();
    let n = written.lines().count();
    assert!(n > 10, "{n} records");
    assert!(
        stderr.contains(&format!("clickhouse sent        {n}")),
        "{stderr}"
    );
    // Every record line, as the events file has it, once.
    assert_eq!(stored_records(&server, "tls.events"), lines(&written));
    assert_eq!(
        server.query("SELECT DISTINCT sensor FROM tls.events"),
        "exch01\n"
    );
    // The census view answers, and counts every connection.
    assert_eq!(
        server.query("SELECT sum(connections) FROM tls.events_census"),
        format!("{n}\n")
    );

    let remote = work.path().join("remote.json");
    run_ok(
        tlscensus()
            .args(["report", "--from", &server.url("tls.events")])
            .args(["--server", "127.0.0.1", "--report"])
            .arg(&remote),
    );
    assert_eq!(fs::read(&remote).unwrap(), fs::read(&local).unwrap());

    // The same sensor sending the same records again (every batch a retry) adds nothing:
    // the table's key is the connection.
    run_ok(&mut read);
    assert_eq!(
        server.query("SELECT count() FROM tls.events FINAL"),
        format!("{n}\n")
    );
    assert_eq!(stored_records(&server, "tls.events"), lines(&written));
    run_ok(
        tlscensus()
            .args(["report", "--from", &server.url("tls.events")])
            .args(["--server", "127.0.0.1", "--report"])
            .arg(&remote),
    );
    assert_eq!(fs::read(&remote).unwrap(), fs::read(&local).unwrap());

    // The DDL `schema` prints is what --events ran, and runs as it is on this server.
    let ddl = run_ok(tlscensus().args(["schema", "clickhouse", "--table", "other.t"])).stdout;
    let mut client = server.client();
    client
        .arg("--multiquery")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = client.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &ddl).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        server.query("SELECT name FROM system.tables WHERE database = 'other' ORDER BY name"),
        "t\nt_census\n"
    );
    assert_eq!(
        server.query("SELECT count() FROM system.columns WHERE database = 'other' AND table = 't'"),
        server.query(
            "SELECT count() FROM system.columns WHERE database = 'tls' AND table = 'events'"
        )
    );
}

#[test]
fn two_sensors_at_once_give_the_merge_of_their_reports() {
    let Some(server) = Server::new(free_port()) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let sensor = |name: &str, files: &[&str]| {
        let mut c = tlscensus();
        c.arg("read")
            .args(files.iter().map(|p| pcap(p)))
            .arg("--events")
            .arg(server.url("tls.events"))
            .args(["--sensor", name, "--report"])
            .arg(work.path().join(format!("{name}.json")))
            .arg("--spool")
            .arg(work.path().join(format!("spool-{name}")))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    let (a, b) = (sensor("exch01", &SET_A), sensor("exch02", &SET_B));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let merged = work.path().join("merged.json");
    run_ok(
        tlscensus()
            .arg("merge")
            .arg(work.path().join("exch01.json"))
            .arg(work.path().join("exch02.json"))
            .arg("--report")
            .arg(&merged),
    );
    let all = work.path().join("all.json");
    run_ok(
        tlscensus()
            .args(["report", "--from", &server.url("tls.events"), "--report"])
            .arg(&all),
    );
    assert_eq!(fs::read(&all).unwrap(), fs::read(&merged).unwrap());
    let one = work.path().join("one.json");
    run_ok(
        tlscensus()
            .args(["report", "--from", &server.url("tls.events")])
            .args(["--sensor", "exch02", "--report"])
            .arg(&one),
    );
    assert_eq!(
        fs::read(&one).unwrap(),
        fs::read(work.path().join("exch02.json")).unwrap()
    );
}

#[test]
fn a_server_that_never_answers_leaves_the_records_to_the_next_run() {
    let port = free_port();
    // Accepts connections (the kernel does), reads nothing, answers nothing.
    let silent = TcpListener::bind(("127.0.0.1", port)).unwrap();
    if server_binary().is_none() {
        eprintln!("SKIPPED: clickhouse-server is not installed");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spool = work.path().join("spool");
    let url = format!("clickhouse://127.0.0.1:{port}/tls.events");
    let run = |files: &[&str], events: &Path| {
        let mut c = tlscensus();
        c.arg("read")
            .args(files.iter().map(|p| pcap(p)))
            .args(["--events", &url, "--events"])
            .arg(events)
            .args([
                "--sensor",
                "exch01",
                "--clickhouse-timeout",
                "1s",
                "--stats",
            ])
            .arg("--spool")
            .arg(&spool);
        c
    };
    let first = work.path().join("first.jsonl");
    let started = Instant::now();
    let out = run_ok(&mut run(&SET_A, &first));
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let n = fs::read_to_string(&first).unwrap().lines().count();
    assert!(stderr.contains("clickhouse sent        0"), "{stderr}");
    assert!(
        stderr.contains(&format!("clickhouse spooled     {n}")),
        "{stderr}"
    );
    assert!(stderr.contains("wait in the spool"), "{stderr}");
    let spooled: usize = fs::read_dir(&spool)
        .unwrap()
        .map(|e| {
            fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(spooled, n);

    // The silent socket goes; ClickHouse itself answers on that port now.
    drop(silent);
    let Some(server) = Server::new(port) else {
        return;
    };
    let second = work.path().join("second.jsonl");
    run_ok(&mut run(&SET_B, &second));
    let mut expected = fs::read_to_string(&first).unwrap();
    expected.push_str(&fs::read_to_string(&second).unwrap());
    assert_eq!(stored_records(&server, "tls.events"), lines(&expected));
    assert_eq!(fs::read_dir(&spool).unwrap().count(), 0);
}

/// A child process killed if the test fails before it stops it.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Wait until `done` holds, or fail saying `what`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_server_stopped_and_started_mid_run_loses_and_duplicates_nothing() {
    let Some(mut server) = Server::new(free_port()) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("capture");
    fs::create_dir(&dir).unwrap();
    let events = work.path().join("events.jsonl");
    let spool = work.path().join("spool");
    let watch = KillOnDrop(Some(
        tlscensus()
            .arg("watch")
            .arg(&dir)
            .arg("--state")
            .arg(work.path().join("state.json"))
            .arg("--events")
            .arg(server.url("tls.events"))
            .arg("--events")
            .arg(&events)
            .args(["--sensor", "exch01", "--clickhouse-timeout", "2s"])
            .args(["--settle", "100ms", "--idle", "1s", "--quiet"])
            .arg("--spool")
            .arg(&spool)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Files appear one by one, as a rotating capture writes them.
    let drop_in = |i: usize, name: &str| {
        let staged = work.path().join(format!("staged-{i}"));
        fs::copy(pcap(name), &staged).unwrap();
        fs::rename(&staged, dir.join(format!("cap-{i:02}.pcap"))).unwrap();
    };
    // Before the first insert the table does not exist: none stored.
    let stored = |server: &Server| -> usize {
        let out = server
            .client()
            .arg("--query=SELECT count() FROM tls.events FINAL")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let pcaps: Vec<&str> = SET_A
        .iter()
        .chain(&SET_B)
        .copied()
        .filter(|p| p.ends_with(".pcap"))
        .collect();
    let (before, during) = pcaps.split_at(3);
    let (during, after) = during.split_at(3);
    let mut i = 0;
    for name in before {
        drop_in(i, name);
        i += 1;
    }
    wait_for("the first files in ClickHouse", || stored(&server) > 0);
    server.stop();
    for name in during {
        drop_in(i, name);
        i += 1;
    }
    wait_for("the outage's batches in the spool", || {
        fs::read_dir(&spool).is_ok_and(|d| d.count() > 0)
    });
    server.start();
    for name in after {
        drop_in(i, name);
        i += 1;
    }
    // The last file counts as complete after --idle; the spool empties once the sender's
    // wait after the failures is over.
    std::thread::sleep(Duration::from_secs(3));
    wait_for("the spool delivered", || {
        fs::read_dir(&spool).is_ok_and(|d| d.count() == 0)
    });
    let mut watch = watch;
    let child = watch.0.take().unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = fs::read_to_string(&events).unwrap();
    assert_eq!(stored_records(&server, "tls.events"), lines(&all));
    assert_eq!(fs::read_dir(&spool).unwrap().count(), 0);
}

/// `report --from` reads back the lines the sensors wrote: every record of the captures
/// in pcaps/ (every outcome, STARTTLS verb, alert, PROXY header, SSLv2 and IPv6 among
/// them) must read back to a record that writes the very same line. Needs no server.
#[test]
fn every_record_line_reads_back_to_the_same_record() {
    let mut files: Vec<PathBuf> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    let out = run_ok(tlscensus().arg("read").args(&files).args(["--events", "-"]));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut outcomes = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let record = tlscensus::sink::record_in::parse(line)
            .unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
        assert_eq!(serde_json::to_string(&record).unwrap(), line);
        outcomes.insert(record.outcome.name());
    }
    // The captures cover every outcome the record format has.
    assert_eq!(outcomes.len(), 5, "{outcomes:?}");
}

/// Server logs read beside a capture (issue 24): their records carry `source` and `log`
/// and no hellos; the census read back from ClickHouse must still equal `read`'s byte for
/// byte, in every report format that carries the sources.
#[test]
fn server_logs_through_clickhouse_give_the_same_census() {
    let Some(server) = Server::new(free_port()) else {
        return;
    };
    let logs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logs");
    let work = tempfile::tempdir().unwrap();
    let mut read = tlscensus();
    read.arg("read")
        .arg(pcap("smtp_starttls.pcap"))
        .arg(logs.join("census/RECV2026112318-1.LOG"))
        .arg(logs.join("u_ex240501.log"))
        .arg(logs.join("u_ex240502.log.gz"))
        .arg(logs.join("SEND2018022213-1.LOG.gz"))
        .arg("--events")
        .arg(server.url("tls.logs"))
        .arg("--spool")
        .arg(work.path().join("spool"));
    for ext in ["json", "csv", "md"] {
        read.arg("--report")
            .arg(work.path().join(format!("local.{ext}")));
    }
    run_ok(&mut read);
    let sources = server.query(
        "SELECT visitParamExtractString(record, 'source') AS s, count() FROM tls.logs GROUP BY s ORDER BY s",
    );
    assert_eq!(
        sources
            .lines()
            .map(|l| l.split('\t').next().unwrap())
            .collect::<Vec<_>>(),
        ["iis-log", "smtp-receive-log", "smtp-send-log", "wire"],
        "{sources}"
    );
    let mut from = tlscensus();
    from.args(["report", "--from", &server.url("tls.logs")]);
    for ext in ["json", "csv", "md"] {
        from.arg("--report")
            .arg(work.path().join(format!("remote.{ext}")));
    }
    run_ok(&mut from);
    for ext in ["json", "csv", "md"] {
        assert_eq!(
            fs::read_to_string(work.path().join(format!("remote.{ext}"))).unwrap(),
            fs::read_to_string(work.path().join(format!("local.{ext}"))).unwrap(),
            "{ext}"
        );
    }

    // A time range keeps that period's records only. The fixtures' periods are apart (the
    // send log is of February 2018, the IIS logs of May 2024, the receive log and the
    // capture of October-November 2026), so each period's census is `read` of its files.
    let periods: [(&[&str], Vec<PathBuf>); 3] = [
        (
            &["--until", "2019-01-01T00:00:00Z"],
            vec![logs.join("SEND2018022213-1.LOG.gz")],
        ),
        (
            &[
                "--since",
                "2024-05-01T00:00:00Z",
                "--until",
                "2024-05-03T00:00:00Z",
            ],
            vec![logs.join("u_ex240501.log"), logs.join("u_ex240502.log.gz")],
        ),
        (
            &["--since", "2026-01-01T00:00:00Z"],
            vec![
                pcap("smtp_starttls.pcap"),
                logs.join("census/RECV2026112318-1.LOG"),
            ],
        ),
    ];
    for (range, files) in periods {
        let local = work.path().join("period-local.json");
        let remote = work.path().join("period-remote.json");
        run_ok(
            tlscensus()
                .arg("read")
                .args(&files)
                .arg("--report")
                .arg(&local),
        );
        run_ok(
            tlscensus()
                .args(["report", "--from", &server.url("tls.logs")])
                .args(range)
                .arg("--report")
                .arg(&remote),
        );
        let census = fs::read_to_string(&remote).unwrap();
        assert!(census.contains("\"clients\""), "{census}");
        assert_eq!(census, fs::read_to_string(&local).unwrap(), "{range:?}");
    }
}

/// A spool write that never finishes (its file is a named pipe nobody reads: a disk that
/// stopped) holds up only the sender thread: records keep being added, and the counts keep
/// being read, while it waits. Once the write goes through, every record is in the spool,
/// in order, none dropped. Needs no server: ClickHouse's port refuses connections.
#[test]
fn a_stalled_spool_write_does_not_hold_up_the_record_path() {
    use std::io::Read;
    use std::sync::mpsc;
    use tlscensus::engine::Services;
    use tlscensus::logs::iis::IisParser;
    use tlscensus::sink::clickhouse::{ClickHouseSink, Options};
    use tlscensus::sink::target::Target;

    // Real records: the IIS fixture's, as the log reader makes them.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logs/u_ex240501.log");
    let mut records = Vec::new();
    IisParser::new(Services::default()).read(
        fs::read(&fixture).unwrap().as_slice(),
        "u_ex240501.log",
        &mut |r| records.push(r),
        &mut |_| {},
    );
    assert!(!records.is_empty());

    let refused = free_port();
    let spool = tempfile::tempdir().unwrap();
    let target = Target::parse(&format!("clickhouse://127.0.0.1:{refused}/tls.events")).unwrap();
    let mut options = Options::new(target, "exch01".into(), spool.path().to_path_buf());
    options.batch_rows = 1;
    options.timeout = Duration::from_secs(2);
    options.close_timeout = Duration::from_secs(20);
    let mut sink = ClickHouseSink::open(options, Default::default(), "r1".into()).unwrap();
    // Batch 0's file is written beside its name first: make that a pipe nobody reads.
    let stalled = spool.path().join("r1-000000000000.jsonl.tmp");
    let made = Command::new("mkfifo").arg(&stalled).status().unwrap();
    assert!(made.success());
    let lines: Vec<String> = (0..2000)
        .map(|i| serde_json::to_string(&records[i % records.len()]).unwrap())
        .collect();
    let line = |i: usize| lines[i].clone();
    sink.add(&records[0], &line(0));
    // The refused insert sends batch 0 to the spool, where its write blocks.
    let view = sink.counts_view();
    let (done_tx, done) = mpsc::channel();
    let for_adder = lines.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let error_seen = view.counts().last_error.is_some();
        for (i, line) in for_adder.iter().enumerate().skip(1) {
            sink.add(&records[i % records.len()], line);
        }
        let _ = done_tx.send((sink, view.counts(), error_seen));
    });
    let (sink, counts, error_seen) = done
        .recv_timeout(Duration::from_secs(20))
        .expect("adding records waited on the stalled spool write");
    assert!(error_seen, "ClickHouse's refusal is known by now");
    assert_eq!(
        (counts.spooled, counts.dropped),
        (0, 0),
        "batch 0 not written yet"
    );

    // The run ends while the write still hangs: the sender must spool what was added
    // meanwhile once the write goes through, not leave it in memory.
    let closing = std::thread::spawn(move || sink.close());
    std::thread::sleep(Duration::from_millis(300));

    // The disk comes back: the pipe is read to its end, and a plain file with the same
    // bytes put in its place (the spool renamed the pipe to the batch's name).
    let mut written = Vec::new();
    fs::File::open(&stalled)
        .unwrap()
        .read_to_end(&mut written)
        .unwrap();
    let batch0 = spool.path().join("r1-000000000000.jsonl");
    let plain = spool.path().join("batch0.copy");
    fs::write(&plain, &written).unwrap();
    fs::rename(&plain, &batch0).unwrap();
    assert_eq!(written.iter().filter(|&&b| b == b'\n').count(), 1);

    let counts = closing.join().unwrap();
    assert_eq!(
        (counts.sent, counts.spooled, counts.dropped),
        (0, 2000, 0),
        "{counts:?}"
    );
    // Every record waits in the spool, one batch each, in the order added.
    let mut names: Vec<String> = fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2000, "{:?}", &names[..3]);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(name, &format!("r1-{i:012}.jsonl"));
    }
    for i in [0, 1999] {
        let row: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(spool.path().join(&names[i])).unwrap())
                .unwrap();
        assert_eq!(row["record"], line(i));
        assert_eq!(row["seq"], i);
    }
}

/// A wrong password is said once, with where the credentials come from, and the records
/// wait in the spool; the next run with the right one delivers them.
#[test]
fn a_wrong_password_is_said_once_and_the_records_wait() {
    let Some(server) = Server::new(free_port()) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let spool = work.path().join("spool");
    let events = work.path().join("events.jsonl");
    let run = |password: &str| {
        let mut c = tlscensus();
        c.env("TLSCENSUS_CLICKHOUSE_PASSWORD", password)
            .arg("read")
            .args(SET_A.iter().map(|p| pcap(p)))
            .arg("--events")
            .arg(server.url("tls.events"))
            .arg("--events")
            .arg(&events)
            .args([
                "--sensor",
                "exch01",
                "--clickhouse-timeout",
                "2s",
                "--stats",
            ])
            .arg("--spool")
            .arg(&spool);
        run_ok(&mut c)
    };
    let out = run("not-the-password");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("the user or password is not accepted")
            .count(),
        // The failure as it happens, and the last error at exit.
        2,
        "{stderr}"
    );
    assert!(stderr.contains("TLSCENSUS_CLICKHOUSE_PASSWORD"), "{stderr}");
    assert!(stderr.contains("clickhouse sent        0"), "{stderr}");
    let written = fs::read_to_string(&events).unwrap();
    assert!(!written.is_empty());

    let fixed_events = work.path().join("again.jsonl");
    let mut c = tlscensus();
    c.arg("read")
        .arg(pcap("ipv6.pcap"))
        .arg("--events")
        .arg(server.url("tls.events"))
        .arg("--events")
        .arg(&fixed_events)
        .args(["--sensor", "exch01"])
        .arg("--spool")
        .arg(&spool);
    run_ok(&mut c);
    let mut expected = written;
    expected.push_str(&fs::read_to_string(&fixed_events).unwrap());
    assert_eq!(stored_records(&server, "tls.events"), lines(&expected));
}

/// The DDL `schema clickhouse` prints and the rows `--events` spools, on a current ClickHouse
/// release (chdb-core from PyPI: ClickHouse's engine in process; `tests/clickhouse_current.py`):
/// the tables are made, a batch inserted twice collapses under FINAL, the census view
/// counts each record once, and the records read back are the events file's lines. The
/// Python comes from TLSCENSUS_CHDB_PYTHON (then it must work; `.ci/run` sets it), else
/// target/chdb-venv; skipped, saying so, without either.
#[test]
fn the_schema_and_rows_work_on_a_current_clickhouse() {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/chdb-venv/bin/python");
    let python = match std::env::var_os("TLSCENSUS_CHDB_PYTHON") {
        Some(p) => PathBuf::from(p),
        None if venv.exists() => venv,
        None => {
            eprintln!(
                "SKIPPED: no chdb (python3 -m venv target/chdb-venv && \
                 target/chdb-venv/bin/pip install chdb-core)"
            );
            return;
        }
    };
    let work = tempfile::tempdir().unwrap();
    let spool = work.path().join("spool");
    let events = work.path().join("events.jsonl");
    let logs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logs");
    // Nothing listens on the port: every row goes to the spool, as it would be sent.
    let refused = free_port();
    run_ok(
        tlscensus()
            .arg("read")
            .args(SET_A.iter().chain(&SET_B).map(|p| pcap(p)))
            .arg(logs.join("u_ex240501.log"))
            .arg(logs.join("RECV2018022213-1.LOG"))
            .arg("--events")
            .arg(format!("clickhouse://127.0.0.1:{refused}/tls.events"))
            .arg("--events")
            .arg(&events)
            .args(["--sensor", "exch01", "--clickhouse-timeout", "1s"])
            .arg("--spool")
            .arg(&spool),
    );
    let ddl = work.path().join("ddl.sql");
    let out = run_ok(tlscensus().args(["schema", "clickhouse", "--table", "tls.events"]));
    fs::write(&ddl, out.stdout).unwrap();
    let out = Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clickhouse_current.py"))
        .arg(&ddl)
        .arg(&spool)
        .output()
        .expect("run the chdb script");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = answer["version"].as_str().unwrap();
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    assert!(major >= 23, "a current release, not {version}");
    let written = fs::read_to_string(&events).unwrap();
    let n = written.lines().count() as u64;
    assert!(n > 20, "{n} records");
    assert_eq!(answer["stored"], 2 * n, "each batch inserted twice");
    assert_eq!(answer["final"], n);
    assert_eq!(answer["census_connections"], n);
    assert_eq!(
        answer["tables"],
        serde_json::json!(["events", "events_census"])
    );
    let mut back: Vec<String> = answer["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    back.sort();
    assert_eq!(back, lines(&written));
}

/// A spool too small for what waits is never silent: the records it cannot take are counted
/// as dropped, in --stats and in the line said at exit, and the run still succeeds. Needs no
/// server: ClickHouse's port refuses connections.
#[test]
fn a_full_spool_counts_and_says_what_it_dropped() {
    let work = tempfile::tempdir().unwrap();
    let spool = work.path().join("spool");
    let events = work.path().join("events.jsonl");
    let refused = free_port();
    let out = run_ok(
        tlscensus()
            .arg("read")
            .args(SET_A.iter().map(|p| pcap(p)))
            .arg("--events")
            .arg(format!("clickhouse://127.0.0.1:{refused}/tls.events"))
            .arg("--events")
            .arg(&events)
            .args(["--spool-max", "1K", "--clickhouse-timeout", "1s", "--stats"])
            .arg("--spool")
            .arg(&spool),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let n = fs::read_to_string(&events).unwrap().lines().count();
    assert!(n > 5, "{n} records");
    // Every batch is larger than 1 KiB: none fits.
    assert!(stderr.contains("clickhouse spooled     0"), "{stderr}");
    assert!(
        stderr.contains(&format!("clickhouse dropped     {n}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{n} records DROPPED (spool full)")),
        "{stderr}"
    );
    assert!(stderr.contains("is full (1024 bytes)"), "{stderr}");
    assert_eq!(fs::read_dir(&spool).unwrap().count(), 0);
}
