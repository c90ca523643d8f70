//! The census: handshake records aggregated per client and service, classified by what the
//! TLS 1.0/1.1 shutdown will do to each client.
//!
//! [`Census::add`] takes each [`Record`] as the engine emits it; nothing per connection is
//! kept, so memory grows with the number of clients (and services, servers and hours of
//! capture), never with the number of connections. The lists of values seen per client
//! (SNIs, ALPNs, cipher suites, JA4s, servers) are capped, see [`capped`].
//!
//! A census is written as JSON ([`crate::report::json`]) with everything needed to merge it
//! with others ([`Census::merge`]): merging the reports of several sensors or days gives
//! exactly the census one run over all their traffic would have given.

pub mod capped;
pub mod certificates;
pub mod ciphers;
pub mod classify;
pub mod counts;
mod counts_serde;
pub mod latency;
pub mod names;
pub mod policy;
pub mod seen;
pub mod services;
pub mod software;
pub mod version;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::record::{Outcome, Record, Sender};
use capped::Capped;
use certificates::Inventory;
pub use classify::{Categories, Category, Found};
pub use counts::CountMap;
use latency::Latency;
pub use policy::Policy;
use seen::Stamp;
pub use seen::{Seen, SeenText};
pub use services::Services;

/// Most distinct values kept per client and service (see [`capped`]).
pub const CAP_SNI: usize = 32;
pub const CAP_ALPN: usize = 16;
pub const CAP_JA4: usize = 32;
pub const CAP_JA3: usize = 32;
pub const CAP_CIPHER_SUITES: usize = 32;
pub const CAP_SERVERS: usize = 32;

/// Which way a connection went, relative to the monitored servers (`--server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// To a monitored server (or, without `--server`, to the listening side).
    Inbound,
    /// From a monitored server acting as a client (partners, relays, AD, ...).
    Outbound,
    /// Between two hosts neither of which is a monitored server.
    Other,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Other => "other",
        }
    }

    /// `in`, `out`, `oth` for narrow columns.
    pub fn short(self) -> &'static str {
        match self {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
            Direction::Other => "oth",
        }
    }
}

/// How a census is set up; reports merge only when their configurations are equal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CensusConfig {
    /// The monitored servers (`--server CIDR`); empty: the listening side is the server.
    #[serde(default)]
    pub servers: Vec<IpNet>,
    pub policy: Policy,
}

impl CensusConfig {
    pub fn new(mut servers: Vec<IpNet>, policy: Policy) -> Self {
        servers = servers.into_iter().map(|n| n.trunc()).collect();
        servers.sort();
        servers.dedup();
        CensusConfig { servers, policy }
    }

    /// The direction of a connection from `client` to `server`. A connection between two
    /// monitored servers is inbound (it is a connection *to* one of them).
    pub fn direction(&self, client: IpAddr, server: IpAddr) -> Direction {
        if self.servers.is_empty() || self.is_server(server) {
            Direction::Inbound
        } else if self.is_server(client) {
            Direction::Outbound
        } else {
            Direction::Other
        }
    }

    /// The client [`Census::add`] counts `record` for: its address (the PROXY header's,
    /// when a load balancer gave one), the load balancer, the direction. The pipeline
    /// shards the run's census by it (`src/pipeline/shards.rs`).
    pub fn client_key(&self, record: &Record) -> ClientKey {
        let wire = record.client.ip;
        let (ip, via) = match &record.client.proxied {
            Some(p) => (p.ip, Some(wire)),
            None => (wire, None),
        };
        ClientKey {
            ip,
            via,
            direction: self.record_direction(record),
        }
    }

    /// The direction of a record's connection: [`Self::direction`], except that an Exchange
    /// send log knows its server was the client, even when no --server says so.
    pub fn record_direction(&self, record: &Record) -> Direction {
        if self.servers.is_empty() && record.source == "smtp-send-log" {
            Direction::Outbound
        } else {
            self.direction(record.client.ip, record.server.ip)
        }
    }

    fn is_server(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.servers.iter().any(|net| net.contains(&ip))
    }
}

/// Parse a `--server` value: a CIDR (`10.1.2.0/24`) or a single address.
pub fn parse_server(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{text:?} is not an address or CIDR block (10.0.0.5, 10.0.0.0/24)"))
}

/// One client's counts for one service: the fields of [`ServiceCountsInner`], which it
/// dereferences to, behind a `Box`.
///
/// Boxed so that [`Client::services`] stays a slice of names and pointers, which it grows
/// and searches: the counts are some 200 bytes.
/// Serialised exactly as the fields (`transparent`).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceCounts(Box<ServiceCountsInner>);

impl std::ops::Deref for ServiceCounts {
    type Target = ServiceCountsInner;

    fn deref(&self) -> &ServiceCountsInner {
        &self.0
    }
}

impl std::ops::DerefMut for ServiceCounts {
    fn deref_mut(&mut self) -> &mut ServiceCountsInner {
        &mut self.0
    }
}

impl From<ServiceCountsInner> for ServiceCounts {
    fn from(inner: ServiceCountsInner) -> Self {
        ServiceCounts(Box::new(inner))
    }
}

