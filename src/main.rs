//! The `tlscensus` command: wires the stages of the library together.

mod cli;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a handshake's buffers and record are allocated in a
/// worker and freed on the aggregator thread, and glibc's cross-thread frees took a fifth
/// of the workers' time (`benches/NOTES.md`). Version 2 and no transparent huge pages keep
/// the peak memory where glibc's was.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its v2 `mi_option_e`, which the bindings leave out).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Give freed pages back to the system at once instead of 10 ms later. The workers' flow
/// tables, batches and connection buffers are freed by the time the report is built, and
/// with the delay their pages were still resident then: 16 MiB of the peak on issue 27's
/// handshake capture (`benches/NOTES.md`, "Issue 27: peak memory on the handshake capture").
#[allow(unsafe_code)]
fn purge_freed_pages_at_once() {
    // SAFETY: sets one of the allocator's options, which it reads atomically; any value is
    // valid for this one (0: purge at once).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

/// Give the pages the pipeline's workers freed back to the system once they have ended.
/// mimalloc keeps an ended thread's heap ("abandoned") until another thread takes it over, and
/// blocks freed into it meanwhile — the workers' flow tables and batches, the census's
/// shards merged into one on the caller's thread — stayed resident while the report was
/// built (`benches/NOTES.md`, "Issue 27: the census sharded by client").
#[allow(unsafe_code)]
pub fn reclaim_freed_pages() {
    // SAFETY: `mi_collect` has no precondition. Forced, on the main thread, it also takes
    // over the abandoned heaps and frees their empty pages.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    purge_freed_pages_at_once();
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            let reader_left = err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(cli::reader_left)
            });
            if reader_left {
                // Whatever went to files is complete; standard output's reader is gone.
                return ExitCode::SUCCESS;
            }
            eprintln!("tlscensus: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
