//! The certificate inventory in every report format: the JSON `certificates` key (and
//! reading it back for `merge`), a CSV file of its own beside the main one, and the
//! section of the Markdown, HTML and terminal reports.

use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};

use crate::census::certificates::{
    CertificateRow, Flag, Inventory, ServerCertificates, ServerService,
};
use crate::census::Census;
use crate::record::rfc3339;

/// The capture's end as the reports print it (RFC 3339), if any handshake was seen.
fn end_text(end: Option<i64>) -> Option<String> {
    end.map(|secs| rfc3339(secs.saturating_mul(1_000_000_000)))
}

/// The JSON report's `certificates` value: `capture_end` (what expiry is measured
/// against), `flagged` (certificates per flag), and `servers`, one object per server and
/// service with its counts and its certificates by SHA-256, each with its `flags`.
pub fn json(census: &Census) -> Value {
    let end = census.capture_end();
    let inventory = &census.certificates;
    let servers: Vec<Value> = inventory
        .servers
        .iter()
        .map(|(key, s)| {
            let certificates: serde_json::Map<String, Value> = s
                .certificates
                .iter()
                .map(|(sha256, kept)| {
                    let mut v = serde_json::to_value(kept).expect("a certificate serialises");
                    let flags: Vec<&str> = crate::census::certificates::flags(&kept.leaf, end)
                        .iter()
                        .map(|f| f.name())
                        .collect();
                    v["flags"] = json!(flags);
                    (sha256.clone(), v)
                })
                .collect();
            json!({
                "server": key.server,
                "service": key.service,
                "connections": s.connections,
                "not_seen_whole": s.not_seen_whole,
                "leaf_missing": s.leaf_missing,
                "other": s.other,
                "certificates": certificates,
            })
        })
        .collect();
    let flagged: serde_json::Map<String, Value> = inventory
        .flag_counts(end)
        .into_iter()
        .map(|(flag, n)| (flag.name().to_string(), json!(n)))
        .collect();
    json!({
        "capture_end": end_text(end),
        "flagged": flagged,
        "servers": servers,
    })
}

#[derive(Deserialize)]
struct ServerIn {
    server: IpAddr,
    service: String,
    #[serde(flatten)]
    counts: ServerCertificates,
}

#[derive(Deserialize, Default)]
pub(crate) struct InventoryIn {
    #[serde(default)]
    servers: Vec<ServerIn>,
}

impl InventoryIn {
    /// The inventory a report wrote (the flags are recomputed, not read).
    pub fn into_inventory(self) -> Inventory {
        let mut inventory = Inventory::default();
        for s in self.servers {
            let key = ServerService {
                server: s.server,
                service: s.service,
            };
            let mut one = Inventory::default();
            one.servers.insert(key, s.counts);
            inventory.merge(&one);
        }
        inventory
    }
}

/// `census-certificates.csv` beside `census.csv`.
pub fn csv_path(report: &Path) -> PathBuf {
    let stem = report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    report.with_file_name(format!("{stem}-certificates.csv"))
}

/// Columns of the certificate CSV.
pub const CSV_HEADER: [&str; 18] = [
    "server",
    "service",
    "flags",
    "connections",
    "common_name",
    "subject",
    "issuer",
    "san_dns",
    "san_ip",
    "serial",
    "not_before",
    "not_after",
    "key_type",
    "key_bits",
    "signature_algorithm",
    "self_signed",
    "chain_length",
    "sha256",
];

/// The certificate CSV: one row per server, service and certificate, flagged ones first.
pub fn write_csv(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for row in census.certificates.rows(census.capture_end()) {
        let leaf = &row.kept.leaf;
        w.write_record([
            row.key.server.to_string(),
            row.key.service.clone(),
            flag_list(&row.flags, "; "),
            row.kept.connections.to_string(),
            leaf.common_name.clone().unwrap_or_default(),
            leaf.subject.clone(),
            leaf.issuer.clone(),
            leaf.san_dns.join("; "),
            leaf.san_ip.join("; "),
            leaf.serial.clone(),
            leaf.not_before.clone(),
            leaf.not_after.clone(),
            leaf.key_type.clone(),
            leaf.key_bits.to_string(),
            leaf.signature_algorithm.clone(),
            if leaf.self_signed { "yes" } else { "no" }.to_string(),
            row.kept
                .chain_length
                .map_or(String::new(), |n| n.to_string()),
            row.sha256.to_string(),
        ])?;
    }
    w.flush()
}

/// `expired, self_signed`.
pub fn flag_list(flags: &[Flag], sep: &str) -> String {
    flags.iter().map(|f| f.name()).collect::<Vec<_>>().join(sep)
}

