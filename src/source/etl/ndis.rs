//! `netsh trace ... capture=yes`: the events of Microsoft-Windows-NDIS-PacketCapture
//! (`ndiscap.sys`, {2ED6006E-4729-4609-B423-3EE7BCD678EF}).
//!
//! From the provider's manifest (its event templates, as tools that list them print):
//!
//! * 1001 "Packet Fragment": MiniportIfIndex u32, LowerIfIndex u32, FragmentSize u32,
//!   Fragment (FragmentSize bytes); newer builds append GFT fields after it.
//! * 1002 "Packet Metadata": MiniportIfIndex u32, LowerIfIndex u32, MetadataSize u32,
//!   Metadata (a Wi-Fi receive context for the next fragment; not needed here).
//! * 1003 "VMSwitch Packet Fragment": MiniportIfIndex, LowerIfIndex, SourcePortId (u32
//!   each), SourcePortName, SourceNicName, SourceNicType (NUL-terminated UTF-16),
//!   DestinationCount u32, the destinations, FragmentSize u32, Fragment, OOBDataSize u32,
//!   OOBData. The destinations' layout varies; the fragment is found as the one place where
//!   FragmentSize, the fragment, OOBDataSize and OOBData end exactly at the payload's end.
//!
//! The keywords say the rest: the media (0x1 Ethernet 802.3, 0x200 wireless WAN = IP with no
//! link header, 0x10000 native 802.11), the fragment's place (0x4000_0000 first fragment of
//! a packet, 0x8000_0000 last; a packet in one event has both; Windows 8.1 and later only
//! log packets in one event), and the direction (0x1_0000_0000 send, 0x2_0000_0000
//! receive).

use super::file::guid;
use crate::source::Direction;

pub(crate) const PROVIDER: [u8; 16] = guid(
    0x2ED6_006E,
    0x4729,
    0x4609,
    [0xB4, 0x23, 0x3E, 0xE7, 0xBC, 0xD6, 0x78, 0xEF],
);

pub(crate) const EVENT_FRAGMENT: u16 = 1001;
pub(crate) const EVENT_VMSWITCH_FRAGMENT: u16 = 1003;

const KW_WIRELESS_WAN: u64 = 0x200;
const KW_NATIVE_802_11: u64 = 0x1_0000;
const KW_PACKET_START: u64 = 0x4000_0000;
const KW_PACKET_END: u64 = 0x8000_0000;
const KW_SEND: u64 = 0x1_0000_0000;
const KW_RECEIVE: u64 = 0x2_0000_0000;

/// The media a fragment's keywords name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    Ethernet,
    Wifi,
    RawIp,
}

/// One fragment of a packet.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fragment<'a> {
    /// LowerIfIndex: the interface the filter sits on (what etl2pcapng names interfaces
    /// by; MiniportIfIndex, the adapter below, is the same but for stacked filters).
    pub lower_if: u32,
    pub data: &'a [u8],
    pub first: bool,
    pub last: bool,
    pub media: Media,
    pub direction: Option<Direction>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Reads a fragment event (1001 or 1003); `None` if its payload does not hold one.
pub(crate) fn fragment(id: u16, keywords: u64, payload: &[u8]) -> Option<Fragment<'_>> {
    u32_at(payload, 0)?; // MiniportIfIndex
    let lower_if = u32_at(payload, 4)?;
    let data = match id {
        EVENT_FRAGMENT => {
            let size = u32_at(payload, 8)? as usize;
            payload.get(12..12usize.checked_add(size)?)?
        }
        EVENT_VMSWITCH_FRAGMENT => vmswitch_fragment(payload)?,
        _ => return None,
    };
    let media = if keywords & KW_NATIVE_802_11 != 0 {
        Media::Wifi
    } else if keywords & KW_WIRELESS_WAN != 0 {
        Media::RawIp
    } else {
        Media::Ethernet
    };
    let direction = if keywords & KW_SEND != 0 {
        Some(Direction::Outbound)
    } else if keywords & KW_RECEIVE != 0 {
        Some(Direction::Inbound)
    } else {
        None
    };
    Some(Fragment {
        lower_if,
        data,
        first: keywords & KW_PACKET_START != 0,
        last: keywords & KW_PACKET_END != 0,
        media,
        direction,
    })
}

/// The fragment of a VMSwitch event: after the three strings, the first offset where
/// `FragmentSize, Fragment, OOBDataSize, OOBData` end exactly at the payload's end.
fn vmswitch_fragment(payload: &[u8]) -> Option<&[u8]> {
    let mut at = 12;
    for _ in 0..3 {
        at = skip_utf16z(payload, at)?;
    }
    at += 4; // DestinationCount
    while at + 8 <= payload.len() {
        let size = u32_at(payload, at)? as usize;
        if let Some(oob_at) = (at + 4).checked_add(size) {
            if let Some(oob) = u32_at(payload, oob_at) {
                if oob_at + 4 + oob as usize == payload.len() {
                    return payload.get(at + 4..oob_at);
                }
            }
        }
        at += 2;
    }
    None
}

/// The offset past a NUL-terminated UTF-16 string starting at `at`.
fn skip_utf16z(b: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let unit = b.get(at..at + 2)?;
        at += 2;
        if unit == [0, 0] {
            return Some(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_name_media_place_and_direction() {
        // A single-event Ethernet receive, as Windows 8.1 and later log them.
        let mut payload = vec![7, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0];
        payload.extend_from_slice(b"abc");
        let kw = 0x1 | KW_PACKET_START | KW_PACKET_END | KW_RECEIVE;
        let f = fragment(EVENT_FRAGMENT, kw, &payload).unwrap();
        assert_eq!((f.lower_if, f.data), (9, &b"abc"[..]));
        assert!(f.first && f.last);
        assert_eq!(f.media, Media::Ethernet);
        assert_eq!(f.direction, Some(Direction::Inbound));
        let f = fragment(EVENT_FRAGMENT, KW_NATIVE_802_11 | KW_SEND, &payload).unwrap();
        assert_eq!(
            (f.media, f.direction),
            (Media::Wifi, Some(Direction::Outbound))
        );
        assert!(!f.first && !f.last);
        // A fragment size past the payload.
        payload[8] = 4;
        assert!(fragment(EVENT_FRAGMENT, kw, &payload).is_none());
    }

    #[test]
    fn vmswitch_fragment_is_found_by_its_sizes() {
        let mut p = vec![1, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0];
        for s in ["Port", "Nic", "Synthetic"] {
            for c in s.encode_utf16() {
                p.extend_from_slice(&c.to_le_bytes());
            }
            p.extend_from_slice(&[0, 0]);
        }
        p.extend_from_slice(&1u32.to_le_bytes()); // one destination
        p.extend_from_slice(&[6, 0, 0, 0, b'D', 0, 0, 0]); // its id and name
        p.extend_from_slice(&4u32.to_le_bytes());
        p.extend_from_slice(b"data");
        p.extend_from_slice(&2u32.to_le_bytes());
        p.extend_from_slice(&[0xAA, 0xBB]);
        let f = fragment(EVENT_VMSWITCH_FRAGMENT, KW_PACKET_END, &p).unwrap();
        assert_eq!(f.data, b"data");
    }
}
