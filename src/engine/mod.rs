//! The offline engine: frames in, one [`Record`] per TLS connection out.
//!
//! For each frame: decode to a TCP segment, find its connection, reassemble the direction,
//! and feed the in-order bytes to that direction's [`TlsStream`]. A connection is reported as
//! soon as its handshake is decided (both directions encrypted or closed, or a fatal alert);
//! from then on its packets cost a table lookup. Connections still open when the input ends,
//! or that go idle, are reported with what was seen.

mod connection;
mod names;
mod quic;
mod report;

use std::collections::HashSet;

use crate::decode::fragments::{FragmentLimits, FragmentStats, Reassembler};
use crate::decode::{self, Segment, Skip};
use crate::flow::{FlowKey, FlowTable, Limits, Side};
use crate::proto::starttls::MailProtocol;
use crate::record::Record;
use crate::source::linktype;
use crate::source::Packet;

use connection::{Connection, Origin, Phase};
use quic::QuicConnection;
use report::report;

/// What the engine is told about the traffic.
#[derive(Debug, Clone)]
pub struct Config {
    pub services: Services,
    pub limits: Limits,
    /// Read the UDP name services for client names (on unless `--no-udp-names`).
    pub udp_names: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            services: Services::default(),
            limits: Limits::default(),
            udp_names: true,
        }
    }
}

/// Which ports carry which service. TLS itself is recognised by content on every port; these
/// name the service in records and say where to follow a plaintext mail dialogue.
#[derive(Debug, Clone)]
pub struct Services {
    /// SMTP with STARTTLS / X-ANONYMOUSTLS (`--smtp-port`); 587 is named `submission`.
    pub smtp_ports: HashSet<u16>,
    /// IMAP with STARTTLS (`--imap-port`).
    pub imap_ports: HashSet<u16>,
    /// POP3 with STLS (`--pop3-port`).
    pub pop3_ports: HashSet<u16>,
    /// Ports whose connections are reported even when no hello could be read
    /// (`--tls-port`).
    pub tls_ports: HashSet<u16>,
}

impl Default for Services {
    fn default() -> Self {
        Services {
            smtp_ports: [25, 587].into(),
            imap_ports: [143].into(),
            pop3_ports: [110].into(),
            tls_ports: HashSet::new(),
        }
    }
}

impl Services {
    /// The service name of a server port.
    pub fn name(&self, port: u16) -> String {
        match port {
            587 if has(&self.smtp_ports, 587) => "submission".into(),
            _ if has(&self.smtp_ports, port) => "smtp".into(),
            _ if has(&self.imap_ports, port) => "imap".into(),
            _ if has(&self.pop3_ports, port) => "pop3".into(),
            465 => "smtps".into(),
            993 => "imaps".into(),
            995 => "pop3s".into(),
            443 => "https".into(),
            _ => format!("tcp/{port}"),
        }
    }

    /// The service name of a server's UDP port that carried QUIC: `https/quic` for HTTP/3's
    /// 443, else `udp/PORT`.
    pub fn quic_name(&self, port: u16) -> String {
        match port {
            443 => "https/quic".into(),
            _ => format!("udp/{port}"),
        }
    }

    /// The mail protocol spoken on a server port, if any.
    pub fn mail(&self, port: u16) -> Option<MailProtocol> {
        if has(&self.smtp_ports, port) {
            Some(MailProtocol::Smtp)
        } else if has(&self.imap_ports, port) {
            Some(MailProtocol::Imap)
        } else if has(&self.pop3_ports, port) {
            Some(MailProtocol::Pop3)
        } else {
            None
        }
    }

    fn forced(&self, port: u16) -> bool {
        has(&self.tls_ports, port)
    }
}

