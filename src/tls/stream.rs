//! One direction of a TLS connection as a byte stream: record layer → handshake messages →
//! hello summaries and plaintext alerts.
//!
//! Bytes arrive in order (the reassembler sees to that) and in arbitrary pieces. Records and
//! handshake messages are parsed straight from the piece they arrive in; only a hello that is
//! proven split (across TCP segments or TLS records) is copied, into a buffer capped at
//! [`HELLO_CAP`]. The server's Certificate message (after its ServerHello, in clear up to TLS
//! 1.2) is read the same way: in place when whole in one piece, else gathered up to
//! [`CERTIFICATE_CAP`]. Other handshake messages are skipped without buffering.
//!
//! A direction stops being parsed at its first ChangeCipherSpec or application data record:
//! everything after that is encrypted, so the handshake summary is decided.

use super::certificate::{self, CertificateChain};
use super::hello::{ClientHello, ServerHello};
use super::parse::{self, HelloError};

/// Largest hello buffered. Post-quantum key shares make 1.5–12 KB ClientHellos common; a
/// hello claiming more than this is reported as `incomplete` rather than buffered.
pub const HELLO_CAP: usize = 64 * 1024;

/// Largest part of a Certificate message gathered. Real chains are 2–8 KB; one larger than
/// this is reported as not seen whole, with its leaf when the leaf fits in the part kept.
pub const CERTIFICATE_CAP: usize = 64 * 1024;

/// How far into a plaintext stream a TLS start is still looked for. Mail, database and proxy
/// dialogues reach their STARTTLS in well under this.
pub const SCAN_LIMIT: usize = 16 * 1024;

/// RFC 8446 5.1: a record's plaintext is at most 2^14 bytes; ciphertext adds up to 2048 (TLS
/// 1.2 allows that much expansion), which is the most a real peer sends.
const MAX_RECORD_LEN: usize = (1 << 14) + 2048;

/// What the stream found, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ClientHello(Box<ClientHello>),
    ServerHello(Box<ServerHello>),
    /// A plaintext alert (RFC 8446 6): level 1 warning, 2 fatal.
    Alert {
        level: u8,
        description: u8,
    },
    /// An alert record sent after this direction switched to encryption (length != 2).
    EncryptedAlert,
    /// The first Certificate message after this direction's ServerHello.
    Certificate(Box<CertificateChain>),
}

/// Why this direction's handshake parsing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// ChangeCipherSpec or application data: the rest is encrypted.
    Encrypted,
    /// The first bytes are not TLS or SSLv2.
    NotTls,
    /// A record or handshake message broke the framing rules.
    Malformed,
    /// A hello larger than [`HELLO_CAP`].
    TooLarge,
    /// After an SSLv2 hello: the rest of an SSLv2 handshake carries nothing the census uses.
    Sslv2Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Nothing seen yet: the first bytes decide TLS, SSLv2 or not TLS.
    #[default]
    Start,
    /// The stream did not start with TLS: each later segment is checked for a hello at its
    /// start (STARTTLS, STLS, RDP's X.224 switch, HTTP CONNECT, SOCKS, database SSL
    /// requests), up to [`SCAN_LIMIT`] bytes.
    Scanning {
        seen: usize,
    },
    /// Between records: expecting a 5-byte TLS record header.
    RecordHeader,
    /// Inside a record of this content type with this many body bytes to go.
    RecordBody {
        content_type: u8,
        version: u16,
        left: usize,
    },
    /// Inside an SSLv2 record of this many bytes (buffered whole; they are small).
    Sslv2Record {
        len: usize,
    },
    Ended(End),
}

/// Handshake message reassembly inside handshake records (RFC 8446 4: a message can span
/// records and a record can hold several messages).
#[derive(Debug, Default)]
struct Handshake {
    /// A handshake header (type, 24-bit length) split across pieces.
    header: Partial<4>,
    /// Body bytes still to skip of a message we do not keep.
    skip: usize,
    /// Type and total body length of a hello being collected into `hello_buf`.
    collecting: Option<(u8, usize)>,
    /// Body length of a Certificate message being collected into `certificate_buf`.
    certificate: Option<usize>,
}

/// A fixed-size header gathered across pieces without allocating.
#[derive(Debug, Clone, Copy)]
struct Partial<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Partial<N> {
    fn default() -> Self {
        Partial {
            bytes: [0; N],
            len: 0,
        }
    }
}

impl<const N: usize> Partial<N> {
    /// Take bytes from `data` until `want` (≤ N) are held; returns how many were taken and
    /// the header once complete (the partial is then reset).
    fn fill(&mut self, want: usize, data: &[u8]) -> (usize, Option<[u8; N]>) {
        let take = want.saturating_sub(self.len).min(data.len());
        self.bytes[self.len..self.len + take].copy_from_slice(&data[..take]);
        self.len += take;
        if self.len < want {
            return (take, None);
        }
        let whole = self.bytes;
        *self = Self::default();
        (take, Some(whole))
    }
}

