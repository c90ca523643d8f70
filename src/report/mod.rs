//! The census in the forms admins use: a terminal table, CSV for the remediation
//! spreadsheet, JSON for tools (and for `tlscensus merge`), Markdown, and a self-contained
//! HTML page for the change board.
//!
//! A report of many clients classifies each of them and lays out a line or a row for each
//! client and service, reading the whole census from cold memory. That work is spread over
//! the report threads, rayon's global pool: [`use_threads`] sizes it to the run's
//! `--threads`, since by the time a `read` writes its reports the workers are done.

pub mod atomic;
pub mod certificates;
pub mod csv;
pub mod html;
pub mod html_clients;
pub mod json;
pub mod markdown;
pub mod table;
pub mod terminal;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::census::version::{parse_version, push_short};
use crate::census::{Census, ClientSummary, CountMap, Seen, ServiceCountsInner, ServiceSummary};

/// Build reports on `threads` threads (at least one). Only the first call of a process
/// counts; without one, rayon's default applies (one thread per core).
pub fn use_threads(threads: usize) {
    // An error means the pool exists already: its size stands.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("tlscensus-report{i}"))
        .build_global();
}

/// A report format, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Markdown,
    Html,
    /// The terminal table (`.txt`).
    Table,
}

impl Format {
    /// The format for a path's extension (`.json`, `.csv`, `.md`, `.html`/`.htm`, `.txt`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "json" => Format::Json,
            "csv" => Format::Csv,
            "md" | "markdown" => Format::Markdown,
            "html" | "htm" => Format::Html,
            "txt" => Format::Table,
            _ => return None,
        })
    }
}

/// A `--report` target: its path and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub format: Format,
}

impl Target {
    /// Parse a `--report` value; the extension names the format.
    pub fn parse(path: &Path) -> Result<Target, String> {
        match Format::from_path(path) {
            Some(format) => Ok(Target {
                path: path.to_path_buf(),
                format,
            }),
            None => Err(format!(
                "{}: the report format follows the extension: .json, .csv, .md, .html or .txt",
                path.display()
            )),
        }
    }
}

/// Write the census in a format.
pub fn write(census: &Census, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => json::write(census, out),
        Format::Csv => csv::write(census, out),
        Format::Markdown => markdown::write(census, out),
        Format::Html => html::write(census, out),
        Format::Table => table::write(census, out),
    }
}

/// Write the census to a report file, atomically (see [`atomic`]): a reader never sees a
/// half-written report, even while a live capture rewrites it.
pub fn write_file(census: &Census, target: &Target) -> io::Result<()> {
    atomic::write_with(&target.path, |out| write(census, target.format, out))?;
    // CSV holds one table a file: the certificate inventory gets its own, beside it.
    if target.format == Format::Csv && !census.certificates.is_empty() {
        let path = certificates::csv_path(&target.path);
        atomic::write_with(&path, |out| certificates::write_csv(census, out))?;
    }
    Ok(())
}

/// `1.0`, `1.0-1.3`, or `-`: the range of versions with a non-zero count.
pub(crate) fn version_range(counts: &CountMap) -> String {
    let mut text = String::new();
    push_version_range(&mut text, counts);
    text
}

/// [`version_range`], appended to `text` (the table writes thousands of them).
pub(crate) fn push_version_range(text: &mut String, counts: &CountMap) {
    // Oldest and newest by code, unknown names last, ties by name.
    let mut versions = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, _)| (parse_version(name).unwrap_or(u16::MAX), name));
    let range = versions
        .next()
        .map(|first| versions.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v))));
    match range {
        Some((lo, hi)) if lo.0 == hi.0 => push_short(text, lo.1),
        Some((lo, hi)) => {
            push_short(text, lo.1);
            text.push('-');
            push_short(text, hi.1);
        }
        None => text.push('-'),
    }
}

/// The version columns of tables and CSV, oldest first: (label, which versions count).
pub(crate) const VERSION_COLUMNS: [(&str, &[&str]); 5] = [
    ("SSL", &["SSLv2", "SSLv3"]),
    ("1.0", &["TLSv1.0"]),
    ("1.1", &["TLSv1.1"]),
    ("1.2", &["TLSv1.2"]),
    ("1.3", &["TLSv1.3"]),
];

/// Connections per version column, plus the rest (TLS 1.3 drafts, unknown codes) last.
pub(crate) fn version_columns(counts: &CountMap) -> [u64; 6] {
    let mut out = [0u64; 6];
    for (v, n) in counts {
        let slot = VERSION_COLUMNS
            .iter()
            .position(|(_, names)| names.contains(&v))
            .unwrap_or(5);
        out[slot] += n;
    }
    out
}

