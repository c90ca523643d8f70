//! Capture-file readers against real captures and hand-built files.
//!
//! Expected values come from elsewhere than our code: frame counts and time stamps from tshark
//! (`MANIFEST.tsv` and `truth/*.jsonl` of the test corpus), record offsets from small
//! independent walkers below, and hand-built files written field by field from the specs.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

mod common;
use common::corpus_dir;
use tlscensus::source::{first_timestamp, linktype, CaptureReader, SourceError, SourceErrorKind};

const NETMON_FILE: &str = "prot-od-netcaps/[MS-CCROD]-captureALL/MS-CCROD_Example2Peer1Version1_Win2016_X64_Win10_X64_Domain_CePark.cap";
const PCAP_FILE: &str = "arkime/tests/pcap/mysql-tls.pcap";
const PCAPNG_FILE: &str = "nDPI/tests/cfgs/default/pcap/tls_1.3_unidirectional_client.pcapng";

fn corpus_bytes(rel: &str) -> Vec<u8> {
    let path = corpus_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct ManifestRow {
    path: String,
    format: String,
    packets: u64,
}

fn manifest() -> Vec<ManifestRow> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (path, format, packets) = (col("local_path"), col("file_format"), col("packets"));
    lines
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            ManifestRow {
                path: f[path].to_string(),
                format: f[format].to_string(),
                packets: f[packets].parse().expect("packets column"),
            }
        })
        .collect()
}

/// "secs.nanos" (tshark's `frame.time_epoch` with 9 decimals) → ns.
fn parse_time(s: &str) -> i64 {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let frac = format!("{frac:0<9}");
    secs.parse::<i64>().expect("secs") * 1_000_000_000 + frac[..9].parse::<i64>().expect("nanos")
}

/// Frame number → time stamp of every frame that tshark's truth file mentions.
fn truth_times(rel: &str) -> BTreeMap<u64, i64> {
    let path = corpus_dir().join("truth").join(format!("{rel}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("truth line is JSON");
            let frame = v["frame"].as_u64().expect("frame");
            (frame, parse_time(v["time"].as_str().expect("time")))
        })
        .collect()
}

/// What a reader produced: (frame number, ts, link type, data, orig_len) per frame, then the
/// error that ended it, if any.
type Frame = (u64, i64, u32, Vec<u8>, u32);

fn drain(reader: &mut CaptureReader) -> (Vec<Frame>, Option<SourceError>) {
    let mut frames = Vec::new();
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => frames.push((
                p.frame_number,
                p.ts_nanos,
                p.link_type,
                p.data.to_vec(),
                p.orig_len,
            )),
            Ok(None) => return (frames, None),
            Err(e) => {
                // A failed reader stays finished.
                assert!(
                    matches!(reader.next_packet(), Ok(None)),
                    "reader resumed after {e}"
                );
                return (frames, Some(e));
            }
        }
    }
}

/// Compares frames without printing megabytes of data on a mismatch.
fn assert_frames(got: &[Frame], want: &[Frame]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let head = |f: &Frame| (f.0, f.1, f.2, f.3.len(), f.4);
        assert!(g == w, "frame {i}: got {:?}, want {:?}", head(g), head(w));
    }
    assert_eq!(got.len(), want.len(), "number of frames");
}

fn from_bytes(label: &str, bytes: Vec<u8>) -> Result<CaptureReader, SourceError> {
    CaptureReader::from_reader(PathBuf::from(label), Box::new(Cursor::new(bytes)))
}

/// Reads bytes a few at a time, with spurious interruptions, like a slow pipe.
struct Trickle {
    data: Vec<u8>,
    pos: usize,
    calls: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls % 5 == 0 {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "signal"));
        }
        let n = (self.calls % 7 + 1)
            .min(buf.len())
            .min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[test]
