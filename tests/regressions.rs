//! One test per bug the fuzz targets (`fuzz/`) found, named after the bug, and per bug of
//! the same kind found in review. Inputs are inline or in `fuzz/regressions/<target>/`,
//! where they also seed the fuzzer.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use tlscensus::engine::Config;
use tlscensus::pipeline::Reading;
use tlscensus::source::CaptureReader;
use tlscensus::tls::stream::{End, Event, TlsStream};

fn regression(target: &str, name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target)
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn reader(bytes: Vec<u8>) -> CaptureReader {
    CaptureReader::from_reader(PathBuf::from("regression"), Box::new(Cursor::new(bytes)))
        .expect("the file header is readable")
}

/// Peak resident memory of this process (Linux `VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// capture_reader: a Network Monitor file whose capture start time is in year 2300 overflowed
/// the nanosecond conversion (a panic in debug builds, a wrapped time in release builds).
/// Times past 2262 are clamped to the largest one, as pcap and pcapng times are.
#[test]
fn netmon_start_time_after_2262() {
    // The fuzzer's input: a header the reader then refuses (no frame table), cleanly.
    let found = regression("capture_reader", "netmon_start_time_after_2262");
    assert!(CaptureReader::from_reader("fuzzed".into(), Box::new(Cursor::new(found))).is_err());

    // A well-formed NetMon 2.0 file (layout in src/source/netmon.rs) starting 2300-01-01,
    // with one 60-byte Ethernet frame at offset 72 and a one-entry frame table after it.
    let mut file = b"GMBU".to_vec();
    file.extend_from_slice(&[0, 2]); // version 2.0
    file.extend_from_slice(&1u16.to_le_bytes()); // media: Ethernet
    for field in [2300u16, 1, 0, 1, 0, 0, 0, 0] {
        file.extend_from_slice(&field.to_le_bytes()); // SYSTEMTIME
    }
    let table_at = 72 + 16 + 60;
    file.extend_from_slice(&(table_at as u32).to_le_bytes());
    file.extend_from_slice(&4u32.to_le_bytes());
    file.resize(72, 0);
    file.extend_from_slice(&0u64.to_le_bytes()); // µs after the start
    file.extend_from_slice(&60u32.to_le_bytes());
    file.extend_from_slice(&60u32.to_le_bytes());
    file.extend_from_slice(&[0; 60]);
    file.extend_from_slice(&72u32.to_le_bytes());
    assert_eq!(file.len(), table_at + 4);

    let mut reader = reader(file);
    let packet = reader.next_packet().unwrap().expect("one frame");
    // i64 nanoseconds end in April 2262.
    assert_eq!(packet.ts_nanos, i64::MAX);
    assert_eq!(packet.data.len(), 60);
}

/// A pcap file (Ethernet) whose one record header claims a 200 MiB frame, followed by a
/// few bytes.
fn pcap_claiming_200_mib() -> Vec<u8> {
    let mut file = Vec::new();
    for field in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        file.extend_from_slice(&field.to_le_bytes()); // pcap file header, Ethernet
    }
    let claimed = 200u32 << 20;
    for field in [0, 0, claimed, claimed] {
        file.extend_from_slice(&field.to_le_bytes()); // record header
    }
    file.extend_from_slice(b"only a few bytes follow");
    file
}

/// Run `read` and check that it left the process's peak memory less than 64 MiB higher.
fn within_64_mib_of_peak<T>(read: impl FnOnce() -> T) -> T {
    let before = peak_rss_kib();
    let out = read();
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        assert!(
            after - before < 64 << 10,
            "peak memory grew by {} MiB",
            (after - before) >> 10
        );
    }
    out
}

/// capture_reader: a record header claiming a 200 MiB frame made the reader grow its buffer
/// to 256 MiB (zero-filled) before reading a byte of it, so a 50-byte corrupt file cost a
/// quarter gigabyte and a tenth of a second. The buffer now grows as bytes arrive.
#[test]
fn pcap_length_field_does_not_allocate_what_it_claims() {
    let error = within_64_mib_of_peak(|| {
        let mut reader = reader(pcap_claiming_200_mib());
        reader.next_packet().expect_err("the frame is cut")
    });
    assert!(
        error.to_string().contains("ends in the middle of"),
        "{error}"
    );
}