impl std::fmt::Debug for ServiceCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The counts of [`ServiceCounts`]: inline what most clients have (192 bytes, one of the
/// allocator's 192-byte blocks), behind one box ([`Uncommon`]) what few do.
///
/// Written and read as the JSON object it always was (see `counts_serde.rs`): every key,
/// in the same order, with the same values.
#[derive(Clone, Default)]
pub struct ServiceCountsInner {
    /// Connections (TLS handshakes and mail sessions).
    pub connections: u64,
    /// Version the server selected → connections.
    pub negotiated: CountMap,
    /// Highest version the client offered → connections.
    pub max_offered: CountMap,
    /// Connections that would fail under the policy, by reason.
    pub policy_failures: CountMap,
    /// Where the connections were seen: `wire`, `iis-log`, `smtp-log` → connections.
    pub sources: CountMap,
    /// The values kept of each capped set, by [`Set`]; the connections beyond each cap
    /// are counted apart ([`Overflow`]), since they nearly never are any.
    sets: [CountMap; Set::ALL.len()],
    first_seen: Stamp,
    last_seen: Stamp,
    uncommon: Option<Box<Uncommon>>,
}

/// The counts of a client's service that are zero or empty for most clients (failures,
/// mail in clear, server logs' counts): boxed apart, allocated the first time one is
/// counted. Figures in benches/NOTES.md, "the census's per-service counts made smaller".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uncommon {
    /// Handshakes that ended in an alert or without a ServerHello.
    pub failed: u64,
    /// Why they failed (`server alert protocol_version`, `no ServerHello`) → connections.
    pub failures: CountMap,
    /// Mail sessions that never started TLS.
    pub plaintext: u64,
    /// Why mail stayed in clear (`STARTTLS not offered`, `STARTTLS refused (454)`, ...).
    pub plaintext_reasons: CountMap,
    /// Connections whose hellos were never seen whole (capture gaps, end of capture).
    pub incomplete: u64,
    /// Connections where the client offered TLS 1.2+ and the server picked less.
    pub server_limited: u64,
    /// Connections that negotiated a weak suite.
    pub weak_cipher: u64,
    /// Connections known only from a server's log: the negotiated version, never what the
    /// client offered.
    pub negotiated_only: u64,
    /// Their negotiated versions (also counted in `negotiated`).
    pub log_negotiated: CountMap,
    /// Connections from logs that negotiated below the policy's minimum, by reason. They
    /// count as would-fail only where no handshake on the wire showed what the client
    /// offers (see [`ServiceCountsInner::would_fail_reasons`]).
    pub log_policy_failures: CountMap,
    /// What goes beyond the usual, in a box of its own.
    overflow: Option<Box<Overflow>>,
}

/// What a client's counts without an [`Uncommon`] box read.
static NO_UNCOMMON: std::sync::LazyLock<Uncommon> = std::sync::LazyLock::new(Uncommon::default);

/// Rarer still than the [`Uncommon`] counts (none on issue 27's handshake capture): a set
/// beyond its cap, a time in another form than the usual (a report edited by hand).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Overflow {
    /// Connections whose value fell outside each capped set's kept values, by [`Set`].
    other: [u64; Set::ALL.len()],
    /// First and last seen when not in the form [`seen`] packs.
    first_seen: Option<Box<str>>,
    last_seen: Option<Box<str>>,
}

/// What an [`Uncommon`] without an [`Overflow`] box reads.
static NO_OVERFLOW: Overflow = Overflow {
    other: [0; Set::ALL.len()],
    first_seen: None,
    last_seen: None,
};

/// The capped sets of a client's service: values seen, at most a cap of them kept (see
/// [`capped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// Negotiated suites (`0xc02f`).
    CipherSuites,
    Sni,
    /// Protocols the client offered.
    Alpn,
    Ja4,
    /// Server addresses it connected to.
    Servers,
    /// JA3s (MD5) the client sent: the key of the software hints ([`software`]).
    Ja3,
}

impl Set {
    pub const ALL: [Set; 6] = [
        Set::CipherSuites,
        Set::Sni,
        Set::Alpn,
        Set::Ja4,
        Set::Servers,
        Set::Ja3,
    ];

    /// Most distinct values kept.
    pub fn cap(self) -> usize {
        match self {
            Set::CipherSuites => CAP_CIPHER_SUITES,
            Set::Sni => CAP_SNI,
            Set::Alpn => CAP_ALPN,
            Set::Ja4 => CAP_JA4,
            Set::Servers => CAP_SERVERS,
            Set::Ja3 => CAP_JA3,
        }
    }
}

/// Which of a service's two times.
#[derive(Clone, Copy)]
enum End {
    First,
    Last,
}

/// The census's name for a record's `source`: both SMTP logs are `smtp-log`.
pub fn source_class(source: &str) -> &str {
    match source {
        "smtp-receive-log" | "smtp-send-log" => "smtp-log",
        other => other,
    }
}

impl ServiceCountsInner {
    /// The counts that few clients have (all zero and empty when none were counted).
    pub fn uncommon(&self) -> &Uncommon {
        self.uncommon.as_deref().unwrap_or(&NO_UNCOMMON)
    }

    /// [`Self::uncommon`] to count into, boxed on first use.
    pub fn uncommon_mut(&mut self) -> &mut Uncommon {
        self.uncommon.get_or_insert_with(Box::default)
    }

    pub fn failed(&self) -> u64 {
        self.uncommon().failed
    }

    pub fn failures(&self) -> &CountMap {
        &self.uncommon().failures
    }

    pub fn plaintext(&self) -> u64 {
        self.uncommon().plaintext
    }

    pub fn plaintext_reasons(&self) -> &CountMap {
        &self.uncommon().plaintext_reasons
    }

    pub fn incomplete(&self) -> u64 {
        self.uncommon().incomplete
    }

    pub fn server_limited(&self) -> u64 {
        self.uncommon().server_limited
    }

    pub fn weak_cipher(&self) -> u64 {
        self.uncommon().weak_cipher
    }

    pub fn negotiated_only(&self) -> u64 {
        self.uncommon().negotiated_only
    }

    pub fn log_negotiated(&self) -> &CountMap {
        &self.uncommon().log_negotiated
    }

    pub fn log_policy_failures(&self) -> &CountMap {
        &self.uncommon().log_policy_failures
    }

