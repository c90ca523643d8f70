//! Which files in a watched directory are complete captures, ready to be read.
//!
//! Capture tools that rotate (tcpdump `-G`/`-C`, dumpcap ring buffers, pktmon
//! `--log-mode multi-file`) write one file at a time and move on to a new one. So a file is
//! taken as complete when a newer file exists beside it (by modification time), or when
//! nothing has written to it for `idle` (the last file of a capture that stopped, or
//! netsh's single circular file). Either way it must also have kept the same length and
//! modification time for `settle`, seen over two scans, so a writer still flushing after it
//! rotated is waited for. A file that cannot be opened yet (Windows locks the file a trace
//! is writing) is tried again at the next scan.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::pipeline::{order_by_time, FeedStep, FileFeed, LIVE_POLL};

/// A file as it was when it was read: a ring buffer reuses names, so the name alone does
/// not say whether a file has been read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileId {
    /// File name within the watched directory.
    pub name: String,
    pub len: u64,
    /// Modification time, ns since the Unix epoch.
    pub mtime_ns: i64,
}

/// When a file counts as complete.
#[derive(Debug, Clone, Copy)]
pub struct Completion {
    /// How long length and modification time must stay the same.
    pub settle: Duration,
    /// How long after its last write the newest file counts as complete anyway.
    pub idle: Duration,
    /// How often the directory is listed.
    pub scan_every: Duration,
}

impl Default for Completion {
    fn default() -> Self {
        Completion {
            settle: Duration::from_secs(2),
            idle: Duration::from_secs(600),
            scan_every: Duration::from_secs(1),
        }
    }
}

/// What the reader thread has handed out, for the thread that keeps the state: the file
/// being read now and the ones finished before it. `generation` changes whenever they do,
/// before the first frame of a new file is read, so a record is never seen before the
/// file it came from is known.
#[derive(Debug, Default)]
pub struct FeedProgress {
    pub generation: AtomicU64,
    pub files: Mutex<FeedFiles>,
}

#[derive(Debug, Default, Clone)]
pub struct FeedFiles {
    /// The file being read (or, between files, the last one read), as its path is written
    /// in the records' `capture.file`.
    pub current: Option<(FileId, String)>,
    /// Files read before `current` (and how the records name them), in the order read.
    pub finished: Vec<(FileId, String)>,
    /// Files waiting to be complete (for the status line).
    pub waiting: usize,
    /// Notes from reading the files, not yet shown.
    pub notes: Vec<String>,
}

/// Follows a directory, handing over each capture file once it is complete, oldest first.
pub struct DirectoryFeed {
    dir: PathBuf,
    rules: Completion,
    /// Read before (from the state file) or handed out in this run.
    done: HashSet<FileId>,
    /// Paths that are never captures here (the state, reports and events files).
    ignore: HashSet<PathBuf>,
    /// Length and modification time at the previous scan, and since when they have held.
    seen: HashMap<String, (u64, i64, Instant)>,
    ready: VecDeque<(FileId, PathBuf)>,
    last_scan: Option<Instant>,
    /// Read what is complete now, then end, instead of following.
    once: bool,
    /// Files complete but for the settling time, at the last scan.
    settling: usize,
    stop: Arc<AtomicBool>,
    progress: Arc<FeedProgress>,
    /// Files to read first whatever the rules say: the one a stopped run was reading.
    first: Vec<(FileId, PathBuf)>,
    /// The last error listing the directory, said once.
    listing_error: Option<String>,
}

impl DirectoryFeed {
    pub fn new(
        dir: &Path,
        rules: Completion,
        once: bool,
        stop: Arc<AtomicBool>,
        progress: Arc<FeedProgress>,
    ) -> Self {
        DirectoryFeed {
            dir: dir.to_path_buf(),
            rules,
            done: HashSet::new(),
            ignore: HashSet::new(),
            seen: HashMap::new(),
            ready: VecDeque::new(),
            last_scan: None,
            once,
            settling: 0,
            stop,
            progress,
            first: Vec::new(),
            listing_error: None,
        }
    }

    /// Files already read by an earlier run: never handed out again.
    pub fn already_read(&mut self, files: impl IntoIterator<Item = FileId>) {
        self.done.extend(files);
    }

    /// A file the earlier run was reading when it stopped: read it first, again (the
    /// records it already counted are recognised and skipped by the resume state).
    pub fn resume_with(&mut self, file: FileId) {
        let path = self.dir.join(&file.name);
        self.first.push((file, path));
    }

