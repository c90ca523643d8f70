//! Capture files read through memory maps: the crate's only `unsafe` code, kept here.
//!
//! Why map at all: copying the file into read buffers is the largest single cost of a run
//! (`benches/NOTES.md`), yet a packet of a connection whose handshake is decided needs only
//! its record header and the first 50-odd bytes of its frame. A mapped file lets the walk touch just those bytes, and
//! the workers' walks then cost a fraction of the copy (see [`super::walk`] and the README's
//! performance section).
//!
//! What mapping costs, and why it is still the default for classic pcap files:
//!
//! * a file truncated by another process while it is mapped turns the next access to a lost
//!   page into `SIGBUS`, which ends the process (there is no error to report and go on
//!   from). Captures being *appended to* (tcpdump still writing) are safe: only the length
//!   the file had when the run began is mapped. `--reading split` reads with `read` calls
//!   instead, for files that may be truncated or rewritten in place during a run;
//! * mapped pages count in the process's resident size while mapped, so the file is mapped
//!   a few blocks at a time (`pipeline::split`), each stretch unmapped when the last
//!   worker is done with its frames, which keeps the mapped share of the peak to the few
//!   MiB in flight.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;

/// A stretch of a file, mapped read-only. Dropping it unmaps it.
#[derive(Debug)]
pub struct Mapping {
    map: memmap2::Mmap,
    /// Bytes mapped before the stretch (mappings start on a page boundary).
    lead: usize,
}

impl Mapping {
    /// Map `len` bytes of `file` from `offset` on. The caller keeps `offset + len` within the
    /// file's length as it was when the run began.
    pub fn new(file: &File, offset: u64, len: usize) -> io::Result<Mapping> {
        let lead = (offset % MAP_ALIGN) as usize;
        // SAFETY: the map is read-only and private, and every byte of it is read through
        // `&[u8]`s that live no longer than the `Mapping`. What Rust cannot rule out is that
        // another process changes the file underneath: bytes rewritten in place are read as
        // whatever they are at that moment (every reader of these bytes treats them as
        // untrusted input anyway), and a file truncated below the mapped range raises SIGBUS
        // on access, as the module documentation says and `--reading split` avoids.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset - lead as u64)
                .len(lead + len)
                .map(file)?
        };
        Ok(Mapping { map, lead })
    }

    /// The mapped stretch of the file.
    pub fn bytes(&self) -> &[u8] {
        &self.map[self.lead..]
    }
}

/// Mappings start at a multiple of this: a multiple of every page size in use (4 to 64 KiB)
/// and of Windows' allocation granularity, which its mapping offsets must respect. The bytes
/// before the stretch are mapped but never touched, so they cost no memory.
const MAP_ALIGN: u64 = 64 << 10;

/// Ask the CPU to start loading the cache line holding `bytes[at]` (nothing if `at` is out
/// of range). The walk uses it to have the next record headers of several cursors on their
/// way at once; a plain load would hold up the loop until the line arrives.
#[inline(always)]
pub fn prefetch(bytes: &[u8], at: usize) {
    if let Some(byte) = bytes.get(at) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch hint reads nothing into the program and cannot fault; the
        // address is that of a byte inside a live slice. SSE, which the instruction belongs
        // to, is part of every x86_64 target.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(byte).cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = byte;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A mapping of any stretch, at any offset, holds exactly the file's bytes there.
    #[test]
    fn maps_the_bytes_of_any_stretch() {
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let path = std::env::temp_dir().join(format!("tlscensus-mapped-{}", std::process::id()));
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .expect("write a temporary file");
        let file = File::open(&path).expect("open it again");
        for (offset, len) in [
            (0, 1),
            (1, 4095),
            (4095, 2),
            (4096, 4096),
            (5000, 15_000),
            (19_999, 1),
        ] {
            let mapping = Mapping::new(&file, offset, len).expect("map");
            assert_eq!(
                mapping.bytes(),
                &bytes[offset as usize..offset as usize + len]
            );
            prefetch(mapping.bytes(), len - 1);
            prefetch(mapping.bytes(), len);
        }
        std::fs::remove_file(&path).ok();
    }
}
