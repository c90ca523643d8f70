//! Cipher suite names and the weak-suite table.
//!
//! [`WEAK`] was generated from the IANA "TLS Cipher Suites" registry
//! (<https://www.iana.org/assignments/tls-parameters/tls-parameters.xhtml#tls-parameters-4>),
//! as extracted into `scripts/tls-ciphersuites.txt` of the `tls-parser` 0.12.2 crate and
//! checked against a 2024 copy of IANA's `tls-parameters-4.csv`. A suite is weak when its
//! IANA name contains `RC4`, `DES` (which includes `3DES_EDE`), `NULL`, `EXPORT` or `anon`,
//! or ends with `MD5`; the two integrity-only suites of RFC 9150 (`TLS_SHA256_SHA256`,
//! `TLS_SHA384_SHA384`), whose encryption is NULL in that list, are included too. The
//! signalling values (`TLS_EMPTY_RENEGOTIATION_INFO_SCSV`, `TLS_FALLBACK_SCSV`) are not
//! suites and are left out. Every SSL 2.0 cipher spec (3-byte codes) is weak: all of them
//! use MD5.

/// Why a suite is weak (bit flags).
pub type Weakness = u8;
pub const RC4: Weakness = 1;
pub const DES: Weakness = 2;
pub const DES3: Weakness = 4;
pub const NULL: Weakness = 8;
pub const EXPORT: Weakness = 16;
pub const ANON: Weakness = 32;
pub const MD5: Weakness = 64;

const NAMES: [(Weakness, &str); 7] = [
    (RC4, "RC4"),
    (DES, "DES"),
    (DES3, "3DES"),
    (NULL, "NULL"),
    (EXPORT, "EXPORT"),
    (ANON, "anonymous"),
    (MD5, "MD5"),
];

