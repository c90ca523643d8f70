//! One direction of a TCP connection: turns segments in capture order into in-order bytes.
//!
//! In-order segments are delivered straight from the packet (no copy). Segments that arrive
//! early are copied into a small out-of-order store, bounded by [`OOO_CAP_BYTES`] and
//! [`OOO_CAP_SEGMENTS`] (adjacent pieces are joined, and each piece is charged
//! [`PIECE_OVERHEAD`] bytes, so a hello sent in 1-byte segments in any order still fits);
//! when the gap before them fills, they are delivered too.
//! Retransmitted or overlapping bytes are dropped: the first copy of every byte wins, whether
//! it was delivered already (RFC 9293 3.10.7.4 has a receiver trim a segment to the window it
//! still expects) or is waiting out of order. A later copy that carries different bytes is
//! flagged ([`Accepted::inconsistent`]) when the first copy is still at hand: held, or among
//! the last [`RECHECK_BYTES`] delivered.
//!
//! Sequence numbers are compared with wrapping arithmetic (RFC 9293 3.4), never subtracted
//! in a way that can panic.

/// Bytes held out of order per direction. A hello that needs more than this while earlier
/// bytes are missing is reported `incomplete`.
pub const OOO_CAP_BYTES: usize = 64 * 1024;
/// Separate pieces held out of order per direction (segments that touch are one piece).
pub const OOO_CAP_SEGMENTS: usize = 1024;
/// What each held piece costs on top of its bytes, counted against [`OOO_CAP_BYTES`]: its
/// vector and the allocator's bookkeeping.
pub const PIECE_OVERHEAD: usize = 64;
/// A segment more than this far ahead of what is expected is not from this stream (or the
/// capture missed too much to matter).
const MAX_AHEAD: u32 = 1 << 20;
/// Delivered bytes kept to hold retransmissions against (a little over one full-size
/// segment), so that a copy with different bytes is noticed.
pub const RECHECK_BYTES: usize = 2048;

/// Outcome of accepting a segment, for the caller's accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Accepted {
    /// Bytes delivered in order by this segment (including drained out-of-order ones).
    pub delivered: usize,
    /// The segment (or part of it) repeated bytes already delivered.
    pub retransmitted: bool,
    /// The segment was held for later.
    pub held: bool,
    /// The segment could not be held: the direction now has a permanent gap.
    pub dropped: bool,
    /// The segment lies far outside the expected window (another connection's sequence
    /// space, a spoofed or mirrored copy): ignored.
    pub out_of_window: bool,
    /// Bytes this segment repeats differ from the copy seen first (which was kept).
    pub inconsistent: bool,
}

#[derive(Debug, Default)]
pub struct Reassembler {
    /// Sequence number of the next byte to deliver, once known.
    next: Option<u32>,
    /// Whether `next` came from a SYN (so the stream is known from its first byte).
    from_syn: bool,
    /// Early segments, copied: (sequence number, bytes), in stream order and never
    /// overlapping (a later copy of held bytes is trimmed to what it adds).
    held: Vec<(u32, Vec<u8>)>,
    held_bytes: usize,
    /// The last delivered bytes (at most [`RECHECK_BYTES`]), ending at `next`: a ring, so
    /// that remembering a segment copies only its own bytes (no shifting of the older ones)
    /// and is allocated once. While filling, the oldest byte is at 0; once full, at
    /// `recent_oldest`.
    recent: Vec<u8>,
    recent_oldest: usize,
    /// Whether any byte was delivered yet.
    delivered_any: bool,
}

