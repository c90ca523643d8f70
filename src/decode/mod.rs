//! Packet decode: link layer → IP → TCP, borrowing every byte from the captured frame.
//!
//! The link layers are peeled here with etherparse's header slices (Ethernet II, 802.1Q/QinQ,
//! Linux SLL) plus the few framings etherparse has no slice for (SLL2, BSD null/loopback,
//! PPP, PPPoE, MPLS). IPv4/IPv6 with extension headers and the TCP header are sliced by
//! etherparse's lax parser, which keeps what a short snap length left. Common tunnels
//! (IP-in-IP, GRE, VXLAN, Geneve) are followed to the innermost TCP segment, as Wireshark does.
//!
//! UDP datagrams that start like a QUIC Initial of a readable version
//! ([`crate::quic::looks_like_initial_datagram`]) or travel between the ports of a name
//! service ([`crate::names::service_of`]) come out as segments too, marked `udp`; any other
//! UDP is skipped as before.
//!
//! Nothing here allocates: a decoded [`Segment`] is a view over the frame.

use std::net::IpAddr;

use etherparse::{
    Ethernet2HeaderSlice, IpNumber, LaxIpSlice, SingleVlanHeaderSlice, TcpSlice, UdpSlice,
};

use crate::source::linktype;

pub mod fragments;

/// A TCP segment (or a QUIC datagram, `udp`), borrowed from its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The TCP payload bytes that were captured.
    pub payload: &'a [u8],
    /// True when the frame was cut (snap length) before the end of the TCP payload, so
    /// `payload` holds only a prefix of what was sent.
    pub payload_truncated: bool,
    /// A UDP datagram that looks like QUIC or is a name service's: `seq`, `ack` and `flags`
    /// are zero, `payload` is the UDP payload.
    pub udp: bool,
}

/// The TCP flags the reassembler cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

/// Why a frame yielded no TCP segment. Counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// A link type this tool does not decode.
    UnsupportedLink,
    /// ARP, LLDP, STP ...: nothing at the IP layer.
    NotIp,
    /// UDP, ICMP, ...
    NotTcp,
    /// An IP fragment: its datagram goes to the reassembler ([`fragments`]); the frame is
    /// counted here unless it completed a datagram that decoded to a TCP segment.
    IpFragment,
    /// The frame ended inside a link, IP or TCP header, or a header was malformed.
    Malformed,
}

impl Skip {
    pub const ALL: [Skip; 5] = [
        Skip::UnsupportedLink,
        Skip::NotIp,
        Skip::NotTcp,
        Skip::IpFragment,
        Skip::Malformed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Skip::UnsupportedLink => "unsupported_link_type",
            Skip::NotIp => "not_ip",
            Skip::NotTcp => "not_tcp",
            Skip::IpFragment => "ip_fragment",
            Skip::Malformed => "malformed",
        }
    }
}

/// EtherType values dispatched below (IEEE registry).
mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// GRE "transparent Ethernet bridging" (RFC 1701).
    pub const TEB: u16 = 0x6558;
    /// Cisco MetaData (Security Group Tag).
    pub const CISCO_METADATA: u16 = 0x8909;
}

/// How deep tunnels and VLAN stacks may nest before a frame is called malformed.
const MAX_NESTING: u8 = 8;

/// UDP ports of the UDP tunnels followed (IANA).
const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;
const GTP_U_PORT: u16 = 2152;
/// CAPWAP data channel (RFC 5415): Wi-Fi controllers carry their access points' frames in
/// it, in either direction (the controller's port is the well-known one).
const CAPWAP_DATA_PORT: u16 = 5247;

