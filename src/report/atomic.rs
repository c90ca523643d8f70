//! Replacing a file atomically: write a temporary file beside it, flush it to disk, then
//! rename it over the old one. A reader (the admin's browser, a log shipper, `tlscensus
//! merge`) sees the old file or the new one, never half of either.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bytes gathered before each write to the file. An events file grows by about 1 KiB per
/// connection, and each write into the page cache has a cost of its own beyond its bytes,
/// so few large writes beat many of the default 8 KiB (`benches/NOTES.md`).
const WRITE_BUFFER: usize = 256 << 10;

/// A file being written that appears at its destination only on [`AtomicFile::commit`].
/// Dropped uncommitted, it leaves the destination as it was and removes its temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    dest: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Start writing the future content of `dest`. The temporary file is in the same
    /// directory (a rename across file systems would not be atomic).
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let file = File::create(&tmp)?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
        })
    }

    /// Flush, sync to disk and move the file into place.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        if let Err(e) = fs::rename(&self.tmp, &self.dest) {
            // E.g. on Windows a destination another program holds open without sharing it
            // for deletion (a CSV report open in Excel).
            let _ = fs::remove_file(&self.tmp);
            return Err(e);
        }
        // Make the rename itself durable where directories can be synced (best effort).
        if let Some(dir) = self.dest.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.out {
            Some(out) => out.write(buf),
            None => Err(io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Replace `dest` with what `fill` writes, atomically.
pub fn write_with(
    dest: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = AtomicFile::create(dest)?;
    fill(&mut file)?;
    file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_or_not_at_all() {
        let dir = std::env::temp_dir().join(format!("tlscensus-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("r.json");
        fs::write(&dest, "old").unwrap();
        // A failed write leaves the old content and no temporary file.
        let err = write_with(&dest, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("boom"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        write_with(&dest, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read_to_string(&dest).unwrap(), "new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // A rename that fails (here: onto a directory that is not empty) leaves no temporary
        // file either.
        let taken = dir.join("taken");
        fs::create_dir_all(taken.join("inside")).unwrap();
        assert!(write_with(&taken, |w| w.write_all(b"new")).is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
