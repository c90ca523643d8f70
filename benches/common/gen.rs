//! A deterministic generator of a large Exchange-like capture, built from the real handshakes
//! in `pcaps/`: thousands of clients on 443, 993, 995, 587 and 25 (SMTP with STARTTLS), TLS
//! 1.0 to 1.3, refusals and silent servers, split ClientHellos, IPv4 and IPv6, and bulk
//! encrypted data making well over 90 % of the packets.
//!
//! Every connection replays the payload bytes of a template connection captured from real
//! stacks (OpenSSL, Python `ssl`), under new addresses, ports and sequence numbers, then adds
//! application-data records. Connections are interleaved, a few thousand at a time.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tlscensus::decode;
use tlscensus::flow::FlowKey;
use tlscensus::source::CaptureReader;

/// One template connection: its payload segments in order, client's first.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// (from the client?, bytes)
    pub segments: Vec<(bool, Vec<u8>)>,
    /// Port to serve it on in the generated capture.
    pub port: u16,
    /// The client's port in the template capture: with the file name, it finds the
    /// connection's expected values in `pcaps/expected*.json`.
    pub client_port: u16,
}

/// A template connection being read: its client (from the SYN) and payload segments.
type Capture = (Option<(IpAddr, u16)>, Vec<(bool, Vec<u8>)>);

/// Template captures and the service port each one is replayed on.
const TEMPLATES: &[(&str, u16)] = &[
    ("tls10.pcap", 443),
    ("tls11.pcap", 443),
    ("tls12.pcap", 443),
    ("tls13.pcap", 443),
    ("server_limited.pcap", 443),
    ("split_hello.pcap", 443),
    ("refused_version.pcap", 443),
    ("no_shared_cipher.pcap", 443),
    ("tls12.pcap", 993),
    ("tls13.pcap", 995),
    ("tls10.pcap", 995),
    ("smtp_starttls.pcap", 25),
    ("smtp_x_anonymoustls.pcap", 25),
    ("smtp_submission_starttls.pcap", 587),
    ("smtp_plaintext.pcap", 25),
    ("imap_starttls.pcap", 143),
    ("pop3_stls.pcap", 110),
];

/// Read the template connections from `pcaps/`.
pub fn templates(pcaps: &Path) -> Vec<Template> {
    let mut out = Vec::new();
    for (file, port) in TEMPLATES {
        let mut reader = CaptureReader::open(&pcaps.join(file)).expect("template capture");
        let mut conns: HashMap<FlowKey, Capture> = HashMap::new();
        let mut order = Vec::new();
        while let Some(p) = reader.next_packet().expect("template readable") {
            let Ok(seg) = decode::decode(p.link_type, p.data) else {
                continue;
            };
            let (key, _) = FlowKey::new((seg.src, seg.sport), (seg.dst, seg.dport));
            let entry = conns.entry(key).or_insert_with(|| {
                order.push(key);
                (None, Vec::new())
            });
            if seg.flags.syn && !seg.flags.ack {
                entry.0 = Some((seg.src, seg.sport));
            }
            if !seg.payload.is_empty() {
                let from_client = entry.0 == Some((seg.src, seg.sport));
                entry.1.push((from_client, seg.payload.to_vec()));
            }
        }
        for key in order {
            let (client, segments) = conns.remove(&key).unwrap_or_default();
            if let (Some((_, client_port)), false) = (client, segments.is_empty()) {
                out.push(Template {
                    name: format!("{file}:{}", key.hi.1.min(key.lo.1)),
                    segments,
                    port: *port,
                    client_port,
                });
            }
        }
    }
    assert!(out.len() >= TEMPLATES.len(), "templates missing");
    out
}

/// xorshift64*: small, fast, and the same sequence everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Part of the file name: bump it whenever the bytes generated for a spec change, so a capture
/// left by an older generator is never mistaken for the current one.
/// v2: connections close with FINs from both sides and a last ACK, as TCP does.
/// v3: application data is random bytes throughout, as ciphertext is (it was zeros but for
/// every 61st byte); the connections, their packets and times are v2's.
pub const GENERATOR_VERSION: u32 = 3;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Stop once the file reaches this many bytes.
    pub target_bytes: u64,
    pub clients: u32,
    /// Connections open at once.
    pub concurrent: usize,
    /// Application-data packets per connection after the handshake (mean).
    pub bulk_packets: u32,
    pub seed: u64,
    /// Start exactly this many connections and no more (the file is then as large as they
    /// make it, and `target_bytes` only paces the progress lines); `None`: stop at the size.
    pub connections: Option<u64>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            target_bytes: 256 << 20,
            clients: 5000,
            concurrent: 2000,
            bulk_packets: 200,
            seed: 0x7e57_c0de,
            connections: None,
        }
    }
}

