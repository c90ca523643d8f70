//! Long-header packets in a UDP datagram (RFC 9000 17.2, 12.2 for coalescing) and the
//! opening of an Initial: header protection off (RFC 9001 5.4), then the AEAD (5.3).

use super::keys::InitialKeys;
use super::varint::Cursor;
use super::version::Version;
use super::QuicError;

/// Most bytes a connection ID may have (RFC 9000 17.2: 20 in v1; the drafts allowed 18).
pub const MAX_CID_LEN: usize = 20;

/// A long-header packet as found in a datagram, still protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongPacket<'a> {
    /// The version field; [`Version::of`] it for the keys.
    pub version: u32,
    pub dcid: &'a [u8],
    pub scid: &'a [u8],
    /// Whether the packet type bits say Initial for this version.
    pub initial: bool,
    /// The whole packet, first byte to last byte of its payload.
    pub bytes: &'a [u8],
    /// Where the (protected) packet number starts in `bytes`. Only meaningful for Initials.
    pub pn_offset: usize,
    /// The datagram ended before the packet's declared length (a snap length, or damage):
    /// `bytes` holds what there was, and the packet cannot be opened.
    pub cut: bool,
}

/// Split a datagram into its long-header packets (several may be coalesced). A short-header
/// packet, which can only come last, ends the walk, as does the first damaged header: the
/// packets before it are still returned.
pub fn long_packets(datagram: &[u8]) -> impl Iterator<Item = Result<LongPacket<'_>, QuicError>> {
    let mut rest = datagram;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || rest.first().is_none_or(|b| b & 0x80 == 0) {
            return None;
        }
        match long_packet(rest) {
            Ok(packet) => {
                rest = &rest[packet.bytes.len()..];
                Some(Ok(packet))
            }
            Err(error) => {
                done = true;
                Some(Err(error))
            }
        }
    })
}

/// Parse the long header at the start of `bytes`.
fn long_packet(bytes: &[u8]) -> Result<LongPacket<'_>, QuicError> {
    let mut cursor = Cursor::new(bytes);
    let first = cursor.u8().ok_or(QuicError::Short)?;
    let version_bytes = cursor.take(4).ok_or(QuicError::Short)?;
    let code = u32::from_be_bytes(version_bytes.try_into().map_err(|_| QuicError::Short)?);
    let dcid_len = usize::from(cursor.u8().ok_or(QuicError::Short)?);
    let dcid = cursor.take(dcid_len).ok_or(QuicError::Short)?;
    let scid_len = usize::from(cursor.u8().ok_or(QuicError::Short)?);
    let scid = cursor.take(scid_len).ok_or(QuicError::Short)?;
    // Version negotiation (version 0) and unknown versions: the rest of the datagram is
    // theirs, in a format we do not know.
    let version = Version::of(code).ok_or(QuicError::UnknownVersion)?;
    if dcid_len > MAX_CID_LEN || scid_len > MAX_CID_LEN {
        return Err(QuicError::Short);
    }
    let packet_type = (first >> 4) & 0x03;
    let initial = packet_type == version.initial_type;
    // Retry: the other type code, in v1 3 and in v2 0 (RFC 9369 3.2): no length field,
    // the rest of the datagram.
    let retry = packet_type == (version.initial_type + 3) & 0x03;
    if retry {
        return Ok(LongPacket {
            version: code,
            dcid,
            scid,
            initial: false,
            bytes,
            pn_offset: bytes.len(),
            cut: false,
        });
    }
    if initial {
        let token_len = cursor.varint().ok_or(QuicError::Short)?;
        cursor.take_u64(token_len).ok_or(QuicError::Short)?;
    }
    let length = cursor.varint().ok_or(QuicError::Short)?;
    let pn_offset = cursor.at;
    let end = usize::try_from(length)
        .ok()
        .and_then(|len| pn_offset.checked_add(len))
        .unwrap_or(usize::MAX);
    let cut = end > bytes.len();
    Ok(LongPacket {
        version: code,
        dcid,
        scid,
        initial,
        bytes: &bytes[..end.min(bytes.len())],
        pn_offset,
        cut,
    })
}

/// The full packet number from its `len`-byte truncation, nearest to the one expected after
/// `largest` (RFC 9000 A.3).
fn expand_packet_number(largest: Option<u64>, truncated: u64, len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let window = 1u64 << (len * 8);
    let half = window / 2;
    let mask = window - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(half) <= expected && candidate < (1u64 << 62) - window {
        candidate + window
    } else if candidate > expected.saturating_add(half) && candidate >= window {
        candidate - window
    } else {
        candidate
    }
}