/// The per-direction parser. Owns only small buffers, reused for the flow's life.
#[derive(Debug, Default)]
pub struct TlsStream {
    state: State,
    /// The first bytes of the direction, or a record header split across pieces.
    head: Partial<6>,
    /// A plaintext alert's two bytes.
    alert: Partial<2>,
    hs: Handshake,
    /// An SSLv2 record, gathered whole (they are small).
    sslv2: Vec<u8>,
    /// A hello proven split: collected here until whole.
    hello_buf: Vec<u8>,
    /// A Certificate message split across pieces, up to [`CERTIFICATE_CAP`] bytes; freed
    /// once read.
    certificate_buf: Vec<u8>,
    /// This direction sent a ServerHello, so its Certificate message is the server's.
    sent_server_hello: bool,
    /// Its Certificate message was found (only the first is read).
    certificate_found: bool,
    /// A Certificate message this direction stopped in the middle of (a gap, a cut), as
    /// far as it was seen.
    cut_certificate: Option<Box<CertificateChain>>,
    /// The stream was recognised as TLS or SSL (at its start or later) by a hello.
    started_tls: bool,
    /// One ChangeCipherSpec is not the switch to encryption: TLS 1.3's middlebox
    /// compatibility CCS (RFC 8446 D.4) around a HelloRetryRequest.
    compat_ccs: bool,
}

/// Handshake message types (RFC 8446 4).
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const CERTIFICATE: u8 = 11;

/// TLS record content types (RFC 8446 5.1; 24 is RFC 6520 heartbeat).
const CHANGE_CIPHER_SPEC: u8 = 20;
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
const HEARTBEAT: u8 = 24;

