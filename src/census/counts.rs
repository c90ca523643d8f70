//! Small maps of name → count (versions, failure reasons, policy reasons, timeline labels).
//!
//! A sorted boxed slice rather than a `BTreeMap<String, u64>`: each client and service has
//! thirteen of these maps (six inside capped sets), most holding one to three names, and a
//! B-tree allocates a node with room for 11 entries (some 370 bytes) from its first one. A
//! [`CountMap`] is one pointer and a length, holds exactly its entries, and allocates
//! nothing while empty. It is written and read exactly as the map was: a JSON object with
//! the names in order.
//!
//! The names are shared ([`Name`]): a census holds a few dozen distinct versions, suites,
//! fingerprints and addresses in hundreds of thousands of entries, so each entry is a
//! pointer to its name and a count, 16 bytes.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Name → count, in name order (byte order, as a `BTreeMap<String, _>` orders them).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CountMap(Box<[(Name, u64)]>);

/// Longest name held inside its shared block, one pointer away from the entry.
const INLINE: usize = 46;

/// A name of a [`CountMap`]: a pointer to its text, shared by every entry with that name
/// that the same thread made (see [`intern`]).
///
/// On issue 27's handshake capture the census holds 673,000 entries over 62,000 client
/// services and only some 60 distinct names; each entry holding its own name (32 bytes,
/// JA3s and JA4s in a box of their own on top) was a third of the census. A lookup still
/// compares bytes, one pointer away: the few names are the same few blocks, hot in cache.
#[derive(Clone)]
struct Name(Arc<Text>);

/// The text of a [`Name`]: up to [`INLINE`] bytes in the shared block itself (versions,
/// suite codes, addresses, JA3 and JA4 fingerprints, most server names), a longer one
/// boxed.
enum Text {
    /// The first `len` bytes of `bytes`, always UTF-8: copied whole from a `str`.
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Boxed(Box<str>),
}

impl Text {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Text::Boxed(name) => name.as_bytes(),
        }
    }
}

/// A thread's names, so that equal names share one block. A worker's census and the
/// run's total hold names from several threads' sets; equal names from two threads are two
/// blocks, which costs only memory, never a wrong count: names compare by their bytes.
#[derive(Default)]
struct Interner {
    names: HashSet<Interned, foldhash::fast::RandomState>,
    /// How many names were left at the last sweep.
    kept: usize,
}

/// An interner's entry, found by the text it points to.
struct Interned(Name);

impl Borrow<[u8]> for Interned {
    fn borrow(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl Hash for Interned {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state)
    }
}

impl PartialEq for Interned {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for Interned {}

/// Fewest names an interner holds before it looks for names no map holds any more.
const SWEEP_FROM: usize = 4096;

thread_local! {
    static NAMES: RefCell<Interner> = RefCell::default();
}

/// The shared [`Name`] of `text`, made when this thread has none yet.
///
/// Names that no map holds any more (a value dropped from a capped set, a census dropped)
/// are let go once the set has doubled since it last looked, so a long capture's set
/// follows what its census holds instead of every name it ever saw.
fn intern(text: &str) -> Name {
    NAMES.with(|names| {
        let mut names = names.borrow_mut();
        if let Some(found) = names.names.get(text.as_bytes()) {
            return found.0.clone();
        }
        if names.names.len() >= SWEEP_FROM.max(2 * names.kept) {
            names.names.retain(|n| Arc::strong_count(&n.0 .0) > 1);
            names.kept = names.names.len();
        }
        let name = Name(Arc::new(Text::of(text)));
        names.names.insert(Interned(name.clone()));
        name
    })
}

impl Name {
    fn new(name: &str) -> Self {
        intern(name)
    }

    fn from_string(name: String) -> Self {
        Name::new(&name)
    }

    /// The name's bytes: what lookups compare (byte order is `str` order).
    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn as_str(&self) -> &str {
        match &*self.0 {
            Text::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).expect("copied from a str")
            }
            Text::Boxed(name) => name,
        }
    }
}

