//! The PROXY header parser and the mail STARTTLS observer on real bytes: this repository's
//! captures (made with real stacks by `pcaps/make_pcaps.sh`, expected values in
//! `pcaps/expected_mail.json`) and the public corpus's STARTTLS and PROXY captures (expected
//! values read with tshark 4.0 and written down below).
//!
//! Payloads are pulled out of the captures with the crate's own reader and decoder and put
//! back together per direction by plain concatenation: these are clean sessions, and the
//! helper checks it (no payload retransmitted, no gap before the part that matters).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tlscensus::decode::decode;
use tlscensus::proto::proxy::{self, Command, Family, Parse, Transport};
use tlscensus::proto::starttls::{Dialogue, MailProtocol, Reply, Verb, BUDGET};
use tlscensus::source::CaptureReader;

mod common;

use common::{corpus_dir, pcaps_dir};

type Endpoint = (IpAddr, u16);

/// One TCP connection's payloads.
#[derive(Debug, Default)]
struct Conn {
    /// The side that sent the SYN (else the one with the higher port).
    client: Option<Endpoint>,
    server: Option<Endpoint>,
    /// Payload pieces in capture order: (sent by the client, bytes). Only in-order bytes;
    /// nothing after a gap in that direction.
    events: Vec<(bool, Vec<u8>)>,
    /// Payload segments that repeated bytes already seen, and directions cut by a gap.
    retransmissions: usize,
    gaps: usize,
}

impl Conn {
    fn stream(&self, from_client: bool) -> Vec<u8> {
        self.events
            .iter()
            .filter(|(c, _)| *c == from_client)
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }

    fn client_port(&self) -> u16 {
        self.client.map_or(0, |c| c.1)
    }

    fn server_port(&self) -> u16 {
        self.server.map_or(0, |s| s.1)
    }
}

/// Per direction: next expected sequence number, and whether a gap ended it.
#[derive(Debug, Default, Clone, Copy)]
struct Dir {
    next: Option<u32>,
    cut: bool,
}

/// Every TCP connection of a capture, in order of first packet.
fn connections(path: &Path) -> Vec<Conn> {
    let mut reader = CaptureReader::open(path).unwrap_or_else(|e| panic!("{e}"));
    let mut index: HashMap<(Endpoint, Endpoint), usize> = HashMap::new();
    let mut conns: Vec<Conn> = Vec::new();
    // Sender endpoint → direction state, per connection.
    let mut dirs: Vec<HashMap<Endpoint, Dir>> = Vec::new();
    // Pieces with the sender endpoint, until the client is known.
    let mut raw: Vec<Vec<(Endpoint, Vec<u8>)>> = Vec::new();
    while let Some(packet) = reader.next_packet().unwrap_or_else(|e| panic!("{e}")) {
        let Ok(seg) = decode(packet.link_type, packet.data) else {
            continue;
        };
        let src = (seg.src, seg.sport);
        let dst = (seg.dst, seg.dport);
        let key = if src < dst { (src, dst) } else { (dst, src) };
        let i = *index.entry(key).or_insert_with(|| {
            conns.push(Conn::default());
            dirs.push(HashMap::new());
            raw.push(Vec::new());
            conns.len() - 1
        });
        let conn = &mut conns[i];
        if seg.flags.syn && !seg.flags.ack && conn.client.is_none() {
            conn.client = Some(src);
            conn.server = Some(dst);
        }
        let dir = dirs[i].entry(src).or_default();
        if seg.flags.syn {
            dir.next = Some(seg.seq.wrapping_add(1));
            continue;
        }
        if seg.payload.is_empty() || dir.cut {
            continue;
        }
        if seg.payload_truncated {
            // A short snap length (pcaps/snaplen96.pcap): this direction's bytes end here.
            dir.cut = true;
            continue;
        }
        let next = *dir.next.get_or_insert(seg.seq);
        let ahead = seg.seq.wrapping_sub(next) as i32;
        if ahead < 0 {
            conn.retransmissions += 1;
            continue;
        }
        if ahead > 0 {
            conn.gaps += 1;
            dir.cut = true;
            continue;
        }
        dir.next = Some(next.wrapping_add(seg.payload.len() as u32));
        raw[i].push((src, seg.payload.to_vec()));
    }
    for (conn, pieces) in conns.iter_mut().zip(raw) {
        if conn.client.is_none() {
            // No SYN: the service is the lower port.
            let mut ends: Vec<Endpoint> = pieces.iter().map(|(e, _)| *e).collect();
            ends.sort_by_key(|e| std::cmp::Reverse(e.1));
            ends.dedup();
            conn.client = ends.first().copied();
            conn.server = ends.get(1).copied();
        }
        conn.events = pieces
            .into_iter()
            .map(|(sender, bytes)| (Some(sender) == conn.client, bytes))
            .collect();
    }
    conns
}

