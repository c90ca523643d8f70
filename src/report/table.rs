//! The terminal table: a summary, the services, then one line per client and service,
//! at-risk clients first, and what to do about each category found. Fits 100 columns
//! (long IPv6 addresses push their line further).

use std::collections::BTreeMap;
use std::io::{self, Write};

use rayon::prelude::*;

use super::terminal::terminal_safe;
use super::{ms, push_client_label, push_version_range, version_columns, Overview};
use crate::census::{Category, Census, ClientSummary, Row, ServiceCountsInner};

/// Width the table is laid out for.
pub const WIDTH: usize = 100;

/// `1 client`, `3 clients`.
pub(crate) fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `text` in lines of at most [`WIDTH`] columns (a longer word stands alone), each indented.
pub(crate) fn wrap(text: &str, indent: usize, out: &mut dyn Write) -> io::Result<()> {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > WIDTH {
            writeln!(out, "{:indent$}{line}", "")?;
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        writeln!(out, "{:indent$}{line}", "")?;
    }
    Ok(())
}

/// Categories in `width` columns: all of them, or the first ones and `+N`.
fn categories_cell(categories: &[Category], width: usize) -> String {
    let all = categories
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(",");
    if all.len() <= width || categories.len() == 1 {
        return all;
    }
    let mut cell = categories[0].name().to_string();
    let mut shown = 1;
    for c in &categories[1..] {
        let rest = categories.len() - shown - 1;
        let tail = if rest > 0 {
            format!(",+{rest}")
        } else {
            String::new()
        };
        if cell.len() + 1 + c.name().len() + tail.len() > width {
            break;
        }
        cell.push(',');
        cell.push_str(c.name());
        shown += 1;
    }
    if shown < categories.len() {
        cell.push_str(&format!(",+{}", categories.len() - shown));
    }
    cell
}

/// Text reused from row to row, so that laying a row out allocates nothing.
#[derive(Default)]
struct Cells {
    label: String,
    offered: String,
    got: String,
}

/// Append one client-and-service line of the table (the client's address on a line of its
/// own first when it is wider than its column).
///
/// Laid out by hand rather than with `writeln!`: the formatting machinery's per-argument and
/// per-padding calls were most of the table's time on a census of thousands of clients. The
/// columns are those of the header in [`write`]; widths count characters, as `{:<24}` does.
fn row_line(text: &mut String, cells: &mut Cells, row: &Row<'_>, categories_width: usize) {
    let s = row.counts;
    cells.label.clear();
    push_client_label(&mut cells.label, &row.client.key);
    if cells.label.len() > 24 {
        // A long address (IPv6, or a client behind a load balancer) gets its own line.
        text.push_str(&cells.label);
        text.push('\n');
        cells.label.clear();
    }
    cells.offered.clear();
    if s.max_offered.is_empty() && s.negotiated_only() > 0 {
        // Seen only in server logs: what it offers is unknown.
        cells.offered.push_str("logs");
    } else {
        push_version_range(&mut cells.offered, &s.max_offered);
    }
    cells.got.clear();
    push_version_range(&mut cells.got, &s.negotiated);
    let mut number = itoa::Buffer::new();
    push_left(text, &cells.label, 24);
    push_left(text, row.client.key.direction.short(), 3);
    push_left(text, row.service, 12);
    push_right(text, number.format(s.connections), 6);
    push_left(text, &cells.offered, 8);
    push_left(text, &cells.got, 8);
    push_right(text, number.format(s.failed()), 5);
    push_right(text, number.format(s.plaintext()), 5);
    push_left(text, if s.would_fail() > 0 { "yes" } else { "no" }, 5);
    text.push_str(&categories_cell(&row.categories, categories_width));
    text.push('\n');
}

/// `  names: a (ehlo), b (dns)`, made safe for the terminal and cut to the table's width.
fn names_line(text: &mut String, names: &str) {
    let line: String = format!("  names: {}", terminal_safe(names))
        .chars()
        .take(WIDTH)
        .collect();
    text.push_str(&line);
    text.push('\n');
}

/// `  software: OUTLOOK.EXE (Windows 7 ...; seen 9 of 12, ...)`, cut to the table's width,
/// then the fixes of the hints' families wrapped in full (a cut fix would be no use).
fn software_lines(text: &mut String, hints: &[crate::census::software::Hint]) -> io::Result<()> {
    use crate::census::software;
    if hints.is_empty() {
        return Ok(());
    }
    let line: String = format!("  software: {}", terminal_safe(&software::summary(hints)))
        .chars()
        .take(WIDTH)
        .collect();
    text.push_str(&line);
    text.push('\n');
    let fixes = software::advice_summary(hints);
    if !fixes.is_empty() {
        let mut wrapped = Vec::new();
        wrap(&format!("fix: {}", terminal_safe(&fixes)), 4, &mut wrapped)?;
        text.push_str(&String::from_utf8_lossy(&wrapped));
    }
    Ok(())
}

/// `value` then spaces to `width` characters, and the column gap.
fn push_left(text: &mut String, value: &str, width: usize) {
    text.push_str(value);
    push_spaces(text, width.saturating_sub(value.chars().count()) + 1);
}