impl Text {
    fn of(name: &str) -> Self {
        if name.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            Text::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            Text::Boxed(name.into())
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Name {}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// [`CountMap::iter`]: (name, count) in name order.
#[derive(Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, (Name, u64)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, u64);

    fn next(&mut self) -> Option<(&'a str, u64)> {
        self.0.next().map(|(k, n)| (k.as_str(), *n))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, n)| (k.as_str(), *n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl CountMap {
    pub fn new() -> Self {
        CountMap::default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (name, count) in name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    /// The names in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The counts, in name order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = u64> + ExactSizeIterator + '_ {
        self.0.iter().map(|(_, n)| *n)
    }

    /// The count of `name`, if it is in the map (a count of 0 read from a report is).
    pub fn get(&self, name: &str) -> Option<u64> {
        self.find(name).ok().map(|i| self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// Add `n` to the count of `name`, putting it in the map (even with `n` 0) if it is not:
    /// `*map.entry(name).or_default() += n`.
    pub fn add(&mut self, name: &str, n: u64) {
        self.add_at(self.find(name), name, n);
    }

    /// Set the count of `name`, returning the one it replaces, as a map's `insert`.
    pub fn insert(&mut self, name: String, n: u64) -> Option<u64> {
        match self.find(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, n)),
            Err(i) => {
                self.insert_at(i, Name::from_string(name), n);
                None
            }
        }
    }

    /// Add every count of `other`, as [`CountMap::add`] of each of its entries.
    pub fn merge(&mut self, other: &CountMap) {
        if other.is_empty() {
            return;
        }
        // Usually every name is here already: add in place, without reallocating.
        if self.add_in_place(other) {
            return;
        }
        let mine = std::mem::take(&mut self.0).into_vec();
        let mut out = Vec::with_capacity(mine.len() + other.len());
        let (mut a, mut b) = (mine.into_iter().peekable(), other.0.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next().map(|(k, n)| (k.clone(), *n)),
                (Some((ka, _)), Some((kb, _))) => match ka.cmp(kb) {
                    Ordering::Less => a.next(),
                    Ordering::Greater => b.next().map(|(k, n)| (k.clone(), *n)),
                    Ordering::Equal => {
                        let (k, n) = a.next().expect("peeked");
                        let (_, m) = b.next().expect("peeked");
                        Some((k, n + m))
                    }
                },
            };
            out.extend(next);
        }
        self.0 = out.into_boxed_slice();
    }

    /// Add `other`'s counts in place if every name of `other` is here already, and say
    /// whether it was; otherwise change nothing.
    ///
    /// Both maps are in name order, so one walk along each finds every name: the report's
    /// service totals merge every client's maps into a few, and a binary search per name
    /// compared its bytes each step, where names a thread made once are the same pointer
    /// ([`Name::cmp`]).
    fn add_in_place(&mut self, other: &CountMap) -> bool {
        if !self.holds_every_name_of(other) {
            return false;
        }
        let mut i = 0;
        for (k, n) in other.0.iter() {
            // Every name is here, in the same order: the next equal one is it.
            while self.0[i].0 != *k {
                i += 1;
            }
            self.0[i].1 += n;
            i += 1;
        }
        true
    }

    /// Whether every name of `other` is in this map.
    fn holds_every_name_of(&self, other: &CountMap) -> bool {
        if other.len() > self.len() {
            return false;
        }
        let mut mine = self.0.iter();
        'names: for (k, _) in other.0.iter() {
            for (here, _) in mine.by_ref() {
                match here.cmp(k) {
                    Ordering::Less => continue,
                    Ordering::Equal => continue 'names,
                    Ordering::Greater => return false,
                }
            }
            return false;
        }
        true
    }

    /// Keep the first `len` names, dropping the rest; returns the sum of their counts.
    pub fn truncate(&mut self, len: usize) -> u64 {
        if self.0.len() <= len {
            return 0;
        }
        let mut v = std::mem::take(&mut self.0).into_vec();
        let dropped = v.drain(len..).map(|(_, n)| n).sum();
        self.0 = v.into_boxed_slice();
        dropped
    }

    /// Where `name` is (`Ok`), or where it would go (`Err`), in name order.
    pub fn position(&self, name: &str) -> Result<usize, usize> {
        self.find(name)
    }

    /// [`CountMap::add`] at the [`CountMap::position`] of `name` found just before, so
    /// that a caller that looked first does not search twice.
    pub fn add_at(&mut self, position: Result<usize, usize>, name: &str, n: u64) {
        debug_assert_eq!(position, self.find(name));
        match position {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.insert_at(i, Name::new(name), n),
        }
    }

    /// Where `name` is, or where it would go.
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.find_bytes(name.as_bytes())
    }

