//! Server logs as a second source of evidence beside the wire: IIS W3C logs with the
//! `crypt-*` fields, and Exchange's SMTP receive and send protocol logs. Each TLS session a
//! log describes becomes a [`Record`] like the wire's, with `source` saying which log and a
//! [`LogRecord`](crate::record::LogRecord) in place of the hellos: a log knows what was
//! negotiated, never what the client offered.
//!
//! * [`detect`]: a file is a log by its header (`#Software:` plus `#Fields:` or
//!   `#Log-type:`), plain or gzip-compressed, whatever its name;
//! * [`iis`], [`smtp`]: one parser each, streaming line by line with a bounded session
//!   table, so memory stays flat over years of logs;
//! * [`schannel`]: what the protocol bits and ALG_IDs mean, and where that is documented;
//! * [`LogReader`]: reads a list of log files in time order and hands out records and
//!   [`LogError`]s (a malformed line is one, with its file and line; reading goes on).
//!
//! Gzip is read here with flate2 (a log rotated by a script is often `.gz`), independently of
//! how capture files are opened.

pub mod fields;
pub mod iis;
pub mod schannel;
pub mod smtp;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::engine::Services;
use crate::record::{rfc3339, CaptureRef, ClientEndpoint, Endpoint, LogRecord, Outcome, Record};

/// Which log a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogKind {
    Iis,
    SmtpReceive,
    SmtpSend,
}

impl LogKind {
    /// The records' `source`.
    pub fn source(self) -> &'static str {
        match self {
            LogKind::Iis => "iis-log",
            LogKind::SmtpReceive => "smtp-receive-log",
            LogKind::SmtpSend => "smtp-send-log",
        }
    }
}

/// What a file's first bytes say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    Log(LogKind),
    /// A log of Microsoft's that carries no TLS result (message tracking, an IIS log
    /// without `#Fields:`): the reason, for the error message.
    Unsupported(String),
    /// Not a log: a capture file, or something else for the capture readers to judge.
    NotALog,
}

/// Problems met while reading logs. None ends the run: a malformed line is counted and
/// skipped, an unreadable file is reported and the next one read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{file}: {cause}")]
    Io { file: String, cause: io::Error },
    #[error("{file}:{line}: {why}")]
    Malformed {
        file: String,
        line: u64,
        why: String,
    },
    #[error("{file}: {why}")]
    Unusable { file: String, why: String },
    /// An IIS `#Fields:` without `crypt-protocol`: its requests say nothing of TLS. A note,
    /// not damage.
    #[error(
        "{file}:{line}: #Fields: has no crypt-protocol, so its requests say nothing about TLS: \
         add the crypt-* custom fields to IIS logging (see the README)"
    )]
    NoTlsFields { file: String, line: u64 },
}

impl LogError {
    /// A line that could not be read: counted, reported with its place, and skipped.
    pub(crate) fn malformed(file: &str, line: u64, why: impl Into<String>) -> Self {
        LogError::Malformed {
            file: file.into(),
            line,
            why: why.into(),
        }
    }

    /// Whether the run's exit status should say some input could not be read: a file that
    /// could not be, not a line skipped or a note.
    pub fn is_damage(&self) -> bool {
        matches!(self, LogError::Io { .. } | LogError::Unusable { .. })
    }
}

/// Bytes of a file looked at (after decompression) to find its header.
const SNIFF_BYTES: usize = 8 * 1024;

/// What the header lines at the start of `head` say.
pub fn sniff(head: &[u8]) -> Sniffed {
    let head = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    if !head.starts_with(b"#") {
        return Sniffed::NotALog;
    }
    let (mut iis, mut exchange, mut fields, mut log_type) = (false, false, false, None);
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.starts_with(b"#") {
            break;
        }
        let line = String::from_utf8_lossy(line);
        if let Some(software) = line.strip_prefix("#Software:") {
            let software = software.trim();
            iis |= software.starts_with("Microsoft Internet Information Services");
            exchange |= software.starts_with("Microsoft Exchange Server");
        } else if line.starts_with("#Fields:") {
            fields = true;
        } else if let Some(kind) = line.strip_prefix("#Log-type:") {
            log_type = Some(kind.trim().to_string());
        }
    }
    if iis {
        return if fields {
            Sniffed::Log(LogKind::Iis)
        } else {
            Sniffed::Unsupported("an IIS log without a #Fields: line in its header".into())
        };
    }
    if exchange {
        return match log_type.as_deref() {
            Some(t) if t.starts_with("SMTP Receive Protocol Log") => {
                Sniffed::Log(LogKind::SmtpReceive)
            }
            Some(t) if t.starts_with("SMTP Send Protocol Log") => Sniffed::Log(LogKind::SmtpSend),
            Some(t) => Sniffed::Unsupported(format!(
                "an Exchange log of type {t:?}: only the SMTP Receive and Send protocol logs \
                 carry TLS results"
            )),
            None => Sniffed::Unsupported("an Exchange log without a #Log-type: line".into()),
        };
    }
    Sniffed::NotALog
}

