//! OpenVPN over TCP: one direction's control channel → the TLS byte stream it carries.
//!
//! OpenVPN runs its TLS handshake inside its own reliable control channel. Over TCP every
//! OpenVPN packet is prefixed by a 16-bit big-endian length (OpenVPN's `socket.h` stream
//! framing). A packet starts with one byte, opcode (high 5 bits) and key id (low 3 bits)
//! (`ssl_pkt.h`). Control packets then carry, in order:
//!
//! ```text
//! session id (8)
//! [ HMAC (digest size) | replay packet id (4) | net time (4) ]    only with --tls-auth
//! ACK array: count n (1) | n × acked message id (4) | remote session id (8, if n > 0)
//! message packet id (4)                                          not in P_ACK_V1
//! TLS bytes                                                      P_CONTROL_V1 only
//! ```
//!
//! With `--tls-crypt` the replay id and time come right after the session id, then a 32-byte
//! tag, and everything after it is encrypted (`tls_crypt.h`); `--tls-crypt-v2` uses its own
//! hard-reset opcode and appends the wrapped client key. Neither shows any TLS, so such a
//! direction is recognised and then ends as [`End::Encrypted`].
//!
//! The HMAC size is not signalled on the wire. Like the dissectors do, it is inferred from the
//! direction's first packet, which must be a hard reset: each candidate digest size is tried
//! and kept only if the rest of the packet parses exactly the way a hard reset is built
//! (`ssl.c`, `ssl_pkt.c`): a sane ACK array (none at all from the client), message packet id
//! 0 (a reset is always the first reliable message), and nothing after it but well-formed
//! early-negotiation TLVs. A wrong guess would have to land on four zero bytes in the middle
//! of an HMAC or session id to pass.
//!
//! The TLS stream of a direction is the concatenation of the P_CONTROL_V1 payloads of the
//! initial key (key id 0) in message packet id order (`reliable.c`): repeats (retransmissions)
//! are dropped, and a few early arrivals are held back. Later key ids are renegotiations with
//! a TLS session of their own, and are ignored, as are data packets.
//!
//! Memory per direction is bounded: a packet split across TCP pieces is gathered in one
//! buffer of at most 2 + 65535 bytes, and out-of-order messages are held up to
//! [`MAX_HELD`] packets and [`MAX_HELD_BYTES`] bytes. Whole packets inside a piece are parsed
//! in place and their TLS bytes handed out without copying; only split or early packets are
//! copied. Anything malformed ends the direction: from then on `feed` ignores its input.

/// Largest OpenVPN packet: the TCP length prefix is 16 bits.
pub const MAX_PACKET: usize = u16::MAX as usize;

/// Most out-of-order control messages held for one direction. OpenVPN itself keeps at most
/// `TLS_RELIABLE_N_REC_BUFFERS` (12) unacknowledged incoming messages, so a peer never has
/// more than that in flight; a larger gap means a message was lost.
pub const MAX_HELD: usize = 16;

/// Most payload bytes held in out-of-order messages for one direction. Control packets are
/// limited by OpenVPN's `--tls-mtu` (1250 by default), so 16 of them fit easily.
pub const MAX_HELD_BYTES: usize = 64 * 1024;

/// Largest hard reset accepted as the start of a direction, hence the most bytes
/// [`OpenVpnStream::detect`] ever needs (plus the 2-byte length). The biggest real reset is
/// the tls-crypt-v2 one: 54 bytes of header and encrypted reset, a TLV or two, and a wrapped
/// client key of at most 1024 bytes (`TLS_CRYPT_V2_MAX_WKC_LEN`).
pub const MAX_RESET_LEN: usize = 1536;

/// Packet opcodes (`ssl_pkt.h`).
const P_CONTROL_HARD_RESET_CLIENT_V1: u8 = 1;
const P_CONTROL_HARD_RESET_SERVER_V1: u8 = 2;
const P_CONTROL_SOFT_RESET_V1: u8 = 3;
const P_CONTROL_V1: u8 = 4;
const P_ACK_V1: u8 = 5;
const P_DATA_V1: u8 = 6;
const P_CONTROL_HARD_RESET_CLIENT_V2: u8 = 7;
const P_CONTROL_HARD_RESET_SERVER_V2: u8 = 8;
const P_DATA_V2: u8 = 9;
/// tls-crypt-v2: the client's reset, with its wrapped key appended.
const P_CONTROL_HARD_RESET_CLIENT_V3: u8 = 10;
/// tls-crypt-v2: a control packet with the wrapped key appended.
const P_CONTROL_WKC_V1: u8 = 11;

