//! One direction's Initial crypto stream: CRYPTO frames put back in offset order, whatever
//! order the packets came in, and cut into TLS handshake messages (RFC 8446 4: type, 24-bit
//! length, body).
//!
//! Memory is bounded: bytes past [`CRYPTO_BUDGET`] of stream offset are not kept, and the
//! stream says so ([`CryptoStream::over_budget`]). A ClientHello with a post-quantum key share
//! is under 2 KiB, and even a second one after a HelloRetryRequest fits many times over.

/// Bytes of stream offset held per direction.
pub const CRYPTO_BUDGET: usize = 16 * 1024;

/// Received pieces beyond which a stream gives up (a peer sending one byte per frame).
const MAX_PIECES: usize = 256;

#[derive(Debug, Default)]
pub struct CryptoStream {
    /// Stream bytes from offset 0; holes hold zeros until filled.
    bytes: Vec<u8>,
    /// Offset ranges received, sorted and merged.
    received: Vec<(usize, usize)>,
    /// Start of the next handshake message to hand out.
    consumed: usize,
    /// Data arrived past the budget (or in too many pieces) and was dropped.
    over_budget: bool,
}

impl CryptoStream {
    /// Add the bytes of a CRYPTO frame at `offset`. Bytes already held are kept as first
    /// received.
    pub fn insert(&mut self, offset: u64, data: &[u8]) {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let end = start.saturating_add(data.len());
        let kept_end = end.min(CRYPTO_BUDGET);
        if kept_end < end {
            self.over_budget = true;
        }
        if start >= kept_end {
            return;
        }
        if self.received.len() >= MAX_PIECES {
            self.over_budget = true;
            return;
        }
        if self.bytes.len() < kept_end {
            // Exact, so the buffer never grows past the budget by doubling.
            self.bytes.reserve_exact(kept_end - self.bytes.len());
            self.bytes.resize(kept_end, 0);
        }
        // Fill only the holes, so that the first copy of any byte wins.
        let mut at = start;
        for &(lo, hi) in &self.received {
            if hi <= at || lo >= kept_end {
                continue;
            }
            if lo > at {
                self.bytes[at..lo].copy_from_slice(&data[at - start..lo - start]);
            }
            at = at.max(hi);
        }
        if at < kept_end {
            self.bytes[at..kept_end].copy_from_slice(&data[at - start..kept_end - start]);
        }
        self.received.push((start, kept_end));
        self.received.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(self.received.len());
        for &(lo, hi) in &self.received {
            match merged.last_mut() {
                Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        self.received = merged;
    }

    /// Bytes available in order from offset 0.
    fn contiguous(&self) -> usize {
        match self.received.first() {
            Some(&(0, hi)) => hi,
            _ => 0,
        }
    }

    /// The next whole handshake message, as (type, body), once all its bytes are in.
    pub fn next_message(&mut self) -> Option<(u8, &[u8])> {
        let available = self.contiguous();
        let head = self.bytes.get(self.consumed..self.consumed + 4)?;
        if self.consumed + 4 > available {
            return None;
        }
        let len = usize::from(head[1]) << 16 | usize::from(head[2]) << 8 | usize::from(head[3]);
        let body_start = self.consumed + 4;
        let body_end = body_start.checked_add(len)?;
        if body_end > available {
            return None;
        }
        let kind = head[0];
        self.consumed = body_end;
        Some((kind, &self.bytes[body_start..body_end]))
    }

    /// Some bytes arrived, but not a whole message from where the last one ended.
    pub fn mid_message(&self) -> bool {
        self.received.iter().any(|&(_, hi)| hi > self.consumed)
    }

    /// Some data could not be kept (see [`CRYPTO_BUDGET`]).
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// Bytes held, for memory accounting.
    pub fn held(&self) -> usize {
        self.bytes.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A handshake message of type 1 with a 300-byte body, split in three and delivered in
    /// every order, overlapping pieces included: always the same one message.
    #[test]
    fn reassembles_in_any_order() {
        let mut message = vec![1, 0, 0x01, 0x2c];
        message.extend((0..300u32).map(|i| i as u8));
        let pieces = [(0usize, 100usize), (90, 200), (200, 304)];
        let orders = [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]];
        for order in orders {
            let mut stream = CryptoStream::default();
            for (n, &i) in order.iter().enumerate() {
                let (lo, hi) = pieces[i];
                stream.insert(lo as u64, &message[lo..hi]);
                if n < 2 {
                    assert!(stream.next_message().is_none());
                }
            }
            let (kind, body) = stream.next_message().unwrap();
            assert_eq!((kind, body), (1, &message[4..]));
            assert!(stream.next_message().is_none());
            assert!(!stream.mid_message());
        }
    }

    #[test]
    fn budget_bounds_the_buffer() {
        let mut stream = CryptoStream::default();
        stream.insert(u64::MAX - 3, &[1, 2, 3]);
        // Growing step by step up to the budget never over-allocates past it.
        for at in (0..CRYPTO_BUDGET as u64).step_by(1000) {
            stream.insert(at + 1, &[7; 600]);
            assert!(stream.held() <= CRYPTO_BUDGET);
        }
        stream.insert(CRYPTO_BUDGET as u64 - 1, &[1, 2, 3]);
        assert!(stream.over_budget());
        assert!(stream.held() <= CRYPTO_BUDGET);
        assert!(stream.next_message().is_none());
    }
}
