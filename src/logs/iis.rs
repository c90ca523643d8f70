//! IIS W3C extended logs: one line per request, space-separated, fields named by the last
//! `#Fields:` line (IIS writes a new one after each restart or configuration change, in the
//! middle of a file, and it is followed from there on).
//!
//! The TLS fields are the custom fields `crypt-protocol`, `crypt-cipher`, `crypt-hash` and
//! `crypt-keyexchange` (Windows Server 2012 R2 and later), in hex without `0x`; `-` on plain
//! HTTP. The client is `c-ip`; a load balancer's true client comes from a custom field: one
//! the admin names (`read --client-field`), else one of [`TRUE_CLIENT_FIELDS`], each also
//! as `cs(NAME)` (how IIS names a logged request header).
//!
//! IIS logs requests, not connections: lines of the same client, server, port and TLS
//! parameters less than [`SESSION_GAP_NANOS`] apart are one session (IIS closes an idle
//! connection after two minutes by default, `connectionTimeout`), and its first line makes
//! the record. The table of open sessions is bounded ([`MAX_OPEN_SESSIONS`]); when it is full,
//! ended sessions go first and, if that is not enough, all of them: at worst a session is
//! counted twice, never lost.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::IpAddr;

use super::{alg_text, fields, log_record, schannel, LogError, LogKind, Session};
use crate::engine::Services;
use crate::record::{LogRecord, Record};

/// Requests further apart than this start a new session.
pub const SESSION_GAP_NANOS: i64 = 120 * 1_000_000_000;

/// Most sessions remembered at once.
pub const MAX_OPEN_SESSIONS: usize = 1 << 16;

/// Custom field names a load balancer's client address is commonly logged under, in the
/// order they are looked for (compared without case, each also as `cs(NAME)`): the names
/// Exchange guides give, and the request headers load balancers and CDNs set.
pub const TRUE_CLIENT_FIELDS: [&str; 8] = [
    "OriginalClientIP",
    "OriginalIP",
    "X-Original-Client-IP",
    "X-Forwarded-For",
    "X-Real-IP",
    "True-Client-IP",
    "X-Client-IP",
    "X-Cluster-Client-IP",
];

/// Whether a `#Fields:` name is the field `wanted`, plain or as `cs(wanted)`.
fn names_field(name: &str, wanted: &str) -> bool {
    name.eq_ignore_ascii_case(wanted)
        || name
            .strip_prefix("cs(")
            .or_else(|| name.strip_prefix("CS("))
            .and_then(|n| n.strip_suffix(')'))
            .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
}

/// Where each field is in a line, from the current `#Fields:`.
#[derive(Debug, Default)]
struct Layout {
    count: usize,
    date: usize,
    time: usize,
    c_ip: usize,
    s_ip: usize,
    s_port: Option<usize>,
    protocol: Option<usize>,
    cipher: Option<usize>,
    hash: Option<usize>,
    key_exchange: Option<usize>,
    true_client: Option<usize>,
}

impl Layout {
    fn parse(names: &str, true_client_fields: &[String]) -> Result<Layout, String> {
        let names: Vec<&str> = names.split_whitespace().collect();
        let find = |name: &str| names.iter().position(|n| n.eq_ignore_ascii_case(name));
        let need = |name: &str| {
            find(name).ok_or_else(|| {
                format!("#Fields: has no {name}: its lines cannot be placed and are skipped")
            })
        };
        Ok(Layout {
            count: names.len(),
            date: need("date")?,
            time: need("time")?,
            c_ip: need("c-ip")?,
            s_ip: need("s-ip")?,
            s_port: find("s-port"),
            protocol: find("crypt-protocol"),
            cipher: find("crypt-cipher"),
            hash: find("crypt-hash"),
            key_exchange: find("crypt-keyexchange"),
            true_client: true_client_fields
                .iter()
                .find_map(|wanted| names.iter().position(|n| names_field(n, wanted))),
        })
    }
}

/// What identifies one client's connection across its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SessionKey {
    client: IpAddr,
    true_client: Option<IpAddr>,
    server: IpAddr,
    port: u16,
    protocol: u32,
    cipher: Option<u32>,
    hash: Option<u32>,
    key_exchange: Option<u32>,
}

