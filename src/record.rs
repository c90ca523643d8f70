//! The connection record: one JSON object per line per TCP connection (or QUIC connection)
//! that carried a hello.
//!
//! This is a public interface: keys may be added, never renamed or dropped. Versions are
//! written `SSLv2` … `TLSv1.3`, any other value as its hex code (`0x7f1c`); cipher suites,
//! extension types and groups are numbers, as on the wire.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize, Serializer};

use crate::tls::certificate::CertificateChain;
use crate::tls::fingerprint::Transport;
use crate::tls::hello::{is_grease, ClientHello, ServerHello};
use crate::tls::hello_fingerprints;

/// A protocol version code, serialised by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u16);

impl Version {
    /// `TLSv1.2`, or the hex code of a version without a name (`0x7f1c`). Borrowed for the
    /// named ones: the census names two versions per connection.
    pub fn name(self) -> Cow<'static, str> {
        match self.0 {
            0x0002 => "SSLv2".into(),
            0x0300 => "SSLv3".into(),
            0x0301 => "TLSv1.0".into(),
            0x0302 => "TLSv1.1".into(),
            0x0303 => "TLSv1.2".into(),
            0x0304 => "TLSv1.3".into(),
            other => format!("{other:#06x}").into(),
        }
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

/// How the handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A ServerHello selected a version and suite (and no fatal alert followed).
    Negotiated,
    /// A plaintext alert ended the handshake: fatal, or any alert before the ServerHello.
    Alert,
    /// A whole ClientHello, and the server sent no ServerHello.
    NoServerHello,
    /// A hello could not be seen whole: missing segments, a snap length, the capture's end.
    Incomplete,
    /// A mail session (SMTP, IMAP, POP3) that ended without starting TLS.
    Plaintext,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Negotiated => "negotiated",
            Outcome::Alert => "alert",
            Outcome::NoServerHello => "no_server_hello",
            Outcome::Incomplete => "incomplete",
            Outcome::Plaintext => "plaintext",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    Client,
    Server,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    pub from: Sender,
    /// 1 warning, 2 fatal (RFC 8446 6).
    pub level: u8,
    /// AlertDescription code (RFC 8446 6, IANA registry).
    pub description: u8,
    /// Its registry name, for people reading the record.
    pub description_name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// The client: the address on the wire, and the one a load balancer's PROXY header named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientEndpoint {
    pub ip: IpAddr,
    pub port: u16,
    /// The true client as the load balancer saw it (PROXY protocol v1/v2), if one spoke.
    pub proxied: Option<Endpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaptureRef {
    /// The capture file the ClientHello (or first hello) came from.
    pub file: String,
    /// Its frame number in that file, as Wireshark numbers frames.
    pub frame: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientHelloRecord {
    pub record_version: Version,
    pub legacy_version: Version,
    /// GREASE removed.
    pub supported_versions: Vec<Version>,
    pub max_version: Version,
    pub sslv2_format: bool,
    pub cipher_suites: Vec<u16>,
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub supported_groups: Vec<u16>,
    pub ja3: String,
    pub ja3_full: String,
    pub ja4: String,
    /// SSLv2 3-byte cipher specs, present only for SSLv2-format hellos.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sslv2_cipher_specs: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerHelloRecord {
    /// The version the server selected (`supported_versions` for TLS 1.3).
    pub version: Version,
    pub legacy_version: Version,
    pub cipher_suite: u32,
    pub extensions: Vec<u16>,
    pub alpn: Option<String>,
    /// A HelloRetryRequest was sent on this connection.
    pub hrr: bool,
    pub sslv2_format: bool,
    pub ja3s: String,
    pub ja4s: String,
}

/// One TCP connection's handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// RFC 3339 UTC time of the ClientHello (of the first hello seen when there is none).
    pub ts: String,
    pub client: ClientEndpoint,
    pub server: Endpoint,
    /// `tcp`, or `udp` for TLS carried in QUIC Initial packets.
    pub transport: &'static str,
    /// `smtp`, `submission`, `smtps`, `imap`, `imaps`, `pop3`, `pop3s`, `https`, or
    /// `tcp/PORT`, from the server's port and the configured mail ports; over QUIC
    /// `https/quic` (port 443) or `udp/PORT`.
    pub service: String,
    /// The plaintext command that started TLS (`STARTTLS`, `X-ANONYMOUSTLS`, `STLS`), or null.
    pub starttls: Option<&'static str>,
    /// For mail sessions, whether the server advertised a way to start TLS; null otherwise.
    pub starttls_offered: Option<bool>,
    /// The server's answer to the STARTTLS request: `accepted`, or the refusal (`454`,
    /// `NO`, `BAD`, `-ERR`, ...); null when none was asked or no answer was seen.
    pub starttls_reply: Option<String>,
    pub client_hello: Option<ClientHelloRecord>,
    pub server_hello: Option<ServerHelloRecord>,
    pub outcome: Outcome,
    pub alerts: Vec<AlertRecord>,
    /// Encrypted alert records seen (after ChangeCipherSpec), by sender; usually close_notify.
    pub encrypted_alerts: u32,
    /// Microseconds from the ClientHello to the ServerHello, when both were seen.
    pub handshake_us: Option<u64>,
    /// ClientHello messages seen (2 after a HelloRetryRequest).
    pub client_hellos: u32,
    /// Where the record came from. For a log, `file` is the log file and `frame` the line
    /// that gave the TLS result.
    pub capture: CaptureRef,
    /// SMTP sessions whose client gave a name in clear: `{"helo": "mx1.example.org"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpClient>,
    /// IMAP sessions whose client sent ID (RFC 2971) in clear: `{"id": "Thunderbird 115"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imap: Option<ImapClient>,
    /// The server's certificate chain as its Certificate message showed it (TLS ≤ 1.2 sends
    /// it in clear): `seen_whole`, `message_length`, `chain_length`, a `leaf` summary, or
    /// `leaf_error`. Null when no Certificate message was seen (TLS 1.3, resumption).
    pub certificate: Option<CertificateChain>,
    /// `wire` (a capture), `iis-log`, `smtp-receive-log` or `smtp-send-log` (a server's
    /// log, see [`LogRecord`]).
    pub source: &'static str,
    /// What a server log said about the session; absent for records from the wire. Such a
    /// record has no hellos: only the negotiated version and algorithms are known, never
    /// what the client offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogRecord>,
}

/// The `source` of records from captures.
pub const SOURCE_WIRE: &str = "wire";

/// A TLS session as an IIS or Exchange SMTP log described it (see `src/logs/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogRecord {
    /// The negotiated version.
    pub version: Version,
    /// The protocol as logged: Exchange's `SP_PROT_TLS1_2_SERVER`, IIS's hex `400`.
    pub protocol: String,
    /// Schannel was the `server` or the `client` (from the protocol's `_SERVER`/`_CLIENT`
    /// bit): an Exchange send log is the client side.
    pub schannel_side: &'static str,
    /// Bulk cipher, MAC hash and key exchange as `CALG_*` names of Microsoft's ALG_ID table
    /// (Exchange's `CALG_ECDHE` is written `CALG_ECDH_EPHEM`), or the hex ALG_ID when it
    /// has no name there; null when the log has no value (`-`, `0` or a missing field).
    pub cipher: Option<String>,
    pub hash: Option<String>,
    pub key_exchange: Option<String>,
    /// Strengths in bits, as Exchange logs them (IIS logs none).
    pub cipher_bits: Option<u32>,
    pub hash_bits: Option<u32>,
    pub key_exchange_bits: Option<u32>,
    /// Why the cipher or MAC is weak (`RC4`, `3DES`, `DES`, `RC2`, `NULL`, `MD5`), if it is.
    pub weak: Option<&'static str>,
    /// The client's EHLO/HELO name (SMTP logs).
    pub ehlo: Option<String>,
    /// Exchange's session-id and receive/send connector (SMTP logs).
    pub session: Option<String>,
    pub connector: Option<String>,
}

