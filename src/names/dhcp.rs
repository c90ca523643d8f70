//! DHCP host names (RFC 2131 with the options of RFC 2132 and RFC 4702): a client asks for
//! an address under its name (option 12, Host Name; option 81, Client FQDN), and the
//! server's ACK says which address it got.

use std::net::{IpAddr, Ipv4Addr};

use super::Learned;
use crate::census::names::NameSource;

/// BOOTP's fixed part (RFC 2131 2), then the magic cookie 99.130.83.99.
const OPTIONS_AT: usize = 240;
const COOKIE: [u8; 4] = [99, 130, 83, 99];

const OPT_HOST_NAME: u8 = 12;
const OPT_REQUESTED_ADDRESS: u8 = 50;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_CLIENT_FQDN: u8 = 81;

/// DHCP message types (RFC 2132 9.6).
const REQUEST: u8 = 3;
const ACK: u8 = 5;
const INFORM: u8 = 8;

/// Names from a REQUEST or INFORM (for the client's current or requested address) or an
/// ACK (for the address given); false when the message did not parse.
pub fn names(message: &[u8], out: &mut Vec<Learned>) -> bool {
    if message.len() < OPTIONS_AT || message[236..240] != COOKIE {
        return false;
    }
    let addr = |at: usize| {
        Ipv4Addr::new(
            message[at],
            message[at + 1],
            message[at + 2],
            message[at + 3],
        )
    };
    let (ciaddr, yiaddr) = (addr(12), addr(16));
    let (mut kind, mut requested, mut names) = (None, None, Vec::new());
    let mut at = OPTIONS_AT;
    while let Some(&code) = message.get(at) {
        match code {
            0 => {
                at += 1;
                continue;
            }
            255 => break,
            _ => {}
        }
        let Some(&len) = message.get(at + 1) else {
            return false;
        };
        let Some(data) = message.get(at + 2..at + 2 + usize::from(len)) else {
            return false;
        };
        match code {
            OPT_MESSAGE_TYPE if len == 1 => kind = Some(data[0]),
            OPT_REQUESTED_ADDRESS if len == 4 => {
                requested = Some(Ipv4Addr::new(data[0], data[1], data[2], data[3]))
            }
            OPT_HOST_NAME if len > 0 => names.push(text(data)),
            OPT_CLIENT_FQDN if len > 3 => {
                // Flags, two obsolete RCODE bytes, then the name: DNS wire format when the
                // E flag (0x04) is set, ASCII otherwise (RFC 4702 2.1, 2.3).
                let name = if data[0] & 0x04 != 0 {
                    wire_name(&data[3..])
                } else {
                    text(&data[3..])
                };
                if !name.is_empty() {
                    names.push(name);
                }
            }
            _ => {}
        }
        at += 2 + usize::from(len);
    }
    let address = match kind {
        Some(REQUEST | INFORM) if !ciaddr.is_unspecified() => Some(ciaddr),
        Some(REQUEST) => requested,
        Some(ACK) if !yiaddr.is_unspecified() => Some(yiaddr),
        Some(ACK) => Some(ciaddr).filter(|a| !a.is_unspecified()),
        _ => None,
    };
    if let Some(address) = address {
        names.sort();
        names.dedup();
        out.extend(names.into_iter().map(|name| Learned {
            address: IpAddr::V4(address),
            name,
            source: NameSource::Dhcp,
        }));
    }
    true
}

/// Option text: up to a NUL (some clients end names with one), invalid UTF-8 replaced.
fn text(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// A DNS wire-format name without compression (RFC 4702 2.3) as dotted text.
fn wire_name(mut data: &[u8]) -> String {
    let mut labels = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        if len == 0 || usize::from(len) > rest.len() {
            break;
        }
        labels.push(String::from_utf8_lossy(&rest[..usize::from(len)]).into_owned());
        data = &rest[usize::from(len)..];
    }
    labels.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ciaddr: [u8; 4], yiaddr: [u8; 4], options: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 236];
        m[0] = 1;
        m[12..16].copy_from_slice(&ciaddr);
        m[16..20].copy_from_slice(&yiaddr);
        m.extend_from_slice(&COOKIE);
        m.extend_from_slice(options);
        m.push(255);
        m
    }

    #[test]
    fn request_and_ack_name_their_address() {
        let mut out = Vec::new();
        let req = message(
            [0; 4],
            [0; 4],
            &[53, 1, 3, 50, 4, 192, 0, 2, 9, 12, 4, b'p', b'c', b'-', b'1'],
        );
        assert!(names(&req, &mut out));
        assert_eq!(out[0].address, "192.0.2.9".parse::<IpAddr>().unwrap());
        assert_eq!(out[0].name, "pc-1");
        out.clear();
        let ack = message(
            [0; 4],
            [192, 0, 2, 10],
            &[
                53, 1, 5, 81, 12, 0x05, 0, 0, 2, b'p', b'c', 3, b'l', b'a', b'n', 0,
            ],
        );
        assert!(names(&ack, &mut out));
        assert_eq!(out[0].address, "192.0.2.10".parse::<IpAddr>().unwrap());
        assert_eq!(out[0].name, "pc.lan");
        out.clear();
        let discover = message([0; 4], [0; 4], &[53, 1, 1, 12, 2, b'p', b'c']);
        assert!(names(&discover, &mut out));
        assert!(out.is_empty());
        assert!(!names(&[0; 100], &mut out));
    }
}
