//! The HAProxy PROXY protocol header: what a load balancer or relay sends before the client's
//! first byte to name the connection it relays (haproxy's `doc/proxy-protocol.txt`, versions 1
//! and 2).
//!
//! Behind such a relay every connection comes from the relay's address, so the census would
//! count one "client" for all of them; the header names the original client. It is also the
//! reason a TLS backend's first bytes are not a ClientHello: the hello follows the header.
//!
//! [`parse`] looks at the first bytes of a client→server stream and says, without copying:
//! not a header, a prefix of one (wait for more), a whole header (its length and what it
//! says), or a header that breaks the format. It never reads past the header: version 2's
//! TLVs are skipped by their length, never interpreted (see [`tlvs`] for a caller that wants
//! them).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Section 2.1: the longest version 1 line, CRLF included
/// ("PROXY UNKNOWN" with two full IPv6 addresses and ports).
pub const V1_MAX_LEN: usize = 107;

/// Section 2.2: the 12 bytes that open a version 2 header. The NUL and "QUIT" make it
/// something no text protocol starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Section 2.2: signature, version/command, family/protocol and the 16-bit length.
pub const V2_FIXED_LEN: usize = 16;

/// The longest version 2 header: the 16-bit length counts everything after the fixed part.
/// Real ones are far shorter (the spec keeps them under one MSS); a caller may cap lower.
pub const V2_MAX_LEN: usize = V2_FIXED_LEN + u16::MAX as usize;

/// Version 1 starts with "PROXY" and exactly one space (section 2.1).
const V1_MAGIC: &[u8] = b"PROXY ";

/// Version 2 address block sizes (section 2.2): two addresses and, for INET/INET6, two ports.
const V2_INET_LEN: usize = 2 * 4 + 2 * 2;
const V2_INET6_LEN: usize = 2 * 16 + 2 * 2;
const V2_UNIX_LEN: usize = 2 * 108;

/// What the first bytes of a stream are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// The bytes cannot start a PROXY header (neither "PROXY " nor the v2 signature).
    NotProxy,
    /// The bytes are a strict prefix of a possible header: wait for the next piece.
    NeedMore,
    /// A whole header of `len` bytes; the relayed stream starts at `data[len..]`.
    Header { len: usize, proxied: Proxied },
    /// The signature matched, but what follows breaks the format.
    Malformed(ProxyError),
}

/// What a header says about the relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxied {
    /// 1 (text) or 2 (binary).
    pub version: u8,
    pub command: Command,
    pub family: Family,
    pub transport: Transport,
    /// The original client, when the header names one: a v1 TCP4/TCP6 line, or a v2 PROXY
    /// command for TCP or UDP over IPv4/IPv6. `None` for v1 UNKNOWN, v2 LOCAL, AF_UNSPEC,
    /// AF_UNIX (its paths are skipped) and the UNSPEC transport (section 2.2: "the receiver
    /// should ignore address information").
    pub source: Option<(IpAddr, u16)>,
    /// The address the original client connected to (the relay's frontend), when named.
    pub destination: Option<(IpAddr, u16)>,
}

/// Section 2.2, low nibble of byte 13. Version 1 has only PROXY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// The relay opened the connection for itself (a health check): the real endpoints are
    /// the connection's own, and any address block is ignored.
    Local,
    /// The connection is relayed for the client the header names.
    Proxy,
}

/// Address family (section 2.2, high nibble of byte 14; v1's TCP4 / TCP6 / UNKNOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Unspec,
    Inet,
    Inet6,
    Unix,
}

/// Transport protocol (section 2.2, low nibble of byte 14; v1 is always TCP or UNKNOWN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Unspec,
    /// TCP, or UNIX stream sockets.
    Stream,
    /// UDP, or UNIX datagram sockets.
    Dgram,
}

