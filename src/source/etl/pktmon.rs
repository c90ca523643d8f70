//! `pktmon start --capture`: the events of Microsoft-Windows-PktMon
//! ({4D4F80D9-C8BD-4D73-BB5B-19C90402C5AC}), and removal of the copies pktmon logs of
//! each packet.
//!
//! Event 160 is a packet, 170 a dropped packet; both carry (as `pktmon etl2txt` names the
//! fields, all little-endian): PktGroupId u64, PktNumber u16, AppearanceCount u16, DirTag
//! u16 (3 = Rx, 4 = Tx), PacketType u16 (1 Ethernet, 2 Wi-Fi, 3 IP), ComponentId u16,
//! EdgeId u16, FilterId u16, DropReason u32, DropLocation u32, OriginalPayloadSize u16,
//! LoggedPayloadSize u16, then the logged bytes (34 bytes of fields before them). Every
//! packet event of the real files checked is exactly that long.
//!
//! pktmon labels some Ethernet frames as Wi-Fi (the components above a Wi-Fi adapter see
//! Ethernet framing), so the link type is decided by the bytes ([`link_type`]).
//!
//! # Copies
//!
//! pktmon logs a packet at every component and edge it crosses (ten or more times for a
//! packet through a Wi-Fi adapter). Up to Windows 11 23H2, the copies share PktGroupId and
//! PktNumber (a group's several numbers are different segments) and AppearanceCount counts
//! them from 1: the key (PktGroupId, PktNumber) is exact. From build 26100 on, each
//! component logs a new PktGroupId and AppearanceCount is 0. There a copy is recognised as
//! the same network-layer bytes (the first [`KEY_BYTES`] from the IP header on, whatever
//! the link framing or the snap length cut) logged at a (component, edge, direction) the
//! packet has not yet been seen at, within [`COPY_WINDOW_NS`] of its previous copy. On three
//! Windows 10 captures (7462 packet events, 6749 copies) this content rule marks exactly the
//! events the group key marks, for any window from 0.2 ms to 100 ms; on a build 26100
//! capture it removes 23827 of 26704 events and gives the same count for windows from 10
//! to 100 ms. Comparing bytes alone (without the component) wrongly merges two identical
//! TCP resets 0.27 ms apart and mDNS packets sent on two interfaces 0.8 ms apart.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

use super::file::guid;
use crate::decode::ieee802_11_snap_at;
use crate::source::{linktype, Direction};

pub(crate) const PROVIDER: [u8; 16] = guid(
    0x4D4F_80D9,
    0xC8BD,
    0x4D73,
    [0xBB, 0x5B, 0x19, 0xC9, 0x04, 0x02, 0xC5, 0xAC],
);

pub(crate) const EVENT_PACKET: u16 = 160;
pub(crate) const EVENT_DROP: u16 = 170;

/// Bytes of fields before the logged packet.
const FIELDS_LEN: usize = 34;

/// LINKTYPE_IEEE802_11.
pub(crate) const LINKTYPE_802_11: u32 = linktype::IEEE802_11;

/// Network-layer bytes compared to recognise a copy: the IPv4 or IPv6 header and the start
/// of the transport header (ports, sequence numbers, checksum).
pub(crate) const KEY_BYTES: usize = 64;
/// Longest gap between two copies of one packet taken as copies (see the module doc).
pub(crate) const COPY_WINDOW_NS: i64 = 50_000_000;
/// Most packets remembered for recognising copies; older ones are forgotten first.
const MAX_REMEMBERED: usize = 1 << 16;

/// One pktmon packet (or drop) event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PktmonPacket<'a> {
    pub group: u64,
    pub number: u16,
    pub appearance: u16,
    pub direction: Option<Direction>,
    pub packet_type: u16,
    pub component: u16,
    pub edge: u16,
    pub original_size: u16,
    pub data: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Reads a packet or drop event's payload; `None` if it does not hold one.