/// What the dialogue concluded, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    confirmed: bool,
    offered: Option<Verb>,
    capabilities_seen: bool,
    requested: Option<Verb>,
    reply: Option<Reply>,
    tls_expected: bool,
    done: bool,
}

fn seen(d: &Dialogue) -> Seen {
    Seen {
        confirmed: d.protocol_confirmed(),
        offered: d.offered(),
        capabilities_seen: d.capabilities_seen(),
        requested: d.requested(),
        reply: d.reply(),
        tls_expected: d.tls_expected(),
        done: d.done(),
    }
}

/// Feed a connection's pieces in capture order, each cut into `chunk`-byte pieces (0 = whole).
fn observe(conn: &Conn, protocol: MailProtocol, chunk: usize) -> Seen {
    let mut d = Dialogue::new(protocol);
    for (from_client, bytes) in &conn.events {
        let pieces: Vec<&[u8]> = if chunk == 0 {
            vec![bytes]
        } else {
            bytes.chunks(chunk).collect()
        };
        for piece in pieces {
            if *from_client {
                d.client_bytes(piece);
            } else {
                d.server_bytes(piece);
            }
        }
    }
    seen(&d)
}

/// The same conclusion whether TCP delivered the bytes whole, byte by byte or in odd pieces.
fn observe_all_ways(conn: &Conn, protocol: MailProtocol) -> Seen {
    let whole = observe(conn, protocol, 0);
    for chunk in [1, 2, 3, 7, 64] {
        assert_eq!(
            observe(conn, protocol, chunk),
            whole,
            "pieces of {chunk} bytes"
        );
    }
    whole
}

fn refused_code(reply: Option<Reply>) -> Option<String> {
    match reply {
        Some(Reply::Refused { code }) => Some(code.as_str().to_string()),
        _ => None,
    }
}

