//! IP fragment reassembly: IPv4 (RFC 791) and IPv6 (RFC 8200 section 4.5) fragments are
//! joined back into whole datagrams before the TCP layer, as tshark does, so a hello that
//! rode in fragments is read like any other.
//!
//! Memory is bounded whatever the traffic: datagrams in progress per source address and the
//! bytes held in all are capped ([`FragmentLimits`]), and a datagram not complete within the
//! timeout (capture time, from its first fragment) is dropped. A fragment that would pass a
//! cap is refused, with the rest of its datagram.
//!
//! Overlaps follow one policy, the TCP path's (`flow::reassembly`): the first copy of a
//! byte wins. A fragment whose overlapping bytes differ from those held, or a second last
//! fragment giving another length, is counted as inconsistent. (RFC 5722 has IPv6 receivers
//! drop such datagrams; a passive census reports what the first copy said instead, and
//! counts the disagreement.)
//!
//! The reassembled datagram is handed back as a whole IP packet with a plain header (IPv4
//! without options, IPv6 without the extension headers before the fragment header), for the
//! ordinary decoder.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Caps on what the reassembler holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentLimits {
    /// Bytes held for all datagrams in progress (each also counts [`PER_DATAGRAM_OVERHEAD`]).
    pub max_bytes: usize,
    /// Datagrams in progress from one source address.
    pub max_per_source: usize,
    /// A datagram not complete this long (capture time) after its first fragment is dropped.
    pub timeout_ns: i64,
}

impl Default for FragmentLimits {
    /// Linux's defaults in spirit: 4 MiB held (`ipfrag_high_thresh`) and 30 s
    /// (`ipfrag_time`); 64 datagrams in progress per source.
    fn default() -> Self {
        FragmentLimits {
            max_bytes: 4 << 20,
            max_per_source: 64,
            timeout_ns: 30 * 1_000_000_000,
        }
    }
}

/// What each datagram in progress costs besides its bytes (its entry, ranges, bookkeeping),
/// so that empty fragments cannot fill the table for free.
pub const PER_DATAGRAM_OVERHEAD: usize = 128;

/// The largest datagram payload: the IPv4 total length and IPv6 payload length are 16 bits.
const MAX_PAYLOAD: usize = 65_535;

/// Counters for `--stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FragmentStats {
    /// IP fragments met.
    pub fragments: u64,
    /// Datagrams made whole again.
    pub reassembled: u64,
    /// Datagrams dropped incomplete at the timeout.
    pub timed_out: u64,
    /// Datagrams refused or abandoned: a cap reached, or a fragment that cannot be placed
    /// (cut by the snap length, past 65,535 bytes, a damaged header).
    pub refused: u64,
    /// Fragments whose bytes disagreed with those already held (the first copy was kept).
    pub inconsistent_overlaps: u64,
    /// Datagrams still incomplete when the input ended.
    pub unfinished: u64,
}

impl FragmentStats {
    pub fn add(&mut self, other: &FragmentStats) {
        self.fragments += other.fragments;
        self.reassembled += other.reassembled;
        self.timed_out += other.timed_out;
        self.refused += other.refused;
        self.inconsistent_overlaps += other.inconsistent_overlaps;
        self.unfinished += other.unfinished;
    }
}

/// Which datagram a fragment belongs to: RFC 791's (source, destination, protocol,
/// identification); RFC 8200's (source, destination, identification), protocol 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct DatagramKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    protocol: u8,
}

/// One fragment, parsed.
struct Fragment<'a> {
    key: DatagramKey,
    /// Byte offset of `data` in the datagram's payload.
    offset: usize,
    more: bool,
    data: &'a [u8],
    /// IPv4: the header's first 12 bytes (version, TOS, TTL...); IPv6: its first 8.
    header: &'a [u8],
    /// The protocol the payload carries (IPv6: from the fragment header).
    next_protocol: u8,
}

/// A datagram in progress.
#[derive(Debug)]
struct Pending {
    first_ts: i64,
    /// Payload bytes at their offsets; unreceived ones are zero.
    data: Vec<u8>,
    /// Byte ranges received, sorted and merged.
    have: Vec<(usize, usize)>,
    /// Payload length, once the last fragment has come.
    total: Option<usize>,
    /// The header to rebuild from (that of the fragment at offset 0 once it has come).
    header: Vec<u8>,
    next_protocol: u8,
    first_seen: bool,
}