/// A connection being generated.
struct Live {
    template: usize,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    /// Next sequence numbers: client→server, server→client.
    seq: [u32; 2],
    /// Progress: 0 = SYN, 1 = SYN-ACK, 2 = ACK, then payload segments, then bulk, then the
    /// close (`closing`).
    step: usize,
    bulk_left: u32,
    /// Close progress: 0 open, 1 client FIN sent, 2 server FIN sent, 3 last ACK sent.
    closing: u8,
}

/// Generated-capture statistics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Generated {
    pub packets: u64,
    pub connections: u64,
    pub handshake_packets: u64,
    pub bytes: u64,
}

/// Write the capture to `path` (pcap, microsecond stamps, Ethernet). The file is streamed
/// through a 4 MiB buffer: memory stays at the connections open at once (`spec.concurrent`)
/// whatever the size. Progress goes to standard error every tenth of the target (at most
/// every GiB).
pub fn generate(path: &Path, templates: &[Template], spec: &Spec) -> std::io::Result<Generated> {
    generate_with_truth(path, templates, spec, None)
}

/// Told of every connection as it starts: its client, its server, its template.
pub type TruthSink<'a> =
    dyn FnMut(&(IpAddr, u16), &(IpAddr, u16), &Template) -> std::io::Result<()> + 'a;

/// [`generate`], and when `truth` is given, one line to it per connection as it starts:
/// [`truth_line`] of its client, server and template.
pub fn generate_with_truth(
    path: &Path,
    templates: &[Template],
    spec: &Spec,
    mut truth: Option<&mut TruthSink>,
) -> std::io::Result<Generated> {
    let mut out = BufWriter::with_capacity(1 << 22, File::create(path)?);
    let started = std::time::Instant::now();
    let report_every = (spec.target_bytes / 10).clamp(1 << 20, 1 << 30);
    let mut next_report = report_every;
    eprintln!(
        "generating {} (target {:.2} GB, then the open connections are closed)",
        path.display(),
        spec.target_bytes as f64 / 1e9
    );
    write_pcap_header(&mut out)?;

    let mut rng = Rng::new(spec.seed);
    // The bytes of application data come from a stream of their own, so that the traffic's
    // shape (drawn from `rng`) is the same as before they were random.
    let mut ciphertext = Rng::new(spec.seed ^ 0x5eed_c1f3_e7e4_7001);
    let mut stats = Generated {
        bytes: 24,
        ..Generated::default()
    };
    let mut live: Vec<Live> = Vec::with_capacity(spec.concurrent);
    let mut ts_us: u64 = 1_700_000_000_000_000;
    let mut frame = Vec::with_capacity(2048);
    let mut bulk = vec![0u8; 1400];
    let mut stopping = false;
    loop {
        while !stopping && live.len() < spec.concurrent {
            if spec.connections.is_some_and(|n| stats.connections >= n) {
                stopping = true;
                break;
            }
            let conn = new_connection(&mut rng, templates, spec);
            if let Some(truth) = truth.as_mut() {
                truth(&conn.client, &conn.server, &templates[conn.template])?;
            }
            live.push(conn);
            stats.connections += 1;
        }
        if live.is_empty() {
            break;
        }
        let pick = rng.below(live.len() as u64) as usize;
        let conn = &mut live[pick];
        ts_us += 1 + rng.below(20);
        let done = next_frame(
            conn,
            &templates[conn.template],
            (&mut rng, &mut ciphertext),
            &mut bulk,
            &mut stats,
            &mut frame,
        );
        if done {
            live.swap_remove(pick);
        }
        out.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(&frame)?;
        stats.packets += 1;
        stats.bytes += 16 + frame.len() as u64;
        if stats.bytes >= next_report {
            next_report += report_every;
            eprintln!(
                "  {:.2} GB written, {} packets, {:.0} s",
                stats.bytes as f64 / 1e9,
                stats.packets,
                started.elapsed().as_secs_f64()
            );
        }
        if !stopping && spec.connections.is_none() && stats.bytes >= spec.target_bytes {
            stopping = true;
            eprintln!("  target reached; closing {} open connections", live.len());
        }
    }
    out.flush()?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "  done: {:.2} GB, {} packets, {} connections in {secs:.0} s ({:.0} MB/s)",
        stats.bytes as f64 / 1e9,
        stats.packets,
        stats.connections,
        stats.bytes as f64 / 1e6 / secs.max(1e-9)
    );
    Ok(stats)
}