/// Every entry of `pcaps/expected_mail.json`: the mail keys against the dialogue, the PROXY
/// keys against the header parser.
#[test]
fn own_captures_match_expected_mail_json() {
    let entries = common::expected_script("expected_mail.json");
    assert_eq!(entries.len(), 13, "entries in expected_mail.json");
    let mut cache: HashMap<String, Vec<Conn>> = HashMap::new();
    let mut checked = 0;
    for e in &entries {
        let file = e["file"].as_str().unwrap();
        let conns = cache
            .entry(file.to_string())
            .or_insert_with(|| connections(&pcaps_dir().join(file)));
        let client_port = e["client_port"].as_u64().unwrap() as u16;
        let conn = conns
            .iter()
            .find(|c| c.client_port() == client_port)
            .unwrap_or_else(|| panic!("{file}: no connection from port {client_port}"));
        let ctx = format!("{file} port {client_port}");
        assert_eq!(
            conn.server_port(),
            e["server_port"].as_u64().unwrap() as u16,
            "{ctx}"
        );
        assert_eq!(
            (conn.retransmissions, conn.gaps),
            (0, 0),
            "{ctx}: not a clean session"
        );
        let client_stream = conn.stream(true);
        let server_stream = conn.stream(false);

        match e["proxy_version"].as_u64() {
            None => assert_eq!(proxy::parse(&client_stream), Parse::NotProxy, "{ctx}"),
            Some(version) => {
                let Parse::Header { len, proxied } = proxy::parse(&client_stream) else {
                    panic!("{ctx}: {:?}", proxy::parse(&client_stream));
                };
                assert_eq!(u64::from(proxied.version), version, "{ctx}");
                let (ip, port) = proxied.source.unwrap();
                assert_eq!(ip.to_string(), e["proxied_ip"].as_str().unwrap(), "{ctx}");
                assert_eq!(
                    u64::from(port),
                    e["proxied_port"].as_u64().unwrap(),
                    "{ctx}"
                );
                assert_eq!(
                    (proxied.command, proxied.transport),
                    (Command::Proxy, Transport::Stream)
                );
                // The relay sent header and ClientHello in one segment; the hello follows.
                assert_eq!(
                    client_stream[len], 0x16,
                    "{ctx}: TLS record after the header"
                );
                assert_eq!(
                    proxy::parse(&conn.events[0].1),
                    Parse::Header { len, proxied }
                );
                for cut in 0..len {
                    assert_eq!(
                        proxy::parse(&client_stream[..cut]),
                        Parse::NeedMore,
                        "{ctx} cut {cut}"
                    );
                }
            }
        }

        let protocol = match e["service"].as_str().unwrap() {
            "smtp" | "submission" => MailProtocol::Smtp,
            "imap" => MailProtocol::Imap,
            "pop3" => MailProtocol::Pop3,
            "tls" => {
                assert_eq!(Dialogue::guess(&server_stream), None, "{ctx}");
                checked += 1;
                continue;
            }
            other => panic!("{ctx}: service {other}"),
        };
        assert_eq!(Dialogue::guess(&server_stream), Some(protocol), "{ctx}");
        assert_eq!(
            MailProtocol::from_port(conn.server_port()),
            Some(protocol),
            "{ctx}"
        );
        let got = observe_all_ways(conn, protocol);
        assert!(got.confirmed, "{ctx}");
        assert_eq!(
            got.requested.map(Verb::as_str),
            e["starttls_verb"].as_str(),
            "{ctx}: starttls_verb"
        );
        assert_eq!(
            got.offered.is_some(),
            e["starttls_offered"].as_bool().unwrap(),
            "{ctx}: starttls_offered"
        );
        if let Some(offered) = got.offered {
            assert_eq!(
                Some(offered),
                got.requested,
                "{ctx}: offered what was asked"
            );
        }
        let plaintext = e["plaintext"].as_bool().unwrap();
        assert_eq!(got.tls_expected, !plaintext, "{ctx}: plaintext");
        match (
            e["starttls_verb"].as_str(),
            e.get("starttls_reply").and_then(|r| r.as_u64()),
        ) {
            (None, _) => assert_eq!(got.reply, None, "{ctx}"),
            (Some(_), None) => assert_eq!(got.reply, Some(Reply::Accepted), "{ctx}"),
            (Some(_), Some(code)) => {
                assert_eq!(refused_code(got.reply), Some(code.to_string()), "{ctx}");
                let Some(Reply::Refused { code: c }) = got.reply else {
                    unreachable!()
                };
                assert_eq!(c.number(), Some(code as u16));
            }
        }
        // A reply ends the dialogue; a session that never asked runs to its end.
        assert_eq!(got.done, got.reply.is_some(), "{ctx}: done");
        checked += 1;
    }
    assert_eq!(checked, entries.len());
}

/// Capability lists on the captures made by real servers, beyond the JSON's yes/no.
#[test]
fn own_captures_capability_details() {
    let conns = connections(&pcaps_dir().join("smtp_x_anonymoustls.pcap"));
    let got = observe_all_ways(&conns[0], MailProtocol::Smtp);
    assert_eq!(got.offered, Some(Verb::XAnonymousTls));
    assert!(got.capabilities_seen);

    let conns = connections(&pcaps_dir().join("smtp_plaintext.pcap"));
    let got = observe_all_ways(&conns[0], MailProtocol::Smtp);
    // EHLO answered without STARTTLS: "not offered" is known, not merely unseen.
    assert!(got.capabilities_seen && got.offered.is_none() && !got.done);

    let conns = connections(&pcaps_dir().join("pop3_stls.pcap"));
    // openssl s_client -starttls pop3 sends STLS without CAPA: the +OK is the only proof.
    let s_client = observe_all_ways(&conns[0], MailProtocol::Pop3);
    assert!(!s_client.capabilities_seen);
    assert_eq!(s_client.offered, Some(Verb::Stls));
    // poplib sends CAPA (twice) first.
    let poplib = observe_all_ways(&conns[1], MailProtocol::Pop3);
    assert!(poplib.capabilities_seen);
}

