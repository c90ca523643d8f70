//! A client's services: service name → its [`ServiceCounts`], in name order.
//!
//! A sorted boxed slice rather than a `BTreeMap<String, ServiceCounts>`: a client uses one to
//! seven services (three on average on issue 27's handshake capture), and a B-tree allocates
//! a node with room for 11 entries (some 380 bytes) from its first one. [`Services`] holds
//! exactly its entries (32 bytes each) and offers the map methods the census and its
//! reports use, with the same order: iterating, serialising (a JSON object) and comparing
//! give what the B-tree gave.

use std::fmt;

use serde::{Serialize, Serializer};

use super::ServiceCounts;

/// Service name → counts, in name order (byte order, as a `BTreeMap<String, _>` orders).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Services(Box<[(String, ServiceCounts)]>);

/// [`Services::entry`]: a service's place, found or to be made.
pub struct Entry<'a> {
    services: &'a mut Services,
    name: String,
}

impl<'a> Entry<'a> {
    /// The service's counts, new empty ones if it had none.
    pub fn or_default(self) -> &'a mut ServiceCounts {
        let i = match self.services.find(&self.name) {
            Ok(i) => i,
            Err(i) => {
                self.services
                    .insert_at(i, self.name, ServiceCounts::default());
                i
            }
        };
        &mut self.services.0[i].1
    }
}

impl Services {
    pub fn new() -> Self {
        Services::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (name, counts) in name order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&String, &ServiceCounts)> + ExactSizeIterator + Clone
    {
        self.0.iter().map(|(name, counts)| (name, counts))
    }

    /// The names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator + Clone {
        self.0.iter().map(|(name, _)| name)
    }

    /// The counts, in name order.
    pub fn values(
        &self,
    ) -> impl DoubleEndedIterator<Item = &ServiceCounts> + ExactSizeIterator + Clone {
        self.0.iter().map(|(_, counts)| counts)
    }

    /// The counts, in name order, to change.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut ServiceCounts> {
        self.0.iter_mut().map(|(_, counts)| counts)
    }

    pub fn get(&self, name: &str) -> Option<&ServiceCounts> {
        self.find(name).ok().map(|i| &self.0[i].1)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut ServiceCounts> {
        self.find(name).ok().map(|i| &mut self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Set the counts of `name`, returning those it replaces, as a map's `insert`.
    pub fn insert(&mut self, name: String, counts: ServiceCounts) -> Option<ServiceCounts> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, counts)),
            Err(i) => {
                self.insert_at(i, name, counts);
                None
            }
        }
    }

    /// The place of `name`, as a map's `entry`.
    pub fn entry(&mut self, name: String) -> Entry<'_> {
        Entry {
            services: self,
            name,
        }
    }

    /// The counts of `name`, new empty ones if it had none; the name is copied only then.
    pub fn get_or_default(&mut self, name: &str) -> &mut ServiceCounts {
        let i = match self.find(name) {
            Ok(i) => i,
            Err(i) => {
                self.insert_at(i, name.to_string(), ServiceCounts::default());
                i
            }
        };
        &mut self.0[i].1
    }

    /// Add `other`'s services: a service new here takes the other's counts as they are, one
    /// already here adds them ([`super::ServiceCountsInner::merge`]).
    pub fn merge(&mut self, other: Services) {
        if self.is_empty() {
            *self = other;
            return;
        }
        for (name, counts) in other {
            match self.find(&name) {
                Ok(i) => self.0[i].1.merge(&counts),
                Err(i) => self.insert_at(i, name, counts),
            }
        }
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0
            .binary_search_by(|(k, _)| k.as_bytes().cmp(name.as_bytes()))
    }

    /// Put a new entry at `i`, growing the slice by exactly one.
    fn insert_at(&mut self, i: usize, name: String, counts: ServiceCounts) {
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.reserve_exact(1);
        v.insert(i, (name, counts));
        self.0 = v.into_boxed_slice();
    }
}

impl IntoIterator for Services {
    type Item = (String, ServiceCounts);
    type IntoIter = std::vec::IntoIter<(String, ServiceCounts)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Services {
    type Item = (&'a String, &'a ServiceCounts);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, ServiceCounts)>,
        fn(&'a (String, ServiceCounts)) -> (&'a String, &'a ServiceCounts),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(name, counts)| (name, counts))
    }
}

impl FromIterator<(String, ServiceCounts)> for Services {
    /// As a map collects: of a name given twice, the last counts are kept.
    fn from_iter<I: IntoIterator<Item = (String, ServiceCounts)>>(iter: I) -> Self {
        let mut services = Services::new();
        for (name, counts) in iter {
            services.insert(name, counts);
        }
        services
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Services {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn counts(connections: u64) -> ServiceCounts {
        ServiceCounts::from(super::super::ServiceCountsInner {
            connections,
            ..Default::default()
        })
    }

    #[test]
    fn behaves_as_a_b_tree_map() {
        // Names on both sides of each other in byte order, some multi-byte, some repeated.
        let names = [
            "smtp",
            "https",
            "imaps",
            "https",
            "ü",
            "https/quic",
            "",
            "imap",
            "smtp",
            "pop3s",
        ];
        let mut want: BTreeMap<String, ServiceCounts> = BTreeMap::new();
        let mut got = Services::new();
        for (i, name) in names.iter().enumerate() {
            match i % 3 {
                0 => {
                    assert_eq!(
                        got.insert(name.to_string(), counts(i as u64)),
                        want.insert(name.to_string(), counts(i as u64))
                    );
                }
                1 => {
                    got.entry(name.to_string()).or_default().connections += 1;
                    want.entry(name.to_string()).or_default().connections += 1;
                }
                _ => {
                    got.get_or_default(name).connections += 2;
                    want.entry(name.to_string()).or_default().connections += 2;
                }
            }
        }
        assert!(got.iter().eq(want.iter()));
        assert!(got.keys().eq(want.keys()));
        assert!(got.values().eq(want.values()));
        assert_eq!(got.len(), want.len());
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
        for name in names.iter().chain(&["nope", "http"]) {
            assert_eq!(got.get(name), want.get(*name), "{name}");
            assert_eq!(got.contains_key(name), want.contains_key(*name));
        }
        let collected: Services = want.clone().into_iter().collect();
        assert_eq!(collected, got);
        assert!(got.clone().into_iter().eq(want.clone()));
    }

    #[test]
    fn merges_as_the_census_merged_b_tree_maps() {
        let a: Services = [("https", 1), ("smtp", 2)]
            .into_iter()
            .map(|(n, c)| (n.to_string(), counts(c)))
            .collect();
        let b: Services = [("imaps", 4), ("smtp", 8), ("a", 16)]
            .into_iter()
            .map(|(n, c)| (n.to_string(), counts(c)))
            .collect();
        let mut merged = a.clone();
        merged.merge(b.clone());
        let got: Vec<(&str, u64)> = merged
            .iter()
            .map(|(n, c)| (n.as_str(), c.connections))
            .collect();
        assert_eq!(got, [("a", 16), ("https", 1), ("imaps", 4), ("smtp", 10)]);
        let mut empty = Services::new();
        empty.merge(b.clone());
        assert_eq!(empty, b);
        assert_eq!(
            std::mem::size_of::<Services>(),
            2 * std::mem::size_of::<usize>()
        );
    }
}