/// The cells the Markdown, HTML and terminal reports show for one certificate, in order
/// of [`TEXT_COLUMNS`].
pub fn text_cells(row: &CertificateRow<'_>) -> [String; 9] {
    let leaf = &row.kept.leaf;
    let name = leaf
        .common_name
        .clone()
        .or_else(|| leaf.san_dns.first().cloned())
        .unwrap_or_else(|| leaf.subject.clone());
    [
        row.key.server.to_string(),
        row.key.service.clone(),
        name,
        leaf.issuer.clone(),
        leaf.not_after
            .get(..10)
            .unwrap_or(&leaf.not_after)
            .to_string(),
        format!("{} {}", leaf.key_type, leaf.key_bits),
        leaf.signature_algorithm.clone(),
        if row.flags.is_empty() {
            "-".into()
        } else {
            flag_list(&row.flags, ", ")
        },
        row.kept.connections.to_string(),
    ]
}

pub const TEXT_COLUMNS: [&str; 9] = [
    "server",
    "service",
    "name",
    "issuer",
    "expires",
    "key",
    "signature",
    "flags",
    "connections",
];

/// The headline: `3 certificates on 2 servers, measured at 2026-12-07T14:18:30Z: expired 1, ...`.
pub fn headline(census: &Census, end: Option<i64>) -> String {
    let inventory = &census.certificates;
    let certificates: usize = inventory
        .servers
        .values()
        .map(|s| s.certificates.len())
        .sum();
    let counts = inventory.flag_counts(end);
    let flagged = Flag::ALL
        .iter()
        .map(|f| format!("{} {}", f.name(), counts.get(f).copied().unwrap_or(0)))
        .collect::<Vec<_>>()
        .join(", ");
    let not_whole: u64 = inventory.servers.values().map(|s| s.not_seen_whole).sum();
    let mut text = format!(
        "{certificates} server certificates on {} server/service pairs, expiry measured at \
         the last handshake ({}): {flagged}",
        inventory.servers.len(),
        end_text(end).unwrap_or_else(|| "-".into())
    );
    if not_whole > 0 {
        text.push_str(&format!(
            "; {not_whole} certificate messages not seen whole"
        ));
    }
    text
}

/// Make text safe inside a Markdown table cell.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report's `## Server certificates` section (nothing without certificates).
pub fn write_markdown(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    if census.certificates.is_empty() {
        return Ok(());
    }
    // A walk over every client: once per report.
    let end = census.capture_end();
    writeln!(out)?;
    writeln!(out, "## Server certificates (flagged first)")?;
    writeln!(out)?;
    writeln!(out, "{}.", headline(census, end))?;
    writeln!(out)?;
    writeln!(out, "| {} |", TEXT_COLUMNS.join(" | "))?;
    writeln!(out, "|---|---|---|---|---|---|---|---|--:|")?;
    for row in census.certificates.rows(end) {
        let cells: Vec<String> = text_cells(&row).iter().map(|c| md_cell(c)).collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    Ok(())
}

/// The terminal report's certificate section (nothing without certificates): two lines a
/// certificate, the flags and name first, wrapped to the table's width.
pub fn write_table(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    if census.certificates.is_empty() {
        return Ok(());
    }
    // A walk over every client: once per report.
    write_table_at(census, census.capture_end(), out)
}

/// [`write_table`] for a capture that ended at `end` ([`Census::capture_end`]), when the
/// caller knows it already.
pub fn write_table_at(census: &Census, end: Option<i64>, out: &mut dyn Write) -> io::Result<()> {
    if census.certificates.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    super::table::wrap(
        &format!("Server certificates: {}", headline(census, end)),
        0,
        out,
    )?;
    for row in census.certificates.rows(end) {
        let [server, service, name, issuer, expires, key, signature, flags, conns] =
            text_cells(&row);
        let flags = if row.flags.is_empty() {
            "ok".into()
        } else {
            flags
        };
        super::table::wrap(&format!("{flags}: {name} expires {expires}"), 2, out)?;
        super::table::wrap(
            &format!(
                "{server} {service}, {key}, {signature}, issuer {issuer}, {}",
                super::table::plural(conns.parse().unwrap_or(0), "connection")
            ),
            6,
            out,
        )?;
    }
    Ok(())
}

/// The HTML report's certificate section, appended to `o` (nothing without certificates).
pub fn write_html(census: &Census, o: &mut String, esc: fn(&str) -> String) {
    use std::fmt::Write as _;
    if census.certificates.is_empty() {
        return;
    }
    // A walk over every client: once per report.
    let end = census.capture_end();
    let _ = write!(
        o,
        "<h2>Server certificates, flagged first</h2>\n<p>{}.</p>\n\
         <table id=\"certificates\" class=\"sortable\"><thead><tr>",
        esc(&headline(census, end))
    );
    for column in TEXT_COLUMNS {
        let _ = write!(o, "<th>{}</th>", esc(column));
    }
    o.push_str("</tr></thead><tbody>\n");
    for row in census.certificates.rows(end) {
        o.push_str("<tr>");
        for (i, cell) in text_cells(&row).iter().enumerate() {
            let class = if i == TEXT_COLUMNS.len() - 1 {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(o, "<td{class}>{}</td>", esc(cell));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</tbody></table>\n");
}
