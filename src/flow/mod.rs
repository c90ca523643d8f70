//! Connections: the flow key, the bounded flow table, and per-direction TCP reassembly.

pub mod reassembly;

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr};

/// A connection's addresses and ports in canonical order (lower endpoint first), so both
/// directions of a connection map to one key and one hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub lo: (IpAddr, u16),
    pub hi: (IpAddr, u16),
}

/// Hashed as two or three machine words (the derived impl feeds the hasher each address
/// enum tag, length and byte run separately, which costs more than the lookup itself).
impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match (self.lo.0, self.hi.0) {
            (IpAddr::V4(lo), IpAddr::V4(hi)) => {
                state.write_u64(u64::from(u32::from(lo)) << 32 | u64::from(u32::from(hi)));
            }
            (lo, hi) => {
                state.write_u128(wide(lo));
                state.write_u128(wide(hi));
            }
        }
        state.write_u32(u32::from(self.lo.1) << 16 | u32::from(self.hi.1));
    }
}

fn wide(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Which endpoint of a [`FlowKey`] sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Lo = 0,
    Hi = 1,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Lo => Side::Hi,
            Side::Hi => Side::Lo,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl FlowKey {
    /// The key of the connection a packet from `src` to `dst` belongs to, and which side
    /// sent it.
    pub fn new(src: (IpAddr, u16), dst: (IpAddr, u16)) -> (FlowKey, Side) {
        // The same order as comparing the tuples (IPv4 before IPv6, then address, then
        // port), as integers: the derived comparison goes through byte slices and a memcmp
        // call, a noticeable share of a packet's cost.
        let src_first = match (src.0, dst.0) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u64::from(a.to_bits()) << 16 | u64::from(src.1))
                    <= (u64::from(b.to_bits()) << 16 | u64::from(dst.1))
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (a.to_bits(), src.1) <= (b.to_bits(), dst.1),
            _ => src <= dst,
        };
        if src_first {
            (FlowKey { lo: src, hi: dst }, Side::Lo)
        } else {
            (FlowKey { lo: dst, hi: src }, Side::Hi)
        }
    }

    /// [`FlowKey::new`] of addresses held elsewhere (a decoded segment), read through their
    /// references: IPv4 ones as their variant and four bytes. Copying the `IpAddr`s out
    /// whole first reads them in one wide load over the narrower stores that just wrote
    /// them, which stalls the CPU until those stores land (a visible share of a packet).
    #[inline]
    pub fn of(src: &IpAddr, sport: u16, dst: &IpAddr, dport: u16) -> (FlowKey, Side) {
        match (src, dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let (a, b) = (a.to_bits(), b.to_bits());
                let endpoint = |ip: u32, port: u16| (IpAddr::V4(Ipv4Addr::from_bits(ip)), port);
                if (u64::from(a) << 16 | u64::from(sport))
                    <= (u64::from(b) << 16 | u64::from(dport))
                {
                    let (lo, hi) = (endpoint(a, sport), endpoint(b, dport));
                    (FlowKey { lo, hi }, Side::Lo)
                } else {
                    let (lo, hi) = (endpoint(b, dport), endpoint(a, sport));
                    (FlowKey { lo, hi }, Side::Hi)
                }
            }
            _ => FlowKey::new((*src, sport), (*dst, dport)),
        }
    }

    pub fn endpoint(&self, side: Side) -> (IpAddr, u16) {
        match side {
            Side::Lo => self.lo,
            Side::Hi => self.hi,
        }
    }
}

/// Arrivals examined per insertion into a full table before the newcomer is refused.
const EVICT_TRIES: usize = 64;

/// Flow table limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections tracked at once; beyond it, idle ones are expired early and then new
    /// ones are not tracked (counted as `flows_refused`).
    pub max_flows: usize,
    /// A connection with no packet for this long (capture time) is expired.
    pub idle_timeout_ns: i64,
    /// Bytes the flow table may take (its slots and its arrival queue), when set: the table
    /// is then sized once, up front, to the most connections that fit (and `max_flows`), so
    /// it never grows (a hash table's growth holds the old and the new table at once). The
    /// command line sets it for the whole process and the pipeline splits it among workers.
    pub flow_memory: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: 1 << 20,
            idle_timeout_ns: 300 * 1_000_000_000,
            flow_memory: None,
        }
    }
}

/// What a flow table costs per connection it can hold, for table values of type `V`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowCost {
    /// One hash table slot: the key, the entry, and the slot's control byte.
    pub slot: usize,
    /// One place in the arrival queue (a key).
    pub arrival: usize,
}

impl FlowCost {
    pub fn of<V>() -> FlowCost {
        FlowCost {
            slot: std::mem::size_of::<(FlowKey, Entry<V>)>() + 1,
            arrival: std::mem::size_of::<FlowKey>(),
        }
    }

