//! The plaintext start of a mail session: did the server offer TLS, did the client ask for
//! it, and what did the server answer?
//!
//! SMTP (RFC 5321, STARTTLS from RFC 3207), IMAP (RFC 3501 / RFC 9051, STARTTLS in 6.2.1)
//! and POP3 (RFC 1939, STLS from RFC 2595, CAPA from RFC 2449) all upgrade the same way: the
//! server lists the upgrade among its capabilities, the client sends one verb, the server
//! answers yes or no, and on yes both sides start a TLS handshake on the next byte. Exchange
//! servers talk to each other with the same exchange under the verb `X-ANONYMOUSTLS`.
//!
//! A [`Dialogue`] watches both directions of one session, fed the in-order plaintext bytes of
//! each in arbitrary pieces (as TCP delivered them) and in capture order. It splits lines on
//! LF (tolerating a missing CR), pairs server replies with client commands (SMTP and POP3
//! replies come in command order even when commands are pipelined, RFC 2920 / RFC 2449 6.6;
//! IMAP pairs by tag) and skips what is not a command or reply: an SMTP message body between
//! DATA's 354 and the lone ".", BDAT chunks (RFC 3030), IMAP literals (`{n}`, RFC 3501 4.3)
//! and POP3 multi-line responses.
//!
//! Complete lines are read straight from the piece they arrive in (their ends found with
//! `memchr`, which a message body sent in clear keeps busy); only a line split across
//! pieces is copied, into one buffer per direction capped at [`LINE_CAP`] (a longer line is
//! ignored as data: every line that matters is short). Nothing is allocated after a
//! direction's first split line. Work ends when the upgrade is answered, or after [`BUDGET`]
//! bytes of a direction: see [`Dialogue::done`].

use std::fmt;

/// Longest line looked at, terminator included. RFC 5321 4.5.3.1 caps SMTP command and reply
/// lines at 512 octets; IMAP and POP3 capability lines are far shorter in practice.
pub const LINE_CAP: usize = 1024;

/// Bytes of one direction looked at before giving up on it. Servers offer the upgrade in
/// their greeting or first capability list and clients ask within a few commands; 32 KiB is
/// a whole plaintext message or two past that.
pub const BUDGET: usize = 32 * 1024;

/// Commands awaiting a reply. RFC 2920 pipelining sends a handful at a time; if a peer goes
/// past this the oldest are forgotten.
const MAX_PENDING: usize = 32;

/// Longest IMAP tag remembered for the STARTTLS command (tags are short atoms).
const TAG_CAP: usize = 64;

/// Longest client name kept from EHLO or IMAP ID: a domain is at most 255 octets (RFC 5321
/// 4.5.3.1.2); anything longer is cut there.
pub const HELO_CAP: usize = 255;

/// `bytes` as text (invalid UTF-8 replaced), cut to at most `cap` bytes on a character
/// boundary.
fn capped_text(bytes: &[u8], cap: usize) -> Box<str> {
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(cap)]).into_owned();
    while text.len() > cap {
        text.pop();
    }
    text.into_boxed_str()
}

/// Which mail protocol a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailProtocol {
    Smtp,
    Imap,
    Pop3,
}

impl MailProtocol {
    pub fn name(self) -> &'static str {
        match self {
            MailProtocol::Smtp => "smtp",
            MailProtocol::Imap => "imap",
            MailProtocol::Pop3 => "pop3",
        }
    }

    /// The IANA service ports with a plaintext start: SMTP 25, submission 587 (RFC 6409),
    /// IMAP 143, POP3 110. (465, 993 and 995 are TLS from the first byte.)
    pub fn from_port(port: u16) -> Option<Self> {
        match port {
            25 | 587 => Some(MailProtocol::Smtp),
            143 => Some(MailProtocol::Imap),
            110 => Some(MailProtocol::Pop3),
            _ => None,
        }
    }
}

/// The verb that asks for the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// SMTP (RFC 3207) and IMAP (RFC 3501 6.2.1).
    Starttls,
    /// Exchange's SMTP verb and EHLO keyword for TLS between its servers.
    XAnonymousTls,
    /// POP3 (RFC 2595 4).
    Stls,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Starttls => "STARTTLS",
            Verb::XAnonymousTls => "X-ANONYMOUSTLS",
            Verb::Stls => "STLS",
        }
    }

    const ALL: [Verb; 3] = [Verb::Starttls, Verb::XAnonymousTls, Verb::Stls];

    fn bit(self) -> u8 {
        match self {
            Verb::Starttls => 1,
            Verb::XAnonymousTls => 2,
            Verb::Stls => 4,
        }
    }

    fn parse(word: &[u8]) -> Option<Verb> {
        Verb::ALL
            .into_iter()
            .find(|v| word.eq_ignore_ascii_case(v.as_str().as_bytes()))
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the server answered the upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// SMTP 220, IMAP tagged OK, POP3 +OK: TLS starts on the next byte of both directions.
    Accepted,
    /// Anything else: the session goes on in the clear (or ends).
    Refused { code: ReplyCode },
}

/// A refusal's status as sent: an SMTP reply code ("454", "502"), an IMAP status ("NO",
/// "BAD", or "BYE" when the server hung up instead), or POP3's "-ERR". Inline, no heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyCode {
    bytes: [u8; 4],
    len: u8,
}