/// What an SMTP client said of itself before TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpClient {
    /// The EHLO / HELO / LHLO argument (the first one given), as sent: chosen by the client.
    pub helo: String,
}

/// What an IMAP client said of itself before TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapClient {
    /// The ID command's `name` and `version` fields.
    pub id: String,
}

/// RFC 3339 with microseconds, UTC.
pub fn rfc3339(ts_nanos: i64) -> String {
    if let Some(text) = rfc3339_common(ts_nanos) {
        return text;
    }
    let time = if ts_nanos >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(ts_nanos as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_nanos(ts_nanos.unsigned_abs())
    };
    humantime::format_rfc3339_micros(time).to_string()
}

/// [`rfc3339`] of a time from 1970 on (every record's, in practice; nanoseconds in an i64
/// end in 2262), written straight into a string of its final size: the formatter machinery
/// and the string's growth cost more than the calendar arithmetic. Earlier times are left to
/// humantime.
fn rfc3339_common(ts_nanos: i64) -> Option<String> {
    if ts_nanos < 0 {
        return None;
    }
    let (secs, nanos) = (ts_nanos / 1_000_000_000, ts_nanos % 1_000_000_000);
    let (year, month, day) = crate::time::civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let mut text = [0u8; 27];
    let mut put = |at: usize, value: i64, digits: usize| {
        let mut value = value;
        for i in (at..at + digits).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, of_day / 3600, 2);
    put(14, of_day / 60 % 60, 2);
    put(17, of_day % 60, 2);
    put(20, nanos / 1000, 6);
    for (at, separator) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        text[at] = separator;
    }
    text[19] = b'.';
    text[26] = b'Z';
    // Only ASCII digits and separators were written.
    String::from_utf8(text.to_vec()).ok()
}

