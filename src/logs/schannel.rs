//! What Schannel's numbers and names in the logs mean: the protocol bits (`SP_PROT_*`) and
//! the algorithm identifiers (`ALG_ID`, `CALG_*`) that IIS writes as hex in its `crypt-*`
//! fields and Exchange writes by name in its SMTP protocol logs.
//!
//! Sources, both Microsoft Learn:
//! * protocols: the `dwProtocol` member of `SecPkgContext_ConnectionInfo` (schannel.h):
//!   `SP_PROT_SSL2_SERVER` 0x4 / `_CLIENT` 0x8, `SSL3` 0x10 / 0x20, `TLS1_0` 0x40 / 0x80,
//!   `TLS1_1` 0x100 / 0x200, `TLS1_2` 0x400 / 0x800, `TLS1_3` 0x1000 / 0x2000: the
//!   `_SERVER` bit when Schannel was the server, `_CLIENT` when it was the client;
//! * algorithms: the "ALG_ID" page of the CryptoAPI reference (wincrypt.h), whose table
//!   gives each `CALG_*` name its value, e.g. `CALG_AES_256` 0x6610, `CALG_SHA_384` 0x800d,
//!   `CALG_ECDH_EPHEM` 0xae06.
//!
//! Exchange spells some names its own way (`CALG_ECDHE` for `CALG_ECDH_EPHEM`, `CALG_SHA`
//! for `CALG_SHA1`); [`alg_by_name`] takes both and records carry the ALG_ID page's name.

use crate::record::Version;

/// Which side of the handshake Schannel was on, from the protocol bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl Side {
    /// `server` or `client`, as records write it.
    pub fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}

/// The version and side of one `SP_PROT_*` bit (the value IIS logs in `crypt-protocol`).
pub fn protocol_by_bits(bits: u32) -> Option<(Version, Side)> {
    let (version, side) = match bits {
        0x4 => (0x0002, Side::Server),
        0x8 => (0x0002, Side::Client),
        0x10 => (0x0300, Side::Server),
        0x20 => (0x0300, Side::Client),
        0x40 => (0x0301, Side::Server),
        0x80 => (0x0301, Side::Client),
        0x100 => (0x0302, Side::Server),
        0x200 => (0x0302, Side::Client),
        0x400 => (0x0303, Side::Server),
        0x800 => (0x0303, Side::Client),
        0x1000 => (0x0304, Side::Server),
        0x2000 => (0x0304, Side::Client),
        _ => return None,
    };
    Some((Version(version), side))
}

/// The version and side of an `SP_PROT_*` name as Exchange logs it (`SP_PROT_TLS1_2_SERVER`).
/// `SP_PROT_TLS1_SERVER` is the older name of `SP_PROT_TLS1_0_SERVER`.
pub fn protocol_by_name(name: &str) -> Option<(Version, Side)> {
    let rest = name.strip_prefix("SP_PROT_")?;
    let (proto, side) = if let Some(p) = rest.strip_suffix("_SERVER") {
        (p, Side::Server)
    } else if let Some(p) = rest.strip_suffix("_CLIENT") {
        (p, Side::Client)
    } else {
        return None;
    };
    let version = match proto {
        "SSL2" => 0x0002,
        "SSL3" => 0x0300,
        "TLS1" | "TLS1_0" => 0x0301,
        "TLS1_1" => 0x0302,
        "TLS1_2" => 0x0303,
        "TLS1_3" => 0x0304,
        _ => return None,
    };
    Some((Version(version), side))
}

