//! The server's Certificate handshake message (TLS ≤ 1.2, RFC 5246 7.4.2): how many
//! certificates the chain holds and a summary of the first one, the leaf.
//!
//! Only the leaf is decoded (with `x509-parser`): it is the one an admin renews, and the
//! rest of the chain is the CA's. TLS 1.3 encrypts this message, so it is never seen there.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid2sn, oid_registry};
use x509_parser::public_key::PublicKey;
use x509_parser::time::ASN1Time;
use x509_parser::x509::SubjectPublicKeyInfo;

/// What a Certificate message (whole or the part seen) told about the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateChain {
    /// The whole message was seen. False when it was larger than the budget
    /// ([`crate::tls::stream::CERTIFICATE_CAP`]) or the capture lost or cut its end.
    pub seen_whole: bool,
    /// The handshake message's declared body length, in bytes.
    pub message_length: u32,
    /// Certificates in the chain; null when the message was not seen whole.
    pub chain_length: Option<u32>,
    /// The first certificate, when it was seen whole and decoded.
    pub leaf: Option<LeafCertificate>,
    /// Why the leaf is missing: the list's framing is broken, the leaf was not seen whole,
    /// or its DER did not decode. Null with a leaf, and for an empty chain.
    pub leaf_error: Option<String>,
}

/// The fields an admin needs to find and renew a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafCertificate {
    /// The distinguished names, written as RFC 4514 does (`CN=mail.example.com, O=Example`).
    pub subject: String,
    pub issuer: String,
    /// The subject's first common name, if any.
    pub common_name: Option<String>,
    /// DNS names of the subject alternative name extension, in certificate order.
    pub san_dns: Vec<String>,
    /// IP addresses of the subject alternative name extension.
    pub san_ip: Vec<String>,
    /// Serial number in lowercase hex, leading zero bytes removed (`0` for zero).
    pub serial: String,
    /// Validity, RFC 3339 UTC to the second.
    pub not_before: String,
    pub not_after: String,
    /// `RSA`, `RSA-PSS`, `EC`, `Ed25519`, `Ed448`, `DSA`, or the key algorithm's OID.
    pub key_type: String,
    /// Key size in bits: RSA and DSA modulus, EC curve order; 0 when unknown.
    pub key_bits: u32,
    /// Signature algorithm's short name (`sha256WithRSAEncryption`), else its OID.
    pub signature_algorithm: String,
    pub signature_algorithm_oid: String,
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub sha256: String,
    /// Issuer and subject are the same name (and, when both key identifiers are present,
    /// the authority key identifier is the subject's own): no CA vouches for it. The
    /// signature itself is not checked.
    pub self_signed: bool,
}

/// Read a TLS ≤ 1.2 Certificate message body. `whole` is false when `body` is only the
/// first part of a message of `message_length` bytes; the leaf is still decoded when it
/// lies whole in that part.
pub fn parse_chain(body: &[u8], message_length: usize, whole: bool) -> CertificateChain {
    let mut chain = CertificateChain {
        seen_whole: whole,
        message_length: u32::try_from(message_length).unwrap_or(u32::MAX),
        chain_length: None,
        leaf: None,
        leaf_error: None,
    };
    let Some(list_len) = be24(body, 0) else {
        chain.leaf_error = Some("the certificate list's length was not seen".into());
        return chain;
    };
    if whole && list_len + 3 != body.len() {
        chain.leaf_error = Some(format!(
            "certificate list of {list_len} bytes in a message of {} bytes",
            body.len()
        ));
        return chain;
    }
    // Walk the list: each entry is a 24-bit length and a DER certificate.
    let list = &body[3..body.len().min(3 + list_len)];
    let (mut at, mut count, mut first) = (0usize, 0u32, None);
    while at < list.len() {
        let Some(len) = be24(list, at) else {
            break;
        };
        let end = at + 3 + len;
        if end > list.len() {
            break;
        }
        if first.is_none() {
            first = Some(&list[at + 3..end]);
        }
        count += 1;
        at = end;
    }
    if whole {
        if at != list.len() {
            chain.leaf_error = Some(format!(
                "certificate {} overruns the list at byte {at}",
                count + 1
            ));
            return chain;
        }
        chain.chain_length = Some(count);
    }
    match first {
        Some(der) => match leaf(der) {
            Ok(leaf) => chain.leaf = Some(leaf),
            Err(error) => chain.leaf_error = Some(error),
        },
        None if !list.is_empty() || !whole => {
            chain.leaf_error = Some("the leaf certificate was not seen whole".into())
        }
        None => {}
    }
    chain
}

