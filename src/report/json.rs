//! The JSON report: for tools, and the input of `tlscensus merge`.
//!
//! Top-level keys: `format` (`tlscensus-census`), `format_version`, `config` (`servers`,
//! `policy`), `summary`, `services` (per service: totals, clients by primary category,
//! `would_fail` clients, `latency`), `latency_by_server`, `timeline` (hour → negotiated
//! version or `plaintext`/`failed`/`incomplete` → connections) and `clients`: one object
//! per client with `ip`, `via` (when a PROXY header named the client), `direction`,
//! `categories`, `primary`, `would_fail`, `would_fail_reasons`, `connections`,
//! `first_seen`, `last_seen`, and `services` mapping each service to its counts
//! ([`ServiceCounts`]). Derived values (categories, totals, percentiles) are recomputed
//! when a report is read back; the counts, capped sets and latency buckets are the data.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::census::latency::Latency;
use crate::census::{
    Category, Census, CensusConfig, CensusError, Client, ClientKey, Direction, ServiceCounts,
    ServiceSummary, FORMAT_VERSION,
};

const FORMAT: &str = "tlscensus-census";

#[derive(Serialize)]
struct Summary {
    connections: u64,
    clients: u64,
    first_seen: Option<String>,
    last_seen: Option<String>,
    /// Clients by primary category.
    primary: BTreeMap<Category, u64>,
    /// Clients the policy would break.
    would_fail: u64,
}

#[derive(Serialize)]
struct ServiceOut<'a> {
    #[serde(flatten)]
    totals: ServiceSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency: Option<&'a Latency>,
}

#[derive(Serialize)]
struct ClientOut<'a> {
    ip: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<IpAddr>,
    direction: Direction,
    categories: &'a [Category],
    primary: Category,
    would_fail: bool,
    would_fail_reasons: &'a [String],
    connections: u64,
    first_seen: Option<&'a str>,
    last_seen: Option<&'a str>,
    services: &'a BTreeMap<String, ServiceCounts>,
}

#[derive(Serialize)]
struct Out<'a> {
    format: &'static str,
    format_version: u32,
    config: &'a CensusConfig,
    summary: Summary,
    services: BTreeMap<String, ServiceOut<'a>>,
    latency_by_server: &'a BTreeMap<IpAddr, Latency>,
    timeline: &'a BTreeMap<String, BTreeMap<String, u64>>,
    clients: Vec<ClientOut<'a>>,
}

/// The report as a JSON value.
pub fn to_value(census: &Census) -> serde_json::Value {
    let clients = census.clients();
    let totals = census.services(&clients);
    let mut primary = BTreeMap::new();
    let (mut first_seen, mut last_seen) = (None::<String>, None::<String>);
    for c in &clients {
        *primary.entry(c.primary).or_default() += 1;
        if let Some(f) = &c.first_seen {
            if first_seen.as_ref().is_none_or(|x| f < x) {
                first_seen = Some(f.clone());
            }
        }
        if let Some(l) = &c.last_seen {
            if last_seen.as_ref().is_none_or(|x| l > x) {
                last_seen = Some(l.clone());
            }
        }
    }
    let out = Out {
        format: FORMAT,
        format_version: FORMAT_VERSION,
        config: &census.config,
        summary: Summary {
            connections: census.connections(),
            clients: clients.len() as u64,
            first_seen,
            last_seen,
            primary,
            would_fail: clients.iter().filter(|c| c.would_fail).count() as u64,
        },
        services: totals
            .into_iter()
            .map(|(name, totals)| {
                let latency = census.latency_by_service.get(&name);
                (name, ServiceOut { totals, latency })
            })
            .collect(),
        latency_by_server: &census.latency_by_server,
        timeline: &census.timeline,
        clients: clients
            .iter()
            .map(|c| ClientOut {
                ip: c.key.ip,
                via: c.key.via,
                direction: c.key.direction,
                categories: &c.categories,
                primary: c.primary,
                would_fail: c.would_fail,
                would_fail_reasons: &c.would_fail_reasons,
                connections: c.connections,
                first_seen: c.first_seen.as_deref(),
                last_seen: c.last_seen.as_deref(),
                services: &c.client.services,
            })
            .collect(),
    };
    serde_json::to_value(out).expect("the census always serialises")
}

/// Write the JSON report (pretty-printed, one trailing newline).
pub fn write(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_value(census))?;
    writeln!(out)
}

#[derive(Deserialize)]
struct ServiceIn {
    latency: Option<Latency>,
}

#[derive(Deserialize)]
struct ClientIn {
    ip: IpAddr,
    #[serde(default)]
    via: Option<IpAddr>,
    direction: Direction,
    services: BTreeMap<String, ServiceCounts>,
}

#[derive(Deserialize)]
struct In {
    format: String,
    format_version: u32,
    config: CensusConfig,
    #[serde(default)]
    services: BTreeMap<String, ServiceIn>,
    #[serde(default)]
    latency_by_server: BTreeMap<IpAddr, Latency>,
    #[serde(default)]
    timeline: BTreeMap<String, BTreeMap<String, u64>>,
    clients: Vec<ClientIn>,
}

/// Read a JSON report back into a census (for merging or re-rendering).
pub fn read(text: &str) -> Result<Census, CensusError> {
    let input: In = serde_json::from_str(text)?;
    if input.format != FORMAT {
        return Err(CensusError::Format(serde::de::Error::custom(format!(
            "format is {:?}, expected {FORMAT:?}",
            input.format
        ))));
    }
    if input.format_version != FORMAT_VERSION {
        return Err(CensusError::Version(input.format_version));
    }
    let mut census = Census::new(CensusConfig::new(input.config.servers, input.config.policy));
    for c in input.clients {
        let key = ClientKey {
            ip: c.ip,
            via: c.via,
            direction: c.direction,
        };
        let client: &mut Client = census.clients.entry(key).or_default();
        for (name, counts) in c.services {
            client.services.entry(name).or_default().merge(&counts);
        }
    }
    for (name, s) in input.services {
        if let Some(latency) = s.latency {
            census.latency_by_service.insert(name, latency);
        }
    }
    census.latency_by_server = input.latency_by_server;
    census.timeline = input.timeline;
    Ok(census)
}