    /// The most connections a table within `bytes` can hold. The hash table has a power of
    /// two of slots, and may fill only half of the 7 in 8 it could hold: a full table under
    /// churn (a flood evicting as fast as it arrives) leaves deleted slots behind, and
    /// hashbrown then rehashes in place only while at most half full; fuller, it doubles
    /// (the 401 MiB of issue 22). The table is not allocated up front (slots touched once
    /// stay resident, and a few thousand live connections scattered over a table sized for
    /// the budget touched all of it: `benches/NOTES.md`, issue 27), so it grows by doubling
    /// and holds its old half beside the new table while it moves: the budget covers that
    /// moment, one and a half tables (and the same for the arrival queue). So the figure moves
    /// in steps: the largest table that fits.
    pub fn flows_within(self, bytes: usize) -> usize {
        let flows = |buckets: usize| (buckets / 8 * 7) / 2 - 1;
        let fits = |b: usize| (b * self.slot + flows(b) * self.arrival) / 2 * 3 <= bytes;
        let mut buckets: usize = 16;
        if !fits(buckets) {
            return flows(buckets);
        }
        while buckets < (1 << 40) && fits(buckets * 2) {
            buckets *= 2;
        }
        flows(buckets)
    }
}

/// An entry: the caller's per-connection state and the time of its last packet.
#[derive(Debug)]
pub struct Entry<V> {
    pub last_ts: i64,
    pub value: V,
}

/// A bounded map of connections. Expiry runs in sweeps over the whole table, which the caller
/// schedules (every quarter of the idle timeout of capture time), so its cost per packet
/// stays constant.
#[derive(Debug)]
pub struct FlowTable<V> {
    /// foldhash: several times cheaper than SipHash per lookup, and still seeded at random
    /// per table, so crafted addresses cannot force collisions.
    map: HashMap<FlowKey, Entry<V>, foldhash::fast::RandomState>,
    limits: Limits,
    /// Keys in order of arrival, oldest first: where eviction looks when the table is full.
    /// Entries already gone are skipped when met, and dropped in a pass once they are most
    /// of the queue. At most `max_flows` long.
    arrivals: VecDeque<FlowKey>,
    /// Connections dropped to make room (they carried nothing worth reporting).
    pub evicted: u64,
    pub expired: u64,
    pub refused: u64,
}

impl<V> FlowTable<V> {
    pub fn new(mut limits: Limits) -> Self {
        if let Some(bytes) = limits.flow_memory {
            let flows = FlowCost::of::<V>().flows_within(bytes);
            limits.max_flows = flows.min(limits.max_flows);
        }
        // Both start empty and grow with the connections held (see `flows_within`).
        FlowTable {
            map: HashMap::default(),
            limits,
            arrivals: VecDeque::new(),
            evicted: 0,
            expired: 0,
            refused: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Most connections tracked at once (as `Limits::flow_memory` allows).
    pub fn max_flows(&self) -> usize {
        self.limits.max_flows
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Entry<V>> {
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<V> {
        self.map.remove(key).map(|e| e.value)
    }

    /// Insert a new connection, making room first if the table is full: the oldest
    /// connections that carry nothing worth keeping (`evictable`: a SYN and no data yet, or
    /// already reported) are dropped, so a SYN flood cannot lock real connections out.
    /// Returns `None` when the table is full of connections with data (the new one is
    /// refused and counted).
    pub fn insert(
        &mut self,
        key: FlowKey,
        ts: i64,
        value: V,
        evictable: impl Fn(&V) -> bool,
        expire: &mut impl FnMut(FlowKey, i64, V),
    ) -> Option<&mut Entry<V>> {
        let mut tries = 0;
        while self.map.len() >= self.limits.max_flows && tries < EVICT_TRIES {
            tries += 1;
            let Some(old) = self.arrivals.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|e| evictable(&e.value)) {
                if let Some(entry) = self.map.remove(&old) {
                    self.evicted += 1;
                    expire(old, entry.last_ts, entry.value);
                }
            }
        }
        if self.map.len() >= self.limits.max_flows {
            self.refused += 1;
            return None;
        }
        if self.arrivals.len() >= self.limits.max_flows {
            self.arrivals.pop_front();
        }
        // Closed connections leave their keys behind; once they are most of the queue, it
        // keeps only the live ones (amortised: one pass per as many arrivals as it drops),
        // so the queue too follows the live connections, not all those seen.
        if self.arrivals.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.arrivals.retain(|key| map.contains_key(key));
        }
        self.arrivals.push_back(key);
        Some(self.map.entry(key).or_insert(Entry { last_ts: ts, value }))
    }

    /// Expire connections idle for the configured timeout at capture time `now`, oldest first.
    pub fn sweep(&mut self, now: i64, expire: &mut impl FnMut(FlowKey, i64, V)) {
        self.sweep_idle(now, self.limits.idle_timeout_ns, expire);
    }

    fn sweep_idle(&mut self, now: i64, idle: i64, expire: &mut impl FnMut(FlowKey, i64, V)) {
        let mut idle_keys: Vec<(i64, FlowKey)> = self
            .map
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.last_ts) > idle)
            .map(|(k, e)| (e.last_ts, *k))
            .collect();
        // Oldest first, so the records they produce come out in a deterministic order.
        idle_keys.sort_unstable();
        for (last_ts, key) in idle_keys {
            if let Some(entry) = self.map.remove(&key) {
                self.expired += 1;
                expire(key, last_ts, entry.value);
            }
        }
    }