/// How a header that started like one breaks the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("PROXY v1 line without CRLF in its first {V1_MAX_LEN} bytes")]
    V1TooLong,
    #[error("PROXY v1 line holds a byte that is not printable US-ASCII, or a lone CR or LF")]
    V1BadByte,
    #[error("PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN")]
    V1BadProtocol,
    #[error("PROXY v1 line does not have exactly four fields after the protocol")]
    V1BadFields,
    #[error("PROXY v1 address is not a canonical address of the announced family")]
    V1BadAddress,
    #[error("PROXY v1 port is not a decimal number in 0..=65535 without leading zeroes")]
    V1BadPort,
    #[error("PROXY v2 version nibble is {0}, not 2")]
    V2BadVersion(u8),
    #[error("PROXY v2 command {0} is neither LOCAL nor PROXY")]
    V2BadCommand(u8),
    #[error("PROXY v2 family/protocol byte {0:#04x} is not one the spec defines")]
    V2BadFamily(u8),
    #[error("PROXY v2 address block of {len} bytes is shorter than its family needs")]
    V2ShortAddresses { len: usize },
}

/// Parse the first bytes of a client→server stream.
///
/// `data` may hold anything after the header too (usually the ClientHello, in the same
/// segment); only the header is read. The answer for a prefix of a header is always
/// [`Parse::NeedMore`] or [`Parse::Malformed`], never [`Parse::NotProxy`], so a header split
/// across segments is found once the rest arrives.
pub fn parse(data: &[u8]) -> Parse {
    if let Some(signature) = data.get(..V2_SIGNATURE.len()) {
        if signature == V2_SIGNATURE {
            return parse_v2(data);
        }
    } else if V2_SIGNATURE.starts_with(data) && !data.is_empty() {
        return Parse::NeedMore;
    }
    let magic = data.len().min(V1_MAGIC.len());
    if data[..magic] != V1_MAGIC[..magic] {
        return Parse::NotProxy;
    }
    if data.len() <= V1_MAGIC.len() {
        // Empty, or a prefix of "PROXY ".
        return Parse::NeedMore;
    }
    parse_v1(data)
}

/// Section 2.1: one line of US-ASCII, "PROXY" SP protocol [SP src SP dst SP sport SP dport]
/// CRLF, at most [`V1_MAX_LEN`] bytes. The caller has checked "PROXY ".
fn parse_v1(data: &[u8]) -> Parse {
    let window = &data[..data.len().min(V1_MAX_LEN)];
    // The spec forbids a lone CR or LF as the line end; any control byte before the CRLF
    // (or any byte beyond US-ASCII) makes the line invalid.
    let mut end = None;
    for (i, &b) in window.iter().enumerate() {
        match b {
            b'\r' => match window.get(i + 1) {
                Some(b'\n') => {
                    end = Some(i);
                    break;
                }
                Some(_) => return Parse::Malformed(ProxyError::V1BadByte),
                None => {}
            },
            0x20..=0x7e => {}
            _ => return Parse::Malformed(ProxyError::V1BadByte),
        }
    }
    // Without a CRLF yet, a final CR is the start of it, not part of a field.
    let line_end = end.unwrap_or_else(|| window.len() - usize::from(window.ends_with(b"\r")));
    let rest = &window[V1_MAGIC.len()..line_end];
    let (protocol, fields) = match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
        None => (rest, None),
    };
    let family = match protocol {
        b"TCP4" => Family::Inet,
        b"TCP6" => Family::Inet6,
        b"UNKNOWN" => Family::Unspec,
        // Still typing the protocol name: only a prefix of a valid one may wait.
        _ if end.is_none()
            && fields.is_none()
            && [&b"TCP4"[..], b"TCP6", b"UNKNOWN"]
                .iter()
                .any(|p| p.starts_with(protocol)) =>
        {
            return Parse::NeedMore
        }
        _ => return Parse::Malformed(ProxyError::V1BadProtocol),
    };
    let Some(end) = end else {
        if window.len() == V1_MAX_LEN {
            return Parse::Malformed(ProxyError::V1TooLong);
        }
        if family != Family::Unspec {
            if let Err(e) = v1_partial(fields.unwrap_or_default(), family) {
                return Parse::Malformed(e);
            }
        }
        return Parse::NeedMore;
    };
    let len = end + 2;
    if family == Family::Unspec {
        // "the receiver must ignore anything presented before the CRLF is found".
        return Parse::Header {
            len,
            proxied: Proxied {
                version: 1,
                command: Command::Proxy,
                family,
                transport: Transport::Unspec,
                source: None,
                destination: None,
            },
        };
    }
    match v1_addresses(fields.unwrap_or_default(), family) {
        Ok((source, destination)) => Parse::Header {
            len,
            proxied: Proxied {
                version: 1,
                command: Command::Proxy,
                family,
                transport: Transport::Stream,
                source: Some(source),
                destination: Some(destination),
            },
        },
        Err(e) => Parse::Malformed(e),
    }
}

