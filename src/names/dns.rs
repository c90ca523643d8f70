//! The answers of a DNS message (RFC 1035 4.1) that tie a name to an address: A and AAAA
//! records (the owner name is the address's name) and PTR records (the owner name spells the
//! address under `in-addr.arpa` / `ip6.arpa`, RFC 1035 3.5 and RFC 3596 2.5; the target is
//! its name). mDNS (RFC 6762) and LLMNR (RFC 4795) use the same message format.
//!
//! Written by hand: the few record types needed, with bounded work (at most
//! [`MAX_RECORDS`] records, [`MAX_JUMPS`] compression pointers per name), on borrowed bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most resource records read from one message.
const MAX_RECORDS: usize = 64;

/// Most compression pointers followed in one name (a loop is refused, not followed).
const MAX_JUMPS: usize = 16;

/// Longest name text kept (RFC 1035 2.3.4: 255 octets on the wire).
const NAME_CAP: usize = 255;

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;

/// A name learned for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub address: IpAddr,
    pub name: String,
}

/// Why a message gave nothing. Counted by the caller, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// Shorter than its header or a record it announces.
    Truncated,
    /// A name with a bad label type, a pointer loop or more than 255 octets.
    BadName,
}

/// The bindings in the answer, authority and additional sections of a response (the QR
/// bit set). Queries give none: mDNS announcements are responses too (RFC 6762 8.3).
pub fn bindings(message: &[u8]) -> Result<Vec<Binding>, DnsError> {
    let header = message.get(..12).ok_or(DnsError::Truncated)?;
    if header[2] & 0x80 == 0 {
        return Ok(Vec::new());
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([header[at], header[at + 1]]));
    let questions = count(4);
    let records = (count(6) + count(8) + count(10)).min(MAX_RECORDS);
    let mut at = 12;
    for _ in 0..questions.min(MAX_RECORDS) {
        at = skip_name(message, at)?;
        at += 4;
        if at > message.len() {
            return Err(DnsError::Truncated);
        }
    }
    let mut out = Vec::new();
    for _ in 0..records {
        let (owner, after) = read_name(message, at)?;
        let fixed = message.get(after..after + 10).ok_or(DnsError::Truncated)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata_at = after + 10;
        let rdata = message
            .get(rdata_at..rdata_at + rdlen)
            .ok_or(DnsError::Truncated)?;
        match (rtype, rdata.len()) {
            (TYPE_A, 4) => out.push(Binding {
                address: IpAddr::V4(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
                name: owner,
            }),
            (TYPE_AAAA, 16) => {
                let octets: [u8; 16] = rdata.try_into().expect("16 bytes");
                out.push(Binding {
                    address: IpAddr::V6(Ipv6Addr::from(octets)),
                    name: owner,
                });
            }
            (TYPE_PTR, _) => {
                if let Some(address) = reverse_address(&owner) {
                    let (target, _) = read_name(message, rdata_at)?;
                    out.push(Binding {
                        address,
                        name: target,
                    });
                }
            }
            _ => {}
        }
        at = rdata_at + rdlen;
    }
    Ok(out)
}

/// The position after the name at `at`.
pub(crate) fn skip_name(message: &[u8], mut at: usize) -> Result<usize, DnsError> {
    loop {
        let len = *message.get(at).ok_or(DnsError::Truncated)?;
        match len {
            0 => return Ok(at + 1),
            l if l & 0xc0 == 0xc0 => return Ok(at + 2),
            l if l & 0xc0 == 0 => at += 1 + usize::from(l),
            _ => return Err(DnsError::BadName),
        }
    }
}

/// The name at `at` as dotted text (no trailing dot; bytes that are not printable ASCII
/// written `\DDD`, as RFC 4343 2.1 shows them), and the position after it in place.
pub(crate) fn read_name(message: &[u8], start: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut at = start;
    let mut end = None;
    let mut jumps = 0;
    let mut wire_len = 0usize;
    loop {
        let len = *message.get(at).ok_or(DnsError::Truncated)?;
        match len {
            0 => {
                return Ok((name, end.unwrap_or(at + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let low = *message.get(at + 1).ok_or(DnsError::Truncated)?;
                end.get_or_insert(at + 2);
                jumps += 1;
                if jumps > MAX_JUMPS {
                    return Err(DnsError::BadName);
                }
                at = (usize::from(l & 0x3f) << 8) | usize::from(low);
            }
            l if l & 0xc0 == 0 => {
                let label = message
                    .get(at + 1..at + 1 + usize::from(l))
                    .ok_or(DnsError::Truncated)?;
                wire_len += 1 + label.len();
                if wire_len > NAME_CAP {
                    return Err(DnsError::BadName);
                }
                if !name.is_empty() {
                    name.push('.');
                }
                for &b in label {
                    match b {
                        b'.' | b'\\' => {
                            name.push('\\');
                            name.push(char::from(b));
                        }
                        0x21..=0x7e => name.push(char::from(b)),
                        _ => name.push_str(&format!("\\{b:03}")),
                    }
                }
                at += 1 + label.len();
            }
            _ => return Err(DnsError::BadName),
        }
    }
}

/// The address a reverse-lookup name spells: `4.3.2.1.in-addr.arpa` is 1.2.3.4, and 32
/// nibble labels under `ip6.arpa` an IPv6 address. `None` for any other name.
pub fn reverse_address(name: &str) -> Option<IpAddr> {
    let lower = name.to_ascii_lowercase();
    if let Some(rest) = lower.strip_suffix(".in-addr.arpa") {
        let mut octets = [0u8; 4];
        let labels: Vec<&str> = rest.split('.').collect();
        if labels.len() != 4 {
            return None;
        }
        for (i, label) in labels.iter().rev().enumerate() {
            if label.is_empty() || label.len() > 3 || !label.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            octets[i] = label.parse().ok()?;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(octets)));
    }
    if let Some(rest) = lower.strip_suffix(".ip6.arpa") {
        let labels: Vec<&str> = rest.split('.').collect();
        if labels.len() != 32 {
            return None;
        }
        let mut value = 0u128;
        for label in labels.iter().rev() {
            let nibble = match label.as_bytes() {
                [b] => char::from(*b).to_digit(16)?,
                _ => return None,
            };
            value = (value << 4) | u128::from(nibble);
        }
        return Some(IpAddr::V6(Ipv6Addr::from(value)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response built by hand from RFC 1035 4.1: one question, then the given answers.
    fn response(question: &[u8], answers: &[&[u8]]) -> Vec<u8> {
        let mut m = vec![
            0x12,
            0x34,
            0x81,
            0x80,
            0,
            1,
            0,
            answers.len() as u8,
            0,
            0,
            0,
            0,
        ];
        m.extend_from_slice(question);
        m.extend_from_slice(&[0, 1, 0, 1]);
        for a in answers {
            m.extend_from_slice(a);
        }
        m
    }

    #[test]
    fn a_and_ptr_answers_with_compression() {
        // Question "mx.example." at offset 12; the answer's owner is a pointer to it.
        let q = b"\x02mx\x07example\x00";
        let a: &[u8] = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x07";
        let m = response(q, &[a]);
        assert_eq!(
            bindings(&m).unwrap(),
            vec![Binding {
                address: "192.0.2.7".parse().unwrap(),
                name: "mx.example".into()
            }]
        );
        let q = b"\x017\x012\x010\x03192\x07in-addr\x04arpa\x00";
        let ptr: &[u8] = b"\xc0\x0c\x00\x0c\x00\x01\x00\x00\x0e\x10\x00\x07\x04host\xc0\x0c";
        let m = response(q, &[ptr]);
        let got = bindings(&m).unwrap();
        assert_eq!(got[0].address, "192.0.2.7".parse::<IpAddr>().unwrap());
        assert_eq!(got[0].name, "host.7.2.0.192.in-addr.arpa");
    }

    #[test]
    fn queries_loops_and_truncation_give_nothing() {
        let q = b"\x02mx\x07example\x00";
        let mut query = response(q, &[]);
        query[2] = 0x01;
        assert_eq!(bindings(&query), Ok(vec![]));
        let looped: &[u8] = b"\xc0\x1c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\x01\x02\x03\x04";
        let mut m = response(q, &[looped]);
        m[28] = 0xc0;
        m[29] = 28;
        assert!(bindings(&m).is_err());
        let m = response(q, &[&b"\xc0\x0c\x00\x01\x00\x01\x00\x00"[..]]);
        assert_eq!(bindings(&m), Err(DnsError::Truncated));
        assert_eq!(bindings(&[0; 5]), Err(DnsError::Truncated));
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_address("1.2.0.192.IN-ADDR.ARPA"),
            Some("192.0.2.1".parse().unwrap())
        );
        let v6 = "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa";
        assert_eq!(
            reverse_address(v6),
            Some("4321:0:1:2:3:4:567:89ab".parse().unwrap())
        );
        assert_eq!(reverse_address("example.org"), None);
        assert_eq!(reverse_address("1.2.3.in-addr.arpa"), None);
        assert_eq!(reverse_address("1.2.3.300.in-addr.arpa"), None);
    }
}
