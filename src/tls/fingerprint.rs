//! JA3/JA3S (Salesforce) and JA4/JA4S (FoxIO) fingerprints of the hello summaries.
//!
//! Sources, cited below by section name:
//! * JA3/JA3S: the README of github.com/salesforce/ja3 ("How it works", "JA3S") and its reference
//!   implementations `python/ja3.py`, `python/ja3s.py`, `zeek/ja3.zeek`, `zeek/ja3s.zeek`.
//! * JA4: github.com/FoxIO-LLC/ja4 `technical_details/JA4.md`.
//! * JA4S: the only published description is the diagram `technical_details/JA4S.png`; where
//!   it is silent we follow the project's own implementations (`python/ja4.py` `to_ja4s`,
//!   `rust/ja4/src/tls.rs` `ServerStats`).
//!
//! Every function is total: empty lists, empty or non-UTF-8 ALPN values and unknown versions all
//! produce a well-formed fingerprint.

use md5::Md5;
use sha2::{Digest as _, Sha256};

use super::hello::{is_grease, ClientHello, ServerHello};

/// What carried the hello: JA4.md "QUIC and DTLS" gives `t`, `q` or `d` as the first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TLS over TCP.
    Tcp,
    /// TLS inside QUIC CRYPTO frames.
    Quic,
    /// DTLS over UDP.
    Dtls,
}

impl Transport {
    fn marker(self) -> char {
        match self {
            Transport::Tcp => 't',
            Transport::Quic => 'q',
            Transport::Dtls => 'd',
        }
    }
}

/// The JA3 string `SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats`.
///
/// JA3 README "How it works": decimal values, `-` within a field, `,` between fields, empty
/// fields kept empty, GREASE ignored everywhere. SSLVersion is the hello's own `client_version`
/// (`ja3.py` reads `client_handshake.version`), not the record version nor `supported_versions`.
///
/// SSLv2-format hellos: `ja3.py` skips any record whose first byte is not 22, so it gives them
/// no fingerprint; `ja3.zeek` fingerprints them from Zeek's `ssl_client_hello` event, which
/// carries every 3-byte cipher spec as a 24-bit number and no extensions. We follow the Zeek
/// reference, so an SSLv2 hello yields `version,specs,,,` with the specs in wire order
/// (`sslv2_cipher_specs`, or `cipher_suites` when the parser left that empty). A caller that
/// wants `ja3.py` parity (nDPI also prints nothing) should skip hellos with `sslv2_format` set.
pub fn ja3_string(ch: &ClientHello) -> String {
    // Built in one buffer: fingerprints are made for every connection.
    let mut out = String::with_capacity(256);
    push_decimal(&mut out, ch.legacy_version.into());
    out.push(',');
    if ch.sslv2_format && !ch.sslv2_cipher_specs.is_empty() {
        // `ja3.zeek` compares the 24-bit value with the 16-bit GREASE set.
        let specs = ch.sslv2_cipher_specs.iter().copied();
        push_decimals(
            &mut out,
            specs.filter(|s| u16::try_from(*s).map_or(true, |v| !is_grease(v))),
        );
    } else {
        push_decimals(&mut out, non_grease(&ch.cipher_suites));
    }
    out.push(',');
    push_decimals(&mut out, non_grease(&ch.extensions));
    out.push(',');
    push_decimals(&mut out, non_grease(&ch.supported_groups));
    out.push(',');
    // Point formats are 8-bit, so no value can be GREASE (`ja3.py` checks and never matches).
    push_decimals(&mut out, ch.ec_point_formats.iter().copied());
    out
}

/// JA3: lower-case hex MD5 of [`ja3_string`] (JA3 README "How it works").
pub fn ja3(ch: &ClientHello) -> String {
    ja3_of_string(&ja3_string(ch))
}

/// JA3 from the JA3 string already built ([`ja3_string`]): records carry both.
pub fn ja3_of_string(ja3_string: &str) -> String {
    md5_hex(ja3_string)
}