/// One corpus STARTTLS session and what tshark 4.0 dissected in it.
struct CorpusCase {
    file: &'static str,
    server_port: u16,
    client_port: u16,
    protocol: MailProtocol,
    /// Advertised in a capability list (EHLO parameters, IMAP CAPABILITY, POP3 CAPA).
    advertised: Verb,
    requested: Verb,
}

/// Expected values from tshark 4.0.17's SMTP, IMAP and POP dissection, e.g.
/// `tshark -r F -Y smtp -T fields -e tcp.stream -e tcp.srcport -e smtp.command_line
///  -e smtp.response.code -e smtp.rsp.parameter -E occurrence=a -E aggregator='|'`
/// (IMAP: `imap.request_tag imap.request.command imap.response.status imap.line`;
/// POP: `pop.request.command pop.response.indicator pop.response.description`, and `-V` for
/// the CAPA data lines). In every case tshark shows the capability advertised, the upgrade
/// command, and a positive reply (SMTP 220 "2.0.0 Ready to start TLS", IMAP ". OK Begin TLS
/// negotiation now", POP "+OK Ready to start TLS negotiation."), after which TLS follows.
const CORPUS_CASES: &[CorpusCase] = &[
    // Stream 0: EHLO parameters "...|SIZE 35882577|8BITMIME|STARTTLS|ENHANCEDSTATUSCODES|
    // PIPELINING|CHUNKING"; STARTTLS; 220.
    CorpusCase {
        file: "nDPI/tests/cfgs/default/pcap/smtp-starttls.pcap",
        server_port: 25,
        client_port: 57406,
        protocol: MailProtocol::Smtp,
        advertised: Verb::Starttls,
        requested: Verb::Starttls,
    },
    // Stream 1 (IPv6, Postfix): "...|PIPELINING|SIZE 10240000|VRFY|ETRN|STARTTLS|
    // ENHANCEDSTATUSCODES|8BITMIME|DSN"; STARTTLS; 220. (A segment of its TLS part is
    // missing from the capture, after the plaintext.)
    CorpusCase {
        file: "nDPI/tests/cfgs/default/pcap/smtp-starttls.pcap",
        server_port: 25,
        client_port: 7562,
        protocol: MailProtocol::Smtp,
        advertised: Verb::Starttls,
        requested: Verb::Starttls,
    },
    // The same Google session as nDPI's stream 0.
    CorpusCase {
        file: "arkime/tests/pcap/smtp-starttls.pcap",
        server_port: 25,
        client_port: 57406,
        protocol: MailProtocol::Smtp,
        advertised: Verb::Starttls,
        requested: Verb::Starttls,
    },
    // Greeting "* OK [CAPABILITY IMAP4rev1 CHILDREN ... WITHIN STARTTLS AUTH=LOGIN
    // AUTH=PLAIN] IMAP server ready"; ". CAPABILITY" → "* CAPABILITY ... STARTTLS ...",
    // ". OK"; ". STARTTLS" → ". OK Begin TLS negotiation now".
    CorpusCase {
        file: "nDPI/tests/cfgs/default/pcap/imap-starttls.pcap",
        server_port: 143,
        client_port: 49640,
        protocol: MailProtocol::Imap,
        advertised: Verb::Starttls,
        requested: Verb::Starttls,
    },
    // Dovecot: "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE
    // STARTTLS AUTH=PLAIN] Dovecot (Ubuntu) ready."; ". CAPABILITY"; ". STARTTLS" → ". OK".
    CorpusCase {
        file: "mercury/unit_tests/pcaps/imap2.pcap",
        server_port: 143,
        client_port: 53477,
        protocol: MailProtocol::Imap,
        advertised: Verb::Starttls,
        requested: Verb::Starttls,
    },
    // "+OK lavad"; AUTH → "-ERR Unrecognized command."; CAPA → "+OK Capabilities follow."
    // with TOP, USER, UIDL, STLS, PIPELINING, ... "."; STLS → "+OK Ready to start TLS
    // negotiation.".
    CorpusCase {
        file: "nDPI/tests/cfgs/default/pcap/pop3_stls.pcap",
        server_port: 110,
        client_port: 50583,
        protocol: MailProtocol::Pop3,
        advertised: Verb::Stls,
        requested: Verb::Stls,
    },
];