/// Build the next frame of a connection replaying `template` into `frame`, moving its
/// sequence numbers on; whether it was the connection's last.
fn next_frame(
    conn: &mut Live,
    template: &Template,
    (rng, ciphertext): (&mut Rng, &mut Rng),
    bulk: &mut [u8],
    stats: &mut Generated,
    frame: &mut Vec<u8>,
) -> bool {
    let (from_client, flags, payload) = step(conn, template, rng, ciphertext, bulk, stats);
    let (src, dst) = if from_client {
        (conn.client, conn.server)
    } else {
        (conn.server, conn.client)
    };
    let dir = usize::from(!from_client);
    let ack = conn.seq[1 - dir];
    let seq = conn.seq[dir];
    build_frame(frame, src, dst, seq, ack, flags, payload);
    let advance = payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0);
    conn.seq[dir] = seq.wrapping_add(advance);
    conn.step += 1;
    conn.closing == 3
}

/// The next packet of a connection replaying `template`: from the client?, TCP flags, payload.
fn step<'a>(
    conn: &mut Live,
    template: &'a Template,
    rng: &mut Rng,
    ciphertext: &mut Rng,
    bulk: &'a mut [u8],
    stats: &mut Generated,
) -> (bool, u8, &'a [u8]) {
    let hs = template.segments.len();
    match conn.step {
        0 => (true, SYN, &[]),
        1 => (false, SYN | ACK, &[]),
        2 => (true, ACK, &[]),
        s if s < 3 + hs => {
            let (c, bytes) = &template.segments[s - 3];
            stats.handshake_packets += 1;
            (*c, ACK | PSH, bytes.as_slice())
        }
        _ if conn.bulk_left > 0 => {
            conn.bulk_left -= 1;
            // TLS 1.2+ application data record; mostly server → client, as with mail
            // and web downloads.
            let len = 200 + rng.below(1150) as usize;
            bulk[..5].copy_from_slice(&[23, 3, 3, ((len - 5) >> 8) as u8, (len - 5) as u8]);
            for chunk in bulk[5..len].chunks_mut(8) {
                chunk.copy_from_slice(&ciphertext.next().to_le_bytes()[..chunk.len()]);
            }
            for b in bulk[5..len].iter_mut().step_by(61) {
                *b = rng.next() as u8;
            }
            (rng.below(5) == 0, ACK | PSH, &bulk[..len])
        }
        // The close: the client's FIN, the server's FIN, the client's last ACK.
        _ if conn.closing == 0 => {
            conn.closing = 1;
            (true, FIN | ACK, &[])
        }
        _ if conn.closing == 1 => {
            conn.closing = 2;
            (false, FIN | ACK, &[])
        }
        _ => {
            conn.closing = 3;
            (true, ACK, &[])
        }
    }
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn new_connection(rng: &mut Rng, templates: &[Template], spec: &Spec) -> Live {
    let template = rng.below(templates.len() as u64) as usize;
    let client_no = rng.below(u64::from(spec.clients)) as u32;
    // One client in five on IPv6, as on a dual-stack network.
    let v6 = client_no % 5 == 0;
    let client_ip: IpAddr = if v6 {
        IpAddr::from([
            0xfd00,
            0,
            0,
            1,
            0,
            0,
            (client_no >> 16) as u16,
            client_no as u16,
        ])
    } else {
        IpAddr::from([
            10,
            (client_no >> 16) as u8,
            (client_no >> 8) as u8,
            client_no as u8,
        ])
    };
    let server_no = (rng.below(4) + 1) as u8;
    let server_ip: IpAddr = if v6 {
        IpAddr::from([0xfd00, 0, 0, 2, 0, 0, 0, u16::from(server_no)])
    } else {
        IpAddr::from([192, 0, 2, server_no])
    };
    let port = templates[template].port;
    Live {
        template,
        client: (client_ip, 1024 + rng.below(60_000) as u16),
        server: (server_ip, port),
        seq: [rng.next() as u32, rng.next() as u32],
        step: 0,
        bulk_left: rng.below(u64::from(spec.bulk_packets) * 2) as u32,
        closing: 0,
    }
}

/// An Ethernet + IPv4/IPv6 + TCP frame (checksums left zero: passive tools do not check them).
fn build_frame(
    frame: &mut Vec<u8>,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) {
    frame.clear();
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]);
    let tcp_len = 20 + payload.len();
    match (src.0, dst.0) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            frame.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + tcp_len) as u16;
            frame.extend_from_slice(&[0x45, 0, (total >> 8) as u8, total as u8, 0, 0, 0x40, 0]);
            frame.extend_from_slice(&[64, 6, 0, 0]);
            frame.extend_from_slice(&s.octets());
            frame.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            frame.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            frame.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            frame.extend_from_slice(&[6, 64]);
            frame.extend_from_slice(&s.octets());
            frame.extend_from_slice(&d.octets());
        }
        _ => unreachable!("both ends of a connection share an IP version"),
    }
    frame.extend_from_slice(&src.1.to_be_bytes());
    frame.extend_from_slice(&dst.1.to_be_bytes());
    frame.extend_from_slice(&seq.to_be_bytes());
    frame.extend_from_slice(&ack.to_be_bytes());
    frame.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    frame.extend_from_slice(payload);
}