/// Spaces to `width` characters, then `value`, and the column gap.
fn push_right(text: &mut String, value: &str, width: usize) {
    push_spaces(text, width.saturating_sub(value.chars().count()));
    text.push_str(value);
    text.push(' ');
}

fn push_spaces(text: &mut String, n: usize) {
    const SPACES: &str = "                                ";
    let mut left = n;
    while left > 0 {
        let step = left.min(SPACES.len());
        text.push_str(&SPACES[..step]);
        left -= step;
    }
}

/// What the table's closing sections count over every client: counted in the report
/// threads' blocks of rows, whose counts are read from cold memory for the rows anyway (a
/// serial pass of its own over every client's counts was a tail of the table).
#[derive(Default)]
struct Tallies<'a> {
    /// Some client was seen in server logs (the `OFFERED logs` note).
    from_logs: bool,
    /// Why the policy would break clients → clients.
    reasons: BTreeMap<&'a str, usize>,
    /// Why handshakes failed or mail stayed in clear → connections.
    failures: BTreeMap<&'a str, u64>,
    /// Category → clients it applies to.
    present: BTreeMap<Category, usize>,
}

impl<'a> Tallies<'a> {
    /// Count a client's own figures (once per client).
    fn count_client(&mut self, c: &'a ClientSummary<'a>) {
        self.from_logs |= c.sources.iter().any(|s| *s != "wire");
        for r in &c.would_fail_reasons {
            *self.reasons.entry(r).or_default() += 1;
        }
        for cat in &c.categories {
            *self.present.entry(*cat).or_default() += 1;
        }
    }

    /// Count a client's service (once per row).
    fn count_service(&mut self, s: &'a ServiceCountsInner) {
        for (r, n) in s.failures().iter().chain(s.plaintext_reasons()) {
            *self.failures.entry(r).or_default() += n;
        }
    }

    fn add(mut self, other: Tallies<'a>) -> Self {
        self.from_logs |= other.from_logs;
        for (r, n) in other.reasons {
            *self.reasons.entry(r).or_default() += n;
        }
        for (r, n) in other.failures {
            *self.failures.entry(r).or_default() += n;
        }
        for (c, n) in other.present {
            *self.present.entry(c).or_default() += n;
        }
        self
    }
}