/// A hard reset always starts key id 0; renegotiations move on to 1..7 (`ssl.c`).
const INITIAL_KEY_ID: u8 = 0;
/// Session ids are 8 random bytes (`session_id.h`).
const SID_LEN: usize = 8;
/// The long-form replay packet id of --tls-auth / --tls-crypt: id (4) and net time (4).
const REPLAY_ID_LEN: usize = 8;
/// --tls-crypt's authentication tag: HMAC-SHA256.
const TLS_CRYPT_TAG_LEN: usize = 32;
/// At most this many ids in one ACK array (`RELIABLE_ACK_SIZE`; OpenVPN rejects more).
const MAX_ACKS: u8 = 8;
/// The smallest hard reset: opcode, session id, empty ACK array, message packet id.
const MIN_RESET_LEN: usize = 1 + SID_LEN + 1 + 4;
/// The smallest --tls-crypt reset: opcode, session id, replay id, tag, then an encrypted
/// empty ACK array and message packet id.
const MIN_TLS_CRYPT_RESET_LEN: usize = 1 + SID_LEN + REPLAY_ID_LEN + TLS_CRYPT_TAG_LEN + 1 + 4;
/// A tls-crypt-v2 wrapped client key: tag (32) + encrypted 2048-bit key (256) + length (2),
/// then metadata, at most 1024 bytes in all (`doc/tls-crypt-v2.txt`, `tls_crypt.h`).
const MIN_WKC_LEN: usize = 32 + 256 + 2;
const MAX_WKC_LEN: usize = 1024;

/// HMAC sizes tried for --tls-auth, no HMAC first: MD5 (16), SHA1 and RIPEMD160 (20),
/// SHA224 (28), SHA256 (32), SHA384 (48), SHA512 (64).
const HMAC_SIZES: [usize; 7] = [0, 16, 20, 28, 32, 48, 64];

/// The answer of [`OpenVpnStream::detect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detect {
    /// The direction starts with an OpenVPN hard reset.
    Yes,
    /// It does not.
    No,
    /// Not enough bytes yet to tell (never more than 2 + [`MAX_RESET_LEN`] are needed).
    NeedMore,
}

/// Why a direction stopped being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// OpenVPN with an encrypted control channel (--tls-crypt, --tls-crypt-v2): no TLS to see.
    Encrypted,
    /// The direction does not start with an OpenVPN hard reset.
    NotOpenVpn,
    /// A packet broke the framing or header rules.
    Malformed,
    /// Messages were missing for longer than the out-of-order bounds allow, or the caller
    /// stopped the stream (a TCP gap).
    Gap,
}

/// How the control channel of a connection is wrapped, learned from its hard reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Plain control packets, with this many HMAC bytes (0: no --tls-auth).
    Plain { hmac: usize },
    /// --tls-crypt or --tls-crypt-v2.
    Encrypted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Waiting for the first packet, a hard reset.
    #[default]
    Start,
    /// Following the control channel of the initial key.
    Control {
        hmac: usize,
        session: [u8; SID_LEN],
        /// The next message packet id whose payload goes out.
        next_id: u32,
    },
    Ended(End),
}

/// One direction of an OpenVPN-over-TCP connection.
#[derive(Debug, Default)]
pub struct OpenVpnStream {
    state: State,
    /// A packet split across pieces, with its 2-byte length prefix: at most 2 + [`MAX_PACKET`]
    /// bytes. Reused for the stream's life.
    partial: Vec<u8>,
    /// Control messages that arrived before their turn: (message packet id, TLS bytes). At
    /// most [`MAX_HELD`] entries and [`MAX_HELD_BYTES`] bytes.
    held: Vec<(u32, Vec<u8>)>,
    held_bytes: usize,
}