/// Weak IANA cipher suites, sorted by code.
#[rustfmt::skip]
pub const WEAK: &[(u16, Weakness)] = &[
    (0x0000, NULL), // TLS_NULL_WITH_NULL_NULL
    (0x0001, NULL | MD5), // TLS_RSA_WITH_NULL_MD5
    (0x0002, NULL), // TLS_RSA_WITH_NULL_SHA
    (0x0003, RC4 | EXPORT | MD5), // TLS_RSA_EXPORT_WITH_RC4_40_MD5
    (0x0004, RC4 | MD5), // TLS_RSA_WITH_RC4_128_MD5
    (0x0005, RC4), // TLS_RSA_WITH_RC4_128_SHA
    (0x0006, EXPORT | MD5), // TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5
    (0x0008, DES | EXPORT), // TLS_RSA_EXPORT_WITH_DES40_CBC_SHA
    (0x0009, DES), // TLS_RSA_WITH_DES_CBC_SHA
    (0x000a, DES3), // TLS_RSA_WITH_3DES_EDE_CBC_SHA
    (0x000b, DES | EXPORT), // TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA
    (0x000c, DES), // TLS_DH_DSS_WITH_DES_CBC_SHA
    (0x000d, DES3), // TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA
    (0x000e, DES | EXPORT), // TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA
    (0x000f, DES), // TLS_DH_RSA_WITH_DES_CBC_SHA
    (0x0010, DES3), // TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA
    (0x0011, DES | EXPORT), // TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA
    (0x0012, DES), // TLS_DHE_DSS_WITH_DES_CBC_SHA
    (0x0013, DES3), // TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA
    (0x0014, DES | EXPORT), // TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA
    (0x0015, DES), // TLS_DHE_RSA_WITH_DES_CBC_SHA
    (0x0016, DES3), // TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA
    (0x0017, RC4 | EXPORT | ANON | MD5), // TLS_DH_anon_EXPORT_WITH_RC4_40_MD5
    (0x0018, RC4 | ANON | MD5), // TLS_DH_anon_WITH_RC4_128_MD5
    (0x0019, DES | EXPORT | ANON), // TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA
    (0x001a, DES | ANON), // TLS_DH_anon_WITH_DES_CBC_SHA
    (0x001b, DES3 | ANON), // TLS_DH_anon_WITH_3DES_EDE_CBC_SHA
    (0x001e, DES), // TLS_KRB5_WITH_DES_CBC_SHA
    (0x001f, DES3), // TLS_KRB5_WITH_3DES_EDE_CBC_SHA
    (0x0020, RC4), // TLS_KRB5_WITH_RC4_128_SHA
    (0x0022, DES | MD5), // TLS_KRB5_WITH_DES_CBC_MD5
    (0x0023, DES3 | MD5), // TLS_KRB5_WITH_3DES_EDE_CBC_MD5
    (0x0024, RC4 | MD5), // TLS_KRB5_WITH_RC4_128_MD5
    (0x0025, MD5), // TLS_KRB5_WITH_IDEA_CBC_MD5
    (0x0026, DES | EXPORT), // TLS_KRB5_EXPORT_WITH_DES_CBC_40_SHA
    (0x0027, EXPORT), // TLS_KRB5_EXPORT_WITH_RC2_CBC_40_SHA
    (0x0028, RC4 | EXPORT), // TLS_KRB5_EXPORT_WITH_RC4_40_SHA
    (0x0029, DES | EXPORT | MD5), // TLS_KRB5_EXPORT_WITH_DES_CBC_40_MD5
    (0x002a, EXPORT | MD5), // TLS_KRB5_EXPORT_WITH_RC2_CBC_40_MD5
    (0x002b, RC4 | EXPORT | MD5), // TLS_KRB5_EXPORT_WITH_RC4_40_MD5
    (0x002c, NULL), // TLS_PSK_WITH_NULL_SHA
    (0x002d, NULL), // TLS_DHE_PSK_WITH_NULL_SHA
    (0x002e, NULL), // TLS_RSA_PSK_WITH_NULL_SHA
    (0x0034, ANON), // TLS_DH_anon_WITH_AES_128_CBC_SHA
    (0x003a, ANON), // TLS_DH_anon_WITH_AES_256_CBC_SHA
    (0x003b, NULL), // TLS_RSA_WITH_NULL_SHA256
    (0x0046, ANON), // TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA
    (0x0060, RC4 | EXPORT | MD5), // TLS_RSA_EXPORT1024_WITH_RC4_56_MD5
    (0x0061, EXPORT | MD5), // TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5
    (0x0062, DES | EXPORT), // TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA
    (0x0063, DES | EXPORT), // TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA
    (0x0064, RC4 | EXPORT), // TLS_RSA_EXPORT1024_WITH_RC4_56_SHA
    (0x0065, RC4 | EXPORT), // TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA
    (0x0066, RC4), // TLS_DHE_DSS_WITH_RC4_128_SHA
    (0x006c, ANON), // TLS_DH_anon_WITH_AES_128_CBC_SHA256
    (0x006d, ANON), // TLS_DH_anon_WITH_AES_256_CBC_SHA256
    (0x0089, ANON), // TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA
    (0x008a, RC4), // TLS_PSK_WITH_RC4_128_SHA
    (0x008b, DES3), // TLS_PSK_WITH_3DES_EDE_CBC_SHA
    (0x008e, RC4), // TLS_DHE_PSK_WITH_RC4_128_SHA
    (0x008f, DES3), // TLS_DHE_PSK_WITH_3DES_EDE_CBC_SHA
    (0x0092, RC4), // TLS_RSA_PSK_WITH_RC4_128_SHA
    (0x0093, DES3), // TLS_RSA_PSK_WITH_3DES_EDE_CBC_SHA
    (0x009b, ANON), // TLS_DH_anon_WITH_SEED_CBC_SHA
    (0x00a6, ANON), // TLS_DH_anon_WITH_AES_128_GCM_SHA256
    (0x00a7, ANON), // TLS_DH_anon_WITH_AES_256_GCM_SHA384
    (0x00b0, NULL), // TLS_PSK_WITH_NULL_SHA256
    (0x00b1, NULL), // TLS_PSK_WITH_NULL_SHA384
    (0x00b4, NULL), // TLS_DHE_PSK_WITH_NULL_SHA256
    (0x00b5, NULL), // TLS_DHE_PSK_WITH_NULL_SHA384
    (0x00b8, NULL), // TLS_RSA_PSK_WITH_NULL_SHA256
    (0x00b9, NULL), // TLS_RSA_PSK_WITH_NULL_SHA384
    (0x00bf, ANON), // TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256
    (0x00c5, ANON), // TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256
    (0xc001, NULL), // TLS_ECDH_ECDSA_WITH_NULL_SHA
    (0xc002, RC4), // TLS_ECDH_ECDSA_WITH_RC4_128_SHA
    (0xc003, DES3), // TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA
    (0xc006, NULL), // TLS_ECDHE_ECDSA_WITH_NULL_SHA
    (0xc007, RC4), // TLS_ECDHE_ECDSA_WITH_RC4_128_SHA
    (0xc008, DES3), // TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA
    (0xc00b, NULL), // TLS_ECDH_RSA_WITH_NULL_SHA
    (0xc00c, RC4), // TLS_ECDH_RSA_WITH_RC4_128_SHA
    (0xc00d, DES3), // TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA
    (0xc010, NULL), // TLS_ECDHE_RSA_WITH_NULL_SHA
    (0xc011, RC4), // TLS_ECDHE_RSA_WITH_RC4_128_SHA
    (0xc012, DES3), // TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA
    (0xc015, NULL | ANON), // TLS_ECDH_anon_WITH_NULL_SHA
    (0xc016, RC4 | ANON), // TLS_ECDH_anon_WITH_RC4_128_SHA
    (0xc017, DES3 | ANON), // TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA
    (0xc018, ANON), // TLS_ECDH_anon_WITH_AES_128_CBC_SHA
    (0xc019, ANON), // TLS_ECDH_anon_WITH_AES_256_CBC_SHA
    (0xc01a, DES3), // TLS_SRP_SHA_WITH_3DES_EDE_CBC_SHA
    (0xc01b, DES3), // TLS_SRP_SHA_RSA_WITH_3DES_EDE_CBC_SHA
    (0xc01c, DES3), // TLS_SRP_SHA_DSS_WITH_3DES_EDE_CBC_SHA
    (0xc033, RC4), // TLS_ECDHE_PSK_WITH_RC4_128_SHA
    (0xc034, DES3), // TLS_ECDHE_PSK_WITH_3DES_EDE_CBC_SHA
    (0xc039, NULL), // TLS_ECDHE_PSK_WITH_NULL_SHA
    (0xc03a, NULL), // TLS_ECDHE_PSK_WITH_NULL_SHA256
    (0xc03b, NULL), // TLS_ECDHE_PSK_WITH_NULL_SHA384
    (0xc046, ANON), // TLS_DH_anon_WITH_ARIA_128_CBC_SHA256
    (0xc047, ANON), // TLS_DH_anon_WITH_ARIA_256_CBC_SHA384
    (0xc05a, ANON), // TLS_DH_anon_WITH_ARIA_128_GCM_SHA256
    (0xc05b, ANON), // TLS_DH_anon_WITH_ARIA_256_GCM_SHA384
    (0xc084, ANON), // TLS_DH_anon_WITH_CAMELLIA_128_GCM_SHA256
    (0xc085, ANON), // TLS_DH_anon_WITH_CAMELLIA_256_GCM_SHA384
    (0xc0b4, NULL), // TLS_SHA256_SHA256
    (0xc0b5, NULL), // TLS_SHA384_SHA384
];

