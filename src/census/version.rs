//! Version names as the record writes them, and back.

use crate::record::Version;

pub const TLS12: u16 = 0x0303;

pub fn version_name(code: u16) -> String {
    Version(code).name().into_owned()
}

/// `TLSv1.2` (also `TLS1.2`, `1.2`), `SSLv3`, `SSLv2`, or a hex code `0x7f12`.
pub fn parse_version(text: &str) -> Option<u16> {
    // The names the records and reports use, without the allocation of the general path
    // (nor a string comparison per name): the reports ask this of every version count of
    // every client.
    match text.as_bytes() {
        [b'T', b'L', b'S', b'v', b'1', b'.', minor @ b'0'..=b'3'] => {
            return Some(0x0301 + u16::from(minor - b'0'))
        }
        b"SSLv3" => return Some(0x0300),
        b"SSLv2" => return Some(0x0002),
        _ => {}
    }
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let bare = lower
        .strip_prefix("tlsv")
        .or_else(|| lower.strip_prefix("tls"))
        .unwrap_or(&lower);
    match bare {
        "sslv2" | "ssl2" => Some(0x0002),
        "sslv3" | "ssl3" => Some(0x0300),
        "1.0" | "1" => Some(0x0301),
        "1.1" => Some(0x0302),
        "1.2" => Some(0x0303),
        "1.3" => Some(0x0304),
        _ => lower
            .strip_prefix("0x")
            .and_then(|h| u16::from_str_radix(h, 16).ok()),
    }
}

/// Whether a version name (as written in reports) is below TLS 1.2. TLS 1.3 drafts
/// (`0x7fNN`) and unknown codes above count as TLS 1.2 or later.
pub fn below_tls12(name: &str) -> bool {
    parse_version(name).is_some_and(|v| v < TLS12)
}

/// `1.2`, `SSL3`: short names for narrow table columns, appended to `text`.
pub fn push_short(text: &mut String, name: &str) {
    text.push_str(match name {
        "SSLv2" => "SSL2",
        "SSLv3" => "SSL3",
        n => n.strip_prefix("TLSv").unwrap_or(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for code in [0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x7f12] {
            assert_eq!(parse_version(&version_name(code)), Some(code));
        }
        assert!(below_tls12("TLSv1.1"));
        assert!(!below_tls12("TLSv1.2"));
        assert!(!below_tls12("0x7f12"));
    }
}