    fn find_bytes(&self, name: &[u8]) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_bytes().cmp(name))
    }

    /// Put a new entry at `i`, growing the slice by exactly one.
    fn insert_at(&mut self, i: usize, name: Name, n: u64) {
        if self.0.is_empty() {
            // Most inserts (seven in eight on issue 27's handshake capture) are a client's
            // first value of a map: one allocation of one entry, no growing.
            self.0 = Box::new([(name, n)]);
            return;
        }
        let mut v = std::mem::take(&mut self.0).into_vec();
        v.reserve_exact(1);
        v.insert(i, (name, n));
        self.0 = v.into_boxed_slice();
    }
}

impl<'a> IntoIterator for &'a CountMap {
    type Item = (&'a str, u64);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl fmt::Debug for CountMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for CountMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for CountMap {
    /// Read as a map, so a name given twice counts as a map would count it (the last one).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;

        impl<'de> Visitor<'de> for MapVisitor {
            type Value = CountMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of names to counts")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<CountMap, A::Error> {
                let mut entries: Vec<(Name, u64)> = Vec::new();
                let mut sorted = true;
                while let Some((k, n)) = access.next_entry::<String, u64>()? {
                    if let Some((last, _)) = entries.last() {
                        sorted &= last.as_bytes() < k.as_bytes();
                    }
                    entries.push((Name::from_string(k), n));
                }
                if !sorted {
                    // Stable, so of equal names the last is kept by `dedup` below when
                    // reversed first: keep the last given, as a map does.
                    entries.reverse();
                    entries.sort_by(|a, b| a.0.cmp(&b.0));
                    entries.dedup_by(|later, earlier| later.0 == earlier.0);
                }
                Ok(CountMap(entries.into_boxed_slice()))
            }
        }

