//! The CSV report: one row per client and service, at-risk clients first, for the
//! spreadsheet the remediation plan lives in. Lists inside a cell are `; `-separated.
//!
//! Every cell that a spreadsheet would read as a formula (one beginning with `=`, `+`, `-`,
//! `@`, tab or carriage return) is written with a `'` in front, as OWASP's "CSV Injection"
//! page advises: SNIs, ALPNs and EHLO names are chosen by whoever sends them, and
//! `=HYPERLINK(...)` in an SNI cell would otherwise run when the sheet is opened.

use std::io::{self, Write};

use super::{counted, version_columns, VERSION_COLUMNS};
use crate::census::{ciphers, software, Category, Census, ClientSummary, ServiceCountsInner};

fn names(categories: &[Category]) -> String {
    categories
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether a spreadsheet would take `cell` for a formula (OWASP CSV Injection: cells
/// beginning with `=`, `+`, `-`, `@`, tab or carriage return).
pub fn looks_like_formula(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// Put a `'` in front of a cell a spreadsheet would take for a formula: shown as text, and
/// the quote is what a user who types the value by hand would have typed.
pub fn neutralise_formula(cell: &mut String) {
    if looks_like_formula(cell) {
        cell.insert(0, '\'');
    }
}

/// The leading columns, about the client as a whole.
const CLIENT_COLUMNS: [&str; 7] = [
    "ip",
    "via",
    "direction",
    "primary",
    "categories",
    "would_fail",
    "would_fail_reasons",
];

/// Column names, in order.
pub fn header() -> Vec<String> {
    let mut h: Vec<String> = CLIENT_COLUMNS.iter().map(|s| s.to_string()).collect();
    h.extend(["service".to_string(), "service_categories".to_string()]);
    h.extend(count_columns());
    h
}

/// The columns of the HTML per-client view's download: the report's, with `services` (the
/// client's services, `; `-separated) for `service` and `service_categories`, and the counts
/// summed over the client's services.
pub fn client_header() -> Vec<String> {
    let mut h: Vec<String> = CLIENT_COLUMNS.iter().map(|s| s.to_string()).collect();
    h.push("services".to_string());
    h.extend(count_columns());
    h
}

/// The columns from `connections` on: what was counted on a service (or, summed, a client).
fn count_columns() -> Vec<String> {
    let mut h = vec!["connections".to_string()];
    for prefix in ["offered", "negotiated"] {
        for (label, _) in VERSION_COLUMNS {
            let label = if label == "SSL" {
                "ssl".to_string()
            } else {
                format!("tls{label}")
            };
            h.push(format!("{prefix}_{label}"));
        }
        h.push(format!("{prefix}_other"));
    }
    h.extend(
        [
            "plaintext",
            "plaintext_reasons",
            "failed",
            "failure_reasons",
            "incomplete",
            "weak_cipher",
            "cipher_suites",
            "sni",
            "alpn",
            "ja4",
            "servers",
            "first_seen",
            "last_seen",
            "names",
            "sources",
            "negotiated_only",
            "software",
            "software_advice",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    h
}

/// The cells of [`CLIENT_COLUMNS`], not yet neutralised.
pub(crate) fn client_cells(c: &ClientSummary<'_>) -> Vec<String> {
    vec![
        c.key.ip.to_string(),
        c.key.via.map(|v| v.to_string()).unwrap_or_default(),
        c.key.direction.name().to_string(),
        c.primary.name().to_string(),
        names(&c.categories),
        if c.would_fail { "yes" } else { "no" }.to_string(),
        c.would_fail_reasons.join("; "),
    ]
}

/// The cells of [`count_columns`] for counts `s` of client `c`, not yet neutralised.
pub(crate) fn count_cells(
    census: &Census,
    c: &ClientSummary<'_>,
    s: &ServiceCountsInner,
) -> Vec<String> {
    let mut row = vec![s.connections.to_string()];
    for counts in [&s.max_offered, &s.negotiated] {
        row.extend(version_columns(counts).iter().map(u64::to_string));
    }
    let suites = s
        .cipher_suites()
        .values
        .keys()
        .map(|code| ciphers::parse_code(code).map_or(code.to_string(), ciphers::label))
        .collect::<Vec<_>>();
    let mut suites = suites.join("; ");
    if s.cipher_suites().other > 0 {
        suites.push_str(&format!(
            "; (+{} more connections)",
            s.cipher_suites().other
        ));
    }
    let joined = |set: crate::census::capped::Capped<'_>| set.summary().replace(", ", "; ");
    row.extend([
        s.plaintext().to_string(),
        counted(s.plaintext_reasons()),
        s.failed().to_string(),
        counted(s.failures()),
        s.incomplete().to_string(),
        s.weak_cipher().to_string(),
        suites,
        joined(s.sni()),
        joined(s.alpn()),
        joined(s.ja4()),
        joined(s.servers()),
        s.first_seen().map(|t| t.to_string()).unwrap_or_default(),
        s.last_seen().map(|t| t.to_string()).unwrap_or_default(),
        super::names_of(census, &c.key).replace(", ", "; "),
        s.sources.keys().collect::<Vec<_>>().join("; "),
        s.negotiated_only().to_string(),
    ]);
    row.extend([
        software::summary(&c.software),
        software::advice_summary(&c.software),
    ]);
    row
}

pub fn write(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(header())?;
    // Every row is written through [`neutralise_formula`], so a new column is safe too.
    let clients = census.clients();
    for r in crate::census::rows(&clients) {
        let mut row = client_cells(r.client);
        row.extend([r.service.to_string(), names(&r.categories)]);
        row.extend(count_cells(census, r.client, r.counts));
        row.iter_mut().for_each(neutralise_formula);
        w.write_record(&row)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The six leading characters OWASP's CSV Injection page lists, and text that merely
    /// contains them later on.
    #[test]
    fn only_cells_a_spreadsheet_would_evaluate_get_a_quote() {
        for (cell, want) in [
            ("=1+1", "'=1+1"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("a=1", "a=1"),
            ("example.org", "example.org"),
            ("", ""),
        ] {
            let mut text = cell.to_string();
            neutralise_formula(&mut text);
            assert_eq!(text, want, "{cell:?}");
        }
    }
}