#[test]
fn corpus_starttls_sessions() {
    for case in CORPUS_CASES {
        let conns = connections(&corpus_dir().join(case.file));
        let conn = conns
            .iter()
            .find(|c| c.client_port() == case.client_port)
            .unwrap_or_else(|| panic!("{}: no client port {}", case.file, case.client_port));
        let ctx = format!("{} port {}", case.file, case.client_port);
        assert_eq!(conn.server_port(), case.server_port, "{ctx}");
        assert_eq!(conn.retransmissions, 0, "{ctx}");
        let server_stream = conn.stream(false);
        assert_eq!(
            Dialogue::guess(&server_stream),
            Some(case.protocol),
            "{ctx}"
        );
        assert_eq!(proxy::parse(&conn.stream(true)), Parse::NotProxy, "{ctx}");
        let got = observe_all_ways(conn, case.protocol);
        assert_eq!(
            got,
            Seen {
                confirmed: true,
                offered: Some(case.advertised),
                capabilities_seen: true,
                requested: Some(case.requested),
                reply: Some(Reply::Accepted),
                tls_expected: true,
                done: true,
            },
            "{ctx}"
        );
        // The client's next bytes after the request are a TLS handshake record.
        let mut d = Dialogue::new(case.protocol);
        let mut after_request = None;
        for (from_client, bytes) in &conn.events {
            if *from_client {
                if d.tls_expected() && after_request.is_none() {
                    after_request = Some(bytes[0]);
                }
                d.client_bytes(bytes);
            } else {
                d.server_bytes(bytes);
            }
        }
        assert_eq!(after_request, Some(0x16), "{ctx}");
    }
}

/// Corpus mail sessions that never upgrade. Expected values from tshark 4.0.17 (fields as
/// for [`CORPUS_CASES`]):
/// * mercury capture2.pcap, client port 54557: "ehlo" → 250 with parameters "...|SIZE
///   35882577|8BITMIME|STARTTLS|ENHANCEDSTATUSCODES|PIPELINING|CHUNKING|SMTPUTF8", then
///   "quit" → 221: offered, never asked;
/// * arkime_synthetic.pcap, client port 55005: EHLO → 250 "...|SIZE 52428800|8BITMIME|
///   STARTTLS"; MAIL, RCPT, DATA → 354 and a message in clear: offered, never asked;
/// * arkime_synthetic.pcap, client port 49401: "* OK IMAP4rev1 Service Ready" (no
///   capabilities), a1 SELECT → a1 OK, a2 FETCH → a literal of 90 bytes split over segments
///   → a2 OK: nothing offered, nothing asked, nothing listed.
#[test]
fn corpus_sessions_without_upgrade() {
    let cases = [
        (
            "mercury/unit_tests/pcaps/capture2.pcap",
            54557,
            MailProtocol::Smtp,
            Some(Verb::Starttls),
        ),
        (
            "arkime/tests/pcap/arkime_synthetic.pcap",
            55005,
            MailProtocol::Smtp,
            Some(Verb::Starttls),
        ),
        (
            "arkime/tests/pcap/arkime_synthetic.pcap",
            49401,
            MailProtocol::Imap,
            None,
        ),
    ];
    for (file, client_port, protocol, offered) in cases {
        let conns = connections(&corpus_dir().join(file));
        let conn = conns
            .iter()
            .find(|c| c.client_port() == client_port)
            .unwrap();
        let ctx = format!("{file} port {client_port}");
        assert_eq!((conn.retransmissions, conn.gaps), (0, 0), "{ctx}");
        assert_eq!(
            Dialogue::guess(&conn.stream(false)),
            Some(protocol),
            "{ctx}"
        );
        let got = observe_all_ways(conn, protocol);
        assert_eq!(
            got,
            Seen {
                confirmed: true,
                offered,
                capabilities_seen: offered.is_some(),
                requested: None,
                reply: None,
                tls_expected: false,
                done: false,
            },
            "{ctx}"
        );
    }
}