/// The JA3S string `SSLVersion,Cipher,Extensions` (JA3 README "JA3S").
///
/// SSLVersion is the legacy `server_version` (`ja3s.py` reads `server_handshake.version`), so a
/// TLS 1.3 server reads 771. Extensions are kept as sent: neither `ja3s.py` nor `ja3s.zeek`
/// removes GREASE on the server side.
pub fn ja3s_string(sh: &ServerHello) -> String {
    let mut out = String::with_capacity(64);
    push_decimal(&mut out, sh.legacy_version.into());
    out.push(',');
    push_decimal(&mut out, sh.cipher_suite.into());
    out.push(',');
    push_decimals(&mut out, sh.extensions.iter().copied());
    out
}

/// JA3S: lower-case hex MD5 of [`ja3s_string`].
pub fn ja3s(sh: &ServerHello) -> String {
    md5_hex(&ja3s_string(sh))
}

/// JA4, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1` (JA4.md "JA4 Algorithm").
pub fn ja4(ch: &ClientHello, transport: Transport) -> String {
    Ja4Parts::new(ch, transport, true).hashed()
}

/// JA4_r: the raw JA4 with the sorted lists in clear (JA4.md "Raw Output").
pub fn ja4_r(ch: &ClientHello, transport: Transport) -> String {
    Ja4Parts::new(ch, transport, true).raw()
}

/// JA4_o: JA4 hashed over the lists in wire order, SNI and ALPN kept (JA4.md "Raw Output").
pub fn ja4_o(ch: &ClientHello, transport: Transport) -> String {
    Ja4Parts::new(ch, transport, false).hashed()
}

/// JA4_ro: the raw JA4 in wire order (JA4.md "Raw Output").
pub fn ja4_ro(ch: &ClientHello, transport: Transport) -> String {
    Ja4Parts::new(ch, transport, false).raw()
}

/// JA4S, e.g. `t120400_c030_4e8089b08790` (diagram JA4S.png).
///
/// `JA4S_a` = protocol, selected version (`supported_versions` when present, same table as JA4),
/// extension count, chosen ALPN (`00` if none); `JA4S_b` = the chosen cipher as 4 hex digits;
/// `JA4S_c` = truncated SHA256 of the extensions in the order they appear. Where the diagram is
/// silent we follow the FoxIO implementations: extensions are neither GREASE-filtered nor
/// sorted, the count is capped at 99, an empty list gives `000000000000`, and the ALPN
/// characters follow JA4.md "ALPN Extension Value". DTLS gets `d` as in JA4.md "QUIC and DTLS".
pub fn ja4s(sh: &ServerHello, transport: Transport) -> String {
    let (mut out, exts) = ja4s_parts(sh, transport);
    push_hash12(&mut out, &exts);
    out
}

/// JA4S_r: [`ja4s`] with the extension list in clear.
pub fn ja4s_r(sh: &ServerHello, transport: Transport) -> String {
    let (mut out, exts) = ja4s_parts(sh, transport);
    out.push_str(&exts);
    out
}

/// `JA4S_a_JA4S_b_`, and the extension list that makes `JA4S_c`.
fn ja4s_parts(sh: &ServerHello, transport: Transport) -> (String, String) {
    let alpn = sh
        .alpn_raw
        .as_deref()
        .or(sh.alpn.as_deref().map(str::as_bytes));
    let mut out = String::with_capacity(32);
    out.push(transport.marker());
    out.push_str(version_code(sh.selected_version()));
    push_two_digits(&mut out, sh.extensions.len());
    push_alpn_chars(&mut out, alpn);
    out.push('_');
    push_hex(&mut out, &sh.cipher_suite.to_be_bytes());
    out.push('_');
    (out, join_hex4(sh.extensions.iter().copied()))
}

