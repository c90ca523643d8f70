#![no_main]
//! TCP reassembly against a model. The input is a mode byte (bit 0: a SYN starts the
//! stream), an ISN, then segments of four bytes: a signed 16-bit offset from ISN + 1
//! (times 64 when the variant's high bit is set, to reach out of the window), a length and a
//! variant. A segment's byte at stream offset k is a fixed function of k when the variant's
//! low bits are 0, and differs from it otherwise.
//!
//! The model: the first copy of every byte wins (among segments the reassembler did not
//! refuse), the delivered stream is exactly the longest run of known bytes from the start,
//! a segment is a retransmission when it repeats a known byte, and it is inconsistent when a
//! repeated byte differs from the first copy while that copy is still held or among the
//! last RECHECK_BYTES delivered.

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use tlscensus::flow::reassembly::{Reassembler, RECHECK_BYTES};
use tlscensus_fuzz::Bytes;

const MAX_AHEAD: i64 = 1 << 20;

fn content(offset: i64, variant: u8) -> u8 {
    (offset as u8).wrapping_mul(31).wrapping_add(17) ^ (variant & 0x7f)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let mode = input.u8();
    let isn = input.u32();
    let mut r = Reassembler::default();
    // Stream offsets are counted from ISN + 1; `base` is the offset of the first byte the
    // reassembler will deliver (ISN + 1 after a SYN, else the first segment's).
    let mut base = None;
    if mode & 1 != 0 {
        r.syn(isn);
        base = Some(0i64);
    }
    let mut known: HashMap<i64, u8> = HashMap::new();
    let mut out: Vec<u8> = Vec::new();
    let mut ops = 0;
    while !input.is_empty() && ops < 2000 {
        ops += 1;
        let raw_offset = i64::from(input.u16() as i16);
        let len = usize::from(input.u8());
        let variant = input.u8();
        let offset = if variant & 0x80 != 0 {
            raw_offset * 64
        } else {
            raw_offset
        };
        let payload: Vec<u8> = (0..len as i64)
            .map(|i| content(offset + i, variant))
            .collect();
        let seq = isn.wrapping_add(1).wrapping_add(offset as u32);
        let before = out.len();
        let accepted = r.accept(seq, &payload, |bytes| out.extend_from_slice(bytes));
        if len == 0 {
            assert_eq!(out.len(), before);
            continue;
        }
        let base = *base.get_or_insert(offset);
        let start = offset - base; // first byte, relative to the stream's first byte
        let ahead = start - before as i64;
        assert_eq!(
            accepted.out_of_window,
            ahead.abs() > MAX_AHEAD,
            "window check, {ahead} ahead"
        );
        if accepted.out_of_window {
            assert_eq!(out.len(), before);
            continue;
        }
        let mut repeats = false;
        let mut differs = false;
        for (i, &byte) in payload.iter().enumerate() {
            let k = start + i as i64;
            if k < before as i64 {
                repeats = true;
            }
            if let Some(&first) = known.get(&k) {
                repeats = true;
                let still_kept = k >= before as i64 - RECHECK_BYTES as i64;
                differs |= first != byte && still_kept;
            }
        }
        assert_eq!(accepted.retransmitted, repeats, "retransmission flag");
        assert_eq!(accepted.inconsistent, differs, "inconsistency flag");
        if accepted.dropped || accepted.held {
            assert!(ahead > 0, "held or dropped an in-order segment");
        }
        if !accepted.dropped {
            for (i, &byte) in payload.iter().enumerate() {
                let k = start + i as i64;
                if k >= before as i64 {
                    known.entry(k).or_insert(byte);
                }
            }
        } else {
            assert_eq!(out.len(), before, "a dropped segment delivered bytes");
        }
        assert_eq!(accepted.delivered, out.len() - before);
        for (k, &byte) in out.iter().enumerate().skip(before) {
            assert_eq!(
                Some(&byte),
                known.get(&(k as i64)),
                "byte {k}: not the first copy"
            );
        }
        assert!(
            !known.contains_key(&(out.len() as i64)),
            "byte {} is known but was not delivered",
            out.len()
        );
        let waiting = known.keys().any(|&k| k >= out.len() as i64);
        assert_eq!(r.has_gap(), waiting);
    }
});