pub(crate) fn parse(payload: &[u8]) -> Option<PktmonPacket<'_>> {
    let fields = payload.get(..FIELDS_LEN)?;
    let logged = usize::from(u16_at(fields, 32));
    let data = payload.get(FIELDS_LEN..FIELDS_LEN + logged)?;
    let direction = match u16_at(fields, 12) {
        3 => Some(Direction::Inbound),
        4 => Some(Direction::Outbound),
        _ => None,
    };
    Some(PktmonPacket {
        group: u64::from_le_bytes(fields[..8].try_into().ok()?),
        number: u16_at(fields, 8),
        appearance: u16_at(fields, 10),
        direction,
        packet_type: u16_at(fields, 14),
        component: u16_at(fields, 16),
        edge: u16_at(fields, 18),
        original_size: u16_at(fields, 30),
        data,
    })
}

/// EtherTypes an Ethernet frame from a Windows host plausibly carries.
fn known_ethertype(t: u16) -> bool {
    matches!(
        t,
        0x0800
            | 0x86DD
            | 0x0806
            | 0x8100
            | 0x88A8
            | 0x8864
            | 0x8863
            | 0x88CC
            | 0x888E
            | 0x8035
            | 0x893A
            | 0x88E1
            | 0x890D
    ) || (46..0x0600).contains(&t) // an 802.3 length field (LLC frames)
}

fn looks_ethernet(d: &[u8]) -> bool {
    d.len() >= 14 && known_ethertype(u16::from_be_bytes([d[12], d[13]]))
}

fn looks_ip(d: &[u8]) -> bool {
    match d.first().map(|b| b >> 4) {
        Some(4) => d.len() >= 20 && d[0] & 0x0F >= 5,
        Some(6) => d.len() >= 40,
        _ => false,
    }
}

/// The link type of a logged packet, decided by its bytes with the declared type
/// (1 Ethernet, 2 Wi-Fi, 3 IP) breaking ties; `None` if the bytes fit none.
pub(crate) fn link_type(declared: u16, d: &[u8]) -> Option<u32> {
    let wifi = || ieee802_11_snap_at(d).is_some();
    match declared {
        2 if wifi() => Some(LINKTYPE_802_11),
        3 if looks_ip(d) => Some(linktype::RAW),
        _ if looks_ethernet(d) => Some(linktype::ETHERNET),
        _ if wifi() => Some(LINKTYPE_802_11),
        _ if looks_ip(d) => Some(linktype::RAW),
        _ => None,
    }
}

/// The network-layer bytes of a frame of the given link type: (EtherType, bytes).
fn network_layer(link: u32, d: &[u8]) -> (u16, &[u8]) {
    let at = match link {
        linktype::ETHERNET => {
            let mut at = 14;
            let mut t = u16::from_be_bytes([d[12], d[13]]);
            while matches!(t, 0x8100 | 0x88A8) && d.len() >= at + 4 {
                t = u16::from_be_bytes([d[at + 2], d[at + 3]]);
                at += 4;
            }
            return (t, d.get(at..).unwrap_or_default());
        }
        LINKTYPE_802_11 => match ieee802_11_snap_at(d) {
            Some(at) if d.len() >= at + 2 => {
                let t = u16::from_be_bytes([d[at], d[at + 1]]);
                return (t, &d[at + 2..]);
            }
            _ => 0,
        },
        _ => 0,
    };
    let t = match d.first().map(|b| b >> 4) {
        Some(6) => 0x86DD,
        _ => 0x0800,
    };
    (t, d.get(at..).unwrap_or_default())
}

/// What [`Copies::is_copy`] remembers of a packet recognised by content.
struct Seen {
    last_ns: i64,
    /// (component, edge, direction) where it was logged, as in the order seen.
    places: Vec<(u16, u16, u8)>,
}

/// Recognises the copies pktmon logs of one packet (see the module doc).
pub(crate) struct Copies {
    hasher: foldhash::fast::FixedState,
    by_group: HashMap<(u64, u16), i64, foldhash::fast::FixedState>,
    by_content: HashMap<u64, Seen, foldhash::fast::FixedState>,
    /// Keys in the order they were first seen, to forget them.
    order: VecDeque<(i64, Key)>,
}

#[derive(Clone, Copy)]
enum Key {
    Group(u64, u16),
    Content(u64),
}

impl Copies {
    pub(crate) fn new() -> Self {
        let state = foldhash::fast::FixedState::with_seed(0x7e7c_0b1e);
        Copies {
            hasher: state.clone(),
            by_group: HashMap::with_hasher(state.clone()),
            by_content: HashMap::with_hasher(state),
            order: VecDeque::new(),
        }
    }

