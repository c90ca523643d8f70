//! Exchange SMTP receive and send protocol logs: CSV, fields named by `#Fields:`
//! (`date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,
//! data,context`), one row per event of a session, rows of one session linked by session-id.
//!
//! Events: `+` connect, `-` disconnect, `<` received, `>` sent, `*` information. The client's
//! commands are the `<` rows of a receive log and the `>` rows of a send log (there the
//! Exchange server is the client, and its local endpoint the client's). The client's first
//! `EHLO`/`HELO` names it; `STARTTLS` or `X-ANONYMOUSTLS` starts TLS; the `*` row whose text
//! reads `TLS protocol SP_PROT_… negotiation succeeded using bulk encryption algorithm
//! CALG_… with strength N bits, MAC hash algorithm CALG_… with strength N bits and key
//! exchange algorithm CALG_… with strength N bits` makes the session's record.
//!
//! Sessions are kept from their first row to their disconnect (after the TLS result only as
//! a mark that it was counted), at most [`MAX_OPEN_SESSIONS`] of them: beyond it the oldest
//! is let go (its EHLO name is then missing from its record if its TLS row comes later).

use std::collections::{HashMap, VecDeque};
use std::io::BufRead;

use super::iis::FileCounts;
use super::{alg_text, fields, log_record, schannel, LogError, LogKind, Session};
use crate::engine::Services;
use crate::record::{LogRecord, Record};

/// Most sessions kept open at once, per kind of log.
pub const MAX_OPEN_SESSIONS: usize = 100_000;

/// Where each field is in a row, from the current `#Fields:`.
#[derive(Debug)]
struct Layout {
    count: usize,
    date_time: usize,
    connector: Option<usize>,
    session: usize,
    local: usize,
    remote: usize,
    event: usize,
    data: Option<usize>,
    context: Option<usize>,
}

impl Layout {
    fn parse(names: &[String]) -> Result<Layout, String> {
        let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                format!("#Fields: has no {name}: its rows cannot be placed and are skipped")
            })
        };
        Ok(Layout {
            count: names.len(),
            date_time: need("date-time")?,
            connector: find("connector-id"),
            session: need("session-id")?,
            local: need("local-endpoint")?,
            remote: need("remote-endpoint")?,
            event: need("event")?,
            data: find("data"),
            context: find("context"),
        })
    }
}

/// What a session has said before its TLS result.
#[derive(Debug, Default)]
struct Open {
    ehlo: Option<String>,
    starttls: Option<&'static str>,
    /// Its TLS result made a record: the rest of the session (MAIL, RCPT, DATA, the
    /// disconnect) is passed over.
    done: bool,
}

/// The parser of one kind of SMTP log; its sessions last across files.
pub struct SmtpParser {
    kind: LogKind,
    services: Services,
    sessions: HashMap<Vec<u8>, Open>,
    /// Session ids in the order they were opened, for eviction; ids of sessions already
    /// gone are skipped when met.
    order: VecDeque<Vec<u8>>,
    /// Sessions that ended or were let go without a TLS result.
    without_tls: u64,
}

impl SmtpParser {
    pub fn new(kind: LogKind, services: Services) -> Self {
        SmtpParser {
            kind,
            services,
            sessions: HashMap::new(),
            order: VecDeque::new(),
            without_tls: 0,
        }
    }