/// The weaknesses of a negotiated suite (a 2-byte IANA code, or a 3-byte SSL 2.0 spec), or
/// `None` for a suite not known to be weak.
pub fn weakness(suite: u32) -> Option<Weakness> {
    if suite > 0xffff {
        return Some(MD5);
    }
    let code = suite as u16;
    WEAK.binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| WEAK[i].1)
}

/// `RC4, MD5`: the words for a weakness.
pub fn describe(weakness: Weakness) -> String {
    let mut out = String::new();
    for (flag, name) in NAMES {
        if weakness & flag != 0 {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(name);
        }
    }
    out
}

/// A suite's code as written in reports: `0xc02f` (`0x010080` for SSL 2.0 specs).
pub fn code(suite: u32) -> String {
    Code(suite).to_string()
}

/// [`code`] as a `Display`, to write it without a `String`.
pub struct Code(pub u32);

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let suite = self.0;
        if suite > 0xffff {
            write!(f, "{suite:#08x}")
        } else {
            write!(f, "{suite:#06x}")
        }
    }
}

impl Code {
    /// Hand `f` the code as [`Display`](std::fmt::Display) writes it (`0xc02f`), made
    /// without the formatting machinery: the census writes one per record only to look it
    /// up, and `write!` was most of that.
    pub fn with_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let suite = self.0;
        let significant = (32 - suite.leading_zeros() as usize).div_ceil(4);
        let digits = significant.max(if suite > 0xffff { 6 } else { 4 });
        let mut text = [0u8; 10];
        text[..2].copy_from_slice(b"0x");
        for (i, slot) in text[2..2 + digits].iter_mut().enumerate() {
            let shift = 4 * (digits - 1 - i);
            *slot = HEX[(suite >> shift) as usize & 0xf];
        }
        f(std::str::from_utf8(&text[..2 + digits]).expect("hex digits"))
    }
}

