//! The QUIC versions whose Initial packets can be read, and what differs between them: the
//! salt of the initial secret, the HKDF labels, and the code of the Initial packet type.

/// Initial salts. RFC 9001 5.2 (v1, also drafts 33 and 34), RFC 9369 3.3.1 (v2); the
/// drafts' values are those of draft-ietf-quic-tls-22, -23 (used through -28) and -29
/// (through -32), and Google's T050/T051 those its QUIC library published.
const SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];
const SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb,
    0xf9, 0xbd, 0x2e, 0xd9,
];
const SALT_DRAFT_22: [u8; 20] = [
    0x7f, 0xbc, 0xdb, 0x0e, 0x7c, 0x66, 0xbb, 0xe9, 0x19, 0x3a, 0x96, 0xcd, 0x21, 0x51, 0x9e, 0xbd,
    0x7a, 0x02, 0x64, 0x4a,
];
const SALT_DRAFT_23: [u8; 20] = [
    0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7, 0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65,
    0xbe, 0xf9, 0xf5, 0x02,
];
const SALT_DRAFT_29: [u8; 20] = [
    0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97, 0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0,
    0x43, 0x90, 0xa8, 0x99,
];
const SALT_T50: [u8; 20] = [
    0x7f, 0xf5, 0x79, 0xe5, 0xac, 0xd0, 0x72, 0x91, 0x55, 0x80, 0x30, 0x4c, 0x43, 0xa2, 0x36, 0x7c,
    0x60, 0x48, 0x83, 0x10,
];
const SALT_T51: [u8; 20] = [
    0x7a, 0x4e, 0xde, 0xf4, 0xe7, 0xcc, 0xee, 0x5f, 0xa4, 0x50, 0x6c, 0x19, 0x12, 0x4f, 0xc8, 0xcc,
    0xda, 0x6e, 0x03, 0x3d,
];

/// QUIC version 1 (RFC 9000).
pub const V1: u32 = 0x0000_0001;
/// QUIC version 2 (RFC 9369).
pub const V2: u32 = 0x6b33_43cf;

/// A readable QUIC version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// The 32-bit version field as on the wire.
    pub code: u32,
    pub salt: &'static [u8; 20],
    /// RFC 9369 3.3.2: v2 derives its keys with `quicv2 key`, `quicv2 iv`, `quicv2 hp`.
    pub v2_labels: bool,
    /// The long-header packet type bits (RFC 9000 17.2: bits 4-5 of the first byte) that mean
    /// Initial: 0 in v1 and the drafts, 1 in v2 (RFC 9369 3.2).
    pub initial_type: u8,
    /// The CRYPTO frame's type: 0x06, but 0x08 in Google's T050/T051, which kept gQUIC's
    /// frame numbering.
    pub crypto_frame: u64,
}

impl Version {
    /// The version's parameters, or `None` for a version we cannot read (including 0,
    /// version negotiation).
    pub fn of(code: u32) -> Option<Version> {
        let salt = match code {
            V1 => &SALT_V1,
            V2 => {
                return Some(Version {
                    code,
                    salt: &SALT_V2,
                    v2_labels: true,
                    initial_type: 1,
                    crypto_frame: 0x06,
                })
            }
            0x5430_3530 | 0x5430_3531 => {
                return Some(Version {
                    code,
                    salt: if code == 0x5430_3530 {
                        &SALT_T50
                    } else {
                        &SALT_T51
                    },
                    v2_labels: false,
                    initial_type: 0,
                    crypto_frame: 0x08,
                })
            }
            // RFC 9000 15: versions 0x?a?a?a?a are reserved to exercise version negotiation.
            // A client that sends one (the interop runner's forced negotiation) still writes a
            // ClientHello, protected with draft-29's salt, as Wireshark also reads it.
            _ if code & 0x0f0f_0f0f == 0x0a0a_0a0a => &SALT_DRAFT_29,
            // IETF drafts are 0xff0000NN; Facebook's mvfst named its own after drafts.
            0xfaceb001 => &SALT_DRAFT_22,
            0xfaceb002 | 0xfaceb00e => &SALT_DRAFT_23,
            0xff00_0016 => &SALT_DRAFT_22,
            0xff00_0017..=0xff00_001c => &SALT_DRAFT_23,
            0xff00_001d..=0xff00_0020 => &SALT_DRAFT_29,
            0xff00_0021..=0xff00_0022 => &SALT_V1,
            _ => return None,
        };
        Some(Version {
            code,
            salt,
            v2_labels: false,
            initial_type: 0,
            crypto_frame: 0x06,
        })
    }
}
