//! The offline engine: frames in, one [`Record`] per TLS connection out.
//!
//! For each frame: decode to a TCP segment, find its connection, reassemble the direction,
//! and feed the in-order bytes to that direction's [`TlsStream`]. A connection is reported as
//! soon as its handshake is decided (both directions encrypted or closed, or a fatal alert);
//! from then on its packets cost a table lookup. Connections still open when the input ends,
//! or that go idle, are reported with what was seen.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::decode::{self, Segment, Skip};
use crate::flow::reassembly::Reassembler;
use crate::flow::{FlowKey, FlowTable, Limits, Side};
use crate::record::{
    alert_name, rfc3339, AlertRecord, CaptureRef, ClientHelloRecord, Endpoint, Outcome, Record,
    Sender, ServerHelloRecord,
};
use crate::source::Packet;
use crate::tls::hello::{ClientHello, ServerHello};
use crate::tls::stream::{End, Event, TlsStream};

/// What the engine is told about the traffic.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Ports whose connections are reported even when no hello could be read
    /// (`--tls-port`); every other port is recognised by content.
    pub tls_ports: HashSet<u16>,
    pub limits: Limits,
}

/// Counters for the run summary and `--stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub frames: u64,
    pub tcp_segments: u64,
    /// Frames skipped, by reason (indexed like [`Skip::ALL`]).
    pub skipped: [u64; 5],
    pub connections_tracked: u64,
    pub records: u64,
    pub retransmitted_segments: u64,
    pub out_of_order_segments: u64,
    /// Segments that could not be held (a direction got a permanent gap).
    pub dropped_segments: u64,
    /// Frames whose TCP payload was cut by the capture's snap length.
    pub truncated_frames: u64,
    pub flows_expired: u64,
    pub flows_refused: u64,
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Half {
    reassembler: Reassembler,
    tls: TlsStream,
    fin: bool,
    /// Initial sequence number from this direction's SYN.
    isn: Option<u32>,
    /// Bytes of this direction were lost (a gap never filled, or a snap length cut them).
    lost_bytes: bool,
}

/// What the handshake said so far.
#[derive(Debug, Default)]
struct Handshake {
    client_hello: Option<(Box<ClientHello>, i64, u64)>,
    client_hellos: u32,
    /// The ServerHello (the last one, after a HelloRetryRequest) and its time.
    server_hello: Option<(Box<ServerHello>, i64)>,
    hrr: bool,
    /// Plaintext alerts: sender, level, description.
    alerts: Vec<(Side, u8, u8)>,
    encrypted_alerts: u32,
    /// Which side sent the ClientHello / ServerHello, when the SYN did not say.
    hello_sender: Option<(Side, bool)>,
    /// Capture reference of the first hello.
    first_hello: Option<(usize, u64, i64)>,
}

impl Handshake {
    fn seen_any(&self) -> bool {
        self.client_hello.is_some() || self.server_hello.is_some() || !self.alerts.is_empty()
    }