impl TlsStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// After a HelloRetryRequest both sides may send one ChangeCipherSpec before the
    /// handshake goes on in the clear (RFC 8446 D.4): let one through.
    pub fn allow_compat_ccs(&mut self) {
        self.compat_ccs = true;
    }

    /// Why parsing stopped, if it has.
    pub fn end(&self) -> Option<End> {
        match self.state {
            State::Ended(end) => Some(end),
            _ => None,
        }
    }

    /// True while no TLS has started: the stream is (so far) a plaintext protocol.
    pub fn is_plaintext(&self) -> bool {
        matches!(self.state, State::Start | State::Scanning { .. })
    }

    /// True once the stream was recognised as TLS or SSL.
    pub fn started_tls(&self) -> bool {
        self.started_tls
    }

    /// True when part of a record or hello is held, so that the stream ending here (capture
    /// end, a gap) leaves a message that was never seen whole.
    pub fn mid_message(&self) -> bool {
        match self.state {
            State::Ended(_) => false,
            State::Start | State::RecordHeader => self.head.len > 0,
            State::Scanning { .. } => false,
            State::RecordBody { .. } | State::Sslv2Record { .. } => true,
        }
    }

    /// Stop parsing (a gap in the stream, a cap): nothing after this point is trusted.
    pub fn stop(&mut self, end: End) {
        self.state = State::Ended(end);
        self.release();
    }

    fn release(&mut self) {
        if let Some(len) = self.hs.certificate {
            self.cut_certificate = Some(Box::new(certificate::parse_chain(
                &self.certificate_buf,
                len,
                false,
            )));
        }
        self.sslv2 = Vec::new();
        self.hello_buf = Vec::new();
        self.certificate_buf = Vec::new();
        self.hs = Handshake::default();
    }

    /// The server's Certificate message as far as it was seen, when this direction ended
    /// (or the capture ends) in its middle.
    pub fn unfinished_certificate(&self) -> Option<CertificateChain> {
        if let Some(cut) = &self.cut_certificate {
            return Some((**cut).clone());
        }
        let len = self.hs.certificate?;
        Some(certificate::parse_chain(&self.certificate_buf, len, false))
    }

    /// Feed the next in-order bytes of this direction.
    pub fn feed(&mut self, mut data: &[u8], events: &mut impl FnMut(Event)) {
        while !data.is_empty() {
            let used = match self.state {
                State::Ended(_) => break,
                State::Start => self.start(data),
                State::Scanning { seen } => self.scan(seen, data),
                State::RecordHeader => self.record_header(data, events),
                State::RecordBody {
                    content_type,
                    version,
                    left,
                } => self.record_body(content_type, version, left, data, events),
                State::Sslv2Record { len } => self.sslv2_record(len, data, events),
            };
            data = &data[used..];
        }
        if let State::Ended(_) = self.state {
            self.release();
        }
    }

    /// Decide from the first six bytes whether this is TLS, SSLv2, or something else.
    fn start(&mut self, data: &[u8]) -> usize {
        let held = self.head.len;
        let mut probe = self.head;
        let (take, head) = probe.fill(6, data);
        let Some(head) = head else {
            self.head = probe;
            return take;
        };
        match classify_start(&head) {
            // Replay: the bytes held so far go through the record parser from its start.
            Start::Tls => {
                // A stream that opens with an alert answered something that was not a hello.
                self.started_tls = head[0] == HANDSHAKE;
                self.state = State::RecordHeader;
            }
            Start::Sslv2 { len } => {
                self.started_tls = true;
                self.sslv2.clear();
                self.sslv2.extend_from_slice(&head[..held]);
                self.head = Partial::default();
                self.state = State::Sslv2Record { len };
            }
            Start::NotTls => {
                self.head = Partial::default();
                self.state = State::Scanning { seen: held };
            }
        }
        0
    }

    /// A piece of a plaintext stream: does a TLS hello start here?
    fn scan(&mut self, seen: usize, data: &[u8]) -> usize {
        if looks_like_tls(data) == Some(true) {
            self.state = State::Start;
            return 0;
        }
        let seen = seen + data.len();
        self.state = if seen > SCAN_LIMIT {
            State::Ended(End::NotTls)
        } else {
            State::Scanning { seen }
        };
        data.len()
    }

    fn record_header(&mut self, data: &[u8], events: &mut impl FnMut(Event)) -> usize {
        let (take, header) = self.head.fill(5, data);
        let Some(header) = header else {
            return take;
        };
        let content_type = header[0];
        let version = u16::from_be_bytes([header[1], header[2]]);
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        self.state = match content_type {
            _ if header[1] != 3 || len > MAX_RECORD_LEN => State::Ended(End::Malformed),
            CHANGE_CIPHER_SPEC if self.compat_ccs => {
                self.compat_ccs = false;
                next_in_record(HEARTBEAT, version, len)
            }
            CHANGE_CIPHER_SPEC | APPLICATION_DATA => State::Ended(End::Encrypted),
            ALERT if len != 2 => {
                // Only an encrypted alert is longer than level + description.
                events(Event::EncryptedAlert);
                next_in_record(HEARTBEAT, version, len)
            }
            ALERT | HANDSHAKE | HEARTBEAT => next_in_record(content_type, version, len),
            _ => State::Ended(End::Malformed),
        };
        take
    }

    fn record_body(
        &mut self,
        content_type: u8,
        version: u16,
        left: usize,
        data: &[u8],
        events: &mut impl FnMut(Event),
    ) -> usize {
        let take = left.min(data.len());
        match content_type {
            HANDSHAKE => self.handshake_bytes(&data[..take], version, events),
            ALERT => {
                if let (_, Some([level, description])) = self.alert.fill(2, &data[..take]) {
                    events(Event::Alert { level, description });
                }
            }
            _ => {} // heartbeat, or an encrypted alert's body: skipped
        }
        if !matches!(self.state, State::Ended(_)) {
            self.state = next_in_record(content_type, version, left - take);
        }
        take
    }

    /// Handshake record payload bytes (any piece of one record).
    fn handshake_bytes(&mut self, mut data: &[u8], version: u16, events: &mut impl FnMut(Event)) {
        // A malformed hello ends the stream: nothing after it in this piece is parsed either.
        while !data.is_empty() && !matches!(self.state, State::Ended(_)) {
            if self.hs.skip > 0 {
                let n = self.hs.skip.min(data.len());
                self.hs.skip -= n;
                data = &data[n..];
                continue;
            }
            if let Some(len) = self.hs.certificate {
                let keep = len.min(CERTIFICATE_CAP);
                let n = (keep - self.certificate_buf.len()).min(data.len());
                self.certificate_buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.certificate_buf.len() == keep {
                    self.hs.certificate = None;
                    // Past the budget the rest of the message is skipped.
                    self.hs.skip = len - keep;
                    let buf = std::mem::take(&mut self.certificate_buf);
                    let chain = certificate::parse_chain(&buf, len, keep == len);
                    events(Event::Certificate(Box::new(chain)));
                }
                continue;
            }
            if let Some((msg_type, len)) = self.hs.collecting {
                let n = (len - self.hello_buf.len()).min(data.len());
                self.hello_buf.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.hello_buf.len() == len {
                    self.hs.collecting = None;
                    let body = std::mem::take(&mut self.hello_buf);
                    self.hello(msg_type, &body, version, events);
                    self.hello_buf = body;
                    self.hello_buf.clear();
                }
                continue;
            }
            let (take, header) = self.hs.header.fill(4, data);
            data = &data[take..];
            let Some([msg_type, l0, l1, l2]) = header else {
                return;
            };
            let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
            if msg_type == CERTIFICATE && self.sent_server_hello && !self.certificate_found {
                self.certificate_found = true;
                if data.len() >= len && len <= CERTIFICATE_CAP {
                    // Whole in this piece: read in place.
                    let chain = certificate::parse_chain(&data[..len], len, true);
                    events(Event::Certificate(Box::new(chain)));
                    data = &data[len..];
                } else {
                    self.certificate_buf = Vec::with_capacity(len.min(CERTIFICATE_CAP));
                    self.hs.certificate = Some(len);
                }
                continue;
            }
            if msg_type != CLIENT_HELLO && msg_type != SERVER_HELLO {
                self.hs.skip = len;
                continue;
            }
            if len > HELLO_CAP {
                self.stop(End::TooLarge);
                return;
            }
            if data.len() >= len {
                // The common case: the whole hello is in this piece. No copy.
                self.hello(msg_type, &data[..len], version, events);
                data = &data[len..];
            } else {
                self.hello_buf.clear();
                self.hello_buf.reserve(len);
                self.hs.collecting = Some((msg_type, len));
            }
        }
    }

    fn hello(&mut self, msg_type: u8, body: &[u8], version: u16, events: &mut impl FnMut(Event)) {
        let parsed: Result<Event, HelloError> = if msg_type == CLIENT_HELLO {
            parse::client_hello(body, version).map(|h| Event::ClientHello(Box::new(h)))
        } else {
            parse::server_hello(body, version).map(|h| Event::ServerHello(Box::new(h)))
        };
        match parsed {
            Ok(event) => {
                if matches!(&event, Event::ServerHello(h) if h.hrr) {
                    self.compat_ccs = true;
                }
                self.sent_server_hello |= matches!(event, Event::ServerHello(_));
                events(event)
            }
            Err(_) => self.state = State::Ended(End::Malformed),
        }
    }

    /// An SSLv2 record (2-byte header, RFC 6101 E.1): gathered whole, then parsed.
    fn sslv2_record(&mut self, len: usize, data: &[u8], events: &mut impl FnMut(Event)) -> usize {
        let total = 2 + len;
        let take = (total - self.sslv2.len()).min(data.len());
        self.sslv2.extend_from_slice(&data[..take]);
        if self.sslv2.len() < total {
            return take;
        }
        let msg = &self.sslv2[2..];
        let event = match msg.first() {
            Some(1) => parse::sslv2_client_hello(msg).map(|h| Event::ClientHello(Box::new(h))),
            Some(4) => parse::sslv2_server_hello(msg).map(|h| Event::ServerHello(Box::new(h))),
            _ => Err(HelloError::Sslv2("record")),
        };
        self.state = match event {
            Ok(event) => {
                events(event);
                State::Ended(End::Sslv2Done)
            }
            Err(_) => State::Ended(End::Malformed),
        };
        take
    }
}

