//! QUIC connections: Initial packets in, the same handshake summary as a TCP connection's out.
//!
//! ```text
//! datagram → quic::packet (open with the Initial keys) → quic::frames → quic::crypto_stream
//!          → tls::parse (ClientHello / ServerHello) → Handshake → Record (transport "udp")
//! ```
//!
//! A connection is tracked only once a client Initial decrypted, so stray UDP that merely
//! looks like QUIC costs a key derivation and a counter, never table space. The keys come
//! from the Destination Connection ID of the client's first Initial; after a Retry (or a
//! version change) the client's next Initial names new ones, which are tried when the old
//! ones fail.

use crate::flow::{FlowKey, Side};
use crate::quic::crypto_stream::CryptoStream;
use crate::quic::frames::{self, Frame};
use crate::quic::keys::{InitialKeys, Sender};
use crate::quic::packet::{self, LongPacket};
use crate::quic::version::Version;
use crate::quic::QuicError;
use crate::record::{ClientEndpoint, Endpoint, Outcome, Record, SOURCE_WIRE};
use crate::tls::fingerprint::Transport;
use crate::tls::parse;

use super::connection::Handshake;
use super::report::hello_parts;
use super::{Services, Stats};

/// QUIC error codes 0x0100-0x01ff carry a TLS alert (RFC 9001 4.8).
const CRYPTO_ERROR_BASE: u64 = 0x0100;

/// Where a datagram came from, for the records.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    pub ts: i64,
    pub frame: u64,
    pub file: usize,
}

/// Both senders' Initial keys, from one client DCID and version.
#[derive(Debug)]
struct KeyPair {
    version: u32,
    dcid: Vec<u8>,
    client: InitialKeys,
    server: InitialKeys,
}

impl KeyPair {
    fn new(version: &Version, dcid: &[u8]) -> Self {
        KeyPair {
            version: version.code,
            dcid: dcid.to_vec(),
            client: InitialKeys::new(version, dcid, Sender::Client),
            server: InitialKeys::new(version, dcid, Sender::Server),
        }
    }
}

/// A tracked QUIC connection.
#[derive(Debug)]
pub(super) struct QuicConnection {
    /// The endpoint whose Initials opened with the client keys.
    pub client: Side,
    /// `None` once reported.
    keys: Option<Box<KeyPair>>,
    /// Largest packet number opened per side, to expand truncated ones.
    largest: [Option<u64>; 2],
    streams: [CryptoStream; 2],
    pub handshake: Handshake,
    /// The record was written; later packets are only looked up.
    pub reported: bool,
    pub first_ts: i64,
    pub file: usize,
}

impl QuicConnection {
    /// Both hellos seen (the ServerHello being the final one), or a fatal alert: the record
    /// can no longer change.
    pub fn decided(&self) -> bool {
        let hs = &self.handshake;
        let final_server_hello = hs.server_hello.as_ref().is_some_and(|(h, _)| !h.hrr);
        (hs.client_hello.is_some() && final_server_hello) || hs.fatal_alert()
    }

    /// What may make room in a full table: a reported connection, or one the server never
    /// answered (an Initial flood's, like TCP's half-open connections), so that a flood of
    /// client Initials cannot lock real handshakes out; an evicted one is reported with what
    /// was seen.
    pub fn evictable(&self) -> bool {
        self.reported || self.largest[self.client.other().index()].is_none()
    }
}

/// What became of one datagram, for the caller's table and counters.
pub(super) enum Opened {
    /// Nothing opened and no connection is known: nothing to track.
    Nothing,
    /// A client Initial opened with keys from its own DCID: a new connection.
    New(Box<QuicConnection>),
    /// The packets went to the known connection.
    Known,
}

