//! A JSON record line read back into a [`Record`]: the census of `report --from` is built
//! from the very lines a sensor wrote, by the same [`crate::census::Census::add`] as a
//! local run, so the two censuses are equal.
//!
//! The record format's names map back to values: `TLSv1.2` or a hex code to a version,
//! `negotiated` to an outcome, an alert code to its registry name.

use std::net::IpAddr;

use serde::Deserialize;

use crate::logs::schannel::{self, Side};
use crate::logs::LogKind;
use crate::record::{
    alert_name, AlertRecord, CaptureRef, ClientEndpoint, ClientHelloRecord, Endpoint, ImapClient,
    LogRecord, Outcome, Record, Sender, ServerHelloRecord, SmtpClient, Version, SOURCE_WIRE,
};
use crate::tls::certificate::CertificateChain;

/// Why a line is not a record.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a tlscensus record: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown version {0:?}")]
    Version(String),
    #[error("unknown outcome {0:?}")]
    Outcome(String),
    #[error("unknown transport {0:?}")]
    Transport(String),
    #[error("unknown source {0:?}")]
    Source(String),
    #[error("unknown {field} {value:?} in a log record")]
    LogValue { field: &'static str, value: String },
}

#[derive(Deserialize)]
struct EndpointIn {
    ip: IpAddr,
    port: u16,
}

#[derive(Deserialize)]
struct ClientIn {
    ip: IpAddr,
    port: u16,
    proxied: Option<EndpointIn>,
}

#[derive(Deserialize)]
struct AlertIn {
    from: String,
    level: u8,
    description: u8,
}

#[derive(Deserialize)]
struct ClientHelloIn {
    record_version: String,
    legacy_version: String,
    supported_versions: Vec<String>,
    max_version: String,
    sslv2_format: bool,
    cipher_suites: Vec<u16>,
    extensions: Vec<u16>,
    sni: Option<String>,
    alpn: Vec<String>,
    supported_groups: Vec<u16>,
    ja3: String,
    ja3_full: String,
    ja4: String,
    #[serde(default)]
    sslv2_cipher_specs: Vec<u32>,
}

#[derive(Deserialize)]
struct ServerHelloIn {
    version: String,
    legacy_version: String,
    cipher_suite: u32,
    extensions: Vec<u16>,
    alpn: Option<String>,
    hrr: bool,
    sslv2_format: bool,
    ja3s: String,
    ja4s: String,
}

#[derive(Deserialize)]
struct CaptureIn {
    file: String,
    frame: u64,
}

/// [`LogRecord`] with owned text where it has fixed names.
#[derive(Deserialize)]
struct LogRecordIn {
    version: String,
    protocol: String,
    schannel_side: String,
    cipher: Option<String>,
    hash: Option<String>,
    key_exchange: Option<String>,
    cipher_bits: Option<u32>,
    hash_bits: Option<u32>,
    key_exchange_bits: Option<u32>,
    weak: Option<String>,
    ehlo: Option<String>,
    session: Option<String>,
    connector: Option<String>,
}

#[derive(Deserialize)]
struct RecordIn {
    // Keys added after the first record format: absent from older sensors' lines.
    #[serde(default)]
    smtp: Option<SmtpClient>,
    #[serde(default)]
    imap: Option<ImapClient>,
    #[serde(default)]
    certificate: Option<CertificateChain>,
    /// Absent from lines written before QUIC: those were all TCP.
    #[serde(default)]
    transport: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    log: Option<LogRecordIn>,
    ts: String,
    client: ClientIn,
    server: EndpointIn,
    service: String,
    starttls: Option<String>,
    starttls_offered: Option<bool>,
    starttls_reply: Option<String>,
    client_hello: Option<ClientHelloIn>,
    server_hello: Option<ServerHelloIn>,
    outcome: String,
    alerts: Vec<AlertIn>,
    encrypted_alerts: u32,
    handshake_us: Option<u64>,
    client_hellos: u32,
    capture: CaptureIn,
}

/// `TLSv1.2` → 0x0303, `0x7f1c` → 0x7f1c: the inverse of [`Version::name`].
pub fn version_of(name: &str) -> Result<Version, RecordError> {
    let code = match name {
        "SSLv2" => 0x0002,
        "SSLv3" => 0x0300,
        "TLSv1.0" => 0x0301,
        "TLSv1.1" => 0x0302,
        "TLSv1.2" => 0x0303,
        "TLSv1.3" => 0x0304,
        other => other
            .strip_prefix("0x")
            .and_then(|hex| u16::from_str_radix(hex, 16).ok())
            .ok_or_else(|| RecordError::Version(other.to_string()))?,
    };
    Ok(Version(code))
}

fn outcome_of(name: &str) -> Result<Outcome, RecordError> {
    [
        Outcome::Negotiated,
        Outcome::Alert,
        Outcome::NoServerHello,
        Outcome::Incomplete,
        Outcome::Plaintext,
    ]
    .into_iter()
    .find(|o| o.name() == name)
    .ok_or_else(|| RecordError::Outcome(name.to_string()))
}

