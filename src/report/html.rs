//! The HTML report: one self-contained page for the change board. Inline CSS, inline SVG
//! charts (versions per service, versions over time), the services table and the sortable
//! client table, at-risk clients first. Nothing is fetched: the page's Content Security
//! Policy forbids every network load, and it has no external references.
//!
//! Above that table, the per-client view ([`super::html_clients`]): one row per client, with
//! filters, a search and a CSV download, built by a script from a JSON data block. The
//! policy lets the page's two scripts run by their SHA-256, and no other script.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::html_clients;
use super::table::plural;
use super::{
    client_label, counted, ms, offered_label, short_time, sources_label, would_fail_text, Overview,
};
use crate::census::{ciphers, Category, Census, Seen, ServiceSummary};

/// Connection labels in chart order, with their colours.
const SERIES: [(&str, &str); 9] = [
    ("SSL", "#67000d"),
    ("TLSv1.0", "#d73027"),
    ("TLSv1.1", "#fc8d59"),
    ("TLSv1.2", "#4575b4"),
    ("TLSv1.3", "#1a9850"),
    ("other", "#999999"),
    ("plaintext", "#762a83"),
    ("failed", "#333333"),
    ("incomplete", "#cccccc"),
];

/// Which series a label (a version name, `plaintext`, `failed`, `incomplete`) belongs to.
fn series_of(label: &str) -> usize {
    match label {
        "SSLv2" | "SSLv3" => 0,
        "TLSv1.0" => 1,
        "TLSv1.1" => 2,
        "TLSv1.2" => 3,
        "TLSv1.3" => 4,
        "plaintext" => 6,
        "failed" => 7,
        "incomplete" => 8,
        _ => 5,
    }
}

