//! The `tlscensus` command: wires the stages of the library together.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tlscensus: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