    /// Read one file (or stream) to its end.
    pub fn read(
        &mut self,
        input: impl BufRead,
        file: &str,
        emit: &mut dyn FnMut(Record),
        problem: &mut dyn FnMut(LogError),
    ) -> FileCounts {
        let mut counts = FileCounts::default();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            // Rows end at `\n`, the `\r` before it is trimmed: with CRLF as terminator the
            // reader numbers the lines after the first one short by one.
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(input);
        let mut layout: Option<Result<Layout, String>> = None;
        let mut row = csv::ByteRecord::new();
        loop {
            match reader.read_byte_record(&mut row) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(counts.lines, |p| p.line());
                    match e.into_kind() {
                        csv::ErrorKind::Io(cause) => {
                            counts.error = Some(cause);
                            break;
                        }
                        other => {
                            problem(LogError::malformed(file, line, format!("{other:?}")));
                            continue;
                        }
                    }
                }
            }
            let number = row.position().map_or(0, |p| p.line());
            counts.lines = number;
            let first = cell(&row, 0);
            if first.starts_with(b"#") {
                if let Some(name) = first.strip_prefix(b"#Fields:") {
                    let mut names = vec![String::from_utf8_lossy(name).trim().to_string()];
                    names.extend(
                        row.iter()
                            .skip(1)
                            .map(|n| String::from_utf8_lossy(n).trim().to_string()),
                    );
                    let parsed = Layout::parse(&names);
                    if let Err(why) = &parsed {
                        problem(LogError::malformed(file, number, why.clone()));
                    }
                    layout = Some(parsed);
                }
                continue;
            }
            if row.len() == 1 && first.is_empty() {
                continue;
            }
            let layout = match &layout {
                Some(Ok(layout)) => layout,
                Some(Err(_)) => continue,
                None => {
                    problem(LogError::malformed(
                        file,
                        number,
                        "a row before any #Fields: line",
                    ));
                    continue;
                }
            };
            if row.len() != layout.count {
                problem(LogError::malformed(
                    file,
                    number,
                    format!("{} fields where #Fields: names {}", row.len(), layout.count),
                ));
                continue;
            }
            match self.row(layout, &row, file, number) {
                Ok(Some(record)) => emit(record),
                Ok(None) => {}
                Err(why) => problem(LogError::malformed(file, number, why)),
            }
        }
        counts
    }

    /// One row of a session.
    fn row(
        &mut self,
        layout: &Layout,
        row: &csv::ByteRecord,
        file: &str,
        number: u64,
    ) -> Result<Option<Record>, String> {
        let field = |i: usize| cell(row, i);
        let text = |i: usize| String::from_utf8_lossy(field(i));
        let session = field(layout.session);
        if session.is_empty() {
            return Err("no session-id".into());
        }
        let client_commands: &[u8] = match self.kind {
            LogKind::SmtpSend => b">",
            _ => b"<",
        };
        let event = field(layout.event);
        match event {
            b"-" => {
                if self.sessions.remove(session).is_some_and(|open| !open.done) {
                    self.without_tls += 1;
                }
                return Ok(None);
            }
            b"+" | b"<" | b">" | b"*" => {}
            other => {
                return Err(format!(
                    "event {:?} is none of + - < > *",
                    String::from_utf8_lossy(other)
                ))
            }
        }
        if self.sessions.get(session).is_some_and(|open| open.done) {
            return Ok(None);
        }
        let data = layout.data.map(text).unwrap_or_default();
        if event == client_commands {
            let open = self.open(session);
            let command = data.trim();
            let verb = command.split(' ').next().unwrap_or_default();
            if (verb.eq_ignore_ascii_case("EHLO") || verb.eq_ignore_ascii_case("HELO"))
                && open.ehlo.is_none()
            {
                let name = command[verb.len()..].trim();
                open.ehlo = (!name.is_empty()).then(|| name.to_string());
            } else if command.eq_ignore_ascii_case("STARTTLS") {
                open.starttls = Some("STARTTLS");
            } else if command.eq_ignore_ascii_case("X-ANONYMOUSTLS") {
                open.starttls = Some("X-ANONYMOUSTLS");
            }
            return Ok(None);
        }
        if event != b"*" {
            self.open(session);
            return Ok(None);
        }
        // The TLS result is in `context` (Exchange 2010 and later), in `data` on some builds.
        let context = layout.context.map(text).unwrap_or_default();
        let result = [context.as_ref(), data.as_ref()]
            .into_iter()
            .find(|t| t.starts_with("TLS protocol "));
        let Some(result) = result else {
            self.open(session);
            return Ok(None);
        };
        if !result.contains("negotiation succeeded") {
            // A failed negotiation: the session goes on in clear or ends; nothing negotiated.
            self.open(session);
            return Ok(None);
        }
        let tls = parse_tls_result(result)?;
        let ts = fields::iso_nanos(field(layout.date_time))
            .ok_or_else(|| format!("date-time {:?} is not ISO 8601 UTC", text(layout.date_time)))?;
        let endpoint = |i: usize, name: &str| {
            fields::endpoint(&text(i)).ok_or_else(|| format!("{name} {:?} is not ip:port", text(i)))
        };
        let local = endpoint(layout.local, "local-endpoint")?;
        let remote = endpoint(layout.remote, "remote-endpoint")?;
        let (client, server) = match self.kind {
            LogKind::SmtpSend => (local, remote),
            _ => (remote, local),
        };
        let open = std::mem::take(self.open(session));
        self.open(session).done = true;
        Ok(Some(log_record(Session {
            kind: self.kind,
            ts_nanos: ts,
            client: (client.ip(), client.port()),
            true_client: None,
            server: (server.ip(), server.port()),
            services: &self.services,
            file,
            line: number,
            starttls: open.starttls,
            log: LogRecord {
                version: tls.version,
                protocol: tls.protocol,
                schannel_side: tls.side.name(),
                cipher: tls.cipher.0,
                cipher_bits: tls.cipher.1,
                hash: tls.hash.0,
                hash_bits: tls.hash.1,
                key_exchange: tls.key_exchange.0,
                key_exchange_bits: tls.key_exchange.1,
                weak: schannel::weakness(tls.cipher.2, tls.hash.2),
                ehlo: open.ehlo,
                session: Some(String::from_utf8_lossy(session).into_owned()),
                connector: layout
                    .connector
                    .map(|i| text(i).into_owned())
                    .filter(|c| !c.is_empty()),
            },
        })))
    }

    /// The open session `id`, made when new (letting the oldest go when the table is full).
    fn open(&mut self, id: &[u8]) -> &mut Open {
        if !self.sessions.contains_key(id) {
            while self.sessions.len() >= MAX_OPEN_SESSIONS {
                let Some(oldest) = self.order.pop_front() else {
                    break;
                };
                if self.sessions.remove(&oldest).is_some_and(|open| !open.done) {
                    self.without_tls += 1;
                }
            }
            // Ids of sessions already gone pile up in `order` only as far as the table's
            // size: compact it when they outnumber the live ones.
            if self.order.len() > 2 * MAX_OPEN_SESSIONS {
                let sessions = &self.sessions;
                self.order.retain(|id| sessions.contains_key(id));
            }
            self.order.push_back(id.to_vec());
            self.sessions.insert(id.to_vec(), Open::default());
        }
        self.sessions.get_mut(id).expect("inserted above")
    }

    /// The end of the input: sessions still open had no TLS result. Returns how many
    /// sessions in all ended without one.
    pub fn finish(&mut self) -> u64 {
        self.without_tls += self.sessions.values().filter(|open| !open.done).count() as u64;
        self.sessions.clear();
        self.order.clear();
        std::mem::take(&mut self.without_tls)
    }
}

