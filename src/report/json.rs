//! The JSON report: for tools, and the input of `tlscensus merge`.
//!
//! Top-level keys: `format` (`tlscensus-census`), `format_version`, `config` (`servers`,
//! `policy`), `summary`, `services` (per service: totals, clients by primary category,
//! `would_fail` clients, `latency`), `latency_by_server`, `certificates` (the server
//! certificate inventory, see [`super::certificates::json`]), `timeline` (hour → negotiated
//! version or `plaintext`/`failed`/`incomplete` → connections) and `clients`: one object
//! per client with `ip`, `via` (when a PROXY header named the client), `direction`,
//! `categories`, `primary`, `would_fail`, `would_fail_reasons`,
//! `would_fail_negotiated_only` (the judgement rests on the version a server's log says was
//! negotiated, what the client offers being unknown), `sources` (`wire`, `iis-log`,
//! `smtp-log`: where the client was seen), `connections`, `first_seen`, `last_seen`,
//! `names` (the address's names, each `{"name", "source", "origin", "count"}`, see
//! [`crate::census::names`]; `names_other` counts sightings of names beyond the cap),
//! `software` (hints from public fingerprint data, each `{"name", "os", "seen", "total",
//! "source", "ja3"}` and `advice` when the family has a well-known fix, see
//! [`crate::census::software`]), and `services` mapping each service to its counts
//! ([`ServiceCounts`]). Derived values (categories, totals, percentiles) are recomputed
//! when a report is read back; the counts, capped sets and latency buckets are the data.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::census::latency::Latency;
use crate::census::names::{NameEntry, NameSet};
use crate::census::software;
use crate::census::{
    Category, Census, CensusConfig, CensusError, Client, ClientKey, ClientSummary, CountMap,
    Direction, Seen, ServiceCounts, ServiceSummary,
};

/// The JSON report's `format_version`.
pub const FORMAT_VERSION: u32 = 1;

/// Why a JSON report could not be read back (or merged with the others).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    // The cause is part of the message, not a `source`: error chains would say it twice.
    #[error("{}: {cause}", path.display())]
    Io {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: {cause}", path.display())]
    File {
        path: std::path::PathBuf,
        cause: Box<ReadError>,
    },
    #[error("not a tlscensus report: {0}")]
    Format(#[from] serde_json::Error),
    #[error("unsupported report format version {0} (this tlscensus writes {FORMAT_VERSION})")]
    Version(u32),
    #[error(transparent)]
    Merge(#[from] CensusError),
}

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
    totals: &'a ServiceSummary,
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
    would_fail_reasons: &'a [&'a str],
    /// `would_fail` rests on the negotiated version in logs alone.
    would_fail_negotiated_only: bool,
    /// Where the evidence came from: `wire`, `iis-log`, `smtp-log`.
    sources: &'a [&'a str],
    connections: u64,
    first_seen: Option<Seen<'a>>,
    last_seen: Option<Seen<'a>>,
    names: Vec<NameEntry>,
    #[serde(skip_serializing_if = "is_zero")]
    names_other: u64,
    services: &'a crate::census::Services,
    /// Programs public fingerprint data saw sending this client's JA3s (derived: recomputed
    /// from the services' `ja3` sets when a report is read back).
    software: &'a [software::Hint],
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct Out<'a> {
    format: &'static str,
    format_version: u32,
    config: &'a CensusConfig,
    summary: Summary,
    services: BTreeMap<&'a str, ServiceOut<'a>>,
    latency_by_server: &'a BTreeMap<IpAddr, Latency>,
    timeline: &'a BTreeMap<String, CountMap>,
    clients: Vec<ClientOut<'a>>,
    certificates: serde_json::Value,
}