/// `ports.contains(&port)`. The sets hold a few ports and are asked on every new connection
/// and record, where a scan of their few entries costs less than hashing the port (SipHash).
fn has(ports: &HashSet<u16>, port: u16) -> bool {
    if ports.len() <= 8 {
        ports.iter().any(|p| *p == port)
    } else {
        ports.contains(&port)
    }
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
    /// Retransmitted or overlapping segments whose bytes differ from the copy seen first
    /// (the first copy is the one parsed).
    pub inconsistent_retransmissions: u64,
    pub out_of_order_segments: u64,
    /// Segments that could not be held (a direction got a permanent gap).
    pub dropped_segments: u64,
    /// Frames whose TCP payload was cut by the capture's snap length.
    pub truncated_frames: u64,
    pub flows_expired: u64,
    /// Connections without data dropped to make room in a full table (a SYN flood).
    pub flows_evicted: u64,
    pub flows_refused: u64,
    /// UDP datagrams that began like a QUIC Initial.
    pub quic_datagrams: u64,
    /// Initial packets in them, and how many of those decrypted.
    pub quic_initials: u64,
    pub quic_initials_opened: u64,
    /// QUIC connections tracked (a client Initial decrypted).
    pub quic_connections: u64,
    /// Other long-header packets (Handshake, 0-RTT, Retry): their keys are secret.
    pub quic_other_packets: u64,
    /// Packets cut short inside their header or length.
    pub quic_short: u64,
    /// Coalesced packets of a version without known Initial keys.
    pub quic_unknown_version: u64,
    /// Initials whose AEAD tag did not verify (damaged, or their client Initial not seen).
    pub quic_undecryptable: u64,
    /// Decrypted Initials holding a frame that could not be read.
    pub quic_malformed_frames: u64,
    /// Initials opened while their direction's CRYPTO stream was past its budget
    /// ([`crate::quic::crypto_stream::CRYPTO_BUDGET`]): the bytes beyond it were dropped.
    pub quic_crypto_over_budget: u64,
    /// IP fragment reassembly (reported by one worker: every worker reassembles alike).
    pub fragments: FragmentStats,
    /// UDP name-service messages read for names (not counted as skipped).
    pub names: crate::names::NameStats,
}

/// [`Stats::skipped`]'s slot for [`Skip::NotTcp`].
const NOT_TCP: usize = 2;
const _: () = assert!(matches!(Skip::ALL[NOT_TCP], Skip::NotTcp));

/// Where a record belongs in the output. Records are written in this order whatever the
/// number of worker threads: by the input position that produced them (a packet's index, or
/// an expiry tick's), then by time and connection for the several a tick or the end of input
/// produce at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderKey {
    /// Index of the packet (or tick) in the whole input; `u64::MAX` for the end of input.
    pub index: u64,
    /// Last-packet time for expiries, first-packet time at the end of input, else 0.
    pub ts: i64,
    pub key: FlowKey,
}

/// A finished record with its place in the output order.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub order: OrderKey,
    pub record: Record,
}

/// The engine for one stream of frames (one or several files in time order), or for the
/// share of the flows a worker thread owns.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    flows: FlowTable<Connection>,
    /// QUIC connections, in their own table with a small share of the flow budget
    /// ([`quic_limits`]).
    quic: FlowTable<QuicConnection>,
    /// Decrypted Initial payloads, reused from packet to packet.
    plaintext: Vec<u8>,
    stats: Stats,
    /// Names of the input files, for the records' `capture.file`.
    files: Vec<String>,
    /// IP fragments joined into datagrams. Every worker sees every fragment and joins them
    /// alike (a non-first fragment has no ports to shard it by); a datagram goes on only in
    /// the worker that owns its connection.
    fragments: Reassembler,
    /// This engine's worker, and how many there are.
    shard: (usize, usize),
    /// Names from the UDP name services.
    names: names::NameCollector,
}

/// The part of the flow limits (memory budget and connection cap) the QUIC table gets: one
/// sixteenth. Both tables are sized up front, so giving QUIC the whole budget as well would
/// double the process's flow memory. QUIC holds a connection fully only from its client
/// Initial to its decided handshake (a reported one is evicted first when the table is
/// full), so it needs far fewer places than TCP, whose every half-open connection counts.
const QUIC_SHARE: usize = 16;

/// The TCP table's limits: what the QUIC table's share leaves.
fn tcp_limits(limits: Limits) -> Limits {
    Limits {
        flow_memory: limits.flow_memory.map(|bytes| bytes - bytes / QUIC_SHARE),
        ..limits
    }
}