impl OpenVpnStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Does this direction start like OpenVPN over TCP (a client or server hard reset)?
    ///
    /// `first_bytes` are the direction's first bytes, in order. The whole first packet is
    /// needed to tell (at most 2 + [`MAX_RESET_LEN`] bytes); fewer give `NeedMore` unless
    /// the length or opcode already rule OpenVPN out.
    pub fn detect(first_bytes: &[u8]) -> Detect {
        let [l0, l1, rest @ ..] = first_bytes else {
            let too_long = first_bytes
                .first()
                .is_some_and(|&b| usize::from(b) > MAX_RESET_LEN >> 8);
            return if too_long {
                Detect::No
            } else {
                Detect::NeedMore
            };
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if !(MIN_RESET_LEN..=MAX_RESET_LEN).contains(&len) {
            return Detect::No;
        }
        let Some(&first) = rest.first() else {
            return Detect::NeedMore;
        };
        if !is_hard_reset(first >> 3) || first & 7 != INITIAL_KEY_ID {
            return Detect::No;
        }
        match rest.get(..len) {
            None => Detect::NeedMore,
            Some(packet) if classify_reset(packet).is_some() => Detect::Yes,
            Some(_) => Detect::No,
        }
    }

    /// Why parsing stopped, if it has.
    pub fn end(&self) -> Option<End> {
        match self.state {
            State::Ended(end) => Some(end),
            _ => None,
        }
    }

    /// The --tls-auth HMAC size found in the hard reset (0 without --tls-auth), once known.
    pub fn hmac_len(&self) -> Option<usize> {
        match self.state {
            State::Control { hmac, .. } => Some(hmac),
            _ => None,
        }
    }

    /// True when part of an OpenVPN packet or an out-of-order message is held, so that the
    /// stream ending here loses bytes.
    pub fn mid_packet(&self) -> bool {
        !self.partial.is_empty() || !self.held.is_empty()
    }

    /// Stop parsing (a gap in the TCP stream): nothing after this point is trusted.
    pub fn stop(&mut self, end: End) {
        self.state = State::Ended(end);
        self.release();
    }

    fn release(&mut self) {
        self.partial = Vec::new();
        self.held = Vec::new();
        self.held_bytes = 0;
    }

    /// Feed in-order TCP bytes of this direction; TLS bytes come out through `tls`, in order.
    pub fn feed(&mut self, mut data: &[u8], tls: &mut impl FnMut(&[u8])) {
        while !data.is_empty() && !matches!(self.state, State::Ended(_)) {
            if self.state == State::Start && self.rejects_start(data) {
                self.state = State::Ended(End::NotOpenVpn);
                break;
            }
            if self.partial.is_empty() {
                // The common case: whole packets inside this piece, parsed in place.
                if let [l0, l1, rest @ ..] = data {
                    let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                    if let Some(packet) = rest.get(..len) {
                        self.packet(packet, tls);
                        data = &rest[len..];
                        continue;
                    }
                }
                // A packet cut by the end of the piece: less than 2 + MAX_PACKET bytes.
                self.partial.extend_from_slice(data);
                break;
            }
            let want = match self.partial[..] {
                [l0, l1, ..] => 2 + usize::from(u16::from_be_bytes([l0, l1])),
                _ => 2,
            };
            let take = (want - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if let [l0, l1, ..] = self.partial[..] {
                if self.partial.len() == 2 + usize::from(u16::from_be_bytes([l0, l1])) {
                    let whole = std::mem::take(&mut self.partial);
                    self.packet(&whole[2..], tls);
                    self.partial = whole;
                    self.partial.clear();
                }
            }
        }
        if let State::Ended(_) = self.state {
            self.release();
        }
    }

    /// Do the first bytes (held and new) already rule out a hard reset? Checked before
    /// buffering, so that a stream that is not OpenVPN never has more than
    /// 2 + [`MAX_RESET_LEN`] bytes held.
    fn rejects_start(&self, data: &[u8]) -> bool {
        let mut head = [0u8; 3];
        let held = self.partial.len().min(3);
        head[..held].copy_from_slice(&self.partial[..held]);
        let more = (3 - held).min(data.len());
        head[held..held + more].copy_from_slice(&data[..more]);
        Self::detect(&head[..held + more]) == Detect::No
    }

    /// One whole OpenVPN packet (without its length prefix).
    fn packet(&mut self, packet: &[u8], tls: &mut impl FnMut(&[u8])) {
        let State::Control {
            hmac,
            session,
            next_id,
        } = self.state
        else {
            if self.state == State::Start {
                self.state = match classify_reset(packet) {
                    Some(Layout::Plain { hmac }) => State::Control {
                        hmac,
                        // A reset is at least MIN_RESET_LEN bytes: the session id is there.
                        session: packet
                            .get(1..1 + SID_LEN)
                            .and_then(|sid| sid.try_into().ok())
                            .unwrap_or_default(),
                        // The reset itself was message 0.
                        next_id: 1,
                    },
                    Some(Layout::Encrypted) => State::Ended(End::Encrypted),
                    None => State::Ended(End::NotOpenVpn),
                };
            }
            return;
        };
        let Some(&first) = packet.first() else {
            self.state = State::Ended(End::Malformed);
            return;
        };
        let (opcode, key) = (first >> 3, first & 7);
        match opcode {
            P_DATA_V1 | P_DATA_V2 => return,
            P_CONTROL_HARD_RESET_CLIENT_V1
            | P_CONTROL_HARD_RESET_SERVER_V1
            | P_CONTROL_SOFT_RESET_V1
            | P_CONTROL_V1
            | P_ACK_V1
            | P_CONTROL_HARD_RESET_CLIENT_V2
            | P_CONTROL_HARD_RESET_SERVER_V2 => {}
            // tls-crypt-v2 packets cannot appear in a plain control channel.
            P_CONTROL_HARD_RESET_CLIENT_V3 | P_CONTROL_WKC_V1 => {
                self.state = State::Ended(End::Malformed);
                return;
            }
            // Opcode 0 and 12..31 are undefined.
            _ => {
                self.state = State::Ended(End::Malformed);
                return;
            }
        }
        if key != INITIAL_KEY_ID {
            // A renegotiation (soft reset) runs its own TLS session under another key id.
            return;
        }
        let Some(header) = parse_control(packet, hmac) else {
            self.state = State::Ended(End::Malformed);
            return;
        };
        if header.session != session {
            self.state = State::Ended(End::Malformed);
            return;
        }
        let Some((id, payload)) = header.message else {
            return; // P_ACK_V1
        };
        if id < next_id {
            return; // a retransmission: already passed on
        }
        match opcode {
            P_CONTROL_V1 => self.message(id, payload, tls),
            // A reset or soft reset can only be message 0 of its key (a repeat, dropped above).
            _ => self.state = State::Ended(End::Malformed),
        }
    }

    /// A P_CONTROL_V1 message not yet passed on: out now, or held until its turn.
    fn message(&mut self, id: u32, payload: &[u8], tls: &mut impl FnMut(&[u8])) {
        let State::Control { next_id, .. } = &mut self.state else {
            return;
        };
        if id > *next_id {
            if self.held.iter().any(|(held, _)| *held == id) {
                return; // a retransmission of an early message
            }
            if self.held.len() >= MAX_HELD || self.held_bytes + payload.len() > MAX_HELD_BYTES {
                self.state = State::Ended(End::Gap);
                return;
            }
            self.held_bytes += payload.len();
            self.held.push((id, payload.to_vec()));
            return;
        }
        tls(payload);
        let mut next = id.checked_add(1);
        while let Some(want) = next {
            let Some(pos) = self.held.iter().position(|(held, _)| *held == want) else {
                break;
            };
            let (_, bytes) = self.held.swap_remove(pos);
            self.held_bytes -= bytes.len();
            tls(&bytes);
            next = want.checked_add(1);
        }
        match next {
            Some(next) => *next_id = next,
            // Four billion control messages: not a handshake.
            None => self.state = State::Ended(End::Malformed),
        }
    }
}

/// The fields of a plain control packet that matter here.
struct Control<'a> {
    session: &'a [u8],
    /// Message packet id and payload (absent in P_ACK_V1).
    message: Option<(u32, &'a [u8])>,
    /// Number of ids in the ACK array.
    acks: u8,
}

/// Parse a plain control packet (any control opcode) with `hmac` bytes of --tls-auth HMAC.
fn parse_control(packet: &[u8], hmac: usize) -> Option<Control<'_>> {
    let mut r = Reader(packet);
    let opcode = r.u8()? >> 3;
    let session = r.take(SID_LEN)?;
    if hmac > 0 {
        r.take(hmac + REPLAY_ID_LEN)?;
    }
    let acks = r.u8()?;
    if acks > MAX_ACKS {
        return None;
    }
    r.take(4 * usize::from(acks))?;
    if acks > 0 {
        r.take(SID_LEN)?;
    }
    let message = if opcode == P_ACK_V1 {
        None
    } else {
        Some((r.u32()?, r.0))
    };
    Some(Control {
        session,
        message,
        acks,
    })
}