/// The three JA4 sections before hashing.
struct Ja4Parts {
    a: String,
    /// Comma-joined 4-hex-digit ciphers.
    ciphers: String,
    /// "Extension hash" input: comma-joined 4-hex-digit extensions, then `_` and the
    /// comma-joined signature algorithms (wire order) when there are any.
    exts_sigs: String,
    /// Whether the extension list is empty (hashed as twelve zeros whatever the signatures).
    no_exts: bool,
}

impl Ja4Parts {
    /// `sorted` selects the default rendering (sorted lists, SNI and ALPN dropped from the
    /// extension list) over the `-o` one (wire order, everything but GREASE kept).
    fn new(ch: &ClientHello, transport: Transport, sorted: bool) -> Self {
        // JA4.md "Details": GREASE is ignored anywhere it appears.
        let mut ciphers: Vec<u16> = non_grease(&ch.cipher_suites).collect();
        let mut exts: Vec<u16> = non_grease(&ch.extensions).collect();
        // "SNI": the extension's presence, whatever it names (an IP literal still counts).
        let sni = if exts.contains(&0x0000) || ch.sni.is_some() {
            'd'
        } else {
            'i'
        };
        let alpn = ch
            .alpn_first_raw
            .as_deref()
            .or(ch.alpn.first().map(|s| s.as_bytes()));
        // "Number of Ciphers" / "Number of Extensions": two digits, capped at 99, counted
        // before SNI and ALPN are taken out.
        let mut a = String::with_capacity(16);
        a.push(transport.marker());
        a.push_str(version_code(ch.max_version()));
        a.push(sni);
        push_two_digits(&mut a, ciphers.len());
        push_two_digits(&mut a, exts.len());
        push_alpn_chars(&mut a, alpn);
        if sorted {
            // "Cipher hash" / "Extension hash": hex order; SNI (0000) and ALPN (0010) are
            // already in JA4_a and are left out of JA4_c.
            ciphers.sort_unstable();
            exts.retain(|e| *e != 0x0000 && *e != 0x0010);
            exts.sort_unstable();
        }
        let mut exts_sigs = join_hex4(exts.iter().copied());
        let mut sigs = non_grease(&ch.signature_algorithms).peekable();
        if sigs.peek().is_some() {
            exts_sigs.push('_');
            push_hex4_list(&mut exts_sigs, sigs);
        }
        Ja4Parts {
            a,
            ciphers: join_hex4(ciphers.iter().copied()),
            exts_sigs,
            no_exts: exts.is_empty(),
        }
    }

    fn hashed(&self) -> String {
        // An empty cipher list, or an empty extension list, is shown as twelve zeros rather
        // than the hash of nothing ("Cipher hash", "Extension hash").
        let mut out = String::with_capacity(self.a.len() + 26);
        out.push_str(&self.a);
        out.push('_');
        push_hash12(&mut out, &self.ciphers);
        out.push('_');
        push_hash12(&mut out, if self.no_exts { "" } else { &self.exts_sigs });
        out
    }

    fn raw(&self) -> String {
        format!("{}_{}_{}", self.a, self.ciphers, self.exts_sigs)
    }
}