    /// One capped set: its kept values and the connections beyond them.
    pub fn set(&self, set: Set) -> Capped<'_> {
        Capped {
            values: &self.sets[set as usize],
            other: self.uncommon().overflow().other[set as usize],
        }
    }

    /// Negotiated suites (`0xc02f`).
    pub fn cipher_suites(&self) -> Capped<'_> {
        self.set(Set::CipherSuites)
    }

    pub fn sni(&self) -> Capped<'_> {
        self.set(Set::Sni)
    }

    /// Protocols the client offered.
    pub fn alpn(&self) -> Capped<'_> {
        self.set(Set::Alpn)
    }

    pub fn ja4(&self) -> Capped<'_> {
        self.set(Set::Ja4)
    }

    /// Server addresses it connected to.
    pub fn servers(&self) -> Capped<'_> {
        self.set(Set::Servers)
    }

    /// JA3s (MD5) the client sent: the key of the software hints ([`software`]).
    pub fn ja3(&self) -> Capped<'_> {
        self.set(Set::Ja3)
    }

    /// Count one connection with `value` in a capped set.
    pub fn add_to(&mut self, set: Set, value: &str) {
        let beyond = capped::add(&mut self.sets[set as usize], value, set.cap());
        if beyond > 0 {
            self.uncommon_mut().overflow_mut().other[set as usize] += beyond;
        }
    }

    /// The earliest connection's time.
    pub fn first_seen(&self) -> Option<Seen<'_>> {
        self.seen(End::First)
    }

    /// The latest connection's time.
    pub fn last_seen(&self) -> Option<Seen<'_>> {
        self.seen(End::Last)
    }

    fn seen(&self, end: End) -> Option<Seen<'_>> {
        let (stamp, text) = match end {
            End::First => (self.first_seen, &self.uncommon().overflow().first_seen),
            End::Last => (self.last_seen, &self.uncommon().overflow().last_seen),
        };
        match stamp.bits() {
            Some(bits) => Some(Seen::Packed(bits)),
            None if stamp == Stamp::TEXT => text.as_deref().map(Seen::Text),
            None => None,
        }
    }

    /// Count a connection at time `ts` into the first and last seen.
    pub fn see(&mut self, ts: &str) {
        let seen = Seen::of(ts);
        self.widen(Some(seen), Some(seen));
    }

    /// Move the first seen back to `first` when it is earlier, the last seen on to `last`
    /// when it is later.
    fn widen(&mut self, first: Option<Seen<'_>>, last: Option<Seen<'_>>) {
        if let Some(first) = first {
            if self.first_seen().is_none_or(|mine| first < mine) {
                self.set_seen(End::First, first);
            }
        }
        if let Some(last) = last {
            if self.last_seen().is_none_or(|mine| last > mine) {
                self.set_seen(End::Last, last);
            }
        }
    }

    fn set_seen(&mut self, end: End, seen: Seen<'_>) {
        let stamp = match seen {
            Seen::Packed(bits) => {
                if let Some(uncommon) = &mut self.uncommon {
                    if let Some(overflow) = &mut uncommon.overflow {
                        *overflow.seen_text(end) = None;
                        if **overflow == NO_OVERFLOW {
                            uncommon.overflow = None;
                        }
                    }
                }
                Stamp::packed(bits)
            }
            Seen::Text(text) => {
                *self.uncommon_mut().overflow_mut().seen_text(end) = Some(text.into());
                Stamp::TEXT
            }
        };
        match end {
            End::First => self.first_seen = stamp,
            End::Last => self.last_seen = stamp,
        }
    }

    pub fn merge(&mut self, o: &ServiceCountsInner) {
        self.connections += o.connections;
        self.negotiated.merge(&o.negotiated);
        self.max_offered.merge(&o.max_offered);
        self.policy_failures.merge(&o.policy_failures);
        self.sources.merge(&o.sources);
        self.widen(o.first_seen(), o.last_seen());
        for set in Set::ALL {
            let i = set as usize;
            let beyond = capped::merge(&mut self.sets[i], &o.sets[i], set.cap());
            let beyond = beyond + o.uncommon().overflow().other[i];
            if beyond > 0 {
                self.uncommon_mut().overflow_mut().other[i] += beyond;
            }
        }
        if let Some(theirs) = &o.uncommon {
            let mine = self.uncommon_mut();
            mine.failed += theirs.failed;
            mine.failures.merge(&theirs.failures);
            mine.plaintext += theirs.plaintext;
            mine.plaintext_reasons.merge(&theirs.plaintext_reasons);
            mine.incomplete += theirs.incomplete;
            mine.server_limited += theirs.server_limited;
            mine.weak_cipher += theirs.weak_cipher;
            mine.negotiated_only += theirs.negotiated_only;
            mine.log_negotiated.merge(&theirs.log_negotiated);
            mine.log_policy_failures.merge(&theirs.log_policy_failures);
        }
    }

    /// One word of each part of these counts that the reports read (the counts, their
    /// version, policy, source and JA3 maps, the uncommon box), combined. A report reading
    /// many clients' counts from cold memory touches a block of them first, in a loop
    /// small enough for the loads to overlap, instead of waiting on each in turn while it
    /// classifies a client or lays a row out.
    pub fn touch(&self) -> u64 {
        let first = |m: &CountMap| m.values().next().unwrap_or(0);
        self.connections
            ^ first(&self.max_offered)
            ^ first(&self.negotiated)
            ^ first(&self.policy_failures)
            ^ first(&self.sources)
            ^ first(&self.sets[Set::Ja3 as usize])
            ^ self.uncommon().failed
    }

    /// Whether anything is known of what the client offered: a hello on the wire.
    fn offers_seen(&self) -> bool {
        !self.max_offered.is_empty()
    }

    /// Why connections would fail under the policy → connections: what the client offered
    /// when the wire showed it, else what the logs say was negotiated.
    pub fn would_fail_reasons(&self) -> impl Iterator<Item = (&str, u64)> {
        let logs = if self.offers_seen() {
            None
        } else {
            Some(self.log_policy_failures().iter())
        };
        self.policy_failures
            .iter()
            .chain(logs.into_iter().flatten())
    }

    /// Connections that would fail under the policy.
    pub fn would_fail(&self) -> u64 {
        self.would_fail_reasons().map(|(_, n)| n).sum()
    }

    /// Versions below TLS 1.2 were negotiated per the logs, and no hello on the wire says
    /// what the client offers: legacy as far as anything shows.
    pub fn legacy_by_logs(&self) -> bool {
        !self.offers_seen()
            && self
                .log_negotiated()
                .iter()
                .any(|(v, n)| n > 0 && version::below_tls12(v))
    }
}

impl Uncommon {
    fn overflow(&self) -> &Overflow {
        self.overflow.as_deref().unwrap_or(&NO_OVERFLOW)
    }

    /// [`Self::overflow`] to count into, boxed on first use.
    fn overflow_mut(&mut self) -> &mut Overflow {
        self.overflow.get_or_insert_with(Box::default)
    }
}

impl Overflow {
    fn seen_text(&mut self, end: End) -> &mut Option<Box<str>> {
        match end {
            End::First => &mut self.first_seen,
            End::Last => &mut self.last_seen,
        }
    }
}

