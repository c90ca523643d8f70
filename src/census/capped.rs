//! Bounded sets of values seen (SNIs, ALPNs, JA4s, cipher suites, servers) with a count of
//! connections per value.
//!
//! A set keeps the [`CappedSet::cap`] alphabetically first distinct values and counts the
//! connections whose value is not kept in `other`. Keeping the *first by order* (not the
//! first seen or the most frequent) makes the result independent of the order in which
//! connections arrive, so merging two reports gives exactly the set one run over all the
//! traffic would have kept: the kept values are the `cap` smallest of all values seen, with
//! their exact counts, and `other` is every other connection.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Index;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CappedSet {
    /// Value → connections.
    pub values: Values,
    /// Connections whose value fell outside the kept values.
    #[serde(default)]
    pub other: u64,
}

/// A set's kept values → connections, in value order.
///
/// A sorted vector rather than a `BTreeMap`: a set keeps a few values (at most its cap), and
/// a B-tree allocates room for 11 entries (some 370 bytes) from its first one, for each of
/// the five sets of every client and service. The vector holds just the values it has. It
/// reads like the map (`keys`, `iter`, `get`, `values["x"]`) and is written as one, so the
/// report is the same.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Values(Vec<(String, u64)>);

/// [`Values::iter`]: (value, connections) in value order.
pub type Iter<'a> = std::iter::Map<
    std::slice::Iter<'a, (String, u64)>,
    fn(&'a (String, u64)) -> (&'a String, &'a u64),
>;

impl Values {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (value, connections) in value order.
    pub fn iter(&self) -> Iter<'_> {
        self.0.iter().map(|(v, n)| (v, n))
    }

    /// The values in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.iter().map(|(v, _)| v)
    }

    /// The connections with `value`, if it is kept.
    pub fn get(&self, value: &str) -> Option<&u64> {
        self.find(value).ok().map(|i| &self.0[i].1)
    }

    /// Where `value` is, or where it would go.
    fn find(&self, value: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(v, _)| v.as_str().cmp(value))
    }
}

impl Index<&str> for Values {
    type Output = u64;