/// Field `i` of a row, without the `\r` of a CRLF line end (rows end at `\n`).
fn cell(row: &csv::ByteRecord, i: usize) -> &[u8] {
    let field = row.get(i).unwrap_or_default();
    field.strip_suffix(b"\r").unwrap_or(field)
}

/// An algorithm as logged: its name (normalised), strength, and ALG_ID when known.
type Alg = (Option<String>, Option<u32>, Option<u32>);

/// What a `TLS protocol … negotiation succeeded …` text says.
struct TlsResult {
    protocol: String,
    version: crate::record::Version,
    side: schannel::Side,
    cipher: Alg,
    hash: Alg,
    key_exchange: Alg,
}

fn parse_tls_result(text: &str) -> Result<TlsResult, String> {
    let protocol = text
        .strip_prefix("TLS protocol ")
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_default();
    let (version, side) = schannel::protocol_by_name(protocol)
        .ok_or_else(|| format!("TLS protocol {protocol:?} is no SP_PROT_ name"))?;
    Ok(TlsResult {
        protocol: protocol.to_string(),
        version,
        side,
        cipher: algorithm(text, "bulk encryption algorithm "),
        hash: algorithm(text, "MAC hash algorithm "),
        key_exchange: algorithm(text, "key exchange algorithm "),
    })
}

/// The `CALG_X with strength N bits` after `label`: the name in the ALG_ID table's spelling
/// (or as logged when the table has no such name), and the strength.
fn algorithm(text: &str, label: &str) -> Alg {
    let Some(at) = text.find(label) else {
        return (None, None, None);
    };
    let mut words = text[at + label.len()..].split_whitespace();
    let name = words
        .next()
        .unwrap_or_default()
        .trim_end_matches([',', '.']);
    let bits = match (words.next(), words.next(), words.next()) {
        (Some("with"), Some("strength"), Some(n)) => n.parse().ok(),
        _ => None,
    };
    let id = schannel::alg_by_name(name);
    let name = match id {
        Some(id) => Some(alg_text(id)),
        None if name.is_empty() || name == "0" => None,
        None => Some(name.to_string()),
    };
    (name, bits, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_result_line() {
        // Microsoft's example for a receiving Exchange 2010 server (issue 24).
        let tls = parse_tls_result(
            "TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption \
             algorithm CALG_AES_256 with strength 256 bits, MAC hash algorithm CALG_SHA_384 \
             with strength 384 bits and key exchange algorithm CALG_ECDHE with strength 256 \
             bits",
        )
        .unwrap();
        assert_eq!(tls.version.name(), "TLSv1.2");
        assert_eq!(tls.side, schannel::Side::Server);
        assert_eq!(
            tls.cipher,
            (Some("CALG_AES_256".into()), Some(256), Some(0x6610))
        );
        assert_eq!(
            tls.hash,
            (Some("CALG_SHA_384".into()), Some(384), Some(0x800d))
        );
        assert_eq!(
            tls.key_exchange,
            (Some("CALG_ECDH_EPHEM".into()), Some(256), Some(0xae06))
        );
    }
}
