//! Following a directory of rotating capture files (`tlscensus watch`): which files are
//! complete ([`directory`]), and what has been counted, so a restart resumes exactly
//! ([`resume`]). The state file that carries both between runs is [`WatchState`].

pub mod directory;
pub mod resume;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::census::Census;
use crate::report::json;

pub use directory::{Completion, DirectoryFeed, FeedFiles, FeedProgress, FileId};
pub use resume::{RecordKey, Resume, ResumePoint, Verdict, STATE_VERSION};

/// The state file: everything a restarted watch needs to go on where the last one stopped.
#[derive(Debug, Serialize, Deserialize)]
pub struct WatchState {
    /// Layout version ([`STATE_VERSION`]).
    pub tlscensus_watch_state: u32,
    /// The watched directory, as given.
    pub directory: String,
    /// When the state was written (RFC 3339).
    pub updated: String,
    /// Files read whole; never read again.
    pub read: Vec<FileId>,
    /// The file being read when the state was written; read again, its counted records
    /// skipped.
    pub resume: ResumePoint,
    /// Length of the `--events` file when the state was written: a restart after a crash
    /// cuts the file back to it, since the records after it are made again.
    pub events_len: Option<u64>,
    /// The census so far, as the JSON report writes it.
    pub census: serde_json::Value,
}

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    // Causes are part of the messages, not `source`s: error chains would say them twice.
    #[error("cannot read {path}: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{path} is not a tlscensus watch state: {reason}")]
    Format { path: String, reason: String },
    #[error(
        "{path} was written with other --server or --policy settings ({cause}); \
         give another --state, or delete it to start over"
    )]
    Settings {
        path: String,
        cause: crate::census::CensusError,
    },
}

impl WatchState {
    /// Read a state file; `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<WatchState>, StateError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(cause) => return Err(StateError::Io { path: shown, cause }),
        };
        let state: WatchState = serde_json::from_str(&text).map_err(|e| StateError::Format {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        if state.tlscensus_watch_state != STATE_VERSION {
            return Err(StateError::Format {
                path: shown,
                reason: format!(
                    "layout version {} (this tlscensus writes {STATE_VERSION})",
                    state.tlscensus_watch_state
                ),
            });
        }
        Ok(Some(state))
    }

    /// Add the state's census into `census` (a new, empty one with this run's settings).
    pub fn restore_census(&self, census: &mut Census, path: &Path) -> Result<(), StateError> {
        let shown = path.display().to_string();
        let saved = json::read(&self.census.to_string()).map_err(|e| StateError::Format {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        census
            .merge(saved)
            .map_err(|cause| StateError::Settings { path: shown, cause })
    }

    /// Write the state atomically: a reader (or a crash) never sees half of it.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        crate::report::atomic::write_with(path, |out| {
            serde_json::to_writer(&mut *out, self)?;
            std::io::Write::write_all(out, b"\n")
        })
    }
}