/// Open a log (or any file) for reading, through gzip when it starts with gzip's magic.
/// Concatenated gzip members (what `cat a.gz b.gz` makes) are read as one stream.
pub fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let mut file = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            flate2::bufread::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(file)
    })
}

/// What `path` is, by its first bytes (decompressed when gzip).
pub fn detect(path: &Path) -> io::Result<Sniffed> {
    // Standard input (`-`), a pipe or a device can be read only once: sniffing would eat
    // the bytes the capture reader needs, so streams are always left to it.
    if crate::source::is_stream(path) {
        return Ok(Sniffed::NotALog);
    }
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    // A gzip file cut short still shows its header; a read error past it is no answer.
    let _ = open(path)?.take(SNIFF_BYTES as u64).read_to_end(&mut head);
    Ok(sniff(&head))
}

/// What a run over logs found, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    pub files: u64,
    pub lines: u64,
    pub records: u64,
    pub malformed: u64,
    /// Lines that could not count: no TLS field in their `#Fields:`, or plain HTTP (`-`).
    pub without_tls: u64,
    /// SMTP sessions that ended (or were evicted) without a TLS result.
    pub sessions_without_tls: u64,
}

/// Most malformed lines reported one by one per file; the rest are counted.
pub const REPORTED_PER_FILE: u64 = 20;

/// Reads log files, whatever their kind, keeping each parser's sessions across files (a
/// rotated file continues the sessions of the one before).
pub struct LogReader {
    iis: iis::IisParser,
    receive: smtp::SmtpParser,
    send: smtp::SmtpParser,
    pub stats: LogStats,
}

impl LogReader {
    pub fn new(services: Services) -> Self {
        Self::with_client_fields(services, &[])
    }

    /// A reader that looks for the IIS true client in the custom fields `names` before the
    /// usual ones ([`iis::TRUE_CLIENT_FIELDS`]).
    pub fn with_client_fields(services: Services, names: &[String]) -> Self {
        LogReader {
            iis: iis::IisParser::new(services.clone()).with_client_fields(names),
            receive: smtp::SmtpParser::new(LogKind::SmtpReceive, services.clone()),
            send: smtp::SmtpParser::new(LogKind::SmtpSend, services),
            stats: LogStats::default(),
        }
    }

    /// Read one file of a known kind. Problems go to `on_error`; malformed lines beyond
    /// [`REPORTED_PER_FILE`] are counted, then summed up in one last error.
    pub fn read_file(
        &mut self,
        path: &Path,
        kind: LogKind,
        emit: &mut dyn FnMut(Record),
        on_error: &mut dyn FnMut(LogError),
    ) {
        let file = path.display().to_string();
        self.stats.files += 1;
        let input = match open(path) {
            Ok(input) => input,
            Err(cause) => return on_error(LogError::Io { file, cause }),
        };
        let mut malformed = 0u64;
        let mut problem = |err: LogError| {
            if matches!(err, LogError::Malformed { .. }) {
                malformed += 1;
                if malformed > REPORTED_PER_FILE {
                    return;
                }
            }
            on_error(err);
        };
        let mut counted_emit = |record: Record| {
            self.stats.records += 1;
            emit(record);
        };
        let counts = match kind {
            LogKind::Iis => self.iis.read(input, &file, &mut counted_emit, &mut problem),
            LogKind::SmtpReceive => {
                self.receive
                    .read(input, &file, &mut counted_emit, &mut problem)
            }
            LogKind::SmtpSend => self
                .send
                .read(input, &file, &mut counted_emit, &mut problem),
        };
        if malformed > REPORTED_PER_FILE {
            on_error(LogError::Malformed {
                file: file.clone(),
                line: counts.lines,
                why: format!(
                    "{malformed} malformed lines in this file in all; the first \
                     {REPORTED_PER_FILE} were reported"
                ),
            });
        }
        if let Some(cause) = counts.error {
            on_error(LogError::Io { file, cause });
        }
        self.stats.lines += counts.lines;
        self.stats.malformed += malformed;
        self.stats.without_tls += counts.without_tls;
    }

    /// The end of the input: sessions still open are let go.
    pub fn finish(&mut self) {
        self.stats.sessions_without_tls += self.receive.finish() + self.send.finish();
    }
}

/// Read `files` (each with its kind) in the order of their first time, as one stream per
/// kind; `client_fields` name the IIS true client's custom field(s) if not a usual name.
/// Returns what was counted.
pub fn read_logs(
    files: &[(PathBuf, LogKind)],
    services: &Services,
    client_fields: &[String],
    emit: &mut dyn FnMut(Record),
    on_error: &mut dyn FnMut(LogError),
) -> LogStats {
    let mut ordered: Vec<(Option<i64>, usize, &PathBuf, LogKind)> = files
        .iter()
        .enumerate()
        .map(|(i, (path, kind))| (first_time(path), i, path, *kind))
        .collect();
    // Files without a time keep their place after the timed ones.
    ordered.sort_by_key(|(ts, i, _, _)| (ts.is_none(), *ts, *i));
    let mut reader = LogReader::with_client_fields(services.clone(), client_fields);
    for (_, _, path, kind) in ordered {
        reader.read_file(path, kind, emit, on_error);
    }
    reader.finish();
    reader.stats
}