/// Remove header protection from an Initial and decrypt it with `keys`. On success the
/// plaintext frames are in `plaintext` and the packet number is returned; `largest` is the
/// largest packet number opened before in the same direction, if any.
pub fn open_initial(
    packet: &LongPacket<'_>,
    keys: &InitialKeys,
    largest: Option<u64>,
    plaintext: &mut Vec<u8>,
) -> Result<u64, QuicError> {
    if packet.cut {
        return Err(QuicError::Short);
    }
    let bytes = packet.bytes;
    let at = packet.pn_offset;
    // RFC 9001 5.4.2: the sample starts 4 bytes after the packet number's start.
    let sample: &[u8; 16] = bytes
        .get(at + 4..at + 20)
        .and_then(|s| s.try_into().ok())
        .ok_or(QuicError::Short)?;
    let mask = keys.mask(sample);
    let first = bytes[0] ^ (mask[0] & 0x0f);
    let pn_len = usize::from(first & 0x03) + 1;
    let mut header = bytes[..at + pn_len].to_vec();
    header[0] = first;
    let mut truncated = 0u64;
    for (i, byte) in header[at..].iter_mut().enumerate() {
        *byte ^= mask[1 + i];
        truncated = truncated << 8 | u64::from(*byte);
    }
    let packet_number = expand_packet_number(largest, truncated, pn_len);
    plaintext.clear();
    plaintext.extend_from_slice(&bytes[at + pn_len..]);
    if keys.open(packet_number, &header, plaintext) {
        Ok(packet_number)
    } else {
        Err(QuicError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::keys::Sender;
    use crate::quic::test_hex as hex;
    use crate::quic::version::{V1, V2};

    const DCID: &str = "8394c8f03e515708";

    /// The server Initial's frames in RFC 9001 A.3 and RFC 9369 A.3 (the same in both): an
    /// ACK, then a CRYPTO frame with the ServerHello.
    const SERVER_PLAINTEXT: &str =
        "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf739
        88cfc79825df566dc5430b9a045a1200130100002e00330024001d00209d3c94
        0d89690b84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00020304";

    fn open_server_initial(version: u32, wire: &str) {
        let datagram = hex(wire);
        let packets: Vec<_> = long_packets(&datagram).collect();
        assert_eq!(packets.len(), 1);
        let packet = packets[0].unwrap();
        assert!(packet.initial);
        assert_eq!(packet.version, version);
        assert_eq!(packet.scid, hex("f067a5502a4262b5"));
        assert!(packet.dcid.is_empty());
        let v = Version::of(version).unwrap();
        let keys = InitialKeys::new(&v, &hex(DCID), Sender::Server);
        let mut plaintext = Vec::new();
        assert_eq!(open_initial(&packet, &keys, None, &mut plaintext), Ok(1));
        assert_eq!(plaintext, hex(SERVER_PLAINTEXT));
        // The client's keys do not open it, nor does one flipped bit.
        let wrong = InitialKeys::new(&v, &hex(DCID), Sender::Client);
        assert_eq!(
            open_initial(&packet, &wrong, None, &mut plaintext),
            Err(QuicError::Undecryptable)
        );
        let mut damaged = datagram.clone();
        *damaged.last_mut().unwrap() ^= 1;
        let packet = long_packets(&damaged).next().unwrap().unwrap();
        assert_eq!(
            open_initial(&packet, &keys, None, &mut plaintext),
            Err(QuicError::Undecryptable)
        );
        // Every cut is an error, never a panic.
        for len in 0..datagram.len() {
            for packet in long_packets(&datagram[..len]).flatten() {
                let _ = open_initial(&packet, &keys, None, &mut plaintext);
            }
        }
    }

    /// RFC 9001 A.3: the protected server Initial.
    #[test]
    fn opens_the_rfc9001_server_initial() {
        open_server_initial(
            V1,
            "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a
             5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3
             dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84
             022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4
             2158407dd074ee",
        );
    }

    /// RFC 9369 A.3: the same in QUIC version 2.
    #[test]
    fn opens_the_rfc9369_server_initial() {
        open_server_initial(
            V2,
            "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698
             baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17
             f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2
             c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca8
             4bed8521e2e140",
        );
    }

    /// RFC 9000 A.3's example: 0x9b32 after 0xa82f30ea is 0xa82f9b32.
    #[test]
    fn packet_numbers_expand_as_rfc9000_says() {
        assert_eq!(
            expand_packet_number(Some(0xa82f30ea), 0x9b32, 2),
            0xa82f9b32
        );
        assert_eq!(expand_packet_number(None, 0, 1), 0);
        assert_eq!(expand_packet_number(Some(255), 1, 1), 257);
    }
}