fn is_hard_reset(opcode: u8) -> bool {
    matches!(
        opcode,
        P_CONTROL_HARD_RESET_CLIENT_V1
            | P_CONTROL_HARD_RESET_SERVER_V1
            | P_CONTROL_HARD_RESET_CLIENT_V2
            | P_CONTROL_HARD_RESET_SERVER_V2
            | P_CONTROL_HARD_RESET_CLIENT_V3
    )
}

/// Is `packet` a hard reset, and how is its control channel wrapped?
fn classify_reset(packet: &[u8]) -> Option<Layout> {
    let &first = packet.first()?;
    let opcode = first >> 3;
    if !is_hard_reset(opcode)
        || first & 7 != INITIAL_KEY_ID
        || !(MIN_RESET_LEN..=MAX_RESET_LEN).contains(&packet.len())
    {
        return None;
    }
    if opcode == P_CONTROL_HARD_RESET_CLIENT_V3 {
        return tls_crypt_v2_reset(packet).then_some(Layout::Encrypted);
    }
    let client = matches!(
        opcode,
        P_CONTROL_HARD_RESET_CLIENT_V1 | P_CONTROL_HARD_RESET_CLIENT_V2
    );
    // Among the sizes under which the packet parses as a reset, prefer one that leaves no
    // payload (the usual reset), then the smallest.
    let mut found = None;
    for hmac in HMAC_SIZES {
        match plain_reset(packet, hmac, client) {
            Some(true) => return Some(Layout::Plain { hmac }),
            Some(false) => {
                found.get_or_insert(hmac);
            }
            None => {}
        }
    }
    if let Some(hmac) = found {
        return Some(Layout::Plain { hmac });
    }
    tls_crypt_reset(packet).then_some(Layout::Encrypted)
}

