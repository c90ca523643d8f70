//! The `tlscensus` command: wires the stages of the library together.

mod cli;

use std::process::ExitCode;

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
