//! Where records and reports go: the events sink, the report files and the table.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};

use tlscensus::census::Census;
use tlscensus::report::atomic::AtomicFile;
use tlscensus::report::{self, Target};

/// Where records go.
pub enum Sink {
    None,
    /// Standard output, a pipe, a device: written as records come.
    Writer(Box<dyn Write + Send>),
    /// A regular file: written beside it and renamed into place at the end, so an earlier
    /// events file is never left half-overwritten by a run that fails.
    Atomic(AtomicFile),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::None => Ok(buf.len()),
            Sink::Writer(w) => w.write(buf),
            Sink::Atomic(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::None => Ok(()),
            Sink::Writer(w) => w.flush(),
            Sink::Atomic(f) => f.flush(),
        }
    }
}

impl Sink {
    /// The sink for `--events PATH`: nothing, standard output (`-`), a device or pipe as
    /// is, or a regular file written atomically.
    pub fn open(path: Option<&Path>) -> Result<Sink> {
        let Some(p) = path else {
            return Ok(Sink::None);
        };
        if p == Path::new("-") {
            return Ok(Sink::Writer(Box::new(BufWriter::new(io::stdout()))));
        }
        // A regular file, or one still to be made, is written atomically; anything else as
        // is. Windows cannot even read the metadata of its null device `NUL`.
        let special = match std::fs::metadata(p) {
            Ok(m) => !m.is_file(),
            Err(e) => e.kind() != io::ErrorKind::NotFound,
        };
        Ok(if special {
            Sink::Writer(Box::new(BufWriter::new(
                File::options()
                    .write(true)
                    .open(p)
                    .with_context(|| format!("cannot open {}", p.display()))?,
            )))
        } else {
            Sink::Atomic(
                AtomicFile::create(p).with_context(|| format!("cannot create {}", p.display()))?,
            )
        })
    }

    /// Finish the events output: flush, and move an atomically written file into place.
    pub fn close(self, path: &Path) -> Result<()> {
        match self {
            Sink::None => Ok(()),
            Sink::Writer(mut w) => match w.flush() {
                Err(e) if reader_left(&e) => Ok(()),
                other => other,
            },
            Sink::Atomic(f) => f.commit(),
        }
        .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Whether a write failed because the program reading our standard output (or a pipe)
/// exited: `tlscensus read big.pcap | head` is not an error, as with other filters.
pub fn reader_left(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::BrokenPipe
}

/// Write the census reports, and the table to standard output when `table` is set.
pub fn deliver(census: &Census, targets: &[Target], table: bool) -> Result<()> {
    // Each report file is built and synced to disk on its own thread: the syncs overlap
    // each other (and, in `read`, the events file's).
    let written: Vec<io::Result<()>> = std::thread::scope(|scope| {
        let writers: Vec<_> = targets
            .iter()
            .map(|target| scope.spawn(move || report::write_file(census, target)))
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("report writer panicked"))
            .collect()
    });
    for (target, result) in targets.iter().zip(written) {
        result.with_context(|| format!("cannot write {}", target.path.display()))?;
    }
    if table {
        // Standard output is line-buffered: one write per line of a table thousands long.
        let mut out = BufWriter::with_capacity(64 << 10, io::stdout().lock());
        match report::write(census, report::Format::Table, &mut out).and_then(|()| out.flush()) {
            Err(e) if reader_left(&e) => {}
            written => written.context("cannot write the table")?,
        }
    }
    Ok(())
}

/// Rewrite every report in `targets`, atomically. The JSON report carries `about` under
/// `key` (`capture`, `watch`: what a long run has done so far); `merge` ignores the extra
/// key.
pub fn write_reports_about(
    census: &Census,
    targets: &[Target],
    key: &str,
    about: &serde_json::Value,
) -> Result<()> {
    for target in targets {
        let result = if target.format == report::Format::Json {
            let mut value = report::json::to_value(census);
            if let Some(map) = value.as_object_mut() {
                map.insert(key.into(), about.clone());
            }
            report::atomic::write_with(&target.path, |out| {
                serde_json::to_writer_pretty(&mut *out, &value)?;
                writeln!(out)
            })
        } else {
            report::write_file(census, target)
        };
        result.with_context(|| format!("cannot write {}", target.path.display()))?;
    }
    Ok(())
}

/// Nanoseconds since the Unix epoch, for the records' time format.
pub fn nanos_of(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}