/// nDPI's haproxy.pcap: one segment, a v1 line and a ClientHello. tshark 4.0.17 (`-V`):
/// "PROXY v1 magic, Protocol: TCP4, Source Address: 11.111.11.111, Destination Address:
/// 222.222.222.22, Source Port: 52176, Destination Port: 443", then TLS handshake type 1.
#[test]
fn corpus_haproxy_v1() {
    let conns = connections(&corpus_dir().join("nDPI/tests/cfgs/default/pcap/haproxy.pcap"));
    assert_eq!(conns.len(), 1);
    let stream = conns[0].stream(true);
    let Parse::Header { len, proxied } = proxy::parse(&stream) else {
        panic!("{:?}", proxy::parse(&stream));
    };
    assert_eq!(
        len,
        b"PROXY TCP4 11.111.11.111 222.222.222.22 52176 443\r\n".len()
    );
    assert_eq!(proxied.version, 1);
    assert_eq!(
        (proxied.family, proxied.transport),
        (Family::Inet, Transport::Stream)
    );
    assert_eq!(
        proxied.source,
        Some(("11.111.11.111".parse().unwrap(), 52176))
    );
    assert_eq!(
        proxied.destination,
        Some(("222.222.222.22".parse().unwrap(), 443))
    );
    assert_eq!(stream[len], 0x16);
    for cut in 0..len {
        assert_eq!(proxy::parse(&stream[..cut]), Parse::NeedMore, "cut {cut}");
    }
    assert_eq!(proxy::tlvs(&stream[..len]).count(), 0);
}

/// The v2 headers of our own captures in detail. Destination addresses from tshark 4.0.17
/// (`-e proxy.dst.ipv4 -e proxy.dst.ipv6 -e proxy.dstport -e proxy.v2.addr_family_protocol
/// -e proxy.v2.length`): 192.0.2.10:443, 0x11, 12; 2001:db8::10:443, 0x21, 36.
#[test]
fn own_captures_v2_details() {
    for (file, dst, fam, block) in [
        ("proxy_v2.pcap", "192.0.2.10", Family::Inet, 12),
        ("proxy_v2_ipv6.pcap", "2001:db8::10", Family::Inet6, 36),
    ] {
        let conns = connections(&pcaps_dir().join(file));
        let stream = conns[0].stream(true);
        let Parse::Header { len, proxied } = proxy::parse(&stream) else {
            panic!("{file}");
        };
        assert_eq!(len, 16 + block, "{file}");
        assert_eq!(proxied.family, fam, "{file}");
        assert_eq!(
            proxied.destination,
            Some((dst.parse().unwrap(), 443)),
            "{file}"
        );
        assert_eq!(proxy::tlvs(&stream[..len]).count(), 0, "{file}");
    }
    let conns = connections(&pcaps_dir().join("proxy_v1.pcap"));
    let Parse::Header { proxied, .. } = proxy::parse(&conns[0].stream(true)) else {
        panic!("proxy_v1");
    };
    assert_eq!(
        proxied.destination,
        Some(("192.0.2.10".parse().unwrap(), 443))
    );
}

