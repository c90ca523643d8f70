//! Option groups that several commands share, so `read`, `capture` and `watch` spell and
//! document them once and build the engine and the census the same way.

use std::path::Path;

use anyhow::Result;
use clap::Args;

use tlscensus::census::{parse_server, Census, CensusConfig, Policy};
use tlscensus::engine::{Config, Services};
use tlscensus::flow::Limits;
use tlscensus::report::Target;

/// Which ports carry which protocol, and how many connections the engine tracks.
#[derive(Debug, Args)]
#[command(next_help_heading = "Ports and connections")]
pub struct EngineArgs {
    /// Also report connections on this TCP port even when no hello could be read
    /// (repeatable; comma-separated lists allowed). TLS is found by content on every port
    /// anyway; implicit TLS on 443, 465, 993 and 995 is named https, smtps, imaps, pop3s.
    #[arg(long = "tls-port", value_name = "PORT", value_delimiter = ',')]
    pub tls_ports: Vec<u16>,

    /// SMTP ports: the plaintext dialogue is followed to STARTTLS / X-ANONYMOUSTLS, and
    /// sessions that never start TLS are reported (`plaintext`). 587 is named `submission`.
    #[arg(long = "smtp-port", value_name = "PORT", value_delimiter = ',', default_values_t = [25, 587])]
    pub smtp_ports: Vec<u16>,

    /// IMAP ports followed to STARTTLS.
    #[arg(long = "imap-port", value_name = "PORT", value_delimiter = ',', default_values_t = [143])]
    pub imap_ports: Vec<u16>,

    /// POP3 ports followed to STLS.
    #[arg(long = "pop3-port", value_name = "PORT", value_delimiter = ',', default_values_t = [110])]
    pub pop3_ports: Vec<u16>,

    /// Most connections tracked at once; beyond it the idlest are expired early.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_flows)]
    pub max_flows: usize,

    /// Seconds without a packet after which a connection is reported and forgotten.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub idle_timeout: u32,

    /// Worker threads parsing handshakes (default: one per core). Output is identical
    /// whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
    pub threads: Option<usize>,
}

impl EngineArgs {
    /// The engine's configuration: SMTP, IMAP, POP3 and forced-TLS ports, the flow cap and
    /// the idle timeout.
    pub fn config(&self) -> Config {
        let set = |list: &[u16]| list.iter().copied().collect();
        Config {
            services: Services {
                smtp_ports: set(&self.smtp_ports),
                imap_ports: set(&self.imap_ports),
                pop3_ports: set(&self.pop3_ports),
                tls_ports: set(&self.tls_ports),
            },
            limits: Limits {
                max_flows: self.max_flows.max(1),
                idle_timeout_ns: i64::from(self.idle_timeout) * 1_000_000_000,
            },
        }
    }

    /// Worker threads: as asked, or one per core the system gives this process.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// Every port named for a protocol, for a capture filter.
    #[cfg(feature = "live")]
    pub fn all_ports(&self) -> impl Iterator<Item = u16> + '_ {
        [
            &self.smtp_ports,
            &self.imap_ports,
            &self.pop3_ports,
            &self.tls_ports,
        ]
        .into_iter()
        .flatten()
        .copied()
    }
}

/// Who the monitored servers are, what-if policy, and where the census goes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Census and reports")]
pub struct CensusArgs {
    /// Write the census to PATH (repeatable); the format follows the extension: .json (for
    /// tools and `tlscensus merge`), .csv (the remediation spreadsheet), .md, .html (one
    /// self-contained page), .txt (the table). Every format carries the inventory of the
    /// servers' certificates (TLS ≤ 1.2) and flags the expired, expiring, weak and
    /// self-signed ones; CSV writes it to NAME-certificates.csv beside NAME.csv.
    #[arg(long = "report", value_name = "PATH", value_parser = parse_target)]
    pub reports: Vec<Target>,

    /// A monitored server (the Exchange servers): an address or CIDR block (repeatable).
    /// Connections to them are `inbound`, connections from them `outbound` (the server
    /// acting as a client). Without it the listening side of each connection is the server.
    #[arg(long = "server", value_name = "CIDR", value_parser = parse_server)]
    pub servers: Vec<ipnet::IpNet>,

    /// What-if policy marking the clients that would fail (repeatable):
    /// `min-version=TLSv1.2` (the default), `forbid=SUITE,...` (IANA names, 0x codes, `weak`).
    #[arg(long = "policy", value_name = "RULE")]
    pub policy: Vec<String>,
}

impl CensusArgs {
    /// An empty census judged by these servers and this policy.
    pub fn census(&self) -> Result<Census> {
        let policy = Policy::parse(&self.policy)?;
        Ok(Census::new(CensusConfig::new(self.servers.clone(), policy)))
    }
}

/// A `--report PATH`, its format from the extension.
pub fn parse_target(text: &str) -> Result<Target, String> {
    Target::parse(Path::new(text))
}