/// `12.3` milliseconds from microseconds.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// `reason: n; reason: n`.
pub(crate) fn counted(map: &CountMap) -> String {
    map.iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where a client's evidence on a service came from: `smtp-log+wire`, or `-` (a report
/// written before logs were read).
pub(crate) fn sources_label(s: &ServiceCountsInner) -> String {
    if s.sources.is_empty() {
        return "-".into();
    }
    s.sources.keys().collect::<Vec<_>>().join("+")
}

/// `yes: reason: n; ...` (what the policy judged, from the wire or, where the wire showed
/// no offer, from the logs' negotiated version) or `no`.
pub(crate) fn would_fail_text(s: &ServiceCountsInner) -> String {
    let reasons: Vec<String> = s
        .would_fail_reasons()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect();
    if reasons.is_empty() {
        "no".into()
    } else {
        format!("yes: {}", reasons.join("; "))
    }
}

/// The versions offered, or `logs` when only server logs saw the client (offers unknown).
pub(crate) fn offered_label(s: &ServiceCountsInner) -> String {
    if s.max_offered.is_empty() && s.negotiated_only() > 0 {
        return "logs".into();
    }
    version_range(&s.max_offered)
}

/// What the table, Markdown and HTML reports open with: the clients (in report order), the
/// per-service totals, the time span and the headline counts.
pub(crate) struct Overview<'a> {
    pub clients: Vec<ClientSummary<'a>>,
    pub services: BTreeMap<String, ServiceSummary>,
    /// First and last connection, as `short_time` shows them.
    pub first: String,
    pub last: String,
    pub would_fail: usize,
    pub at_risk: usize,
}

impl<'a> Overview<'a> {
    pub fn of(census: &'a Census) -> Self {
        let (clients, services) = census.clients_and_services();
        let first = short_time(
            clients
                .iter()
                .filter_map(|c| c.first_seen)
                .min()
                .map(Seen::text)
                .as_deref(),
        );
        let last = short_time(
            clients
                .iter()
                .filter_map(|c| c.last_seen)
                .max()
                .map(Seen::text)
                .as_deref(),
        );
        let would_fail = clients.iter().filter(|c| c.would_fail).count();
        let at_risk = clients.iter().filter(|c| c.primary.is_at_risk()).count();
        Overview {
            clients,
            services,
            first,
            last,
            would_fail,
            at_risk,
        }
    }
}

/// `2024-05-01 10:00:01` from an RFC 3339 timestamp (to the second, UTC).
pub(crate) fn short_time(ts: Option<&str>) -> String {
    match ts {
        Some(ts) if ts.len() >= 19 => ts[..19].replace('T', " "),
        Some(ts) => ts.to_string(),
        None => "-".into(),
    }
}

/// The names of a client's address, `name (source), ...`, or empty (see
/// [`crate::census::names`]). Values from the wire: each format escapes them its own way.
pub(crate) fn names_of(census: &Census, key: &crate::census::ClientKey) -> String {
    census
        .names
        .get(&key.ip)
        .map(|n| n.summary())
        .unwrap_or_default()
}

/// A client's software hints and, after ` — fix: `, the fixes their families are known by
/// (see [`crate::census::software`]); empty when the fingerprint data has none.
pub(crate) fn software_of(hints: &[crate::census::software::Hint]) -> String {
    let mut text = crate::census::software::summary(hints);
    let fixes = crate::census::software::advice_summary(hints);
    if !fixes.is_empty() {
        text.push_str(" — fix: ");
        text.push_str(&fixes);
    }
    text
}

/// The client as one short string: `192.0.2.1` or `192.0.2.1 via 10.0.0.9`.
pub(crate) fn client_label(key: &crate::census::ClientKey) -> String {
    let mut text = String::new();
    push_client_label(&mut text, key);
    text
}

/// [`client_label`], appended to `text`.
pub(crate) fn push_client_label(text: &mut String, key: &crate::census::ClientKey) {
    use std::fmt::Write as _;
    let fits = "formatting into a String cannot fail";
    match key.via {
        Some(via) => write!(text, "{} via {via}", key.ip).expect(fits),
        None => write!(text, "{}", key.ip).expect(fits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(entries: &[(&str, u64)]) -> CountMap {
        let mut map = CountMap::new();
        for (name, n) in entries {
            map.add(name, *n);
        }
        map
    }

    /// Versions order by their wire code (RFC 8446 §B.1: SSL 3.0 0x0300 … TLS 1.3
    /// 0x0304; a draft's 0x7f12 above them), names that are no version at all last; zero
    /// counts do not count.
    #[test]
    fn version_range_spans_the_oldest_to_the_newest_version_seen() {
        let cases: [(&[(&str, u64)], &str); 7] = [
            (&[], "-"),
            (&[("TLSv1.2", 4)], "1.2"),
            (&[("TLSv1.2", 3), ("TLSv1.0", 1)], "1.0-1.2"),
            (&[("TLSv1.3", 2), ("SSLv3", 1), ("TLSv1.1", 5)], "SSL3-1.3"),
            (&[("TLSv1.0", 0), ("TLSv1.2", 1)], "1.2"),
            (&[("0x7f12", 1), ("TLSv1.2", 1)], "1.2-0x7f12"),
            (&[("bogus", 1), ("0x7f12", 1), ("TLSv1.0", 2)], "1.0-bogus"),
        ];
        for (entries, want) in cases {
            assert_eq!(version_range(&counts(entries)), want, "{entries:?}");
        }
    }
}
