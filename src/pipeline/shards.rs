//! The census of a run, counted by the workers straight into shards by client.
//!
//! A client's connections are spread over every worker (by address and port, so that a
//! load balancer's one address does not put all its traffic on one worker), so the run's
//! census is cut by client instead: [`Tally`] holds a few [`Census`]es, each behind its own
//! mutex, and a worker adds each record to the shard of its client, locking that shard for
//! the one record. Each client is counted in exactly one shard, once; the shards merged at
//! the end are the census one thread adding every record in order would count, because
//! [`Census::merge`] is exact and does not depend on the order of the records (capped sets
//! keep the first values by name, latencies are histograms, first and last times are
//! minimum and maximum). Their clients are disjoint, so that merge only moves them.
//!
//! What a record adds beside its client — the timeline, the latency histograms, the
//! certificate inventory — is kept per worker, not per shard: each shard holding its own
//! (a latency histogram per service and per server, whatever its clients) cost memory by
//! the number of shards.
//! While a worker counts a record, its own run-wide maps are swapped into the shard's
//! census ([`swap_run_wide`], a few words each), so [`Census::add`] counts every part where
//! it belongs.
//!
//! This replaced a partial census per worker, merged into the total every 2,048 clients:
//! on issue 27's handshake capture a partial saw each client about once, so nearly every
//! record was counted twice (`benches/NOTES.md`, "Issue 27: the census sharded by
//! client"). With several shards per worker the lock a worker takes for a record is nearly
//! always free: a few tens of nanoseconds against the microseconds a record costs to count.
//!
//! Reports written during a run (`capture --report-every`, a status line) take the shards
//! and the workers' run-wide parts one at a time: each record's counts are in exactly one
//! shard and one worker's part, so a snapshot counts every record in it exactly once. It is
//! not one instant of the input (a record added to a shard already copied is left for the
//! next one), and it may hold a record's client counts without its run-wide ones or the
//! reverse, for a record counted while the snapshot was taken. A worker holds its run-wide
//! part for a batch, so a snapshot waits for a batch at most.

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use crate::census::version::below_tls12;
use crate::census::{Census, CensusConfig, Client};
use crate::record::Record;

/// Shards per worker when several work: enough that two workers rarely want the same one
/// at once.
const SHARDS_PER_WORKER: usize = 4;

/// The census of a run, in shards by client (one for a single worker: nothing to share),
/// and each worker's run-wide counts.
#[derive(Debug)]
pub(super) struct Tally {
    /// The caller's, which every shard has: what a record's client is.
    config: CensusConfig,
    shards: Box<[Mutex<Shard>]>,
    /// Each worker's timeline, latencies and certificates, in a census of no client.
    run_wide: Box<[Mutex<Census>]>,
}

/// One shard's census, and its status-line figures.
#[derive(Debug)]
struct Shard {
    census: Census,
    /// Counted from the first status line on (a `read` never asks), then kept up to date
    /// record by record, so that a status line walks no census.
    glance: Option<Glance>,
}

/// Lock a shard. A worker that panicked while holding it ends the run anyway (its join
/// panics), so a poisoned lock still gives its counts.
fn lock<T>(shard: &Mutex<T>) -> MutexGuard<'_, T> {
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shard of the clients at `ip`, of `shards`: a multiplicative hash of the address,
/// its high bits scaled to the number of shards. Every key of a client has its address,
/// so each client, and each address's names, are in one shard.
fn shard_of(ip: IpAddr, shards: usize) -> usize {
    let bits = match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (bits as u64) ^ ((bits >> 64) as u64)
        }
    };
    let mixed = bits.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((u128::from(mixed) * shards as u128) >> 64) as usize
}

impl Tally {
    /// A tally for `workers` workers, which begins as `census` (it may hold counts: log
    /// records, a restored state).
    pub(super) fn new(census: Census, workers: usize) -> Self {
        let shards = match workers {
            0 | 1 => 1,
            n => (n * SHARDS_PER_WORKER).next_power_of_two(),
        };
        Tally::with_shards(census, workers, shards)
    }