/// Decode one frame of the given LINKTYPE down to its innermost TCP segment.
///
/// Whole IPv4/IPv6 TCP packets in Ethernet (untagged or one 802.1Q tag), Linux SLL/SLL2 or
/// raw IP framing — nearly every frame on a mail server's SPAN port — are read at fixed
/// offsets; anything else (tunnels, fragments, extension headers, snap-length cuts, damage)
/// goes through [`decode_general`]. Both give the same answer for every frame (the corpus
/// test and the `decode` fuzz target compare them), the fast one in a few nanoseconds.
#[inline]
pub fn decode(link_type: u32, frame: &[u8]) -> Result<Segment<'_>, Skip> {
    match fast(link_type, frame) {
        Some(segment) => Ok(segment),
        None => decode_general(link_type, frame),
    }
}

/// Decode one frame through the full layer-by-layer decoder (every link type, tunnel and
/// truncation). [`decode`] is this plus a fixed-offset fast path for the common frames.
pub fn decode_general(link_type: u32, frame: &[u8]) -> Result<Segment<'_>, Skip> {
    match layers(link_type, frame)? {
        Layer::Tcp(segment) => Ok(segment),
        Layer::Fragment(_) => Err(Skip::IpFragment),
    }
}

/// The IP packet of a frame that [`decode`] answered [`Skip::IpFragment`] for: the
/// fragment, from its IP header to the end of what was captured, for the reassembler
/// ([`fragments`]). Asked only of fragments, so whole packets pay nothing for it.
pub fn fragment_packet(link_type: u32, frame: &[u8]) -> Option<&[u8]> {
    match layers(link_type, frame) {
        Ok(Layer::Fragment(packet)) => Some(packet),
        _ => None,
    }
}

/// What the layer-by-layer walk found at the bottom of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer<'a> {
    Tcp(Segment<'a>),
    /// An IP fragment (its whole IP packet): the rest is known only after reassembly.
    Fragment(&'a [u8]),
}

fn layers(link_type: u32, frame: &[u8]) -> Result<Layer<'_>, Skip> {
    match link_type {
        linktype::ETHERNET => ethernet(frame, 0),
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => ip(frame, 0),
        linktype::NULL | linktype::LOOP => null_loopback(frame),
        linktype::LINUX_SLL => {
            // SLL: packet type (2), ARPHRD type (2), address length (2), address (8), protocol
            // (2). etherparse's slice refuses ARPHRD types it does not know (loopback's 772,
            // for one), and only the protocol field matters here.
            let header = frame.get(..16).ok_or(Skip::Malformed)?;
            by_ethertype(
                u16::from_be_bytes([header[14], header[15]]),
                &frame[16..],
                0,
            )
        }
        linktype::LINUX_SLL2 => {
            // SLL2: protocol type (2), reserved (2), ifindex (4), hatype (2), pkttype (1),
            // addr len (1), address (8): 20 bytes.
            let header = frame.get(..20).ok_or(Skip::Malformed)?;
            by_ethertype(u16::from_be_bytes([header[0], header[1]]), &frame[20..], 0)
        }
        linktype::PPP => ppp(frame, 0),
        linktype::IEEE802_11 => {
            // Data frames with an LLC/SNAP header (what a Windows Wi-Fi capture logs,
            // decrypted); management, control and encrypted frames have no IP to find.
            let at = ieee802_11_snap_at(frame).ok_or(Skip::NotIp)?;
            let header = frame.get(at..at + 2).ok_or(Skip::Malformed)?;
            by_ethertype(
                u16::from_be_bytes([header[0], header[1]]),
                &frame[at + 2..],
                0,
            )
        }
        _ => Err(Skip::UnsupportedLink),
    }
}

/// For an IEEE 802.11 data frame whose body starts with an LLC/SNAP header (AA AA 03 00 00
/// 00), the offset of the SNAP EtherType; `None` for any other frame. The MAC header is 24
/// bytes, 30 with four addresses (ToDS and FromDS), plus 2 of QoS control for QoS data
/// subtypes and 4 of HT control when a QoS frame has the Order bit (IEEE 802.11-2020
/// 9.2.3). The Protected bit is not checked: Windows logs Wi-Fi frames decrypted with it
/// still set, and an encrypted body would not start with the SNAP bytes.
pub fn ieee802_11_snap_at(frame: &[u8]) -> Option<usize> {
    snap_at(*frame.first()?, *frame.get(1)?, frame.get(2..)?)
}