/// Escape text for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px}
.summary{font-size:15px}.bad{color:#b2182b;font-weight:600}
figure{margin:12px 0 20px}figcaption{font-weight:600;margin-bottom:4px}
svg text{font:12px system-ui,sans-serif;fill:#333}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \25B2"}table.sortable th.desc::after{content:" \25BC"}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.legacy-only td:first-child{border-left:4px solid #d73027}
tr.server-limited td:first-child{border-left:4px solid #fc8d59}
tr.failing td:first-child{border-left:4px solid #333}
tr.weak-cipher td:first-child{border-left:4px solid #e6ab02}
tr.no-tls td:first-child{border-left:4px solid #762a83}
tr.ok td:first-child{border-left:4px solid #1a9850}
dt{font-weight:600;margin-top:6px}dd{margin-left:16px}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}
"#;

/// Sorts a table by the clicked column: numbers by `data-v` (or the text), text otherwise.
const SCRIPT: &str = r#"
(function () {
  function key(cell, numeric) {
    var v = cell.getAttribute('data-v');
    if (v === null) v = cell.textContent;
    return numeric ? parseFloat(v) || 0 : v.toLowerCase();
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function (th, col) {
      th.addEventListener('click', function () {
        var numeric = th.getAttribute('data-type') === 'num';
        var asc = !th.classList.contains('asc');
        heads.forEach(function (h) { h.classList.remove('asc', 'desc'); });
        th.classList.add(asc ? 'asc' : 'desc');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  var charts = document.querySelectorAll('svg.chart');
  var drawn = Array.prototype.every.call(charts, function (s) {
    return s.getBoundingClientRect().height > 0;
  });
  var table = document.getElementById('clients');
  document.body.setAttribute('data-charts', String(charts.length));
  document.body.setAttribute('data-rows', String(table ? table.tBodies[0].rows.length : 0));
  document.body.setAttribute('data-ready', drawn && table && table.offsetHeight > 0 ? 'yes' : 'no');
})();
"#;

fn legend(out: &mut String) {
    out.push_str("<div class=\"legend\">");
    for (label, colour) in SERIES {
        let _ = write!(
            out,
            "<span><i style=\"background:{colour}\"></i>{}</span>",
            esc(label)
        );
    }
    out.push_str("</div>");
}

/// Horizontal stacked bars: per service, connections by the version the server selected,
/// plus sessions without TLS and handshakes that selected none.
fn services_chart(services: &BTreeMap<String, ServiceSummary>, out: &mut String) {
    let (label_w, bar_w, row_h) = (150.0, 620.0, 24.0);
    let max = services
        .values()
        .map(|s| s.connections)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let height = row_h * services.len().max(1) as f64 + 10.0;
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"chart-services\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" role=\"img\" \
         aria-label=\"Negotiated versions per service\">",
        w = label_w + bar_w + 60.0
    );
    for (i, (name, s)) in services.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let mut counts = [0u64; 9];
        let mut with_version = 0;
        for (v, n) in &s.negotiated {
            counts[series_of(v)] += n;
            with_version += n;
        }
        counts[6] = s.plaintext;
        counts[7] = s
            .connections
            .saturating_sub(with_version + s.plaintext + s.incomplete);
        counts[8] = s.incomplete;
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y + 15.0,
            esc(name)
        );
        let mut x = label_w;
        for (k, n) in counts.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let w = *n as f64 / max * bar_w;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\">\
                 <title>{}: {} {n}</title></rect>",
                row_h - 6.0,
                SERIES[k].1,
                esc(name),
                SERIES[k].0
            );
            x += w;
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{}\">{}</text>",
            x + 4.0,
            y + 15.0,
            s.connections
        );
    }
    out.push_str("</svg>");
}

/// Stacked columns: connections per hour (per day beyond four days) by version.
fn timeline_chart(census: &Census, out: &mut String) {
    let by_day = census.timeline.len() > 96;
    let mut buckets: BTreeMap<String, [u64; 9]> = BTreeMap::new();
    for (hour, labels) in &census.timeline {
        let key = if by_day {
            hour.get(..10).unwrap_or(hour).to_string()
        } else {
            hour.clone()
        };
        let counts = buckets.entry(key).or_default();
        for (label, n) in labels {
            counts[series_of(label)] += n;
        }
    }
    let (left, plot_w, plot_h, top) = (50.0, 720.0, 180.0, 10.0);
    let max = buckets
        .values()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n = buckets.len().max(1) as f64;
    let slot = plot_w / n;
    let bar = (slot * 0.8).max(1.0);
    let _ = write!(
        out,
        "<svg class=\"chart\" id=\"chart-timeline\" xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
         aria-label=\"Connections over time by version\">",
        w = left + plot_w + 10.0,
        h = top + plot_h + 40.0
    );
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#888\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        left - 4.0,
        top + 10.0,
        max as u64,
        left - 4.0,
        top + plot_h,
        b = top + plot_h,
        r = left + plot_w
    );
    let every = (buckets.len() / 8).max(1);
    for (i, (bucket, counts)) in buckets.iter().enumerate() {
        let x = left + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = top + plot_h;
        for (k, c) in counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let h = *c as f64 / max * plot_h;
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" \
                 fill=\"{}\"><title>{}: {} {c}</title></rect>",
                SERIES[k].1,
                esc(bucket),
                SERIES[k].0
            );
        }
        if i % every == 0 {
            let label = if by_day {
                bucket.clone()
            } else {
                bucket.replace('T', " ").trim_end_matches('Z').to_string()
            };
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                x + bar / 2.0,
                top + plot_h + 16.0,
                esc(&label)
            );
        }
    }
    out.push_str("</svg>");
}

fn td(out: &mut String, text: &str) {
    let _ = write!(out, "<td>{}</td>", esc(text));
}

fn td_num(out: &mut String, n: u64) {
    let _ = write!(out, "<td class=\"n\">{n}</td>");
}

/// Move what `o` holds to `out` once it is big enough to be worth a write.
pub(super) fn spill(o: &mut String, out: &mut dyn Write) -> io::Result<()> {
    if o.len() >= SPILL {
        out.write_all(o.as_bytes())?;
        o.clear();
    }
    Ok(())
}

/// How much of the page is kept before it is written out.
const SPILL: usize = 32 * 1024;

/// The whole page as a string.
pub fn render(census: &Census) -> String {
    let mut page = Vec::new();
    write(census, &mut page).expect("writing to memory does not fail");
    String::from_utf8(page).expect("the page is built from strings")
}

/// Write the page, a few rows at a time: memory grows with the census, not with the page.
pub fn write(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    let Overview {
        clients,
        services,
        first,
        last,
        would_fail,
        at_risk,
    } = Overview::of(census);

    let mut o = String::with_capacity(SPILL + 4 * 1024);
    o.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src ",
    );
    // Only the page's own two scripts run: each is allowed by its hash, nothing else.
    o.push_str(&html_clients::csp_hash(SCRIPT));
    o.push(' ');
    o.push_str(&html_clients::csp_hash(html_clients::SCRIPT));
    o.push_str(
        "\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>TLS census</title>\n<style>",
    );
    o.push_str(STYLE);
    o.push_str(html_clients::STYLE);
    o.push_str("</style></head>\n<body>\n<h1>TLS census</h1>\n");
    let _ = writeln!(
        o,
        "<p class=\"summary\">{} connections from {} clients, {} .. {} UTC. \
         <span class=\"bad\">{} at risk</span>; if the servers enforced \
         <code>{}</code>, <span class=\"bad\">{} would fail</span>.</p>",
        census.connections(),
        clients.len(),
        esc(&first),
        esc(&last),
        plural(at_risk as u64, "client"),
        esc(&census.config.policy.to_string()),
        plural(would_fail as u64, "client")
    );

    o.push_str("<h2>Versions</h2>\n");
    legend(&mut o);
    o.push_str("<figure><figcaption>Connections per service, by the version the server selected</figcaption>");
    services_chart(&services, &mut o);
    o.push_str("</figure>\n<figure><figcaption>Connections over time (UTC)</figcaption>");
    timeline_chart(census, &mut o);
    o.push_str("</figure>\n");
    spill(&mut o, out)?;

    o.push_str("<h2>Services</h2>\n<table id=\"services\" class=\"sortable\"><thead><tr>");
    for (h, num) in [
        ("Service", false),
        ("Clients", true),
        ("Connections", true),
        ("Negotiated", false),
        ("Plaintext", true),
        ("Failed", true),
        ("Would fail (clients)", true),
        ("p50 ms", true),
        ("p90 ms", true),
        ("p99 ms", true),
        ("max ms", true),
    ] {
        let _ = write!(
            o,
            "<th{}>{}</th>",
            if num { " data-type=\"num\"" } else { "" },
            esc(h)
        );
    }
    o.push_str("</tr></thead><tbody>\n");
    for (name, s) in &services {
        o.push_str("<tr>");
        td(&mut o, name);
        td_num(&mut o, s.clients);
        td_num(&mut o, s.connections);
        td(&mut o, &counted(&s.negotiated));
        td_num(&mut o, s.plaintext);
        td_num(&mut o, s.failed);
        td_num(&mut o, s.would_fail);
        let p = census
            .latency_by_service
            .get(name)
            .filter(|l| l.count() > 0)
            .map(|l| l.percentiles());
        for f in [
            |p: &crate::census::latency::Percentiles| p.p50_us,
            |p: &crate::census::latency::Percentiles| p.p90_us,
            |p: &crate::census::latency::Percentiles| p.p99_us,
            |p: &crate::census::latency::Percentiles| p.max_us,
        ] {
            match &p {
                Some(p) => {
                    let _ = write!(o, "<td class=\"n\" data-v=\"{}\">{}</td>", f(p), ms(f(p)));
                }
                None => o.push_str("<td class=\"n\" data-v=\"-1\">-</td>"),
            }
        }
        o.push_str("</tr>\n");
        spill(&mut o, out)?;
    }
    o.push_str("</tbody></table>\n");

    html_clients::write_view(census, &clients, &mut o, out)?;

    o.push_str(
        "<h2>Clients and services, at risk first</h2>\n<p>Click a column to sort. One row per client and \
         service.</p>\n<table id=\"clients\" class=\"sortable\"><thead><tr>",
    );
    for (h, num) in [
        ("Client", false),
        ("Direction", false),
        ("Service", false),
        ("Primary", true),
        ("Categories", false),
        ("Would fail", false),
        ("Connections", true),
        ("Offered (max)", false),
        ("Negotiated", false),
        ("Failures", false),
        ("Cipher suites", false),
        ("SNI", false),
        ("First seen", false),
        ("Last seen", false),
        ("Names", false),
        ("Sources", false),
        ("Software (hints)", false),
    ] {
        let _ = write!(
            o,
            "<th{}>{}</th>",
            if num { " data-type=\"num\"" } else { "" },
            esc(h)
        );
    }
    o.push_str("</tr></thead><tbody>\n");
    for r in crate::census::rows(&clients) {
        let (c, name, s, categories) = (r.client, r.service, r.counts, &r.categories);
        {
            let primary = categories[0];
            let _ = write!(o, "<tr class=\"{}\">", primary.name());
            td(&mut o, &client_label(&c.key));
            td(&mut o, c.key.direction.name());
            td(&mut o, name);
            let rank = Category::ALL
                .iter()
                .position(|x| *x == primary)
                .unwrap_or(0);
            let _ = write!(o, "<td data-v=\"{rank}\">{}</td>", esc(primary.name()));
            td(
                &mut o,
                &categories
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            td(&mut o, &would_fail_text(s));
            td_num(&mut o, s.connections);
            td(&mut o, &offered_label(s));
            td(&mut o, &counted(&s.negotiated));
            td(&mut o, &counted(s.failures()));
            let suites = s
                .cipher_suites()
                .values
                .keys()
                .map(|code| {
                    let label = ciphers::parse_code(code).map_or(code.to_string(), ciphers::label);
                    match ciphers::parse_code(code).and_then(ciphers::weakness) {
                        Some(w) => format!("{label} (weak: {})", ciphers::describe(w)),
                        None => label,
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            td(&mut o, &suites);
            td(&mut o, &s.sni().summary());
            td(
                &mut o,
                &short_time(s.first_seen().map(Seen::text).as_deref()),
            );
            td(
                &mut o,
                &short_time(s.last_seen().map(Seen::text).as_deref()),
            );
            td(&mut o, &super::names_of(census, &c.key));
            td(&mut o, &sources_label(s));
            td(&mut o, &super::software_of(&c.software));
            o.push_str("</tr>\n");
        }
        spill(&mut o, out)?;
    }
    o.push_str("</tbody></table>\n");
    super::certificates::write_html(census, &mut o, esc);
    o.push_str("<h2>What the categories mean</h2>\n<dl>\n");
    for cat in Category::ALL {
        let _ = writeln!(
            o,
            "<dt>{}</dt><dd>{}</dd>",
            esc(cat.name()),
            esc(cat.advice())
        );
    }
    o.push_str("</dl>\n<script>");
    o.push_str(SCRIPT);
    o.push_str("</script>\n</body></html>\n");
    out.write_all(o.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