/// Equal when every count is: a box of zeros counts as no box.
impl PartialEq for ServiceCountsInner {
    fn eq(&self, o: &Self) -> bool {
        self.connections == o.connections
            && self.negotiated == o.negotiated
            && self.max_offered == o.max_offered
            && self.policy_failures == o.policy_failures
            && self.sources == o.sources
            && self.sets == o.sets
            && self.first_seen == o.first_seen
            && self.last_seen == o.last_seen
            && self.uncommon() == o.uncommon()
    }
}

impl Eq for ServiceCountsInner {}

impl std::fmt::Debug for ServiceCountsInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        counts_serde::Out::of(self).fmt(f)
    }
}

impl Serialize for ServiceCountsInner {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        counts_serde::Out::of(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for ServiceCountsInner {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        counts_serde::In::deserialize(d).map(counts_serde::In::into_counts)
    }
}

/// Who a client is: its address (the PROXY header's, when a load balancer gave one), the
/// load balancer it came through, and the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientKey {
    pub ip: IpAddr,
    /// The address on the wire when a PROXY header named the true client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    pub direction: Direction,
}

/// Everything counted for one client.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Client {
    /// Service → counts, in name order: a sorted slice of names and boxes (see
    /// [`Services`] and [`ServiceCounts`]).
    pub services: Services,
}

/// A client with its classification, as reports show it.
#[derive(Debug, Clone)]
pub struct ClientSummary<'a> {
    pub key: ClientKey,
    pub client: &'a Client,
    /// Every category that applies, most severe first.
    pub categories: Categories,
    pub primary: Category,
    pub would_fail: bool,
    /// Why it would fail under the policy.
    pub would_fail_reasons: Vec<&'a str>,
    /// `would_fail` rests on the version logs say was negotiated alone: no handshake on
    /// the wire showed what the client offers.
    pub would_fail_negotiated_only: bool,
    /// Where its evidence came from (`iis-log`, `smtp-log`, `wire`), sorted.
    pub sources: Vec<&'a str>,
    pub connections: u64,
    pub first_seen: Option<Seen<'a>>,
    pub last_seen: Option<Seen<'a>>,
    /// How it fares on each of its services alone, in the order of `client.services`:
    /// classified once here, since the rows and the service totals ask again.
    pub per_service: Vec<OnService>,
    /// Its software hints ([`software::hints`]), found in the same pass over its counts:
    /// every report shows them, and reading the counts again from cold memory for them was
    /// most of what they cost.
    pub software: Vec<software::Hint>,
}

/// A client on one of its services.
#[derive(Debug, Clone, Copy)]
pub struct OnService {
    /// The categories that apply on this service.
    pub found: Found,
    /// Some connection on this service would fail under the policy.
    pub would_fail: bool,
}

impl<'a> ClientSummary<'a> {
    /// Classify one client.
    fn of(key: ClientKey, client: &'a Client) -> Self {
        let mut found = Found::default();
        let mut reasons: Vec<&str> = Vec::new();
        let mut wire_reasons = false;
        let mut sources: Vec<&str> = Vec::new();
        let mut connections = 0;
        let (mut first_seen, mut last_seen) = (None::<Seen>, None::<Seen>);
        let mut per_service = Vec::with_capacity(client.services.len());
        let mut software = Vec::new();
        for s in client.services.values() {
            software::add_candidates(&mut software, s);
            let on_service = Found::service(s);
            per_service.push(OnService {
                found: on_service,
                would_fail: s.would_fail() > 0,
            });
            found = found | on_service;
            reasons.extend(s.would_fail_reasons().map(|(r, _)| r));
            wire_reasons |= !s.policy_failures.is_empty();
            sources.extend(s.sources.keys());
            connections += s.connections;
            if let Some(f) = s.first_seen() {
                first_seen = Some(first_seen.map_or(f, |m| m.min(f)));
            }
            if let Some(l) = s.last_seen() {
                last_seen = Some(last_seen.map_or(l, |m| m.max(l)));
            }
        }
        reasons.sort_unstable();
        reasons.dedup();
        sources.sort_unstable();
        sources.dedup();
        ClientSummary {
            would_fail_negotiated_only: !reasons.is_empty() && !wire_reasons,
            sources,
            key,
            client,
            primary: found.primary(),
            categories: found.categories(),
            would_fail: !reasons.is_empty(),
            would_fail_reasons: reasons,
            connections,
            first_seen,
            last_seen,
            per_service,
            software: software::choose(software),
        }
    }
}

/// One client on one service: the unit of the tables, CSV and HTML rows.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub client: &'a ClientSummary<'a>,
    /// The client's place in the list `rows` was given.
    pub client_index: usize,
    pub service: &'a str,
    pub counts: &'a ServiceCounts,
    /// The categories of this client on this service alone, most severe first.
    pub categories: Categories,
    /// Some connection on this service would fail under the policy.
    pub would_fail: bool,
}

impl Row<'_> {
    pub fn primary(&self) -> Category {
        self.categories[0]
    }
}

/// Every (client, service) row, at risk first: by the row's primary category, then rows
/// the policy would break, then in client order, then by service name.
pub fn rows<'a>(clients: &'a [ClientSummary<'a>]) -> Vec<Row<'a>> {
    // The rows hold what they are sorted by, from what `ClientSummary::of` found:
    // comparing rows by their client re-read each row's categories and policy failures,
    // from cold memory, at every comparison. They are made and sorted in place on the
    // report threads (see `crate::report`).
    let mut rows: Vec<Row<'a>> = clients
        .par_iter()
        .enumerate()
        .flat_map_iter(|(i, c)| {
            c.client
                .services
                .iter()
                .zip(&c.per_service)
                .map(move |((name, counts), on)| Row {
                    client: c,
                    client_index: i,
                    service: name.as_str(),
                    counts,
                    categories: on.found.categories(),
                    would_fail: on.would_fail,
                })
        })
        .collect();
    // A client's index and a service name are unique together: the unstable sort gives the
    // one order.
    rows.par_sort_unstable_by(|a, b| {
        (a.primary(), !a.would_fail, a.client_index)
            .cmp(&(b.primary(), !b.would_fail, b.client_index))
            .then_with(|| a.service.cmp(b.service))
    });
    rows
}

/// Per-service totals over all clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceSummary {
    pub clients: u64,
    pub connections: u64,
    pub negotiated: CountMap,
    pub max_offered: CountMap,
    pub plaintext: u64,
    pub failed: u64,
    pub incomplete: u64,
    /// Clients by primary category.
    pub primary: BTreeMap<Category, u64>,
    /// Clients that would fail under the policy.
    pub would_fail: u64,
    /// Their connections.
    pub would_fail_connections: u64,
}