/// The generated capture of `spec`, made once and kept under `target/bench/`.
pub fn ensure(spec: &Spec) -> (PathBuf, Option<Generated>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    // The default mix keeps its historical name; another bulk figure is part of the name.
    let bulk = if spec.bulk_packets == Spec::default().bulk_packets {
        String::new()
    } else {
        format!("-bulk{}", spec.bulk_packets)
    };
    let path = dir.join(format!(
        "exchange-like-v{GENERATOR_VERSION}-{}MiB{bulk}-{:x}.pcap",
        spec.target_bytes >> 20,
        spec.seed
    ));
    if path.is_file() {
        return (path, None);
    }
    let templates = templates(&root.join("pcaps"));
    // A name of its own per process: two runs generating the same file never share it.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let generated = generate(&tmp, &templates, spec).expect("generate capture");
    std::fs::rename(&tmp, &path).expect("rename generated capture");
    (path, Some(generated))
}

/// A SYN flood with real handshakes in it (issue 22): `syns` connections from random IPv4
/// sources and ports to the servers' port 443 within `seconds` of capture time, half of them
/// answered with a SYN-ACK (half-open), and `handshakes` real TLS connections (the port-443
/// templates, replayed whole, no bulk data) spread through it.
#[derive(Debug, Clone)]
pub struct Flood {
    pub syns: u64,
    pub handshakes: u32,
    pub seconds: u64,
    pub seed: u64,
}

impl Default for Flood {
    fn default() -> Self {
        Flood {
            syns: 3_000_000,
            handshakes: 1_000,
            seconds: 10,
            seed: 0xf100_d5ee,
        }
    }
}

/// One real handshake of a flood capture: its client, its server, and the template capture
/// it replays (whose expected values are in `pcaps/expected.json`, from the tools that made it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRow {
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub template_file: String,
}

/// The pcap global header: little-endian, microseconds, snaplen 262144, Ethernet.
fn write_pcap_header(out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0; 8])?;
    out.write_all(&262_144u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())
}