impl ClientHelloRecord {
    /// A ClientHello that came over TCP.
    pub fn new(hello: &ClientHello) -> Self {
        Self::carried_by(hello, Transport::Tcp)
    }

    /// A ClientHello that came over `transport` (JA4's first character says which).
    pub fn carried_by(hello: &ClientHello, transport: Transport) -> Self {
        Self::from_hello(hello.clone(), transport)
    }

    /// [`Self::carried_by`] of a hello no longer needed: its lists move into the record
    /// instead of being copied (the engine builds one record per connection).
    pub fn from_hello(hello: ClientHello, transport: Transport) -> Self {
        let fingerprints = hello_fingerprints::client(&hello, transport);
        let max_version = Version(hello.max_version());
        ClientHelloRecord {
            record_version: Version(hello.record_version),
            legacy_version: Version(hello.legacy_version),
            // Collected in place: the hello's vector becomes the record's.
            supported_versions: hello
                .supported_versions
                .into_iter()
                .filter(|v| !is_grease(*v))
                .map(Version)
                .collect(),
            max_version,
            sslv2_format: hello.sslv2_format,
            cipher_suites: hello.cipher_suites,
            extensions: hello.extensions,
            sni: hello.sni,
            alpn: hello.alpn,
            supported_groups: hello.supported_groups,
            ja3: fingerprints.ja3,
            ja3_full: fingerprints.ja3_full,
            ja4: fingerprints.ja4,
            sslv2_cipher_specs: hello.sslv2_cipher_specs,
        }
    }
}

impl ServerHelloRecord {
    /// A ServerHello that came over TCP.
    pub fn new(hello: &ServerHello, hrr_seen: bool) -> Self {
        Self::carried_by(hello, hrr_seen, Transport::Tcp)
    }

    /// A ServerHello that came over `transport`.
    pub fn carried_by(hello: &ServerHello, hrr_seen: bool, transport: Transport) -> Self {
        Self::from_hello(hello.clone(), hrr_seen, transport)
    }

    /// [`Self::carried_by`] of a hello no longer needed, whose lists move into the record.
    pub fn from_hello(hello: ServerHello, hrr_seen: bool, transport: Transport) -> Self {
        let fingerprints = hello_fingerprints::server(&hello, transport);
        ServerHelloRecord {
            version: Version(hello.selected_version()),
            legacy_version: Version(hello.legacy_version),
            cipher_suite: hello
                .sslv2_cipher_spec
                .unwrap_or(u32::from(hello.cipher_suite)),
            extensions: hello.extensions,
            alpn: hello.alpn,
            hrr: hrr_seen || hello.hrr,
            sslv2_format: hello.sslv2_format,
            ja3s: fingerprints.ja3s,
            ja4s: fingerprints.ja4s,
        }
    }
}

/// AlertDescription names (RFC 8446 6 and the IANA TLS Alerts registry).
pub fn alert_name(code: u8) -> &'static str {
    match code {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_follow_the_record_format() {
        assert_eq!(Version(0x0002).name(), "SSLv2");
        assert_eq!(Version(0x0301).name(), "TLSv1.0");
        assert_eq!(Version(0x0304).name(), "TLSv1.3");
        assert_eq!(Version(0x7f1c).name(), "0x7f1c");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(
            rfc3339(1_413_337_821_668_506_000),
            "2014-10-15T01:50:21.668506Z"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
    }

    /// The calendar written by hand agrees with humantime's on every day it writes, at a
    /// time of day that moves through the hours and the digits of the fraction; and on the
    /// dates GNU `date -u -d @SECONDS` gives for the leap-day edges and the last second.
    #[test]
    fn the_hand_written_calendar_agrees_with_humantime() {
        let humantime = |nanos: i64| {
            let time = SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos as u64);
            humantime::format_rfc3339_micros(time).to_string()
        };
        let last_day = i64::MAX / 1_000_000_000 / 86_400;
        for day in 0..last_day {
            let of_day = (day * 7_919) % 86_400;
            let nanos = (day * 1_000_003_219) % 1_000_000_000;
            let ts = (day * 86_400 + of_day) * 1_000_000_000 + nanos;
            assert_eq!(rfc3339_common(ts), Some(humantime(ts)), "day {day}");
        }
        assert_eq!(rfc3339_common(i64::MAX), Some(humantime(i64::MAX)));
        for (secs, date) in [
            (951_782_400, "2000-02-29T00:00:00.000000Z"),
            (951_868_799, "2000-02-29T23:59:59.000000Z"),
            (4_107_542_400, "2100-03-01T00:00:00.000000Z"),
            (4_107_542_399, "2100-02-28T23:59:59.000000Z"),
            (9_223_372_036, "2262-04-11T23:47:16.000000Z"),
        ] {
            assert_eq!(rfc3339(secs * 1_000_000_000), date);
        }
        // Before 1970 the fast path steps aside.
        assert_eq!(rfc3339_common(-1), None);
    }
}