impl ServiceSummary {
    /// Add the totals of other clients (of the same service).
    fn merge(&mut self, other: &ServiceSummary) {
        self.clients += other.clients;
        self.connections += other.connections;
        self.negotiated.merge(&other.negotiated);
        self.max_offered.merge(&other.max_offered);
        self.plaintext += other.plaintext;
        self.failed += other.failed;
        self.incomplete += other.incomplete;
        for (category, n) in &other.primary {
            *self.primary.entry(*category).or_default() += n;
        }
        self.would_fail += other.would_fail;
        self.would_fail_connections += other.would_fail_connections;
    }
}

/// Why two censuses cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum CensusError {
    #[error("reports differ in {0}: merge only reports made with the same --server and --policy")]
    Config(&'static str),
}

/// The census of a run (or of merged runs).
#[derive(Debug, Clone, PartialEq)]
pub struct Census {
    pub config: CensusConfig,
    /// Hashed with foldhash, not SipHash: every record looks its client up, and the shards'
    /// clients are moved into one map at the end (keys are addresses seen on the wire; the
    /// seed is random per process all the same).
    pub clients: HashMap<ClientKey, Client, foldhash::fast::RandomState>,
    /// Handshake latency per service.
    pub latency_by_service: BTreeMap<String, Latency>,
    /// Handshake latency per server address.
    pub latency_by_server: BTreeMap<IpAddr, Latency>,
    /// Hour (`2024-05-01T10:00Z`) → negotiated version (or `plaintext`, `failed`,
    /// `incomplete`) → connections.
    pub timeline: BTreeMap<String, CountMap>,
    /// The names of client addresses (EHLO, IMAP ID, DNS ...), see [`names`].
    pub names: names::Names,
    /// Server certificates per server and service (TLS ≤ 1.2 handshakes).
    pub certificates: Inventory,
}

impl Default for Census {
    fn default() -> Self {
        Census::new(CensusConfig::default())
    }
}

/// `2024-03-01T14:00Z` for a record time `2024-03-01T14:27:03.512Z`, built in `buf` (the
/// census looks it up once per record); a time too short to cut stays as it is.
fn hour_of<'a>(ts: &'a str, buf: &'a mut [u8; HOUR_LEN]) -> &'a str {
    let Some(hour) = ts.get(..13) else {
        return ts;
    };
    buf[..13].copy_from_slice(hour.as_bytes());
    buf[13..].copy_from_slice(b":00Z");
    std::str::from_utf8(buf).unwrap_or(ts)
}

/// Length of an [`hour_of`] key.
const HOUR_LEN: usize = 17;

/// Format into a stack buffer and hand `f` the text: the census formats an address and a
/// suite code for every record only to look them up. Longer text goes through a `String`.
fn with_formatted<R>(args: std::fmt::Arguments<'_>, f: impl FnOnce(&str) -> R) -> R {
    use std::io::Write as _;
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    if cursor.write_fmt(args).is_ok() {
        let len = cursor.position() as usize;
        if let Ok(text) = std::str::from_utf8(&buf[..len]) {
            return f(text);
        }
    }
    f(&args.to_string())
}

/// [`with_formatted`] of an address, an IPv4 one (the usual server) written octet by
/// octet: the formatting machinery cost more than the lookup the text is for.
fn with_address<R>(ip: IpAddr, f: impl FnOnce(&str) -> R) -> R {
    let IpAddr::V4(v4) = ip else {
        return with_formatted(format_args!("{ip}"), f);
    };
    let mut buf = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(octet).as_bytes();
        buf[len..len + digits.len()].copy_from_slice(digits);
        len += digits.len();
    }
    f(std::str::from_utf8(&buf[..len]).expect("digits and dots"))
}

fn failure_reason(record: &Record) -> String {
    match record.outcome {
        Outcome::NoServerHello => "no ServerHello".into(),
        _ => {
            let alert = record
                .alerts
                .iter()
                .find(|a| a.level == 2)
                .or_else(|| record.alerts.first());
            match alert {
                Some(a) => {
                    let from = match a.from {
                        Sender::Client => "client",
                        Sender::Server => "server",
                    };
                    format!("{from} alert {}", a.description_name)
                }
                None => "alert".into(),
            }
        }
    }
}

fn plaintext_reason(record: &Record) -> String {
    if record.starttls_offered == Some(false) {
        return "STARTTLS not offered by the server".into();
    }
    match record.starttls_reply.as_deref() {
        Some("accepted") => "TLS never started after STARTTLS".into(),
        Some(reply) => format!("STARTTLS refused ({reply})"),
        None if record.starttls.is_some() => "STARTTLS got no answer".into(),
        None => "client did not ask for STARTTLS".into(),
    }
}

impl Census {
    pub fn new(config: CensusConfig) -> Self {
        Census {
            config,
            clients: HashMap::default(),
            latency_by_service: BTreeMap::new(),
            latency_by_server: BTreeMap::new(),
            timeline: BTreeMap::new(),
            names: names::Names::default(),
            certificates: Inventory::default(),
        }
    }