/// Does `packet` parse as a plain hard reset with `hmac` bytes of HMAC? `Some(true)` when
/// nothing follows the message packet id, `Some(false)` when early-negotiation TLVs do.
fn plain_reset(packet: &[u8], hmac: usize, client: bool) -> Option<bool> {
    if hmac > 0 {
        // --tls-auth replay ids start at 1 (`packet_id.c`).
        let replay_id = packet.get(1 + SID_LEN + hmac..1 + SID_LEN + hmac + 4)?;
        if replay_id == [0; 4] {
            return None;
        }
    }
    let header = parse_control(packet, hmac)?;
    // The client's reset is its first packet: nothing to acknowledge yet.
    if client && header.acks != 0 {
        return None;
    }
    match header.message? {
        (0, []) => Some(true),
        (0, tlvs) => valid_tlvs(tlvs).then_some(false),
        _ => None,
    }
}

/// Early-negotiation TLVs after a reset's message id (`ssl.c`): type (2), length (2), value.
fn valid_tlvs(mut tlvs: &[u8]) -> bool {
    while let [_, _, l0, l1, rest @ ..] = tlvs {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        match rest.get(len..) {
            Some(after) => tlvs = after,
            None => return false,
        }
    }
    tlvs.is_empty()
}

/// A --tls-crypt reset: long enough, with a plausible replay id (they start at 1; the
/// tls-crypt-v2 client marks early negotiation with 0x0f in the top byte) and a net time.
fn tls_crypt_reset(packet: &[u8]) -> bool {
    let mut r = Reader(packet.get(1 + SID_LEN..).unwrap_or_default());
    let (Some(id), Some(time)) = (r.u32(), r.u32()) else {
        return false;
    };
    packet.len() >= MIN_TLS_CRYPT_RESET_LEN
        && (1..=0xffff).contains(&(id & 0x00ff_ffff))
        && (id >> 24 == 0 || id >> 24 == 0x0f)
        && time != 0
}

/// A tls-crypt-v2 client reset: a tls-crypt reset followed by the wrapped client key, whose
/// own length closes the packet (`doc/tls-crypt-v2.txt`).
fn tls_crypt_v2_reset(packet: &[u8]) -> bool {
    let [.., l0, l1] = packet else {
        return false;
    };
    let wkc = usize::from(u16::from_be_bytes([*l0, *l1]));
    (MIN_WKC_LEN..=MAX_WKC_LEN).contains(&wkc)
        && packet.len() >= MIN_TLS_CRYPT_RESET_LEN + wkc
        && tls_crypt_reset(&packet[..packet.len() - wkc])
}