    fn fatal_alert(&self) -> bool {
        self.alerts.iter().any(|(_, level, _)| *level == 2)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Handshake being parsed.
    Open,
    /// Not TLS: packets are looked up and dropped.
    Ignored,
    /// Already reported: packets are looked up and dropped.
    Reported,
}

#[derive(Debug)]
struct Connection {
    phase: Phase,
    /// The side that sent the SYN, when it was captured.
    client: Option<Side>,
    halves: [Half; 2],
    handshake: Handshake,
    first_ts: i64,
    /// Which input file the connection was first seen in (index into the file list).
    file: usize,
    forced_port: bool,
}

impl Connection {
    fn new(ts: i64, file: usize, forced_port: bool) -> Self {
        Connection {
            phase: Phase::Open,
            client: None,
            halves: Default::default(),
            handshake: Handshake::default(),
            first_ts: ts,
            file,
            forced_port,
        }
    }
}

/// The engine for one stream of frames (one or several files in time order).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    flows: FlowTable<Connection>,
    stats: Stats,
    /// Names of the input files, for the records' `capture.file`.
    files: Vec<String>,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        Engine {
            flows: FlowTable::new(config.limits),
            config,
            stats: Stats::default(),
            files: Vec::new(),
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Start a new input file; frames after this belong to it.
    pub fn begin_file(&mut self, name: impl Into<String>) {
        self.files.push(name.into());
    }

    /// Process one frame; finished records go to `out`.
    pub fn packet(&mut self, packet: &Packet<'_>, out: &mut impl FnMut(Record)) {
        self.stats.frames += 1;
        let segment = match decode::decode(packet.link_type, packet.data) {
            Ok(segment) => segment,
            Err(skip) => {
                let index = Skip::ALL.iter().position(|s| *s == skip).unwrap_or(0);
                self.stats.skipped[index] += 1;
                return;
            }
        };
        self.stats.tcp_segments += 1;
        self.segment(&segment, packet.ts_nanos, packet.frame_number, out);
    }

    fn segment(&mut self, seg: &Segment<'_>, ts: i64, frame: u64, out: &mut impl FnMut(Record)) {
        let files = &self.files;
        let stats = &mut self.stats;
        let mut expire = |key: FlowKey, conn: Connection| {
            if let Some(record) = report(&key, conn, files) {
                stats.records += 1;
                out(record);
            }
        };
        self.flows.maybe_sweep(ts, &mut expire);
        let (key, side) = FlowKey::new((seg.src, seg.sport), (seg.dst, seg.dport));
        let file = self.files.len().saturating_sub(1);
        let entry = match self.flows.get_mut(&key) {
            Some(entry) => entry,
            None => {
                // Only a SYN or data opens a connection: stray ACKs and RSTs do not.
                if !seg.flags.syn && seg.payload.is_empty() {
                    return;
                }
                let forced = self.config.tls_ports.contains(&seg.sport)
                    || self.config.tls_ports.contains(&seg.dport);
                match self
                    .flows
                    .insert(key, ts, Connection::new(ts, file, forced), &mut expire)
                {
                    Some(entry) => {
                        stats.connections_tracked += 1;
                        entry
                    }
                    None => return,
                }
            }
        };
        entry.last_ts = ts;
        let conn = &mut entry.value;

        // A new SYN on a finished connection is port reuse: a new connection.
        if seg.flags.syn && !seg.flags.ack && conn.phase != Phase::Open {
            let forced = conn.forced_port;
            *conn = Connection::new(ts, file, forced);
            stats.connections_tracked += 1;
        }
        if conn.phase == Phase::Open {
            feed(conn, seg, side, ts, frame, file, stats);
        }

        let closed = seg.flags.rst || conn.halves.iter().all(|h| h.fin);
        let decided = conn.phase == Phase::Open && decided(conn);
        if decided || (closed && conn.phase == Phase::Open) {
            let conn = std::mem::replace(conn, Connection::new(ts, file, false));
            if let Some(record) = report(&key, conn, files) {
                stats.records += 1;
                out(record);
            }
            if let Some(entry) = self.flows.get_mut(&key) {
                entry.value.phase = Phase::Reported;
            }
        }
        if closed {
            self.flows.remove(&key);
        }
        self.stats.flows_expired = self.flows.expired;
        self.stats.flows_refused = self.flows.refused;
    }

    /// End of input: report every connection still open, oldest first.
    pub fn finish(&mut self, out: &mut impl FnMut(Record)) {
        let mut rest: Vec<(i64, FlowKey, Connection)> = self
            .flows
            .drain()
            .map(|(key, entry)| (entry.value.first_ts, key, entry.value))
            .collect();
        rest.sort_by_key(|(ts, key, _)| (*ts, *key));
        for (_, key, conn) in rest {
            if let Some(record) = report(&key, conn, &self.files) {
                self.stats.records += 1;
                out(record);
            }
        }
    }
}

/// Feed one segment to its connection.
fn feed(
    conn: &mut Connection,
    seg: &Segment<'_>,
    side: Side,
    ts: i64,
    frame: u64,
    file: usize,
    stats: &mut Stats,
) {
    if seg.flags.syn {
        // A SYN-ACK that does not acknowledge the captured SYN belongs to another incarnation
        // of the connection (or a mirrored copy with rewritten sequence numbers): skip it.
        let peer_isn = conn.halves[side.other().index()].isn;
        let answers_syn =
            !seg.flags.ack || peer_isn.is_none_or(|isn| seg.ack == isn.wrapping_add(1));
        if answers_syn {
            let half = &mut conn.halves[side.index()];
            half.isn = Some(seg.seq);
            half.reassembler.syn(seg.seq);
            if conn.client.is_none() {
                conn.client = Some(if seg.flags.ack { side.other() } else { side });
            }
        }
    }
    if seg.flags.fin || seg.flags.rst {
        conn.halves[side.index()].fin = true;
    }
    if seg.payload.is_empty() {
        return;
    }
    let Connection {
        halves, handshake, ..
    } = conn;
    let Half {
        reassembler, tls, ..
    } = &mut halves[side.index()];
    let payload_seq = if seg.flags.syn {
        seg.seq.wrapping_add(1)
    } else {
        seg.seq
    };
    let accepted = reassembler.accept(payload_seq, seg.payload, |bytes| {
        tls.feed(bytes, &mut |event| {
            on_event(handshake, side, event, ts, frame, file);
        });
    });
    if handshake.hrr {
        halves[side.other().index()].tls.allow_compat_ccs();
    }
    if accepted.retransmitted {
        stats.retransmitted_segments += 1;
    }
    if accepted.held {
        stats.out_of_order_segments += 1;
    }
    let half = &mut halves[side.index()];
    if accepted.dropped {
        stats.dropped_segments += 1;
        half.lost_bytes = true;
        half.tls.stop(End::Malformed);
    }
    if seg.payload_truncated {
        // Only a prefix of this segment was captured: nothing after it can be trusted.
        stats.truncated_frames += 1;
        half.lost_bytes = true;
        if half.tls.end().is_none() {
            half.tls.stop(End::Malformed);
        }
    }
    if half.tls.end() == Some(End::NotTls) && !conn.handshake.seen_any() && !conn.forced_port {
        conn.phase = Phase::Ignored;
        conn.halves = Default::default();
    }
}

fn on_event(hs: &mut Handshake, side: Side, event: Event, ts: i64, frame: u64, file: usize) {
    if hs.first_hello.is_none() && matches!(event, Event::ClientHello(_) | Event::ServerHello(_)) {
        hs.first_hello = Some((file, frame, ts));
    }
    match event {
        Event::ClientHello(hello) => {
            hs.client_hellos += 1;
            hs.hello_sender.get_or_insert((side, true));
            if hs.client_hello.is_none() {
                hs.client_hello = Some((hello, ts, frame));
            }
        }
        Event::ServerHello(hello) => {
            hs.hello_sender.get_or_insert((side, false));
            hs.hrr |= hello.hrr;
            hs.server_hello = Some((hello, ts));
        }
        Event::Alert { level, description } => hs.alerts.push((side, level, description)),
        Event::EncryptedAlert => hs.encrypted_alerts += 1,
    }
}

/// A connection's handshake is decided when both directions have stopped parsing, or a fatal
/// alert was sent.
fn decided(conn: &Connection) -> bool {
    conn.handshake.seen_any()
        && (conn.handshake.fatal_alert() || conn.halves.iter().all(|h| h.tls.end().is_some()))
}

/// Which side is the client: the SYN's sender; else the ClientHello's sender (or the
/// ServerHello's receiver); else the side on the higher (ephemeral) port.
fn client_side(key: &FlowKey, conn: &Connection) -> Side {
    if let Some(side) = conn.client {
        return side;
    }
    if let Some((side, is_client_hello)) = conn.handshake.hello_sender {
        return if is_client_hello { side } else { side.other() };
    }
    if key.lo.1 > key.hi.1 {
        Side::Lo
    } else {
        Side::Hi
    }
}

/// Build the record of a connection, if it carried TLS (or sat on a forced TLS port).
fn report(key: &FlowKey, conn: Connection, files: &[String]) -> Option<Record> {
    if conn.phase != Phase::Open {
        return None;
    }
    let started_tls = conn.halves.iter().any(|h| h.tls.started_tls());
    let hs = &conn.handshake;
    let hello_seen = hs.client_hello.is_some() || hs.server_hello.is_some();
    if !hello_seen && !started_tls && !conn.forced_port {
        return None;
    }
    let client = client_side(key, &conn);
    let server = client.other();
    let (client_ip, client_port): (IpAddr, u16) = key.endpoint(client);
    let (server_ip, server_port) = key.endpoint(server);

    let client_half = &conn.halves[client.index()];
    let server_half = &conn.halves[server.index()];
    let client_hello = hs.client_hello.as_ref();
    let server_hello = hs.server_hello.as_ref();
    let final_server_hello = server_hello.filter(|(h, _)| !h.hrr);

    let outcome = if hs.fatal_alert() || (!hs.alerts.is_empty() && final_server_hello.is_none()) {
        Outcome::Alert
    } else if final_server_hello.is_some() {
        Outcome::Negotiated
    } else if client_hello.is_none()
        || server_half.tls.mid_message()
        || server_half.lost_bytes
        || client_half.lost_bytes && client_hello.is_none()
    {
        Outcome::Incomplete
    } else {
        Outcome::NoServerHello
    };

    let (file, frame, first_ts) = hs.first_hello.unwrap_or((conn.file, 0, conn.first_ts));
    let ts = client_hello.map_or(first_ts, |(_, ts, _)| *ts);
    let alerts = hs
        .alerts
        .iter()
        .map(|&(side, level, description)| AlertRecord {
            from: if side == client {
                Sender::Client
            } else {
                Sender::Server
            },
            level,
            description,
            description_name: alert_name(description),
        })
        .collect();
    let handshake_us = match (client_hello, final_server_hello) {
        (Some((_, ch_ts, _)), Some((_, sh_ts))) if sh_ts >= ch_ts => {
            Some(((sh_ts - ch_ts) / 1000) as u64)
        }
        _ => None,
    };
    Some(Record {
        ts: rfc3339(ts),
        client: Endpoint {
            ip: client_ip,
            port: client_port,
        },
        server: Endpoint {
            ip: server_ip,
            port: server_port,
        },
        client_hello: client_hello.map(|(h, _, _)| ClientHelloRecord::new(h)),
        server_hello: server_hello.map(|(h, _)| ServerHelloRecord::new(h, hs.hrr)),
        outcome,
        alerts,
        encrypted_alerts: hs.encrypted_alerts,
        handshake_us,
        client_hellos: hs.client_hellos,
        capture: CaptureRef {
            file: files.get(file).cloned().unwrap_or_default(),
            frame,
        },
    })
}