impl ReplyCode {
    /// `code` is at most 4 ASCII bytes (every caller passes a literal or 3 digits).
    fn new(code: &[u8]) -> Self {
        let mut bytes = [0; 4];
        let len = code.len().min(4);
        bytes[..len].copy_from_slice(&code[..len]);
        ReplyCode {
            bytes,
            len: len as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }

    /// The SMTP reply code as a number (454), `None` for IMAP and POP3 statuses.
    pub fn number(&self) -> Option<u16> {
        self.as_str().parse().ok()
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A client command whose reply is still to come, as far as the reply matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    /// The server's unsolicited greeting (SMTP 220, POP3 +OK) answers "connecting".
    Greeting,
    /// SMTP EHLO (or LMTP's LHLO): a positive reply lists the extensions.
    Ehlo,
    /// SMTP DATA: a 354 reply turns the client's next lines into the message.
    Data,
    /// POP3 CAPA: a +OK reply is a multi-line capability list.
    Capa,
    /// Another POP3 command whose +OK reply is multi-line (LIST, UIDL, RETR, TOP, AUTH).
    MultiLine,
    /// The upgrade request.
    Tls(Verb),
    Other,
}

/// Fixed ring of commands awaiting replies.
#[derive(Debug, Clone)]
struct Pending {
    ring: [Cmd; MAX_PENDING],
    start: usize,
    len: usize,
}

impl Pending {
    fn new() -> Self {
        Pending {
            ring: [Cmd::Other; MAX_PENDING],
            start: 0,
            len: 0,
        }
    }

    fn push(&mut self, cmd: Cmd) {
        if self.len == MAX_PENDING {
            self.start = (self.start + 1) % MAX_PENDING;
            self.len -= 1;
        }
        self.ring[(self.start + self.len) % MAX_PENDING] = cmd;
        self.len += 1;
    }

    fn front(&self) -> Option<Cmd> {
        (self.len > 0).then(|| self.ring[self.start])
    }

    fn pop(&mut self) -> Option<Cmd> {
        let cmd = self.front()?;
        self.start = (self.start + 1) % MAX_PENDING;
        self.len -= 1;
        Some(cmd)
    }
}

/// What a line handler wants done with the bytes after the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Continue,
    /// The next `n` bytes are opaque (a literal, a BDAT chunk).
    Skip(usize),
    /// This direction's plaintext ends after this line.
    Stop,
}

/// One direction's line splitter.
#[derive(Debug, Clone, Default)]
struct Lines {
    /// The start of a line split across pieces (empty when none).
    partial: Vec<u8>,
    /// The current line is longer than [`LINE_CAP`]: drop it up to its LF.
    overlong: bool,
    /// Opaque bytes still to pass over.
    skip: usize,
    /// Bytes taken so far, against [`BUDGET`].
    fed: usize,
    stopped: bool,
}

impl Lines {
    /// Split `data` into lines for `on_line` (terminator removed); returns how many bytes
    /// of `data` belonged to this direction's plaintext.
    fn feed(&mut self, data: &[u8], mut on_line: impl FnMut(&[u8]) -> Action) -> usize {
        if self.stopped {
            return 0;
        }
        let data = &data[..data.len().min(BUDGET - self.fed)];
        let mut pos = 0;
        while pos < data.len() && !self.stopped {
            let rest = &data[pos..];
            if self.skip > 0 {
                let n = self.skip.min(rest.len());
                self.skip -= n;
                pos += n;
                continue;
            }
            let Some(lf) = memchr::memchr(b'\n', rest) else {
                // A line continues in the next piece.
                if !self.overlong {
                    if self.partial.len() + rest.len() > LINE_CAP {
                        self.overlong = true;
                        self.partial.clear();
                    } else {
                        if self.partial.capacity() == 0 {
                            self.partial.reserve_exact(LINE_CAP);
                        }
                        self.partial.extend_from_slice(rest);
                    }
                }
                pos = data.len();
                break;
            };
            let piece = &rest[..=lf];
            pos += lf + 1;
            let action = if self.overlong || self.partial.len() + piece.len() > LINE_CAP {
                Action::Continue
            } else if self.partial.is_empty() {
                on_line(trim_eol(piece))
            } else {
                self.partial.extend_from_slice(piece);
                on_line(trim_eol(&self.partial))
            };
            self.partial.clear();
            self.overlong = false;
            match action {
                Action::Continue => {}
                Action::Skip(n) => self.skip = n,
                Action::Stop => self.stopped = true,
            }
        }
        self.fed += pos;
        if self.fed >= BUDGET {
            self.stopped = true;
        }
        pos
    }
}

/// Drop the LF and a CR before it.
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The first space-separated word and what follows the space.
fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &[]),
    }
}

/// RFC 3501 4.3 / RFC 7888: a line ending in `{n}` or `{n+}` is followed by n raw bytes.
fn imap_literal(line: &[u8]) -> Option<usize> {
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0usize, |n, &d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    }))
}

/// Decimal number of at most 19 digits.
fn decimal(word: &[u8]) -> Option<usize> {
    if word.is_empty() || word.len() > 19 || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(word.iter().fold(0usize, |n, &d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    }))
}