impl Pending {
    fn cost(&self) -> usize {
        self.data.len() + PER_DATAGRAM_OVERHEAD
    }

    /// Every byte up to the length the last fragment gave is here (bytes past it, from a
    /// fragment that disagreed, are left out).
    fn complete(&self) -> bool {
        self.total.is_some_and(|total| {
            total == 0
                || self
                    .have
                    .first()
                    .is_some_and(|&(a, b)| a == 0 && b >= total)
        })
    }

    /// Copy in the bytes of `fragment` not held yet; whether any held byte differed.
    fn place(&mut self, offset: usize, bytes: &[u8]) -> bool {
        let end = offset + bytes.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        let mut inconsistent = false;
        let mut cursor = offset;
        for &(a, b) in &self.have {
            if b <= cursor {
                continue;
            }
            if a >= end {
                break;
            }
            if a > cursor {
                self.data[cursor..a].copy_from_slice(&bytes[cursor - offset..a - offset]);
            }
            let (from, to) = (a.max(cursor), b.min(end));
            inconsistent |= self.data[from..to] != bytes[from - offset..to - offset];
            cursor = to;
        }
        if cursor < end {
            self.data[cursor..end].copy_from_slice(&bytes[cursor - offset..]);
        }
        if end > offset {
            self.have.push((offset, end));
            self.have.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.have.len());
            for &(a, b) in &self.have {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            self.have = merged;
        }
        inconsistent
    }
}

/// Joins IP fragments into datagrams, within [`FragmentLimits`].
#[derive(Debug)]
pub struct Reassembler {
    limits: FragmentLimits,
    /// Seeded at random: fragment identifiers are chosen by whoever sends them.
    pending: HashMap<DatagramKey, Pending, foldhash::fast::RandomState>,
    per_source: HashMap<IpAddr, usize, foldhash::fast::RandomState>,
    /// Bytes held, as [`Pending::cost`] counts them.
    held: usize,
    /// Datagrams by first fragment time, oldest first, for the timeout (entries of datagrams
    /// already gone are skipped when met, and compacted away when they pile up).
    arrivals: VecDeque<(i64, DatagramKey)>,
    pub stats: FragmentStats,
}

impl Reassembler {
    pub fn new(limits: FragmentLimits) -> Self {
        Reassembler {
            limits,
            pending: HashMap::default(),
            per_source: HashMap::default(),
            held: 0,
            arrivals: VecDeque::new(),
            stats: FragmentStats::default(),
        }
    }

