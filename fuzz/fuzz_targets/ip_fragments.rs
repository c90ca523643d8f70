#![no_main]
//! IP fragment reassembly against a model. The input is a sequence of operations; each
//! starts with a byte whose low bit picks the kind:
//!
//! - a fragment (IPv4, or IPv6 when bit 1 is set) of one of four datagrams (bits 2-3) from
//!   one of two sources (bit 4): a 13-bit offset in 8-byte units, a length in 8-byte units
//!   (plus an odd tail when bit 5 is set), the more-fragments flag (bit 6) and a variant
//!   byte that changes its content (bit 7 set: from the variant, else a fixed function of
//!   the byte's offset);
//! - raw bytes handed to the reassembler as a packet (never a panic).
//!
//! The model: the first copy of every byte wins, among fragments the reassembler did not
//! refuse; a datagram comes out exactly when its last fragment is known and every byte
//! before its end is, and then holds the first copies. Limits are small, so refusals
//! happen; the bytes held never pass the cap.

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use tlscensus::decode::fragments::{FragmentLimits, Reassembler, PER_DATAGRAM_OVERHEAD};
use tlscensus_fuzz::Bytes;

const LIMITS: FragmentLimits = FragmentLimits {
    max_bytes: 96 << 10,
    max_per_source: 3,
    timeout_ns: i64::MAX,
};

#[derive(Default)]
struct Model {
    bytes: HashMap<usize, u8>,
    total: Option<usize>,
}

fn content(offset: usize, variant: u8) -> u8 {
    if variant & 0x80 != 0 {
        variant ^ (offset as u8)
    } else {
        (offset as u8).wrapping_mul(31).wrapping_add(17)
    }
}

fn packet(v6: bool, id: u8, source: u8, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let field = (offset / 8) as u16;
    let mut p = Vec::new();
    if v6 {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[44, 64]);
        p.extend_from_slice(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, source,
        ]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        p.extend_from_slice(&[6, 0]);
        p.extend_from_slice(&((field << 3) | u16::from(more)).to_be_bytes());
        p.extend_from_slice(&u32::from(id).to_be_bytes());
    } else {
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&((20 + data.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, id]);
        p.extend_from_slice(&(field | if more { 0x2000 } else { 0 }).to_be_bytes());
        p.extend_from_slice(&[64, 6, 0, 0, 10, 0, 0, source, 10, 0, 0, 9]);
    }
    p.extend_from_slice(data);
    p
}

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes::new(data);
    let mut r = Reassembler::new(LIMITS);
    let mut models: HashMap<(bool, u8, u8), Model> = HashMap::new();
    let mut ops = 0;
    while !input.is_empty() && ops < 500 {
        ops += 1;
        let op = input.u8();
        if op & 1 != 0 {
            let len = usize::from(input.u8());
            let raw = input.take(len).to_vec();
            let _ = r.add(&raw, 0);
            // Raw bytes may have joined a modelled datagram: start both afresh.
            r = Reassembler::new(LIMITS);
            models.clear();
            continue;
        }
        let (v6, id, source) = (op & 2 != 0, (op >> 2) & 3, (op >> 4) & 1);
        let offset = usize::from(input.u16() & 0x1fff) * 8;
        let len = usize::from(input.u8()) * 8 + usize::from(op & 0x20 != 0);
        let more = op & 0x40 != 0;
        let variant = input.u8();
        let bytes: Vec<u8> = (offset..offset + len)
            .map(|k| content(k, variant))
            .collect();
        let before = r.stats;
        let out = r.add(&packet(v6, id, source, offset, more, &bytes), 0);
        assert!(r.held_bytes() <= LIMITS.max_bytes);
        let key = (v6, id, source);
        if r.stats.refused != before.refused {
            assert!(out.is_none());
            models.remove(&key);
            continue;
        }
        let model = models.entry(key).or_default();
        let end = offset + len;
        let differs = (offset..)
            .zip(&bytes)
            .any(|(k, b)| model.bytes.get(&k).is_some_and(|x| x != b))
            || model
                .total
                .is_some_and(|total| if more { end > total } else { end != total });
        assert_eq!(
            r.stats.inconsistent_overlaps - before.inconsistent_overlaps,
            u64::from(differs),
            "inconsistency counted"
        );
        for (k, b) in (offset..).zip(&bytes) {
            model.bytes.entry(k).or_insert(*b);
        }
        if !more && model.total.is_none() {
            model.total = Some(end);
        }
        let complete = model
            .total
            .is_some_and(|total| (0..total).all(|k| model.bytes.contains_key(&k)));
        assert_eq!(out.is_some(), complete, "completion");
        if let Some(datagram) = out {
            let total = model.total.unwrap_or(0);
            let header = if v6 { 40 } else { 20 };
            let expected: Vec<u8> = (0..total).map(|k| model.bytes[&k]).collect();
            assert_eq!(&datagram[header..], &expected[..]);
            models.remove(&key);
        }
        assert!(r.len() * PER_DATAGRAM_OVERHEAD <= r.held_bytes());
    }
});