/// What the dialogue learnt, and the little state needed to pair replies with commands.
#[derive(Debug, Clone)]
struct Session {
    protocol: MailProtocol,
    /// SMTP and POP3: commands in the order their replies will come.
    pending: Pending,
    /// Verbs listed in a capability list ([`Verb::bit`]).
    advertised: u8,
    capabilities_seen: bool,
    /// A server line parsed as a reply of this protocol.
    confirmed: bool,
    requested: Option<Verb>,
    reply: Option<Reply>,
    /// SMTP: lines of the current (multi-line) reply seen so far.
    reply_lines: u32,
    /// SMTP: the client is sending a message body (after DATA's 354, until ".").
    in_body: bool,
    /// POP3: the server is inside the multi-line reply to this command.
    pop_body: Option<Cmd>,
    /// IMAP: the STARTTLS command's tag (`tag_len` 0 when too long to keep).
    tag: [u8; TAG_CAP],
    tag_len: usize,
    /// IMAP: tagged commands sent / tagged completions seen, and how many earlier commands
    /// were still open when STARTTLS was sent (their completions come first).
    tagged_sent: u32,
    tagged_done: u32,
    ahead: u32,
    /// SMTP: the client's name, the first non-empty EHLO / HELO / LHLO argument (names, not
    /// payloads: at most [`HELO_CAP`] bytes).
    helo: Option<Box<str>>,
    /// IMAP: the software an ID command (RFC 2971) named, `name version`.
    imap_id: Option<Box<str>>,
}

impl Session {
    fn new(protocol: MailProtocol) -> Self {
        let mut pending = Pending::new();
        if protocol != MailProtocol::Imap {
            pending.push(Cmd::Greeting);
        }
        Session {
            protocol,
            pending,
            advertised: 0,
            capabilities_seen: false,
            confirmed: false,
            requested: None,
            reply: None,
            reply_lines: 0,
            in_body: false,
            pop_body: None,
            tag: [0; TAG_CAP],
            tag_len: 0,
            tagged_sent: 0,
            tagged_done: 0,
            ahead: 0,
            helo: None,
            imap_id: None,
        }
    }

    fn advertise(&mut self, keyword: &[u8]) {
        if let Some(verb) = Verb::parse(keyword) {
            self.advertised |= verb.bit();
        }
    }

    /// The answer to the upgrade request ends the dialogue (see [`Dialogue::done`]), whether
    /// it is yes or no: the lines after it in the same piece are not read either.
    fn answer(&mut self, accepted: bool, code: &[u8]) -> Action {
        self.reply = Some(if accepted {
            Reply::Accepted
        } else {
            Reply::Refused {
                code: ReplyCode::new(code),
            }
        });
        Action::Stop
    }

    fn client_line(&mut self, line: &[u8]) -> Action {
        match self.protocol {
            MailProtocol::Smtp => self.smtp_client(line),
            MailProtocol::Imap => self.imap_client(line),
            MailProtocol::Pop3 => self.pop3_client(line),
        }
    }

    fn server_line(&mut self, line: &[u8]) -> Action {
        match self.protocol {
            MailProtocol::Smtp => self.smtp_server(line),
            MailProtocol::Imap => self.imap_server(line),
            MailProtocol::Pop3 => self.pop3_server(line),
        }
    }

    /// RFC 5321 4.1.1: a command is a verb, case-insensitive, and its arguments.
    fn smtp_client(&mut self, line: &[u8]) -> Action {
        if self.in_body {
            // 4.1.1.4: the body ends with a line holding only "."; its reply is the
            // transaction's.
            if line == b"." {
                self.in_body = false;
                self.pending.push(Cmd::Other);
            }
            return Action::Continue;
        }
        let (verb, args) = split_word(line);
        if let Some(v @ (Verb::Starttls | Verb::XAnonymousTls)) = Verb::parse(verb) {
            // RFC 2920 3.1: STARTTLS ends a pipelined group; what follows it is TLS.
            self.requested = Some(v);
            self.pending.push(Cmd::Tls(v));
            return Action::Stop;
        }
        let greets = [&b"EHLO"[..], b"LHLO", b"HELO"];
        if self.helo.is_none() && greets.iter().any(|g| verb.eq_ignore_ascii_case(g)) {
            // The whole argument, as sent: a domain or address literal (RFC 5321 4.1.1.1),
            // though some clients add text after it.
            let name = args.trim_ascii();
            if !name.is_empty() {
                self.helo = Some(capped_text(name, HELO_CAP));
            }
        }
        if verb.eq_ignore_ascii_case(b"EHLO") || verb.eq_ignore_ascii_case(b"LHLO") {
            self.pending.push(Cmd::Ehlo);
        } else if verb.eq_ignore_ascii_case(b"DATA") {
            self.pending.push(Cmd::Data);
        } else if verb.eq_ignore_ascii_case(b"BDAT") {
            // RFC 3030 2: "BDAT <size> [LAST]", then exactly <size> bytes of message.
            self.pending.push(Cmd::Other);
            if let Some(size) = decimal(split_word(args).0) {
                return Action::Skip(size);
            }
        } else {
            self.pending.push(Cmd::Other);
        }
        Action::Continue
    }