/// Open the Initial packets of one datagram from `side`, feeding what they carry to `conn`
/// (or to a new connection when none is known and a client Initial opens). A first Initial
/// cut by the capture's snap length cannot be opened, but its header still names the keys:
/// the connection is then tracked with the sender as client, for the server's Initials.
pub(super) fn datagram(
    conn: Option<&mut QuicConnection>,
    side: Side,
    payload: &[u8],
    truncated: bool,
    origin: Origin,
    stats: &mut Stats,
    scratch: &mut Vec<u8>,
) -> Opened {
    let mut conn = conn;
    let mut created: Option<Box<QuicConnection>> = None;
    for packet in packet::long_packets(payload) {
        let packet = match packet {
            Ok(packet) => packet,
            Err(error) => {
                count(stats, error);
                break;
            }
        };
        if !packet.initial {
            stats.quic_other_packets += 1;
            continue;
        }
        if packet.cut {
            stats.quic_short += 1;
        }
        stats.quic_initials += 1;
        let (target, opened): (&mut QuicConnection, bool) =
            match (conn.as_deref_mut(), created.as_deref_mut()) {
                (Some(known), _) => (known, false),
                (None, Some(new)) => (new, false),
                (None, None) => match first_client_initial(&packet, side, origin, scratch) {
                    Some(new) => {
                        stats.quic_connections += 1;
                        (created.insert(new), true)
                    }
                    None if truncated && packet.cut => match Version::of(packet.version) {
                        Some(version) => {
                            stats.quic_connections += 1;
                            let keys = KeyPair::new(&version, packet.dcid);
                            let new = QuicConnection::new(side, keys, [None; 2], origin);
                            (created.insert(new), false)
                        }
                        None => continue,
                    },
                    None => {
                        if !packet.cut {
                            stats.quic_undecryptable += 1;
                        }
                        continue;
                    }
                },
            };
        if packet.cut {
            continue;
        }
        if !opened && !open(target, &packet, side, scratch) {
            stats.quic_undecryptable += 1;
            continue;
        }
        stats.quic_initials_opened += 1;
        if let Err(error) = absorb(target, side, scratch, origin) {
            count(stats, error);
        }
        if target.streams[side.index()].over_budget() {
            stats.quic_crypto_over_budget += 1;
        }
    }
    match (created, conn) {
        (Some(new), _) => Opened::New(new),
        (None, Some(_)) => Opened::Known,
        (None, None) => Opened::Nothing,
    }
}

fn count(stats: &mut Stats, error: QuicError) {
    match error {
        QuicError::Short => stats.quic_short += 1,
        QuicError::UnknownVersion => stats.quic_unknown_version += 1,
        QuicError::NotInitial => stats.quic_other_packets += 1,
        QuicError::Undecryptable => stats.quic_undecryptable += 1,
        QuicError::MalformedFrame => stats.quic_malformed_frames += 1,
    }
}

/// A connection from a client Initial that opens with keys from its own DCID; the packet
/// is left decrypted in `scratch`.
fn first_client_initial(
    packet: &LongPacket<'_>,
    side: Side,
    origin: Origin,
    scratch: &mut Vec<u8>,
) -> Option<Box<QuicConnection>> {
    let version = Version::of(packet.version)?;
    let keys = KeyPair::new(&version, packet.dcid);
    let pn = packet::open_initial(packet, &keys.client, None, scratch).ok()?;
    let mut largest = [None; 2];
    largest[side.index()] = Some(pn);
    Some(QuicConnection::new(side, keys, largest, origin))
}

impl QuicConnection {
    fn new(client: Side, keys: KeyPair, largest: [Option<u64>; 2], origin: Origin) -> Box<Self> {
        Box::new(QuicConnection {
            client,
            keys: Some(Box::new(keys)),
            largest,
            streams: Default::default(),
            handshake: Handshake::default(),
            reported: false,
            first_ts: origin.ts,
            file: origin.file,
        })
    }
}

/// Open one Initial of a known connection into `scratch`. A client packet that the current
/// keys do not open may carry new ones (after a Retry or a version change): its own DCID.
fn open(
    conn: &mut QuicConnection,
    packet: &LongPacket<'_>,
    side: Side,
    scratch: &mut Vec<u8>,
) -> bool {
    let from_client = side == conn.client;
    let largest = conn.largest[side.index()];
    let Some(current) = &conn.keys else {
        return false;
    };
    let same_version = packet.version == current.version;
    if same_version {
        let keys = if from_client {
            &current.client
        } else {
            &current.server
        };
        if let Ok(pn) = packet::open_initial(packet, keys, largest, scratch) {
            conn.largest[side.index()] = Some(largest.map_or(pn, |l| l.max(pn)));
            return true;
        }
    }
    if !from_client || (same_version && packet.dcid == current.dcid.as_slice()) {
        return false;
    }
    let Some(version) = Version::of(packet.version) else {
        return false;
    };
    let keys = KeyPair::new(&version, packet.dcid);
    match packet::open_initial(packet, &keys.client, None, scratch) {
        Ok(pn) => {
            conn.keys = Some(Box::new(keys));
            conn.largest = [None; 2];
            conn.largest[side.index()] = Some(pn);
            true
        }
        Err(_) => false,
    }
}