pub fn write(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    let Overview {
        clients,
        services,
        first,
        last,
        would_fail,
        at_risk,
    } = Overview::of(census);

    writeln!(
        out,
        "TLS census: {} from {}, {} at risk; {} .. {} UTC",
        plural(clients.iter().map(|c| c.connections).sum(), "connection"),
        plural(clients.len() as u64, "client"),
        at_risk,
        first,
        last,
    )?;
    writeln!(
        out,
        "What if the servers enforced {}: {} would fail",
        census.config.policy,
        plural(would_fail as u64, "client")
    )?;
    if clients.is_empty() {
        return Ok(());
    }

    writeln!(out)?;
    writeln!(
        out,
        "{:<14} {:>7} {:>7} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} {:>6} {:>6} {:>7} {:>7}",
        "SERVICE",
        "CLIENTS",
        "CONNS",
        "SSL",
        "1.0",
        "1.1",
        "1.2",
        "1.3",
        "PLAIN",
        "FAILED",
        "WOULD",
        "P50 ms",
        "P99 ms"
    )?;
    for (name, s) in &services {
        let v = version_columns(&s.negotiated);
        let (p50, p99) = match census.latency_by_service.get(name) {
            Some(l) if l.count() > 0 => {
                let p = l.percentiles();
                (ms(p.p50_us), ms(p.p99_us))
            }
            _ => ("-".into(), "-".into()),
        };
        writeln!(
            out,
            "{:<14} {:>7} {:>7} {:>5} {:>5} {:>5} {:>5} {:>5} {:>6} {:>6} {:>6} {:>7} {:>7}",
            name,
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
            p50,
            p99
        )?;
    }
    writeln!(
        out,
        "  (version columns count what the server selected; WOULD: clients the policy breaks)"
    )?;

    writeln!(out)?;
    writeln!(
        out,
        "{:<24} {:<3} {:<12} {:>6} {:<8} {:<8} {:>5} {:>5} {:<5} CATEGORIES",
        "CLIENT", "DIR", "SERVICE", "CONNS", "OFFERED", "GOT", "FAIL", "PLAIN", "WOULD"
    )?;
    // CATEGORIES starts after the fixed columns; the rest of the width is theirs.
    let categories_width = WIDTH - 85;
    let rows = crate::census::rows(&clients);
    // A client's names and software hints go once, under its first row.
    let mut first_of_client = vec![false; rows.len()];
    let mut client_seen = vec![false; clients.len()];
    for (first, row) in first_of_client.iter_mut().zip(&rows) {
        *first = !std::mem::replace(&mut client_seen[row.client_index], true);
    }
    // Rows are laid out in text blocks on the report threads (see `crate::report`), one
    // round of blocks at a time so that only a round's text is held, and written in order.
    // A `writeln!` per row to the output would cost a call through it per field and per
    // padding space.
    const BLOCK_ROWS: usize = 2048;
    // Rows whose counts are touched at once: their cache lines stay in the core's cache
    // until their lines are laid out.
    const TOUCH_ROWS: usize = 32;
    let mut tallies = Tallies::default();
    let round = BLOCK_ROWS * rayon::current_num_threads();
    for (rows, firsts) in rows.chunks(round).zip(first_of_client.chunks(round)) {
        let blocks: Vec<io::Result<(String, Tallies)>> = rows
            .par_chunks(BLOCK_ROWS)
            .zip(firsts.par_chunks(BLOCK_ROWS))
            .map(|(rows, firsts)| {
                let mut text = String::with_capacity(BLOCK_ROWS * 96);
                let mut cells = Cells::default();
                let mut counted = Tallies::default();
                // The rows' counts are read from cold memory: a few rows' at once first, so
                // that the loads overlap (see `ServiceCountsInner::touch`), then their lines.
                for (rows, firsts) in rows.chunks(TOUCH_ROWS).zip(firsts.chunks(TOUCH_ROWS)) {
                    let touched = rows.iter().zip(firsts).fold(0, |sum, (row, first)| {
                        let names = match first {
                            true => census.names.get(&row.client.key.ip),
                            false => None,
                        };
                        sum ^ row.counts.touch() ^ names.map_or(0, |n| n.sightings())
                    });
                    std::hint::black_box(touched);
                    for (row, first) in rows.iter().zip(firsts) {
                        row_line(&mut text, &mut cells, row, categories_width);
                        counted.count_service(row.counts);
                        if !first {
                            continue;
                        }
                        counted.count_client(row.client);
                        // Names are chosen by whoever sent them, hints come from the
                        // project's fingerprint table: both made safe for the terminal all
                        // the same.
                        if let Some(names) = census.names.get(&row.client.key.ip) {
                            if !names.is_empty() {
                                names_line(&mut text, &names.summary());
                            }
                        }
                        software_lines(&mut text, &row.client.software)?;
                    }
                }
                Ok((text, counted))
            })
            .collect();
        for block in blocks {
            let (text, counted) = block?;
            out.write_all(text.as_bytes())?;
            tallies = tallies.add(counted);
        }
    }
    let Tallies {
        from_logs,
        reasons,
        failures,
        present,
    } = tallies;
    if from_logs {
        writeln!(
            out,
            "  (OFFERED `logs`: seen only in IIS/SMTP logs, which give the negotiated version \
             alone; the JSON and CSV reports list each client's sources)"
        )?;
    }

    // Why the policy would break clients, and why handshakes fail.
    if !reasons.is_empty() {
        writeln!(out)?;
        writeln!(out, "Would fail under {}:", census.config.policy)?;
        for (reason, n) in reasons {
            writeln!(out, "  {:>14}  {reason}", plural(n as u64, "client"))?;
        }
    }
    if !failures.is_empty() {
        writeln!(out)?;
        writeln!(out, "Failed handshakes and sessions without TLS:")?;
        for (reason, n) in failures {
            writeln!(out, "  {:>14}  {reason}", plural(n, "connection"))?;
        }
    }

    writeln!(out)?;
    writeln!(out, "What to do:")?;
    for (cat, n) in present {
        writeln!(out, "  {:<15} {}", cat.name(), plural(n as u64, "client"))?;
        wrap(cat.advice(), 4, out)?;
    }
    // The capture's end from the clients at hand, not from another walk over the census.
    let end = Census::capture_end_of(&clients);
    // The clients' lists were made on the report threads: freed there, in parallel, rather
    // than one by one across threads on this one.
    drop(rows);
    clients.into_par_iter().for_each(drop);
    super::certificates::write_table_at(census, end, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-laid columns pad exactly as `format!`'s `{:<w$}` and `{:>w$}` do: by
    /// characters, never cutting a longer value.
    #[test]
    fn columns_pad_as_the_formatter_does() {
        let values = [
            "",
            "a",
            "in",
            "12345",
            "TLSv1.2",
            "ü",
            "日本語",
            "2001:db8::1 via 10.0.0.1",
        ];
        for value in values {
            for width in [0, 1, 3, 5, 12, 24] {
                let mut left = String::new();
                push_left(&mut left, value, width);
                assert_eq!(left, format!("{value:<width$} "), "{value:?} {width}");
                let mut right = String::new();
                push_right(&mut right, value, width);
                assert_eq!(right, format!("{value:>width$} "), "{value:?} {width}");
            }
        }
        let mut many = String::new();
        push_spaces(&mut many, 70);
        assert_eq!(many, " ".repeat(70));
    }

    #[test]
    fn categories_fit_their_cell() {
        let all = Category::ALL[..5].to_vec();
        let cell = categories_cell(&all, 15);
        assert!(cell.len() <= 15, "{cell}");
        assert!(cell.starts_with("legacy-only"));
        assert!(cell.ends_with(",+4"), "{cell}");
        assert_eq!(categories_cell(&[Category::Ok], 15), "ok");
    }
}