/// The ALG_IDs a TLS session's cipher, MAC hash and key exchange can have, by value, with
/// the ALG_ID page's name. Zero is "none" (AEAD suites log no separate MAC hash).
const ALGORITHMS: &[(u32, &str)] = &[
    (0x6603, "CALG_3DES"),
    (0x6609, "CALG_3DES_112"),
    (0x6611, "CALG_AES"),
    (0x660e, "CALG_AES_128"),
    (0x660f, "CALG_AES_192"),
    (0x6610, "CALG_AES_256"),
    (0x6601, "CALG_DES"),
    (0x6604, "CALG_DESX"),
    (0x6602, "CALG_RC2"),
    (0x6801, "CALG_RC4"),
    (0x6000, "CALG_NULLCIPHER"),
    (0x8003, "CALG_MD5"),
    (0x8004, "CALG_SHA1"),
    (0x800c, "CALG_SHA_256"),
    (0x800d, "CALG_SHA_384"),
    (0x800e, "CALG_SHA_512"),
    (0x8009, "CALG_HMAC"),
    (0xa400, "CALG_RSA_KEYX"),
    (0xaa02, "CALG_DH_EPHEM"),
    (0xaa01, "CALG_DH_SF"),
    (0xaa05, "CALG_ECDH"),
    (0xae06, "CALG_ECDH_EPHEM"),
    (0x2400, "CALG_RSA_SIGN"),
    (0x2200, "CALG_DSS_SIGN"),
    (0x2203, "CALG_ECDSA"),
];

/// Names Exchange writes that the ALG_ID page spells otherwise.
const ALIASES: &[(&str, u32)] = &[
    ("CALG_ECDHE", 0xae06),
    ("CALG_SHA", 0x8004),
    ("CALG_SHA_1", 0x8004),
    ("CALG_SHA1", 0x8004),
    ("CALG_SHA256", 0x800c),
    ("CALG_SHA384", 0x800d),
    ("CALG_SHA512", 0x800e),
    ("CALG_DHE", 0xaa02),
];

/// The ALG_ID page's name of a value; `None` for 0 (no algorithm) and unknown values.
pub fn alg_name(id: u32) -> Option<&'static str> {
    ALGORITHMS.iter().find(|(v, _)| *v == id).map(|(_, n)| *n)
}

/// The value of a `CALG_*` name, in either spelling.
pub fn alg_by_name(name: &str) -> Option<u32> {
    ALGORITHMS
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(v, _)| *v)
        .or_else(|| ALIASES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
}

/// Every name [`weakness`] gives (records read back are checked against it).
pub const WEAKNESSES: &[&str] = &["RC4", "3DES", "DES", "RC2", "NULL", "MD5"];

/// Why a negotiated cipher or MAC is weak, in the census's sense (RC4, DES/3DES, RC2, NULL,
/// MD5): the same families [`crate::census::ciphers`] calls weak on the wire.
pub fn weakness(cipher: Option<u32>, hash: Option<u32>) -> Option<&'static str> {
    match cipher {
        Some(0x6801) => return Some("RC4"),
        Some(0x6603 | 0x6609) => return Some("3DES"),
        Some(0x6601 | 0x6604) => return Some("DES"),
        Some(0x6602) => return Some("RC2"),
        Some(0x6000) => return Some("NULL"),
        _ => {}
    }
    match hash {
        Some(0x8003) => Some("MD5"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_weakness_is_listed() {
        for cipher in [
            0x6801, 0x6603, 0x6609, 0x6601, 0x6604, 0x6602, 0x6000, 0x660e,
        ] {
            for hash in [0x8003, 0x8004, 0x800c] {
                if let Some(why) = weakness(Some(cipher), Some(hash)) {
                    assert!(WEAKNESSES.contains(&why), "{why}");
                }
            }
        }
        assert_eq!(weakness(Some(0x660e), Some(0x8003)), Some("MD5"));
    }

    #[test]
    fn names_and_values_agree_both_ways() {
        for (value, name) in ALGORITHMS {
            assert_eq!(alg_by_name(name), Some(*value));
            assert_eq!(alg_name(*value), Some(*name));
        }
        for (alias, value) in ALIASES {
            assert!(alg_name(*value).is_some(), "{alias}");
        }
    }

    #[test]
    fn every_protocol_bit_has_its_name() {
        for bits in (2..14).map(|shift| 1u32 << shift) {
            let (version, side) = protocol_by_bits(bits).unwrap();
            let proto = match version.0 {
                0x0002 => "SSL2",
                0x0300 => "SSL3",
                0x0301 => "TLS1_0",
                0x0302 => "TLS1_1",
                0x0303 => "TLS1_2",
                _ => "TLS1_3",
            };
            let side_name = if side == Side::Server {
                "SERVER"
            } else {
                "CLIENT"
            };
            assert_eq!(
                protocol_by_name(&format!("SP_PROT_{proto}_{side_name}")),
                Some((version, side))
            );
        }
    }
}
