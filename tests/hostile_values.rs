//! Values chosen by whoever sends them, in every report format (issue 23.5).
//!
//! `pcaps/names/hostile_values.pcap` was made by `pcaps/names/make_hostile.sh`: OpenSSL's
//! `s_client -servername` with a spreadsheet formula, HTML/Markdown text and terminal escape
//! sequences as SNIs (one client address each), and Python's smtplib saying EHLO with a
//! formula, HTML and escapes. `expected_hostile.json` holds the values the clients were
//! given. The reports are read back by independent parsers: Python's `csv` module and
//! `html.parser`, and a GitHub-Flavoured-Markdown table split done in Python.

use std::path::{Path, PathBuf};
use std::process::Command;

fn pcap() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/names/hostile_values.pcap")
}

fn expected() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/names/expected_hostile.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlscensus-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `tlscensus read hostile_values.pcap --report DIR/r.EXT` for each extension; the table.
fn reports(dir: &Path, extensions: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tlscensus"));
    cmd.arg("read").arg(pcap());
    for ext in extensions {
        cmd.arg("--report").arg(dir.join(format!("r.{ext}")));
    }
    let out = cmd.output().expect("run tlscensus");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the table is UTF-8")
}

/// Run a Python script with arguments; its standard output.
fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs (Debian's python3)");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// SNI by client address, as the clients were given them.
fn snis() -> Vec<(String, String)> {
    expected()["sni"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(ip, sni)| (ip.clone(), sni.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn csv_cells_never_start_a_formula_and_keep_the_value() {
    let dir = scratch("csv");
    reports(&dir, &["csv"]);
    // Python's csv module reads the file; it prints each row as JSON.
    let rows = python(
        "import csv, json, sys\n\
         for row in csv.DictReader(open(sys.argv[1], newline='', encoding='utf-8')):\n\
         \x20   print(json.dumps(row))\n",
        &[dir.join("r.csv").to_str().unwrap()],
    );
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.len() >= 4, "{rows:?}");
    for row in &rows {
        for (column, cell) in row {
            let cell = cell.as_str().unwrap();
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{column} = {cell:?}: a spreadsheet would run it"
            );
        }
    }
    for (ip, sni) in snis() {
        let row = rows
            .iter()
            .find(|r| r["ip"] == ip.as_str())
            .unwrap_or_else(|| panic!("no row for {ip}"));
        let cell = row["sni"].as_str().unwrap();
        // The neutralised value is the sent value after the quote, and only a value a
        // spreadsheet would run has one.
        let want = if sni.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{sni}")
        } else {
            sni.clone()
        };
        assert_eq!(cell, want, "{ip}");
    }
    let (ip, ehlo) = ehlo();
    let row = rows.iter().find(|r| r["ip"] == ip.as_str()).unwrap();
    assert_eq!(row["names"].as_str().unwrap(), format!("'{ehlo} (ehlo)"));
}

/// The EHLO client's address and its EHLO argument, as smtplib was given it.
fn ehlo() -> (String, String) {
    let e = expected();
    let (ip, ehlo) = e["ehlo"].as_object().unwrap().iter().next().unwrap();
    (ip.clone(), ehlo.as_str().unwrap().to_string())
}

#[test]
fn markdown_cells_hold_the_value_and_nothing_more() {
    let dir = scratch("md");
    reports(&dir, &["md"]);
    // GFM tables: a row is split at every `|` not escaped by a backslash; backslash
    // escapes and HTML entities are then undone in the cell, as a renderer shows it. Every
    // row of a table must have the header's number of cells.
    let script = r#"
import html, json, re, sys
tables, current = [], None
for line in open(sys.argv[1], encoding="utf-8").read().split("\n"):
    if line.startswith("|"):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if current is None:
            current = {"header": cells, "rows": []}
            tables.append(current)
        elif not set("".join(cells)) <= set("-:"):
            current["rows"].append([html.unescape(re.sub(r"\\(.)", r"\1", c)) for c in cells])
    else:
        current = None
print(json.dumps(tables))
"#;
    let tables: serde_json::Value =
        serde_json::from_str(&python(script, &[dir.join("r.md").to_str().unwrap()])).unwrap();
    let tables = tables.as_array().unwrap();
    let clients = tables
        .iter()
        .find(|t| t["header"][0] == "client")
        .expect("a clients table");
    let header: Vec<&str> = clients["header"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    for t in tables {
        let width = t["header"].as_array().unwrap().len();
        for row in t["rows"].as_array().unwrap() {
            assert_eq!(row.as_array().unwrap().len(), width, "{row}");
        }
    }
    let sni_at = header.iter().position(|h| *h == "SNI").unwrap();
    for (ip, sni) in snis() {
        let row = clients["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r[0] == ip.as_str())
            .unwrap_or_else(|| panic!("no row for {ip}"));
        // A line break in the value would end the row; none was sent, so it is whole.
        assert_eq!(row[sni_at], sni.as_str(), "{ip}");
    }
    let names_at = header.iter().position(|h| *h == "names").unwrap();
    let (ip, ehlo) = ehlo();
    let row = clients["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0] == ip.as_str())
        .unwrap();
    assert_eq!(row[names_at], format!("{ehlo} (ehlo)").as_str());
    // No raw tag: every `<` from the wire arrives as an entity.
    let text = std::fs::read_to_string(dir.join("r.md")).unwrap();
    assert!(
        !text.contains("<b>") && !text.contains("<script>"),
        "{text}"
    );
}

#[test]
fn html_shows_the_value_as_text() {
    let dir = scratch("html");
    reports(&dir, &["html"]);
    // Python's html.parser: the tags of the page, and its text with entities decoded.
    let script = r#"
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], []
    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
    def handle_data(self, data):
        self.text.append(data)
p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
print(json.dumps({"tags": sorted(set(p.tags)), "text": p.text}))
"#;
    let page: serde_json::Value =
        serde_json::from_str(&python(script, &[dir.join("r.html").to_str().unwrap()])).unwrap();
    let tags: Vec<&str> = page["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(!tags.contains(&"b"), "an SNI became a tag: {tags:?}");
    let text: Vec<&str> = page["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for (ip, sni) in snis() {
        assert!(
            text.iter().any(|t| t.contains(sni.as_str())),
            "{ip}: {sni:?} is not in the page's text"
        );
    }
    let (_, ehlo) = ehlo();
    assert!(
        text.iter().any(|t| t.contains(ehlo.as_str())),
        "{ehlo:?} is not in the page's text"
    );
}

/// The terminal table prints no control character but line ends, and the EHLO's text
/// without its escape sequences (ECMA-48 CSI `ESC [ 1;31 m` and `ESC [ 0 m`).
#[test]
fn table_prints_no_escape_sequence() {
    let dir = scratch("table");
    let table = reports(&dir, &[]);
    let controls: Vec<char> = table
        .chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect();
    assert!(controls.is_empty(), "{controls:?} in\n{table}");
    let (_, ehlo) = ehlo();
    let shown = ehlo.replace("\u{1b}[1;31m", "").replace("\u{1b}[0m", "");
    assert!(table.contains(&format!("names: {shown} (ehlo)")), "{table}");
}

/// The JSON report keeps the value exactly (JSON escapes what it must).
#[test]
fn json_keeps_the_value() {
    let dir = scratch("json");
    reports(&dir, &["json"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let (ip, ehlo) = ehlo();
    let client = json["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ip"] == ip.as_str())
        .unwrap();
    assert_eq!(client["names"][0]["name"], ehlo.as_str());
    assert_eq!(client["names"][0]["source"], "ehlo");
}
