//! One TCP connection's state, and how a segment's bytes travel up through it:
//!
//! ```text
//! segment → Reassembler (per direction) → framing (PROXY header, OpenVPN) → TlsStream
//!                                        ↘ mail dialogue (plaintext part of SMTP/IMAP/POP3)
//! ```

use std::net::IpAddr;

use crate::decode::Segment;
use crate::flow::reassembly::Reassembler;
use crate::flow::Side;
use crate::proto::openvpn::{self, OpenVpnStream};
use crate::proto::proxy;
use crate::proto::starttls::{Dialogue, MailProtocol};
use crate::tls::certificate::CertificateChain;
use crate::tls::hello::{ClientHello, ServerHello};
use crate::tls::stream::{looks_like_tls, End, Event, TlsStream};

use super::Stats;

/// Bytes held while the first bytes of a direction cannot yet tell whether a PROXY header
/// or OpenVPN framing comes first (both fit in far less).
const PREFIX_CAP: usize = 2 + openvpn::MAX_RESET_LEN;

/// How the TLS bytes of a direction are wrapped.
#[derive(Debug, Default)]
pub(super) enum Framing {
    /// No byte seen yet.
    #[default]
    Undecided,
    /// TLS (or plaintext before STARTTLS) directly on TCP.
    Plain,
    /// OpenVPN's control channel carries the TLS bytes.
    OpenVpn(Box<OpenVpnStream>),
}

/// One direction of a connection.
#[derive(Debug, Default)]
pub(super) struct Half {
    pub reassembler: Reassembler,
    pub upper: Upper,
    /// Bytes of this direction were lost (a gap never filled, or a snap length cut them).
    pub lost_bytes: bool,
}

/// Everything above reassembly for one direction.
#[derive(Debug, Default)]
pub(super) struct Upper {
    pub framing: Framing,
    /// First bytes held until the framing is known (rare: only when they come in tiny pieces).
    prefix: Vec<u8>,
    /// Where each held piece ends in `prefix`.
    prefix_cuts: Vec<usize>,
    pub tls: TlsStream,
}

/// What the handshake said so far.
#[derive(Debug, Default)]
pub(super) struct Handshake {
    pub client_hello: Option<(Box<ClientHello>, i64, u64)>,
    pub client_hellos: u32,
    /// The ServerHello (the last one, after a HelloRetryRequest) and its time.
    pub server_hello: Option<(Box<ServerHello>, i64)>,
    pub hrr: bool,
    /// Plaintext alerts: sender, level, description.
    pub alerts: Vec<(Side, u8, u8)>,
    pub encrypted_alerts: u32,
    /// The server's Certificate message (TLS ≤ 1.2), when one was read.
    pub certificate: Option<Box<CertificateChain>>,
    /// Which side sent the first ClientHello (true) or ServerHello (false).
    pub hello_sender: Option<(Side, bool)>,
    /// Input file, frame and time of the first hello.
    pub first_hello: Option<(usize, u64, i64)>,
}

impl Handshake {
    pub fn hello_seen(&self) -> bool {
        self.client_hello.is_some() || self.server_hello.is_some()
    }

    pub fn fatal_alert(&self) -> bool {
        self.alerts.iter().any(|(_, level, _)| *level == 2)
    }
}

/// The plaintext start of a mail session.
#[derive(Debug)]
pub(super) struct Mail {
    pub dialogue: Dialogue,
    /// The side of the mail port.
    pub server: Side,
}

/// Facts about the connection shared by both directions.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub handshake: Handshake,
    pub mail: Option<Box<Mail>>,
    /// The true client named by a PROXY header.
    pub proxied: Option<(IpAddr, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Handshake being parsed.
    Open,
    /// Not TLS: packets are looked up and dropped.
    Ignored,
    /// Already reported: packets are looked up and dropped.
    Reported,
}