/// The time of a log's first data line, to put rotated files in order.
fn first_time(path: &Path) -> Option<i64> {
    let mut input = open(path).ok()?;
    let mut line = Vec::new();
    for _ in 0..64 {
        line.clear();
        if input.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        if line.starts_with(b"#") {
            continue;
        }
        // IIS: `date time ...` (when date and time lead, as they do by default);
        // Exchange: `date-time,...`.
        let text = std::str::from_utf8(&line).ok()?;
        if let Some(ts) = fields::iso_nanos(text.split(',').next()?.as_bytes()) {
            return Some(ts);
        }
        let mut words = text.split(' ');
        return fields::utc_nanos(words.next()?.as_bytes(), words.next()?.trim().as_bytes());
    }
    None
}

/// Who and what one logged TLS session was, for [`log_record`].
pub(crate) struct Session<'a> {
    pub kind: LogKind,
    pub ts_nanos: i64,
    pub client: (IpAddr, u16),
    /// The true client a load balancer named (IIS custom field).
    pub true_client: Option<IpAddr>,
    pub server: (IpAddr, u16),
    pub services: &'a Services,
    pub file: &'a str,
    pub line: u64,
    pub starttls: Option<&'static str>,
    pub log: LogRecord,
}

/// The record of a logged session: the wire's shape, with no hellos.
pub(crate) fn log_record(s: Session<'_>) -> Record {
    let mail = s.kind != LogKind::Iis;
    Record {
        ts: rfc3339(s.ts_nanos),
        client: ClientEndpoint {
            ip: s.client.0,
            port: s.client.1,
            proxied: s
                .true_client
                .filter(|ip| *ip != s.client.0)
                .map(|ip| Endpoint { ip, port: 0 }),
        },
        server: Endpoint {
            ip: s.server.0,
            port: s.server.1,
        },
        // The logs name no transport; their sessions (SMTP, HTTPS) are taken to be TCP.
        transport: "tcp",
        service: service_name(s.kind, s.services.name(s.server.1)),
        starttls: s.starttls,
        starttls_offered: (mail && s.starttls.is_some()).then_some(true),
        starttls_reply: s.starttls.map(|_| "accepted".to_string()),
        client_hello: None,
        server_hello: None,
        outcome: Outcome::Negotiated,
        alerts: Vec::new(),
        encrypted_alerts: 0,
        handshake_us: None,
        client_hellos: 0,
        capture: CaptureRef {
            file: s.file.to_string(),
            frame: s.line,
        },
        // The EHLO a log keeps is in `log.ehlo`; no certificate is logged.
        smtp: None,
        imap: None,
        certificate: None,
        source: s.kind.source(),
        log: Some(s.log),
    }
}

/// The service of a logged session: the server port's name, as on the wire; a port with
/// no name of its own (`tcp/N`) is named by the log, which says what was spoken on it:
/// `smtp` for an SMTP protocol log, `https` for IIS (Exchange's back-end site on 444).
fn service_name(kind: LogKind, by_port: String) -> String {
    if !by_port.starts_with("tcp/") {
        return by_port;
    }
    match kind {
        LogKind::Iis => "https".into(),
        LogKind::SmtpReceive | LogKind::SmtpSend => "smtp".into(),
    }
}

/// A `CALG_*` name for an ALG_ID, or its hex when Microsoft's table has no name for it.
pub(crate) fn alg_text(id: u32) -> String {
    schannel::alg_name(id).map_or_else(|| format!("{id:#06x}"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_log() {
        let iis = b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n\
                    #Date: 2024-05-01 00:00:00\r\n#Fields: date time c-ip\r\n";
        assert_eq!(sniff(iis), Sniffed::Log(LogKind::Iis));
        let receive = b"\xef\xbb\xbf#Software: Microsoft Exchange Server\r\n#Version: 15.0.0.0\r\n\
                        #Log-type: SMTP Receive Protocol Log\r\n#Fields: date-time,x\r\n";
        assert_eq!(sniff(receive), Sniffed::Log(LogKind::SmtpReceive));
        let send = b"#Software: Microsoft Exchange Server\n#Log-type: SMTP Send Protocol Log\n";
        assert_eq!(sniff(send), Sniffed::Log(LogKind::SmtpSend));
        let tracking = b"#Software: Microsoft Exchange Server\n#Log-type: Message Tracking Log\n";
        assert!(matches!(sniff(tracking), Sniffed::Unsupported(_)));
        assert_eq!(sniff(b"\xd4\xc3\xb2\xa1"), Sniffed::NotALog);
        assert_eq!(sniff(b"#Software: something else\n"), Sniffed::NotALog);
    }
}