/// A cursor over a packet; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a plain control packet with its TCP length prefix.
    fn packet(
        opcode: u8,
        sid: u8,
        hmac: usize,
        acks: &[u32],
        id: Option<u32>,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut p = vec![opcode << 3];
        p.extend_from_slice(&[sid; 8]);
        if hmac > 0 {
            p.extend(std::iter::repeat_n(0xa5, hmac));
            p.extend_from_slice(&1u32.to_be_bytes());
            p.extend_from_slice(&0x5000_0000u32.to_be_bytes());
        }
        p.push(acks.len() as u8);
        for a in acks {
            p.extend_from_slice(&a.to_be_bytes());
        }
        if !acks.is_empty() {
            p.extend_from_slice(&[sid ^ 0xff; 8]);
        }
        if let Some(id) = id {
            p.extend_from_slice(&id.to_be_bytes());
        }
        p.extend_from_slice(payload);
        let mut framed = (p.len() as u16).to_be_bytes().to_vec();
        framed.extend(p);
        framed
    }

    fn client_stream(hmac: usize) -> Vec<u8> {
        let mut s = packet(P_CONTROL_HARD_RESET_CLIENT_V2, 1, hmac, &[], Some(0), &[]);
        s.extend(packet(P_ACK_V1, 1, hmac, &[0], None, &[]));
        s.extend(packet(P_CONTROL_V1, 1, hmac, &[], Some(1), b"hello "));
        s.extend(packet(P_CONTROL_V1, 1, hmac, &[0], Some(2), b"world"));
        s
    }

    fn run(stream: &mut OpenVpnStream, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for piece in pieces {
            stream.feed(piece, &mut |b| out.extend_from_slice(b));
        }
        out
    }

    #[test]
    fn detects_and_unwraps_every_hmac_size() {
        for hmac in HMAC_SIZES {
            let bytes = client_stream(hmac);
            assert_eq!(OpenVpnStream::detect(&bytes), Detect::Yes, "hmac {hmac}");
            let mut s = OpenVpnStream::new();
            assert_eq!(run(&mut s, &[&bytes]), b"hello world");
            assert_eq!(s.hmac_len(), Some(hmac));
            assert_eq!(s.end(), None);
        }
    }

    #[test]
    fn any_split_gives_the_same_bytes() {
        let bytes = client_stream(20);
        for cut in 0..=bytes.len() {
            let mut s = OpenVpnStream::new();
            assert_eq!(run(&mut s, &[&bytes[..cut], &bytes[cut..]]), b"hello world");
            let mut s = OpenVpnStream::new();
            let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(run(&mut s, &pieces), b"hello world");
            assert!(!s.mid_packet());
        }
    }

    #[test]
    fn detect_needs_the_whole_reset() {
        let bytes = packet(P_CONTROL_HARD_RESET_SERVER_V2, 3, 32, &[0], Some(0), &[]);
        for cut in 0..bytes.len() {
            assert_eq!(OpenVpnStream::detect(&bytes[..cut]), Detect::NeedMore);
        }
        assert_eq!(OpenVpnStream::detect(&bytes), Detect::Yes);
        assert_eq!(
            OpenVpnStream::detect(b"\x16\x03\x01\x02\x00\x01"),
            Detect::No
        );
        assert_eq!(OpenVpnStream::detect(b"GET / HTTP/1.1\r\n"), Detect::No);
        // A control packet is not a start.
        let control = packet(P_CONTROL_V1, 3, 0, &[], Some(1), b"x");
        assert_eq!(OpenVpnStream::detect(&control), Detect::No);
    }

    #[test]
    fn reset_with_early_negotiation_tlvs() {
        let tlv = [0, 1, 0, 2, 0, 1];
        let bytes = packet(P_CONTROL_HARD_RESET_CLIENT_V2, 9, 20, &[], Some(0), &tlv);
        assert_eq!(OpenVpnStream::detect(&bytes), Detect::Yes);
        let mut s = OpenVpnStream::new();
        run(&mut s, &[&bytes]);
        assert_eq!(s.hmac_len(), Some(20));
        let broken = packet(
            P_CONTROL_HARD_RESET_CLIENT_V2,
            9,
            20,
            &[],
            Some(0),
            &tlv[..5],
        );
        assert_eq!(OpenVpnStream::detect(&broken), Detect::No);
    }

    #[test]
    fn retransmissions_and_reordering() {
        let mut bytes = packet(P_CONTROL_HARD_RESET_SERVER_V2, 2, 0, &[0], Some(0), &[]);
        bytes.extend(packet(
            P_CONTROL_HARD_RESET_SERVER_V2,
            2,
            0,
            &[0],
            Some(0),
            &[],
        ));
        bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(1), b"a"));
        bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(3), b"c"));
        bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(3), b"c"));
        bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(1), b"a"));
        bytes.extend(packet(P_DATA_V2, 2, 0, &[], None, b"data"));
        bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(2), b"b"));
        bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(4), b"d"));
        // A renegotiation under key id 1 starts its own numbering: ignored.
        let mut soft = packet(P_CONTROL_V1, 2, 0, &[], Some(1), b"z");
        soft[2] |= 1;
        bytes.extend(soft);
        let mut s = OpenVpnStream::new();
        assert_eq!(run(&mut s, &[&bytes]), b"abcd");
        assert_eq!(s.end(), None);
    }

    #[test]
    fn too_many_early_messages_is_a_gap() {
        let mut bytes = packet(P_CONTROL_HARD_RESET_CLIENT_V2, 2, 0, &[], Some(0), &[]);
        for id in 2..=(MAX_HELD as u32 + 2) {
            bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(id), b"x"));
        }
        let mut s = OpenVpnStream::new();
        assert_eq!(run(&mut s, &[&bytes]), b"");
        assert_eq!(s.end(), Some(End::Gap));
        assert!(!s.mid_packet());
    }

    #[test]
    fn malformed_ends_the_stream() {
        let start = packet(P_CONTROL_HARD_RESET_CLIENT_V2, 2, 0, &[], Some(0), &[]);
        let cases: Vec<Vec<u8>> = vec![
            vec![0, 0],                                                      // empty packet
            packet(0, 2, 0, &[], Some(1), b"x"),                             // opcode 0
            packet(P_CONTROL_V1, 7, 0, &[], Some(1), b"x"),                  // other session
            packet(P_CONTROL_V1, 2, 0, &[1; 9], Some(1), b"x"),              // 9 acks
            packet(P_CONTROL_HARD_RESET_CLIENT_V2, 2, 0, &[], Some(5), &[]), // reset as msg 5
            vec![0, 3, P_CONTROL_V1 << 3, 2, 2],                             // short header
        ];
        for case in cases {
            let mut s = OpenVpnStream::new();
            let mut bytes = start.clone();
            bytes.extend(case);
            bytes.extend(packet(P_CONTROL_V1, 2, 0, &[], Some(1), b"late"));
            assert_eq!(run(&mut s, &[&bytes]), b"");
            assert_eq!(s.end(), Some(End::Malformed));
        }
        let mut s = OpenVpnStream::new();
        run(&mut s, &[b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"]);
        assert_eq!(s.end(), Some(End::NotOpenVpn));
    }

    #[test]
    fn tls_crypt_is_recognised_as_encrypted() {
        let mut p = vec![P_CONTROL_HARD_RESET_CLIENT_V2 << 3];
        p.extend_from_slice(&[0x42; 8]);
        p.extend_from_slice(&1u32.to_be_bytes());
        p.extend_from_slice(&0x6000_0000u32.to_be_bytes());
        p.extend(std::iter::repeat_n(0x99, 32 + 5));
        let mut framed = (p.len() as u16).to_be_bytes().to_vec();
        framed.extend(&p);
        assert_eq!(OpenVpnStream::detect(&framed), Detect::Yes);
        let mut s = OpenVpnStream::new();
        run(&mut s, &[&framed]);
        assert_eq!(s.end(), Some(End::Encrypted));

        // tls-crypt-v2: the same with a V3 opcode and a wrapped key appended.
        p[0] = P_CONTROL_HARD_RESET_CLIENT_V3 << 3;
        p[9..13].copy_from_slice(&0x0f00_0001u32.to_be_bytes());
        let wkc = 32 + 256 + 9 + 2;
        p.extend(std::iter::repeat_n(0x77, wkc - 2));
        p.extend_from_slice(&(wkc as u16).to_be_bytes());
        let mut framed = (p.len() as u16).to_be_bytes().to_vec();
        framed.extend(&p);
        assert_eq!(OpenVpnStream::detect(&framed), Detect::Yes);
        let mut s = OpenVpnStream::new();
        run(&mut s, &[&framed]);
        assert_eq!(s.end(), Some(End::Encrypted));
    }
}