    /// The connections with `value`; panics when it is not kept, like a map.
    fn index(&self, value: &str) -> &u64 {
        self.get(value).expect("value not in the set")
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = (&'a String, &'a u64);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Values {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Values {
    /// Read as a map, so a value given twice counts as a map would count it (the last one).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, u64>::deserialize(d)?;
        Ok(Values(map.into_iter().collect()))
    }
}

impl CappedSet {
    /// Count one connection with `value`, keeping at most `cap` distinct values.
    pub fn add(&mut self, value: &str, cap: usize) {
        match self.values.find(value) {
            Ok(i) => self.values.0[i].1 += 1,
            Err(i) if i < cap => {
                // One more slot, not the doubling `insert` would do: most sets keep one
                // or two values.
                let values = &mut self.values.0;
                values.reserve_exact(1);
                values.insert(i, (value.to_string(), 1));
                self.trim(cap);
            }
            // Beyond the cap it would be dropped again at once.
            Err(_) => {
                self.other += 1;
                self.trim(cap);
            }
        }
    }

    /// Drop the largest values beyond `cap`, counting their connections in `other`.
    fn trim(&mut self, cap: usize) {
        while self.values.len() > cap {
            if let Some((_, n)) = self.values.0.pop() {
                self.other += n;
            }
        }
    }

    pub fn merge(&mut self, other: &CappedSet, cap: usize) {
        let mine = std::mem::take(&mut self.values.0);
        let theirs = &other.values.0;
        let mut kept = Vec::with_capacity((mine.len() + theirs.len()).min(cap));
        let (mut a, mut b) = (mine.into_iter().peekable(), theirs.iter().peekable());
        loop {
            let (value, n) = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => a.next().expect("peeked"),
                (None, Some(_)) => {
                    let (v, n) = b.next().expect("peeked");
                    (v.clone(), *n)
                }
                (Some((va, _)), Some((vb, _))) => match va.cmp(vb) {
                    Ordering::Less => a.next().expect("peeked"),
                    Ordering::Greater => {
                        let (v, n) = b.next().expect("peeked");
                        (v.clone(), *n)
                    }
                    Ordering::Equal => {
                        let (v, n) = a.next().expect("peeked");
                        let (_, m) = b.next().expect("peeked");
                        (v, n + m)
                    }
                },
            };
            // The union in order, so the first `cap` are the ones to keep.
            if kept.len() < cap {
                kept.push((value, n));
            } else {
                self.other += n;
            }
        }
        kept.shrink_to_fit();
        self.values.0 = kept;
        self.other += other.other;
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.other == 0
    }

    /// `a, b, c (+4 more connections)`.
    pub fn summary(&self) -> String {
        let mut s = self.values.keys().cloned().collect::<Vec<_>>().join(", ");
        if self.other > 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(&format!("(+{} more connections)", self.other));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_values_by_order_whatever_the_arrival_order() {
        let values = ["d", "a", "c", "b", "a", "e", "d", "b"];
        let mut one = CappedSet::default();
        for v in values {
            one.add(v, 3);
        }
        assert_eq!(one.values.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(one.values["a"], 2);
        assert_eq!(one.values["b"], 2);
        assert_eq!(one.other, 3);

        let (mut left, mut right) = (CappedSet::default(), CappedSet::default());
        for (i, v) in values.iter().enumerate() {
            if i % 2 == 0 { &mut left } else { &mut right }.add(v, 3);
        }
        left.merge(&right, 3);
        assert_eq!(left, one);
    }

    /// What the set must keep: every value counted in a map, the largest beyond the cap
    /// moved to `other`.
    fn model(values: &[String], cap: usize) -> (BTreeMap<String, u64>, u64) {
        let mut map = BTreeMap::new();
        for v in values {
            *map.entry(v.clone()).or_default() += 1;
        }
        let mut other = 0;
        while map.len() > cap {
            other += map.pop_last().expect("non-empty").1;
        }
        (map, other)
    }

    fn as_map(set: &CappedSet) -> BTreeMap<String, u64> {
        set.values.iter().map(|(v, n)| (v.clone(), *n)).collect()
    }

    #[test]
    fn adds_and_merges_like_a_capped_map() {
        // A fixed pseudo-random stream of values from a small alphabet, so values repeat.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let values: Vec<String> = (0..400)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("v{}", x % 23)
            })
            .collect();
        for cap in [0, 1, 2, 5, 16, 32] {
            let (want, other) = model(&values, cap);
            let mut one = CappedSet::default();
            for v in &values {
                one.add(v, cap);
            }
            assert_eq!(
                (as_map(&one), one.other),
                (want.clone(), other),
                "cap {cap}"
            );
            for split in [0, 1, 37, 200, 399, 400] {
                let (mut a, mut b) = (CappedSet::default(), CappedSet::default());
                values[..split].iter().for_each(|v| a.add(v, cap));
                values[split..].iter().for_each(|v| b.add(v, cap));
                let mut ba = b.clone();
                a.merge(&b, cap);
                assert_eq!(a, one, "cap {cap} split {split}");
                ba.merge(&CappedSet::default(), cap);
                assert_eq!(ba, b);
            }
        }
    }

    #[test]
    fn written_as_a_map() {
        let mut set = CappedSet::default();
        for v in ["b", "a", "c", "a"] {
            set.add(v, 2);
        }
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"{"values":{"a":2,"b":1},"other":1}"#);
        let back: CappedSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        let unordered: CappedSet = serde_json::from_str(r#"{"values":{"b":1,"a":2}}"#).unwrap();
        assert_eq!(as_map(&unordered), as_map(&set));
        assert_eq!(format!("{:?}", set.values), r#"{"a": 2, "b": 1}"#);
    }
}
