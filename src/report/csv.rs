//! The CSV report: one row per client and service, at-risk clients first, for the
//! spreadsheet the remediation plan lives in. Lists inside a cell are `; `-separated.

use std::io::{self, Write};

use super::{counted, version_columns, VERSION_COLUMNS};
use crate::census::{ciphers, Category, Census};

fn names(categories: &[Category]) -> String {
    categories
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Column names, in order.
pub fn header() -> Vec<String> {
    let mut h: Vec<String> = [
        "ip",
        "via",
        "direction",
        "primary",
        "categories",
        "would_fail",
        "would_fail_reasons",
        "service",
        "service_categories",
        "connections",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
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
            "sources",
            "negotiated_only",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    h
}

pub fn write(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(header())?;
    let clients = census.clients();
    for r in crate::census::rows(&clients) {
        let (c, service, s) = (r.client, r.service, r.counts);
        {
            let mut row = vec![
                c.key.ip.to_string(),
                c.key.via.map(|v| v.to_string()).unwrap_or_default(),
                c.key.direction.name().to_string(),
                c.primary.name().to_string(),
                names(&c.categories),
                if c.would_fail { "yes" } else { "no" }.to_string(),
                c.would_fail_reasons.join("; "),
                service.to_string(),
                names(&r.categories),
                s.connections.to_string(),
            ];
            for counts in [&s.max_offered, &s.negotiated] {
                row.extend(version_columns(counts).iter().map(u64::to_string));
            }
            let suites = s
                .cipher_suites
                .values
                .keys()
                .map(|code| ciphers::parse_code(code).map_or(code.to_string(), ciphers::label))
                .collect::<Vec<_>>();
            let mut suites = suites.join("; ");
            if s.cipher_suites.other > 0 {
                suites.push_str(&format!("; (+{} more connections)", s.cipher_suites.other));
            }
            let joined = |set: &crate::census::capped::CappedSet| set.summary().replace(", ", "; ");
            row.extend([
                s.plaintext.to_string(),
                counted(&s.plaintext_reasons),
                s.failed.to_string(),
                counted(&s.failures),
                s.incomplete.to_string(),
                s.weak_cipher.to_string(),
                suites,
                joined(&s.sni),
                joined(&s.alpn),
                joined(&s.ja4),
                joined(&s.servers),
                s.first_seen.clone().unwrap_or_default(),
                s.last_seen.clone().unwrap_or_default(),
                s.sources.keys().collect::<Vec<_>>().join("; "),
                s.negotiated_only.to_string(),
            ]);
            w.write_record(&row)?;
        }
    }
    w.flush()
}
