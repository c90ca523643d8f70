//! The spool: batches of rows that could not be delivered yet, one file per batch in a
//! directory, named so that name order is the order they were made in (the run's start,
//! then the batch number). The sender replays them oldest first, in this run or the next
//! one with the same directory, and deletes each once ClickHouse has it.
//!
//! A batch is written beside its final name and renamed into place, so a crash leaves no
//! half batch to replay. The directory is bounded: a batch that would pass the bound is not
//! written, and the caller counts its rows as dropped.
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
    bytes: u64,
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

    /// Keep `rows` as batch `name`. `Ok(false)` when the spool is full (nothing written).
    pub fn put(&mut self, name: &str, rows: &[u8]) -> Result<bool, SinkError> {
        let len = rows.len() as u64;
        if self.files.contains_key(name) {
            return Ok(true);
        }
        if self.bytes + len > self.max_bytes {
            return Ok(false);
        }
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let written = (|| -> io::Result<()> {
            let mut file = fs::File::create(&tmp)?;
            // Not synced: the spool outlives a crash of tlscensus (the rename is atomic),
            // not a power cut; a sync is a disk wait under the lock the record path shares.
            file.write_all(rows)?;
            fs::rename(&tmp, &path)
        })();
        if let Err(cause) = written {
            let _ = fs::remove_file(&tmp);
            return Err(SinkError::Spool { path, cause });
        }
        self.files.insert(name.to_string(), len);
        self.bytes += len;
        Ok(true)
    }

    /// The oldest batch's name, if any.
    pub fn oldest(&self) -> Option<&str> {
        self.files.keys().next().map(String::as_str)
    }

    /// A batch's rows.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, SinkError> {
        let path = self.dir.join(name);
        fs::read(&path).map_err(|cause| SinkError::Spool { path, cause })
    }

    /// Forget a delivered batch.
    pub fn remove(&mut self, name: &str) -> Result<(), SinkError> {
        if let Some(len) = self.files.remove(name) {
            self.bytes -= len;
        }
        let path = self.dir.join(name);
        match fs::remove_file(&path) {
            Err(cause) if cause.kind() != io::ErrorKind::NotFound => {
                Err(SinkError::Spool { path, cause })
            }
            _ => Ok(()),
        }
    }

    /// Batches waiting, and their bytes.
    pub fn len(&self) -> (usize, u64) {
        (self.files.len(), self.bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
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
}