/// `tcp` (also when the key is absent) or `udp` (QUIC): the names [`Record::transport`] takes.
fn transport_of(name: Option<&str>) -> Result<&'static str, RecordError> {
    match name {
        None | Some("tcp") => Ok("tcp"),
        Some("udp") => Ok("udp"),
        Some(other) => Err(RecordError::Transport(other.to_string())),
    }
}

/// The command names the engine writes; another name is kept as `STARTTLS` (the census
/// only asks whether one was sent).
fn starttls_of(name: &str) -> &'static str {
    match name {
        "X-ANONYMOUSTLS" => "X-ANONYMOUSTLS",
        "STLS" => "STLS",
        _ => "STARTTLS",
    }
}

/// The record's `source`, one of the names [`crate::logs::LogKind::source`] and
/// [`SOURCE_WIRE`] write; lines from before sources were recorded are from the wire.
fn source_of(name: Option<&str>) -> Result<&'static str, RecordError> {
    match name {
        None => Ok(SOURCE_WIRE),
        Some(name) => [
            SOURCE_WIRE,
            LogKind::Iis.source(),
            LogKind::SmtpReceive.source(),
            LogKind::SmtpSend.source(),
        ]
        .into_iter()
        .find(|s| *s == name)
        .ok_or_else(|| RecordError::Source(name.to_string())),
    }
}

/// One of a fixed set of names, as the `&'static str` the record holds.
fn one_of(
    field: &'static str,
    names: &[&'static str],
    value: &str,
) -> Result<&'static str, RecordError> {
    names
        .iter()
        .find(|n| **n == value)
        .copied()
        .ok_or_else(|| RecordError::LogValue {
            field,
            value: value.to_string(),
        })
}

fn log_of(l: LogRecordIn) -> Result<LogRecord, RecordError> {
    Ok(LogRecord {
        version: version_of(&l.version)?,
        protocol: l.protocol,
        schannel_side: one_of(
            "schannel_side",
            &[Side::Server.name(), Side::Client.name()],
            &l.schannel_side,
        )?,
        cipher: l.cipher,
        hash: l.hash,
        key_exchange: l.key_exchange,
        cipher_bits: l.cipher_bits,
        hash_bits: l.hash_bits,
        key_exchange_bits: l.key_exchange_bits,
        weak: l
            .weak
            .map(|w| one_of("weak", schannel::WEAKNESSES, &w))
            .transpose()?,
        ehlo: l.ehlo,
        session: l.session,
        connector: l.connector,
    })
}

/// Parse one record line.
pub fn parse(line: &str) -> Result<Record, RecordError> {
    let r: RecordIn = serde_json::from_str(line)?;
    let client_hello = match r.client_hello {
        Some(c) => Some(ClientHelloRecord {
            record_version: version_of(&c.record_version)?,
            legacy_version: version_of(&c.legacy_version)?,
            supported_versions: c
                .supported_versions
                .iter()
                .map(|v| version_of(v))
                .collect::<Result<_, _>>()?,
            max_version: version_of(&c.max_version)?,
            sslv2_format: c.sslv2_format,
            cipher_suites: c.cipher_suites,
            extensions: c.extensions,
            sni: c.sni,
            alpn: c.alpn,
            supported_groups: c.supported_groups,
            ja3: c.ja3,
            ja3_full: c.ja3_full,
            ja4: c.ja4,
            sslv2_cipher_specs: c.sslv2_cipher_specs,
        }),
        None => None,
    };
    let server_hello = match r.server_hello {
        Some(s) => Some(ServerHelloRecord {
            version: version_of(&s.version)?,
            legacy_version: version_of(&s.legacy_version)?,
            cipher_suite: s.cipher_suite,
            extensions: s.extensions,
            alpn: s.alpn,
            hrr: s.hrr,
            sslv2_format: s.sslv2_format,
            ja3s: s.ja3s,
            ja4s: s.ja4s,
        }),
        None => None,
    };
    Ok(Record {
        ts: r.ts,
        client: ClientEndpoint {
            ip: r.client.ip,
            port: r.client.port,
            proxied: r.client.proxied.map(|p| Endpoint {
                ip: p.ip,
                port: p.port,
            }),
        },
        server: Endpoint {
            ip: r.server.ip,
            port: r.server.port,
        },
        transport: transport_of(r.transport.as_deref())?,
        service: r.service,
        starttls: r.starttls.as_deref().map(starttls_of),
        starttls_offered: r.starttls_offered,
        starttls_reply: r.starttls_reply,
        client_hello,
        server_hello,
        outcome: outcome_of(&r.outcome)?,
        alerts: r
            .alerts
            .into_iter()
            .map(|a| AlertRecord {
                from: if a.from == "client" {
                    Sender::Client
                } else {
                    Sender::Server
                },
                level: a.level,
                description: a.description,
                description_name: alert_name(a.description),
            })
            .collect(),
        encrypted_alerts: r.encrypted_alerts,
        handshake_us: r.handshake_us,
        client_hellos: r.client_hellos,
        capture: CaptureRef {
            file: r.capture.file,
            frame: r.capture.frame,
        },
        smtp: r.smtp,
        imap: r.imap,
        certificate: r.certificate,
        source: source_of(r.source.as_deref())?,
        log: r.log.map(log_of).transpose()?,
    })
}