/// "src dst sport dport", each separated by exactly one space.
type Endpoint = (IpAddr, u16);

fn v1_addresses(fields: &[u8], family: Family) -> Result<(Endpoint, Endpoint), ProxyError> {
    let mut it = fields.split(|&b| b == b' ');
    let (Some(src), Some(dst), Some(sport), Some(dport), None) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return Err(ProxyError::V1BadFields);
    };
    let src = v1_address(src, family)?;
    let dst = v1_address(dst, family)?;
    let sport = v1_port(sport)?;
    let dport = v1_port(dport)?;
    Ok(((src, sport), (dst, dport)))
}

/// The fields of a line whose CRLF has not arrived: those already followed by a space must
/// be valid, the one being typed must be able to become valid.
fn v1_partial(fields: &[u8], family: Family) -> Result<(), ProxyError> {
    let mut it = fields.split(|&b| b == b' ').enumerate().peekable();
    while let Some((i, field)) = it.next() {
        let complete = it.peek().is_some();
        match i {
            0 | 1 if complete => v1_address(field, family).map(drop)?,
            0 | 1 => {
                let ok = |b: &u8| match family {
                    Family::Inet => b.is_ascii_digit() || *b == b'.',
                    _ => b.is_ascii_hexdigit() || *b == b':' || *b == b'.',
                };
                if field.len() > 45 || !field.iter().all(ok) {
                    return Err(ProxyError::V1BadAddress);
                }
            }
            2 | 3 if complete || field.len() >= 5 => v1_port(field).map(drop)?,
            2 | 3 if field.iter().all(u8::is_ascii_digit) && !field.starts_with(b"0") => {}
            2 | 3 if field == b"0" => {}
            2 | 3 => return Err(ProxyError::V1BadPort),
            _ => return Err(ProxyError::V1BadFields),
        }
    }
    Ok(())
}

/// Canonical dotted quad (no leading zeroes: std's parser refuses them) or RFC 4291 text.
fn v1_address(field: &[u8], family: Family) -> Result<IpAddr, ProxyError> {
    let text = std::str::from_utf8(field).map_err(|_| ProxyError::V1BadAddress)?;
    let ip = match family {
        Family::Inet => text.parse::<Ipv4Addr>().map(IpAddr::V4),
        _ => text.parse::<Ipv6Addr>().map(IpAddr::V6),
    };
    ip.map_err(|_| ProxyError::V1BadAddress)
}

/// Decimal 0..=65535, "heading zeroes are not permitted".
fn v1_port(field: &[u8]) -> Result<u16, ProxyError> {
    let canonical = !field.is_empty()
        && field.len() <= 5
        && field.iter().all(u8::is_ascii_digit)
        && (field[0] != b'0' || field.len() == 1);
    if !canonical {
        return Err(ProxyError::V1BadPort);
    }
    let n = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| ProxyError::V1BadPort)
}

