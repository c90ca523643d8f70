//! The names of each client address, with where each was learned: the EHLO a mail client
//! gave, the software an IMAP client named, and (from other packets of the capture or a
//! lookup at report time) DNS, NetBIOS, LLMNR, mDNS and DHCP names.
//!
//! Names, not payloads, and bounded: an address keeps at most [`CAP_NAMES`] names, the first
//! by (name, source) order, and counts the sightings of the others in `other` — the same
//! rule as [`super::capped`], so merged reports keep exactly what one run would have. A
//! million distinct EHLO names from one address cost [`CAP_NAMES`] names.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Most names kept per address.
pub const CAP_NAMES: usize = 16;

/// Most addresses that names are kept for from packets that are not client connections (DNS
/// answers, announcements): those can name any number of hosts that never connect. Names
/// from a client's own connections (EHLO, IMAP ID) are always kept.
pub const CAP_NAMED_ADDRESSES: usize = 1 << 16;

/// Where a name was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameSource {
    /// SMTP EHLO / HELO / LHLO argument.
    Ehlo,
    /// IMAP ID (RFC 2971) `name version`.
    ImapId,
    /// A DNS answer in the capture: an A/AAAA record with the address, or a PTR for it.
    Dns,
    /// A NetBIOS name service registration or answer.
    Netbios,
    /// An LLMNR answer.
    Llmnr,
    /// An mDNS announcement or answer.
    Mdns,
    /// DHCP host name (option 12) or client FQDN (option 81).
    Dhcp,
    /// A reverse lookup at report time (`--resolve`).
    Resolved,
}

impl NameSource {
    pub fn name(self) -> &'static str {
        match self {
            NameSource::Ehlo => "ehlo",
            NameSource::ImapId => "imap-id",
            NameSource::Dns => "dns",
            NameSource::Netbios => "netbios",
            NameSource::Llmnr => "llmnr",
            NameSource::Mdns => "mdns",
            NameSource::Dhcp => "dhcp",
            NameSource::Resolved => "resolved",
        }
    }

    /// `seen` in the traffic, or `resolved` by a lookup.
    pub fn origin(self) -> &'static str {
        match self {
            NameSource::Resolved => "resolved",
            _ => "seen",
        }
    }
}

/// One name of an address as the JSON report writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameEntry {
    pub name: String,
    pub source: NameSource,
    /// `seen` (in the traffic) or `resolved` (by `--resolve`).
    #[serde(default)]
    pub origin: String,
    /// How many times it was seen (connections, answers, announcements).
    #[serde(default)]
    pub count: u64,
}

/// The names of one address, capped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameSet {
    /// (name, source) → times seen, in that order.
    entries: Vec<(Box<str>, NameSource, u64)>,
    /// Sightings of names not kept.
    pub other: u64,
}

impl NameSet {
    /// Count `n` sightings of `name` from `source`.
    pub fn add(&mut self, name: &str, source: NameSource, n: u64) {
        let found = self
            .entries
            .binary_search_by(|(k, s, _)| (&**k, *s).cmp(&(name, source)));
        match found {
            Ok(i) => self.entries[i].2 += n,
            Err(i) if i >= CAP_NAMES => self.other += n,
            Err(i) => {
                self.entries.insert(i, (name.into(), source, n));
                if self.entries.len() > CAP_NAMES {
                    let (_, _, dropped) = self.entries.pop().expect("over the cap");
                    self.other += dropped;
                }
            }
        }
    }

    pub fn merge(&mut self, other: &NameSet) {
        for (name, source, n) in &other.entries {
            self.add(name, *source, *n);
        }
        self.other += other.other;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.other == 0
    }

    /// Every sighting counted, kept or not.
    pub fn sightings(&self) -> u64 {
        self.entries.iter().map(|(_, _, n)| n).sum::<u64>() + self.other
    }

    /// The names kept, in (name, source) order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, NameSource, u64)> {
        self.entries.iter().map(|(k, s, n)| (&**k, *s, *n))
    }

    /// The names as the JSON report writes them.
    pub fn entries(&self) -> Vec<NameEntry> {
        self.iter()
            .map(|(name, source, count)| NameEntry {
                name: name.to_string(),
                source,
                origin: source.origin().to_string(),
                count,
            })
            .collect()
    }

    /// `name (source), name (source)` for tables and CSV cells.
    pub fn summary(&self) -> String {
        let mut text = self
            .iter()
            .map(|(name, source, _)| format!("{name} ({})", source.name()))
            .collect::<Vec<_>>()
            .join(", ");
        if self.other > 0 {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&format!("(+{} more)", self.other));
        }
        text
    }
}