/// A tracked connection. What every connection needs stays inline and small (a SYN flood
/// costs only this); the parsing state is allocated with the first payload byte.
#[derive(Debug)]
pub(super) struct Connection {
    pub phase: Phase,
    /// The side that sent the SYN, when it was captured.
    pub client: Option<Side>,
    pub forced_port: bool,
    /// FIN or RST seen from each side.
    pub fin: [bool; 2],
    /// Initial sequence numbers from each side's SYN.
    pub isn: [Option<u32>; 2],
    /// The mail protocol its port suggests, and the server's side.
    mail_hint: Option<(MailProtocol, Side)>,
    pub first_ts: i64,
    /// Which input file the connection was first seen in (index into the file list).
    pub file: u32,
    pub body: Option<Box<Body>>,
}

/// Parsing state of a connection that carried data.
#[derive(Debug, Default)]
pub(super) struct Body {
    pub halves: [Half; 2],
    pub shared: Shared,
}

/// Where a segment came from, for the records.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin {
    pub ts: i64,
    pub frame: u64,
    pub file: usize,
}

impl Connection {
    pub fn new(
        ts: i64,
        file: usize,
        forced_port: bool,
        mail: Option<(MailProtocol, Side)>,
    ) -> Self {
        Connection {
            phase: Phase::Open,
            client: None,
            forced_port,
            fin: [false; 2],
            isn: [None; 2],
            mail_hint: mail,
            first_ts: ts,
            file: u32::try_from(file).unwrap_or(u32::MAX),
            body: None,
        }
    }

    /// The parsing state, created on first use.
    fn body_mut(&mut self) -> &mut Body {
        let (mail_hint, isn) = (self.mail_hint, self.isn);
        self.body.get_or_insert_with(|| {
            let mut body = Box::<Body>::default();
            body.shared.mail = mail_hint.map(|(protocol, server)| {
                Box::new(Mail {
                    dialogue: Dialogue::new(protocol),
                    server,
                })
            });
            for (half, isn) in body.halves.iter_mut().zip(isn) {
                if let Some(isn) = isn {
                    half.reassembler.syn(isn);
                }
            }
            body
        })
    }

    /// Whether a SYN from `side` with sequence number `seq` starts a new connection on the
    /// same addresses and ports: the old one was reported or ignored, or it already carried
    /// data from a different initial sequence number.
    pub fn is_new_incarnation(&self, side: Side, seq: u32) -> bool {
        let delivered = self
            .body
            .as_ref()
            .is_some_and(|b| b.halves[side.index()].reassembler.delivered_any());
        self.phase != Phase::Open
            || (self.isn[side.index()].is_some_and(|isn| isn != seq) && delivered)
    }

    /// A connection's record can no longer change once both directions have stopped
    /// parsing (then no hello, alert or mail dialogue line can come: the dialogue is read
    /// only while its direction is plaintext), once a fatal alert was sent, or once it is a
    /// mail session settled as plaintext.
    pub fn decided(&self) -> bool {
        let Some(body) = &self.body else {
            return false;
        };
        let hs = &body.shared.handshake;
        body.halves.iter().all(|h| h.upper.tls.end().is_some())
            || hs.fatal_alert()
            || (!hs.hello_seen() && hs.alerts.is_empty() && self.settled_plaintext(body))
    }

    /// A confirmed mail session whose client has sent its dialogue's worth of plaintext
    /// ([`BUDGET`](crate::proto::starttls::BUDGET)) without asking for TLS, past the point
    /// where a TLS start is looked for, with no TLS from either side: its record (outcome
    /// `plaintext`) is what it would be at the session's end. Reporting it now spares
    /// reassembling the rest of a message sent in clear, which on a mail server is most of
    /// the traffic such sessions carry. Only a server starting TLS on its own later (which
    /// it cannot without a ClientHello) would have changed the record.
    fn settled_plaintext(&self, body: &Body) -> bool {
        let Some(mail) = &body.shared.mail else {
            return false;
        };
        let dialogue = &mail.dialogue;
        let client = self.client.unwrap_or(mail.server.other());
        dialogue.protocol_confirmed()
            && dialogue.requested().is_none()
            && dialogue.client_finished()
            && body.halves[client.index()].upper.tls.end().is_some()
            && !body.halves.iter().any(|h| h.upper.tls.started_tls())
    }