/// Every connection of every capture here and in the corpus: no client stream but the PROXY
/// ones starts with a header, and no server greeting is taken for a mail protocol unless it
/// comes from a plaintext mail port.
#[test]
fn no_false_positives_anywhere() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    let manifest = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).unwrap();
    files.extend(
        manifest
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next())
            .filter(|p| !p.is_empty())
            .map(|p| corpus_dir().join(p)),
    );
    assert!(files.len() > 200, "{} captures", files.len());
    let mut headers = Vec::new();
    let mut mail = Vec::new();
    for path in &files {
        let Ok(reader) = CaptureReader::open(path) else {
            continue;
        };
        drop(reader);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        for conn in connections(path) {
            let client = conn.stream(true);
            let server = conn.stream(false);
            match proxy::parse(&client) {
                Parse::Header { .. } => headers.push(name.clone()),
                Parse::NotProxy => {}
                // A client that sent nothing yet is not a false positive.
                Parse::NeedMore => assert!(
                    client.is_empty(),
                    "{name}: {:?}",
                    &client[..6.min(client.len())]
                ),
                other => panic!("{name}: {other:?}"),
            }
            if let Some(p) = Dialogue::guess(&server) {
                // Only on that protocol's service ports, plaintext or implicit TLS (nDPI's
                // smtps.pcapng: a server on 465 answers a ClientHello with an SMTP greeting),
                // and FTP's, which greets with "220 " too (RFC 959).
                let ports: &[u16] = match p {
                    MailProtocol::Smtp => &[25, 587, 465, 21],
                    MailProtocol::Imap => &[143, 993],
                    MailProtocol::Pop3 => &[110, 995],
                };
                let port = conn.server_port();
                assert!(ports.contains(&port), "{name}: {p:?} on {port}");
                mail.push(format!("{name}:{port}"));
            }
            // Whatever the bytes, the observer neither panics nor runs past its budget.
            for protocol in [MailProtocol::Smtp, MailProtocol::Imap, MailProtocol::Pop3] {
                let mut d = Dialogue::new(protocol);
                let mut taken = (0, 0);
                for (from_client, bytes) in &conn.events {
                    if *from_client {
                        taken.0 += d.client_bytes(bytes);
                    } else {
                        taken.1 += d.server_bytes(bytes);
                    }
                }
                assert!(taken.0 <= BUDGET && taken.1 <= BUDGET, "{name}");
            }
        }
    }
    headers.sort();
    headers.dedup();
    assert_eq!(
        headers,
        [
            "haproxy.pcap",
            "proxy_v1.pcap",
            "proxy_v2.pcap",
            "proxy_v2_ipv6.pcap"
        ]
    );
    mail.sort();
    mail.dedup();
    eprintln!("mail greetings: {mail:?}");
    assert!(mail.len() >= 10, "{mail:?}");
}

/// Small deterministic PRNG (xorshift64*) for the mutation tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Real headers and dialogues with bytes flipped, cut and cut up: every answer is one of
/// the four, `len` never exceeds the input, and the observer never panics.
#[test]
fn mutated_inputs_never_panic() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for file in ["proxy_v1.pcap", "proxy_v2.pcap", "proxy_v2_ipv6.pcap"] {
        let conns = connections(&pcaps_dir().join(file));
        seeds.push(conns[0].stream(true)[..120].to_vec());
    }
    let mut dialogues = Vec::new();
    for (file, protocol) in [
        ("smtp_starttls_refused.pcap", MailProtocol::Smtp),
        ("imap_starttls.pcap", MailProtocol::Imap),
        ("pop3_stls.pcap", MailProtocol::Pop3),
    ] {
        let conns = connections(&pcaps_dir().join(file));
        dialogues.push((conns.into_iter().next().unwrap(), protocol));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..20_000 {
        let mut data = seeds[round % seeds.len()].clone();
        for _ in 0..=rng.below(4) {
            let i = rng.below(data.len());
            data[i] = match rng.below(4) {
                0 => rng.next() as u8,
                1 => b' ',
                2 => b'\r',
                _ => data[i] ^ 1,
            };
        }
        let data = &data[..rng.below(data.len() + 1)];
        if let Parse::Header { len, .. } = proxy::parse(data) {
            assert!(len <= data.len());
            let _ = proxy::tlvs(&data[..len]).count();
        }
    }
    for round in 0..300 {
        let (conn, protocol) = &dialogues[round % dialogues.len()];
        let mut d = Dialogue::new(*protocol);
        for (from_client, bytes) in &conn.events {
            let mut bytes = bytes.clone();
            if rng.below(3) == 0 && !bytes.is_empty() {
                let i = rng.below(bytes.len());
                bytes[i] = rng.next() as u8;
            }
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len());
                let (piece, tail) = rest.split_at(n);
                if *from_client {
                    d.client_bytes(piece);
                } else {
                    d.server_bytes(piece);
                }
                rest = tail;
            }
        }
        let _ = seen(&d);
    }
}