/// [`ieee802_11_snap_at`] with the frame control bytes given apart from the rest of the
/// frame (`after_fc`, which starts at the duration field).
fn snap_at(fc0: u8, fc1: u8, after_fc: &[u8]) -> Option<usize> {
    // Protocol version 0, type 2 (data).
    if fc0 & 0x03 != 0 || (fc0 >> 2) & 0x03 != 2 {
        return None;
    }
    let mut len = if fc1 & 0x03 == 0x03 { 30 } else { 24 };
    if fc0 & 0x80 != 0 {
        len += 2;
        if fc1 & 0x80 != 0 {
            len += 4;
        }
    }
    (after_fc.get(len - 2..len + 4)? == [0xAA, 0xAA, 0x03, 0, 0, 0]).then_some(len + 6)
}

/// A hash of a connection's addresses and ports that is the same for both directions, for
/// sharding frames to worker threads. XOR makes it symmetric without ordering the
/// endpoints; the multiply-and-fold spreads the bits. Fixed, so a connection goes to the same
/// worker in every run. Not for hash tables an attacker can fill (those are seeded at random).
#[inline]
pub fn shard_hash(segment: &Segment<'_>) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let addresses = match (segment.src, segment.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u64::from(u32::from(a) ^ u32::from(b)),
        (a, b) => {
            let x = to_u128(a) ^ to_u128(b);
            (x as u64) ^ ((x >> 64) as u64).rotate_left(17)
        }
    };
    let ports = u64::from(segment.sport ^ segment.dport);
    let h = (addresses ^ (ports << 48) ^ ports).wrapping_mul(K);
    h ^ (h >> 29)
}