    /// Whether dropping this connection loses nothing: it carried no data yet (a SYN, a
    /// half-open handshake), or it was already reported or found not to be TLS.
    pub fn evictable(&self) -> bool {
        self.body.is_none() && !self.forced_port
    }

    /// Both sides sent FIN (or one sent RST).
    pub fn closed(&self) -> bool {
        self.fin.iter().all(|f| *f)
    }

    /// Feed one segment.
    pub fn feed(&mut self, seg: &Segment<'_>, side: Side, origin: Origin, stats: &mut Stats) {
        if seg.flags.syn {
            self.syn(seg, side);
        }
        if seg.flags.fin || seg.flags.rst {
            self.fin[side.index()] = true;
        }
        if seg.payload.is_empty() {
            return;
        }
        let client = self.client;
        let forced_port = self.forced_port;
        let body = self.body_mut();
        let is_client = client
            .map(|c| c == side)
            .or_else(|| body.shared.mail.as_ref().map(|m| m.server != side));
        let Body { halves, shared } = body;
        let Half {
            reassembler, upper, ..
        } = &mut halves[side.index()];
        let payload_seq = if seg.flags.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let accepted = reassembler.accept(payload_seq, seg.payload, |bytes| {
            upper.deliver(bytes, side, is_client, shared, origin);
        });
        if shared.handshake.hrr {
            halves[side.other().index()].upper.tls.allow_compat_ccs();
        }
        stats.retransmitted_segments += u64::from(accepted.retransmitted);
        stats.inconsistent_retransmissions += u64::from(accepted.inconsistent);
        stats.out_of_order_segments += u64::from(accepted.held);
        let half = &mut halves[side.index()];
        if accepted.dropped {
            stats.dropped_segments += 1;
            half.lost_bytes = true;
            half.upper.tls.stop(End::Malformed);
        }
        if seg.payload_truncated {
            // Only a prefix of this segment was captured: nothing after it can be trusted.
            stats.truncated_frames += 1;
            half.lost_bytes = true;
            if half.upper.tls.end().is_none() {
                half.upper.tls.stop(End::Malformed);
            }
        }
        let not_tls = half.upper.tls.end() == Some(End::NotTls);
        // A mail session stays tracked to the end: a plaintext session is reported too.
        let plain_mail = shared.mail.is_some();
        if not_tls && !shared.handshake.hello_seen() && !forced_port && !plain_mail {
            self.phase = Phase::Ignored;
            self.body = None;
        }
    }

    fn syn(&mut self, seg: &Segment<'_>, side: Side) {
        // A SYN-ACK that does not acknowledge the captured SYN belongs to another incarnation
        // of the connection (or a mirrored copy with rewritten sequence numbers): skip it.
        let peer_isn = self.isn[side.other().index()];
        let answers_syn =
            !seg.flags.ack || peer_isn.is_none_or(|isn| seg.ack == isn.wrapping_add(1));
        if answers_syn {
            self.isn[side.index()] = Some(seg.seq);
            if let Some(body) = &mut self.body {
                body.halves[side.index()].reassembler.syn(seg.seq);
            }
            if self.client.is_none() {
                self.client = Some(if seg.flags.ack { side.other() } else { side });
            }
        }
    }
}

impl Upper {
    /// In-order bytes of this direction.
    fn deliver(
        &mut self,
        bytes: &[u8],
        side: Side,
        is_client: Option<bool>,
        shared: &mut Shared,
        origin: Origin,
    ) {
        if !matches!(self.framing, Framing::Undecided) {
            return self.framed(bytes, side, is_client, shared, origin);
        }
        let held = std::mem::take(&mut self.prefix);
        let cuts = std::mem::take(&mut self.prefix_cuts);
        let decision = if held.is_empty() {
            self.decide_framing(bytes, is_client, shared)
        } else {
            let mut all = held.clone();
            all.extend_from_slice(bytes);
            self.decide_framing(&all, is_client, shared)
        };
        let Some(strip) = decision else {
            // Not enough bytes to tell yet: hold them, remembering where each piece began.
            self.prefix = held;
            self.prefix.extend_from_slice(bytes);
            self.prefix_cuts = cuts;
            self.prefix_cuts.push(self.prefix.len());
            return;
        };
        // Replay the held pieces one by one (the TLS layer looks for a hello at the start of
        // each piece), minus the PROXY header.
        let mut skip = strip;
        let mut start = 0;
        for &end in &cuts {
            let piece = &held[start..end];
            start = end;
            let n = skip.min(piece.len());
            skip -= n;
            if n < piece.len() {
                self.framed(&piece[n..], side, is_client, shared, origin);
            }
        }
        let n = skip.min(bytes.len());
        if n < bytes.len() {
            self.framed(&bytes[n..], side, is_client, shared, origin);
        }
    }

