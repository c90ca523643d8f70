//! NetBIOS name service (RFC 1002 4.2): a Windows host registers its name with its address
//! (broadcast or to a WINS server), and positive query answers name an address. The message
//! is DNS-shaped; the name is the first label, 32 letters `A`..`P` spelling 16 bytes
//! (RFC 1001 14.1): 15 of name padded with spaces and one of service type.

use std::net::{IpAddr, Ipv4Addr};

use super::dns::{read_name, skip_name};
use super::Learned;
use crate::census::names::NameSource;

/// RR type NB (RFC 1002 4.2.1.3).
const TYPE_NB: u16 = 0x0020;

/// Most records read from one message.
const MAX_RECORDS: usize = 16;

/// Names from a registration, refresh or positive answer; false when the message did not
/// parse. `_src` is the sender (the address is the one inside the record).
pub fn names(message: &[u8], _src: IpAddr, out: &mut Vec<Learned>) -> bool {
    let Some(header) = message.get(..12) else {
        return false;
    };
    let response = header[2] & 0x80 != 0;
    let opcode = (header[2] >> 3) & 0x0f;
    let rcode = header[3] & 0x0f;
    // Registration (5), refresh (8, 9) and multi-homed registration (15) requests; any
    // positive response to a query (0) or registration.
    let wanted = match (response, opcode) {
        (false, 5 | 8 | 9 | 15) => true,
        (true, 0 | 5 | 8 | 9 | 15) => rcode == 0,
        _ => false,
    };
    if !wanted {
        return true;
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([header[at], header[at + 1]]));
    let mut at = 12;
    for _ in 0..count(4).min(MAX_RECORDS) {
        match skip_name(message, at) {
            Ok(after) if after + 4 <= message.len() => at = after + 4,
            _ => return false,
        }
    }
    let records = (count(6) + count(8) + count(10)).min(MAX_RECORDS);
    for _ in 0..records {
        let Ok((owner, after)) = read_name(message, at) else {
            return false;
        };
        let Some(fixed) = message.get(after..after + 10) else {
            return false;
        };
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let Some(rdata) = message.get(after + 10..after + 10 + rdlen) else {
            return false;
        };
        if rtype == TYPE_NB && rdlen % 6 == 0 {
            if let Some(name) = decode(owner.split('.').next().unwrap_or_default()) {
                // NB_FLAGS' G bit (RFC 1002 4.2.1.3): a group name (a workgroup or domain)
                // names no one host.
                for entry in rdata.chunks_exact(6).filter(|e| e[0] & 0x80 == 0) {
                    let address = Ipv4Addr::new(entry[2], entry[3], entry[4], entry[5]);
                    if !address.is_unspecified() {
                        out.push(Learned {
                            address: IpAddr::V4(address),
                            name: name.clone(),
                            source: NameSource::Netbios,
                        });
                    }
                }
            }
        }
        at = after + 10 + rdlen;
    }
    true
}

/// The 15-byte name a first-level-encoded label spells, trailing spaces cut; `None` for a
/// label that is not 32 letters `A`..`P`, or a name that is empty or not printable.
pub fn decode(label: &str) -> Option<String> {
    let bytes = label.as_bytes();
    if bytes.len() != 32 || !bytes.iter().all(|b| (b'A'..=b'P').contains(b)) {
        return None;
    }
    let decoded: Vec<u8> = bytes
        .chunks_exact(2)
        .map(|p| ((p[0] - b'A') << 4) | (p[1] - b'A'))
        .collect();
    let name = std::str::from_utf8(&decoded[..15])
        .ok()?
        .trim_end_matches(' ');
    (!name.is_empty() && name.bytes().all(|b| (0x21..0x7f).contains(&b) || b == b' '))
        .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1001 14.1's example: "FRED" padded with spaces is EGFCEFEECACACACACACACACACACACACA.
    #[test]
    fn first_level_encoding() {
        assert_eq!(
            decode("EGFCEFEECACACACACACACACACACACACA").as_deref(),
            Some("FRED")
        );
        // "TEST", 11 spaces, service type 0x00 (workstation).
        assert_eq!(
            decode("FEEFFDFECACACACACACACACACACACAAA").as_deref(),
            Some("TEST")
        );
        assert_eq!(decode("FEEFFDFECACACACACACACACACACACAaa"), None);
        assert_eq!(decode("CACACACACACACACACACACACACACACAAA"), None);
        assert_eq!(decode("short"), None);
    }
}
