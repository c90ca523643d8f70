//! Mapped and `read()` access give the same frames and the same errors: every corpus capture
//! and our own, whole and cut short at several places (a cut inside a header, inside a frame,
//! on a record boundary), and the same through a plain byte stream.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use tlscensus::source::{Access, CaptureReader};

/// Everything a reader hands out for a file: frames, then the error that stopped it, if any.
fn frames(open: impl FnOnce() -> Result<CaptureReader, tlscensus::source::SourceError>) -> String {
    let mut reader = match open() {
        Ok(reader) => reader,
        Err(err) => return format!("open error: {err}"),
    };
    let mut out = String::new();
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => out.push_str(&format!(
                "{} {} {} {} {:x?}\n",
                p.frame_number, p.ts_nanos, p.link_type, p.orig_len, p.data
            )),
            Ok(None) => break,
            Err(err) => {
                out.push_str(&format!("error: {err}\n"));
                break;
            }
        }
    }
    out
}

fn same_through_every_access(path: &Path) {
    let mapped = frames(|| CaptureReader::open_with(path, Access::Map));
    let read = frames(|| CaptureReader::open_with(path, Access::Read));
    assert_eq!(mapped, read, "{}", path.display());
    // A stream names itself by its label, so errors read the same too.
    let bytes = std::fs::read(path).unwrap();
    let stream =
        frames(|| CaptureReader::from_reader(path.to_path_buf(), Box::new(Cursor::new(bytes))));
    assert_eq!(mapped, stream, "{} as a stream", path.display());
}

#[test]
fn mapped_read_and_streamed_files_agree() {
    let corpus = common::corpus_dir();
    let mut files: Vec<PathBuf> = common::manifest()
        .into_iter()
        .map(|(p, _)| corpus.join(p))
        .collect();
    files.extend(
        std::fs::read_dir(common::pcaps_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng")),
    );
    assert!(files.len() > 100, "{} files", files.len());
    let dir = std::env::temp_dir().join(format!("tlscensus-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (n, path) in files.iter().enumerate() {
        same_through_every_access(path);
        // Cut copies of a spread of files: inside the file header, early, at the middle,
        // one byte short of the end.
        if n % 7 == 0 {
            let bytes = std::fs::read(path).unwrap();
            let len = bytes.len();
            for cut in [3, 30, len / 3, len / 2 + 1, len.saturating_sub(1)] {
                let cut_path = dir.join(format!("cut-{n}-{cut}"));
                std::fs::write(&cut_path, &bytes[..cut.min(len)]).unwrap();
                same_through_every_access(&cut_path);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file several map windows long, built from a real capture's records repeated, so records
/// straddle window boundaries at many different offsets.
#[test]
fn records_straddling_map_windows_are_whole() {
    let original = std::fs::read(common::pcaps_dir().join("tls12.pcap")).unwrap();
    let (header, records) = original.split_at(24);
    let mut big = header.to_vec();
    while big.len() < 10 << 20 {
        big.extend_from_slice(records);
    }
    let path = std::env::temp_dir().join(format!("tlscensus-windows-{}.pcap", std::process::id()));
    std::fs::write(&path, &big).unwrap();
    let mapped = frames(|| CaptureReader::open_with(&path, Access::Map));
    let read = frames(|| CaptureReader::open_with(&path, Access::Read));
    let _ = std::fs::remove_file(&path);
    assert!(
        mapped.lines().count() > 10_000,
        "{} frames",
        mapped.lines().count()
    );
    assert!(
        !mapped.contains("error"),
        "a whole file reads without error"
    );
    assert_eq!(mapped, read);
}
