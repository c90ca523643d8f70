//! The HTML report's per-client view, driven in headless Chromium through the filters the
//! page reads from its address (`#category=...&service=...&direction=...&q=...`).
//!
//! The census is that of every capture in `pcaps/` (hostile SNIs and EHLO names from real
//! openssl and smtplib among them) and the corpus captures, with `--server` set so that
//! every direction occurs. What the view must list for each filter, and what its CSV
//! download must hold, comes from the CSV report read by Python's `csv` module
//! (`tests/html_clients.py`), not from the page's code; the DOM Chromium built and the file
//! it downloaded are read back by Python's `html.parser` and `csv`. The page keeps its
//! Content Security Policy throughout: its scripts run only because their hashes are
//! allowed, and the console must stay empty (no violation, no error) and the net log free
//! of requests.

mod browser;
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use browser::{chromium, console_lines, page_requests, run_chromium};

/// Run `tests/html_clients.py` with arguments; its JSON answer.
fn python(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/html_clients.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (Debian's python3)");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python prints JSON")
}

/// Rows of a CSV file, as Python's csv module counts them.
fn python_csv_rows(path: &Path) -> usize {
    python(&["download", path.to_str().unwrap()])["rows"]
        .as_array()
        .unwrap()
        .len()
}

/// A filter case as the page's fragment: `key=value&...`, every byte but letters and digits
/// percent-encoded (URLSearchParams decodes them; a raw `+` would be a space).
fn fragment(case: &Value) -> String {
    let mut parts = Vec::new();
    for (k, v) in case.as_object().unwrap() {
        let mut value = String::new();
        for b in v.as_str().unwrap().bytes() {
            if b.is_ascii_alphanumeric() {
                value.push(b as char);
            } else {
                value.push_str(&format!("%{b:02X}"));
            }
        }
        parts.push(format!("{k}={value}"));
    }
    parts.join("&")
}

/// The census of the captures, as HTML and CSV, in `work`.
fn reports(work: &Path) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = common::own_captures();
    files.push(root.join("pcaps/names/hostile_values.pcap"));
    files.push(root.join("pcaps/names/dns_names.pcap"));
    let corpus = common::corpus_dir();
    files.extend(
        common::manifest()
            .into_iter()
            .map(|(path, _)| corpus.join(path)),
    );
    let page = work.join("census.html");
    let csv = work.join("census.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_tlscensus"))
        .arg("read")
        .args(&files)
        // Hosts of 192.168.1.0/24 are servers to some clients and clients of others:
        // inbound, outbound and other connections all occur.
        .args(["--server", "192.168.1.0/24", "--server", "127.0.0.1"])
        .arg("--report")
        .arg(&page)
        .arg("--report")
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (page, csv)
}

/// The filters tried: each category, direction and a few services alone, searches for an
/// address, a name, a software hint, a JA4 prefix and hostile text, and combinations.
fn cases() -> Vec<Value> {
    let mut cases = vec![json!({})];
    for category in ["legacy-only", "server-limited", "failing", "no-tls", "ok"] {
        cases.push(json!({ "category": category }));
    }
    for direction in ["inbound", "outbound", "other"] {
        cases.push(json!({ "direction": direction }));
    }
    for service in ["smtp", "https/quic", "imap"] {
        cases.push(json!({ "service": service }));
    }
    for q in [
        "127.0.0.2",
        "192.168.1.",
        "client.example.com",
        "OUTLOOK",
        "t13d",
        "=hyperlink(",
        "<script>",
        "  example.test ",
    ] {
        cases.push(json!({ "q": q }));
    }
    cases.push(json!({ "category": "legacy-only", "direction": "other" }));
    cases.push(json!({ "service": "https", "q": "google" }));
    // A link made on another census: a service this one lacks matches no client.
    cases.push(json!({ "service": ABSENT_SERVICE }));
    cases
}

/// A service no capture of the census has.
const ABSENT_SERVICE: &str = "tcp/70";

/// The per-client table's rows in a DOM: client keys, cells, and the tags found inside it.
struct Table {
    view: Value,
    keys: Vec<Vec<String>>,
    rows: Vec<Value>,
    tags: Vec<String>,
}

