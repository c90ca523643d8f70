//! Capture files read through a memory map instead of `read()`.
//!
//! `read()` copies every byte from the page cache into our buffer; at several gigabytes a
//! second that copy is most of what reading a file costs. Mapping the file instead lets the
//! frames be parsed where the kernel already holds them. The file is mapped a window at a
//! time (each window is a [`Block`](super::Block) that batches share and that is unmapped when
//! the last of them is done), so memory stays bounded whatever the file size.
//!
//! The one hazard is the one every mmap reader has (ripgrep documents the same): if another
//! program truncates the file while it is mapped, touching the lost pages raises SIGBUS and
//! the process dies. Captures are appended to, not truncated, in every workflow we know;
//! `--no-mmap` reads with `read()` for the others.

// The only unsafe code in the crate: creating the map.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;

use memmap2::{Mmap, MmapOptions};

/// Bytes mapped at once (more when one record is larger).
pub(crate) const WINDOW: usize = 4 << 20;

/// A read-only view of `len` bytes of `file` from `offset` on.
pub(crate) fn map(file: &File, offset: u64, len: usize) -> io::Result<Mmap> {
    // SAFETY: memmap2 requires that the mapped bytes not change while the map lives, since
    // Rust assumes a `&[u8]` is immutable. The map is private and read-only; the file is a
    // capture this process only reads. Another process could still rewrite or truncate it
    // underneath; that is the documented limit of this mode (module docs, `--no-mmap`).
    // `populate` pre-faults the window in one call instead of one page fault per 64 KiB.
    unsafe {
        MmapOptions::new()
            .offset(offset)
            .len(len)
            .populate()
            .map(file)
    }
}

/// How far ahead of the parser mapped bytes are prefetched. Frames are found by following
/// each record's length to the next, a chain of dependent loads that would otherwise wait on
/// memory once per frame; prefetching this far ahead keeps several lines in flight.
pub(crate) const PREFETCH_AHEAD: usize = 32 << 10;

/// Ask the CPU to start loading `bytes` into its caches.
#[inline]
pub(crate) fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is only a hint: it never faults, even on an address that is
        // not mapped, and changes no state the program can observe. SSE, which provides
        // it, is part of the x86-64 baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}
