//! Finding the records of a stretch of a classic pcap file, when its bytes are all there
//! (a read block or a mapped one).
//!
//! A record's header gives its length, so the walk from record to record is a chain of
//! loads, each waiting for the one before. Over a block just copied into a read buffer each
//! load hits the cache. Over a mapped file each is a trip to memory: a serial walk of the
//! 2 GB bench capture's mapping took 0.39 s of one core against 0.23 s for `read` calls.
//!
//! [`Walker`] therefore follows several chains at once. It cuts the stretch into sub-ranges
//! and guesses where the first record of each starts (a run of plausible record headers;
//! see [`Guess`]). It walks all the chains interleaved, prefetching each one's next header,
//! so that their trips to memory overlap. Then it checks every guess against where the walk
//! of the sub-range before really ended. A wrong or missed guess costs only time: that
//! sub-range is walked again, serially, from the true position. So the result is always
//! [`walk_serial`]'s, which the unit tests below and the `pcap_walk` fuzz target check on
//! arbitrary bytes. (Payload that looks like records — a pcap file sent over the network,
//! say — only makes guesses fail.)

use super::mapped::prefetch;
use super::pcap::{RecordLayout, RECORD_HEADER_LEN};
use super::MAX_CAPLEN;

/// A record found: where its frame lies in the stretch, and its header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spot {
    /// Offset of the frame's first byte (just past the record header). A stretch is at
    /// most a few blocks plus one record of at most [`MAX_CAPLEN`] bytes, far below 4 GiB.
    pub frame: u32,
    pub caplen: u32,
    pub ts_nanos: i64,
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEnd {
    /// Every record starting before the end was found; the next one starts at `next`.
    Done { next: usize },
    /// The record at `at` runs to `need`, past the bytes given: the caller supplies more, or
    /// the file ends inside it. Records before it were found.
    Short { at: usize, need: usize },
    /// The record at `at` claims more than [`MAX_CAPLEN`] bytes. Records before it were
    /// found.
    Corrupt { at: usize, caplen: u32 },
}

/// Walk `data` record by record from `first`, appending to `out` every record that starts
/// before `end` (its bytes may run past `end`, not past `data`).
pub fn walk_serial(
    layout: RecordLayout,
    data: &[u8],
    first: usize,
    end: usize,
    out: &mut Vec<Spot>,
) -> WalkEnd {
    let mut at = first;
    while at < end {
        match record_at(layout, data, at, MAX_CAPLEN) {
            Step::Record(spot, next) => {
                out.push(spot);
                at = next;
            }
            Step::Short(need) => return WalkEnd::Short { at, need },
            Step::TooLong(caplen) => return WalkEnd::Corrupt { at, caplen },
        }
    }
    WalkEnd::Done { next: at }
}

/// What [`record_at`] found.
enum Step {
    /// A record, and where the next one starts.
    Record(Spot, usize),
    /// The header or the frame runs to this offset, past the bytes given.
    Short(usize),
    /// The header claims this captured length, over the limit.
    TooLong(u32),
}

/// The record whose header is at `at`, if it claims at most `max_caplen` bytes and they are
/// all in `data`.
#[inline(always)]
fn record_at(layout: RecordLayout, data: &[u8], at: usize, max_caplen: u32) -> Step {
    let Some(header) = data.get(at..at + RECORD_HEADER_LEN) else {
        return Step::Short(at + RECORD_HEADER_LEN);
    };
    let header = layout.header(header);
    if header.caplen > max_caplen {
        return Step::TooLong(header.caplen);
    }
    let frame = at + RECORD_HEADER_LEN;
    let frame_end = frame + header.caplen as usize;
    if frame_end > data.len() {
        return Step::Short(frame_end);
    }
    let spot = Spot {
        frame: frame as u32,
        caplen: header.caplen,
        ts_nanos: header.ts_nanos,
    };
    Step::Record(spot, frame_end)
}

/// Most chains walked at once: enough cache misses in flight to hide their latency, not so
/// many that guessing costs more than it hides (`benches/NOTES.md`).
pub const CHAINS: usize = 16;

/// A walk of several chains at once, with its reusable scratch space.
#[derive(Debug)]
pub struct Walker {
    /// Sub-ranges are at least this long: guessing a start costs a scan of up to a record's
    /// length, worth it only when the sub-range holds many records.
    min_sub_range: usize,
    chains: Vec<Chain>,
    /// Guessed chains kept, and those walked again because the guess was wrong or the chain
    /// broke (for `--stats`, and for tests that must see both happen).
    pub guesses_kept: u64,
    pub guesses_rewalked: u64,
}

#[derive(Debug, Default)]
struct Chain {
    /// Where the chain began (a guess, except for the first).
    start: usize,
    /// The next record of the chain.
    at: usize,
    /// The chain's records are those starting before this.
    end: usize,
    /// It met a header no real walk would take (or ran out of bytes): its records are
    /// found again serially.
    broken: bool,
    spots: Vec<Spot>,
}

