//! The progress line `read` draws on a terminal.

use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tlscensus::pipeline;

/// A one-line progress display on standard error (bytes, packets/s, time left), only when
/// it is a terminal, redrawn at most four times a second.
pub struct ProgressBar {
    enabled: bool,
    total: u64,
    started: Instant,
    last: Option<Instant>,
}

impl ProgressBar {
    pub fn new(files: &[PathBuf]) -> Self {
        ProgressBar {
            enabled: io::stderr().is_terminal(),
            total: files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum(),
            started: Instant::now(),
            last: None,
        }
    }

    pub fn draw(&mut self, progress: &pipeline::Progress) {
        self.draw_with(progress, String::new);
    }

    /// The line with `extra` after it (the ClickHouse counts), computed only when drawn.
    pub fn draw_with(&mut self, progress: &pipeline::Progress, extra: impl FnOnce() -> String) {
        let now = Instant::now();
        let due = self
            .last
            .is_none_or(|t| now.duration_since(t).as_millis() >= 250);
        if !self.enabled || !due {
            return;
        }
        self.last = Some(now);
        let bytes = progress.bytes.load(Ordering::Relaxed);
        let frames = progress.frames.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let done = bytes as f64 / self.total.max(1) as f64;
        let eta = if done > 0.0 { secs / done - secs } else { 0.0 };
        eprint!(
            "\r\x1b[K{:5.1}%  {:.0}/{:.0} MB  {:.2} M packets/s  ETA {:.0} s  {}",
            100.0 * done.min(1.0),
            bytes as f64 / 1e6,
            self.total as f64 / 1e6,
            frames as f64 / secs / 1e6,
            eta.max(0.0),
            extra()
        );
    }

    pub fn finish(&self) {
        if self.enabled && self.last.is_some() {
            eprint!("\r\x1b[K");
        }
    }
}