/// Section 2.2. The caller has checked the 12-byte signature.
fn parse_v2(data: &[u8]) -> Parse {
    let sig = V2_SIGNATURE.len();
    // Reject a bad version, command or family as soon as its byte is in, so an unrelated
    // stream that happens to start with the signature is not waited on.
    let Some(&ver_cmd) = data.get(sig) else {
        return Parse::NeedMore;
    };
    if ver_cmd >> 4 != 2 {
        return Parse::Malformed(ProxyError::V2BadVersion(ver_cmd >> 4));
    }
    let command = match ver_cmd & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        other => return Parse::Malformed(ProxyError::V2BadCommand(other)),
    };
    let Some(&fam) = data.get(sig + 1) else {
        return Parse::NeedMore;
    };
    // LOCAL: "discard the protocol block including the family which is ignored".
    let (family, transport) = match command {
        Command::Local => (Family::Unspec, Transport::Unspec),
        Command::Proxy => {
            let family = match fam >> 4 {
                0 => Family::Unspec,
                1 => Family::Inet,
                2 => Family::Inet6,
                3 => Family::Unix,
                _ => return Parse::Malformed(ProxyError::V2BadFamily(fam)),
            };
            let transport = match fam & 0x0f {
                0 => Transport::Unspec,
                1 => Transport::Stream,
                2 => Transport::Dgram,
                _ => return Parse::Malformed(ProxyError::V2BadFamily(fam)),
            };
            (family, transport)
        }
    };
    let Some(len_bytes) = data.get(sig + 2..V2_FIXED_LEN) else {
        return Parse::NeedMore;
    };
    let block_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let needed = match (command, family) {
        (Command::Local, _) | (_, Family::Unspec) => 0,
        (_, Family::Inet) => V2_INET_LEN,
        (_, Family::Inet6) => V2_INET6_LEN,
        (_, Family::Unix) => V2_UNIX_LEN,
    };
    if block_len < needed {
        return Parse::Malformed(ProxyError::V2ShortAddresses { len: block_len });
    }
    let len = V2_FIXED_LEN + block_len;
    let Some(block) = data.get(V2_FIXED_LEN..len) else {
        return Parse::NeedMore;
    };
    let named = command == Command::Proxy && transport != Transport::Unspec;
    let (source, destination) = match family {
        Family::Inet if named => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    block[at],
                    block[at + 1],
                    block[at + 2],
                    block[at + 3],
                ))
            };
            let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
            (Some((ip(0), port(8))), Some((ip(4), port(10))))
        }
        Family::Inet6 if named => {
            let ip = |at: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&block[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            let port = |at: usize| u16::from_be_bytes([block[at], block[at + 1]]);
            (Some((ip(0), port(32))), Some((ip(16), port(34))))
        }
        _ => (None, None),
    };
    Parse::Header {
        len,
        proxied: Proxied {
            version: 2,
            command,
            family,
            transport,
            source,
            destination,
        },
    }
}

/// The TLVs of a whole version 2 header (`header` = `&data[..len]` of a [`Parse::Header`]),
/// as (type, value) pairs (section 2.2: type, 16-bit length, value). Yields nothing for a
/// version 1 header or a LOCAL one without TLVs, and stops at the first TLV that does not fit.
pub fn tlvs(header: &[u8]) -> Tlvs<'_> {
    let start = match parse(header) {
        Parse::Header { len, proxied } if proxied.version == 2 && len == header.len() => {
            let fam = header[V2_SIGNATURE.len() + 1];
            let address_len = match (proxied.command, fam >> 4) {
                (Command::Local, _) => 0,
                (_, 1) => V2_INET_LEN,
                (_, 2) => V2_INET6_LEN,
                (_, 3) => V2_UNIX_LEN,
                _ => 0,
            };
            // A LOCAL header's block is ignored whole; TLVs are only read after a known
            // address block.
            if proxied.command == Command::Local && header.len() > V2_FIXED_LEN {
                header.len()
            } else {
                V2_FIXED_LEN + address_len
            }
        }
        _ => header.len(),
    };
    Tlvs {
        rest: header.get(start..).unwrap_or_default(),
    }
}

