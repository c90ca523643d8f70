//! The `tlscensus` command: wires the stages of the library together.

mod cli;

use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a handshake's buffers and record are allocated in a
/// worker and freed on the aggregator thread, and glibc's cross-thread frees took a fifth
/// of the workers' time (`benches/NOTES.md`). Version 2 and no transparent huge pages keep
/// the peak memory where glibc's was.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
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