fn table(dom_file: &Path) -> Table {
    let parsed = python(&["dom", dom_file.to_str().unwrap()]);
    let rows = parsed["rows"].as_array().unwrap().clone();
    let mut keys: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            ["ip", "via", "direction"]
                .iter()
                .map(|k| r[*k].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .collect();
    keys.sort();
    Table {
        view: parsed["view"].clone(),
        keys,
        rows,
        tags: serde_json::from_value(parsed["tags"].clone()).unwrap(),
    }
}

fn keys_of(expected: &Value) -> Vec<Vec<String>> {
    serde_json::from_value(expected["keys"].clone()).unwrap()
}

/// A downloaded row equals the expected one: cells of unordered lists as sets, and a capped
/// list (expected ending in ` (+`) up to its count of other connections.
fn assert_row_eq(got: &Value, want: &Value, header: &[String]) {
    for col in header {
        let (g, w) = (got[col].as_str().unwrap(), want[col].as_str().unwrap());
        let same = if col == "cipher_suites" {
            let set = |s: &str| s.split("; ").map(str::to_string).collect::<BTreeSet<_>>();
            set(g) == set(w)
        } else if let Some(kept) = w.strip_suffix(" (+") {
            g.starts_with(&format!("{kept} (+")) && g.ends_with(" more connections)")
        } else {
            g == w
        };
        assert!(
            same,
            "client {} {} {}: column {col}: got {g:?}, want {w:?}",
            got["ip"], got["via"], got["direction"]
        );
    }
}

#[test]
fn per_client_view_filters_searches_and_downloads_what_the_csv_report_says() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium not found and CI is set: .ci/run installs Debian's chromium");
        }
        eprintln!(
            "SKIPPED html_clients: no chromium found (apt-get install chromium, or set CHROMIUM)"
        );
        return;
    };
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/html_clients");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (page, csv) = reports(&work);

    let cases = cases();
    let cases_file = work.join("cases.json");
    std::fs::write(&cases_file, serde_json::to_string(&cases).unwrap()).unwrap();
    let expected = python(&[
        "expect",
        csv.to_str().unwrap(),
        cases_file.to_str().unwrap(),
    ]);
    let total = expected["clients"].as_u64().unwrap() as usize;
    assert!(total > 300, "only {total} clients in the census");
    let header: Vec<String> = serde_json::from_value(expected["header"].clone()).unwrap();

    // Scripts run by hash only: no 'unsafe-inline' for scripts, so markup smuggled into
    // the page could not run one (Chromium checks each script against the hashes).
    let html = std::fs::read_to_string(&page).unwrap();
    let csp_at = html.find("Content-Security-Policy\" content=\"").unwrap();
    let csp = &html[csp_at..csp_at + html[csp_at..].find("\">").unwrap()];
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    let sources: Vec<&str> = script_src.split_whitespace().skip(1).collect();
    assert_eq!(sources.len(), 2, "{script_src}");
    assert!(
        sources.iter().all(|s| s.starts_with("'sha256-")),
        "{script_src}"
    );

    let url = format!("file://{}", page.display());
    for (i, (case, want)) in cases
        .iter()
        .zip(expected["cases"].as_array().unwrap())
        .enumerate()
    {
        let want_keys = keys_of(want);
        // A filter that keeps every client or none would show nothing.
        if case["service"] == ABSENT_SERVICE {
            assert!(want_keys.is_empty(), "{ABSENT_SERVICE} is in the census");
        } else if i > 0 {
            assert!(
                !want_keys.is_empty() && want_keys.len() < total,
                "case {case} selects {} of {total} clients: pick another",
                want_keys.len()
            );
        }
        let netlog = work.join(format!("netlog-{i}.json"));
        let out = run_chromium(
            &browser,
            &work,
            &format!("case{i}"),
            &[
                "--window-size=1400,2400".into(),
                "--dump-dom".into(),
                format!("--log-net-log={}", netlog.display()),
                format!("{url}#{}", fragment(case)),
            ],
        );
        let console = console_lines(&out.stderr);
        assert!(
            console.is_empty(),
            "case {case}: console output:\n{}",
            console.join("\n")
        );
        assert_eq!(page_requests(&netlog), Vec::<String>::new(), "case {case}");
        let dom_file = work.join(format!("dom-{i}.html"));
        std::fs::write(&dom_file, &out.stdout).unwrap();
        let shown = table(&dom_file);
        assert_eq!(
            shown.view["data-ready"], "yes",
            "case {case}: script did not finish"
        );
        assert_eq!(
            shown.view["data-matches"],
            want_keys.len().to_string(),
            "case {case}"
        );
        assert_eq!(shown.keys, want_keys, "case {case}: rows shown");
        // Values from the wire are text: the table holds rows and cells, nothing else.
        if !want_keys.is_empty() {
            assert_eq!(
                shown.tags,
                ["td", "tr"],
                "case {case}: markup inside the table"
            );
        }
    }

    // Without JavaScript the view stays hidden and the static table has every report row.
    // (A copy of the page whose policy allows no script: Chromium's switch that disables
    // scripts also stops --dump-dom.)
    let noscript = work.join("census-noscript.html");
    std::fs::write(
        &noscript,
        html.replacen(script_src, " script-src 'none'", 1),
    )
    .unwrap();
    let out = run_chromium(
        &browser,
        &work,
        "noscript",
        &[
            "--dump-dom".into(),
            format!("file://{}", noscript.display()),
        ],
    );
    let dom = String::from_utf8(out.stdout).unwrap();
    assert!(
        dom.contains("<section id=\"client-view\" hidden=\"\">"),
        "the view shows without a script"
    );
    let report_rows = python_csv_rows(&csv);
    let static_table = &dom[dom.find("<table id=\"clients\"").unwrap()..];
    let static_table = &static_table[..static_table.find("</table>").unwrap()];
    assert_eq!(
        static_table.matches("<tr class=").count(),
        report_rows,
        "static table rows"
    );

    // Hostile values as the clients were given them (pcaps/names/expected_hostile.json):
    // each SNI is the text of its client's SNI cell, the EHLO name that of the Names cell.
    let hostile: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/names/expected_hostile.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let all = table(&work.join("dom-0.html"));
    let cell = |ip: &str, column: usize| -> String {
        let row = all
            .rows
            .iter()
            .find(|r| r["ip"] == ip && r["direction"] == "inbound")
            .unwrap_or_else(|| panic!("no row for {ip}"));
        row["cells"][column].as_str().unwrap().to_string()
    };
    const SNI: usize = 10;
    const NAMES: usize = 11;
    for (ip, sni) in hostile["sni"].as_object().unwrap() {
        let sni = sni.as_str().unwrap();
        assert!(
            cell(ip, SNI).split("; ").any(|v| v == sni),
            "{ip}: SNI cell {:?} lacks {sni:?}",
            cell(ip, SNI)
        );
    }
    for (ip, ehlo) in hostile["ehlo"].as_object().unwrap() {
        let ehlo = ehlo.as_str().unwrap();
        assert!(
            cell(ip, NAMES).contains(&format!("{ehlo} (ehlo)")),
            "{ip}: names cell {:?} lacks {ehlo:?}",
            cell(ip, NAMES)
        );
    }

    // The download button: every client, and a search that finds the hostile SNIs. The
    // file is what Chromium saved; `download=1` in the fragment presses the button.
    for (tag, case) in [("all", json!({})), ("hostile", json!({ "q": "127.0.0." }))] {
        let mut with_download = case.clone();
        with_download["download"] = json!("1");
        let (bytes, log) = browser::download(
            &browser,
            &work,
            &format!("download-{tag}"),
            &format!("{url}#{}", fragment(&with_download)),
            "clients.csv",
        );
        let console = console_lines(&log);
        assert!(
            console.is_empty(),
            "download {tag}: console output:\n{}",
            console.join("\n")
        );
        let file = work.join(format!("clients-{tag}.csv"));
        std::fs::write(&file, &bytes).unwrap();
        let got = python(&["download", file.to_str().unwrap()]);
        let got_header: Vec<String> = serde_json::from_value(got["header"].clone()).unwrap();
        assert_eq!(got_header, header, "download {tag}: header");
        let one = work.join(format!("case-{tag}.json"));
        std::fs::write(&one, serde_json::to_string(&[case]).unwrap()).unwrap();
        let want = python(&["expect", csv.to_str().unwrap(), one.to_str().unwrap()]);
        let want_rows = want["cases"][0]["rows"].as_array().unwrap();
        let mut got_rows = got["rows"].as_array().unwrap().clone();
        let key = |r: &Value| {
            (
                r["ip"].as_str().unwrap().to_string(),
                r["via"].as_str().unwrap().to_string(),
                r["direction"].as_str().unwrap().to_string(),
            )
        };
        got_rows.sort_by_key(key);
        assert_eq!(got_rows.len(), want_rows.len(), "download {tag}: rows");
        for (g, w) in got_rows.iter().zip(want_rows) {
            assert_eq!(key(g), key(w), "download {tag}: clients");
            assert_row_eq(g, w, &header);
        }
        if tag == "hostile" {
            // The formula SNI reaches the spreadsheet as text: a quote in front.
            let formula = hostile["sni"]["127.0.0.2"].as_str().unwrap();
            let row = got_rows.iter().find(|r| r["ip"] == "127.0.0.2").unwrap();
            assert!(
                row["sni"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("'{formula}")),
                "sni cell {:?}",
                row["sni"]
            );
        }
    }
}