/// Iterator returned by [`tlvs`].
#[derive(Debug, Clone)]
pub struct Tlvs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Tlvs<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest: &'a [u8] = std::mem::take(&mut self.rest);
        let [kind, hi, lo, ref after @ ..] = *rest else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let value = after.get(..len)?;
        self.rest = &after[len..];
        Some((kind, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(ip: &str, port: u16) -> Option<(IpAddr, u16)> {
        Some((ip.parse().unwrap(), port))
    }

    fn header(data: &[u8]) -> (usize, Proxied) {
        match parse(data) {
            Parse::Header { len, proxied } => (len, proxied),
            other => panic!("{other:?} for {data:?}"),
        }
    }

    #[test]
    fn v1_tcp4() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        let (len, p) = header(line);
        assert_eq!(&line[len..len + 3], b"GET");
        assert_eq!(p.version, 1);
        assert_eq!(p.source, ep("192.168.0.1", 56324));
        assert_eq!(p.destination, ep("192.168.0.11", 443));
        assert_eq!((p.family, p.transport), (Family::Inet, Transport::Stream));
    }

    #[test]
    fn v1_tcp6_longest_and_unknown() {
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let line = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
        assert_eq!(line.len(), 104);
        let (len, p) = header(line.as_bytes());
        assert_eq!(len, 104);
        assert_eq!(p.source.unwrap().1, 65535);
        let (len, p) = header(b"PROXY UNKNOWN\r\n\x16\x03\x01");
        assert_eq!(len, 15);
        assert_eq!((p.source, p.family), (None, Family::Unspec));
        // The worst case of the spec: 107 bytes, anything after UNKNOWN ignored.
        let line = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
        assert_eq!(line.len(), V1_MAX_LEN);
        assert_eq!(header(line.as_bytes()).0, V1_MAX_LEN);
    }

    #[test]
    fn v1_rejects() {
        let bad: &[(&[u8], ProxyError)] = &[
            (
                b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
                ProxyError::V1BadProtocol,
            ),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", ProxyError::V1BadFields),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
                ProxyError::V1BadFields,
            ),
            (
                b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
                ProxyError::V1BadFields,
            ),
            (
                b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
                ProxyError::V1BadAddress,
            ),
            (b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n", ProxyError::V1BadAddress),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", ProxyError::V1BadAddress),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
                ProxyError::V1BadPort,
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
                ProxyError::V1BadPort,
            ),
            (
                b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
                ProxyError::V1BadPort,
            ),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", ProxyError::V1BadByte),
            (
                b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
                ProxyError::V1BadByte,
            ),
            (b"PROXY TCP4 1.2.3.4 \xff", ProxyError::V1BadByte),
            (
                b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
                ProxyError::V1BadProtocol,
            ),
            (b"PROXY X", ProxyError::V1BadProtocol),
            (b"PROXY TCP4\r\n", ProxyError::V1BadFields),
        ];
        for (data, want) in bad {
            assert_eq!(
                parse(data),
                Parse::Malformed(*want),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
        // Without the CRLF yet, but already impossible.
        let partial: &[(&[u8], ProxyError)] = &[
            (b"PROXY TCP4 999.1.1.1 ", ProxyError::V1BadAddress),
            (b"PROXY TCP4 1.2.3.x", ProxyError::V1BadAddress),
            (b"PROXY TCP6 ::1 1.2.3.4 ", ProxyError::V1BadAddress),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 080", ProxyError::V1BadPort),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536", ProxyError::V1BadPort),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ", ProxyError::V1BadFields),
        ];
        for (data, want) in partial {
            assert_eq!(
                parse(data),
                Parse::Malformed(*want),
                "{:?}",
                String::from_utf8_lossy(data)
            );
        }
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'a'; 100]].concat();
        assert_eq!(parse(&long), Parse::Malformed(ProxyError::V1TooLong));
    }

    #[test]
    fn not_proxy() {
        for data in [
            &b"\x16\x03\x01\x02\x00"[..],
            b"EHLO x\r\n",
            b"PROXX",
            b"PROXY\r\n",
            b"GET / HTTP/1.1\r\n",
            b"\r\n\r\n\0\r\nQUIX",
            b"\r\n\r\nX",
        ] {
            assert_eq!(parse(data), Parse::NotProxy, "{data:?}");
        }
    }

    fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[ver_cmd, fam]);
        h.extend_from_slice(&(block.len() as u16).to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    #[test]
    fn v2_inet_with_tlvs() {
        let mut block = vec![198, 51, 100, 7, 192, 0, 2, 1, 0x9c, 0x40, 0x01, 0xbb];
        block.extend_from_slice(&[0x02, 0x00, 0x04, b'a', b'.', b'b', b'c']); // AUTHORITY
        block.extend_from_slice(&[0x04, 0x00, 0x00]); // NOOP, empty
        let mut h = v2(0x21, 0x11, &block);
        let header_len = h.len();
        h.extend_from_slice(b"\x16\x03\x01");
        let (len, p) = header(&h);
        assert_eq!(len, header_len);
        assert_eq!(p.source, ep("198.51.100.7", 40000));
        assert_eq!(p.destination, ep("192.0.2.1", 443));
        assert_eq!(
            (p.command, p.transport),
            (Command::Proxy, Transport::Stream)
        );
        let t: Vec<_> = tlvs(&h[..len]).collect();
        assert_eq!(t, vec![(2, &b"a.bc"[..]), (4, &b""[..])]);
    }

    #[test]
    fn v2_udp6_unix_unspec_local() {
        let mut block = [0u8; 36];
        block[15] = 1;
        block[31] = 2;
        block[32..].copy_from_slice(&[0, 53, 0, 54]);
        let (_, p) = header(&v2(0x21, 0x22, &block));
        assert_eq!(p.source, ep("::1", 53));
        assert_eq!(p.destination, ep("::2", 54));
        assert_eq!(p.transport, Transport::Dgram);

        let (len, p) = header(&v2(0x21, 0x31, &[b'/'; 216]));
        assert_eq!(len, 16 + 216);
        assert_eq!((p.family, p.source), (Family::Unix, None));

        // UNSPEC transport: the addresses are there but must be ignored.
        let (_, p) = header(&v2(0x21, 0x10, &[1; 12]));
        assert_eq!(p.source, None);

        // LOCAL: no address, or an address block that is skipped; family ignored.
        let (len, p) = header(&v2(0x20, 0x00, &[]));
        assert_eq!(len, 16);
        assert_eq!((p.command, p.source), (Command::Local, None));
        let (len, p) = header(&v2(0x20, 0xff, &[9; 12]));
        assert_eq!((len, p.source), (28, None));
    }

    #[test]
    fn v2_rejects() {
        assert_eq!(
            parse(&v2(0x11, 0x11, &[0; 12])),
            Parse::Malformed(ProxyError::V2BadVersion(1))
        );
        assert_eq!(
            parse(&v2(0x22, 0x11, &[0; 12])),
            Parse::Malformed(ProxyError::V2BadCommand(2))
        );
        assert_eq!(
            parse(&v2(0x21, 0x41, &[0; 12])),
            Parse::Malformed(ProxyError::V2BadFamily(0x41))
        );
        assert_eq!(
            parse(&v2(0x21, 0x13, &[0; 12])),
            Parse::Malformed(ProxyError::V2BadFamily(0x13))
        );
        assert_eq!(
            parse(&v2(0x21, 0x21, &[0; 12])),
            Parse::Malformed(ProxyError::V2ShortAddresses { len: 12 })
        );
        // A bad byte is reported as soon as it is in, before the rest arrives.
        let h = v2(0x31, 0x11, &[0; 12]);
        assert_eq!(
            parse(&h[..13]),
            Parse::Malformed(ProxyError::V2BadVersion(3))
        );
    }

    /// Every strict prefix of a valid header waits; none is refused or mistaken.
    #[test]
    fn prefixes_wait() {
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let headers: Vec<Vec<u8>> = vec![
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n".to_vec(),
            format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n").into_bytes(),
            b"PROXY UNKNOWN\r\n".to_vec(),
            v2(0x21, 0x11, &[1; 40]),
            v2(0x20, 0x00, &[]),
            v2(0x21, 0x31, &[0; 300]),
        ];
        for h in &headers {
            for cut in 0..h.len() {
                assert_eq!(parse(&h[..cut]), Parse::NeedMore, "cut {cut} of {h:?}");
            }
            assert!(matches!(parse(h), Parse::Header { len, .. } if len == h.len()));
        }
    }

    #[test]
    fn tlvs_stop_at_bad_framing() {
        let mut block = vec![0; 12];
        block.extend_from_slice(&[0x05, 0x00, 0x02, 1, 2, 0x01, 0x00, 0x09, 1]);
        let h = v2(0x21, 0x11, &block);
        let t: Vec<_> = tlvs(&h).collect();
        assert_eq!(t, vec![(5, &[1u8, 2][..])]);
        assert_eq!(tlvs(b"PROXY UNKNOWN\r\n").count(), 0);
        assert_eq!(tlvs(b"junk").count(), 0);
    }
}
