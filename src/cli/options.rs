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

    /// Most connections tracked at once, all worker threads together (default: as many as
    /// --flow-memory holds). When the tables are full, connections that carried no data (a
    /// SYN flood's) and QUIC connections no server answered (an Initial flood's) make room
    /// first; then new connections are refused and counted.
    #[arg(long, value_name = "N")]
    pub max_flows: Option<usize>,

    /// Memory for tracking connections, the whole process whatever the thread count: the
    /// flow tables grow with the connections open at once, up to as many as fit, counting
    /// about 650 bytes each (a table slot, the smaller table it grew from, the eviction
    /// queue): about 229,000 in the default 160 MiB with 1, 2, 4 or 8 threads.
    /// A connection that carries data also holds its handshake parsing state until it is
    /// decided. The default keeps a flood of millions of SYNs under 256 MiB for the whole
    /// process. QUIC connections have their own table within the same budget: one sixteenth
    /// of it (about 7,100 QUIC handshakes in progress at once in the default 160 MiB), the
    /// TCP table the rest. Suffixes K, M, G (KiB, MiB, GiB); `0` for no budget (tables then
    /// grow up to --max-flows, default 1,048,576, of which QUIC's table gets a sixteenth).
    #[arg(long, value_name = "SIZE", default_value = "160M", value_parser = parse_size)]
    pub flow_memory: usize,

    /// Seconds without a packet after which a connection is reported and forgotten.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub idle_timeout: u32,

    /// Worker threads parsing handshakes (default: one per core). Output is identical
    /// whatever the number.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(usize))]
    pub threads: Option<usize>,

    /// Do not learn client names from the DNS answers, mDNS, LLMNR, NetBIOS and DHCP
    /// messages in the traffic (read by default, in the same pass as TLS). For a report
    /// that must not hold names of hosts that are not clients' own (privacy), or to save
    /// the little work and memory (at most 65,536 named addresses per worker) they take;
    /// `capture` then also leaves their ports out of its default filter. EHLO and IMAP ID
    /// names are always kept
    #[arg(long, conflicts_with = "udp_names")]
    pub no_udp_names: bool,

    /// Learn names from the UDP name services: the default (kept for scripts that still
    /// give it)
    #[arg(long, hide = true)]
    pub udp_names: bool,
}

/// A size in bytes: a number with an optional K, M or G suffix (binary units).
fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        other => return Err(format!("unknown size unit {other:?}: use K, M or G")),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 160M, 2G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))
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
                // With a budget, it decides how many unless --max-flows asks for fewer.
                max_flows: match (self.max_flows, self.flow_memory) {
                    (Some(n), _) => n.max(1),
                    (None, 0) => Limits::default().max_flows,
                    (None, _) => usize::MAX,
                },
                idle_timeout_ns: i64::from(self.idle_timeout) * 1_000_000_000,
                flow_memory: (self.flow_memory > 0).then_some(self.flow_memory),
            },
            udp_names: !self.no_udp_names,
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