impl Walker {
    /// A walker cutting stretches into sub-ranges of at least `min_sub_range` bytes (at most
    /// [`CHAINS`] of them). Tests and fuzzing use tiny ones to guess often.
    pub fn new(min_sub_range: usize) -> Walker {
        Walker {
            min_sub_range: min_sub_range.max(1),
            chains: Vec::new(),
            guesses_kept: 0,
            guesses_rewalked: 0,
        }
    }

    /// What [`walk_serial`] gives for the same arguments, found faster over bytes that are
    /// not in the cache.
    pub fn walk(
        &mut self,
        layout: RecordLayout,
        data: &[u8],
        first: usize,
        end: usize,
        out: &mut Vec<Spot>,
    ) -> WalkEnd {
        let span = end.saturating_sub(first);
        let chains = (span / self.min_sub_range).min(CHAINS);
        let Some(guess) = Guess::new(layout, data, first).filter(|_| chains > 1) else {
            return walk_serial(layout, data, first, end, out);
        };
        let sub_range = span.div_ceil(chains);
        if self.chains.len() < chains {
            self.chains.resize_with(chains, Chain::default);
        }
        let chains = &mut self.chains[..chains];
        for (k, chain) in chains.iter_mut().enumerate() {
            let from = first + k * sub_range;
            chain.end = (from + sub_range).min(end);
            chain.start = match k {
                0 => first,
                _ => guess.first_record(from, chain.end).unwrap_or(chain.end),
            };
            chain.at = chain.start;
            chain.broken = false;
            chain.spots.clear();
        }
        follow_interleaved(layout, data, chains);

        // Keep each chain that began where the one before really ended; walk the others
        // again from there.
        let mut next = first;
        for (k, chain) in chains.iter().enumerate() {
            if next >= chain.end {
                // No record starts in this sub-range (one long record spans it).
                continue;
            }
            if chain.start == next && !chain.broken {
                out.extend_from_slice(&chain.spots);
                next = chain.at;
                self.guesses_kept += u64::from(k > 0);
                continue;
            }
            self.guesses_rewalked += u64::from(k > 0);
            match walk_serial(layout, data, next, chain.end, out) {
                WalkEnd::Done { next: after } => next = after,
                ended => return ended,
            }
        }
        WalkEnd::Done { next }
    }
}

/// Step every chain one record at a time, round-robin, until each has passed its end: the
/// header loads of different chains are independent, so with each chain's next header
/// prefetched they are in flight together.
fn follow_interleaved(layout: RecordLayout, data: &[u8], chains: &mut [Chain]) {
    let mut moving = true;
    while moving {
        moving = false;
        for chain in chains.iter_mut() {
            if chain.broken || chain.at >= chain.end {
                continue;
            }
            let Step::Record(spot, frame_end) =
                record_at(layout, data, chain.at, Guess::MAX_CAPLEN)
            else {
                chain.broken = true;
                continue;
            };
            chain.spots.push(spot);
            chain.at = frame_end;
            // The header and the frame's link, network and transport headers: what the
            // decoder reads next.
            prefetch(data, frame_end);
            prefetch(data, frame_end + 64);
            moving = true;
        }
    }
}

/// Judges whether a record header could start at a given offset, by what real capture files
/// hold. Stricter than the walk itself: a real record it rejects only makes a guess fail.
#[derive(Debug, Clone, Copy)]
struct Guess<'a> {
    layout: RecordLayout,
    data: &'a [u8],
    /// Seconds of the stretch's first record: a guessed record must be within a day of it.
    seconds: u32,
    /// The sub-second field is below this (10⁶ for µs files, 10⁹ for ns files).
    fraction_limit: u32,
}

impl<'a> Guess<'a> {
    /// Largest captured length a guessed record may have (Wireshark's own limit).
    const MAX_CAPLEN: u32 = 256 << 10;
    /// Smallest: an Ethernet header.
    const MIN_CAPLEN: u32 = 14;
    const DAY: u32 = 86_400;
    /// Records after a guessed start that must look real too.
    const CONFIRMATIONS: usize = 3;

