//! The frames of a decrypted Initial (RFC 9000 19). Initial packets may carry only PADDING,
//! PING, ACK, CRYPTO and CONNECTION_CLOSE (RFC 9000 17.2.2); what matters here is CRYPTO
//! (the TLS bytes at a stream offset) and CONNECTION_CLOSE (a TLS alert, as error code
//! 0x0100 + alert, RFC 9001 4.8).

use super::varint::Cursor;
use super::QuicError;

/// A frame worth keeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// TLS handshake bytes at `offset` of the Initial crypto stream.
    Crypto { offset: u64, data: &'a [u8] },
    /// The sender closed the connection with this QUIC error code.
    Close { error_code: u64 },
}

/// Call `on_frame` for each CRYPTO and CONNECTION_CLOSE frame of `payload`, in order. A frame
/// that cannot be read ends the walk with an error, after the frames before it were given.
/// `crypto_frame` is the version's CRYPTO type ([`super::version::Version::crypto_frame`]).
pub fn walk<'a>(
    payload: &'a [u8],
    crypto_frame: u64,
    on_frame: &mut impl FnMut(Frame<'a>),
) -> Result<(), QuicError> {
    let bad = QuicError::MalformedFrame;
    let mut cursor = Cursor::new(payload);
    while !cursor.is_empty() {
        let frame_type = cursor.varint().ok_or(bad)?;
        match frame_type {
            0x00 | 0x01 => {}
            _ if frame_type == crypto_frame => {
                let offset = cursor.varint().ok_or(bad)?;
                let len = cursor.varint().ok_or(bad)?;
                let data = cursor.take_u64(len).ok_or(bad)?;
                on_frame(Frame::Crypto { offset, data });
            }
            0x02 | 0x03 => {
                let _largest = cursor.varint().ok_or(bad)?;
                let _delay = cursor.varint().ok_or(bad)?;
                let ranges = cursor.varint().ok_or(bad)?;
                let _first = cursor.varint().ok_or(bad)?;
                for _ in 0..ranges {
                    // Each range is two varints of at least a byte: a count past the end
                    // fails at the first missing one.
                    cursor.varint().ok_or(bad)?;
                    cursor.varint().ok_or(bad)?;
                }
                if frame_type == 0x03 {
                    for _ in 0..3 {
                        cursor.varint().ok_or(bad)?;
                    }
                }
            }
            0x1c | 0x1d => {
                let error_code = cursor.varint().ok_or(bad)?;
                if frame_type == 0x1c {
                    cursor.varint().ok_or(bad)?;
                }
                let reason_len = cursor.varint().ok_or(bad)?;
                cursor.take_u64(reason_len).ok_or(bad)?;
                on_frame(Frame::Close { error_code });
            }
            _ => return Err(bad),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of RFC 9001 A.3's server Initial: ACK of packet 0, then CRYPTO at offset
    /// 0 with 0x5a bytes.
    #[test]
    fn reads_the_rfc9001_server_frames() {
        let mut payload = vec![0x02, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x40, 0x5a];
        payload.extend_from_slice(&[0x02; 0x5a]);
        payload.extend_from_slice(&[0x00; 3]);
        let mut frames = Vec::new();
        assert_eq!(walk(&payload, 0x06, &mut |f| frames.push(f)), Ok(()));
        assert_eq!(
            frames,
            vec![Frame::Crypto {
                offset: 0,
                data: &payload[9..9 + 0x5a]
            }]
        );
        // Cut anywhere inside the CRYPTO frame: an error, and no frame.
        for len in 6..9 + 0x5a {
            let mut frames = Vec::new();
            assert!(walk(&payload[..len], 0x06, &mut |f| frames.push(f)).is_err());
            assert!(frames.is_empty());
        }
    }

    #[test]
    fn connection_close_and_unknown_frames() {
        // CONNECTION_CLOSE, error 0x0128 (alert 40), frame type 6, no reason.
        let close = [0x1c, 0x41, 0x28, 0x06, 0x00];
        let mut frames = Vec::new();
        assert_eq!(walk(&close, 0x06, &mut |f| frames.push(f)), Ok(()));
        assert_eq!(frames, vec![Frame::Close { error_code: 0x128 }]);
        assert_eq!(
            walk(&[0x01, 0x08, 0x00], 0x06, &mut |_| {}),
            Err(QuicError::MalformedFrame)
        );
    }
}