/// Which of `workers` threads owns a segment's connection: by [`shard_hash`], so both
/// directions meet. Multiply-shift maps the hash onto the workers without a division.
#[inline]
pub fn shard_of(segment: &Segment<'_>, workers: u64) -> usize {
    if workers <= 1 {
        return 0;
    }
    (((shard_hash(segment) >> 32) * workers) >> 32) as usize
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The fixed-offset fast path of [`decode`]: only frames whose every length field agrees with
/// what was captured, so there is nothing for the general decoder to judge differently.
/// Always inlined: built in place in its caller's result, a segment is not written out and
/// copied again (about 45 instructions a frame).
#[inline(always)]
fn fast(link_type: u32, frame: &[u8]) -> Option<Segment<'_>> {
    let ip_at = match link_type {
        linktype::ETHERNET => match frame.get(12..14)? {
            [0x08, 0x00] | [0x86, 0xdd] => 14,
            [0x81, 0x00] => match frame.get(16..18)? {
                [0x08, 0x00] | [0x86, 0xdd] => 18,
                _ => return None,
            },
            _ => return None,
        },
        linktype::LINUX_SLL => match frame.get(14..16)? {
            [0x08, 0x00] | [0x86, 0xdd] => 16,
            _ => return None,
        },
        linktype::LINUX_SLL2 => match frame.get(0..2)? {
            [0x08, 0x00] | [0x86, 0xdd] => 20,
            _ => return None,
        },
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => 0,
        _ => return None,
    };
    let ip = frame.get(ip_at..)?;
    let (src, dst, tcp) = match ip.first()? >> 4 {
        4 => {
            let header = ip.get(..20)?;
            let header_len = usize::from(header[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
            let fragmented = u16::from_be_bytes([header[6], header[7]]) & 0x3fff != 0;
            if header[9] != 6 || fragmented || header_len < 20 || total < header_len + 20 {
                return None;
            }
            let src: [u8; 4] = header[12..16].try_into().ok()?;
            let dst: [u8; 4] = header[16..20].try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                ip.get(header_len..total)?,
            )
        }
        6 => {
            let header = ip.get(..40)?;
            let payload_len = usize::from(u16::from_be_bytes([header[4], header[5]]));
            // Next header TCP (no extension headers); a zero length is a jumbogram.
            if header[6] != 6 || payload_len < 20 {
                return None;
            }
            let src: [u8; 16] = header[8..24].try_into().ok()?;
            let dst: [u8; 16] = header[24..40].try_into().ok()?;
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                ip.get(40..40 + payload_len)?,
            )
        }
        _ => return None,
    };
    let data_offset = usize::from(tcp[12] >> 4) * 4;
    if data_offset < 20 || data_offset > tcp.len() {
        return None;
    }
    let flags = tcp[13];
    Some(Segment {
        src,
        dst,
        sport: u16::from_be_bytes([tcp[0], tcp[1]]),
        dport: u16::from_be_bytes([tcp[2], tcp[3]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        flags: TcpFlags {
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            ack: flags & 0x10 != 0,
        },
        payload: &tcp[data_offset..],
        payload_truncated: false,
        udp: false,
    })
}

fn ethernet(frame: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|_| Skip::Malformed)?;
    by_ethertype(eth.ether_type().0, &frame[eth.slice().len()..], depth)
}

fn by_ethertype(ether_type: u16, rest: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    if depth > MAX_NESTING {
        return Err(Skip::Malformed);
    }
    match ether_type {
        ethertype::IPV4 | ethertype::IPV6 => ip(rest, depth),
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
            let vlan = SingleVlanHeaderSlice::from_slice(rest).map_err(|_| Skip::Malformed)?;
            by_ethertype(vlan.ether_type().0, &rest[vlan.slice().len()..], depth + 1)
        }
        ethertype::PPPOE_SESSION => {
            // RFC 2516: ver/type, code, session id, length, then the PPP protocol field.
            let body = rest.get(6..).ok_or(Skip::Malformed)?;
            ppp(body, depth + 1)
        }
        ethertype::MPLS | ethertype::MPLS_MULTICAST => mpls(rest, depth + 1),
        ethertype::TEB => ethernet(rest, depth + 1),
        ethertype::CISCO_METADATA => {
            // Version(1), length in 8-byte units counting the EtherType before it, options;
            // the next EtherType ends the header.
            let units = usize::from(*rest.get(1).ok_or(Skip::Malformed)?).max(1);
            let at = units * 8 - 2;
            let next = rest.get(at..at + 2).ok_or(Skip::Malformed)?;
            by_ethertype(
                u16::from_be_bytes([next[0], next[1]]),
                &rest[at + 2..],
                depth + 1,
            )
        }
        _ => Err(Skip::NotIp),
    }
}

/// BSD loopback: a 4-byte address family in the capturing host's byte order (NULL) or in
/// network order (LOOP). AF_INET is 2 everywhere; AF_INET6 is 10, 24, 28 or 30 by OS.
fn null_loopback(frame: &[u8]) -> Result<Layer<'_>, Skip> {
    let header: [u8; 4] = frame
        .get(..4)
        .and_then(|h| h.try_into().ok())
        .ok_or(Skip::Malformed)?;
    let family = u32::from_le_bytes(header).min(u32::from_be_bytes(header));
    match family {
        2 | 10 | 24 | 28 | 30 => ip(&frame[4..], 0),
        _ => Err(Skip::NotIp),
    }
}

/// PPP (RFC 1661), with or without the HDLC address/control bytes.
fn ppp(frame: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    let frame = match frame {
        [0xff, 0x03, rest @ ..] => rest,
        _ => frame,
    };
    let proto = frame.get(..2).ok_or(Skip::Malformed)?;
    match u16::from_be_bytes([proto[0], proto[1]]) {
        0x0021 | 0x0057 => ip(&frame[2..], depth),
        _ => Err(Skip::NotIp),
    }
}

