//! Bounded sets of values seen (SNIs, ALPNs, JA4s, cipher suites, servers) with a count of
//! connections per value.
//!
//! A set keeps the `cap` alphabetically first distinct values and counts the
//! connections whose value is not kept in `other`. Keeping the *first by order* (not the
//! first seen or the most frequent) makes the result independent of the order in which
//! connections arrive, so merging two reports gives exactly the set one run over all the
//! traffic would have kept: the kept values are the `cap` smallest of all values seen, with
//! their exact counts, and `other` is every other connection.

use serde::{Deserialize, Serialize};

use super::counts::CountMap;

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CappedSet {
    /// Value → connections, in value order (a [`CountMap`]: a set keeps a few values, at
    /// most its cap, and is written as a JSON object like any other count map).
    pub values: CountMap,
    /// Connections whose value fell outside the kept values.
    #[serde(default)]
    pub other: u64,
}

impl CappedSet {
    /// Count one connection with `value`, keeping at most `cap` distinct values.
    pub fn add(&mut self, value: &str, cap: usize) {
        self.other += add(&mut self.values, value, cap);
    }

    /// Add another set's counts: the union in value order, of which the first `cap` are kept
    /// and the rest counted in `other` — what one set fed both sets' connections would hold.
    pub fn merge(&mut self, other: &CappedSet, cap: usize) {
        self.other += other.other + merge(&mut self.values, &other.values, cap);
    }

    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    /// `a, b, c (+4 more connections)`.
    pub fn summary(&self) -> String {
        self.view().summary()
    }

    /// The set as [`Capped`], the form a client's counts hand out.
    pub fn view(&self) -> Capped<'_> {
        Capped {
            values: &self.values,
            other: self.other,
        }
    }
}

/// [`CappedSet::add`] on the kept values alone: returns the connections to count in the
/// set's `other` (the one added, when its value is not kept, or those of a value it
/// pushed out). A client's counts keep the values inline and `other`, nearly always 0,
/// apart (see [`super::ServiceCountsInner`]).
pub fn add(values: &mut CountMap, value: &str, cap: usize) -> u64 {
    let beyond = match values.position(value) {
        Err(i) if i >= cap => 1,
        found => {
            values.add_at(found, value, 1);
            0
        }
    };
    beyond + values.truncate(cap)
}

/// [`CappedSet::merge`] on the kept values alone: returns the connections of the values
/// that fell beyond the cap, to count in `other` besides the other set's own.
pub fn merge(values: &mut CountMap, other: &CountMap, cap: usize) -> u64 {
    values.merge(other);
    values.truncate(cap)
}

/// A capped set as a client's counts hold it: its kept values and the connections beyond
/// them. Written exactly as a [`CappedSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capped<'a> {
    pub values: &'a CountMap,
    pub other: u64,
}

impl Capped<'_> {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.other == 0
    }

    /// `a, b, c (+4 more connections)`.
    pub fn summary(&self) -> String {
        let mut s = self.values.keys().collect::<Vec<_>>().join(", ");
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
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn keeps_the_first_values_by_order_whatever_the_arrival_order() {
        let values = ["d", "a", "c", "b", "a", "e", "d", "b"];
        let mut one = CappedSet::default();
        for v in values {
            one.add(v, 3);
        }
        assert_eq!(one.values.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(one.values.get("a"), Some(2));
        assert_eq!(one.values.get("b"), Some(2));
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
        set.values.iter().map(|(v, n)| (v.to_string(), n)).collect()
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