/// `a - b` as a signed distance in sequence space.
fn distance(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Reassembler {
    /// True once any byte was delivered.
    pub fn delivered_any(&self) -> bool {
        self.delivered_any
    }

    /// True when bytes are waiting behind a gap.
    pub fn has_gap(&self) -> bool {
        !self.held.is_empty()
    }

    /// Record a SYN: data starts at ISN + 1 (RFC 9293 3.4.1). Until data has flowed, the
    /// latest SYN wins: a peer that answers again with a new ISN (port reuse, a restarted
    /// attempt) means the earlier one is void.
    pub fn syn(&mut self, isn: u32) {
        if self.next.is_none() || !self.from_syn || !self.delivered_any {
            self.next = Some(isn.wrapping_add(1));
            self.from_syn = true;
            self.release();
        }
    }

    /// Accept one segment's payload; in-order bytes go to `deliver`, borrowed where possible.
    pub fn accept(&mut self, seq: u32, payload: &[u8], mut deliver: impl FnMut(&[u8])) -> Accepted {
        let mut result = Accepted::default();
        if payload.is_empty() {
            return result;
        }
        let next = *self.next.get_or_insert(seq);
        let ahead = distance(seq, next);
        if ahead > i64::from(MAX_AHEAD) || ahead < -i64::from(MAX_AHEAD) {
            result.out_of_window = true;
            return result;
        }
        if ahead > 0 {
            self.hold(next, seq, payload, &mut result);
            return result;
        }
        // The first `overlap` bytes were delivered already: the first copy stands.
        let overlap = ahead.unsigned_abs() as usize;
        if overlap > 0 {
            result.retransmitted = true;
            let repeated = &payload[..overlap.min(payload.len())];
            result.inconsistent |= self.differs_from_recent(overlap, repeated);
        }
        if overlap < payload.len() {
            self.deliver_from_next(&payload[overlap..], &mut deliver, &mut result);
        }
        result
    }

    /// Whether `bytes`, which start `back` bytes before `next` (`bytes.len() <= back`), differ
    /// from the delivered bytes still kept.
    fn differs_from_recent(&self, back: usize, bytes: &[u8]) -> bool {
        let kept = self.recent.len();
        let first = back.saturating_sub(kept);
        if first >= bytes.len() {
            return false;
        }
        let (older, newer) = self.recent_range(kept + first - back, bytes.len() - first);
        let (a, b) = bytes[first..].split_at(older.len());
        a != older || b != newer
    }

    /// `n` kept bytes from the `at`th oldest on, as up to two pieces of the ring.
    fn recent_range(&self, at: usize, n: usize) -> (&[u8], &[u8]) {
        let start = (self.recent_oldest + at) % RECHECK_BYTES;
        if start + n <= self.recent.len() {
            (&self.recent[start..start + n], &[])
        } else {
            let wrapped = start + n - self.recent.len();
            (&self.recent[start..], &self.recent[..wrapped])
        }
    }

    /// Keep the last [`RECHECK_BYTES`] of what was delivered, `bytes` the newest.
    fn remember(&mut self, bytes: &[u8]) {
        let mut bytes = &bytes[bytes.len().saturating_sub(RECHECK_BYTES)..];
        if self.recent.len() < RECHECK_BYTES {
            if self.recent.capacity() == 0 {
                self.recent.reserve_exact(RECHECK_BYTES);
            }
            let room = RECHECK_BYTES - self.recent.len();
            let (fill, rest) = bytes.split_at(bytes.len().min(room));
            self.recent.extend_from_slice(fill);
            bytes = rest;
        }
        while !bytes.is_empty() {
            let at = self.recent_oldest;
            let n = (RECHECK_BYTES - at).min(bytes.len());
            self.recent[at..at + n].copy_from_slice(&bytes[..n]);
            self.recent_oldest = (at + n) % RECHECK_BYTES;
            bytes = &bytes[n..];
        }
    }

    /// Hold a segment that starts after `next`, minus the bytes already held (those were
    /// seen first).
    fn hold(&mut self, next: u32, seq: u32, payload: &[u8], result: &mut Accepted) {
        let start = distance(seq, next);
        let mut fresh: Vec<(usize, usize)> = Vec::new();
        let mut pos = 0;
        // Pieces are in stream order and disjoint: skip those that end before this segment.
        let first = self
            .held
            .partition_point(|(s, b)| distance(*s, next) + b.len() as i64 <= start);
        for (held_seq, bytes) in &self.held[first..] {
            // Where this held piece lies relative to the payload's first byte.
            let from = distance(*held_seq, next) - start;
            let to = from + bytes.len() as i64;
            if to <= pos as i64 {
                continue;
            }
            if from >= payload.len() as i64 {
                break;
            }
            if from > pos as i64 {
                fresh.push((pos, from as usize));
            }
            let a = from.max(pos as i64) as usize;
            let b = (to as usize).min(payload.len());
            let in_held = (a as i64 - from) as usize;
            result.retransmitted = true;
            result.inconsistent |= payload[a..b] != bytes[in_held..in_held + (b - a)];
            pos = b;
        }
        if pos < payload.len() {
            fresh.push((pos, payload.len()));
        }
        if fresh.is_empty() {
            return;
        }
        let bytes: usize = fresh.iter().map(|(a, b)| b - a).sum();
        let pieces = self.held.len() + fresh.len();
        if pieces > OOO_CAP_SEGMENTS
            || self.held_bytes + bytes + pieces * PIECE_OVERHEAD > OOO_CAP_BYTES
        {
            result.dropped = true;
            return;
        }
        for (a, b) in fresh {
            let piece_seq = seq.wrapping_add(a as u32);
            let piece = &payload[a..b];
            let key = distance(piece_seq, next);
            let at = self.held.partition_point(|(s, _)| distance(*s, next) < key);
            // Join the piece before when it ends where this one starts.
            if let Some((s, before)) = at.checked_sub(1).and_then(|i| self.held.get_mut(i)) {
                if distance(*s, next) + before.len() as i64 == key {
                    before.extend_from_slice(piece);
                    self.join_following(at - 1, next);
                    continue;
                }
            }
            self.held.insert(at, (piece_seq, piece.to_vec()));
            self.join_following(at, next);
        }
        self.held_bytes += bytes;
        result.held = true;
    }

    /// Join held piece `i` and the one after it when they touch.
    fn join_following(&mut self, i: usize, next: u32) {
        let Some(((seq, bytes), (following, _))) = self.held.get(i).zip(self.held.get(i + 1))
        else {
            return;
        };
        if distance(*seq, next) + bytes.len() as i64 == distance(*following, next) {
            let (_, following) = self.held.remove(i + 1);
            self.held[i].1.extend_from_slice(&following);
        }
    }

    /// Deliver `data`, which starts at `next`; where held bytes overlap it they were seen
    /// first and go out instead.
    fn deliver_from_next(
        &mut self,
        mut data: &[u8],
        deliver: &mut impl FnMut(&[u8]),
        result: &mut Accepted,
    ) {
        while !data.is_empty() {
            let next = self.next.unwrap_or_default();
            let held_at = self
                .held
                .first()
                .map(|(seq, _)| distance(*seq, next).max(0) as usize)
                .filter(|&at| at < data.len());
            match held_at {
                Some(0) => {
                    let (_, bytes) = self.held.remove(0);
                    self.held_bytes -= bytes.len();
                    let n = bytes.len().min(data.len());
                    result.retransmitted = true;
                    result.inconsistent |= bytes[..n] != data[..n];
                    self.emit(&bytes, deliver, result);
                    data = &data[n..];
                }
                Some(at) => {
                    self.emit(&data[..at], deliver, result);
                    data = &data[at..];
                }
                None => {
                    self.emit(data, deliver, result);
                    data = &[];
                }
            }
        }
        self.drain(deliver, result);
    }

    /// Deliver held segments that the stream has now reached.
    fn drain(&mut self, deliver: &mut impl FnMut(&[u8]), result: &mut Accepted) {
        while let (Some(next), Some((seq, _))) = (self.next, self.held.first()) {
            let at = distance(*seq, next);
            if at > 0 {
                return;
            }
            let (_, bytes) = self.held.remove(0);
            self.held_bytes -= bytes.len();
            let overlap = at.unsigned_abs() as usize;
            if overlap < bytes.len() {
                self.emit(&bytes[overlap..], deliver, result);
            }
        }
    }

    /// Hand in-order bytes up and move `next` past them.
    fn emit(&mut self, bytes: &[u8], deliver: &mut impl FnMut(&[u8]), result: &mut Accepted) {
        deliver(bytes);
        self.delivered_any = true;
        result.delivered += bytes.len();
        self.next = self.next.map(|n| n.wrapping_add(bytes.len() as u32));
        self.remember(bytes);
    }

    /// Forget held bytes (the direction's handshake is decided; nothing more is needed).
    pub fn release(&mut self) {
        self.held = Vec::new();
        self.held_bytes = 0;
        self.recent = Vec::new();
        self.recent_oldest = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(r: &mut Reassembler, seq: u32, data: &[u8], out: &mut Vec<u8>) -> Accepted {
        r.accept(seq, data, |bytes| out.extend_from_slice(bytes))
    }

    #[test]
    fn in_order_out_of_order_and_retransmission() {
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        r.syn(99);
        collect(&mut r, 100, b"abc", &mut out);
        assert!(collect(&mut r, 106, b"ghi", &mut out).held);
        collect(&mut r, 103, b"def", &mut out);
        assert!(collect(&mut r, 101, b"bcd", &mut out).retransmitted);
        collect(&mut r, 108, b"ijk", &mut out);
        assert_eq!(out, b"abcdefghijk");
    }

    #[test]
    fn first_copy_wins_on_overlap() {
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        r.syn(0);
        collect(&mut r, 1, b"AAAA", &mut out);
        collect(&mut r, 3, b"XXYY", &mut out);
        assert_eq!(out, b"AAAAYY");
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        r.syn(u32::MAX - 2);
        collect(&mut r, u32::MAX - 1, b"ab", &mut out);
        collect(&mut r, 1, b"de", &mut out);
        collect(&mut r, 0, b"c", &mut out);
        assert_eq!(out, b"abcde");
    }

    #[test]
    fn held_bytes_were_first_and_win() {
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        r.syn(0);
        assert!(collect(&mut r, 3, b"CD", &mut out).held);
        // The in-order copy of 3..5 differs: the held copy was first.
        let a = collect(&mut r, 1, b"abXYe", &mut out);
        assert!(a.retransmitted && a.inconsistent);
        assert_eq!(out, b"abCDe");
        // A repeat of delivered bytes, same bytes: not inconsistent; different: flagged.
        assert!(!collect(&mut r, 2, b"bC", &mut out).inconsistent);
        assert!(collect(&mut r, 2, b"bX", &mut out).inconsistent);
        assert_eq!(out, b"abCDe");
    }

    #[test]
    fn one_byte_segments_in_reverse_order() {
        let stream: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        r.syn(u32::MAX - 1000);
        for i in (1..stream.len()).rev() {
            let seq = (u32::MAX - 999).wrapping_add(i as u32);
            assert!(collect(&mut r, seq, &stream[i..=i], &mut out).held);
        }
        assert_eq!(r.held.len(), 1, "touching pieces are joined");
        collect(&mut r, u32::MAX - 999, &stream[..1], &mut out);
        assert_eq!(out, stream);
        assert!(!r.has_gap());
    }

    /// Model check: any permutation of segments (with duplicates) yields the original stream,
    /// checked against the obvious answer.
    /// A seeded xorshift generator: `rand(n)` is in `0..n`, the same sequence every run.
    fn xorshift(mut state: u64) -> impl FnMut(usize) -> usize {
        move |n| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        }
    }

    #[test]
    fn permutations_match_the_model() {
        let stream: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut rand = xorshift(0x2545_f491);
        for _ in 0..500 {
            let mut cuts: Vec<usize> = (0..8).map(|_| rand(stream.len())).collect();
            cuts.extend([0, stream.len()]);
            cuts.sort_unstable();
            let mut segments: Vec<(usize, usize)> = cuts.windows(2).map(|w| (w[0], w[1])).collect();
            segments.push(segments[rand(segments.len())]);
            for i in (1..segments.len()).rev() {
                segments.swap(i, rand(i + 1));
            }
            let isn = rand(usize::MAX) as u32;
            let mut r = Reassembler::default();
            r.syn(isn);
            let mut out = Vec::new();
            for (a, b) in segments {
                let seq = isn.wrapping_add(1).wrapping_add(a as u32);
                collect(&mut r, seq, &stream[a..b], &mut out);
            }
            assert_eq!(out, stream);
        }
    }

    /// A retransmission is flagged exactly when one of its bytes among the last
    /// RECHECK_BYTES delivered differs from the first copy, wherever those bytes lie in the
    /// ring of kept bytes (checked against a plain model over many segment sizes).
    #[test]
    fn retransmissions_checked_against_the_last_bytes_delivered() {
        let stream: Vec<u8> = (0..20_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut rand = xorshift(0x9e37_79b9);
        let (mut flagged, mut clean) = (0, 0);
        for _ in 0..300 {
            let mut r = Reassembler::default();
            r.syn(0);
            let mut delivered = 0;
            let mut out = Vec::new();
            while delivered < stream.len() {
                let end = (delivered + 1 + rand(3000)).min(stream.len());
                collect(
                    &mut r,
                    1 + delivered as u32,
                    &stream[delivered..end],
                    &mut out,
                );
                delivered = end;
                // Repeat a stretch of what was delivered, maybe with one byte changed.
                let back = 1 + rand(delivered.min(4000));
                let start = delivered - back;
                let len = 1 + rand(back);
                let mut copy = stream[start..start + len].to_vec();
                let changed = (rand(2) == 0).then(|| rand(len));
                if let Some(i) = changed {
                    copy[i] ^= 0x55;
                }
                let got = collect(&mut r, 1 + start as u32, &copy, &mut out);
                let kept_from = delivered.saturating_sub(RECHECK_BYTES);
                let expected = changed.is_some_and(|i| start + i >= kept_from);
                assert!(got.retransmitted);
                assert_eq!(
                    got.inconsistent, expected,
                    "start {start} len {len} {changed:?}"
                );
                if expected {
                    flagged += 1;
                } else {
                    clean += 1;
                }
            }
            assert_eq!(out, stream);
        }
        assert!(flagged > 100 && clean > 100, "{flagged} {clean}");
    }
}