/// MPLS (RFC 3032): pop labels to the bottom of the stack, then guess IPv4/IPv6 by the
/// version nibble, as every passive tool must (the label does not say what it carries).
fn mpls(mut rest: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    for _ in 0..MAX_NESTING {
        let label = rest.get(..4).ok_or(Skip::Malformed)?;
        let bottom = label[2] & 1 == 1;
        rest = &rest[4..];
        if bottom {
            return match rest.first().map(|b| b >> 4) {
                Some(4) | Some(6) => ip(rest, depth),
                _ => Err(Skip::NotIp),
            };
        }
    }
    Err(Skip::Malformed)
}

fn ip(bytes: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    if depth > MAX_NESTING {
        return Err(Skip::Malformed);
    }
    let (slice, _ext_err) = LaxIpSlice::from_slice(bytes).map_err(|_| Skip::Malformed)?;
    let payload = slice.payload();
    if payload.fragmented {
        return Ok(Layer::Fragment(bytes));
    }
    let (src, dst) = (slice.source_addr(), slice.destination_addr());
    match payload.ip_number {
        IpNumber::TCP => tcp(src, dst, payload.payload, payload.incomplete),
        IpNumber::IPV4 | IpNumber::IPV6 => ip(payload.payload, depth + 1),
        IpNumber::GRE => gre(payload.payload, depth + 1),
        IpNumber::UDP => udp(src, dst, payload.payload, payload.incomplete, depth + 1),
        _ => Err(Skip::NotTcp),
    }
}

fn tcp(src: IpAddr, dst: IpAddr, bytes: &[u8], ip_incomplete: bool) -> Result<Layer<'_>, Skip> {
    let tcp = TcpSlice::from_slice(bytes).map_err(|_| Skip::Malformed)?;
    Ok(Layer::Tcp(Segment {
        src,
        dst,
        sport: tcp.source_port(),
        dport: tcp.destination_port(),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        flags: TcpFlags {
            syn: tcp.syn(),
            ack: tcp.ack(),
            fin: tcp.fin(),
            rst: tcp.rst(),
        },
        payload: tcp.payload(),
        payload_truncated: ip_incomplete,
        udp: false,
    }))
}

/// A UDP datagram: a tunnel to follow, a QUIC Initial or name-service message to hand on,
/// or nothing for us.
fn udp(
    src: IpAddr,
    dst: IpAddr,
    bytes: &[u8],
    ip_incomplete: bool,
    depth: u8,
) -> Result<Layer<'_>, Skip> {
    let datagram = UdpSlice::from_slice_lax(bytes).map_err(|_| Skip::Malformed)?;
    let payload = datagram.payload();
    let tunnel = matches!(
        datagram.destination_port(),
        VXLAN_PORT | GENEVE_PORT | GTP_U_PORT
    );
    let (sport, dport) = (datagram.source_port(), datagram.destination_port());
    let names = crate::names::service_of(sport, dport).is_some();
    if !tunnel && (names || crate::quic::looks_like_initial_datagram(payload)) {
        let declared = usize::from(datagram.length()).saturating_sub(8);
        return Ok(Layer::Tcp(Segment {
            src,
            dst,
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: TcpFlags::default(),
            payload,
            payload_truncated: ip_incomplete || payload.len() < declared,
            udp: true,
        }));
    }
    udp_tunnel(bytes, depth)
}

/// GRE (RFC 2784 / 2890): flags say which optional words follow the 4-byte base header.
fn gre(bytes: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    let base = bytes.get(..4).ok_or(Skip::Malformed)?;
    if base[1] & 0x07 != 0 {
        // Version 1 is PPTP's enhanced GRE; not followed.
        return Err(Skip::NotTcp);
    }
    let optional_words = [0x80u8, 0x20, 0x10]
        .iter()
        .filter(|flag| base[0] & **flag != 0)
        .count();
    let rest = bytes.get(4 + 4 * optional_words..).ok_or(Skip::Malformed)?;
    by_ethertype(u16::from_be_bytes([base[2], base[3]]), rest, depth)
}