    /// RFC 5321 4.2: three digits, then "-" on every line of a reply but the last, which
    /// has a space (or nothing). EHLO's positive reply lists one extension per line after
    /// the first (4.1.1.1).
    fn smtp_server(&mut self, line: &[u8]) -> Action {
        let Some(code) = line.get(..3).filter(|c| c.iter().all(u8::is_ascii_digit)) else {
            return Action::Continue;
        };
        let last = match line.get(3) {
            None | Some(b' ') => true,
            Some(b'-') => false,
            Some(_) => return Action::Continue,
        };
        self.confirmed = true;
        if self.pending.front() == Some(Cmd::Ehlo) && code[0] == b'2' {
            if self.reply_lines > 0 {
                self.advertise(split_word(line.get(4..).unwrap_or_default()).0);
            }
            if last {
                self.capabilities_seen = true;
            }
        }
        self.reply_lines += 1;
        if !last {
            return Action::Continue;
        }
        self.reply_lines = 0;
        match self.pending.pop() {
            // RFC 3207 4: "220 Ready to start TLS"; 454 (TLS not available), 501, 502 ...
            Some(Cmd::Tls(_)) => self.answer(code == b"220", code),
            Some(Cmd::Data) if code == b"354" => {
                self.in_body = true;
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    /// RFC 3501 2.2.1: "<tag> <command> [args]"; 4.3: literals.
    fn imap_client(&mut self, line: &[u8]) -> Action {
        let (tag, rest) = split_word(line);
        let (command, _) = split_word(rest);
        if !tag.is_empty() && !command.is_empty() && command.iter().all(u8::is_ascii_alphabetic) {
            if command.eq_ignore_ascii_case(b"ID") && self.imap_id.is_none() {
                let params = &rest[command.len()..];
                self.imap_id =
                    super::imap_id::software(params).map(|s| capped_text(s.as_bytes(), HELO_CAP));
            }
            if command.eq_ignore_ascii_case(b"STARTTLS") {
                self.requested = Some(Verb::Starttls);
                self.tag_len = if tag.len() <= TAG_CAP { tag.len() } else { 0 };
                self.tag[..self.tag_len].copy_from_slice(&tag[..self.tag_len]);
                self.ahead = self.tagged_sent.saturating_sub(self.tagged_done);
                return Action::Stop;
            }
            self.tagged_sent = self.tagged_sent.saturating_add(1);
        }
        imap_literal(line).map_or(Action::Continue, Action::Skip)
    }

    /// RFC 3501 7: untagged "* ..." data and status, "+ " continuation requests, and tagged
    /// completions "<tag> OK|NO|BAD [code] text". Capabilities come in "* CAPABILITY ..."
    /// (7.2.1) or in a "[CAPABILITY ...]" response code (7.1), typically in the greeting.
    fn imap_server(&mut self, line: &[u8]) -> Action {
        let (tag, rest) = split_word(line);
        let (status, text) = split_word(rest);
        let is_status = |words: &[&[u8]]| words.iter().any(|w| status.eq_ignore_ascii_case(w));
        if (tag == b"*" && is_status(&[b"OK", b"NO", b"BAD", b"PREAUTH", b"BYE", b"CAPABILITY"]))
            || (!tag.is_empty() && tag != b"+" && is_status(&[b"OK", b"NO", b"BAD"]))
        {
            self.confirmed = true;
        }
        if tag == b"*" && status.eq_ignore_ascii_case(b"CAPABILITY") {
            self.imap_capabilities(text);
        } else if tag != b"+" {
            if let Some(code) = text.strip_prefix(b"[") {
                let code = code.split(|&b| b == b']').next().unwrap_or_default();
                let (name, list) = split_word(code);
                if name.eq_ignore_ascii_case(b"CAPABILITY") {
                    self.imap_capabilities(list);
                }
            }
            if self.requested.is_some() && self.reply.is_none() {
                if tag == b"*" {
                    // 7.1.5: the server is closing the connection instead of answering.
                    if status.eq_ignore_ascii_case(b"BYE") {
                        return self.answer(false, b"BYE");
                    }
                } else if self.ahead > 0 {
                    // Completion of a command sent before STARTTLS.
                    self.ahead -= 1;
                } else if self.tag_len == 0 || tag == &self.tag[..self.tag_len] {
                    if status.eq_ignore_ascii_case(b"OK") {
                        return self.answer(true, b"OK");
                    }
                    if status.eq_ignore_ascii_case(b"NO") {
                        return self.answer(false, b"NO");
                    }
                    if status.eq_ignore_ascii_case(b"BAD") {
                        return self.answer(false, b"BAD");
                    }
                }
            } else if tag != b"*" && !tag.is_empty() {
                self.tagged_done = self.tagged_done.saturating_add(1);
            }
        }
        imap_literal(line).map_or(Action::Continue, Action::Skip)
    }

    fn imap_capabilities(&mut self, list: &[u8]) {
        self.capabilities_seen = true;
        for word in list.split(|&b| b == b' ') {
            self.advertise(word);
        }
    }

    /// RFC 1939 3: a keyword, case-insensitive, and arguments.
    fn pop3_client(&mut self, line: &[u8]) -> Action {
        let (keyword, args) = split_word(line);
        let cmd = if keyword.eq_ignore_ascii_case(b"STLS") {
            self.requested = Some(Verb::Stls);
            self.pending.push(Cmd::Tls(Verb::Stls));
            return Action::Stop;
        } else if keyword.eq_ignore_ascii_case(b"CAPA") {
            Cmd::Capa
        } else if ((keyword.eq_ignore_ascii_case(b"LIST")
            || keyword.eq_ignore_ascii_case(b"UIDL")
            || keyword.eq_ignore_ascii_case(b"AUTH"))
            && args.is_empty())
            || keyword.eq_ignore_ascii_case(b"RETR")
            || keyword.eq_ignore_ascii_case(b"TOP")
        {
            // RFC 1939 5 / RFC 5034: multi-line on +OK (AUTH without a mechanism lists
            // the mechanisms on some servers).
            Cmd::MultiLine
        } else {
            Cmd::Other
        };
        self.pending.push(cmd);
        Action::Continue
    }

    /// RFC 1939 3: "+OK" or "-ERR", possibly followed by lines ending with "."; a SASL
    /// exchange (RFC 5034) adds "+ " continuations, each answered by one client line.
    fn pop3_server(&mut self, line: &[u8]) -> Action {
        if let Some(cmd) = self.pop_body {
            if line == b"." {
                self.pop_body = None;
                if cmd == Cmd::Capa {
                    self.capabilities_seen = true;
                }
            } else if cmd == Cmd::Capa {
                // RFC 2449 5: one capability per line, its tag first.
                self.advertise(split_word(line).0);
            }
            return Action::Continue;
        }
        let (status, _) = split_word(line);
        let ok = if status.eq_ignore_ascii_case(b"+OK") {
            self.confirmed = true;
            true
        } else if status.eq_ignore_ascii_case(b"-ERR") {
            self.confirmed = true;
            false
        } else if status == b"+" {
            self.pending.pop();
            return Action::Continue;
        } else {
            return Action::Continue;
        };
        match self.pending.pop() {
            Some(Cmd::Tls(_)) => self.answer(ok, b"-ERR"),
            Some(cmd @ (Cmd::Capa | Cmd::MultiLine)) if ok => {
                self.pop_body = Some(cmd);
                Action::Continue
            }
            _ => Action::Continue,
        }
    }
}

/// The plaintext dialogue of one mail session, both directions.
#[derive(Debug, Clone)]
pub struct Dialogue {
    client: Lines,
    server: Lines,
    session: Session,
}

impl Dialogue {
    /// A dialogue fed from the first byte of each direction.
    pub fn new(protocol: MailProtocol) -> Self {
        Dialogue {
            client: Lines::default(),
            server: Lines::default(),
            session: Session::new(protocol),
        }
    }

    /// The protocol from the server's first bytes: an SMTP 220 greeting (RFC 5321 4.2), an
    /// IMAP "* OK" / "* PREAUTH" / "* BYE" greeting (RFC 3501 7.1), a POP3 "+OK" greeting
    /// (RFC 1939 4). `None` when the bytes are none of these (or too few to tell).
    ///
    /// A hint, to combine with the port: FTP servers greet with "220 " as well (RFC 959).
    pub fn guess(server_first_bytes: &[u8]) -> Option<MailProtocol> {
        let b = server_first_bytes;
        let word_end = |at: usize| matches!(b.get(at), Some(b' ' | b'\r' | b'\n'));
        if b.starts_with(b"220") && matches!(b.get(3), Some(b' ' | b'-' | b'\r' | b'\n')) {
            return Some(MailProtocol::Smtp);
        }
        if let Some(rest) = b.strip_prefix(b"* ") {
            let (status, _) = split_word(rest);
            let complete = word_end(2 + status.len());
            if complete
                && [&b"OK"[..], b"PREAUTH", b"BYE"]
                    .iter()
                    .any(|s| status.eq_ignore_ascii_case(s))
            {
                return Some(MailProtocol::Imap);
            }
        }
        if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"+OK") && word_end(3) {
            return Some(MailProtocol::Pop3);
        }
        None
    }

    pub fn protocol(&self) -> MailProtocol {
        self.session.protocol
    }

    /// The server sent at least one line that parses as a reply of [`Dialogue::protocol`]
    /// (an SMTP reply code, an IMAP status or capability response, a POP3 +OK / -ERR): the
    /// session really is this protocol, not something else on its port.
    pub fn protocol_confirmed(&self) -> bool {
        self.session.confirmed
    }

    /// The next in-order bytes the client sent. Returns how many of them belong to the
    /// plaintext dialogue: fewer than `data.len()` when it ended inside this piece (after
    /// the upgrade request, or at the budget), so that `data[n..]` would be TLS if the
    /// server accepts.
    pub fn client_bytes(&mut self, data: &[u8]) -> usize {
        if self.done() {
            return 0;
        }
        let session = &mut self.session;
        self.client.feed(data, |line| session.client_line(line))
    }

    /// The next in-order bytes the server sent. Returns how many belong to the plaintext
    /// dialogue, as for [`Dialogue::client_bytes`].
    pub fn server_bytes(&mut self, data: &[u8]) -> usize {
        if self.done() {
            return 0;
        }
        let session = &mut self.session;
        self.server.feed(data, |line| session.server_line(line))
    }

    /// The upgrade the server offers: listed among its capabilities (EHLO keywords, IMAP
    /// CAPABILITY, POP3 CAPA), or proven by accepting the request of a client that asked
    /// without looking (as `openssl s_client -starttls pop3` does). When the client asked for
    /// one of several listed verbs, that one.
    pub fn offered(&self) -> Option<Verb> {
        let s = &self.session;
        if let Some(verb) = s.requested {
            if s.advertised & verb.bit() != 0 || s.reply == Some(Reply::Accepted) {
                return Some(verb);
            }
        }
        Verb::ALL.into_iter().find(|v| s.advertised & v.bit() != 0)
    }

    /// Whether the server listed `verb` among its capabilities.
    pub fn advertised(&self, verb: Verb) -> bool {
        self.session.advertised & verb.bit() != 0
    }

    /// Whether a capability list was seen at all (a positive EHLO reply, an IMAP
    /// CAPABILITY, a POP3 CAPA list): with one and no [`Dialogue::offered`], the server does
    /// not offer TLS; without one, nobody can tell.
    pub fn capabilities_seen(&self) -> bool {
        self.session.capabilities_seen
    }

    /// The name the SMTP client gave in EHLO / HELO / LHLO (the first one with a name).
    pub fn helo(&self) -> Option<&str> {
        self.session.helo.as_deref()
    }

    /// The software an IMAP client named with ID (RFC 2971): `name version`.
    pub fn imap_id(&self) -> Option<&str> {
        self.session.imap_id.as_deref()
    }

    /// The upgrade the client asked for.
    pub fn requested(&self) -> Option<Verb> {
        self.session.requested
    }

    /// The server's answer to the request.
    pub fn reply(&self) -> Option<Reply> {
        self.session.reply
    }

    /// Requested and accepted: TLS follows in both directions.
    pub fn tls_expected(&self) -> bool {
        self.session.requested.is_some() && self.session.reply == Some(Reply::Accepted)
    }

    /// The client's direction has ended: at its upgrade request, or after [`BUDGET`] bytes.
    pub fn client_finished(&self) -> bool {
        self.client.stopped
    }

    /// Nothing more to learn: the request was answered, or both directions used their
    /// [`BUDGET`] (or ended). Feeding more bytes then does nothing.
    pub fn done(&self) -> bool {
        self.session.reply.is_some() || (self.client.stopped && self.server.stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed a scripted session: (true = client, bytes), in order.
    fn run(protocol: MailProtocol, script: &[(bool, &[u8])]) -> Dialogue {
        let mut d = Dialogue::new(protocol);
        for (client, data) in script {
            if *client {
                d.client_bytes(data);
            } else {
                d.server_bytes(data);
            }
        }
        d
    }

    /// The same script fed one byte at a time.
    fn run_bytewise(protocol: MailProtocol, script: &[(bool, &[u8])]) -> Dialogue {
        let mut d = Dialogue::new(protocol);
        for (client, data) in script {
            for b in data.chunks(1) {
                if *client {
                    d.client_bytes(b);
                } else {
                    d.server_bytes(b);
                }
            }
        }
        d
    }

    fn summary(d: &Dialogue) -> (Option<Verb>, Option<Verb>, Option<Reply>, bool, bool) {
        (
            d.offered(),
            d.requested(),
            d.reply(),
            d.tls_expected(),
            d.capabilities_seen(),
        )
    }

    fn both(protocol: MailProtocol, script: &[(bool, &[u8])]) -> Dialogue {
        let whole = run(protocol, script);
        let bytewise = run_bytewise(protocol, script);
        assert_eq!(summary(&whole), summary(&bytewise));
        whole
    }

    fn refused(code: &str) -> Option<Reply> {
        Some(Reply::Refused {
            code: ReplyCode::new(code.as_bytes()),
        })
    }

    const SMTP_OFFER: &[(bool, &[u8])] = &[
        (false, b"220 mx ESMTP\r\n"),
        (true, b"EHLO c\r\n"),
        (
            false,
            b"250-mx\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
        ),
    ];

    #[test]
    fn smtp_accepted_and_tls_bytes_ignored() {
        let mut script = SMTP_OFFER.to_vec();
        script.push((true, b"STARTTLS\r\n"));
        script.push((false, b"220 2.0.0 Ready\r\n"));
        script.push((true, b"\x16\x03\x01\x00\x05\n\n250 x\r\n"));
        let d = both(MailProtocol::Smtp, &script);
        assert!(d.tls_expected() && d.done());
        assert_eq!(d.offered(), Some(Verb::Starttls));
    }

    /// RFC 5321 4.1.1.1: `EHLO domain` / `HELO domain`; the first name is kept, cut at
    /// 255 bytes; RFC 2971's ID names the IMAP client's software.
    #[test]
    fn client_names_from_ehlo_and_imap_id() {
        let d = both(
            MailProtocol::Smtp,
            &[
                (false, b"220 mx\r\n"),
                (true, b"EHLO\r\n"),
                (false, b"501 5.5.4 Syntax\r\n"),
                (true, b"HELO  printer-3f.corp.example \r\n"),
                (false, b"250 mx\r\n"),
                (true, b"EHLO other\r\n"),
            ],
        );
        assert_eq!(d.helo(), Some("printer-3f.corp.example"));
        let long = format!("EHLO {}\r\n", "a".repeat(600));
        let d = both(MailProtocol::Smtp, &[(true, long.as_bytes())]);
        assert_eq!(d.helo().map(str::len), Some(HELO_CAP));

        let d = both(
            MailProtocol::Imap,
            &[
                (false, b"* OK [CAPABILITY IMAP4rev1 STARTTLS ID] ready\r\n"),
                (
                    true,
                    b"a1 ID (\"name\" \"Thunderbird\" \"version\" \"115.3.1\")\r\n",
                ),
                (false, b"* ID NIL\r\na1 OK ID completed\r\n"),
                (true, b"a2 STARTTLS\r\n"),
            ],
        );
        assert_eq!(d.imap_id(), Some("Thunderbird 115.3.1"));
        assert_eq!(d.requested(), Some(Verb::Starttls));
    }

    #[test]
    fn smtp_refused_lowercase_split() {
        let d = both(
            MailProtocol::Smtp,
            &[
                (false, b"220 mx\r\n"),
                (true, b"ehlo c\r\n"),
                (false, b"250-mx\r\n250-starttls\r"),
                (false, b"\n250 SIZE 1000\r\n"),
                (true, b"starttls\r\n"),
                (false, b"454 4.7.0 TLS not available\r\n"),
            ],
        );
        assert_eq!(d.offered(), Some(Verb::Starttls));
        assert_eq!(d.reply(), refused("454"));
        assert_eq!(
            d.reply().map(|r| match r {
                Reply::Refused { code } => code.number(),
                Reply::Accepted => None,
            }),
            Some(Some(454))
        );
        assert!(!d.tls_expected() && d.done());
    }

    #[test]
    fn smtp_never_asked_and_body_is_not_commands() {
        let d = both(
            MailProtocol::Smtp,
            &[
                (false, b"220 mx\r\n"),
                (true, b"EHLO c\r\n"),
                (false, b"250-mx\r\n250 SIZE 1000\r\n"),
                (true, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
                (false, b"250 ok\r\n250 ok\r\n354 go\r\n"),
                (true, b"Subject: x\r\n\r\nSTARTTLS\r\n.\r\n"),
                (false, b"250 queued\r\n"),
                (true, b"QUIT\r\n"),
                (false, b"221 bye\r\n"),
            ],
        );
        assert_eq!(summary(&d), (None, None, None, false, true));
        assert!(!d.done());
    }

    #[test]
    fn smtp_pipelined_group_pairs_in_order() {
        // RFC 2920: the replies to RSET and NOOP come before STARTTLS's.
        let d = both(
            MailProtocol::Smtp,
            &[
                (false, b"220 mx\r\n"),
                (true, b"EHLO c\r\n"),
                (false, b"250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
                (true, b"RSET\r\nNOOP\r\nSTARTTLS\r\n"),
                (false, b"250 ok\r\n"),
                (false, b"220 not yet?\r\n250 ok\r\n"),
            ],
        );
        assert_eq!(d.reply(), refused("250"));
        let d = both(
            MailProtocol::Smtp,
            &[
                (false, b"220 mx\r\n"),
                (true, b"EHLO c\r\nRSET\r\nSTARTTLS\r\n"),
                (false, b"250-mx\r\n250 STARTTLS\r\n250 ok\r\n220 go\r\n"),
            ],
        );
        assert!(d.tls_expected());
    }

    #[test]
    fn smtp_bdat_chunk_skipped() {
        let d = both(
            MailProtocol::Smtp,
            &[
                (false, b"220 mx\r\n"),
                (true, b"EHLO c\r\n"),
                (false, b"250-mx\r\n250-CHUNKING\r\n250 X-ANONYMOUSTLS\r\n"),
                (true, b"BDAT 10 LAST\r\nSTARTTLS\r\nNOOP\r\n"),
                (false, b"250 ok\r\n250 ok\r\n"),
            ],
        );
        assert_eq!(d.requested(), None);
        assert_eq!(d.offered(), Some(Verb::XAnonymousTls));
        assert!(!d.advertised(Verb::Starttls));
    }

    #[test]
    fn smtp_unoffered_request_refused() {
        let d = both(
            MailProtocol::Smtp,
            &[
                (false, b"220 mx\n"),
                (true, b"HELO c\n"),
                (false, b"250 mx\n"),
                (true, b"STARTTLS\n"),
                (false, b"502 5.5.1 unknown\n"),
            ],
        );
        assert_eq!(
            summary(&d),
            (None, Some(Verb::Starttls), refused("502"), false, false)
        );
    }

    #[test]
    fn imap_tags_and_literals() {
        let d = both(
            MailProtocol::Imap,
            &[
                (
                    false,
                    b"* OK [CAPABILITY IMAP4rev1 starttls LOGINDISABLED] ready\r\n",
                ),
                (true, b"a1 ID {11}\r\n"),
                (false, b"+ go\r\n"),
                (true, b"b2 STARTTLS\r\n"),
                (false, b"a1 OK done\r\n"),
                (true, b"a2 NOOP\r\n"),
            ],
        );
        // The literal "b2 STARTTLS" was data, and "a1 OK" is not a STARTTLS reply.
        assert_eq!(d.requested(), None);
        assert_eq!(d.offered(), Some(Verb::Starttls));
        let d = both(
            MailProtocol::Imap,
            &[
                (false, b"* OK hi\r\n"),
                (true, b"x CAPABILITY\r\n"),
                (false, b"* CAPABILITY IMAP4rev1 STARTTLS\r\nx OK done\r\n"),
                (true, b"y starttls\r\n"),
                (false, b"y NO [PRIVACYREQUIRED] nope\r\n"),
            ],
        );
        assert_eq!(d.reply(), refused("NO"));
        assert_eq!(d.offered(), Some(Verb::Starttls));
    }

    #[test]
    fn imap_same_tag_pipelined() {
        // openssl s_client tags everything "."; if CAPABILITY and STARTTLS were pipelined,
        // the first ". OK" belongs to CAPABILITY.
        let d = both(
            MailProtocol::Imap,
            &[
                (false, b"* OK IMAP\r\n"),
                (true, b". CAPABILITY\r\n. STARTTLS\r\n"),
                (false, b"* CAPABILITY IMAP4rev1 STARTTLS\r\n. OK listed\r\n"),
            ],
        );
        assert_eq!(d.reply(), None);
        let mut d = d;
        d.server_bytes(b". BAD not now\r\n");
        assert_eq!(d.reply(), refused("BAD"));
    }

    #[test]
    fn pop3_pipelined_capa_and_auth() {
        let d = both(
            MailProtocol::Pop3,
            &[
                (false, b"+OK ready\r\n"),
                (true, b"AUTH\r\nCAPA\r\n"),
                (false, b"-ERR no\r\n+OK list\r\nUSER\r\nstls\r\n.\r\n"),
                (true, b"stls\r\n"),
                (false, b"+OK go\r\n"),
            ],
        );
        assert_eq!(
            summary(&d),
            (
                Some(Verb::Stls),
                Some(Verb::Stls),
                Some(Reply::Accepted),
                true,
                true
            )
        );
        let d = both(
            MailProtocol::Pop3,
            &[
                (false, b"+OK ready\r\n"),
                (true, b"AUTH\r\n"),
                (false, b"+OK\r\nPLAIN\r\nSTLS\r\n.\r\n"),
                (true, b"STLS\r\n"),
                (false, b"-ERR command not permitted\r\n"),
            ],
        );
        // A mechanism list is not a capability list; the refusal proves nothing.
        assert_eq!(
            summary(&d),
            (None, Some(Verb::Stls), refused("-ERR"), false, false)
        );
    }

    #[test]
    fn overlong_lines_are_data() {
        let mut long = vec![b'x'; LINE_CAP + 10];
        long.extend_from_slice(b" STARTTLS\r\n");
        let d = both(
            MailProtocol::Smtp,
            &[(false, b"220 mx\r\n"), (true, &long), (true, b"NOOP\r\n")],
        );
        assert_eq!(d.requested(), None);
    }

    #[test]
    fn budget_ends_a_direction() {
        let mut d = Dialogue::new(MailProtocol::Smtp);
        let noise = vec![b'n'; 1000];
        let mut taken = 0;
        for _ in 0..40 {
            taken += d.server_bytes(&noise);
        }
        assert_eq!(taken, BUDGET);
        assert!(!d.done());
        for _ in 0..40 {
            d.client_bytes(b"NOOP\r\n".repeat(200).as_slice());
        }
        assert!(d.done());
    }

    #[test]
    fn returns_where_plaintext_ends() {
        let mut d = Dialogue::new(MailProtocol::Pop3);
        assert_eq!(d.server_bytes(b"+OK\r\n"), 5);
        assert_eq!(d.client_bytes(b"STLS\r\n\x16\x03\x01"), 6);
        assert_eq!(d.server_bytes(b"+OK go\r\n"), 8);
        assert!(d.tls_expected());
        assert_eq!(d.client_bytes(b"\x16\x03\x01"), 0);
    }

    #[test]
    fn guess_greetings() {
        assert_eq!(
            Dialogue::guess(b"220 mx ESMTP\r\n"),
            Some(MailProtocol::Smtp)
        );
        assert_eq!(Dialogue::guess(b"220-mx\r\n"), Some(MailProtocol::Smtp));
        assert_eq!(
            Dialogue::guess(b"* OK [CAPABILITY IMAP4rev1]"),
            Some(MailProtocol::Imap)
        );
        assert_eq!(
            Dialogue::guess(b"* PREAUTH hi\r\n"),
            Some(MailProtocol::Imap)
        );
        assert_eq!(Dialogue::guess(b"+OK POP3\r\n"), Some(MailProtocol::Pop3));
        for no in [
            &b""[..],
            b"220",
            b"2200 x",
            b"* OKAY",
            b"+OKAY",
            b"SSH-2.0-OpenSSH\r\n",
            b"\x16\x03\x03\x00\x10",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert_eq!(Dialogue::guess(no), None, "{no:?}");
        }
    }

    #[test]
    fn literal_syntax() {
        assert_eq!(imap_literal(b"a LOGIN {5}"), Some(5));
        assert_eq!(imap_literal(b"a LOGIN {5+}"), Some(5));
        assert_eq!(imap_literal(b"a APPEND x ~{12}"), Some(12));
        assert_eq!(imap_literal(b"a {}"), None);
        assert_eq!(imap_literal(b"a {x}"), None);
        assert_eq!(imap_literal(b"a {99999999999}"), None);
    }
}
