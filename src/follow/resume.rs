//! What a watch has counted, kept so that a restart neither loses nor counts anything twice.
//!
//! The state holds the census so far, the files read, and the last [`REPLAYED`] files
//! handed to the reader with the records of them already counted. A restart reads those
//! files again from the start of the first, so connections whose handshake was cut by the
//! stop are seen whole, and [`Resume::judge`] skips what was counted before:
//!
//! * a record is known by its file, its connection and the frame of its first hello, the
//!   same in both runs;
//! * a record made of the tail of a connection that began in a file before those read
//!   again (the second run starts in its middle, so it sees a ServerHello and no
//!   ClientHello) is skipped when that connection's record was counted from one of the
//!   [`SPANNED`] files before;
//! * at a stop, a connection of those files whose handshake is unfinished (or a mail
//!   session that may still start TLS) is withheld from the state and counted in the final
//!   reports only: the restart sees it again from its start, with whatever came after.
//!
//! Two files are read again, not one, because the reader runs ahead of the records: when
//! a state is written during the run, the records of the file before the one being read
//! may still be on their way. A handshake unfinished over more than a whole file is
//! counted `incomplete` at the stop, as `read` would at the end of a file.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::directory::FileId;
use crate::record::{Outcome, Record};

/// Version of the state file's layout.
pub const STATE_VERSION: u32 = 1;
/// Files read again on a restart: the last ones handed to the reader.
pub const REPLAYED: usize = 2;
/// Files before those whose connections are recognised when their tail is met again.
pub const SPANNED: usize = 2;

/// A record's identity: its file (by name), its connection and the frame of its first
/// hello.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    pub file: String,
    pub client: (IpAddr, u16),
    pub server: (IpAddr, u16),
    pub frame: u64,
}

/// A connection: client and server address and port.
pub type Connection = ((IpAddr, u16), (IpAddr, u16));

/// The files a restart reads again, and what of them was counted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResumePoint {
    /// Oldest first.
    pub files: Vec<FileId>,
    pub counted: Vec<RecordKey>,
    /// Connections counted from the files just before `files`.
    pub spanning: Vec<Connection>,
}

/// What to do with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New: count it and write it out.
    Count,
    /// Counted by an earlier run: drop it.
    Skip,
    /// Its handshake was cut by the stop: report it now, but leave it out of the state, so
    /// the restart counts it whole.
    Withhold,
}

/// A file handed to the reader: its identity and its name in the records (`capture.file`).
#[derive(Debug, Clone)]
struct Tracked {
    id: FileId,
    path: String,
}

/// Tracks what has been counted of the last files read.
#[derive(Debug, Default)]
pub struct Resume {
    /// The last `REPLAYED + SPANNED` files handed out, oldest first.
    window: VecDeque<Tracked>,
    /// Records of the files in `window` counted, by this run or the one before.
    counted: HashSet<RecordKey>,
    /// From the state: the files being read again, and the connections counted just
    /// before them.
    replaying: Vec<String>,
    spanning: HashSet<Connection>,
    /// A stop was requested: unfinished handshakes are withheld.
    stopping: bool,
    /// Files read again that have left `window`, still recognised.
    replayed_early: Vec<Tracked>,
}

impl Resume {
    /// Start from an earlier run's resume point; `path_of` gives how the records will name
    /// a file.
    pub fn from_point(point: ResumePoint, path_of: impl Fn(&FileId) -> String) -> Self {
        let window: VecDeque<Tracked> = point
            .files
            .iter()
            .map(|id| Tracked {
                id: id.clone(),
                path: path_of(id),
            })
            .collect();
        Resume {
            replaying: window.iter().map(|t| t.path.clone()).collect(),
            window,
            counted: point.counted.into_iter().collect(),
            spanning: point.spanning.into_iter().collect(),
            stopping: false,
            replayed_early: Vec::new(),
        }
    }

    /// The reader was handed `file` (named `path` in the records).
    pub fn handed_out(&mut self, file: FileId, path: String) {
        if self.window.iter().any(|t| t.id == file) {
            return; // a file read again: tracked since the start
        }
        self.window.push_back(Tracked { id: file, path });
        while self.window.len() > REPLAYED + SPANNED {
            let gone = self.window.pop_front().expect("not empty");
            // The reader runs ahead of the records: the files read again keep what was
            // counted of them for the whole run, until their records have all come by.
            if self.replaying.contains(&gone.path) {
                self.replayed_early.push(gone);
            } else {
                self.counted.retain(|k| k.file != gone.id.name);
            }
        }
    }

    pub fn stopping(&mut self) {
        self.stopping = true;
    }

    /// Decide what to do with `record`, and remember it if it is counted.
    pub fn judge(&mut self, record: &Record) -> Verdict {
        let file = &record.capture.file;
        let at = self.window.iter().position(|t| &t.path == file);
        let early = || self.replayed_early.iter().find(|t| &t.path == file);
        let Some(tracked) = at.map(|at| &self.window[at]).or_else(early) else {
            return Verdict::Count; // from a file older than any tracked
        };
        let key = RecordKey {
            file: tracked.id.name.clone(),
            client: (record.client.ip, record.client.port),
            server: (record.server.ip, record.server.port),
            frame: record.capture.frame,
        };
        if self.counted.contains(&key) {
            return Verdict::Skip;
        }
        if record.client_hello.is_none()
            && self.replaying.contains(file)
            && self.spanning.contains(&(key.client, key.server))
        {
            return Verdict::Skip;
        }
        // Flushed by the stop: unfinished handshakes, and mail sessions that may yet start
        // TLS, of the files a restart reads again.
        let replayed = at.is_some_and(|at| at + REPLAYED >= self.window.len());
        if self.stopping
            && replayed
            && matches!(record.outcome, Outcome::Incomplete | Outcome::Plaintext)
        {
            return Verdict::Withhold;
        }
        self.counted.insert(key);
        Verdict::Count
    }

    /// Where a restart resumes: the last [`REPLAYED`] files.
    pub fn point(&self) -> ResumePoint {
        let window: Vec<&Tracked> = self.window.iter().collect();
        let (before, replayed) = window.split_at(window.len().saturating_sub(REPLAYED));
        let names = |files: &[&Tracked]| -> HashSet<String> {
            files.iter().map(|t| t.id.name.clone()).collect()
        };
        let (before, replayed_names) = (names(before), names(replayed));
        let mut counted: Vec<RecordKey> = self
            .counted
            .iter()
            .filter(|k| replayed_names.contains(&k.file))
            .cloned()
            .collect();
        counted.sort_by(|a, b| {
            (&a.file, a.frame, a.client, a.server).cmp(&(&b.file, b.frame, b.client, b.server))
        });
        let mut spanning: Vec<Connection> = self
            .counted
            .iter()
            .filter(|k| before.contains(&k.file))
            .map(|k| (k.client, k.server))
            .collect();
        // Still reading again what the last run did: its spanning connections still hold.
        if replayed.iter().all(|t| self.replaying.contains(&t.path)) {
            spanning.extend(self.spanning.iter().copied());
        }
        spanning.sort();
        spanning.dedup();
        ResumePoint {
            files: replayed.iter().map(|t| t.id.clone()).collect(),
            counted,
            spanning,
        }
    }
}