fn every_corpus_file_matches_tshark() {
    let dir = corpus_dir();
    let rows = manifest();
    assert!(
        rows.len() >= 231,
        "manifest lists only {} captures",
        rows.len()
    );
    let mut failures = Vec::new();
    let mut compared = 0;
    for row in &rows {
        let path = dir.join(&row.path);
        let mut reader = match CaptureReader::open(&path) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: open: {e}", row.path));
                continue;
            }
        };
        if reader.format() != row.format {
            failures.push(format!(
                "{}: format {} != {}",
                row.path,
                reader.format(),
                row.format
            ));
        }
        let truth = truth_times(&row.path);
        let mut seen = HashMap::new();
        let (mut yielded, mut last_frame) = (0u64, 0u64);
        let error = loop {
            match reader.next_packet() {
                Ok(Some(p)) => {
                    yielded += 1;
                    if p.frame_number <= last_frame {
                        failures.push(format!(
                            "{}: frame {} after {last_frame}",
                            row.path, p.frame_number
                        ));
                    }
                    last_frame = p.frame_number;
                    if truth.contains_key(&p.frame_number) {
                        seen.insert(p.frame_number, p.ts_nanos);
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        if let Some(e) = error {
            failures.push(format!("{}: error after {yielded} frames: {e}", row.path));
            continue;
        }
        let counted = yielded + reader.skipped_frames();
        if counted != row.packets {
            failures.push(format!(
                "{}: {counted} frames, tshark counts {}",
                row.path, row.packets
            ));
        }
        if row.format != "netmon2" && (reader.skipped_frames() != 0 || last_frame != yielded) {
            failures.push(format!("{}: frame numbers not 1..={yielded}", row.path));
        }
        if reader.bytes_consumed() != std::fs::metadata(&path).expect("size").len()
            && row.format != "netmon2"
        {
            failures.push(format!(
                "{}: stopped at byte {}",
                row.path,
                reader.bytes_consumed()
            ));
        }
        // tshark prints 9 decimals whatever the file's resolution; µs and 100 ns stamps convert
        // exactly, so every file is compared to the nanosecond.
        for (frame, want) in &truth {
            match seen.get(frame) {
                Some(got) if got == want => compared += 1,
                Some(got) => failures.push(format!(
                    "{}: frame {frame} at {got}, tshark {want}",
                    row.path
                )),
                None => failures.push(format!(
                    "{}: frame {frame} of the truth not yielded",
                    row.path
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared > 1000, "only {compared} time stamps compared");
}

#[test]
fn netmon_events_are_counted_not_yielded() {
    let mut reader = CaptureReader::open(&corpus_dir().join(NETMON_FILE)).expect("open");
    let (frames, error) = drain(&mut reader);
    assert!(error.is_none(), "{error:?}");
    // `tshark -r <file> -Y eth | wc -l` gives 803; the other 477 of its 1280 frames are NetMon
    // event records (encap 187, or 188 when commented).
    assert_eq!(frames.len(), 803);
    assert_eq!(reader.skipped_frames(), 477);
    assert!(frames.iter().all(|f| f.2 == linktype::ETHERNET));
    // The ClientHello tshark reports in frame 675, at 1471423643.790216100.
    let ch = frames.iter().find(|f| f.0 == 675).expect("frame 675");
    assert_eq!(ch.1, 1_471_423_643_790_216_100);
    assert_eq!(ch.3.len() as u32, ch.4);
}

#[test]
fn streams_and_files_read_the_same() {
    for rel in [PCAP_FILE, PCAPNG_FILE, NETMON_FILE] {
        let bytes = corpus_bytes(rel);
        let mut file = CaptureReader::open(&corpus_dir().join(rel)).expect("open");
        let (want, err) = drain(&mut file);
        assert!(err.is_none());
        let trickle = Trickle {
            data: bytes.clone(),
            pos: 0,
            calls: 0,
        };
        let mut slow = CaptureReader::from_reader(rel.into(), Box::new(trickle)).expect("open");
        let (got, err) = drain(&mut slow);
        assert!(err.is_none(), "{err:?}");
        assert_frames(&got, &want);
        assert_eq!(slow.path(), Path::new(rel));
        if !rel.ends_with(".cap") {
            assert_eq!(slow.bytes_consumed(), bytes.len() as u64);
        }
        let first = first_timestamp(&corpus_dir().join(rel)).expect("first_timestamp");
        assert_eq!(first, Some(want[0].1));
    }
}

// ---------------------------------------------------------------------------------------------
// Cut files. Record offsets come from these walkers, written from the specs, not the readers.

/// pcap: (offset, length) of each packet record.
fn pcap_records(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push((at, 16 + caplen));
        at += 16 + caplen;
    }
    out
}

/// Little-endian pcapng: (offset, length, type) of each block.
fn pcapng_blocks(b: &[u8]) -> Vec<(usize, usize, u32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= b.len() {
        let t = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, len, t));
        at += len;
    }
    out
}

/// NetMon: frame table offset, and the frame offsets it lists.
fn netmon_table(b: &[u8]) -> (usize, Vec<usize>) {
    let u32_at = |at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    let (table, len) = (u32_at(24), u32_at(28));
    (table, (0..len / 4).map(|i| u32_at(table + 4 * i)).collect())
}

fn assert_truncated(err: Option<SourceError>, offset: usize, what: &str, label: &str) {
    let err = err.unwrap_or_else(|| panic!("{label}: no error"));
    assert!(
        matches!(err.kind, SourceErrorKind::Truncated(w) if w == what)
            && err.offset == offset as u64,
        "{label}: expected Truncated({what}) at {offset}, got {err}"
    );
    assert_eq!(err.path, Path::new(label));
    assert!(err.to_string().contains(label));
}

/// Cuts `bytes` at `cut`; expects `frames` whole frames, then Truncated(`what`) at `offset`
/// (or a clean end when `what` is empty).
fn check_cut(bytes: &[u8], cut: usize, frames: usize, what: &str, offset: usize) {
    let label = format!("cut-at-{cut}");
    let (got, err) = match from_bytes(&label, bytes[..cut].to_vec()) {
        Ok(mut r) => {
            let (got, err) = drain(&mut r);
            (got.len() as u64 + r.skipped_frames(), err)
        }
        Err(e) => (0, Some(e)),
    };
    assert_eq!(got, frames as u64, "{label}: frames before the cut");
    if what.is_empty() {
        assert!(err.is_none(), "{label}: {err:?}");
    } else {
        assert_truncated(err, offset, what, &label);
    }
}

#[test]
fn cut_pcap() {
    let b = corpus_bytes(PCAP_FILE);
    let recs = pcap_records(&b);
    assert_eq!(recs.len(), 10);
    check_cut(&b, 0, 0, "file header", 0);
    check_cut(&b, 3, 0, "file header", 0);
    check_cut(&b, 13, 0, "file header", 0);
    check_cut(&b, 24, 0, "", 0);
    for k in [0, 4, 9] {
        let (at, len) = recs[k];
        check_cut(&b, at, k, "", 0);
        check_cut(&b, at + 7, k, "packet record", at);
        check_cut(&b, at + 16, k, "packet record", at);
        check_cut(&b, at + len - 1, k, "packet record", at);
    }
}

#[test]
fn cut_pcapng() {
    let b = corpus_bytes(PCAPNG_FILE);
    let blocks = pcapng_blocks(&b);
    let shb_len = blocks[0].1;
    check_cut(&b, 2, 0, "file header", 0);
    check_cut(&b, 10, 0, "section header block", 0);
    check_cut(&b, shb_len - 4, 0, "section header block", 0);
    check_cut(&b, shb_len, 0, "", 0);
    let mut frames = 0;
    for &(at, len, t) in &blocks[1..] {
        let name = match t {
            1 => "interface description block",
            5 => "interface statistics block",
            6 => "enhanced packet block",
            _ => "block",
        };
        check_cut(&b, at, frames, "", 0);
        check_cut(&b, at + 5, frames, "block header", at);
        check_cut(&b, at + 8, frames, name, at);
        check_cut(&b, at + len - 1, frames, name, at);
        frames += usize::from(t == 6);
    }
    assert_eq!(frames, 9);
}

#[test]
fn cut_netmon() {
    let b = corpus_bytes(NETMON_FILE);
    let (table, offsets) = netmon_table(&b);
    assert_eq!(offsets.len(), 1280);
    check_cut(&b, 3, 0, "file header", 0);
    check_cut(&b, 40, 0, "file header", 0);
    // The frame table is at the end, so a cut file has none; frames are then found by walking.
    check_cut(&b, 72, 0, "frame table", table);
    for k in [0, 1, 640, 1279] {
        let at = offsets[k];
        check_cut(&b, at, k, "frame table", table);
        check_cut(&b, at + 9, k, "frame record", at);
        check_cut(&b, at + 20, k, "frame record", at);
        check_cut(
            &b,
            offsets.get(k + 1).copied().unwrap_or(table) - 1,
            k,
            "frame record",
            at,
        );
    }
    check_cut(&b, table, 1280, "frame table", table);
    check_cut(&b, table + 6, 1280, "frame table", table);
    // Frame table whole, comment section cut: every frame, then the cut section.
    let comments = u32::from_le_bytes(b[40..44].try_into().unwrap()) as usize;
    assert!(comments >= table + 4 * 1280);
    check_cut(&b, comments + 10, 1280, "comment data", comments);

    // Same through a real file, which is read with seeks rather than whole.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("cut-netmon.cap");
    let at = offsets[700];
    std::fs::write(&path, &b[..at + 30]).expect("write");
    let mut reader = CaptureReader::open(&path).expect("open");
    let (frames, err) = drain(&mut reader);
    assert_eq!(frames.len() as u64 + reader.skipped_frames(), 700);
    let err = err.expect("error");
    assert!(
        matches!(err.kind, SourceErrorKind::Truncated("frame record")) && err.offset == at as u64
    );
    assert_eq!(err.path, path);
}

// ---------------------------------------------------------------------------------------------
// Corrupt files.

fn outcome(label: &str, bytes: Vec<u8>) -> (usize, Option<SourceError>) {
    match from_bytes(label, bytes) {
        Ok(mut r) => {
            let (frames, err) = drain(&mut r);
            (frames.len() + r.skipped_frames() as usize, err)
        }
        Err(e) => (0, Some(e)),
    }
}

fn assert_corrupt(bytes: Vec<u8>, frames: usize, offset: usize, label: &str) {
    let (got, err) = outcome(label, bytes);
    assert_eq!(got, frames, "{label}: frames before the error");
    let err = err.unwrap_or_else(|| panic!("{label}: no error"));
    assert!(
        matches!(err.kind, SourceErrorKind::Corrupt(_)) && err.offset == offset as u64,
        "{label}: expected Corrupt at {offset}, got {err}"
    );
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn unknown_and_empty_inputs() {
    let (_, err) = outcome("text", b"hello world".to_vec());
    assert!(matches!(
        err.expect("error").kind,
        SourceErrorKind::UnknownFormat(0x6865_6c6c)
    ));
    for rel in [PCAP_FILE, PCAPNG_FILE, NETMON_FILE] {
        let mut b = corpus_bytes(rel);
        b[0] ^= 0xFF;
        let (_, err) = outcome(rel, b);
        let err = err.expect("error");
        assert!(
            matches!(err.kind, SourceErrorKind::UnknownFormat(_)) && err.offset == 0,
            "{err}"
        );
    }
    let (_, err) = outcome("empty", Vec::new());
    assert_truncated(err, 0, "file header", "empty");
    let missing = CaptureReader::open(Path::new("/nonexistent/x.pcap"))
        .err()
        .expect("error");
    assert!(matches!(missing.kind, SourceErrorKind::Io(_)));
}

#[test]
fn corrupt_pcap() {
    let b = corpus_bytes(PCAP_FILE);
    let recs = pcap_records(&b);
    let mut v = b.clone();
    v[4] = 7; // major version
    assert_corrupt(v, 0, 0, "version");
    for k in [0, 5] {
        let mut v = b.clone();
        put_u32(&mut v, recs[k].0 + 8, 0x7FFF_FFFF);
        assert_corrupt(v, k, recs[k].0, "caplen");
    }
}

#[test]
fn corrupt_pcapng() {
    let b = corpus_bytes(PCAPNG_FILE);
    let blocks = pcapng_blocks(&b);
    let (idb, epb) = (blocks[1].0, blocks[2].0);
    assert_eq!((blocks[1].2, blocks[2].2), (1, 6));
    let mut v = b.clone();
    v[8] ^= 0xFF; // byte-order magic
    assert_corrupt(v, 0, 0, "bom");
    let mut v = b.clone();
    v[12] = 2; // major version
    assert_corrupt(v, 0, 0, "version");
    for bad_len in [0, 8, 13, 0xFFFF_FFFC] {
        let mut v = b.clone();
        put_u32(&mut v, idb + 4, bad_len);
        assert_corrupt(v, 0, idb, "idb length");
    }
    let mut v = b.clone();
    let trailer = epb + blocks[2].1 - 4;
    put_u32(&mut v, trailer, 64);
    assert_corrupt(v, 0, epb, "trailing length");
    let mut v = b.clone();
    put_u32(&mut v, epb + 8, 3); // interface 3 is not declared
    assert_corrupt(v, 0, epb, "interface");
    let mut v = b.clone();
    put_u32(&mut v, epb + 20, 0x10_0000); // captured length past the block
    assert_corrupt(v, 0, epb, "caplen");
}

#[test]
fn corrupt_netmon() {
    let b = corpus_bytes(NETMON_FILE);
    let (table, offsets) = netmon_table(&b);
    let mut v = b.clone();
    v[5] = 1; // major version
    assert_corrupt(v, 0, 0, "version");
    let mut v = b.clone();
    put_u32(&mut v, 28, 4 * 1280 + 2); // table length not a multiple of 4
    assert_corrupt(v, 0, 0, "table length");
    let mut v = b.clone();
    put_u32(&mut v, table + 4 * 100, 0xFFFF_FF00); // entry 100 points outside the file
    assert_corrupt(v, 100, table + 4 * 100, "table entry");
    let mut v = b.clone();
    put_u32(&mut v, offsets[200] + 12, 0x7FFF_FFFF); // captured length
    assert_corrupt(v, 200, offsets[200], "caplen");
}

/// Flips bits all over the headers and first records: any result is fine except a panic or an
/// error pointing past the end of the input.
#[test]
fn flipped_bytes_never_panic() {
    for rel in [PCAP_FILE, PCAPNG_FILE, NETMON_FILE] {
        let b = corpus_bytes(rel);
        let mut positions: Vec<usize> = (0..256.min(b.len())).collect();
        if rel == NETMON_FILE {
            let (table, offsets) = netmon_table(&b);
            positions = (0..72)
                .chain(table..table + 16)
                .chain(offsets[3]..offsets[3] + 20)
                .collect();
        }
        for &at in &positions {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut v = b.clone();
                v[at] ^= mask;
                // NetMon errors may name a frame-table offset beyond a cut file.
                let limit = if rel == NETMON_FILE {
                    u64::from(u32::MAX)
                } else {
                    v.len() as u64
                };
                let (_, err) = outcome(rel, v);
                if let Some(e) = err {
                    assert!(e.offset <= limit, "{rel} byte {at}: {e}");
                    assert!(
                        !matches!(e.kind, SourceErrorKind::Io(_)),
                        "{rel} byte {at}: {e}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built files (draft-ietf-opsawg-pcap, draft-ietf-opsawg-pcapng, NetMon 3.x help).

#[derive(Clone, Copy)]
enum Order {
    Le,
    Be,
}

impl Order {
    fn u16(self, v: u16) -> [u8; 2] {
        match self {
            Order::Le => v.to_le_bytes(),
            Order::Be => v.to_be_bytes(),
        }
    }
    fn u32(self, v: u32) -> [u8; 4] {
        match self {
            Order::Le => v.to_le_bytes(),
            Order::Be => v.to_be_bytes(),
        }
    }
}

/// (seconds, sub-seconds, data, orig_len) of the frames of the hand-built files; one frame is
/// larger than the reader's initial 1 MiB buffer.
fn sample_frames() -> Vec<(u32, u32, Vec<u8>, u32)> {
    vec![
        (1_700_000_000, 0, b"\x01\x02\x03".to_vec(), 3),
        (1_700_000_001, 999_999, vec![0xAB; 60], 1514),
        (4_000_000_000, 123, Vec::new(), 0),
        (
            1,
            500_000,
            (0..3_000_000u32).map(|i| i as u8).collect(),
            3_000_000,
        ),
        (1_700_000_002, 7, vec![0x55; 61], 61),
    ]
}

fn build_pcap(order: Order, nanos: bool) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(order.u32(if nanos { 0xA1B2_3C4D } else { 0xA1B2_C3D4 }));
    f.extend(order.u16(2));
    f.extend(order.u16(4));
    f.extend(order.u32(0)); // reserved (thiszone)
    f.extend(order.u32(0)); // reserved (sigfigs)
    f.extend(order.u32(262_144)); // snaplen
                                  // LINKTYPE_LINUX_SLL with "FCS length 2 (16-bit words) present" in the upper bits.
    f.extend(order.u32(2 << 28 | 1 << 26 | 113));
    for (secs, frac, data, orig) in sample_frames() {
        f.extend(order.u32(secs));
        f.extend(order.u32(frac));
        f.extend(order.u32(data.len() as u32));
        f.extend(order.u32(orig));
        f.extend(&data);
    }
    f
}

#[test]
fn hand_built_pcap_round_trips() {
    for order in [Order::Le, Order::Be] {
        for nanos in [false, true] {
            let file = build_pcap(order, nanos);
            let len = file.len() as u64;
            let mut r = from_bytes("hand.pcap", file).expect("open");
            assert_eq!(r.format(), "pcap");
            let (frames, err) = drain(&mut r);
            assert!(err.is_none(), "{err:?}");
            let scale = if nanos { 1 } else { 1000 };
            let want: Vec<Frame> = (1..)
                .zip(sample_frames())
                .map(|(n, (secs, frac, data, orig))| {
                    let ts = i64::from(secs) * 1_000_000_000 + i64::from(frac) * scale;
                    (n, ts, linktype::LINUX_SLL, data, orig)
                })
                .collect();
            assert_frames(&frames, &want);
            assert_eq!(r.bytes_consumed(), len);
        }
    }
}

fn block(order: Order, block_type: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().next_multiple_of(4);
    let len = (12 + padded) as u32;
    let mut b = Vec::new();
    b.extend(order.u32(block_type));
    b.extend(order.u32(len));
    b.extend(body);
    b.resize(8 + padded, 0);
    b.extend(order.u32(len));
    b
}

fn option(order: Order, code: u16, value: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend(order.u16(code));
    o.extend(order.u16(value.len() as u16));
    o.extend(value);
    o.resize(4 + value.len().next_multiple_of(4), 0);
    o
}

fn shb(order: Order) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(order.u32(0x1A2B_3C4D));
    body.extend(order.u16(1));
    body.extend(order.u16(0));
    body.extend([0xFF; 8]); // section length unknown
    body.extend(option(order, 4, b"hand-built")); // shb_userappl
    body.extend(option(order, 0, &[]));
    block(order, 0x0A0D_0D0A, &body)
}

fn idb(order: Order, link: u16, snaplen: u32, options: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(order.u16(link));
    body.extend(order.u16(0));
    body.extend(order.u32(snaplen));
    for o in options {
        body.extend(o);
    }
    if !options.is_empty() {
        body.extend(option(order, 0, &[]));
    }
    block(order, 1, &body)
}

/// Enhanced (type 6) or obsolete (type 2) packet block.
fn packet_block(
    order: Order,
    block_type: u32,
    iface: u32,
    ts: u64,
    data: &[u8],
    orig: u32,
) -> Vec<u8> {
    let mut body = Vec::new();
    if block_type == 6 {
        body.extend(order.u32(iface));
    } else {
        body.extend(order.u16(iface as u16));
        body.extend(order.u16(0)); // drops count
    }
    body.extend(order.u32((ts >> 32) as u32));
    body.extend(order.u32(ts as u32));
    body.extend(order.u32(data.len() as u32));
    body.extend(order.u32(orig));
    body.extend(data);
    body.resize(body.len().next_multiple_of(4), 0);
    body.extend(option(order, 1, b"a comment"));
    body.extend(option(order, 0, &[]));
    block(order, block_type, &body)
}

fn spb(order: Order, orig: u32, data: &[u8]) -> Vec<u8> {
    let mut body = order.u32(orig).to_vec();
    body.extend(data);
    block(order, 3, &body)
}

#[test]
fn hand_built_pcapng_round_trips() {
    let (be, le) = (Order::Be, Order::Le);
    let big = vec![0x42; 2_500_000];
    let mut f = Vec::new();
    // Section 1, big-endian: interface 0 Ethernet in µs (default), interface 1 raw IP in ms
    // with a 100 s offset.
    f.extend(shb(be));
    f.extend(idb(be, 1, 0, &[]));
    f.extend(idb(
        be,
        101,
        0,
        &[option(be, 9, &[3]), option(be, 14, &100u64.to_be_bytes())],
    ));
    f.extend(packet_block(be, 6, 0, 1_700_000_000_123_456, b"eth", 60));
    f.extend(block(be, 4, &[0, 0, 0, 0])); // name resolution: skipped
    f.extend(packet_block(be, 6, 1, 1_700_000_000_123, &big, 2_500_000));
    // Custom block (PEN 32473) and systemd journal export: numbered by Wireshark, not frames.
    f.extend(block(be, 0x0000_0BAD, b"\0\0\x7e\xd9custom"));
    f.extend(block(
        be,
        9,
        b"__REALTIME_TIMESTAMP=1700000000000000\nMESSAGE=hi\n",
    ));
    f.extend(packet_block(be, 2, 1, 5, b"obsolete", 8));
    f.extend(spb(be, 7, b"simple!")); // interface 0, snaplen 0: all 7 bytes
                                      // Section 2, little-endian: interfaces are numbered afresh.
    f.extend(shb(le));
    f.extend(idb(le, 276, 4, &[option(le, 9, &[0x8A])])); // 2^-10 s units, snaplen 4
    f.extend(idb(
        le,
        113,
        0,
        &[option(le, 9, &[9]), option(le, 14, &(-10i64).to_le_bytes())],
    ));
    f.extend(packet_block(le, 6, 0, 3 * 1024 + 512, b"abcd", 4));
    f.extend(spb(le, 10, b"0123")); // snaplen 4: only 4 of 10 bytes stored
    f.extend(block(le, 5, &[0; 12])); // interface statistics: skipped
    f.extend(packet_block(le, 6, 1, 1_700_000_000_999_999_999, b"ns", 2));
    let len = f.len() as u64;

    let mut r = from_bytes("hand.pcapng", f).expect("open");
    assert_eq!(r.format(), "pcapng");
    let (frames, err) = drain(&mut r);
    assert!(err.is_none(), "{err:?}");
    let want: Vec<Frame> = vec![
        (1, 1_700_000_000_123_456_000, 1, b"eth".to_vec(), 60),
        (2, 1_700_000_100_123_000_000, 101, big, 2_500_000),
        (5, 100_005_000_000, 101, b"obsolete".to_vec(), 8),
        (6, 0, 1, b"simple!".to_vec(), 7),
        (7, 3_500_000_000, 276, b"abcd".to_vec(), 4),
        (8, 0, 276, b"0123".to_vec(), 10),
        (9, 1_699_999_990_999_999_999, 113, b"ns".to_vec(), 2),
    ];
    assert_frames(&frames, &want);
    assert_eq!(r.skipped_frames(), 2);
    assert_eq!(r.bytes_consumed(), len);

    // A packet for an interface the current section has not declared is corrupt.
    let mut g = shb(le);
    g.extend(idb(le, 1, 0, &[]));
    let bad_at = g.len();
    g.extend(packet_block(le, 6, 1, 0, b"x", 1));
    assert_corrupt(g, 0, bad_at, "undeclared interface");
}

/// NetMon 2.1: per-frame media type, no UTC stamp; the frame table sets the order.
#[test]
fn hand_built_netmon_2_1() {
    let mut f = vec![0u8; 72];
    f[..4].copy_from_slice(b"GMBU");
    f[4] = 1; // minor
    f[5] = 2; // major
    f[6..8].copy_from_slice(&1u16.to_le_bytes());
    // Capture start: 2020-02-29 (a Saturday) 12:34:56.789.
    for (i, v) in [2020u16, 2, 6, 29, 12, 34, 56, 789].iter().enumerate() {
        f[8 + 2 * i..10 + 2 * i].copy_from_slice(&v.to_le_bytes());
    }
    let start: i64 = 1_582_979_696_789_000_000;
    let mut offsets = Vec::new();
    let records: [(u64, &[u8], u16); 6] = [
        (0, b"ethernet frame", 1),
        (5, b"event", 0xFFE0),    // counted, skipped
        (6, b"adapters", 0xFFFD), // neither counted nor yielded
        (1_000_001, b"raw ip", 0xE000 | 101),
        (u64::MAX - 999, b"before start", 1), // -1000 µs
        (7, b"filter", 0xFFFF),               // counted, skipped
    ];
    for (delta, data, media) in records {
        offsets.push(f.len() as u32);
        f.extend(delta.to_le_bytes());
        f.extend((data.len() as u32 + 4).to_le_bytes());
        f.extend((data.len() as u32).to_le_bytes());
        f.extend(data);
        f.extend(media.to_le_bytes());
    }
    // Table order differs from file order: records 3 and 0 swap places.
    offsets.swap(0, 3);
    let table_at = f.len() as u32;
    f[24..28].copy_from_slice(&table_at.to_le_bytes());
    f[28..32].copy_from_slice(&(4 * offsets.len() as u32).to_le_bytes());
    for o in &offsets {
        f.extend(o.to_le_bytes());
    }
    let mut r = from_bytes("hand.cap", f).expect("open");
    assert_eq!(r.format(), "netmon2");
    let (frames, err) = drain(&mut r);
    assert!(err.is_none(), "{err:?}");
    let want: Vec<Frame> = vec![
        (
            1,
            start + 1_000_001_000,
            linktype::RAW,
            b"raw ip".to_vec(),
            10,
        ),
        (3, start, linktype::ETHERNET, b"ethernet frame".to_vec(), 18),
        (
            4,
            start - 1_000_000,
            linktype::ETHERNET,
            b"before start".to_vec(),
            16,
        ),
    ];
    assert_frames(&frames, &want);
    assert_eq!(r.skipped_frames(), 2);
}

#[test]
fn first_timestamp_of_empty_and_real_files() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let empty = dir.join("header-only.pcap");
    std::fs::write(&empty, &build_pcap(Order::Le, false)[..24]).expect("write");
    assert_eq!(first_timestamp(&empty).expect("read"), None);
    // Files whose frame 1 tshark reports: its time is the first time stamp.
    let mut checked = 0;
    for row in manifest() {
        if let Some(&want) = truth_times(&row.path).get(&1) {
            let got = first_timestamp(&corpus_dir().join(&row.path)).expect("read");
            assert_eq!(got, Some(want), "{}", row.path);
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} files checked");
}
