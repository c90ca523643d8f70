//! `tlscensus report --from clickhouse://...`: the census of the records sensors sent to
//! ClickHouse, over a time range and some or all sensors, written as a local run writes it.
//!
//! The records are fetched back as the JSON lines the sensors wrote and fed to the same
//! census code as `read`, so the reports are the ones a local run over the same traffic
//! writes, byte for byte, and the census of several sensors is their reports' `merge`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use tlscensus::record::rfc3339;
use tlscensus::sink::http::Client;
use tlscensus::sink::record_in;
use tlscensus::sink::target::{Credentials, Target};

use super::options::CensusArgs;
use super::output::{deliver, nanos_of};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The events table the sensors write: clickhouse://HOST:PORT/DATABASE.TABLE.
    #[arg(long, value_name = "URL", value_parser = parse_target)]
    from: Target,

    /// Only records from this sensor (repeatable); default: every sensor.
    #[arg(long = "sensor", value_name = "NAME")]
    sensors: Vec<String>,

    /// Only connections whose ClientHello came at or after TIME (RFC 3339, e.g.
    /// 2024-05-01T00:00:00Z; UTC when no zone is given).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<String>,

    /// Only connections before TIME.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    until: Option<String>,

    /// A file whose first line is `USER:PASSWORD` (else TLSCENSUS_CLICKHOUSE_USER and
    /// TLSCENSUS_CLICKHOUSE_PASSWORD from the environment).
    #[arg(long, value_name = "FILE")]
    clickhouse_credentials: Option<PathBuf>,

    #[command(flatten)]
    census: CensusArgs,
}

fn parse_target(text: &str) -> Result<Target, String> {
    Target::parse(text).map_err(|e| e.to_string())
}

/// A time as the records write it (`2024-05-01T00:00:00.000000Z`), so that comparing
/// the texts compares the times.
fn parse_time(text: &str) -> Result<String, String> {
    humantime::parse_rfc3339_weak(text)
        .map(|t| rfc3339(nanos_of(t)))
        .map_err(|e| format!("{text:?}: {e} (expected e.g. 2024-05-01T00:00:00Z)"))
}

/// A string literal for ClickHouse SQL.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The select of the records wanted; `FINAL` collapses the copies a retried insert left.
fn query(args: &ReportArgs) -> String {
    let mut q = format!("SELECT record FROM {} FINAL WHERE 1", args.from.qualified());
    if !args.sensors.is_empty() {
        let list: Vec<String> = args.sensors.iter().map(|s| quote(s)).collect();
        q.push_str(&format!(" AND sensor IN ({})", list.join(", ")));
    }
    // `time` (seconds) lets the server skip months; `ts` (microseconds) is exact.
    if let Some(since) = &args.since {
        q.push_str(&format!(
            " AND time >= {} AND ts >= {}",
            quote(&datetime(since)),
            quote(since)
        ));
    }
    if let Some(until) = &args.until {
        q.push_str(&format!(
            " AND time <= {} AND ts < {}",
            quote(&datetime(until)),
            quote(until)
        ));
    }
    q.push_str(" FORMAT TabSeparatedRaw");
    q
}

/// `2024-05-01 00:00:00` from `2024-05-01T00:00:00.000000Z`.
fn datetime(ts: &str) -> String {
    format!("{} {}", &ts[..10], &ts[11..19])
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let credentials = Credentials::load(args.clickhouse_credentials.as_deref())?;
    // The first row of a `FINAL` over months of records may take minutes to come.
    let client = Client::new(
        &args.from,
        credentials.as_ref(),
        std::time::Duration::from_secs(600),
    );
    let mut census = args.census.census()?;
    let mut bad_lines = 0u64;
    let mut line_number = 0u64;
    client
        .select_lines(&query(&args), |line| {
            line_number += 1;
            match record_in::parse(line) {
                Ok(record) => census.add(&record),
                Err(e) => {
                    // A row some other writer put there: say which, and go on.
                    bad_lines += 1;
                    eprintln!(
                        "tlscensus: {}: record {line_number} of the answer: {e}",
                        args.from.qualified()
                    );
                }
            }
            Ok(())
        })
        .with_context(|| format!("cannot read the records from {}", args.from.qualified()))?;
    deliver(
        &census,
        &args.census.reports,
        args.census.reports.is_empty(),
    )?;
    std::mem::forget(census);
    Ok(if bad_lines > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