/// A big-endian 24-bit length at `at`.
fn be24(data: &[u8], at: usize) -> Option<usize> {
    let b = data.get(at..at + 3)?;
    Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
}

/// Most leaf summaries remembered per thread, and most DER bytes kept as their keys (a few
/// hundred KB at most).
const RECENT_LEAVES: usize = 256;
const RECENT_BYTES: usize = 512 * 1024;

/// Leaves decoded lately, by their DER, and the DER bytes held.
#[derive(Default)]
struct Recent {
    leaves: std::collections::HashMap<Box<[u8]>, LeafCertificate, foldhash::fast::RandomState>,
    bytes: usize,
}

thread_local! {
    /// A server presents the same leaf on every connection, so all but the first skip the
    /// X.509 decoding and the SHA-256. Keyed by the DER itself: a hit is found by a fast
    /// hash and one comparison, cheaper than the digest. Emptied when full.
    static RECENT: std::cell::RefCell<Recent> = Default::default();
}

/// Summarise one DER certificate.
pub fn leaf(der: &[u8]) -> Result<LeafCertificate, String> {
    if let Some(hit) = RECENT.with_borrow(|recent| recent.leaves.get(der).cloned()) {
        return Ok(hit);
    }
    let digest: [u8; 32] = Sha256::digest(der).into();
    let summary = decode_leaf(der, &digest)?;
    RECENT.with_borrow_mut(|recent| {
        if recent.leaves.len() >= RECENT_LEAVES || recent.bytes + der.len() > RECENT_BYTES {
            recent.leaves.clear();
            recent.bytes = 0;
        }
        if der.len() <= RECENT_BYTES {
            recent.bytes += der.len();
            recent.leaves.insert(der.into(), summary.clone());
        }
    });
    Ok(summary)
}

/// [`leaf`] without the cache: `digest` is the DER's SHA-256.
pub fn decode_leaf(der: &[u8], digest: &[u8; 32]) -> Result<LeafCertificate, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("leaf certificate does not decode: {e}"))?;
    let tbs = &cert.tbs_certificate;
    let (san_dns, san_ip) = alternative_names(&cert);
    let (key_type, key_bits) = key_of(&tbs.subject_pki);
    let sig_oid = &cert.signature_algorithm.algorithm;
    let common_name = tbs.subject.iter_common_name().next().map(attribute_text);
    let summary = LeafCertificate {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        common_name,
        san_dns,
        san_ip,
        serial: serial_hex(tbs.raw_serial()),
        not_before: rfc3339(&tbs.validity.not_before),
        not_after: rfc3339(&tbs.validity.not_after),
        key_type,
        key_bits,
        signature_algorithm: oid2sn(sig_oid, oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| sig_oid.to_id_string()),
        signature_algorithm_oid: sig_oid.to_id_string(),
        sha256: hex(digest),
        self_signed: self_signed(&cert),
    };
    Ok(summary)
}

/// An attribute's string value: UTF-8, printable and IA5 as they are; BMPString (UTF-16)
/// decoded; teletex and other legacy strings read as UTF-8, lossily (they are ASCII in
/// practice, and the name must not vanish for being old-fashioned).
fn attribute_text(attr: &x509_parser::x509::AttributeTypeAndValue<'_>) -> String {
    if let Ok(text) = attr.as_str() {
        return text.to_string();
    }
    let value = attr.attr_value();
    if value.header.tag() == x509_parser::der_parser::asn1_rs::Tag::BmpString {
        let units: Vec<u16> = value
            .data
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    String::from_utf8_lossy(value.data).into_owned()
}

fn alternative_names(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    // A duplicated or broken extension leaves the lists empty rather than failing the leaf.
    if let Ok(Some(san)) = cert.tbs_certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push((*d).to_string()),
                GeneralName::IPAddress(bytes) => ips.push(ip_text(bytes)),
                _ => {}
            }
        }
    }
    (dns, ips)
}