    /// Is this packet (logged at `ts_ns`, of link type `link`) a copy of one already seen?
    /// Remembers it either way.
    pub(crate) fn is_copy(&mut self, p: &PktmonPacket<'_>, link: u32, ts_ns: i64) -> bool {
        self.forget(ts_ns);
        if p.appearance != 0 {
            let key = (p.group, p.number);
            if self.by_group.contains_key(&key) {
                return true;
            }
            self.by_group.insert(key, ts_ns);
            self.order.push_back((ts_ns, Key::Group(p.group, p.number)));
            return false;
        }
        let (ethertype, net) = network_layer(link, p.data);
        let prefix = &net[..net.len().min(KEY_BYTES)];
        let hash = self.hasher.hash_one((ethertype, prefix));
        let place = (p.component, p.edge, p.direction.map_or(0, |d| d as u8 + 1));
        if let Some(seen) = self.by_content.get_mut(&hash) {
            if ts_ns - seen.last_ns <= COPY_WINDOW_NS && !seen.places.contains(&place) {
                seen.last_ns = ts_ns;
                if seen.places.len() < 64 {
                    seen.places.push(place);
                }
                return true;
            }
            // The same bytes again at a place it was already logged at, or long after: a
            // new packet (a retransmission, a repeated reset).
            *seen = Seen {
                last_ns: ts_ns,
                places: vec![place],
            };
            return false;
        }
        self.by_content.insert(
            hash,
            Seen {
                last_ns: ts_ns,
                places: vec![place],
            },
        );
        self.order.push_back((ts_ns, Key::Content(hash)));
        false
    }

    /// Forgets packets first seen well before `now` (copies follow within a window), and the
    /// oldest ones beyond [`MAX_REMEMBERED`].
    fn forget(&mut self, now: i64) {
        while let Some(&(first, key)) = self.order.front() {
            let stale = now.saturating_sub(first) > 4 * COPY_WINDOW_NS;
            if !stale && self.order.len() <= MAX_REMEMBERED {
                break;
            }
            self.order.pop_front();
            match key {
                Key::Group(g, n) => {
                    self.by_group.remove(&(g, n));
                }
                Key::Content(h) => {
                    // Kept while copies still arrive.
                    let live = self
                        .by_content
                        .get(&h)
                        .is_some_and(|s| now.saturating_sub(s.last_ns) <= COPY_WINDOW_NS);
                    if live && self.order.len() < MAX_REMEMBERED {
                        self.order.push_back((now, key));
                    } else {
                        self.by_content.remove(&h);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first packet event of a Windows 10 pktmon capture, as `pktmon etl2txt` shows
    /// it: "PktGroupId 1, PktNumber 1, Appearance 1, Direction Rx, Type Ethernet,
    /// Component 15, Edge 1, Filter 0, OriginalSize 297, LoggedSize 128".
    #[test]
    fn fields_as_etl2txt_prints_them() {
        let mut payload = vec![
            0x01, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0x01, 0, 0x03, 0, 0x01, 0, 0x0f, 0, 0x01, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0x29, 0x01, 0x80, 0x00,
        ];
        payload.extend_from_slice(&[0x55; 128]);
        let p = parse(&payload).unwrap();
        assert_eq!((p.group, p.number, p.appearance), (1, 1, 1));
        assert_eq!(p.direction, Some(Direction::Inbound));
        assert_eq!((p.packet_type, p.component, p.edge), (1, 15, 1));
        assert_eq!((p.original_size, p.data.len()), (297, 128));
        assert!(parse(&payload[..100]).is_none());
    }

    #[test]
    fn link_type_by_content() {
        // An Ethernet frame labelled Wi-Fi stays Ethernet.
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00, 0x45]);
        eth.resize(60, 0);
        assert_eq!(link_type(2, &eth), Some(linktype::ETHERNET));
        // An 802.11 data frame (FromDS, no QoS) with LLC/SNAP.
        let mut wifi = vec![0x08, 0x02];
        wifi.resize(24, 0x11);
        wifi.extend_from_slice(&[0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        wifi.resize(80, 0);
        assert_eq!(link_type(2, &wifi), Some(LINKTYPE_802_11));
        let ip = [0x45u8; 40];
        assert_eq!(link_type(3, &ip), Some(linktype::RAW));
        assert_eq!(link_type(1, &[0xFF; 10]), None);
    }
}