    /// A tally for `workers` workers, of `shards` shards, which begins as `census`: its
    /// clients go to their shards, the rest (timeline, latencies, names, certificates) to
    /// the first.
    pub(super) fn with_shards(mut census: Census, workers: usize, shards: usize) -> Self {
        let shards = shards.max(1);
        // One shard keeps the map as it is.
        let clients = match shards {
            1 => Default::default(),
            _ => std::mem::take(&mut census.clients),
        };
        let config = census.config.clone();
        let mut parts: Vec<Census> = Vec::with_capacity(shards);
        parts.push(census);
        while parts.len() < shards {
            parts.push(Census::new(config.clone()));
        }
        for (key, client) in clients {
            parts[shard_of(key.ip, shards)].clients.insert(key, client);
        }
        let parts = parts
            .into_iter()
            .map(|census| {
                Mutex::new(Shard {
                    census,
                    glance: None,
                })
            })
            .collect();
        let run_wide = (0..workers.max(1))
            .map(|_| Mutex::new(Census::new(config.clone())))
            .collect();
        Tally {
            config,
            shards: parts,
            run_wide,
        }
    }

    /// Worker `worker`'s counter, its run-wide part locked (for a batch).
    pub(super) fn counter(&self, worker: usize) -> Counter<'_> {
        Counter {
            tally: self,
            run_wide: lock(&self.run_wide[worker]),
        }
    }

    /// The whole census, once the workers are done.
    pub(super) fn into_census(self) -> Census {
        let shards = self
            .shards
            .into_vec()
            .into_iter()
            .map(|shard| shard.into_inner().unwrap_or_else(|p| p.into_inner()).census);
        let run_wide = self
            .run_wide
            .into_vec()
            .into_iter()
            .map(|run_wide| run_wide.into_inner().unwrap_or_else(|p| p.into_inner()));
        add_run_wide(merge_disjoint(shards.collect()), run_wide)
    }
}

/// A worker's hold on the tally while it counts a batch's records.
pub(super) struct Counter<'a> {
    tally: &'a Tally,
    run_wide: MutexGuard<'a, Census>,
}

impl Counter<'_> {
    /// Count `record`: its client in its client's shard, the rest in the worker's part.
    pub(super) fn add(&mut self, record: &Record) {
        let shards = &self.tally.shards;
        let shard = match shards.len() {
            1 => 0,
            n => shard_of(self.tally.config.client_key(record).ip, n),
        };
        let mut shard = lock(&shards[shard]);
        swap_run_wide(&mut shard.census, &mut self.run_wide);
        shard.add(record);
        swap_run_wide(&mut shard.census, &mut self.run_wide);
    }
}

/// `census` with the workers' run-wide parts added. The first part's maps are moved in
/// (and what `census` had merged into them), not merged into new ones: on a `read` the
/// census has none of its own, and each latency histogram is some 26 KB to allocate.
fn add_run_wide(mut census: Census, run_wide: impl IntoIterator<Item = Census>) -> Census {
    for (n, mut part) in run_wide.into_iter().enumerate() {
        if n == 0 {
            swap_run_wide(&mut census, &mut part);
        }
        census
            .merge(part)
            .expect("every part has the caller's configuration");
    }
    census
}

/// Exchange what two censuses count beside their clients and the clients' names.
fn swap_run_wide(a: &mut Census, b: &mut Census) {
    std::mem::swap(&mut a.timeline, &mut b.timeline);
    std::mem::swap(&mut a.latency_by_service, &mut b.latency_by_service);
    std::mem::swap(&mut a.latency_by_server, &mut b.latency_by_server);
    std::mem::swap(&mut a.certificates, &mut b.certificates);
}

