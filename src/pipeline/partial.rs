//! Each worker's share of the census, and the census of a run still going.
//!
//! Every worker counts the records it makes into a partial [`Census`] of the caller's
//! configuration. [`Census::merge`] is exact and does not depend on the order of the records
//! (capped sets keep the first values by name, latencies are histograms, first and last
//! times are minimum and maximum), so the partials merged give exactly the census one
//! thread counting every record in order would give — and the records need not travel to
//! the caller's thread unless their events are written.
//!
//! A worker hands its partial in, merged into the run's total, once it holds
//! [`HAND_IN_CLIENTS`] clients: a client's connections land on every worker (they are
//! spread by address and port), so partials kept whole to the end would each hold nearly
//! every client, and memory would grow with the number of workers.
//!
//! Reports written during a run (`capture --report-every`, a status line) need the census as
//! of now. The total and each partial sit behind a mutex; a worker takes its partial's once
//! per batch, not per record (uncontended, tens of nanoseconds a batch), and the total's
//! when it hands in. The caller's thread takes them only when a report is due. That was
//! picked over asking the workers for snapshots through their batches because it needs no
//! new message, works the same whoever reads the frames (a reader thread or the workers
//! themselves) and answers at once even when no frame arrives for a while (a quiet live
//! capture). The lock order is always the total, then a partial: a snapshot holds the
//! total while it copies the partials, so a partial handed in meanwhile is counted exactly
//! once. A snapshot is not one instant of the input across workers (one may be a batch
//! ahead of another); every record in it is counted exactly once.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::census::version::below_tls12;
use crate::census::{Census, Client, ClientKey};

/// Clients a worker's partial holds before it is handed in. Each client costs a few KB in
/// a census: a few MB per worker, and one merge per batch at most.
pub const HAND_IN_CLIENTS: usize = 2048;

/// The census of a run: the total handed in so far (which began as the caller's census)
/// and each worker's partial.
#[derive(Debug)]
pub(super) struct Tally {
    total: Mutex<Total>,
    partials: Vec<Mutex<Census>>,
    /// [`HAND_IN_CLIENTS`], but for tests.
    hand_in_at: usize,
}

/// The partials handed in, and the status line's figures of them: counted from the first
/// status line on (a `read` never asks, and keeping them cost its workers 9 % of their time
/// on issue 27's handshake capture), then kept up to date at each hand-in, so a status line
/// walks only the partials, never the whole census.
#[derive(Debug)]
struct Total {
    census: Census,
    glance: Option<Glance>,
}

/// Lock a census. A worker that panicked while holding it ends the run anyway (its join
/// panics), so a poisoned lock still gives its counts.
fn lock<T>(census: &Mutex<T>) -> MutexGuard<'_, T> {
    census
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Tally {
    /// A tally that adds `workers` partials to `census`.
    pub(super) fn new(census: Census, workers: usize) -> Self {
        let partials = (0..workers)
            .map(|_| Mutex::new(Census::new(census.config.clone())))
            .collect();
        Tally {
            total: Mutex::new(Total {
                glance: None,
                census,
            }),
            partials,
            hand_in_at: HAND_IN_CLIENTS,
        }
    }

    /// [`Tally::new`], handing partials in at `clients` clients.
    #[cfg(test)]
    pub(super) fn handing_in_at(census: Census, workers: usize, clients: usize) -> Self {
        Tally {
            hand_in_at: clients,
            ..Tally::new(census, workers)
        }
    }

    /// Worker `worker`'s partial, locked (for a batch).
    pub(super) fn partial(&self, worker: usize) -> MutexGuard<'_, Census> {
        lock(&self.partials[worker])
    }

    /// Merge worker `worker`'s partial into the total if it has grown to
    /// [`HAND_IN_CLIENTS`] clients (`clients`: how many it has, seen while it was locked)
    /// and other workers have partials too.
    pub(super) fn hand_in_if_full(&self, worker: usize, clients: usize) {
        // One worker's partial holds each client once already: nothing to save.
        if clients < self.hand_in_at || self.partials.len() == 1 {
            return;
        }
        self.hand_in(worker);
    }

    /// Merge worker `worker`'s partial into the total now, when it has finished: the last
    /// partials are then merged on the workers' threads, one while another still works,
    /// rather than all on the caller's after every worker is done. One worker's partial is
    /// left for [`Tally::into_census`] (nothing runs beside it).
    pub(super) fn hand_in_last(&self, worker: usize) {
        if self.partials.len() > 1 {
            self.hand_in(worker);
        }
    }

    fn hand_in(&self, worker: usize) {
        let mut total = lock(&self.total);
        let part = {
            let mut partial = self.partial(worker);
            let empty = Census::new(partial.config.clone());
            std::mem::replace(&mut *partial, empty)
        };
        let Total { census, glance } = &mut *total;
        if let Some(glance) = glance {
            glance.add_over(&part, Some(census), &mut HashMap::new());
        }
        merge_census(census, part);
    }

    /// The whole census, once the workers are done.
    pub(super) fn into_census(self) -> Census {
        let mut total = (self.total.into_inner())
            .unwrap_or_else(|p| p.into_inner())
            .census;
        for partial in self.partials {
            merge_census(
                &mut total,
                partial.into_inner().unwrap_or_else(|p| p.into_inner()),
            );
        }
        total
    }
}