/// Counts of one file, for [`super::LogStats`].
#[derive(Debug, Default)]
pub struct FileCounts {
    pub lines: u64,
    pub without_tls: u64,
    /// A read error that ended the file early.
    pub error: Option<std::io::Error>,
}

/// The IIS parser; its sessions last across files (see [`super::LogReader`]).
pub struct IisParser {
    services: Services,
    /// Field names of the true client, looked for in this order.
    true_client_fields: Vec<String>,
    /// Session → time of its last request.
    sessions: HashMap<SessionKey, i64>,
}

impl IisParser {
    pub fn new(services: Services) -> Self {
        IisParser {
            services,
            true_client_fields: TRUE_CLIENT_FIELDS.iter().map(|n| n.to_string()).collect(),
            sessions: HashMap::new(),
        }
    }

    /// Look for the true client in the custom fields `names` first (what an admin named
    /// it, e.g. `X-LB-Client`), then in the usual [`TRUE_CLIENT_FIELDS`].
    pub fn with_client_fields(mut self, names: &[String]) -> Self {
        let mut fields = names.to_vec();
        fields.append(&mut self.true_client_fields);
        self.true_client_fields = fields;
        self
    }

    /// Read one file (or stream) to its end.
    pub fn read(
        &mut self,
        mut input: impl BufRead,
        file: &str,
        emit: &mut dyn FnMut(Record),
        problem: &mut dyn FnMut(LogError),
    ) -> FileCounts {
        let mut counts = FileCounts::default();
        let mut layout: Option<Result<Layout, String>> = None;
        let mut line = Vec::with_capacity(1024);
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(32);
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    counts.error = Some(e);
                    break;
                }
            }
            counts.lines += 1;
            let number = counts.lines;
            let text = trim_line_end(&line);
            if text.is_empty() {
                continue;
            }
            if text[0] == b'#' {
                if let Some(names) = text.strip_prefix(b"#Fields:") {
                    let parsed =
                        Layout::parse(&String::from_utf8_lossy(names), &self.true_client_fields);
                    match &parsed {
                        Err(why) => problem(LogError::malformed(file, number, why.clone())),
                        Ok(layout) if layout.protocol.is_none() => problem(LogError::NoTlsFields {
                            file: file.into(),
                            line: number,
                        }),
                        Ok(_) => {}
                    }
                    layout = Some(parsed);
                }
                continue;
            }
            let layout = match &layout {
                Some(Ok(layout)) => layout,
                // Its #Fields: was reported once.
                Some(Err(_)) => {
                    counts.without_tls += 1;
                    continue;
                }
                None => {
                    problem(LogError::malformed(
                        file,
                        number,
                        "a request line before any #Fields: line",
                    ));
                    continue;
                }
            };
            spans.clear();
            let mut start = 0;
            for (i, &b) in text.iter().enumerate() {
                if b == b' ' {
                    spans.push((start, i));
                    start = i + 1;
                }
            }
            spans.push((start, text.len()));
            if spans.len() != layout.count {
                problem(LogError::malformed(
                    file,
                    number,
                    format!(
                        "{} fields where #Fields: names {}",
                        spans.len(),
                        layout.count
                    ),
                ));
                continue;
            }
            let field = |i: usize| &text[spans[i].0..spans[i].1];
            let Some(protocol_field) = layout.protocol.map(field) else {
                counts.without_tls += 1;
                continue;
            };
            if protocol_field == b"-" {
                counts.without_tls += 1;
                continue;
            }
            match self.line(layout, &field, file, number) {
                Ok(Some(record)) => emit(record),
                Ok(None) => {}
                Err(why) => problem(LogError::malformed(file, number, why)),
            }
        }
        counts
    }

    /// One TLS request line: a record when it starts a session.
    fn line<'t>(
        &mut self,
        layout: &Layout,
        field: &dyn Fn(usize) -> &'t [u8],
        file: &str,
        number: u64,
    ) -> Result<Option<Record>, String> {
        let text = |i: usize| String::from_utf8_lossy(field(i));
        let ts = fields::utc_nanos(field(layout.date), field(layout.time)).ok_or_else(|| {
            format!(
                "date and time {:?} {:?} are not YYYY-MM-DD hh:mm:ss",
                text(layout.date),
                text(layout.time)
            )
        })?;
        let ip = |i: usize, name: &str| {
            text(i)
                .parse::<IpAddr>()
                .map_err(|_| format!("{name} {:?} is not an address", text(i)))
        };
        let client = ip(layout.c_ip, "c-ip")?;
        let server = ip(layout.s_ip, "s-ip")?;
        let port = match layout.s_port {
            Some(i) => text(i)
                .parse::<u16>()
                .map_err(|_| format!("s-port {:?} is not a port", text(i)))?,
            None => 443,
        };
        let protocol_text = text(layout.protocol.expect("checked by the caller")).into_owned();
        let bits = u32::from_str_radix(&protocol_text, 16)
            .map_err(|_| format!("crypt-protocol {protocol_text:?} is not hex"))?;
        let (version, side) = schannel::protocol_by_bits(bits)
            .ok_or_else(|| format!("crypt-protocol {protocol_text:?} is no SP_PROT_ value"))?;
        let alg = |i: Option<usize>, name: &str| -> Result<Option<u32>, String> {
            let Some(i) = i else { return Ok(None) };
            match field(i) {
                b"-" => Ok(None),
                hex => match u32::from_str_radix(&String::from_utf8_lossy(hex), 16) {
                    Ok(0) => Ok(None),
                    Ok(id) => Ok(Some(id)),
                    Err(_) => Err(format!("{name} {:?} is not hex", text(i))),
                },
            }
        };
        let cipher = alg(layout.cipher, "crypt-cipher")?;
        let hash = alg(layout.hash, "crypt-hash")?;
        let key_exchange = alg(layout.key_exchange, "crypt-keyexchange")?;
        let true_client = layout
            .true_client
            .and_then(|i| fields::forwarded_client(&text(i)));

        let key = SessionKey {
            client,
            true_client,
            server,
            port,
            protocol: bits,
            cipher,
            hash,
            key_exchange,
        };
        if let Some(last) = self.sessions.get_mut(&key) {
            let same = (ts - *last).abs() <= SESSION_GAP_NANOS;
            *last = ts.max(*last);
            if same {
                return Ok(None);
            }
            *last = ts;
        } else {
            if self.sessions.len() >= MAX_OPEN_SESSIONS {
                self.sessions
                    .retain(|_, last| (ts - *last).abs() <= SESSION_GAP_NANOS);
                if self.sessions.len() >= MAX_OPEN_SESSIONS {
                    self.sessions.clear();
                }
            }
            self.sessions.insert(key, ts);
        }
        Ok(Some(log_record(Session {
            kind: LogKind::Iis,
            ts_nanos: ts,
            client: (client, 0),
            true_client,
            server: (server, port),
            services: &self.services,
            file,
            line: number,
            starttls: None,
            log: LogRecord {
                version,
                protocol: protocol_text,
                schannel_side: side.name(),
                cipher: cipher.map(alg_text),
                hash: hash.map(alg_text),
                key_exchange: key_exchange.map(alg_text),
                cipher_bits: None,
                hash_bits: None,
                key_exchange_bits: None,
                weak: schannel::weakness(cipher, hash),
                ehlo: None,
                session: None,
                connector: None,
            },
        })))
    }
}

/// A line without its `\n` or `\r\n`.
pub(crate) fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_client_fields_plain_or_as_request_headers() {
        assert!(names_field("cs(X-Forwarded-For)", "x-forwarded-for"));
        assert!(names_field("originalclientip", "OriginalClientIP"));
        assert!(!names_field("cs(X-Forwarded-For)x", "X-Forwarded-For"));
        let defaults: Vec<String> = TRUE_CLIENT_FIELDS.iter().map(|n| n.to_string()).collect();
        let fields = "date time s-ip c-ip crypt-protocol cs(X-Real-IP)";
        assert_eq!(
            Layout::parse(fields, &defaults).unwrap().true_client,
            Some(5)
        );
        let named = vec!["X-LB-Client".to_string()];
        let fields = "date time s-ip c-ip crypt-protocol X-Forwarded-For X-LB-Client";
        assert_eq!(Layout::parse(fields, &named).unwrap().true_client, Some(6));
        assert_eq!(
            Layout::parse(fields, &defaults).unwrap().true_client,
            Some(5)
        );
    }
}