/// The QUIC table's limits: its share of the budget, or of the cap without one.
fn quic_limits(limits: Limits) -> Limits {
    Limits {
        flow_memory: limits.flow_memory.map(|bytes| bytes / QUIC_SHARE),
        max_flows: (limits.max_flows / QUIC_SHARE).max(1),
        ..limits
    }
}

impl Engine {
    pub fn new(config: Config) -> Self {
        let names = names::NameCollector::new(config.udp_names);
        Engine {
            flows: FlowTable::new(tcp_limits(config.limits)),
            quic: FlowTable::new(quic_limits(config.limits)),
            plaintext: Vec::new(),
            config,
            stats: Stats::default(),
            files: Vec::new(),
            fragments: Reassembler::new(FragmentLimits::default()),
            shard: (0, 1),
            names,
        }
    }

    /// Make this the engine of worker `worker` of `workers`: of the datagrams joined from IP
    /// fragments, it goes on with those of its own connections only, and it counts a
    /// fragment's frame only if that frame is its share (see [`Engine::fragment`]).
    pub fn set_shard(&mut self, worker: usize, workers: usize) {
        self.shard = (worker, workers.max(1));
    }

    pub fn stats(&self) -> Stats {
        Stats {
            flows_expired: self.flows.expired + self.quic.expired,
            flows_refused: self.flows.refused + self.quic.refused,
            flows_evicted: self.flows.evicted + self.quic.evicted,
            fragments: if self.shard.0 == 0 {
                self.fragments.stats
            } else {
                FragmentStats::default()
            },
            ..self.stats.clone()
        }
    }

    /// The names learned from the UDP name services since the last call (bounded like the
    /// census's: see [`crate::names::kept`]).
    pub fn take_names(&mut self) -> crate::census::names::Names {
        self.names.take()
    }

    /// Connections tracked right now.
    pub fn flows(&self) -> usize {
        self.flows.len() + self.quic.len()
    }

    /// Most connections tracked at once (`Limits::max_flows`, or what `flow_memory` holds).
    pub fn max_flows(&self) -> usize {
        self.flows.max_flows()
    }

    /// Most QUIC connections tracked at once: the QUIC table's share of the limits.
    pub fn max_quic_flows(&self) -> usize {
        self.quic.max_flows()
    }

    /// Start a new input file; frames after this belong to it.
    pub fn begin_file(&mut self, name: impl Into<String>) {
        self.files.push(name.into());
    }

    /// Process the frame at position `index` of the input; finished records go to `out`.
    pub fn packet(&mut self, index: u64, packet: &Packet<'_>, out: &mut impl FnMut(Emitted)) {
        let decoded = decode::decode(packet.link_type, packet.data);
        if decoded == Err(Skip::IpFragment) {
            if let Some(ip) = decode::fragment_packet(packet.link_type, packet.data) {
                self.fragment(index, ip, packet.ts_nanos, packet.frame_number, out);
                return;
            }
        }
        self.decoded(
            index,
            decoded.as_ref().map_err(|skip| *skip),
            packet.ts_nanos,
            packet.frame_number,
            out,
        );
    }

    /// Process an IP fragment (its IP packet) at position `index`. Each worker gets every
    /// fragment; the frame is counted once, by the worker whose share it is (the `n`-th
    /// frame, at index `2n + 1`, is worker `n mod workers`'s), or, when it completes a
    /// datagram that is a TCP segment, as that segment by the worker owning its connection.
    pub fn fragment(
        &mut self,
        index: u64,
        ip: &[u8],
        ts_nanos: i64,
        frame_number: u64,
        out: &mut impl FnMut(Emitted),
    ) {
        let (worker, workers) = self.shard;
        let counts_frame = (index / 2) % workers as u64 == worker as u64;
        let Some(datagram) = self.fragments.add(ip, ts_nanos) else {
            if counts_frame {
                self.decoded(index, Err(Skip::IpFragment), ts_nanos, frame_number, out);
            }
            return;
        };
        match decode::decode(linktype::RAW, &datagram) {
            Ok(segment) => {
                if decode::shard_of(&segment, workers as u64) == worker {
                    self.decoded(index, Ok(&segment), ts_nanos, frame_number, out);
                }
            }
            Err(skip) if counts_frame => {
                self.decoded(index, Err(skip), ts_nanos, frame_number, out)
            }
            Err(_) => {}
        }
    }