/// Write the flood capture to `path` and its truth (one line per real handshake: client
/// address, client port, server address, server port, template file; tab-separated) to
/// `truth`.
pub fn generate_flood(
    path: &Path,
    truth: &Path,
    templates: &[Template],
    flood: &Flood,
) -> std::io::Result<Generated> {
    let templates: Vec<&Template> = templates.iter().filter(|t| t.port == 443).collect();
    let mut out = BufWriter::with_capacity(1 << 22, File::create(path)?);
    let mut truth_out = BufWriter::new(File::create(truth)?);
    write_pcap_header(&mut out)?;
    let mut rng = Rng::new(flood.seed);
    let mut ciphertext = Rng::new(flood.seed ^ 0x5eed);
    let mut stats = Generated {
        bytes: 24,
        ..Generated::default()
    };
    let spec = Spec {
        clients: 50_000,
        bulk_packets: 0,
        ..Spec::default()
    };
    let start_us: u64 = 1_700_000_000_000_000;
    let span_us = flood.seconds * 1_000_000;
    let mut frame = Vec::with_capacity(2048);
    let mut bulk = vec![0u8; 1400];
    let mut live: Vec<(Live, usize)> = Vec::new();
    let mut started = 0u32;
    // A real handshake starts every `every` flood SYNs; its packets go out one per SYN.
    let every = (flood.syns / u64::from(flood.handshakes.max(1))).max(1);
    let write = |out: &mut BufWriter<File>, ts_us: u64, frame: &[u8], stats: &mut Generated| {
        stats.packets += 1;
        stats.bytes += 16 + frame.len() as u64;
        out.write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(&(frame.len() as u32).to_le_bytes())?;
        out.write_all(frame)
    };
    for n in 0..flood.syns {
        let ts_us = start_us + n * span_us / flood.syns.max(1);
        if n % every == 0 && started < flood.handshakes {
            let template = rng.below(templates.len() as u64) as usize;
            let mut conn = new_connection(&mut rng, &[templates[template].clone()], &spec);
            conn.template = template;
            conn.bulk_left = 0;
            writeln!(
                truth_out,
                "{}\t{}\t{}\t{}\t{}",
                conn.client.0,
                conn.client.1,
                conn.server.0,
                conn.server.1,
                templates[template]
                    .name
                    .split(':')
                    .next()
                    .unwrap_or_default()
            )?;
            live.push((conn, template));
            started += 1;
            stats.connections += 1;
        }
        // One flood SYN from a random source, and for every second one the server's SYN-ACK.
        // Outside the real clients' 10/8 and fd00::/8, so no flood SYN lands on a real
        // connection.
        let r = rng.next();
        let address = [
            100 + (r % 100) as u8,
            (r >> 8) as u8,
            (r >> 16) as u8,
            (r >> 24) as u8,
        ];
        let source = (IpAddr::from(address), 1024 + rng.below(64_000) as u16);
        let server = (IpAddr::from([192, 0, 2, (rng.below(4) + 1) as u8]), 443);
        let isn = rng.next() as u32;
        build_frame(&mut frame, source, server, isn, 0, SYN, &[]);
        write(&mut out, ts_us, &frame, &mut stats)?;
        if n % 2 == 1 {
            let server_isn = rng.next() as u32;
            build_frame(
                &mut frame,
                server,
                source,
                server_isn,
                isn.wrapping_add(1),
                SYN | ACK,
                &[],
            );
            write(&mut out, ts_us, &frame, &mut stats)?;
        }
        // The next packet of one real connection.
        if !live.is_empty() {
            let pick = rng.below(live.len() as u64) as usize;
            let (conn, template) = &mut live[pick];
            let done = next_frame(
                conn,
                templates[*template],
                (&mut rng, &mut ciphertext),
                &mut bulk,
                &mut stats,
                &mut frame,
            );
            write(&mut out, ts_us, &frame, &mut stats)?;
            if done {
                live.swap_remove(pick);
            }
        }
    }
    // Whatever real connections are still open finish after the flood.
    let end_us = start_us + span_us;
    while let Some((conn, template)) = live.last_mut() {
        let done = next_frame(
            conn,
            templates[*template],
            (&mut rng, &mut ciphertext),
            &mut bulk,
            &mut stats,
            &mut frame,
        );
        write(&mut out, end_us, &frame, &mut stats)?;
        if done {
            live.pop();
        }
    }
    out.flush()?;
    truth_out.flush()?;
    Ok(stats)
}

/// The flood capture and its truth file, made once and kept under `target/bench/`.
pub fn ensure_flood(flood: &Flood) -> (PathBuf, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let name = format!(
        "synflood-v{GENERATOR_VERSION}-{}syn-{}hs-{}s-{:x}",
        flood.syns, flood.handshakes, flood.seconds, flood.seed
    );
    let path = dir.join(format!("{name}.pcap"));
    let truth = dir.join(format!("{name}.truth.tsv"));
    if path.is_file() && truth.is_file() {
        return (path, truth);
    }
    let templates = templates(&root.join("pcaps"));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let generated = generate_flood(&tmp, &truth, &templates, flood).expect("generate flood");
    std::fs::rename(&tmp, &path).expect("rename generated capture");
    eprintln!(
        "generated {}: {} packets, {} real handshakes",
        path.display(),
        generated.packets,
        generated.connections
    );
    (path, truth)
}