/// VXLAN (RFC 7348) and Geneve (RFC 8926) carry Ethernet frames over UDP.
fn udp_tunnel(bytes: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    let udp = UdpSlice::from_slice_lax(bytes).map_err(|_| Skip::Malformed)?;
    let body = udp.payload();
    match udp.destination_port() {
        VXLAN_PORT => ethernet(body.get(8..).ok_or(Skip::Malformed)?, depth),
        GENEVE_PORT => {
            let header = body.get(..8).ok_or(Skip::Malformed)?;
            let options = usize::from(header[0] & 0x3f) * 4;
            let inner = body.get(8 + options..).ok_or(Skip::Malformed)?;
            by_ethertype(u16::from_be_bytes([header[2], header[3]]), inner, depth)
        }
        GTP_U_PORT => gtp_u(body, depth),
        _ if CAPWAP_DATA_PORT == udp.source_port()
            || CAPWAP_DATA_PORT == udp.destination_port() =>
        {
            capwap_data(body, depth)
        }
        _ => Err(Skip::NotTcp),
    }
}

/// CAPWAP data (RFC 5415 4.3): a preamble byte (version 0, type 0: no DTLS), then HLEN (the
/// header's length in 4-byte words), RID, WBID, and the T flag: set, the payload is the
/// binding's native frame (WBID 1, IEEE 802.11); clear, an IEEE 802.3 frame. CAPWAP's own
/// fragments (F flag) are not joined.
fn capwap_data(body: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    let header = body.get(..4).ok_or(Skip::Malformed)?;
    if header[0] != 0 {
        // Another version, or DTLS-protected.
        return Err(Skip::NotTcp);
    }
    let header_len = usize::from(header[1] >> 3) * 4;
    let wbid = (header[2] >> 1) & 0x1f;
    let native = header[2] & 0x01 != 0;
    let fragment = header[3] & 0x80 != 0;
    let frame = body.get(header_len..).ok_or(Skip::Malformed)?;
    if header_len < 8 || fragment {
        return Err(Skip::NotTcp);
    }
    match (native, wbid) {
        (false, _) => ethernet(frame, depth),
        (true, 1) => {
            // Cisco controllers send the frame control field byte-swapped (Wireshark's
            // CAPWAP "swap frame control" setting, on by default).
            let swapped = match frame {
                [a, b, rest @ ..] => snap_at(*b, *a, rest),
                _ => None,
            };
            let at = ieee802_11_snap_at(frame).or(swapped).ok_or(Skip::NotIp)?;
            let ether_type = frame.get(at..at + 2).ok_or(Skip::Malformed)?;
            by_ethertype(
                u16::from_be_bytes([ether_type[0], ether_type[1]]),
                &frame[at + 2..],
                depth,
            )
        }
        _ => Err(Skip::NotTcp),
    }
}