    /// [`Engine::packet`] for a frame already decoded (the pipeline's reader decodes frames
    /// to shard them, and hands workers the result rather than the frame).
    pub fn decoded(
        &mut self,
        index: u64,
        decoded: Result<&Segment<'_>, Skip>,
        ts_nanos: i64,
        frame_number: u64,
        out: &mut impl FnMut(Emitted),
    ) {
        self.stats.frames += 1;
        match decoded {
            Ok(segment) if segment.udp => {
                match self.names.datagram(segment, &mut self.stats.names) {
                    names::Datagram::Read => {}
                    names::Datagram::Ignored => self.stats.skipped[NOT_TCP] += 1,
                    names::Datagram::NotNames => {
                        self.stats.quic_datagrams += 1;
                        self.quic_datagram(index, segment, ts_nanos, frame_number, out);
                    }
                }
            }
            Ok(segment) => {
                self.stats.tcp_segments += 1;
                self.segment(index, segment, ts_nanos, frame_number, out);
            }
            Err(skip) => {
                let slot = Skip::ALL.iter().position(|s| *s == skip).unwrap_or(0);
                self.stats.skipped[slot] += 1;
            }
        }
    }

    /// Expire connections idle at capture time `now`; called at the same input positions
    /// whatever the number of threads (see [`Ticker`]).
    pub fn tick(&mut self, index: u64, now: i64, out: &mut impl FnMut(Emitted)) {
        self.fragments.expire(now);
        let files = &self.files;
        let services = &self.config.services;
        let stats = &mut self.stats;
        self.flows.sweep(now, &mut |key, last_ts, conn| {
            emit(
                OrderKey {
                    index,
                    ts: last_ts,
                    key,
                },
                key,
                conn,
                files,
                services,
                stats,
                out,
            )
        });
        self.quic.sweep(now, &mut |key, last_ts, conn| {
            let order = OrderKey {
                index,
                ts: last_ts,
                key,
            };
            emit_quic(order, key, conn, files, services, stats, out)
        });
    }

    /// A datagram that starts like a QUIC Initial.
    fn quic_datagram(
        &mut self,
        index: u64,
        seg: &Segment<'_>,
        ts: i64,
        frame: u64,
        out: &mut impl FnMut(Emitted),
    ) {
        let files = &self.files;
        let services = &self.config.services;
        let stats = &mut self.stats;
        let (key, side) = FlowKey::of(&seg.src, seg.sport, &seg.dst, seg.dport);
        if seg.payload_truncated {
            stats.truncated_frames += 1;
        }
        let origin = quic::Origin {
            ts,
            frame,
            file: self.files.len().saturating_sub(1),
        };
        let known = self.quic.get_mut(&key);
        if let Some(entry) = &known {
            if entry.value.reported {
                // Decided already: only keep the entry fresh.
                if let Some(entry) = self.quic.get_mut(&key) {
                    entry.last_ts = ts;
                }
                return;
            }
        }
        let opened = quic::datagram(
            known.map(|entry| {
                entry.last_ts = ts;
                &mut entry.value
            }),
            side,
            seg.payload,
            seg.payload_truncated,
            origin,
            stats,
            &mut self.plaintext,
        );
        if let quic::Opened::New(conn) = opened {
            let mut evict = |key: FlowKey, last_ts: i64, conn: QuicConnection| {
                let order = OrderKey {
                    index,
                    ts: last_ts,
                    key,
                };
                emit_quic(order, key, conn, files, services, stats, out)
            };
            if self
                .quic
                .insert(key, ts, *conn, QuicConnection::evictable, &mut evict)
                .is_none()
            {
                return;
            }
        }
        let Some(entry) = self.quic.get_mut(&key) else {
            return;
        };
        if entry.value.decided() {
            let done = entry.value.take_for_report();
            let order = OrderKey { index, ts: 0, key };
            emit_quic(order, key, done, files, services, stats, out);
        }
    }