fn next_in_record(content_type: u8, version: u16, left: usize) -> State {
    if left == 0 {
        State::RecordHeader
    } else {
        State::RecordBody {
            content_type,
            version,
            left,
        }
    }
}

enum Start {
    Tls,
    Sslv2 { len: usize },
    NotTls,
}

/// Does a direction start like TLS or SSL? Six bytes are enough to tell (the same test the
/// census uses to find TLS on any port).
fn classify_start(head: &[u8; 6]) -> Start {
    let record_len = usize::from(u16::from_be_bytes([head[3], head[4]]));
    // TLS record: handshake or alert, major version 3, sane length; a handshake record must
    // open with a ClientHello or ServerHello.
    if head[1] == 3 && head[2] <= 4 && record_len > 0 && record_len <= MAX_RECORD_LEN {
        match head[0] {
            HANDSHAKE if head[5] == CLIENT_HELLO || head[5] == SERVER_HELLO => return Start::Tls,
            ALERT if record_len == 2 => return Start::Tls,
            _ => {}
        }
    }
    // SSLv2 record with a 2-byte header: high bit set; message CLIENT-HELLO (1) with version
    // 2.0 or 3.x, or SERVER-HELLO (4).
    if head[0] & 0x80 != 0 {
        let len = usize::from(u16::from_be_bytes([head[0] & 0x7f, head[1]]));
        let client = head[2] == 1 && ((head[3] == 0 && head[4] == 2) || head[3] == 3);
        let server = head[2] == 4 && head[3] <= 1 && head[5] == 0 && len >= 9;
        if (client || server) && len >= 9 {
            return Start::Sslv2 { len };
        }
    }
    Start::NotTls
}

/// True when the first bytes of a direction look like a TLS or SSLv2 hello (or a TLS alert).
pub fn looks_like_tls(head: &[u8]) -> Option<bool> {
    let head: &[u8; 6] = head.get(..6)?.try_into().ok()?;
    Some(!matches!(classify_start(head), Start::NotTls))
}
