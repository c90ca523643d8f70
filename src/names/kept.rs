//! The names the engine learns from the UDP name services, bounded like the census's
//! ([`CAP_NAMED_ADDRESSES`] addresses, [`crate::census::names::CAP_NAMES`] names each) and
//! the same whatever the number of worker threads.
//!
//! Each worker sees only its share of the datagrams, so "the first addresses met" would
//! depend on how the traffic was shared out. Instead, once full, the set keeps the lowest
//! addresses: a rule that gives the same addresses for any split of the input and any
//! order of merging, and costs a B-tree step per new address.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::census::names::{NameSet, NameSource, Names, CAP_NAMED_ADDRESSES};

/// Names per address for at most [`CAP_NAMED_ADDRESSES`] addresses, the lowest ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptNames {
    by_address: BTreeMap<IpAddr, NameSet>,
    /// Sightings of names of the addresses not kept.
    dropped: u64,
}

impl KeptNames {
    /// One sighting of `name` for `ip`.
    pub fn add(&mut self, ip: IpAddr, name: &str, source: NameSource) {
        if let Some(set) = self.by_address.get_mut(&ip) {
            set.add(name, source, 1);
            return;
        }
        let mut set = NameSet::default();
        set.add(name, source, 1);
        self.add_set(ip, set);
    }

    /// Every name of `names`, by the same rule.
    pub fn merge(&mut self, names: Names) {
        for (ip, set) in names.by_address {
            match self.by_address.get_mut(&ip) {
                Some(mine) => mine.merge(&set),
                None => self.add_set(ip, set),
            }
        }
        self.dropped += names.dropped;
    }

    /// The names, as the census holds them.
    pub fn into_names(self) -> Names {
        Names {
            by_address: self.by_address.into_iter().collect(),
            dropped: self.dropped,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty() && self.dropped == 0
    }

    /// A new address's names: kept while there is room, or in place of the highest address
    /// kept when it is lower.
    fn add_set(&mut self, ip: IpAddr, set: NameSet) {
        if self.by_address.len() < CAP_NAMED_ADDRESSES {
            self.by_address.insert(ip, set);
            return;
        }
        match self.by_address.last_key_value() {
            Some((highest, _)) if ip < *highest => {
                if let Some((_, evicted)) = self.by_address.pop_last() {
                    self.dropped += evicted.sightings();
                }
                self.by_address.insert(ip, set);
            }
            _ => self.dropped += set.sightings(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from_bits(0x0a00_0000 + n))
    }

    /// More addresses than the cap, shared out among 1, 2 or 3 "workers" in different
    /// orders and merged in different orders: always the same lowest addresses kept, and
    /// every sighting either kept or counted as dropped.
    #[test]
    fn the_same_names_are_kept_however_the_input_is_shared_out() {
        let total = CAP_NAMED_ADDRESSES as u32 + 500;
        // Every address once, in a fixed scrambled order.
        let mut order: Vec<u32> = (0..total).collect();
        order.sort_by_key(|n| n.wrapping_mul(2_654_435_761));
        let mut results = Vec::new();
        for workers in 1..=3usize {
            let mut parts = vec![KeptNames::default(); workers];
            for (i, n) in order.iter().enumerate() {
                let part = &mut parts[i % workers];
                part.add(ip(*n), "a", NameSource::Dns);
                if n % 7 == 0 {
                    part.add(ip(*n), "b", NameSource::Mdns);
                }
            }
            let mut merged = KeptNames::default();
            for part in parts.into_iter().rev() {
                merged.merge(part.into_names());
            }
            results.push(merged.into_names());
        }
        for r in &results {
            assert_eq!(r.by_address.len(), CAP_NAMED_ADDRESSES);
            assert!(r
                .by_address
                .keys()
                .all(|a| *a < ip(CAP_NAMED_ADDRESSES as u32)));
            let kept: u64 = r.by_address.values().map(NameSet::sightings).sum();
            let all = u64::from(total) + u64::from(total.div_ceil(7));
            assert_eq!(kept + r.dropped, all);
        }
        assert_eq!(results[0], results[1]);
        assert_eq!(results[0], results[2]);
    }
}
