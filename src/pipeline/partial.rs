//! Each worker's share of the census, and the census of a run still going.
//!
//! Every worker counts the records it makes into a partial [`Census`] of the caller's
//! configuration. [`Census::merge`] is exact and does not depend on the order of the records
//! (capped sets keep the first values by name, latencies are histograms, first and last
//! times are minimum and maximum), so the partials merged give exactly the census one
//! thread counting every record in order would give — and the records need not travel to
//! the caller's thread unless their events are written.
//!
//! Reports written during a run (`capture --report-every`, a status line) need the census as
//! of now. Each partial sits behind a mutex that its worker takes once per batch, not per
//! record: uncontended, that costs tens of nanoseconds a batch. The caller's thread takes
//! each in turn only when a report is due, and clones it. That was picked over asking the
//! workers for snapshots through their batches because it needs no new message, works the
//! same whoever reads the frames (a reader thread or the workers themselves) and answers at
//! once even when no frame arrives for a while (a quiet live capture). A snapshot so taken
//! is not one instant of the input across workers (one may be a batch ahead of another);
//! every record in it is counted exactly once, which is what a report during a run needs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::census::version::below_tls12;
use crate::census::{Census, Client, ClientKey};

/// A worker's partial, shared with the caller's thread for reports during the run.
pub(super) type SharedPartial = Arc<Mutex<Census>>;

pub(super) fn new_partials(base: &Census, workers: usize) -> Vec<SharedPartial> {
    (0..workers)
        .map(|_| Arc::new(Mutex::new(Census::new(base.config.clone()))))
        .collect()
}

/// Lock a partial. A worker that panicked while holding it ends the run anyway (its join
/// panics), so a poisoned lock still gives its counts.
pub(super) fn lock(partial: &SharedPartial) -> MutexGuard<'_, Census> {
    partial
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Merge the finished workers' partials into `into`.
pub(super) fn merge_into(into: &mut Census, partials: Vec<SharedPartial>) {
    for partial in partials {
        let partial = match Arc::try_unwrap(partial) {
            Ok(mutex) => mutex.into_inner().unwrap_or_else(|p| p.into_inner()),
            // Never shared any more once the run is over; taken out all the same.
            Err(shared) => {
                let mut guard = lock(&shared);
                let config = guard.config.clone();
                std::mem::replace(&mut *guard, Census::new(config))
            }
        };
        merge_census(into, partial);
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
    pub(super) base: Option<&'a Census>,
    pub(super) partials: &'a [SharedPartial],
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
        glance.add_census(census, &mut HashMap::new());
        glance
    }

    /// Count `census` in, with `seen` the clients already counted (and whether each is
    /// below TLS 1.2), so a client in several censuses counts once.
    fn add_census(&mut self, census: &Census, seen: &mut HashMap<ClientKey, bool>) {
        for (key, client) in &census.clients {
            let below = below_tls12_client(client);
            self.handshakes += client.services.values().map(|s| s.connections).sum::<u64>();
            match seen.get_mut(key) {
                Some(was) => {
                    if below && !*was {
                        *was = true;
                        self.below_tls12 += 1;
                    }
                }
                None => {
                    seen.insert(*key, below);
                    self.clients += 1;
                    self.below_tls12 += usize::from(below);
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
    /// The census as of now: the caller's census with every worker's partial merged in
    /// (`None` when the run counts no census). Each partial is locked only while it is
    /// cloned.
    pub fn census(&self) -> Option<Census> {
        let mut census = self.base?.clone();
        for partial in self.partials {
            let part = lock(partial).clone();
            merge_census(&mut census, part);
        }
        Some(census)
    }

    /// Records counted so far, clients and clients below TLS 1.2, without copying the
    /// census: a walk over its clients, each partial locked while it is walked.
    pub fn glance(&self) -> Glance {
        let mut glance = Glance::default();
        let mut seen = HashMap::new();
        if let Some(base) = self.base {
            glance.add_census(base, &mut seen);
        }
        for partial in self.partials {
            glance.add_census(&lock(partial), &mut seen);
        }
        glance
    }
}