/// The summary of the classified clients.
fn summary(census: &Census, clients: &[ClientSummary<'_>]) -> Summary {
    let mut primary = BTreeMap::new();
    let (mut first_seen, mut last_seen) = (None::<Seen>, None::<Seen>);
    for c in clients {
        *primary.entry(c.primary).or_default() += 1;
        if let Some(f) = c.first_seen {
            if first_seen.is_none_or(|x| f < x) {
                first_seen = Some(f);
            }
        }
        if let Some(l) = c.last_seen {
            if last_seen.is_none_or(|x| l > x) {
                last_seen = Some(l);
            }
        }
    }
    Summary {
        connections: census.connections(),
        clients: clients.len() as u64,
        first_seen: first_seen.map(|t| t.to_string()),
        last_seen: last_seen.map(|t| t.to_string()),
        primary,
        would_fail: clients.iter().filter(|c| c.would_fail).count() as u64,
    }
}

/// One client as the report shows it.
fn client_out<'a>(census: &Census, c: &'a ClientSummary<'a>) -> ClientOut<'a> {
    let names = census.names.get(&c.key.ip);
    ClientOut {
        names: names.map(NameSet::entries).unwrap_or_default(),
        names_other: names.map_or(0, |n| n.other),
        ip: c.key.ip,
        via: c.key.via,
        direction: c.key.direction,
        categories: &c.categories,
        primary: c.primary,
        would_fail: c.would_fail,
        would_fail_reasons: &c.would_fail_reasons,
        would_fail_negotiated_only: c.would_fail_negotiated_only,
        sources: &c.sources,
        connections: c.connections,
        first_seen: c.first_seen,
        last_seen: c.last_seen,
        services: &c.client.services,
        software: &c.software,
    }
}

/// The report as a JSON value: the whole report in memory, for callers that add to it.
/// [`write`] writes the same bytes without building it.
pub fn to_value(census: &Census) -> serde_json::Value {
    let (clients, totals) = census.clients_and_services();
    let out = Out {
        format: FORMAT,
        format_version: FORMAT_VERSION,
        config: &census.config,
        summary: summary(census, &clients),
        services: totals
            .iter()
            .map(|(name, totals)| {
                let latency = census.latency_by_service.get(name);
                (name.as_str(), ServiceOut { totals, latency })
            })
            .collect(),
        latency_by_server: &census.latency_by_server,
        timeline: &census.timeline,
        clients: clients.iter().map(|c| client_out(census, c)).collect(),
        certificates: super::certificates::json(census),
    };
    serde_json::to_value(out).expect("the census always serialises")
}

/// Write the JSON report (pretty-printed, one trailing newline).
///
/// The report is streamed: each client, service, server and hour is turned into a small
/// [`serde_json::Value`] on its own and written straight out, so memory grows with one
/// client, not with the report. The bytes are those of [`to_value`] pretty-printed: keys
/// in alphabetical order at every level, two-space indents.
pub fn write(census: &Census, out: &mut dyn Write) -> io::Result<()> {
    write_with(census, &serde_json::Map::new(), out)
}

/// [`write`] with more top-level keys (a live capture's counters), placed in alphabetical
/// order among the report's own; one with the name of a report key replaces it. The bytes
/// are those of [`to_value`] with `extra` inserted, pretty-printed.
pub fn write_with(
    census: &Census,
    extra: &serde_json::Map<String, serde_json::Value>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let (clients, services) = census.clients_and_services();
    let summary = summary(census, &clients);

    /// One top-level key's value, written when its turn comes.
    enum Part<'a> {
        Clients,
        Services,
        LatencyByServer,
        Timeline,
        Value(serde_json::Value),
        Extra(&'a serde_json::Value),
    }
    let mut parts: Vec<(&str, Part)> = vec![
        (
            "certificates",
            Part::Value(super::certificates::json(census)),
        ),
        ("clients", Part::Clients),
        ("config", Part::Value(value(&census.config)?)),
        ("format", Part::Value(FORMAT.into())),
        ("format_version", Part::Value(FORMAT_VERSION.into())),
        ("latency_by_server", Part::LatencyByServer),
        ("services", Part::Services),
        ("summary", Part::Value(value(&summary)?)),
        ("timeline", Part::Timeline),
    ];
    parts.retain(|(key, _)| !extra.contains_key(*key));
    parts.extend(extra.iter().map(|(k, v)| (k.as_str(), Part::Extra(v))));
    parts.sort_by(|a, b| a.0.cmp(b.0));

    out.write_all(b"{")?;
    for (i, (key, part)) in parts.iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        out.write_all(INDENT[1].as_bytes())?;
        write_key(out, key)?;
        match part {
            Part::Clients => {
                out.write_all(b"[")?;
                for (i, c) in clients.iter().enumerate() {
                    out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                    out.write_all(INDENT[2].as_bytes())?;
                    pretty(out, 2, &value(&client_out(census, c))?)?;
                }
                if !clients.is_empty() {
                    out.write_all(b"\n")?;
                    out.write_all(INDENT[1].as_bytes())?;
                }
                out.write_all(b"]")?;
            }
            Part::Services => write_map(
                out,
                services.iter().map(|(name, totals)| {
                    let latency = census.latency_by_service.get(name);
                    Ok((
                        name.as_str().into(),
                        value(&ServiceOut { totals, latency })?,
                    ))
                }),
            )?,
            Part::LatencyByServer => {
                // Keyed by address as text, as a `Value` map sorts them ("10.…" before "9.…").
                let mut servers: Vec<(String, &Latency)> = census
                    .latency_by_server
                    .iter()
                    .map(|(ip, l)| (ip.to_string(), l))
                    .collect();
                servers.sort_by(|a, b| a.0.cmp(&b.0));
                write_map(
                    out,
                    servers
                        .into_iter()
                        .map(|(ip, l)| Ok((ip.into(), value(l)?))),
                )?
            }
            Part::Timeline => write_map(
                out,
                census
                    .timeline
                    .iter()
                    .map(|(hour, labels)| Ok((hour.as_str().into(), value(labels)?))),
            )?,
            Part::Value(v) => pretty(out, 1, v)?,
            Part::Extra(v) => pretty(out, 1, v)?,
        }
    }
    out.write_all(b"\n}\n")
}

