//! The Markdown report: the summary, services and clients as Markdown tables, for wikis,
//! tickets and change requests.

use std::io::{self, Write};

use super::{
    client_label, counted, ms, offered_label, short_time, sources_label, version_columns,
    version_range, would_fail_text, Overview,
};
use crate::census::{Category, Census, Seen};

/// Make text safe inside a Markdown table cell: `|` would end the cell and a line break
/// the row, and Markdown renderers pass HTML through, so `<`, `>` and `&` become entities
/// (values from the wire, SNIs and EHLO names, are chosen by whoever sends them).
pub(crate) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

pub fn write(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    let Overview {
        clients,
        services,
        first,
        last,
        would_fail,
        ..
    } = Overview::of(census);

    writeln!(out, "# TLS census")?;
    writeln!(out)?;
    writeln!(
        out,
        "{} connections from {} clients, {} .. {} UTC. If the servers enforced \
         `{}`, **{} clients would fail**.",
        census.connections(),
        clients.len(),
        first,
        last,
        census.config.policy,
        would_fail
    )?;

    writeln!(out)?;
    writeln!(out, "## Services")?;
    writeln!(out)?;
    writeln!(
        out,
        "| service | clients | connections | SSL | TLS 1.0 | TLS 1.1 | TLS 1.2 | TLS 1.3 | \
         plaintext | failed | would fail | p50 ms | p90 ms | p99 ms | max ms |"
    )?;
    writeln!(
        out,
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )?;
    for (name, s) in &services {
        let v = version_columns(&s.negotiated);
        let lat = census
            .latency_by_service
            .get(name)
            .filter(|l| l.count() > 0)
            .map(|l| l.percentiles());
        let p = |f: fn(&crate::census::latency::Percentiles) -> u64| {
            lat.as_ref().map_or("-".into(), |l| ms(f(l)))
        };
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(name),
            s.clients,
            s.connections,
            v[0],
            v[1],
            v[2],
            v[3],
            v[4] + v[5],
            s.plaintext,
            s.failed,
            s.would_fail,
            p(|l| l.p50_us),
            p(|l| l.p90_us),
            p(|l| l.p99_us),
            p(|l| l.max_us),
        )?;
    }

    writeln!(out)?;
    writeln!(out, "## Clients (at risk first)")?;
    writeln!(out)?;
    writeln!(
        out,
        "| client | direction | service | connections | offered | negotiated | categories | \
         would fail | failures | SNI | first seen | last seen | names | sources | \
         software (hints) |"
    )?;
    writeln!(
        out,
        "|---|---|---|--:|---|---|---|---|---|---|---|---|---|---|---|"
    )?;
    for r in crate::census::rows(&clients) {
        let (c, name, s, categories) = (r.client, r.service, r.counts, &r.categories);
        {
            let would = would_fail_text(s);
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&client_label(&c.key)),
                c.key.direction.name(),
                cell(name),
                s.connections,
                offered_label(s),
                version_range(&s.negotiated),
                categories
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                cell(&would),
                cell(&counted(s.failures())),
                cell(&s.sni().summary()),
                short_time(s.first_seen().map(Seen::text).as_deref()),
                short_time(s.last_seen().map(Seen::text).as_deref()),
                cell(&super::names_of(census, &c.key)),
                sources_label(s),
                cell(&super::software_of(&c.software)),
            )?;
        }
    }

    writeln!(out)?;
    writeln!(out, "## Categories")?;
    writeln!(out)?;
    for cat in Category::ALL {
        let n = clients
            .iter()
            .filter(|c| c.categories.contains(&cat))
            .count();
        writeln!(out, "* **{}** ({n} clients): {}", cat.name(), cat.advice())?;
    }
    super::certificates::write_markdown(census, out)
}
