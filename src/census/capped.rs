//! Bounded sets of values seen (SNIs, ALPNs, JA4s, cipher suites, servers) with a count of
//! connections per value.
//!
//! A set keeps the [`CappedSet::cap`] alphabetically first distinct values and counts the
//! connections whose value is not kept in `other`. Keeping the *first by order* (not the
//! first seen or the most frequent) makes the result independent of the order in which
//! connections arrive, so merging two reports gives exactly the set one run over all the
//! traffic would have kept: the kept values are the `cap` smallest of all values seen, with
//! their exact counts, and `other` is every other connection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CappedSet {
    /// Value → connections.
    pub values: BTreeMap<String, u64>,
    /// Connections whose value fell outside the kept values.
    #[serde(default)]
    pub other: u64,
}

impl CappedSet {
    /// Count one connection with `value`, keeping at most `cap` distinct values.
    pub fn add(&mut self, value: &str, cap: usize) {
        self.add_n(value, 1, cap);
    }

    fn add_n(&mut self, value: &str, n: u64, cap: usize) {
        if let Some(count) = self.values.get_mut(value) {
            *count += n;
            return;
        }
        self.values.insert(value.to_string(), n);
        self.trim(cap);
    }

    /// Drop the largest values beyond `cap`, counting their connections in `other`.
    fn trim(&mut self, cap: usize) {
        while self.values.len() > cap {
            if let Some((_, n)) = self.values.pop_last() {
                self.other += n;
            }
        }
    }

    pub fn merge(&mut self, other: &CappedSet, cap: usize) {
        for (value, n) in &other.values {
            *self.values.entry(value.clone()).or_default() += n;
        }
        self.other += other.other;
        self.trim(cap);
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
}