impl Shard {
    /// Count `record`, and keep the status-line figures if they are kept.
    fn add(&mut self, record: &Record) {
        let Some(glance) = &mut self.glance else {
            self.census.add(record);
            return;
        };
        let key = self.census.config.client_key(record);
        let before = self.census.clients.get(&key).map(Glance::of_client);
        self.census.add(record);
        if let Some(after) = self.census.clients.get(&key) {
            glance.add(Glance::of_client(after));
        }
        if let Some(before) = before {
            glance.take(before);
        }
    }
}

/// One census of `shards`, whose clients are disjoint: the clients are moved into the
/// largest shard's map, the rest merged.
fn merge_disjoint(mut shards: Vec<Census>) -> Census {
    let largest = (0..shards.len())
        .max_by_key(|&i| shards[i].clients.len())
        .expect("a tally has a shard");
    let mut total = shards.swap_remove(largest);
    let clients: usize = shards.iter().map(|s| s.clients.len()).sum();
    total.clients.reserve(clients);
    let expected = total.clients.len() + clients;
    for mut shard in shards {
        total.clients.extend(std::mem::take(&mut shard.clients));
        total
            .merge(shard)
            .expect("every shard has the caller's configuration");
    }
    debug_assert_eq!(total.clients.len(), expected, "a client in two shards");
    total
}

/// The census of a run still going, handed to the caller's periodic callback.
pub struct Live<'a> {
    pub(super) tally: Option<&'a Tally>,
}

/// The figures of a status line, from the census as of now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Glance {
    /// Records counted (handshakes and mail sessions).
    pub handshakes: u64,
    /// Distinct clients (address, load balancer, direction).
    pub clients: usize,
    /// Those of them that offered or negotiated less than TLS 1.2 on any service.
    pub below_tls12: usize,
}

impl Glance {
    /// The figures of a whole census.
    pub fn of(census: &Census) -> Glance {
        let mut glance = Glance::default();
        for client in census.clients.values() {
            glance.add(Glance::of_client(client));
        }
        glance
    }

    /// One client's figures: its records, itself, and whether it is below TLS 1.2.
    fn of_client(client: &Client) -> Glance {
        Glance {
            handshakes: client.services.values().map(|s| s.connections).sum(),
            clients: 1,
            below_tls12: usize::from(below_tls12_client(client)),
        }
    }

    fn add(&mut self, other: Glance) {
        self.handshakes += other.handshakes;
        self.clients += other.clients;
        self.below_tls12 += other.below_tls12;
    }

    /// Take out figures counted in before (a client's, before a record of it).
    fn take(&mut self, counted: Glance) {
        self.handshakes -= counted.handshakes;
        self.clients -= counted.clients;
        self.below_tls12 -= counted.below_tls12;
    }
}

/// Whether a client offered, or a server gave it, less than TLS 1.2 on any service.
fn below_tls12_client(client: &Client) -> bool {
    client.services.values().any(|s| {
        s.negotiated
            .keys()
            .chain(s.max_offered.keys())
            .any(below_tls12)
    })
}

impl Live<'_> {
    /// The census as of now (`None` when the run counts no census): the shards and the
    /// workers' run-wide parts copied one at a time, each while the workers wait for it.
    pub fn census(&self) -> Option<Census> {
        let tally = self.tally?;
        let shards = tally
            .shards
            .iter()
            .map(|shard| lock(shard).census.clone())
            .collect();
        let run_wide: Vec<Census> = tally.run_wide.iter().map(|r| lock(r).clone()).collect();
        Some(add_run_wide(merge_disjoint(shards), run_wide))
    }

    /// Records counted so far, clients and clients below TLS 1.2: each shard's figures,
    /// counted at the first call and kept since. Clients are disjoint across shards, so the
    /// figures add up.
    pub fn glance(&self) -> Glance {
        let Some(tally) = self.tally else {
            return Glance::default();
        };
        let mut glance = Glance::default();
        for shard in tally.shards.iter() {
            let mut shard = lock(shard);
            let Shard {
                census,
                glance: kept,
            } = &mut *shard;
            glance.add(*kept.get_or_insert_with(|| Glance::of(census)));
        }
        glance
    }
}