    fn new(layout: RecordLayout, data: &'a [u8], first: usize) -> Option<Guess<'a>> {
        let header = data.get(first..first + RECORD_HEADER_LEN)?;
        Some(Guess {
            layout,
            data,
            seconds: layout.field(header, 0),
            fraction_limit: layout.fraction_limit(),
        })
    }

    /// Where the record after a plausible header at `at` would start.
    #[inline]
    fn plausible(&self, at: usize) -> Option<usize> {
        let header = self.data.get(at..at + RECORD_HEADER_LEN)?;
        let field = |offset| self.layout.field(header, offset);
        let caplen = field(8);
        let believable = (Self::MIN_CAPLEN..=Self::MAX_CAPLEN).contains(&caplen)
            && field(12) >= caplen
            && field(4) < self.fraction_limit
            && field(0).wrapping_sub(self.seconds).wrapping_add(Self::DAY) <= 2 * Self::DAY;
        believable.then_some(at + RECORD_HEADER_LEN + caplen as usize)
    }

    /// The first offset in `from..to` where a record header starts that is followed by
    /// [`Self::CONFIRMATIONS`] more plausible ones (or by the end of the bytes).
    fn first_record(&self, from: usize, to: usize) -> Option<usize> {
        (from..to).find(|&at| {
            let mut next = at;
            for _ in 0..=Self::CONFIRMATIONS {
                if next == self.data.len() {
                    return true;
                }
                match self.plausible(next) {
                    Some(after) => next = after,
                    None => return false,
                }
            }
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian µs pcap record stream (no file header) of frames of the given lengths,
    /// each frame filled by `fill`.
    fn records(lengths: &[u32], fill: impl Fn(usize, u32) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &len) in lengths.iter().enumerate() {
            out.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
            out.extend_from_slice(&((i as u32 * 7919) % 1_000_000).to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            let frame = fill(i, len);
            assert_eq!(frame.len(), len as usize);
            out.extend_from_slice(&frame);
        }
        out
    }

    fn layout() -> RecordLayout {
        let mut header = [0u8; 24];
        header[..4].copy_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
        header[4] = 2;
        header[20] = 1;
        RecordLayout::from_file_header(&header).expect("a little-endian µs header")
    }

    /// Every (first, end, sub-range) combination over `data` gives the serial walk's result.
    /// Returns how many guesses were kept and how many walked again.
    fn check_all(data: &[u8]) -> (u64, u64) {
        let (mut kept, mut rewalked) = (0, 0);
        for sub in [1, 16, 60, 100, 333, 1000] {
            let mut walker = Walker::new(sub);
            for first in [0usize, 1, 16, 17] {
                for end in [
                    0,
                    1,
                    data.len() / 3,
                    data.len() / 2,
                    data.len() - 1,
                    data.len(),
                    data.len() + 5,
                ] {
                    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
                    let expected = walk_serial(layout(), data, first, end, &mut serial);
                    let got = walker.walk(layout(), data, first, end, &mut parallel);
                    assert_eq!(got, expected, "sub {sub} first {first} end {end}");
                    assert_eq!(parallel, serial, "sub {sub} first {first} end {end}");
                }
            }
            kept += walker.guesses_kept;
            rewalked += walker.guesses_rewalked;
        }
        (kept, rewalked)
    }

    #[test]
    fn random_payloads() {
        let lengths: Vec<u32> = (0..200).map(|i| 14 + (i * 37 % 300)).collect();
        let data = records(&lengths, |i, len| {
            (0..len)
                .map(|j| (i as u32 * 31 + j * 17 + j / 7) as u8)
                .collect()
        });
        let (kept, _) = check_all(&data);
        assert!(kept > 100, "most guesses hold on ordinary frames: {kept}");
    }

    /// Frames whose payload is itself a pcap record stream (a capture file downloaded over
    /// the network): guesses land on the inner records and must be caught.
    #[test]
    fn payloads_that_hold_records() {
        let inner = records(&[20, 30, 40, 50, 60, 70], |_, len| vec![0x41; len as usize]);
        let lengths: Vec<u32> = (0..120).map(|i| (inner.len() + i % 3) as u32).collect();
        let data = records(&lengths, |i, len| {
            let mut frame = inner.clone();
            frame.resize(len as usize, i as u8);
            frame
        });
        let (kept, rewalked) = check_all(&data);
        assert!(
            kept > 0 && rewalked > 0,
            "kept {kept}, walked again {rewalked}"
        );
    }

    /// Zero-filled and tiny frames, short and corrupt ends.
    #[test]
    fn damaged_and_degenerate_streams() {
        let lengths: Vec<u32> = (0..150).map(|i| [0, 1, 14, 100, 1500][i % 5]).collect();
        let data = records(&lengths, |_, len| vec![0; len as usize]);
        check_all(&data);
        let mut corrupt = data.clone();
        let at = corrupt.len() / 2;
        // A record header in the middle claiming 1 GiB.
        let mut walked = Vec::new();
        let WalkEnd::Done { .. } = walk_serial(layout(), &data, 0, at, &mut walked) else {
            panic!("the intact stream walks");
        };
        let boundary = walked
            .last()
            .map_or(0, |s| s.frame as usize + s.caplen as usize);
        corrupt[boundary + 8..boundary + 12].copy_from_slice(&(1u32 << 30).to_le_bytes());
        check_all(&corrupt);
        check_all(&data[..data.len() - 7]);
    }
}