    /// Datagrams in progress.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Bytes held now (as the cap counts them).
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Take one fragment (an IP packet, from its IP header to the end of what was captured,
    /// captured at `ts`). Returns the whole datagram, as an IP packet, when this fragment
    /// completed it.
    pub fn add(&mut self, packet: &[u8], ts: i64) -> Option<Vec<u8>> {
        self.stats.fragments += 1;
        self.expire(ts);
        let Some(fragment) = parse(packet) else {
            self.stats.refused += 1;
            return None;
        };
        let key = fragment.key;
        let end = fragment.offset + fragment.data.len();
        if end > MAX_PAYLOAD {
            self.refuse(&key);
            return None;
        }
        if !self.pending.contains_key(&key) {
            let sources = self.per_source.get(&key.src).copied().unwrap_or(0);
            if sources >= self.limits.max_per_source
                || self.held + PER_DATAGRAM_OVERHEAD + end > self.limits.max_bytes
            {
                self.stats.refused += 1;
                return None;
            }
            *self.per_source.entry(key.src).or_insert(0) += 1;
            self.held += PER_DATAGRAM_OVERHEAD;
            self.pending.insert(
                key,
                Pending {
                    first_ts: ts,
                    data: Vec::new(),
                    have: Vec::new(),
                    total: None,
                    header: fragment.header.to_vec(),
                    next_protocol: fragment.next_protocol,
                    first_seen: false,
                },
            );
            self.arrivals.push_back((ts, key));
            if self.arrivals.len() > 2 * self.pending.len() + 64 {
                let pending = &self.pending;
                self.arrivals
                    .retain(|(ts, key)| pending.get(key).is_some_and(|p| p.first_ts == *ts));
            }
        }
        let grows = {
            let pending = &self.pending[&key];
            end.saturating_sub(pending.data.len())
        };
        if self.held + grows > self.limits.max_bytes {
            self.refuse(&key);
            return None;
        }
        self.held += grows;
        let pending = self.pending.get_mut(&key).expect("inserted above");
        let mut inconsistent = pending.place(fragment.offset, fragment.data);
        if fragment.offset == 0 && !pending.first_seen {
            pending.first_seen = true;
            pending.header = fragment.header.to_vec();
            pending.next_protocol = fragment.next_protocol;
        }
        match (fragment.more, pending.total) {
            (false, None) => pending.total = Some(end),
            (false, Some(total)) => inconsistent |= total != end,
            (true, Some(total)) => inconsistent |= end > total,
            (true, None) => {}
        }
        if inconsistent {
            self.stats.inconsistent_overlaps += 1;
        }
        if !pending.complete() {
            return None;
        }
        let pending = self.remove(&key)?;
        self.stats.reassembled += 1;
        Some(rebuild(&key, pending))
    }

    /// Drop the datagrams whose first fragment came more than the timeout before `now`.
    pub fn expire(&mut self, now: i64) {
        while let Some(&(first_ts, key)) = self.arrivals.front() {
            if now.saturating_sub(first_ts) <= self.limits.timeout_ns {
                break;
            }
            self.arrivals.pop_front();
            if self
                .pending
                .get(&key)
                .is_some_and(|p| p.first_ts == first_ts)
            {
                self.remove(&key);
                self.stats.timed_out += 1;
            }
        }
    }

    /// The input is over: count (and free) the datagrams still incomplete.
    pub fn finish(&mut self) {
        self.stats.unfinished += self.pending.len() as u64;
        self.pending.clear();
        self.per_source.clear();
        self.arrivals.clear();
        self.held = 0;
    }

    fn refuse(&mut self, key: &DatagramKey) {
        self.remove(key);
        self.stats.refused += 1;
    }

    fn remove(&mut self, key: &DatagramKey) -> Option<Pending> {
        let pending = self.pending.remove(key)?;
        self.held -= pending.cost();
        if let Some(count) = self.per_source.get_mut(&key.src) {
            *count -= 1;
            if *count == 0 {
                self.per_source.remove(&key.src);
            }
        }
        Some(pending)
    }
}

/// Parse an IPv4 or IPv6 fragment; `None` if it is not one or cannot be placed (header
/// damaged, or cut by the snap length before its end).
fn parse(packet: &[u8]) -> Option<Fragment<'_>> {
    match packet.first()? >> 4 {
        4 => {
            let header = packet.get(..20)?;
            let header_len = usize::from(header[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
            if header_len < 20 || total < header_len || packet.len() < total {
                return None;
            }
            let flags = u16::from_be_bytes([header[6], header[7]]);
            let src: [u8; 4] = header[12..16].try_into().ok()?;
            let dst: [u8; 4] = header[16..20].try_into().ok()?;
            Some(Fragment {
                key: DatagramKey {
                    src: IpAddr::V4(Ipv4Addr::from(src)),
                    dst: IpAddr::V4(Ipv4Addr::from(dst)),
                    id: u32::from(u16::from_be_bytes([header[4], header[5]])),
                    protocol: header[9],
                },
                offset: usize::from(flags & 0x1fff) * 8,
                more: flags & 0x2000 != 0,
                data: &packet[header_len..total],
                header: &header[..12],
                next_protocol: header[9],
            })
        }
        6 => {
            let header = packet.get(..40)?;
            let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            // A zero length is a jumbogram, which is never fragmented.
            if payload_len == 0 || packet.len() < 40 + payload_len {
                return None;
            }
            let packet = &packet[..40 + payload_len];
            let mut next = header[6];
            let mut at = 40;
            // Hop-by-hop, routing and destination options may come before the fragment
            // header (RFC 8200 4.1); a few at most.
            for _ in 0..8 {
                match next {
                    0 | 43 | 60 => {
                        let ext = packet.get(at..at + 2)?;
                        next = ext[0];
                        at += (usize::from(ext[1]) + 1) * 8;
                    }
                    44 => {
                        let frag = packet.get(at..at + 8)?;
                        let field = u16::from_be_bytes([frag[2], frag[3]]);
                        let src: [u8; 16] = header[8..24].try_into().ok()?;
                        let dst: [u8; 16] = header[24..40].try_into().ok()?;
                        return Some(Fragment {
                            key: DatagramKey {
                                src: IpAddr::V6(Ipv6Addr::from(src)),
                                dst: IpAddr::V6(Ipv6Addr::from(dst)),
                                id: u32::from_be_bytes([frag[4], frag[5], frag[6], frag[7]]),
                                protocol: 0,
                            },
                            offset: usize::from(field >> 3) * 8,
                            more: field & 1 != 0,
                            data: &packet[at + 8..],
                            header: &header[..8],
                            next_protocol: frag[0],
                        });
                    }
                    _ => return None,
                }
            }
            None
        }
        _ => None,
    }
}

/// The datagram as one IP packet with a plain header.
fn rebuild(key: &DatagramKey, pending: Pending) -> Vec<u8> {
    let total = pending.total.unwrap_or(0);
    let payload = &pending.data[..total.min(pending.data.len())];
    let mut packet = Vec::with_capacity(40 + payload.len());
    match (key.src, key.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let h = &pending.header;
            let length = (20 + payload.len()).min(MAX_PAYLOAD) as u16;
            packet.extend_from_slice(&[0x45, h[1]]);
            packet.extend_from_slice(&length.to_be_bytes());
            packet.extend_from_slice(&h[4..6]);
            packet.extend_from_slice(&[0, 0, h[8], pending.next_protocol, 0, 0]);
            packet.extend_from_slice(&src.octets());
            packet.extend_from_slice(&dst.octets());
            let checksum = ipv4_checksum(&packet);
            packet[10..12].copy_from_slice(&checksum.to_be_bytes());
        }
        (src, dst) => {
            let h = &pending.header;
            packet.extend_from_slice(&h[..4]);
            packet.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            packet.extend_from_slice(&[pending.next_protocol, h[7]]);
            for address in [src, dst] {
                match address {
                    IpAddr::V6(v6) => packet.extend_from_slice(&v6.octets()),
                    IpAddr::V4(v4) => packet.extend_from_slice(&v4.to_ipv6_mapped().octets()),
                }
            }
        }
    }
    packet.extend_from_slice(payload);
    packet
}

/// RFC 791's header checksum (one's complement sum of 16-bit words).
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 fragment laid out per RFC 791: id 7, protocol 6, 10.0.0.1 → 10.0.0.2.
    fn v4(offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
        let total = (20 + data.len()) as u16;
        let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
        let mut p = vec![0x45, 0];
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[0, 7]);
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn out_of_order_fragments_join_and_first_copy_wins() {
        let mut r = Reassembler::new(FragmentLimits::default());
        assert!(r.add(&v4(16, false, b"CCCC"), 0).is_none());
        assert!(r.add(&v4(0, true, b"AAAAAAAA"), 1).is_none());
        // Overlaps bytes 0..8 (different) and fills 8..16.
        let whole = r.add(&v4(0, true, b"XXXXXXXXBBBBBBBB"), 2).unwrap();
        assert_eq!(&whole[20..], b"AAAAAAAABBBBBBBBCCCC");
        assert_eq!(u16::from_be_bytes([whole[2], whole[3]]), 40);
        assert_eq!(whole[6..8], [0, 0]);
        assert_eq!(ipv4_checksum(&whole[..20]), 0);
        assert_eq!(r.stats.inconsistent_overlaps, 1);
        assert_eq!(r.stats.reassembled, 1);
        assert_eq!((r.len(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn caps_and_timeout_bound_what_is_held() {
        let limits = FragmentLimits {
            max_bytes: 1 << 20,
            max_per_source: 2,
            timeout_ns: 10,
        };
        let mut r = Reassembler::new(limits);
        for id in 0..3u8 {
            let mut f = v4(0, true, b"AAAAAAAA");
            f[5] = id;
            r.add(&f, 0);
        }
        assert_eq!((r.len(), r.stats.refused), (2, 1));
        r.expire(11);
        assert_eq!((r.len(), r.stats.timed_out), (0, 2));
        assert_eq!(r.held_bytes(), 0);
        // Past 65,535 bytes: refused.
        assert!(r.add(&v4(65_528, false, b"AAAAAAAA"), 20).is_none());
        assert_eq!(r.stats.refused, 2);
    }
}