/// Indents by depth: two spaces a level, as `serde_json`'s pretty printer.
const INDENT: [&str; 3] = ["", "  ", "    "];

/// A value as a `Value` (maps keyed by text, in alphabetical order).
fn value<T: Serialize + ?Sized>(v: &T) -> io::Result<serde_json::Value> {
    serde_json::to_value(v).map_err(io::Error::from)
}

/// `"key": `, escaped as `serde_json` escapes keys.
fn write_key(out: &mut dyn Write, key: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *out, key)?;
    out.write_all(b": ")
}

/// A value pretty-printed as if it were nested `depth` levels deep in the document: its
/// lines after the first are indented by `depth` levels more.
fn pretty(out: &mut dyn Write, depth: usize, v: &serde_json::Value) -> io::Result<()> {
    let mut out = Indented {
        out,
        indent: INDENT[depth].as_bytes(),
    };
    serde_json::to_writer_pretty(&mut out, v)?;
    Ok(())
}

/// An object at depth 1 whose entries (at depth 2) come one at a time, in key order.
fn write_map<'k>(
    out: &mut dyn Write,
    entries: impl Iterator<Item = io::Result<(std::borrow::Cow<'k, str>, serde_json::Value)>>,
) -> io::Result<()> {
    out.write_all(b"{")?;
    let mut any = false;
    for entry in entries {
        let (key, v) = entry?;
        out.write_all(if any { b",\n" } else { b"\n" })?;
        any = true;
        out.write_all(INDENT[2].as_bytes())?;
        write_key(out, &key)?;
        pretty(out, 2, &v)?;
    }
    if any {
        out.write_all(b"\n")?;
        out.write_all(INDENT[1].as_bytes())?;
    }
    out.write_all(b"}")
}

/// A writer that indents every line after the first by `indent`. Pretty-printed JSON has
/// line breaks only between tokens (a newline inside a string is written `\n`), so this
/// shifts a whole value right without touching its content.
struct Indented<'a> {
    out: &'a mut dyn Write,
    indent: &'a [u8],
}

impl Write for Indented<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.indent.is_empty() {
            return self.out.write_all(buf);
        }
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.out.write_all(&rest[..=i])?;
            self.out.write_all(self.indent)?;
            rest = &rest[i + 1..];
        }
        self.out.write_all(rest)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
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
    #[serde(default)]
    names: Vec<NameEntry>,
    #[serde(default)]
    names_other: u64,
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
    timeline: BTreeMap<String, CountMap>,
    clients: Vec<ClientIn>,
    #[serde(default)]
    certificates: super::certificates::InventoryIn,
}

/// Read JSON reports and merge them into one census, exactly the census one run over all
/// their traffic would have built.
pub fn merge_files<P: AsRef<std::path::Path>>(paths: &[P]) -> Result<Census, ReadError> {
    let mut merged: Option<Census> = None;
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|cause| ReadError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let wrap = |e: ReadError| ReadError::File {
            path: path.to_path_buf(),
            cause: Box::new(e),
        };
        let census = read(&text).map_err(wrap)?;
        match &mut merged {
            None => merged = Some(census),
            Some(m) => m.merge(census).map_err(|e| wrap(e.into()))?,
        }
    }
    Ok(merged.unwrap_or_default())
}

/// Read a JSON report back into a census (for merging or re-rendering).
pub fn read(text: &str) -> Result<Census, ReadError> {
    let input: In = serde_json::from_str(text)?;
    if input.format != FORMAT {
        return Err(ReadError::Format(serde::de::Error::custom(format!(
            "format is {:?}, expected {FORMAT:?}",
            input.format
        ))));
    }
    if input.format_version != FORMAT_VERSION {
        return Err(ReadError::Version(input.format_version));
    }
    let mut census = Census::new(CensusConfig::new(input.config.servers, input.config.policy));
    for c in &input.clients {
        // Every entry of one address carries the address's names: take them once.
        if census.names.get(&c.ip).is_some() || (c.names.is_empty() && c.names_other == 0) {
            continue;
        }
        let mut set = NameSet::default();
        for n in &c.names {
            set.add(&n.name, n.source, n.count);
        }
        set.other += c.names_other;
        census.names.by_address.insert(c.ip, set);
    }
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
    census.certificates = input.certificates.into_inventory();
    Ok(census)
}