        d.deserialize_map(MapVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn as_map(m: &CountMap) -> BTreeMap<String, u64> {
        m.iter().map(|(k, n)| (k.to_string(), n)).collect()
    }

    #[test]
    fn counts_and_merges_like_a_map() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let names: Vec<String> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!("v{}", x % 17)
            })
            .collect();
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        let mut one = CountMap::new();
        for (i, k) in names.iter().enumerate() {
            let n = (i % 3) as u64;
            *want.entry(k.clone()).or_default() += n;
            one.add(k, n);
        }
        assert_eq!(as_map(&one), want);
        assert_eq!(one.len(), want.len());
        assert!(one.keys().zip(want.keys()).all(|(a, b)| a == b));
        assert_eq!(one.values().sum::<u64>(), want.values().sum::<u64>());
        for split in [0, 1, 37, 150, 299, 300] {
            let (mut a, mut b) = (CountMap::new(), CountMap::new());
            for (i, k) in names.iter().enumerate() {
                if i < split { &mut a } else { &mut b }.add(k, (i % 3) as u64);
            }
            a.merge(&b);
            assert_eq!(a, one, "split {split}");
        }
        assert_eq!(one.get("v3"), want.get("v3").copied());
        assert_eq!(one.get("nope"), None);
        assert_eq!(one.insert("v3".into(), 7), want.insert("v3".into(), 7));
        assert_eq!(one.insert("zz".into(), 1), None);
    }

    #[test]
    fn short_and_long_names_keep_the_order_of_a_map() {
        // Names on both sides of the inline length, sharing prefixes, some multi-byte.
        let mut names: Vec<String> = Vec::new();
        for len in [0, 1, 21, 22, 23, 40] {
            for stem in ["a", "b", "ü", "\u{10348}"] {
                let name: String = stem.repeat(len);
                names.push(name.clone());
                names.push(format!("{name}z"));
            }
        }
        names.push("t13d1516h2_8daaf6152771_e5627efa2ab1".into());
        names.push("192.168.100.200".into());
        let mut want: BTreeMap<String, u64> = BTreeMap::new();
        let mut got = CountMap::new();
        for (i, name) in names.iter().chain(names.iter().rev()).enumerate() {
            *want.entry(name.clone()).or_default() += i as u64;
            got.add(name, i as u64);
        }
        assert_eq!(as_map(&got), want);
        assert!(got
            .iter()
            .map(|(k, _)| k)
            .eq(want.keys().map(String::as_str)));
        assert!(got
            .iter()
            .rev()
            .map(|(k, _)| k)
            .eq(want.keys().rev().map(String::as_str)));
        for name in &names {
            assert_eq!(got.get(name), want.get(name).copied(), "{name:?}");
        }
        let json = serde_json::to_string(&got).unwrap();
        assert_eq!(json, serde_json::to_string(&want).unwrap());
        assert_eq!(serde_json::from_str::<CountMap>(&json).unwrap(), got);
        let mut halves = (CountMap::new(), CountMap::new());
        for (i, name) in names.iter().enumerate() {
            if i % 2 == 0 {
                &mut halves.0
            } else {
                &mut halves.1
            }
            .add(name, 1);
        }
        halves.0.merge(&halves.1);
        assert!(halves.0.keys().eq(want.keys().map(String::as_str)));
    }

    #[test]
    fn an_entry_is_a_pointer_and_a_count_and_equal_names_share_a_block() {
        assert_eq!(std::mem::size_of::<(Name, u64)>(), 16);
        let long = "x".repeat(INLINE + 1);
        for text in [
            "TLSv1.2",
            "t13d1516h2_8daaf6152771_e5627efa2ab1",
            long.as_str(),
        ] {
            let (a, b) = (Name::new(text), Name::from_string(text.to_string()));
            assert!(Arc::ptr_eq(&a.0, &b.0), "{text}");
            assert_eq!(a.as_str(), text);
        }
    }

    #[test]
    fn names_no_map_holds_are_let_go() {
        // Names made and dropped: the interner must not keep growing with them.
        for i in 0..10 * SWEEP_FROM {
            let mut m = CountMap::new();
            m.add(&format!("gone-{i}"), 1);
        }
        let kept = NAMES.with(|n| n.borrow().names.len());
        assert!(kept <= 2 * SWEEP_FROM, "{kept} names kept");
        // A name still held survives a sweep and is found again.
        let mut held = CountMap::new();
        held.add("held", 1);
        for i in 0..3 * SWEEP_FROM {
            CountMap::new().add(&format!("again-{i}"), 1);
        }
        let again = Name::new("held");
        assert!(Arc::ptr_eq(&again.0, &held.0[0].0 .0));
    }

    #[test]
    fn written_and_read_as_a_map() {
        let mut m = CountMap::new();
        for k in ["TLSv1.3", "TLSv1.0", "TLSv1.3", "\"ü\""] {
            m.add(k, 1);
        }
        m.add("zero", 0);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, serde_json::to_string(&as_map(&m)).unwrap());
        let back: CountMap = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let odd = r#"{"b":1,"a":2,"b":5,"c":0,"a":3}"#;
        let want: BTreeMap<String, u64> = serde_json::from_str(odd).unwrap();
        let got: CountMap = serde_json::from_str(odd).unwrap();
        assert_eq!(as_map(&got), want);
        assert_eq!(format!("{m:?}"), format!("{:?}", as_map(&m)));
        assert_eq!(
            std::mem::size_of::<CountMap>(),
            2 * std::mem::size_of::<usize>()
        );
    }
}