/// split reading (found in review): the same corrupt file, read by the pipeline's workers
/// (each reads its share of a pcap file by position): the record that straddles a block's
/// end was read by growing the block to what its length field claimed, zero-filled, before
/// reading it.
#[test]
fn split_reading_does_not_allocate_what_a_length_field_claims() {
    let path = std::env::temp_dir().join(format!(
        "tlscensus-regression-split-{}.pcap",
        std::process::id()
    ));
    std::fs::write(&path, pcap_claiming_200_mib()).unwrap();
    // Mapped too: there the block's mapping is extended to what the length field claims
    // only if the file is that long.
    for reading in [Reading::Split, Reading::Map] {
        let run = within_64_mib_of_peak(|| {
            let files = std::slice::from_ref(&path);
            common::run_reading(files, Config::default(), 2, reading)
        });
        assert_eq!(run.errors.len(), 1, "{reading:?}: {:?}", run.errors);
        let error = run.errors[0].to_string();
        assert!(
            error.contains("ends in the middle of"),
            "{reading:?}: {error}"
        );
    }
    let _ = std::fs::remove_file(&path);
}

/// tls_stream: after a malformed hello ended the stream, the rest of the same piece was
/// still parsed, so what followed (here a hello claiming 16 MiB) changed the stream's end
/// (and could emit events after the end) depending on where TCP cut the pieces.
#[test]
fn parsing_after_malformed_hello() {
    // One handshake record: an empty ClientHello (malformed: no version, no random), then
    // the header of a ClientHello of 2^24 - 1 bytes.
    let stream = [
        0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0xff,
    ];
    let mut whole = TlsStream::new();
    let mut events: Vec<Event> = Vec::new();
    whole.feed(&stream, &mut |e| events.push(e));
    assert_eq!(whole.end(), Some(End::Malformed));
    assert!(events.is_empty());
    let mut bytewise = TlsStream::new();
    for b in &stream {
        bytewise.feed(std::slice::from_ref(b), &mut |e| events.push(e));
    }
    assert_eq!(bytewise.end(), Some(End::Malformed));
    assert!(events.is_empty());

    // The fuzzer's input, through the same check as the tls_stream target.
    let found = regression("tls_stream", "parsing_after_malformed_hello");
    let (control, rest) = found.split_first().unwrap();
    let (sizes, data) = rest.split_at(usize::from(control & 0x0f));
    let mut whole = TlsStream::new();
    whole.feed(data, &mut |_| {});
    let mut split = TlsStream::new();
    let mut rest = data;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = usize::from(*size).clamp(1, rest.len());
        split.feed(&rest[..n], &mut |_| {});
        rest = &rest[n..];
    }
    assert_eq!(whole.end(), split.end());
}

/// starttls: a refusal of the upgrade let the server's lines after it in the same piece be
/// read (and counted as dialogue), while the same lines in a later piece were not: the
/// dialogue's answers depended on where TCP cut the stream. The answer now ends the
/// dialogue either way, as `Dialogue::done` says.
#[test]
fn lines_after_a_refusal() {
    use tlscensus::proto::starttls::{Dialogue, MailProtocol, Reply};
    let refusal = b"454 4.7.0 TLS not available\r\n";
    let after = b"250 something later\r\n";
    let mut reply_and_more = refusal.to_vec();
    reply_and_more.extend_from_slice(after);

    let mut whole = Dialogue::new(MailProtocol::Smtp);
    whole.server_bytes(b"220 mx.example.test ESMTP\r\n");
    whole.client_bytes(b"EHLO client.example.test\r\n");
    whole.server_bytes(b"250-mx.example.test\r\n250 STARTTLS\r\n");
    whole.client_bytes(b"STARTTLS\r\n");
    let mut split = whole.clone();

    assert_eq!(whole.server_bytes(&reply_and_more), refusal.len());
    assert_eq!(split.server_bytes(refusal), refusal.len());
    assert_eq!(split.server_bytes(after), 0);
    for d in [&whole, &split] {
        assert!(d.done());
        assert!(matches!(d.reply(), Some(Reply::Refused { code }) if code.as_str() == "454"));
    }
}