/// Parse `0xc02f` (or a decimal number) back into a suite code.
pub fn parse_code(text: &str) -> Option<u32> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The IANA name of a suite, when known.
pub fn name(suite: u32) -> Option<&'static str> {
    let code = u16::try_from(suite).ok()?;
    tls_parser::TlsCipherSuite::from_id(code).map(|s| s.name)
}

/// `TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, or the code when the name is unknown.
pub fn label(suite: u32) -> String {
    name(suite).map_or_else(|| code(suite), str::to_string)
}

/// A suite by IANA name or code.
pub fn lookup(text: &str) -> Option<u32> {
    if let Some(code) = parse_code(text) {
        return Some(code);
    }
    tls_parser::TlsCipherSuite::from_name(text).map(|s| u32::from(s.id.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The census's suite keys are the text reports have always written: `write!`'s
    /// `{:#06x}` (`{:#08x}` above 16 bits), here std's own hex formatting.
    #[test]
    fn code_text_is_what_display_writes() {
        let mut values = vec![0, 1, 0xf, 0x10, 0xff, 0x100, 0xc02f, 0xfffe, 0xffff];
        values.extend([
            0x1_0000,
            0xab_cdef,
            0xff_ffff,
            0x100_0000,
            0x1234_5678,
            u32::MAX,
        ]);
        values.extend((0..=u32::MAX).step_by(0x0123_4567));
        for v in values {
            let want = if v > 0xffff {
                format!("{v:#08x}")
            } else {
                format!("{v:#06x}")
            };
            assert_eq!(Code(v).with_text(str::to_string), want, "{v:#x}");
            assert_eq!(Code(v).to_string(), want);
        }
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(WEAK.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn weak_suites_by_name() {
        assert_eq!(weakness(0x0002), Some(NULL));
        assert_eq!(weakness(0x0004), Some(RC4 | MD5));
        assert_eq!(weakness(0x000a), Some(DES3));
        assert_eq!(weakness(0x0018), Some(RC4 | ANON | MD5));
        assert_eq!(weakness(0xc02f), None);
        assert_eq!(weakness(0x1301), None);
        assert_eq!(weakness(0x00ff), None);
        assert_eq!(weakness(0x010080), Some(MD5));
        assert_eq!(describe(RC4 | MD5), "RC4, MD5");
    }

    #[test]
    fn names_and_codes() {
        assert_eq!(name(0xc02f), Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        assert_eq!(lookup("TLS_RSA_WITH_RC4_128_SHA"), Some(5));
        assert_eq!(lookup("0x000a"), Some(10));
        assert_eq!(code(0x2f), "0x002f");
        assert_eq!(code(0x010080), "0x010080");
    }
}