/// The frames of an opened Initial (in `plaintext`): CRYPTO bytes into the sender's stream,
/// then every whole handshake message parsed; CONNECTION_CLOSE with a TLS alert recorded.
fn absorb(
    conn: &mut QuicConnection,
    side: Side,
    plaintext: &[u8],
    origin: Origin,
) -> Result<(), QuicError> {
    let crypto_frame = conn
        .keys
        .as_ref()
        .and_then(|keys| Version::of(keys.version))
        .map_or(0x06, |v| v.crypto_frame);
    let stream = &mut conn.streams[side.index()];
    let hs = &mut conn.handshake;
    let walked = frames::walk(plaintext, crypto_frame, &mut |frame| match frame {
        Frame::Crypto { offset, data } => stream.insert(offset, data),
        Frame::Close { error_code } => {
            if let Some(alert) = error_code.checked_sub(CRYPTO_ERROR_BASE) {
                if let Ok(description) = u8::try_from(alert) {
                    hs.alerts.push((side, 2, description));
                }
            }
        }
    });
    while let Some((kind, body)) = stream.next_message() {
        // QUIC has no record layer: the hellos carry 0 as their record version.
        match kind {
            1 => {
                if let Ok(hello) = parse::client_hello(body, 0) {
                    hs.first_hello
                        .get_or_insert((origin.file, origin.frame, origin.ts));
                    hs.client_hellos += 1;
                    hs.hello_sender.get_or_insert((side, true));
                    if hs.client_hello.is_none() {
                        hs.client_hello = Some((Box::new(hello), origin.ts, origin.frame));
                    }
                }
            }
            2 => {
                if let Ok(hello) = parse::server_hello(body, 0) {
                    hs.first_hello
                        .get_or_insert((origin.file, origin.frame, origin.ts));
                    hs.hello_sender.get_or_insert((side, false));
                    hs.hrr |= hello.hrr;
                    hs.server_hello = Some((Box::new(hello), origin.ts));
                }
            }
            _ => {}
        }
    }
    walked
}

/// The record of a QUIC connection, if it carried a hello and was not reported yet.
pub(super) fn report(
    key: &FlowKey,
    mut conn: QuicConnection,
    files: &[String],
    services: &Services,
    end_of_input: bool,
) -> Option<Record> {
    let hs = &conn.handshake;
    if conn.reported || !hs.hello_seen() {
        return None;
    }
    let client = conn.client;
    let (client_ip, client_port) = key.endpoint(client);
    let (server_ip, server_port) = key.endpoint(client.other());
    let final_server_hello = hs.server_hello.as_ref().filter(|(h, _)| !h.hrr);
    let client_stream = &conn.streams[client.index()];
    let outcome = if hs.fatal_alert() {
        Outcome::Alert
    } else if final_server_hello.is_some() {
        Outcome::Negotiated
    } else if hs.client_hello.is_none() || client_stream.over_budget() || end_of_input {
        Outcome::Incomplete
    } else {
        Outcome::NoServerHello
    };
    let (file, first_ts) = (conn.file, conn.first_ts);
    let hs = &mut conn.handshake;
    let parts = hello_parts(hs, client, files, (file, first_ts), Transport::Quic);
    Some(Record {
        ts: parts.ts,
        client: ClientEndpoint {
            ip: client_ip,
            port: client_port,
            proxied: None,
        },
        server: Endpoint {
            ip: server_ip,
            port: server_port,
        },
        transport: "udp",
        service: services.quic_name(server_port),
        starttls: None,
        starttls_offered: None,
        starttls_reply: None,
        client_hello: parts.client_hello,
        server_hello: parts.server_hello,
        outcome,
        alerts: parts.alerts,
        encrypted_alerts: 0,
        handshake_us: parts.handshake_us,
        client_hellos: hs.client_hellos,
        // The server's Certificate travels in Handshake packets, whose keys a passive
        // observer never has.
        certificate: None,
        capture: parts.capture,
        smtp: None,
        imap: None,
        source: SOURCE_WIRE,
        log: None,
    })
}

impl QuicConnection {
    /// Take what the record needs, leaving a reported entry that only recognises the
    /// connection's later packets.
    pub fn take_for_report(&mut self) -> QuicConnection {
        let reported = QuicConnection {
            client: self.client,
            keys: None,
            largest: self.largest,
            streams: Default::default(),
            handshake: Handshake::default(),
            reported: true,
            first_ts: self.first_ts,
            file: self.file,
        };
        std::mem::replace(self, reported)
    }
}