    /// Remove every connection (end of input).
    pub fn drain(&mut self) -> impl Iterator<Item = (FlowKey, Entry<V>)> + '_ {
        self.map.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> FlowKey {
        FlowKey::new(
            (IpAddr::from(i.to_be_bytes()), 1024),
            (IpAddr::from([192, 0, 2, 1]), 443),
        )
        .0
    }

    /// The bytes a table's slots take, from hashbrown's own capacity (it holds 7 in 8 of a
    /// power of two of slots).
    fn slot_bytes<V>(table: &FlowTable<V>) -> usize {
        let slots = (table.map.capacity() * 8 / 7).next_power_of_two();
        slots * FlowCost::of::<V>().slot
    }

    /// A table sized by a memory budget fills up and then, with a connection evicted for
    /// every one that arrives (a flood), stops growing; at its largest, with the old table
    /// still held while it doubled, it fits the budget.
    #[test]
    fn a_budgeted_table_stays_within_its_budget_under_churn() {
        const BUDGET: usize = 1 << 20;
        let mut table: FlowTable<u64> = FlowTable::new(Limits {
            max_flows: usize::MAX,
            flow_memory: Some(BUDGET),
            ..Limits::default()
        });
        let flows = table.max_flows();
        let arrival = FlowCost::of::<u64>().arrival;
        let mut largest = 0;
        let mut filled = 0;
        let mut evicted = 0;
        for i in 0..20 * flows as u32 {
            table.insert(key(i), i64::from(i), 0, |_| true, &mut |_, _, _| {
                evicted += 1
            });
            assert!(table.len() <= flows);
            let bytes = slot_bytes(&table) + table.arrivals.capacity() * arrival;
            largest = largest.max(bytes);
            // `capacity()` is items plus room left: tombstones lower it until the next
            // rehash in place, so the slots it implies can only be underestimated; only a
            // reallocation could take them past the largest table seen while filling.
            if (i as usize) < 4 * flows {
                filled = filled.max(slot_bytes(&table));
            } else {
                assert!(slot_bytes(&table) <= filled, "the table grew under churn");
            }
        }
        // The moment of the last doubling: the new table and half of it, the old one.
        assert!(largest / 2 * 3 <= BUDGET, "{largest} bytes at most");
        assert_eq!(table.len(), flows);
        assert_eq!(evicted, 20 * flows - flows);
    }

    /// A table with room for many connections but few open at once stays small however many
    /// come and go: memory follows the live connections, not the budget (issue 27's
    /// handshake-only capture: 2,000 open at a time of 100,000).
    #[test]
    fn a_table_follows_its_live_connections_not_its_budget() {
        let mut table: FlowTable<u64> = FlowTable::new(Limits {
            max_flows: usize::MAX,
            flow_memory: Some(64 << 20),
            ..Limits::default()
        });
        assert!(table.max_flows() > 100_000);
        for i in 0..200_000u32 {
            table.insert(key(i), i64::from(i), 0, |_| false, &mut |_, _, _| {});
            if i >= 100 {
                table.remove(&key(i - 100));
            }
        }
        assert_eq!(table.len(), 100);
        assert!(
            slot_bytes(&table) < 64 << 10,
            "{} bytes",
            slot_bytes(&table)
        );
        assert!(table.arrivals.len() <= 2 * 100 + 64 + 1);
    }

    /// The integer comparison in `FlowKey::new` orders endpoints exactly as the standard
    /// library orders `(IpAddr, u16)` tuples, so keys, sides and record order are unchanged.
    #[test]
    fn key_order_matches_tuple_order() {
        let addresses: Vec<IpAddr> = [
            "0.0.0.0",
            "10.0.0.1",
            "10.0.0.2",
            "10.0.1.0",
            "192.0.2.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "2001:db8::1:0",
            "fe80::1",
            "ffff::",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let ports = [0u16, 1, 25, 443, 0x8000, 65535];
        let endpoints: Vec<(IpAddr, u16)> = addresses
            .iter()
            .flat_map(|&a| ports.iter().map(move |&p| (a, p)))
            .collect();
        for &src in &endpoints {
            for &dst in &endpoints {
                let (key, side) = FlowKey::new(src, dst);
                let (lo, hi, expected_side) = if src <= dst {
                    (src, dst, Side::Lo)
                } else {
                    (dst, src, Side::Hi)
                };
                assert_eq!(
                    (key.lo, key.hi, side),
                    (lo, hi, expected_side),
                    "{src:?} {dst:?}"
                );
                // Both directions give one key.
                assert_eq!(FlowKey::new(dst, src).0, key);
                assert_eq!(FlowKey::of(&src.0, src.1, &dst.0, dst.1), (key, side));
            }
        }
    }
}
