//! The HTML report's per-client view: one row per client (address, load balancer and
//! direction, as the census keys clients) with filters by category, service and direction, a
//! search box and a download of the rows shown as CSV — all in the page, with no network.
//!
//! The data travels as JSON in a `<script type="application/json">` block, with `<`, `>` and
//! `&` written as `\u003c`, `\u003e`, `\u0026` so no value can end the block; the page's
//! script ([`SCRIPT`], `html_clients.js`) builds the rows with `textContent`. Without
//! JavaScript the section stays hidden and the static tables say it all.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::csv::{client_cells, client_header, count_cells};
use super::{counted, offered_label};
use crate::census::{Category, Census, ClientSummary, ServiceCountsInner};

/// The view's script; allowed by the page's Content Security Policy through its hash.
pub const SCRIPT: &str = include_str!("html_clients.js");

/// Rows put in the table at once; the count says how many more match, and the download
/// holds them all. Tens of thousands of table rows make a browser crawl.
const MAX_ROWS: usize = 2000;

/// The CSV columns the search box looks in.
const SEARCH_COLUMNS: [&str; 10] = [
    "ip",
    "via",
    "services",
    "sni",
    "alpn",
    "ja4",
    "servers",
    "names",
    "software",
    "software_advice",
];

pub const STYLE: &str = r#"
#client-view .filters{margin:6px 0 10px;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center}
#client-view input[type=search]{width:22em}
#client-count{color:#555}
"#;

/// `'sha256-…'`: the CSP source that allows exactly this inline script.
pub fn csp_hash(script: &str) -> String {
    use base64::Engine as _;
    let digest = Sha256::digest(script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// One client as the view's script reads it: its CSV cells (not yet neutralised: the script
/// does it, as it writes the download), which the script also shows and searches, and the
/// few texts the CSV has no cell for.
#[derive(Serialize)]
struct ClientView<'a> {
    /// The primary category's rank, for sorting.
    rank: usize,
    /// (service, the client's primary category on it).
    services: Vec<(&'a str, &'static str)>,
    /// Range of the highest versions offered (`1.0-1.2`), as the other reports show it.
    offered: String,
    /// `TLSv1.2: 3; ...`: the versions the servers selected.
    negotiated: String,
    /// Failure reasons, then why sessions stayed in clear.
    failures: String,
    csv: Vec<String>,
}

fn view_of<'a>(census: &Census, c: &ClientSummary<'a>) -> ClientView<'a> {
    let mut total = ServiceCountsInner::default();
    for s in c.client.services.values() {
        total.merge(s);
    }
    let mut csv = client_cells(c);
    csv.push(
        c.client
            .services
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; "),
    );
    csv.extend(count_cells(census, c, &total));
    let mut failures = counted(total.failures());
    let plaintext = counted(total.plaintext_reasons());
    if !plaintext.is_empty() {
        if !failures.is_empty() {
            failures.push_str("; ");
        }
        failures.push_str("plaintext: ");
        failures.push_str(&plaintext);
    }
    ClientView {
        rank: Category::ALL
            .iter()
            .position(|x| *x == c.primary)
            .unwrap_or(0),
        services: c
            .client
            .services
            .keys()
            .zip(&c.per_service)
            .map(|(name, on)| (name.as_str(), on.found.primary().name()))
            .collect(),
        offered: offered_label(&total),
        negotiated: counted(&total.negotiated),
        failures,
        csv,
    }
}

/// JSON for a data block: `<`, `>` and `&` as `\u` escapes, so no value can close it.
fn push_json_for_script(o: &mut String, value: &impl Serialize) {
    let json = serde_json::to_string(value).expect("the view always serialises");
    for ch in json.chars() {
        match ch {
            '<' => o.push_str("\\u003c"),
            '>' => o.push_str("\\u003e"),
            '&' => o.push_str("\\u0026"),
            c => o.push(c),
        }
    }
}

/// The section: its controls and table head, then the data block, written a client at a
/// time.
pub(super) fn write_view(
    census: &Census,
    clients: &[ClientSummary<'_>],
    o: &mut String,
    out: &mut dyn Write,
) -> io::Result<()> {
    o.push_str(
        "<h2>Clients, one row each</h2>\n<noscript><p>The per-client view (filters, search, \
         CSV download) needs JavaScript; the table below lists every client and service.</p>\
         </noscript>\n<section id=\"client-view\" hidden>\n<p>One row per client address and \
         direction. Filter, search (address, names, SNI, ALPN, JA4, servers, software), and \
         download the clients shown as CSV. The filters are kept in the page's address, so a \
         filtered view can be shared as a link.</p>\n<div class=\"filters\">\
         <label>Category <select id=\"client-category\"></select></label>\
         <label>Service <select id=\"client-service\"></select></label>\
         <label>Direction <select id=\"client-direction\"></select></label>\
         <label>Search <input type=\"search\" id=\"client-search\" \
         placeholder=\"address, name, SNI, software…\"></label>\
         <button type=\"button\" id=\"client-download\">Download these clients as CSV</button>\
         <span id=\"client-count\"></span></div>\n\
         <table id=\"client-table\" class=\"sortable\"><thead><tr>",
    );
    for (h, num) in [
        ("Client", false),
        ("Direction", false),
        ("Primary", true),
        ("Categories", false),
        ("Would fail", false),
        ("Services", false),
        ("Connections", true),
        ("Offered (max)", false),
        ("Negotiated", false),
        ("Failures", false),
        ("SNI", false),
        ("Names", false),
        ("Software (hints)", false),
        ("First seen", false),
        ("Last seen", false),
    ] {
        let _ = write!(
            o,
            "<th{}>{}</th>",
            if num { " data-type=\"num\"" } else { "" },
            super::html::esc(h)
        );
    }
    o.push_str("</tr></thead><tbody></tbody></table>\n</section>\n");

    o.push_str("<script type=\"application/json\" id=\"client-data\">{\"header\":");
    push_json_for_script(o, &client_header());
    o.push_str(",\"search\":");
    push_json_for_script(o, &SEARCH_COLUMNS);
    o.push_str(",\"category_order\":");
    push_json_for_script(
        o,
        &Category::ALL.iter().map(|c| c.name()).collect::<Vec<_>>(),
    );
    o.push_str(",\"direction_order\":[\"inbound\",\"outbound\",\"other\"],\"max_rows\":");
    let _ = write!(o, "{MAX_ROWS}");
    o.push_str(",\"clients\":[");
    for (i, c) in clients.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        o.push('\n');
        push_json_for_script(o, &view_of(census, c));
        super::html::spill(o, out)?;
    }
    o.push_str("\n]}</script>\n<script>");
    o.push_str(SCRIPT);
    o.push_str("</script>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSP hash of a script is base64(SHA-256(text)) (CSP Level 3, "hash-source"); the
    /// digest of "abc" is FIPS 180-2's example (ba7816bf…).
    #[test]
    fn csp_hash_is_base64_sha256() {
        assert_eq!(
            csp_hash("abc"),
            "'sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='"
        );
    }

    #[test]
    fn json_for_a_script_block_cannot_close_it() {
        let mut o = String::new();
        push_json_for_script(&mut o, &["</script><b>&amp;"]);
        assert_eq!(o, r#"["\u003c/script\u003e\u003cb\u003e\u0026amp;"]"#);
        let back: Vec<String> = serde_json::from_str(&o).unwrap();
        assert_eq!(back, ["</script><b>&amp;"]);
    }
}