/// GTP-U (3GPP TS 29.281 5.1): mobile core traffic. An 8-byte header, 4 more bytes when any of
/// the E, S, PN flags is set, then a chain of extension headers; G-PDUs (type 255) carry IP.
fn gtp_u(body: &[u8], depth: u8) -> Result<Layer<'_>, Skip> {
    let header = body.get(..8).ok_or(Skip::Malformed)?;
    if header[0] >> 5 != 1 || header[1] != 0xff {
        return Err(Skip::NotTcp);
    }
    let flags = header[0] & 0x07;
    let mut at = 8;
    if flags != 0 {
        let next_type = *body.get(at + 3).ok_or(Skip::Malformed)?;
        at += 4;
        let mut next = if flags & 0x04 != 0 { next_type } else { 0 };
        // Each extension header: length in 4-byte units, content, next type in its last byte.
        for _ in 0..MAX_NESTING {
            if next == 0 {
                break;
            }
            let units = usize::from(*body.get(at).ok_or(Skip::Malformed)?);
            if units == 0 {
                return Err(Skip::Malformed);
            }
            at += units * 4;
            next = *body.get(at - 1).ok_or(Skip::Malformed)?;
        }
    }
    ip(body.get(at..).ok_or(Skip::Malformed)?, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4/TCP SYN to port 443 built by hand from RFC 791 / RFC 9293 layouts.
    fn ipv4_tcp(payload: &[u8]) -> Vec<u8> {
        let total = 20 + 20 + payload.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0x40,
            0,
            64,
            6,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        p.extend_from_slice(&[
            0xc0, 0x01, 0x01, 0xbb, 0, 0, 0, 7, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn raw_ipv4_tcp_fields() {
        let frame = ipv4_tcp(b"hello");
        let seg = decode(linktype::RAW, &frame).unwrap();
        assert_eq!(seg.src, IpAddr::from([10, 0, 0, 1]));
        assert_eq!(seg.dst, IpAddr::from([10, 0, 0, 2]));
        assert_eq!((seg.sport, seg.dport, seg.seq), (0xc001, 443, 7));
        assert!(seg.flags.ack && !seg.flags.syn);
        assert_eq!(seg.payload, b"hello");
        assert!(!seg.payload_truncated);
    }

    #[test]
    fn snaplen_cut_payload_is_flagged() {
        let frame = ipv4_tcp(b"hello world");
        let seg = decode(linktype::RAW, &frame[..45]).unwrap();
        assert_eq!(seg.payload, b"hello");
        assert!(seg.payload_truncated);
    }

    #[test]
    fn ethernet_qinq_and_null_loopback() {
        let ip = ipv4_tcp(b"x");
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        assert_eq!(decode(linktype::ETHERNET, &eth).unwrap().payload, b"x");
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert_eq!(decode(linktype::NULL, &null).unwrap().dport, 443);
    }

    #[test]
    fn fast_path_agrees_with_the_general_decoder() {
        let ip = ipv4_tcp(b"x");
        let mut frames = Vec::new();
        for link in [&[0x08, 0x00][..], &[0x81, 0x00, 0, 7, 0x08, 0x00]] {
            let mut eth = vec![0u8; 12];
            eth.extend_from_slice(link);
            eth.extend_from_slice(&ip);
            eth.extend_from_slice(&[0; 6]); // Ethernet padding after the IP packet
            frames.push((linktype::ETHERNET, eth));
        }
        frames.push((linktype::RAW, ip.clone()));
        for (link, frame) in frames {
            let seg = decode(link, &frame).unwrap();
            assert_eq!(seg.payload, b"x");
            assert!(fast(link, &frame).is_some());
            for len in 0..=frame.len() {
                let cut = &frame[..len];
                assert_eq!(decode(link, cut), decode_general(link, cut), "cut at {len}");
            }
            // Every single-byte change too: version, lengths, offsets, protocol, flags.
            for at in 0..frame.len() {
                for value in [0x00, 0x01, 0x06, 0x11, 0x45, 0x60, 0xff] {
                    let mut changed = frame.clone();
                    changed[at] = value;
                    assert_eq!(
                        decode(link, &changed),
                        decode_general(link, &changed),
                        "byte {at} = {value:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn shard_hash_is_symmetric() {
        let ip = ipv4_tcp(b"x");
        let forward = decode(linktype::RAW, &ip).unwrap();
        let backward = Segment {
            src: forward.dst,
            dst: forward.src,
            sport: forward.dport,
            dport: forward.sport,
            ..forward
        };
        assert_eq!(shard_hash(&forward), shard_hash(&backward));
        let other_port = Segment {
            sport: forward.sport + 1,
            ..forward
        };
        assert_ne!(shard_hash(&forward), shard_hash(&other_port));
    }

    #[test]
    fn fragments_and_garbage_are_skipped() {
        let mut frag = ipv4_tcp(b"abc");
        frag[6] = 0x20; // more fragments
        assert_eq!(decode(linktype::RAW, &frag), Err(Skip::IpFragment));
        assert_eq!(decode(linktype::RAW, &[0x45, 0]), Err(Skip::Malformed));
        assert_eq!(decode(999, &frag), Err(Skip::UnsupportedLink));
        for len in 0..frag.len() {
            let _ = decode(linktype::ETHERNET, &frag[..len]);
            let _ = decode(linktype::LINUX_SLL2, &frag[..len]);
        }
    }
}
