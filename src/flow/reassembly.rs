//! One direction of a TCP connection: turns segments in capture order into in-order bytes.
//!
//! In-order segments are delivered straight from the packet (no copy). Segments that arrive
//! early are copied into a small out-of-order store, bounded by [`OOO_CAP_BYTES`] and
//! [`OOO_CAP_SEGMENTS`]; when the gap before them fills, they are delivered too.
//! Retransmitted or overlapping bytes already delivered are dropped: the first copy wins, as
//! RFC 9293 3.10.7.4 has a receiver trim a segment to the window it still expects.
//!
//! Sequence numbers are compared with wrapping arithmetic (RFC 9293 3.4), never subtracted
//! in a way that can panic.

/// Bytes held out of order per direction. A hello that needs more than this while earlier
/// bytes are missing is reported `incomplete`.
pub const OOO_CAP_BYTES: usize = 64 * 1024;
/// Segments held out of order per direction.
pub const OOO_CAP_SEGMENTS: usize = 32;
/// A segment more than this far ahead of what is expected is not from this stream (or the
/// capture missed too much to matter).
const MAX_AHEAD: u32 = 1 << 20;

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
}

#[derive(Debug, Default)]
pub struct Reassembler {
    /// Sequence number of the next byte to deliver, once known.
    next: Option<u32>,
    /// Whether `next` came from a SYN (so the stream is known from its first byte).
    from_syn: bool,
    /// Early segments, copied: (sequence number, bytes).
    held: Vec<(u32, Vec<u8>)>,
    held_bytes: usize,
    /// Whether any byte was delivered yet.
    delivered_any: bool,
}

/// `a - b` as a signed distance in sequence space.
fn distance(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

impl Reassembler {
    /// True when the stream's start is known from a SYN.
    pub fn saw_syn(&self) -> bool {
        self.from_syn
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
            if self.held.len() >= OOO_CAP_SEGMENTS
                || self.held_bytes + payload.len() > OOO_CAP_BYTES
            {
                result.dropped = true;
            } else {
                self.held_bytes += payload.len();
                self.held.push((seq, payload.to_vec()));
                result.held = true;
            }
            return result;
        }
        let overlap = ahead.unsigned_abs() as usize;
        if overlap > 0 {
            result.retransmitted = true;
        }
        if overlap < payload.len() {
            let fresh = &payload[overlap..];
            deliver(fresh);
            self.delivered_any = true;
            result.delivered += fresh.len();
            self.next = Some(next.wrapping_add(fresh.len() as u32));
            self.drain(&mut deliver, &mut result);
        }
        result
    }

    /// Deliver held segments that the stream has now reached.
    fn drain(&mut self, deliver: &mut impl FnMut(&[u8]), result: &mut Accepted) {
        while let Some(next) = self.next {
            let Some(index) = self
                .held
                .iter()
                .position(|(seq, _)| distance(*seq, next) <= 0)
            else {
                return;
            };
            let (seq, bytes) = self.held.swap_remove(index);
            self.held_bytes -= bytes.len();
            let overlap = distance(next, seq) as usize;
            if overlap < bytes.len() {
                let fresh = &bytes[overlap..];
                deliver(fresh);
                result.delivered += fresh.len();
                self.next = Some(next.wrapping_add(fresh.len() as u32));
            } else {
                result.retransmitted = true;
            }
        }
    }

    /// Forget held bytes (the direction's handshake is decided; nothing more is needed).
    pub fn release(&mut self) {
        self.held = Vec::new();
        self.held_bytes = 0;
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

    /// Model check: any permutation of segments (with duplicates) yields the original stream,
    /// checked against the obvious answer.
    #[test]
    fn permutations_match_the_model() {
        let stream: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut state = 0x2545_f491_u64;
        let mut rand = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
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
}