    /// A path in the directory that is one of our outputs, never a capture.
    pub fn ignore(&mut self, path: &Path) {
        if let Some(name) = path.file_name() {
            self.ignore.insert(self.dir.join(name));
        }
    }

    /// List the directory and queue the files that became complete, oldest first.
    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) => {
                // Said once, not at every scan, until the directory can be listed again.
                let error = format!("cannot list {}: {e}", self.dir.display());
                if self.listing_error.as_ref() != Some(&error) {
                    self.note(error.clone());
                    self.listing_error = Some(error);
                }
                return;
            }
        };
        self.listing_error = None;
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut files: Vec<(FileId, PathBuf)> = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            // Hidden files: our own temporary files (`.census.json.tmp123`), editors'.
            if name.starts_with('.') || self.ignore.contains(&path) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let mtime_ns = meta.modified().map_or(0, nanos_since_epoch);
            files.push((
                FileId {
                    name,
                    len: meta.len(),
                    mtime_ns,
                },
                path,
            ));
        }
        let newest = files.iter().map(|(id, _)| id.mtime_ns).max().unwrap_or(0);
        let mut complete = Vec::new();
        let mut waiting = 0;
        let mut settling = 0;
        let queued: HashSet<&FileId> = self.ready.iter().map(|(id, _)| id).collect();
        let mut seen = HashMap::new();
        for (id, path) in &files {
            if self.done.contains(id) || queued.contains(id) {
                continue;
            }
            let since = match self.seen.get(&id.name) {
                Some(&(len, mtime, since)) if len == id.len && mtime == id.mtime_ns => since,
                _ => now,
            };
            seen.insert(id.name.clone(), (id.len, id.mtime_ns, since));
            let settled = now.duration_since(since) >= self.rules.settle;
            let superseded = id.mtime_ns < newest;
            let idle_for = wall
                .duration_since(
                    SystemTime::UNIX_EPOCH + Duration::from_nanos(id.mtime_ns.max(0) as u64),
                )
                .unwrap_or_default();
            let idle = idle_for >= self.rules.idle;
            if !(superseded || idle) {
                waiting += 1;
            } else if settled && std::fs::File::open(path).is_ok() {
                complete.push(path.clone());
            } else {
                waiting += 1;
                settling += 1;
            }
        }
        self.seen = seen;
        self.settling = settling;
        let ids: HashMap<PathBuf, FileId> = files.into_iter().map(|(id, p)| (p, id)).collect();
        // By name first, so files that begin at the same instant are read in the same order
        // on every platform, whatever order the directory lists them in.
        complete.sort();
        for path in order_by_time(&complete) {
            if let Some(id) = ids.get(&path) {
                self.ready.push_back((id.clone(), path));
            }
        }
        self.progress.files.lock().expect("feed state").waiting = waiting;
    }

    fn hand_out(&mut self, id: FileId, path: PathBuf) -> FeedStep {
        self.done.insert(id.clone());
        let mut files = self.progress.files.lock().expect("feed state");
        if let Some(previous) = files.current.take() {
            files.finished.push(previous);
        }
        files.current = Some((id, path.display().to_string()));
        drop(files);
        self.progress.generation.fetch_add(1, Ordering::Release);
        FeedStep::File(path)
    }
}

impl FileFeed for DirectoryFeed {
    fn next_file(&mut self) -> FeedStep {
        if self.stop.load(Ordering::Relaxed) {
            return FeedStep::End;
        }
        if let Some((id, path)) = (!self.first.is_empty()).then(|| self.first.remove(0)) {
            return self.hand_out(id, path);
        }
        let due = self
            .last_scan
            .is_none_or(|at| at.elapsed() >= self.rules.scan_every);
        if self.ready.is_empty() && due {
            self.scan();
        }
        if let Some((id, path)) = self.ready.pop_front() {
            return self.hand_out(id, path);
        }
        // `--once`: what was complete has been read. A finished file still settling is
        // waited for; the one still being written is left for the next run.
        if self.once && self.settling == 0 && self.last_scan.is_some() {
            // Ending is a stop like Ctrl-C: handshakes cut short are left for the next run.
            self.stop.store(true, Ordering::Relaxed);
            return FeedStep::End;
        }
        std::thread::sleep(LIVE_POLL);
        FeedStep::Wait
    }

    fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn note(&mut self, text: String) {
        self.progress
            .files
            .lock()
            .expect("feed state")
            .notes
            .push(text);
    }
}

fn nanos_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