/// JA4.md "TLS and DTLS Version"; anything else, including GREASE, is `00`.
fn version_code(version: u16) -> &'static str {
    match version {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// JA4.md "ALPN Extension Value": first and last byte of the first ALPN value when both are ASCII
/// alphanumerics (a one-byte value is both), otherwise the first and last hex digit of the
/// value's hex form, i.e. the high nibble of the first byte and the low nibble of the last.
/// No ALPN, or an empty first value, gives `00`.
fn push_alpn_chars(out: &mut String, first: Option<&[u8]>) {
    let Some((&head, rest)) = first.and_then(<[u8]>::split_first) else {
        out.push_str("00");
        return;
    };
    let tail = rest.last().copied().unwrap_or(head);
    if head.is_ascii_alphanumeric() && tail.is_ascii_alphanumeric() {
        out.push(char::from(head));
        out.push(char::from(tail));
    } else {
        out.push(char::from(HEX[usize::from(head >> 4)]));
        out.push(char::from(HEX[usize::from(tail & 0x0f)]));
    }
}

/// A count as two decimal digits, capped at 99 (JA4's cipher and extension counts).
fn push_two_digits(out: &mut String, n: usize) {
    let n = n.min(99) as u8;
    out.push(char::from(b'0' + n / 10));
    out.push(char::from(b'0' + n % 10));
}

/// First 12 lower-case hex digits of SHA256, or `000000000000` for an empty list (JA4.md
/// "Cipher hash", "Extension hash").
fn push_hash12(out: &mut String, list: &str) {
    if list.is_empty() {
        out.push_str("000000000000");
        return;
    }
    memo(out, list, Digest::Sha256, |list, hex| {
        push_hex(hex, &Sha256::digest(list.as_bytes())[..6]);
    });
}

fn md5_hex(s: &str) -> String {
    let mut out = String::with_capacity(32);
    memo(&mut out, s, Digest::Md5, |s, hex| {
        push_hex(hex, &Md5::digest(s.as_bytes()));
    });
    out
}

#[derive(Clone, Copy)]
enum Digest {
    Md5 = 0,
    Sha256 = 1,
}

/// Digests memoised per thread. The same client software sends the same hello thousands of
/// times a day, so most fingerprints repeat; keyed by the exact input, a hit is always right.
/// Bounded: a digest's memo is emptied when it reaches [`MEMO_CAP`] entries.
const MEMO_CAP: usize = 2048;

/// One map per digest, keyed by the input itself so that a hit is looked up without building
/// a key.
type Memo = std::collections::HashMap<String, String, foldhash::fast::RandomState>;

thread_local! {
    static MEMO: std::cell::RefCell<[Memo; 2]> = std::cell::RefCell::default();
}

/// Append the digest of `input` to `out`: the memoised one, or `compute`'s (which appends it
/// to the buffer it is given).
fn memo(out: &mut String, input: &str, digest: Digest, compute: impl FnOnce(&str, &mut String)) {
    MEMO.with_borrow_mut(|memos| {
        let memo = &mut memos[digest as usize];
        if let Some(hit) = memo.get(input) {
            out.push_str(hit);
            return;
        }
        if memo.len() >= MEMO_CAP {
            memo.clear();
        }
        let mut value = String::new();
        compute(input, &mut value);
        out.push_str(&value);
        memo.insert(input.to_owned(), value);
    })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`. Fingerprints are built for every connection, so this and the
/// joins below avoid the formatting machinery.
fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

/// Values as 4-digit lower-case hex joined by commas (JA4's lists).
fn join_hex4(values: impl IntoIterator<Item = u16>) -> String {
    let mut out = String::with_capacity(128);
    push_hex4_list(&mut out, values);
    out
}

fn push_hex4_list(out: &mut String, values: impl IntoIterator<Item = u16>) {
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_hex(out, &v.to_be_bytes());
    }
}

fn non_grease(values: &[u16]) -> impl Iterator<Item = u16> + '_ {
    values.iter().copied().filter(|v| !is_grease(*v))
}

/// Decimal values joined by `-` (JA3's lists).
fn push_decimals<T: Into<u64>>(out: &mut String, items: impl IntoIterator<Item = T>) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        push_decimal(out, item.into());
    }
}

fn push_decimal(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alpn_chars(first: Option<&[u8]>) -> String {
        let mut out = String::new();
        push_alpn_chars(&mut out, first);
        out
    }

    fn hash12(list: &str) -> String {
        let mut out = String::new();
        push_hash12(&mut out, list);
        out
    }

    /// The example of JA4.md "Example" / "Raw Output" (GREASE added to check it is ignored).
    fn ja4_md_example() -> ClientHello {
        ClientHello {
            legacy_version: 0x0303,
            supported_versions: vec![0x3a3a, 0x0304, 0x0303],
            cipher_suites: vec![
                0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
                0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x2a2a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005,
                0x0023, 0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
            ],
            sni: Some("example.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ..Default::default()
        }
    }

    #[test]
    fn ja4_spec_example() {
        let ch = ja4_md_example();
        assert_eq!(
            ja4(&ch, Transport::Tcp),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
        assert_eq!(
            ja4_r(&ch, Transport::Tcp),
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,\
             cca8,cca9_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
             0403,0804,0401,0503,0805,0501,0806,0601"
        );
        assert_eq!(
            ja4_ro(&ch, Transport::Tcp),
            "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,\
             002f,0035_001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,\
             000a,0015_0403,0804,0401,0503,0805,0501,0806,0601"
        );
        assert_eq!(
            ja4_o(&ch, Transport::Tcp),
            "t13d1516h2_acb858a92679_18f69afefd3d"
        );
        // "Extension hash": without signature algorithms, no trailing underscore.
        let no_sigs = ClientHello {
            signature_algorithms: vec![],
            ..ch
        };
        assert!(ja4(&no_sigs, Transport::Quic).ends_with("_6d807ffa2a79"));
        assert!(ja4(&no_sigs, Transport::Quic).starts_with("q13d1516h2_"));
    }

    #[test]
    fn ja4_edge_cases() {
        let empty = ClientHello::default();
        assert_eq!(
            ja4(&empty, Transport::Tcp),
            "t00i000000_000000000000_000000000000"
        );
        assert_eq!(ja4_r(&empty, Transport::Dtls), "d00i000000__");
        // Only SNI and ALPN: the sorted extension list is empty.
        let only_sni = ClientHello {
            legacy_version: 0x0300,
            extensions: vec![0, 16],
            alpn: vec![String::new()],
            ..Default::default()
        };
        assert_eq!(
            ja4(&only_sni, Transport::Tcp),
            "ts3d000200_000000000000_000000000000"
        );
        // Versions: GREASE-only supported_versions falls back to legacy; DTLS and SSLv2 codes.
        for (legacy, sv, code) in [
            (0x0301, vec![0x0a0a], "10"),
            (0x0303, vec![0x0302, 0x7f1c], "00"),
            (0x0002, vec![], "s2"),
            (0xfefd, vec![0xfefc], "d3"),
            (0xfeff, vec![], "d1"),
            (0x0304, vec![], "13"),
        ] {
            let ch = ClientHello {
                legacy_version: legacy,
                supported_versions: sv,
                ..Default::default()
            };
            assert_eq!(&ja4(&ch, Transport::Tcp)[1..3], code, "{legacy:04x}");
        }
        // Counts cap at 99; GREASE is not counted.
        let many = ClientHello {
            cipher_suites: (1..=150).chain([0x0a0a]).collect(),
            extensions: (100..=250).collect(),
            ..Default::default()
        };
        assert!(ja4(&many, Transport::Tcp).starts_with("t00i999900_"));
    }

    #[test]
    fn alpn_rules_from_spec() {
        // JA4.md "ALPN Extension Value" examples, in order.
        let cases: [(&[u8], &str); 12] = [
            (b"h2", "h2"),
            (b"http/1.1", "h1"),
            (b"a", "aa"),
            (&[0xab], "ab"),
            (&[0x20], "20"),
            (&[0xab, 0xcd], "ad"),
            (&[0x20, 0x61], "21"),
            (&[0x30, 0xab], "3b"),
            (&[0x61, 0x20], "60"),
            (&[0x30, 0x31, 0xab, 0xcd], "3d"),
            (&[0x30, 0xab, 0xcd, 0x31], "01"),
            (b"", "00"),
        ];
        for (raw, want) in cases {
            assert_eq!(alpn_chars(Some(raw)), want, "{raw:02x?}");
            let ch = ClientHello {
                alpn_first_raw: Some(raw.to_vec()),
                alpn: vec![String::from_utf8_lossy(raw).into_owned()],
                ..Default::default()
            };
            assert_eq!(&ja4(&ch, Transport::Tcp)[8..10], want);
        }
        assert_eq!(alpn_chars(None), "00");
        // Without raw bytes, a valid UTF-8 value is read from its UTF-8 encoding (é = c3 a9).
        let utf8 = ClientHello {
            alpn: vec!["é".into()],
            ..Default::default()
        };
        assert_eq!(&ja4(&utf8, Transport::Tcp)[8..10], "c9");
    }

    #[test]
    fn ja3_readme_examples() {
        let ch = ClientHello {
            legacy_version: 769,
            cipher_suites: vec![47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
            extensions: vec![0, 10, 11],
            supported_groups: vec![23, 24, 25],
            ec_point_formats: vec![0],
            ..Default::default()
        };
        assert_eq!(
            ja3_string(&ch),
            "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"
        );
        assert_eq!(ja3(&ch), "ada70206e40642a3e4461f35503241d5");
        let no_ext = ClientHello {
            legacy_version: 769,
            cipher_suites: vec![4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99],
            ..Default::default()
        };
        assert_eq!(ja3_string(&no_ext), "769,4-5-10-9-100-98-3-6-19-18-99,,,");
        assert_eq!(ja3(&no_ext), "de350869b8c85de67a350c8d186f11e6");
        // GREASE vanishes from every list; the version is the legacy one.
        let greased = ClientHello {
            legacy_version: 0x0303,
            supported_versions: vec![0x0304],
            cipher_suites: vec![0xdada, 0x1301],
            extensions: vec![0x1a1a, 0, 0xfafa],
            supported_groups: vec![0x2a2a, 29],
            ..Default::default()
        };
        assert_eq!(ja3_string(&greased), "771,4865,0,29,");
        assert_eq!(ja3_string(&ClientHello::default()), "0,,,,");
    }

    #[test]
    fn ja3_sslv2_follows_zeek() {
        let ch = ClientHello {
            record_version: 0x0002,
            legacy_version: 0x0301,
            sslv2_format: true,
            cipher_suites: vec![0x0039, 0x0a0a],
            sslv2_cipher_specs: vec![0x000039, 0x0700c0, 0x000a0a, 0x010080],
            ..Default::default()
        };
        assert_eq!(ja3_string(&ch), "769,57-458944-65664,,,");
        assert_eq!(
            ja4(&ch, Transport::Tcp),
            format!("t10i010000_{}_000000000000", hash12("0039"))
        );
    }

    #[test]
    fn ja3s_and_ja4s() {
        let sh = ServerHello {
            legacy_version: 0x0303,
            supported_version: Some(0x0304),
            cipher_suite: 0x1301,
            extensions: vec![43, 51],
            ..Default::default()
        };
        assert_eq!(ja3s_string(&sh), "771,4865,43-51");
        assert_eq!(ja3s(&sh), md5_hex("771,4865,43-51"));
        assert_eq!(ja4s_r(&sh, Transport::Tcp), "t130200_1301_002b,0033");
        // The JA4S diagram's example; its extensions come from the FoxIO rust test suite.
        let diagram = ServerHello {
            legacy_version: 0x0303,
            cipher_suite: 0xc030,
            extensions: vec![0x0005, 0x0017, 0xff01, 0x0000],
            ..Default::default()
        };
        assert_eq!(ja4s(&diagram, Transport::Tcp), "t120400_c030_4e8089b08790");
        let quic = ServerHello {
            alpn: Some("h3".into()),
            ..sh
        };
        assert!(ja4s(&quic, Transport::Quic).starts_with("q1302h3_1301_"));
        let bare = ServerHello {
            alpn_raw: Some(vec![0xff]),
            alpn: Some("\u{fffd}".into()),
            ..Default::default()
        };
        assert_eq!(ja4s(&bare, Transport::Dtls), "d0000ff_0000_000000000000");
        assert_eq!(ja3s_string(&bare), "0,0,");
    }
}
