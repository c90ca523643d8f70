//! `tlscensus merge`: several JSON census reports into one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use tlscensus::report::json;
use tlscensus::report::Target;

use super::options::parse_target;
use super::output::deliver;

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON reports written by `tlscensus read --report FILE.json` (or `capture`).
    #[arg(required = true, value_name = "REPORT.json")]
    reports: Vec<PathBuf>,

    /// Write the merged census to PATH (repeatable); the format follows the extension:
    /// .json, .csv, .md, .html, .txt. Without it the table goes to standard output.
    #[arg(long = "report", value_name = "PATH", value_parser = parse_target)]
    targets: Vec<Target>,
}

pub fn merge(args: MergeArgs) -> Result<ExitCode> {
    let census = json::merge_files(&args.reports)?;
    deliver(&census, &args.targets, args.targets.is_empty())?;
    // As in `read`: the process ends next, and freeing the census piece by piece is slow.
    std::mem::forget(census);
    Ok(ExitCode::SUCCESS)
}