    /// Count one connection's record.
    pub fn add(&mut self, record: &Record) {
        let key = self.config.client_key(record);
        let ip = key.ip;
        if let Some(smtp) = &record.smtp {
            self.names
                .add_from_client(ip, &smtp.helo, names::NameSource::Ehlo);
        }
        if let Some(imap) = &record.imap {
            self.names
                .add_from_client(ip, &imap.id, names::NameSource::ImapId);
        }
        self.certificates.add(record);
        let services = &mut self.clients.entry(key).or_default().services;
        let s: &mut ServiceCountsInner = services.get_or_default(&record.service);

        s.connections += 1;
        s.see(&record.ts);
        with_address(record.server.ip, |ip| s.add_to(Set::Servers, ip));

        s.sources.add(source_class(record.source), 1);
        if let Some(log) = &record.log {
            let version = log.version.name();
            s.negotiated.add(&version, 1);
            let u = s.uncommon_mut();
            u.negotiated_only += 1;
            u.log_negotiated.add(&version, 1);
            if log.weak.is_some() {
                u.weak_cipher += 1;
            }
            if let Some(min) = self.config.policy.min_version.as_deref() {
                if version::parse_version(min).is_some_and(|min| log.version.0 < min) {
                    u.log_policy_failures.add(
                        &format!("negotiated {version} (in logs; offered versions unknown)"),
                        1,
                    );
                }
            }
        }
        let ch = record.client_hello.as_ref();
        let sh = record.server_hello.as_ref();
        if let Some(ch) = ch {
            s.max_offered.add(&ch.max_version.name(), 1);
            if let Some(sni) = &ch.sni {
                s.add_to(Set::Sni, sni);
            }
            for proto in &ch.alpn {
                s.add_to(Set::Alpn, proto);
            }
            s.add_to(Set::Ja4, &ch.ja4);
            s.add_to(Set::Ja3, &ch.ja3);
            if let Some(reason) = self.config.policy.violation(ch) {
                s.policy_failures.add(&reason, 1);
            }
        }
        if let Some(sh) = sh {
            s.negotiated.add(&sh.version.name(), 1);
            ciphers::Code(sh.cipher_suite).with_text(|code| s.add_to(Set::CipherSuites, code));
            if ciphers::weakness(sh.cipher_suite).is_some() {
                s.uncommon_mut().weak_cipher += 1;
            }
            if let Some(ch) = ch {
                if ch.max_version.0 >= version::TLS12 && sh.version.0 < version::TLS12 {
                    s.uncommon_mut().server_limited += 1;
                }
            }
        }
        let label: Cow<'static, str> = match record.outcome {
            Outcome::Alert | Outcome::NoServerHello => {
                let u = s.uncommon_mut();
                u.failed += 1;
                u.failures.add(&failure_reason(record), 1);
                "failed".into()
            }
            Outcome::Plaintext => {
                let u = s.uncommon_mut();
                u.plaintext += 1;
                u.plaintext_reasons.add(&plaintext_reason(record), 1);
                "plaintext".into()
            }
            Outcome::Incomplete => {
                s.uncommon_mut().incomplete += 1;
                "incomplete".into()
            }
            Outcome::Negotiated => match (sh, &record.log) {
                (Some(sh), _) => sh.version.name(),
                (None, Some(log)) => log.version.name(),
                (None, None) => "incomplete".into(),
            },
        };
        let mut hour_buf = [0u8; HOUR_LEN];
        let hour = hour_of(&record.ts, &mut hour_buf);
        match self.timeline.get_mut(hour) {
            Some(labels) => labels.add(&label, 1),
            None => {
                let mut labels = CountMap::new();
                labels.add(&label, 1);
                self.timeline.insert(hour.to_owned(), labels);
            }
        }

        if let Some(us) = record.handshake_us {
            match self.latency_by_service.get_mut(&record.service) {
                Some(latency) => latency.record(us),
                None => {
                    let mut latency = Latency::default();
                    latency.record(us);
                    self.latency_by_service
                        .insert(record.service.clone(), latency);
                }
            }
            self.latency_by_server
                .entry(record.server.ip)
                .or_default()
                .record(us);
        }
    }

    /// Add another census's counts, as if this run had seen its traffic too.
    pub fn merge(&mut self, other: Census) -> Result<(), CensusError> {
        if self.config.servers != other.config.servers {
            return Err(CensusError::Config("--server"));
        }
        if self.config.policy != other.config.policy {
            return Err(CensusError::Config("--policy"));
        }
        for (key, client) in other.clients {
            // A service new to this census takes the other's counts as they are.
            (self.clients.entry(key).or_default().services).merge(client.services);
        }
        for (service, latency) in other.latency_by_service {
            self.latency_by_service
                .entry(service)
                .or_default()
                .merge(&latency);
        }
        for (server, latency) in other.latency_by_server {
            self.latency_by_server
                .entry(server)
                .or_default()
                .merge(&latency);
        }
        for (hour, labels) in other.timeline {
            self.timeline.entry(hour).or_default().merge(&labels);
        }
        self.names.merge(&other.names);
        self.certificates.merge(&other.certificates);
        Ok(())
    }

    /// The capture's end as the census knows it (its last handshake), in Unix seconds: what
    /// certificate expiry is measured against.
    pub fn capture_end(&self) -> Option<i64> {
        // A walk over every client from cold memory: on the report threads.
        let last = self
            .clients
            .par_iter()
            .flat_map_iter(|(_, c)| c.services.values())
            .filter_map(|s| s.last_seen())
            .max();
        certificates::end_of(last.map(Seen::text).as_deref())
    }

    /// [`Census::capture_end`] from the census's classified clients, which hold each
    /// client's last connection already: no walk over the census.
    pub fn capture_end_of(clients: &[ClientSummary<'_>]) -> Option<i64> {
        let last = clients.iter().filter_map(|c| c.last_seen).max();
        certificates::end_of(last.map(Seen::text).as_deref())
    }

    /// Total connections counted.
    pub fn connections(&self) -> u64 {
        self.clients
            .par_iter()
            .flat_map_iter(|(_, c)| c.services.values())
            .map(|s| s.connections)
            .sum()
    }

    /// Every client with its classification, at-risk clients first: by primary category,
    /// then those the policy would break, then by connections (most first), then address.
    pub fn clients(&self) -> Vec<ClientSummary<'_>> {
        // Classified on the report threads (see `crate::report`): each client is read from
        // cold memory, so the work is in the reading and spreads over cores.
        let mut out: Vec<ClientSummary<'_>> = self
            .clients
            .par_iter()
            .map(|(key, client)| ClientSummary::of(*key, client))
            .collect();
        sort_clients(&mut out);
        out
    }

    /// Totals per service, from the classified clients: summed over blocks of clients on
    /// the report threads, then the blocks' sums added up (every total is a sum or a count
    /// map, so the order does not matter).
    pub fn services(&self, clients: &[ClientSummary<'_>]) -> BTreeMap<String, ServiceSummary> {
        clients
            .par_chunks(1024)
            .map(service_totals)
            .reduce(BTreeMap::new, merge_service_totals)
    }

    /// [`Census::clients`] and their [`Census::services`] in one pass over the census: a
    /// client's totals are added while its counts, read from cold memory to classify it,
    /// are still in the cache (a second pass read them all again).
    pub fn clients_and_services(
        &self,
    ) -> (Vec<ClientSummary<'_>>, BTreeMap<String, ServiceSummary>) {
        // In blocks of clients, each touched first (see `ServiceCountsInner::touch`), small
        // enough for what they touch to stay in the core's cache until they are classified.
        // Each rayon job adds its clients' totals up apart, handed over when it ends.
        const TOUCH_CLIENTS: usize = 32;
        let all: Vec<(&ClientKey, &Client)> = self.clients.iter().collect();
        let parts = std::sync::Mutex::new(Vec::new());
        let mut clients: Vec<ClientSummary<'_>> = all
            .par_iter()
            .enumerate()
            .map_init(
                || TotalsPart {
                    totals: BTreeMap::new(),
                    parts: &parts,
                },
                |part, (i, (key, client))| {
                    if i % TOUCH_CLIENTS == 0 {
                        let block = &all[i..all.len().min(i + TOUCH_CLIENTS)];
                        let touched = block
                            .iter()
                            .flat_map(|(_, client)| client.services.values())
                            .fold(0, |sum, s| sum ^ s.touch());
                        std::hint::black_box(touched);
                    }
                    let c = ClientSummary::of(**key, client);
                    add_service_totals(&mut part.totals, &c);
                    c
                },
            )
            .collect();
        let services = parts
            .into_inner()
            .expect("a report thread panicked")
            .into_iter()
            .fold(BTreeMap::new(), merge_service_totals);
        sort_clients(&mut clients);
        (clients, services)
    }
}