/// An IP address from its 4 or 16 SAN bytes; other lengths as hex.
fn ip_text(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return std::net::Ipv4Addr::from(v4).to_string();
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return std::net::Ipv6Addr::from(v6).to_string();
    }
    hex(bytes)
}

/// Key algorithm and size. RSA's size is the modulus's significant bits (a 1023-bit modulus
/// is 1023, not 1024); an EC key's is its named curve's.
fn key_of(spki: &SubjectPublicKeyInfo<'_>) -> (String, u32) {
    let oid = spki.algorithm.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.113549.1.1.10" => "RSA-PSS",
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => return ("Ed25519".into(), 256),
        "1.3.101.113" => return ("Ed448".into(), 456),
        "1.2.840.10040.4.1" => "DSA",
        _ => return (oid, 0),
    };
    let curve_bits = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .and_then(|curve| match curve.to_id_string().as_str() {
            "1.2.840.10045.3.1.7" => Some(256),
            "1.3.132.0.34" => Some(384),
            "1.3.132.0.35" => Some(521),
            "1.3.132.0.10" => Some(256),
            "1.3.36.3.3.2.8.1.1.7" => Some(256),
            "1.3.36.3.3.2.8.1.1.11" => Some(384),
            "1.3.36.3.3.2.8.1.1.13" => Some(512),
            _ => None,
        });
    let bits = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => significant_bits(rsa.modulus),
        Ok(PublicKey::DSA(y)) => significant_bits(y),
        Ok(PublicKey::EC(point)) => curve_bits.unwrap_or(point.key_size() as u32),
        _ => 0,
    };
    (name.into(), bits)
}

/// Bits of a big-endian unsigned integer, leading zeros not counted.
fn significant_bits(bytes: &[u8]) -> u32 {
    let Some(start) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    let len = (bytes.len() - start) as u32;
    len * 8 - bytes[start].leading_zeros()
}

fn self_signed(cert: &X509Certificate<'_>) -> bool {
    let tbs = &cert.tbs_certificate;
    if tbs.subject.as_raw() != tbs.issuer.as_raw() {
        return false;
    }
    let mut ski = None;
    let mut aki = None;
    for ext in tbs.extensions() {
        match ext.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => ski = Some(id.0),
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|id| id.0)
            }
            _ => {}
        }
    }
    match (ski, aki) {
        (Some(ski), Some(aki)) => ski == aki,
        _ => true,
    }
}

fn serial_hex(raw: &[u8]) -> String {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    if start == raw.len() {
        return "0".into();
    }
    hex(&raw[start..])
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").expect("formatting into a String cannot fail");
    }
    s
}

/// `2026-11-30T18:48:10Z`: certificate times are to the second.
fn rfc3339(time: &ASN1Time) -> String {
    let t = time.to_datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Seconds since the Unix epoch of an RFC 3339 time this module wrote (`...T..:..:..Z`);
/// the census compares validity with the capture's end through it.
pub fn unix_seconds(rfc3339: &str) -> Option<i64> {
    let b = rfc3339.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { rfc3339.get(r)?.parse().ok() };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = crate::time::days_from_civil(y, m, d);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_of_known_dates() {
        // `date -u -d 2026-11-30T18:48:10Z +%s`
        assert_eq!(unix_seconds("2026-11-30T18:48:10Z"), Some(1_796_064_490));
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d 2000-02-29T12:00:00Z +%s`
        assert_eq!(unix_seconds("2000-02-29T12:00:00Z"), Some(951_825_600));
        assert_eq!(unix_seconds("1950-01-01T00:00:00Z"), Some(-631_152_000));
        assert_eq!(unix_seconds("garbage"), None);
    }

    #[test]
    fn significant_bits_skip_leading_zeros() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01, 0xff]), 9);
        assert_eq!(significant_bits(&[]), 0);
    }

    #[test]
    fn broken_lists_say_why() {
        let chain = parse_chain(&[0, 0, 5, 0, 0], 5, true);
        assert_eq!(chain.chain_length, None);
        assert!(chain.leaf_error.is_some());
        let empty = parse_chain(&[0, 0, 0], 3, true);
        assert_eq!((empty.chain_length, empty.leaf_error), (Some(0), None));
    }
}
