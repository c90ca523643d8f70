//! The spool: batches of rows that could not be delivered yet, one file per batch in a
//! directory, named so that name order is the order they were made in (the run's start,
//! then the batch number). The sender replays them oldest first, in this run or the next
//! one with the same directory, and deletes each once ClickHouse has it.
//!
//! A batch is written beside its final name and renamed into place, so a crash leaves no
//! half batch to replay. The directory is bounded: a batch that would pass the bound is not
//! written, and the caller counts its rows as dropped.
//!
//! Writing is split in three so that no lock is held while the disk works: [`Spool::reserve`]
//! takes the batch's place in the order and its share of the bound (quick, under the
//! caller's lock), [`write_batch`] writes the file (no lock), and [`Spool::commit`] or
//! [`Spool::abort`] settles it. A reserved batch counts for [`Spool::oldest`] at once, so the
//! sender waits for it rather than send a newer batch first.
//!
//! Two runs given the same directory at once would both replay its files; the table's row
//! key makes the copies collapse into one (see [`super::schema`]), so nothing counts twice.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::SinkError;

/// The extension of a complete batch file.
const BATCH_EXT: &str = "jsonl";

/// Default bound: 4 GiB, about 2.5 million records (benches/NOTES.md has the sizes).
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Batch file name → its size, in replay order.
    files: BTreeMap<String, u64>,
    /// Batches reserved and being written (not yet readable), with their sizes.
    pending: BTreeMap<String, u64>,
    /// Bytes of `files` and `pending`.
    bytes: u64,
}

/// What [`Spool::reserve`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Write the batch with [`write_batch`], then [`Spool::commit`] or [`Spool::abort`] it.
    Granted,
    /// The spool has (or is writing) this batch already: nothing to do.
    Kept,
    /// The batch would pass the bound: not kept; its rows are dropped.
    Full,
}

impl Spool {
    /// Open (creating it if need be) the spool in `dir`, and list the batches earlier runs
    /// left there.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SinkError> {
        let fail = |cause| SinkError::Spool {
            path: dir.to_path_buf(),
            cause,
        };
        fs::create_dir_all(dir).map_err(fail)?;
        let mut files = BTreeMap::new();
        let mut bytes = 0;
        for entry in fs::read_dir(dir).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                // A batch a crash interrupted: its rows are still in the batch it was
                // meant to leave (or were never acknowledged to anyone).
                let _ = fs::remove_file(entry.path());
            } else if Path::new(&name).extension().is_some_and(|e| e == BATCH_EXT) {
                let len = entry.metadata().map_err(fail)?.len();
                bytes += len;
                files.insert(name, len);
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            files,
            pending: BTreeMap::new(),
            bytes,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file name of batch `id` of run `run`: name order is replay order.
    pub fn name_of(run: &str, id: u64) -> String {
        format!("{run}-{id:012}.{BATCH_EXT}")
    }

    /// Take batch `name`'s place in the order and `len` bytes of the bound.
    pub fn reserve(&mut self, name: &str, len: u64) -> Reservation {
        if self.files.contains_key(name) || self.pending.contains_key(name) {
            return Reservation::Kept;
        }
        if self.bytes + len > self.max_bytes {
            return Reservation::Full;
        }
        self.pending.insert(name.to_string(), len);
        self.bytes += len;
        Reservation::Granted
    }

    /// A reserved batch is on disk: it can be read and replayed.
    pub fn commit(&mut self, name: &str) {
        if let Some(len) = self.pending.remove(name) {
            self.files.insert(name.to_string(), len);
        }
    }

    /// A reserved batch could not be written: give its place and bytes back.
    pub fn abort(&mut self, name: &str) {
        if let Some(len) = self.pending.remove(name) {
            self.bytes -= len;
        }
    }

    /// Keep `rows` as batch `name` at once (reserve, write, commit). `Ok(false)` when the
    /// spool is full (nothing written).
    pub fn put(&mut self, name: &str, rows: &[u8]) -> Result<bool, SinkError> {
        match self.reserve(name, rows.len() as u64) {
            Reservation::Kept => return Ok(true),
            Reservation::Full => return Ok(false),
            Reservation::Granted => {}
        }
        match write_batch(&self.dir, name, rows) {
            Ok(()) => {
                self.commit(name);
                Ok(true)
            }
            Err(e) => {
                self.abort(name);
                Err(e)
            }
        }
    }

    /// The oldest batch's name, if any, written or still being written.
    pub fn oldest(&self) -> Option<&str> {
        let files = self.files.keys().next();
        let pending = self.pending.keys().next();
        match (files, pending) {
            (Some(f), Some(p)) => Some(f.min(p)),
            (f, p) => f.or(p),
        }
        .map(String::as_str)
    }

    /// Whether batch `name` is reserved but not yet on disk.
    pub fn is_pending(&self, name: &str) -> bool {
        self.pending.contains_key(name)
    }

    /// A batch's rows (read it without the lock with [`read_batch`]).
    pub fn read(&self, name: &str) -> Result<Vec<u8>, SinkError> {
        read_batch(&self.dir, name)
    }

    /// Forget a delivered batch (delete its file without the lock with [`delete_batch`]).
    pub fn forget(&mut self, name: &str) {
        if let Some(len) = self.files.remove(name) {
            self.bytes -= len;
        }
    }

    /// Forget a delivered batch and delete its file.
    pub fn remove(&mut self, name: &str) -> Result<(), SinkError> {
        self.forget(name);
        delete_batch(&self.dir, name)
    }

    /// Batches waiting (written or being written), and their bytes.
    pub fn len(&self) -> (usize, u64) {
        (self.files.len() + self.pending.len(), self.bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.pending.is_empty()
    }
}

/// Write batch `name` into the spool directory `dir`: beside its name, then renamed into
/// place. Not synced: the spool outlives a crash of tlscensus (the rename is atomic), not a
/// power cut.
pub fn write_batch(dir: &Path, name: &str, rows: &[u8]) -> Result<(), SinkError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let written = (|| -> io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(rows)?;
        fs::rename(&tmp, &path)
    })();
    if let Err(cause) = written {
        let _ = fs::remove_file(&tmp);
        return Err(SinkError::Spool { path, cause });
    }
    Ok(())
}