/// Clients in report order: at-risk first, by primary category, then those the policy
/// would break, then by connections (most first), then address.
fn sort_clients(out: &mut [ClientSummary<'_>]) {
    // Client keys are unique, so no two clients compare equal: the unstable sort gives
    // the one order.
    out.par_sort_unstable_by(|a, b| {
        (
            a.primary,
            !a.would_fail,
            std::cmp::Reverse(a.connections),
            a.key,
        )
            .cmp(&(
                b.primary,
                !b.would_fail,
                std::cmp::Reverse(b.connections),
                b.key,
            ))
    });
}

/// One rayon job's per-service totals in [`Census::clients_and_services`], added to the
/// list of the jobs' totals when the job is done with it.
struct TotalsPart<'p> {
    totals: BTreeMap<String, ServiceSummary>,
    parts: &'p std::sync::Mutex<Vec<BTreeMap<String, ServiceSummary>>>,
}

impl Drop for TotalsPart<'_> {
    fn drop(&mut self) {
        let totals = std::mem::take(&mut self.totals);
        if let Ok(mut parts) = self.parts.lock() {
            parts.push(totals);
        }
    }
}

/// Totals per service over some clients.
fn service_totals(clients: &[ClientSummary<'_>]) -> BTreeMap<String, ServiceSummary> {
    let mut out: BTreeMap<String, ServiceSummary> = BTreeMap::new();
    for c in clients {
        add_service_totals(&mut out, c);
    }
    out
}

/// Add the totals of `other` to `totals` (of other clients).
fn merge_service_totals(
    mut totals: BTreeMap<String, ServiceSummary>,
    other: BTreeMap<String, ServiceSummary>,
) -> BTreeMap<String, ServiceSummary> {
    for (name, t) in other {
        match totals.get_mut(&name) {
            Some(sum) => sum.merge(&t),
            None => {
                totals.insert(name, t);
            }
        }
    }
    totals
}

/// Add one client's services to the totals per service.
fn add_service_totals(out: &mut BTreeMap<String, ServiceSummary>, c: &ClientSummary<'_>) {
    for ((name, s), on) in c.client.services.iter().zip(&c.per_service) {
        // Look up before inserting: `entry` would want an owned name every time.
        let t = match out.get_mut(name) {
            Some(t) => t,
            None => out.entry(name.clone()).or_default(),
        };
        t.clients += 1;
        t.connections += s.connections;
        t.negotiated.merge(&s.negotiated);
        t.max_offered.merge(&s.max_offered);
        t.plaintext += s.plaintext();
        t.failed += s.failed();
        t.incomplete += s.incomplete();
        // The client's category on this service alone.
        *t.primary.entry(on.found.primary()).or_default() += 1;
        if on.would_fail {
            t.would_fail += 1;
            t.would_fail_connections += s.would_fail();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_follows_the_monitored_servers() {
        let none = CensusConfig::default();
        let a: IpAddr = "10.0.0.5".parse().unwrap();
        let b: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(none.direction(b, a), Direction::Inbound);
        let cfg = CensusConfig::new(
            vec![parse_server("10.0.0.0/24").unwrap()],
            Policy::default(),
        );
        assert_eq!(cfg.direction(b, a), Direction::Inbound);
        assert_eq!(cfg.direction(a, b), Direction::Outbound);
        assert_eq!(cfg.direction(b, b), Direction::Other);
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(cfg.direction(b, mapped), Direction::Inbound);
        assert!(parse_server("10.0.0.1").is_ok());
        assert!(parse_server("nonsense").is_err());
    }

    #[test]
    fn service_counts_are_one_pointer_and_written_as_their_fields() {
        assert_eq!(
            std::mem::size_of::<ServiceCounts>(),
            std::mem::size_of::<usize>()
        );
        let mut counts = ServiceCounts::from(ServiceCountsInner {
            connections: 3,
            ..Default::default()
        });
        counts.see("2024-05-01T10:00:00Z");
        counts.add_to(Set::Sni, "example.org");
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, serde_json::to_string(&*counts).unwrap());
        assert!(
            json.starts_with(r#"{"connections":3,"negotiated":{}"#),
            "{json}"
        );
        let back: ServiceCounts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, counts);
    }

    /// The allocator's size classes run 160, 192, 224, ... 384: the counts of every client
    /// service are one block, so a few bytes past 192 would cost 32 more each.
    #[test]
    fn service_counts_fit_a_192_byte_block() {
        assert!(std::mem::size_of::<ServiceCountsInner>() <= 192);
        assert!(std::mem::size_of::<Uncommon>() <= 128);
    }

    /// A time in another form kept as text until a usual one replaces it, and then the
    /// counts are those of the usual times alone.
    #[test]
    fn times_in_other_forms_kept_until_replaced() {
        let (a, b) = ("2024-05-01T09:00:00.000000Z", "2024-05-02T00:00:00.000000Z");
        let mut mixed = ServiceCountsInner::default();
        mixed.see("2024-05-01Z");
        assert_eq!(mixed.first_seen().unwrap().to_string(), "2024-05-01Z");
        mixed.see(a);
        assert_eq!(mixed.first_seen().unwrap().to_string(), a);
        assert_eq!(mixed.last_seen().unwrap().to_string(), "2024-05-01Z");
        mixed.see(b);
        assert_eq!(mixed.last_seen().unwrap().to_string(), b);
        assert!(mixed.uncommon().overflow.is_none());
        let mut usual = ServiceCountsInner::default();
        usual.see(b);
        usual.see(a);
        assert_eq!(mixed, usual);
        assert_eq!(
            serde_json::to_string(&mixed).unwrap(),
            serde_json::to_string(&usual).unwrap()
        );
    }

    /// Counts with every key set to something other than its default.
    fn every_key_set() -> ServiceCountsInner {
        let mut s = ServiceCountsInner {
            connections: 40,
            ..Default::default()
        };
        s.negotiated.add("TLSv1.2", 30);
        s.max_offered.add("TLSv1.3", 30);
        s.policy_failures.add("offers at most TLSv1.1", 1);
        s.sources.add("wire", 30);
        s.sources.add("iis-log", 10);
        s.see("2024-05-01T10:23:45.123456Z");
        s.see("2024-05-01 11:00:00");
        let u = s.uncommon_mut();
        u.failed = 2;
        u.failures.add("no ServerHello", 2);
        u.plaintext = 3;
        u.plaintext_reasons.add("STARTTLS refused (454)", 3);
        u.incomplete = 4;
        u.server_limited = 5;
        u.weak_cipher = 6;
        u.negotiated_only = 10;
        u.log_negotiated.add("TLSv1.0", 10);
        u.log_policy_failures.add("negotiated TLSv1.0", 10);
        for set in Set::ALL {
            for i in 0..=set.cap() {
                s.add_to(set, &format!("v{i:02}"));
            }
        }
        s
    }

    /// The keys, in the order of the fields of the struct the report was derived from
    /// before the counts were split (and so the order of every report written since).
    const KEYS: [&str; 23] = [
        "connections",
        "negotiated",
        "max_offered",
        "plaintext",
        "failed",
        "failures",
        "plaintext_reasons",
        "incomplete",
        "server_limited",
        "weak_cipher",
        "policy_failures",
        "first_seen",
        "last_seen",
        "cipher_suites",
        "sni",
        "alpn",
        "ja4",
        "servers",
        "ja3",
        "sources",
        "negotiated_only",
        "log_negotiated",
        "log_policy_failures",
    ];

    #[test]
    fn written_with_every_key_in_order_and_read_back_whole() {
        let s = every_key_set();
        let json = serde_json::to_string(&s).unwrap();
        let at: Vec<usize> = KEYS
            .iter()
            .map(|k| {
                json.find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("{k}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value.as_object().unwrap().len(), KEYS.len());
        assert_eq!(value["first_seen"], "2024-05-01 11:00:00");
        assert_eq!(value["last_seen"], "2024-05-01T10:23:45.123456Z");
        assert_eq!(value["weak_cipher"], 6);
        assert_eq!(value["alpn"]["other"], 1);
        assert_eq!(value["alpn"]["values"].as_object().unwrap().len(), CAP_ALPN);
        let back: ServiceCountsInner = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    /// A report that leaves out the keys added over time reads as it always did, and one
    /// without the keys that were always there fails as it always did.
    #[test]
    fn reads_reports_without_the_later_keys() {
        let old = r#"{"connections":2,"negotiated":{"TLSv1.2":2},"max_offered":{},
            "plaintext":0,"failed":0,"first_seen":null,"last_seen":"2024-05-01T10:23:45.123456Z"}"#;
        let s: ServiceCountsInner = serde_json::from_str(old).unwrap();
        assert_eq!(s.connections, 2);
        assert!(s.uncommon.is_none());
        assert!(s.first_seen().is_none());
        assert_eq!(
            s.last_seen().map(|t| t.to_string()).as_deref(),
            Some("2024-05-01T10:23:45.123456Z")
        );
        let err = serde_json::from_str::<ServiceCountsInner>(r#"{"negotiated":{}}"#).unwrap_err();
        assert!(
            err.to_string().starts_with("missing field `connections`"),
            "{err}"
        );
    }

    /// Counts split in two and merged equal the counts of one, whichever half has the
    /// uncommon counts, and a box of zeros equals no box.
    #[test]
    fn merged_halves_equal_the_whole() {
        let whole = every_key_set();
        let mut none = ServiceCountsInner::default();
        none.merge(&whole);
        assert_eq!(none, whole);
        let mut boxed = ServiceCountsInner::default();
        boxed.uncommon_mut();
        assert_eq!(boxed, ServiceCountsInner::default());
        boxed.merge(&whole);
        assert_eq!(boxed, whole);
        let mut twice = whole.clone();
        twice.merge(&whole);
        assert_eq!(twice.plaintext(), 6);
        assert_eq!(whole.alpn().other, 1);
        assert_eq!(twice.alpn().other, 2);
        assert!(twice.alpn().values.values().all(|n| n == 2));
        assert_eq!(twice.first_seen(), whole.first_seen());
    }

    #[test]
    fn addresses_are_written_as_std_writes_them() {
        let mut addresses: Vec<IpAddr> = [0u32, 1, 255, 256, 0x0a00_0001, 0xc000_0203, u32::MAX]
            .into_iter()
            .map(|n| IpAddr::from(std::net::Ipv4Addr::from(n)))
            .collect();
        for octet in [0u8, 9, 10, 99, 100, 199, 200, 255] {
            addresses.push(IpAddr::from([octet, 99, 100, octet]));
        }
        addresses.push("2001:db8::1".parse().unwrap());
        addresses.push("::ffff:192.0.2.1".parse().unwrap());
        for ip in addresses {
            assert_eq!(with_address(ip, str::to_string), ip.to_string());
        }
    }

    #[test]
    fn hours() {
        let mut buf = [0u8; HOUR_LEN];
        assert_eq!(
            hour_of("2024-05-01T10:23:45.123456Z", &mut buf),
            "2024-05-01T10:00Z"
        );
        assert_eq!(hour_of("2024-05-01", &mut buf), "2024-05-01");
    }
}
