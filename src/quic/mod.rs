//! QUIC Initial packets: the only QUIC packets a passive observer can read, because their keys
//! come from a public salt and the client's first Destination Connection ID (RFC 9001 5.2,
//! RFC 9369 3.3 for version 2).
//!
//! ```text
//! datagram → packet (long header, header protection, AEAD) → frames (CRYPTO at an offset)
//!          → crypto_stream (offset reassembly, bounded) → TLS handshake messages
//! ```
//!
//! The TLS messages go to the same hello parser as TCP's ([`crate::tls::parse`]). Everything
//! here is total: short, corrupt and undecryptable input yields a [`QuicError`], never a panic.

pub mod crypto_stream;
pub mod frames;
pub mod keys;
pub mod packet;
pub mod varint;
pub mod version;

/// Why a datagram or packet gave no CRYPTO data. Counted in the run's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum QuicError {
    /// The datagram ended inside a header or a length field.
    #[error("QUIC packet shorter than its header says")]
    Short,
    /// A version this tool has no Initial salt for (or version negotiation).
    #[error("QUIC version without known Initial keys")]
    UnknownVersion,
    /// A long-header packet other than Initial (0-RTT, Handshake, Retry): its keys are secret.
    #[error("QUIC packet that is not an Initial")]
    NotInitial,
    /// The AEAD tag did not verify under the Initial keys tried.
    #[error("QUIC Initial that does not decrypt")]
    Undecryptable,
    /// The decrypted payload held a frame that cannot be read.
    #[error("malformed frame in a QUIC Initial")]
    MalformedFrame,
}

/// Whether a UDP payload starts like a QUIC Initial of a version we can read: header form
/// bit set (RFC 9000 17.2; the fixed bit may be greased, RFC 9287), a version with a known salt, and that version's
/// Initial type. Coalesced packets come in order of encryption level (RFC 9000 12.2), so a
/// datagram holding an Initial starts with one. The cheap test the decoder applies before
/// handing a datagram on.
pub fn looks_like_initial_datagram(payload: &[u8]) -> bool {
    match payload {
        [first, v0, v1, v2, v3, ..] if first & 0x80 != 0 => {
            version::Version::of(u32::from_be_bytes([*v0, *v1, *v2, *v3]))
                .is_some_and(|v| (first >> 4) & 0x03 == v.initial_type)
        }
        _ => false,
    }
}

/// Bytes from hex text (whitespace ignored), for the RFC test vectors in this module's tests.
#[cfg(test)]
fn test_hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