/// Names per address, for the whole census.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Names {
    /// Hashed with foldhash: the workers' names are merged into one at the end of a run,
    /// on the caller's thread, where SipHash was most of the merge.
    pub by_address: HashMap<IpAddr, NameSet, foldhash::fast::RandomState>,
    /// Names not kept because [`CAP_NAMED_ADDRESSES`] addresses already had names.
    pub dropped: u64,
}

impl Names {
    /// A name from the address's own connection (EHLO, IMAP ID): always kept.
    pub fn add_from_client(&mut self, ip: IpAddr, name: &str, source: NameSource) {
        self.by_address.entry(ip).or_default().add(name, source, 1);
    }

    /// A name from another packet of the capture (DNS, announcements, DHCP) or a lookup:
    /// kept while fewer than [`CAP_NAMED_ADDRESSES`] addresses have names.
    pub fn add_observed(&mut self, ip: IpAddr, name: &str, source: NameSource) {
        if let Some(set) = self.by_address.get_mut(&ip) {
            set.add(name, source, 1);
        } else if self.by_address.len() < CAP_NAMED_ADDRESSES {
            self.by_address.entry(ip).or_default().add(name, source, 1);
        } else {
            self.dropped += 1;
        }
    }

    pub fn get(&self, ip: &IpAddr) -> Option<&NameSet> {
        self.by_address.get(ip)
    }

    /// The names the engine learned from other packets (see [`Names::add_observed`]):
    /// addresses that have names already get them all, new ones are taken lowest first
    /// while there is room, so the result does not depend on the order of `other`.
    pub fn merge_observed(&mut self, other: &Names) {
        let mut new = Vec::new();
        for (ip, set) in &other.by_address {
            match self.by_address.get_mut(ip) {
                Some(mine) => mine.merge(set),
                None => new.push((*ip, set)),
            }
        }
        new.sort_unstable_by_key(|(ip, _)| *ip);
        for (ip, set) in new {
            if self.by_address.len() < CAP_NAMED_ADDRESSES {
                self.by_address.insert(ip, set.clone());
            } else {
                self.dropped += set.sightings();
            }
        }
        self.dropped += other.dropped;
    }

    pub fn merge(&mut self, other: &Names) {
        for (ip, set) in &other.by_address {
            self.by_address.entry(*ip).or_default().merge(set);
        }
        self.dropped += other.dropped;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_names_whatever_the_order_and_merges_exactly() {
        let names: Vec<String> = (0..100)
            .map(|i| format!("host{:03}", (i * 37) % 50))
            .collect();
        let mut one = NameSet::default();
        for n in &names {
            one.add(n, NameSource::Ehlo, 1);
        }
        assert_eq!(one.iter().count(), CAP_NAMES);
        assert_eq!(one.iter().next().unwrap().0, "host000");
        assert_eq!(one.iter().map(|e| e.2).sum::<u64>() + one.other, 100);
        let (mut a, mut b) = (NameSet::default(), NameSet::default());
        for (i, n) in names.iter().enumerate() {
            if i % 3 == 0 { &mut a } else { &mut b }.add(n, NameSource::Ehlo, 1);
        }
        a.merge(&b);
        assert_eq!(a, one);
    }

    #[test]
    fn a_million_distinct_names_cost_the_cap() {
        let mut set = NameSet::default();
        for i in 0..1_000_000u32 {
            set.add(&format!("h{i:07}.example"), NameSource::Ehlo, 1);
        }
        assert_eq!(set.iter().count(), CAP_NAMES);
        assert_eq!(set.other, 1_000_000 - CAP_NAMES as u64);
    }

    #[test]
    fn observed_names_stop_at_the_address_cap() {
        let mut names = Names::default();
        for i in 0..(CAP_NAMED_ADDRESSES as u32 + 10) {
            names.add_observed(IpAddr::from(i.to_be_bytes()), "x", NameSource::Dns);
        }
        assert_eq!(names.by_address.len(), CAP_NAMED_ADDRESSES);
        assert_eq!(names.dropped, 10);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        names.add_from_client(client, "mx.example", NameSource::Ehlo);
        assert!(names.get(&client).is_some());
    }
}