    /// The first bytes: find a PROXY header, recognise OpenVPN, or go plain. Returns how many
    /// leading bytes are a PROXY header, or `None` while more bytes are needed to tell.
    fn decide_framing(
        &mut self,
        data: &[u8],
        is_client: Option<bool>,
        shared: &mut Shared,
    ) -> Option<usize> {
        let room = data.len() < PREFIX_CAP;
        let mut strip = 0;
        if is_client != Some(false) {
            match proxy::parse(data) {
                proxy::Parse::NeedMore if room => return None,
                proxy::Parse::Header { len, proxied } => {
                    shared.proxied = proxied.source;
                    strip = len.min(data.len());
                    if strip == data.len() {
                        // The header came alone: the framing is decided on the next piece.
                        return Some(strip);
                    }
                }
                _ => {}
            }
        }
        self.framing = match OpenVpnStream::detect(&data[strip..]) {
            openvpn::Detect::NeedMore if room => return None,
            openvpn::Detect::Yes => Framing::OpenVpn(Box::new(OpenVpnStream::new())),
            _ => Framing::Plain,
        };
        Some(strip)
    }

    fn framed(
        &mut self,
        bytes: &[u8],
        side: Side,
        is_client: Option<bool>,
        shared: &mut Shared,
        origin: Origin,
    ) {
        let Upper { framing, tls, .. } = self;
        match framing {
            Framing::OpenVpn(vpn) => vpn.feed(bytes, &mut |tls_bytes| {
                tls.feed(tls_bytes, &mut |event| {
                    on_event(shared, side, event, origin)
                });
            }),
            _ => {
                if let Some(mail) = shared.mail.as_deref_mut() {
                    if tls.is_plaintext() && looks_like_tls(bytes) != Some(true) {
                        let from_server = is_client.map_or(side == mail.server, |c| !c);
                        if from_server {
                            mail.dialogue.server_bytes(bytes);
                        } else {
                            mail.dialogue.client_bytes(bytes);
                        }
                    }
                }
                tls.feed(bytes, &mut |event| on_event(shared, side, event, origin));
            }
        }
    }
}

fn on_event(shared: &mut Shared, side: Side, event: Event, origin: Origin) {
    let hs = &mut shared.handshake;
    if hs.first_hello.is_none() && matches!(event, Event::ClientHello(_) | Event::ServerHello(_)) {
        hs.first_hello = Some((origin.file, origin.frame, origin.ts));
    }
    match event {
        Event::ClientHello(hello) => {
            hs.client_hellos += 1;
            hs.hello_sender.get_or_insert((side, true));
            if hs.client_hello.is_none() {
                hs.client_hello = Some((hello, origin.ts, origin.frame));
            }
        }
        Event::ServerHello(hello) => {
            hs.hello_sender.get_or_insert((side, false));
            hs.hrr |= hello.hrr;
            hs.server_hello = Some((hello, origin.ts));
        }
        Event::Alert { level, description } => hs.alerts.push((side, level, description)),
        Event::EncryptedAlert => hs.encrypted_alerts += 1,
        Event::Certificate(chain) => {
            hs.certificate.get_or_insert(chain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flow table's memory is its entries: keep a tracked connection small, so that a
    /// million of them fit the budget of issue #5 (256 MiB).
    #[test]
    fn connection_state_stays_small() {
        let size = std::mem::size_of::<Connection>();
        eprintln!(
            "Connection: {size} bytes, Half: {}",
            std::mem::size_of::<Half>()
        );
        assert!(size <= 64, "{size}");
    }
}