/// The rows of batch `name` in `dir`.
pub fn read_batch(dir: &Path, name: &str) -> Result<Vec<u8>, SinkError> {
    let path = dir.join(name);
    fs::read(&path).map_err(|cause| SinkError::Spool { path, cause })
}

/// Delete batch `name` from `dir` (gone already is fine).
pub fn delete_batch(dir: &Path, name: &str) -> Result<(), SinkError> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Err(cause) if cause.kind() != io::ErrorKind::NotFound => {
            Err(SinkError::Spool { path, cause })
        }
        _ => Ok(()),
    }
}

/// Rows in a batch: one a line.
pub fn rows_in(batch: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', batch).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_replay_in_order_survive_reopening_and_respect_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 25).unwrap();
        assert!(spool.put(&Spool::name_of("r2", 1), b"c\n").unwrap());
        assert!(spool.put(&Spool::name_of("r1", 10), b"b\n").unwrap());
        assert!(spool.put(&Spool::name_of("r1", 9), b"a\n").unwrap());
        // 6 bytes held; a 20-byte batch passes the 25-byte bound.
        assert!(!spool.put("r3-000000000001.jsonl", &[b'x'; 20]).unwrap());
        fs::write(dir.path().join("r0-000000000001.jsonl.tmp"), b"half").unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 25).unwrap();
        assert_eq!(spool.len(), (3, 6));
        let mut order = Vec::new();
        while let Some(name) = spool.oldest().map(str::to_string) {
            order.push(spool.read(&name).unwrap());
            spool.remove(&name).unwrap();
        }
        assert_eq!(order, [b"a\n", b"b\n", b"c\n"]);
        assert!(!dir.path().join("r0-000000000001.jsonl.tmp").exists());
    }

    #[test]
    fn a_reserved_batch_keeps_its_place_and_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 10).unwrap();
        let (a, b) = (Spool::name_of("r1", 1), Spool::name_of("r1", 2));
        assert_eq!(spool.reserve(&b, 4), Reservation::Granted);
        assert!(spool.put(&a, b"a\n").unwrap());
        assert_eq!(spool.reserve(&b, 4), Reservation::Kept);
        // 2 + 4 bytes held: 5 more pass the bound of 10.
        assert_eq!(spool.reserve("r1-x.jsonl", 5), Reservation::Full);
        assert_eq!(spool.oldest(), Some(a.as_str()));
        spool.remove(&a).unwrap();
        // The batch being written is the oldest: the sender waits for it.
        assert_eq!(spool.oldest(), Some(b.as_str()));
        assert!(spool.is_pending(&b));
        spool.abort(&b);
        assert_eq!(spool.len(), (0, 0));
        assert_eq!(spool.reserve(&b, 4), Reservation::Granted);
        write_batch(dir.path(), &b, b"bbb\n").unwrap();
        spool.commit(&b);
        assert!(!spool.is_pending(&b));
        assert_eq!(spool.read(&b).unwrap(), b"bbb\n");
    }
}