/// `into.merge(part)`; the configurations are the same by construction. An empty `into`
/// (a `read` without logs, a new capture) simply becomes `part`.
fn merge_census(into: &mut Census, part: Census) {
    if *into == Census::new(into.config.clone()) {
        *into = part;
        return;
    }
    into.merge(part)
        .expect("a worker's partial census has the caller's configuration");
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
        glance.add_over(census, None, &mut HashMap::new());
        glance
    }

    /// Count `census` in, on top of `base` (whose clients are counted already) and of the
    /// clients met before (`seen`, with whether each was counted below TLS 1.2): a client
    /// counts once, and as below TLS 1.2 once. Below TLS 1.2 in one census is below in
    /// their merge, which holds the versions of both.
    fn add_over(
        &mut self,
        census: &Census,
        base: Option<&Census>,
        seen: &mut HashMap<ClientKey, bool>,
    ) {
        for (key, client) in &census.clients {
            self.handshakes += client.services.values().map(|s| s.connections).sum::<u64>();
            let below = below_tls12_client(client);
            let was = seen.get(key).copied().or_else(|| {
                base.and_then(|base| base.clients.get(key))
                    .map(below_tls12_client)
            });
            match was {
                None => {
                    self.clients += 1;
                    self.below_tls12 += usize::from(below);
                    seen.insert(*key, below);
                }
                Some(false) if below => {
                    self.below_tls12 += 1;
                    seen.insert(*key, true);
                }
                Some(was) => {
                    seen.insert(*key, was);
                }
            }
        }
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
    /// The census as of now: the total with every worker's partial merged in (`None` when
    /// the run counts no census). The workers wait only if they hand in meanwhile, or for
    /// their own partial while it is copied.
    pub fn census(&self) -> Option<Census> {
        let tally = self.tally?;
        let total = lock(&tally.total);
        let mut census = total.census.clone();
        for partial in &tally.partials {
            let part = lock(partial).clone();
            merge_census(&mut census, part);
        }
        Some(census)
    }

    /// Records counted so far, clients and clients below TLS 1.2: the total's figures,
    /// kept at each hand-in, and a walk over the partials' clients alone.
    pub fn glance(&self) -> Glance {
        let Some(tally) = self.tally else {
            return Glance::default();
        };
        let mut total = lock(&tally.total);
        if total.glance.is_none() {
            total.glance = Some(Glance::of(&total.census));
        }
        let mut glance = total.glance.unwrap_or_default();
        let mut seen = HashMap::new();
        for partial in &tally.partials {
            glance.add_over(&lock(partial), Some(&total.census), &mut seen);
        }
        glance
    }
}
