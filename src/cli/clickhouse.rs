//! The options and plumbing of `--events clickhouse://...` that `read`, `watch` and
//! `capture` share: splitting `--events` into a file and a table, naming the sensor,
//! placing the spool, and showing the sink's counts.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use clap::Args;

use tlscensus::census::CensusConfig;
use tlscensus::sink::clickhouse::{ClickHouseSink, Counts, Options};
use tlscensus::sink::target::{Credentials, Target};

use super::output::nanos_of;

/// Where `--events clickhouse://...` sends records, and how it survives outages.
#[derive(Debug, Args)]
#[command(next_help_heading = "ClickHouse (--events clickhouse://HOST:PORT/DATABASE.TABLE)")]
pub struct ClickHouseArgs {
    /// This sensor's name, stored with every row (default: the host name). The census over
    /// several sensors is `tlscensus report --from` without --sensor.
    #[arg(long, value_name = "NAME")]
    pub sensor: Option<String>,

    /// Directory of the batches ClickHouse has not taken yet (outages, a slow server);
    /// sent in order by this run or the next one. Default: under $XDG_STATE_HOME (or
    /// ~/.local/state, %LOCALAPPDATA%) /tlscensus/spool/, one per sensor and table.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Most bytes the spool may hold (suffixes K, M, G, T: powers of 1024); a batch
    /// beyond it is dropped and counted, never silently.
    #[arg(long, value_name = "SIZE", default_value = "4G", value_parser = parse_size)]
    pub spool_max: u64,

    /// A file whose first line is `USER:PASSWORD` for ClickHouse. Without it, the
    /// environment's TLSCENSUS_CLICKHOUSE_USER and TLSCENSUS_CLICKHOUSE_PASSWORD (or
    /// ClickHouse's `default` user). Never on the command line.
    #[arg(long, value_name = "FILE")]
    pub clickhouse_credentials: Option<PathBuf>,

    /// How long one insert may take before its batch goes to the spool.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub clickhouse_timeout: Duration,
}

/// `--events` split: at most one file (or `-`) and at most one ClickHouse table.
pub struct EventsTargets {
    pub file: Option<PathBuf>,
    pub clickhouse: Option<Target>,
}

impl EventsTargets {
    pub fn split(events: &[PathBuf]) -> Result<EventsTargets> {
        let mut out = EventsTargets {
            file: None,
            clickhouse: None,
        };
        for e in events {
            let text = e.to_string_lossy();
            if Target::is_url(&text) {
                if out.clickhouse.is_some() {
                    bail!("--events names two ClickHouse tables; give one");
                }
                out.clickhouse = Some(Target::parse(&text)?);
            } else {
                if out.file.is_some() {
                    bail!("--events names two files; give one (and at most one clickhouse://)");
                }
                out.file = Some(e.clone());
            }
        }
        Ok(out)
    }
}

impl ClickHouseArgs {
    /// The sensor's name: `--sensor`, else the host name.
    pub fn sensor(&self) -> String {
        self.sensor.clone().unwrap_or_else(host_name)
    }

    /// Open the sink for `target`: credentials, spool, sender thread. Outages are told on
    /// standard error as they begin and end.
    pub fn open(&self, target: Target, config: CensusConfig) -> Result<ClickHouseSink> {
        let sensor = self.sensor();
        let spool_dir = match &self.spool {
            Some(dir) => dir.clone(),
            None => {
                default_spool_root().join(format!("{}@{}", file_safe(&sensor), target.file_name()))
            }
        };
        let mut options = Options::new(target, sensor, spool_dir);
        options.credentials = Credentials::load(self.clickhouse_credentials.as_deref())?;
        options.spool_max_bytes = self.spool_max;
        options.timeout = self.clickhouse_timeout;
        options.close_timeout = (self.clickhouse_timeout * 3).max(Duration::from_secs(5));
        options.notify = Box::new(|message| eprintln!("\ntlscensus: {message}"));
        let run = format!("{:020}-{}", nanos_of(SystemTime::now()), std::process::id());
        Ok(ClickHouseSink::open(options, config, run)?)
    }
}

/// `sent 10 spooled 0 dropped 0` for the status lines.
pub fn status_text(counts: &Counts) -> String {
    format!(
        "clickhouse sent {} spooled {} dropped {}",
        counts.sent, counts.spooled, counts.dropped
    )
}

/// The sink's lines of `--stats`.
pub fn print_counts(counts: &Counts) {
    eprintln!("clickhouse sent        {}", counts.sent);
    eprintln!("clickhouse spooled     {}", counts.spooled);
    eprintln!("clickhouse dropped     {}", counts.dropped);
    eprintln!(
        "spool waiting          {} batches, {} bytes",
        counts.spool_batches, counts.spool_bytes
    );
}

/// Say at the end of a run what did not reach ClickHouse, whatever `--stats` says.
pub fn report_undelivered(counts: &Counts) {
    if counts.spool_batches > 0 || counts.dropped > 0 {
        eprintln!(
            "tlscensus: ClickHouse: {} records sent; {} batches ({} bytes) wait in the spool {}{}",
            counts.sent,
            counts.spool_batches,
            counts.spool_bytes,
            counts.spool_dir.display(),
            if counts.dropped > 0 {
                format!("; {} records DROPPED (spool full)", counts.dropped)
            } else {
                String::new()
            }
        );
        if let Some(e) = &counts.last_error {
            eprintln!("tlscensus: ClickHouse: last error: {e}");
        }
    }
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The host's name, as `hostname` prints it.
fn host_name() -> String {
    let from_env = ["COMPUTERNAME", "HOSTNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|h| !h.is_empty()));
    from_env
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .or_else(|_| std::fs::read_to_string("/etc/hostname"))
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Where spools live when --spool does not say.
fn default_spool_root() -> PathBuf {
    let env_dir = |v: &str| {
        std::env::var_os(v)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
    };
    let base = env_dir("XDG_STATE_HOME")
        .or_else(|| env_dir("LOCALAPPDATA"))
        .or_else(|| env_dir("HOME").map(|h| h.join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("tlscensus").join("spool")
}

/// `4G`, `512M`, `100000`: bytes, suffixes in powers of 1024.
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (4G, 512M, 100000)"))
}