    fn segment(
        &mut self,
        index: u64,
        seg: &Segment<'_>,
        ts: i64,
        frame: u64,
        out: &mut impl FnMut(Emitted),
    ) {
        let files = &self.files;
        let services = &self.config.services;
        let stats = &mut self.stats;
        let (key, side) = FlowKey::of(&seg.src, seg.sport, &seg.dst, seg.dport);
        let file = self.files.len().saturating_sub(1);
        let entry = match self.flows.get_mut(&key) {
            Some(entry) => entry,
            None => {
                // Only a SYN or data opens a connection: stray ACKs and RSTs do not.
                if !seg.flags.syn && seg.payload.is_empty() {
                    return;
                }
                let conn = new_connection(services, seg, side, ts, file);
                let mut evict = |key: FlowKey, last_ts: i64, conn: Connection| {
                    let order = OrderKey {
                        index,
                        ts: last_ts,
                        key,
                    };
                    emit(order, key, conn, files, services, stats, out)
                };
                match self
                    .flows
                    .insert(key, ts, conn, Connection::evictable, &mut evict)
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
        let order = OrderKey { index, ts: 0, key };

        // A SYN with a new sequence number after data flowed is port reuse: the old
        // connection is over (its FIN may not have been captured).
        if seg.flags.syn && !seg.flags.ack && conn.is_new_incarnation(side, seg.seq) {
            let old = std::mem::replace(conn, new_connection(services, seg, side, ts, file));
            emit(order, key, old, files, services, stats, out);
            stats.connections_tracked += 1;
        }
        if conn.phase == Phase::Open {
            conn.feed(seg, side, Origin { ts, frame, file }, stats);
        } else if seg.flags.fin || seg.flags.rst {
            // Reported or not TLS: only the close still matters, to free the entry now
            // rather than at the idle timeout.
            conn.fin[side.index()] = true;
        }

        let closed = seg.flags.rst || conn.closed();
        let decided = conn.phase == Phase::Open && conn.decided();
        if decided || (closed && conn.phase == Phase::Open) {
            let mut done = Connection::new(ts, file, false, None);
            done.phase = Phase::Reported;
            let finished = std::mem::replace(conn, done);
            emit(order, key, finished, files, services, stats, out);
        }
        if closed {
            self.flows.remove(&key);
        }
    }

    /// End of input: report every connection still open, oldest first.
    pub fn finish(&mut self, out: &mut impl FnMut(Emitted)) {
        self.fragments.finish();
        let mut rest: Vec<(i64, FlowKey, Connection)> = self
            .flows
            .drain()
            .map(|(key, entry)| (entry.value.first_ts, key, entry.value))
            .collect();
        rest.sort_by_key(|(ts, key, _)| (*ts, *key));
        let mut quic: Vec<(i64, FlowKey, QuicConnection)> = self
            .quic
            .drain()
            .map(|(key, entry)| (entry.value.first_ts, key, entry.value))
            .collect();
        quic.sort_by_key(|(ts, key, _)| (*ts, *key));
        for (ts, key, conn) in quic {
            let order = OrderKey {
                index: u64::MAX,
                ts,
                key,
            };
            let (files, services) = (&self.files, &self.config.services);
            emit_quic(order, key, conn, files, services, &mut self.stats, out);
        }
        for (ts, key, conn) in rest {
            let order = OrderKey {
                index: u64::MAX,
                ts,
                key,
            };
            let (files, services) = (&self.files, &self.config.services);
            emit(order, key, conn, files, services, &mut self.stats, out);
        }
    }
}

/// Report a connection if it has something to say.
fn emit(
    order: OrderKey,
    key: FlowKey,
    conn: Connection,
    files: &[String],
    services: &Services,
    stats: &mut Stats,
    out: &mut impl FnMut(Emitted),
) {
    // At the end of the input a connection still open may simply not have had its answer
    // captured yet.
    let end_of_input = order.index == u64::MAX;
    if let Some(record) = report(&key, conn, files, services, end_of_input) {
        stats.records += 1;
        out(Emitted { order, record });
    }
}

/// Report a QUIC connection if it has something to say.
fn emit_quic(
    order: OrderKey,
    key: FlowKey,
    conn: QuicConnection,
    files: &[String],
    services: &Services,
    stats: &mut Stats,
    out: &mut impl FnMut(Emitted),
) {
    let end_of_input = order.index == u64::MAX;
    if let Some(record) = quic::report(&key, conn, files, services, end_of_input) {
        stats.records += 1;
        out(Emitted { order, record });
    }
}

/// Decides when idle connections are expired: every quarter of the idle timeout of capture
/// time. Driven by the input's timestamps alone, so one thread or many expire the same
/// connections at the same input positions.
#[derive(Debug, Clone)]
pub struct Ticker {
    every: i64,
    next: Option<i64>,
}

impl Ticker {
    pub fn new(limits: &Limits) -> Self {
        Ticker {
            every: (limits.idle_timeout_ns / 4).max(1),
            next: None,
        }
    }

    /// Whether a tick is due before a packet captured at `ts`.
    pub fn due(&mut self, ts: i64) -> bool {
        match self.next {
            None => {
                self.next = Some(ts.saturating_add(self.every));
                false
            }
            Some(next) if ts >= next => {
                self.next = Some(ts.saturating_add(self.every));
                true
            }
            Some(_) => false,
        }
    }
}

/// A new connection's state, set up for the service its ports suggest.
fn new_connection(
    services: &Services,
    seg: &Segment<'_>,
    side: Side,
    ts: i64,
    file: usize,
) -> Connection {
    let forced = services.forced(seg.sport) || services.forced(seg.dport);
    // The mail port is the server's; prefer the destination (the usual case for the first
    // packet seen, a SYN or the client's data).
    let mail = match (services.mail(seg.dport), services.mail(seg.sport)) {
        (Some(protocol), _) => Some((protocol, side.other())),
        (None, Some(protocol)) => Some((protocol, side)),
        _ => None,
    };
    Connection::new(ts, file, forced, mail)
}

#[cfg(test)]
mod quic_share_tests {
    use super::*;
    use crate::flow::FlowCost;

    /// Both tables are sized up front from their limits: together they stay within the
    /// process's budget, and the TCP table keeps the size the whole budget gave it alone
    /// (the table grows in powers of two, so the sixteenth QUIC takes costs TCP no step).
    #[test]
    fn the_quic_table_takes_a_sixteenth_of_the_flow_budget() {
        for budget in [40usize << 20, 160 << 20, 80 << 20] {
            let limits = Limits {
                max_flows: usize::MAX,
                flow_memory: Some(budget),
                ..Limits::default()
            };
            let (tcp, quic) = (tcp_limits(limits), quic_limits(limits));
            assert_eq!(tcp.flow_memory.unwrap() + quic.flow_memory.unwrap(), budget);
            assert_eq!(quic.flow_memory, Some(budget / 16));
            let cost = FlowCost::of::<Connection>();
            assert_eq!(
                cost.flows_within(tcp.flow_memory.unwrap()),
                cost.flows_within(budget)
            );
            let quic_flows = FlowCost::of::<QuicConnection>().flows_within(budget / 16);
            eprintln!(
                "{} MiB: {} TCP, {quic_flows} QUIC connections ({:?} per QUIC slot)",
                budget >> 20,
                cost.flows_within(budget),
                FlowCost::of::<QuicConnection>()
            );
        }
    }
}

#[cfg(test)]
mod services_tests {
    use super::*;

    #[test]
    fn a_port_is_in_a_set_whatever_its_size() {
        for size in [0u16, 1, 3, 8, 9, 40] {
            let ports: HashSet<u16> = (0..size).map(|i| 25 + 7 * i).collect();
            for port in 0..400 {
                assert_eq!(has(&ports, port), ports.contains(&port), "{size} {port}");
            }
        }
    }
}