/// The columns of a handshake capture's truth file ([`ensure_handshakes`]), its first line.
pub const TRUTH_COLUMNS: &str = "client_ip\tclient_port\tserver_ip\tserver_port\ttemplate\t\
    template_client_port\tsni\tmax_offered\tnegotiated_version\tcipher_suite\toutcome\t\
    alert_from\talert_description";

/// The expected values of every template connection, from `pcaps/expected.json` and
/// `pcaps/expected_mail.json` (what the tools that made the templates said), by file name
/// and the client's port in that file.
fn template_expectations(pcaps: &Path) -> HashMap<(String, u16), serde_json::Value> {
    let mut out = HashMap::new();
    for file in ["expected.json", "expected_mail.json"] {
        let text = std::fs::read_to_string(pcaps.join(file)).expect("pcaps/expected*.json");
        let entries: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON");
        for e in entries {
            let key = (
                e["file"].as_str().expect("file").to_string(),
                e["client_port"].as_u64().expect("client_port") as u16,
            );
            out.insert(key, e);
        }
    }
    out
}

/// One truth line: the connection's addresses as generated, its template, and what the
/// template's handshake holds by `pcaps/expected*.json` (`-` where a value is null).
fn truth_line(
    client: &(IpAddr, u16),
    server: &(IpAddr, u16),
    template: &Template,
    expected: &HashMap<(String, u16), serde_json::Value>,
) -> String {
    let file = template.name.split(':').next().unwrap_or_default();
    let want = expected
        .get(&(file.to_string(), template.client_port))
        .unwrap_or_else(|| {
            panic!(
                "template {file} (client port {}) has no entry in pcaps/expected*.json",
                template.client_port
            )
        });
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!(
        "{}\t{}\t{}\t{}\t{file}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        client.0,
        client.1,
        server.0,
        server.1,
        template.client_port,
        text(&want["sni"]),
        text(&want["max_offered"]),
        text(&want["negotiated_version"]),
        text(&want["cipher_suite"]),
        text(&want["outcome"]),
        text(&want["alert"]["from"]),
        text(&want["alert"]["description"]),
    )
}

/// The handshake capture of `spec` (meant with `spec.connections` set) and its truth file
/// (tab-separated, [`TRUTH_COLUMNS`] first, then one line per connection in the order they
/// start), made once and kept under `target/bench/`; the statistics when it was made now.
pub fn ensure_handshakes(spec: &Spec) -> (PathBuf, PathBuf, Option<Generated>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    let connections = spec
        .connections
        .expect("a handshake capture has a connection count");
    let name = format!(
        "handshakes-v{GENERATOR_VERSION}-{connections}conn-{}clients-{}concurrent-bulk{}-{:x}",
        spec.clients, spec.concurrent, spec.bulk_packets, spec.seed
    );
    let path = dir.join(format!("{name}.pcap"));
    let truth = dir.join(format!("{name}.truth.tsv"));
    if path.is_file() && truth.is_file() {
        return (path, truth, None);
    }
    let pcaps = root.join("pcaps");
    let templates = templates(&pcaps);
    let expected = template_expectations(&pcaps);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let truth_tmp = truth.with_extension(format!("tmp{}", std::process::id()));
    let mut truth_out = BufWriter::new(File::create(&truth_tmp).expect("truth file"));
    writeln!(truth_out, "{TRUTH_COLUMNS}").expect("truth file");
    let mut write_truth = |client: &(IpAddr, u16), server: &(IpAddr, u16), t: &Template| {
        writeln!(truth_out, "{}", truth_line(client, server, t, &expected))
    };
    let generated = generate_with_truth(&tmp, &templates, spec, Some(&mut write_truth))
        .expect("generate capture");
    truth_out.flush().expect("truth file");
    drop(truth_out);
    std::fs::rename(&tmp, &path).expect("rename generated capture");
    std::fs::rename(&truth_tmp, &truth).expect("rename truth file");
    (path, truth, Some(generated))
}
