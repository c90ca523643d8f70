//! The certificate inventory: per server address and service, the leaf certificates its
//! TLS ≤ 1.2 handshakes presented, and what an admin must act on (expired, expiring within
//! 30 or 60 days, RSA below 2048 bits, SHA-1 signature, self-signed).
//!
//! Memory is bounded per server and service: at most [`CAP_CERTIFICATES`] certificates are
//! kept, the first by SHA-256 fingerprint (as [`super::capped`] keeps values: the kept set is
//! independent of arrival order, so merged reports equal one run), the rest counted.
//! The flags are not stored: they depend on the capture's end, known only when a report is
//! written, and are computed then ([`Inventory::rows`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::record::Record;
use crate::tls::certificate::{unix_seconds, LeafCertificate};

/// Most distinct certificates kept per server and service (a server presents one or two;
/// a load-balanced name a few more).
pub const CAP_CERTIFICATES: usize = 8;

/// Most SAN entries kept per certificate (CDN certificates carry hundreds).
pub const CAP_SAN: usize = 32;

const DAY: i64 = 86_400;

/// Signature algorithms that hash with SHA-1 (RFC 3279, RFC 5758 lists the successors):
/// sha1WithRSAEncryption, ecdsa-with-SHA1, dsa-with-sha1, and the old OIW sha1WithRSA.
const SHA1_SIGNATURES: [&str; 4] = [
    "1.2.840.113549.1.1.5",
    "1.2.840.10045.4.1",
    "1.2.840.10040.4.3",
    "1.3.14.3.2.29",
];

/// One server's certificates on one service.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServerCertificates {
    /// Connections whose Certificate message was seen (whole or in part).
    pub connections: u64,
    /// Of those, messages not seen whole (past the budget, or cut by a gap or the end).
    pub not_seen_whole: u64,
    /// Connections whose leaf could not be decoded (or was not seen whole).
    pub leaf_missing: u64,
    /// Leaf SHA-256 → what it says and how many connections presented it.
    pub certificates: BTreeMap<String, KeptCertificate>,
    /// Connections whose leaf fell outside the kept certificates.
    pub other: u64,
}

/// A leaf certificate and the connections that presented it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptCertificate {
    pub connections: u64,
    /// Longest chain seen with it (null if never seen whole).
    pub chain_length: Option<u32>,
    #[serde(flatten)]
    pub leaf: LeafCertificate,
}

/// Server address and service: the inventory's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServerService {
    pub server: IpAddr,
    pub service: String,
}

/// Every server's certificates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub servers: BTreeMap<ServerService, ServerCertificates>,
}

/// Why a certificate needs attention, as reports name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// `not_after` is before the capture's end.
    Expired,
    /// Expires within 30 days after the capture's end.
    Expiring30d,
    /// Expires within 60 days after the capture's end (includes the 30-day ones).
    Expiring60d,
    /// An RSA key below 2048 bits.
    RsaBelow2048,
    /// Signed with SHA-1.
    Sha1Signature,
    SelfSigned,
}

impl Flag {
    pub fn name(self) -> &'static str {
        match self {
            Flag::Expired => "expired",
            Flag::Expiring30d => "expiring_30d",
            Flag::Expiring60d => "expiring_60d",
            Flag::RsaBelow2048 => "rsa_below_2048",
            Flag::Sha1Signature => "sha1_signature",
            Flag::SelfSigned => "self_signed",
        }
    }

    pub const ALL: [Flag; 6] = [
        Flag::Expired,
        Flag::Expiring30d,
        Flag::Expiring60d,
        Flag::RsaBelow2048,
        Flag::Sha1Signature,
        Flag::SelfSigned,
    ];
}

/// The flags of a leaf, `end` being the capture's end (Unix seconds).
pub fn flags(leaf: &LeafCertificate, end: Option<i64>) -> Vec<Flag> {
    let mut out = Vec::new();
    if let (Some(end), Some(not_after)) = (end, unix_seconds(&leaf.not_after)) {
        if not_after < end {
            out.push(Flag::Expired);
        } else {
            if not_after <= end + 30 * DAY {
                out.push(Flag::Expiring30d);
            }
            if not_after <= end + 60 * DAY {
                out.push(Flag::Expiring60d);
            }
        }
    }
    if leaf.key_type.starts_with("RSA") && leaf.key_bits > 0 && leaf.key_bits < 2048 {
        out.push(Flag::RsaBelow2048);
    }
    if SHA1_SIGNATURES.contains(&leaf.signature_algorithm_oid.as_str()) {
        out.push(Flag::Sha1Signature);
    }
    if leaf.self_signed {
        out.push(Flag::SelfSigned);
    }
    out
}

/// One certificate of one server and service, as every report format shows it.
#[derive(Debug, Clone)]
pub struct CertificateRow<'a> {
    pub key: &'a ServerService,
    pub sha256: &'a str,
    pub kept: &'a KeptCertificate,
    pub flags: Vec<Flag>,
}

impl Inventory {
    /// Count one record's certificate.
    pub fn add(&mut self, record: &Record) {
        let Some(chain) = &record.certificate else {
            return;
        };
        let key = ServerService {
            server: record.server.ip,
            service: record.service.clone(),
        };
        let s = self.servers.entry(key).or_default();
        s.connections += 1;
        s.not_seen_whole += u64::from(!chain.seen_whole);
        let Some(leaf) = &chain.leaf else {
            s.leaf_missing += 1;
            return;
        };
        // A server presents the same leaf on every connection: count it without copying it.
        if s.count_kept(&leaf.sha256, 1, chain.chain_length) {
            return;
        }
        let kept = KeptCertificate {
            connections: 1,
            chain_length: chain.chain_length,
            leaf: trimmed(leaf),
        };
        s.add_kept(&leaf.sha256, kept);
    }

    /// Add another inventory, as if this run had seen its traffic too.
    pub fn merge(&mut self, other: &Inventory) {
        for (key, theirs) in &other.servers {
            let mine = self.servers.entry(key.clone()).or_default();
            mine.connections += theirs.connections;
            mine.not_seen_whole += theirs.not_seen_whole;
            mine.leaf_missing += theirs.leaf_missing;
            mine.other += theirs.other;
            for (sha256, kept) in &theirs.certificates {
                mine.add_kept(sha256, kept.clone());
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Every kept certificate with its flags against `end` (the capture's end, Unix
    /// seconds): flagged ones first, then by server and service.
    pub fn rows(&self, end: Option<i64>) -> Vec<CertificateRow<'_>> {
        let mut rows: Vec<CertificateRow<'_>> = self
            .servers
            .iter()
            .flat_map(|(key, s)| {
                s.certificates
                    .iter()
                    .map(move |(sha256, kept)| CertificateRow {
                        key,
                        sha256,
                        kept,
                        flags: flags(&kept.leaf, end),
                    })
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.flags.is_empty(), a.key, a.sha256).cmp(&(b.flags.is_empty(), b.key, b.sha256))
        });
        rows
    }

    /// Certificates (kept ones, per server and service) carrying each flag.
    pub fn flag_counts(&self, end: Option<i64>) -> BTreeMap<Flag, u64> {
        let mut counts = BTreeMap::new();
        for row in self.rows(end) {
            for flag in row.flags {
                *counts.entry(flag).or_default() += 1;
            }
        }
        counts
    }
}

impl ServerCertificates {
    /// Count more connections of a kept certificate; false when it is not kept.
    fn count_kept(&mut self, sha256: &str, connections: u64, chain_length: Option<u32>) -> bool {
        let Some(mine) = self.certificates.get_mut(sha256) else {
            return false;
        };
        mine.connections += connections;
        mine.chain_length = mine.chain_length.max(chain_length);
        true
    }

    /// Count a certificate's connections, keeping the first [`CAP_CERTIFICATES`] by
    /// fingerprint.
    fn add_kept(&mut self, sha256: &str, kept: KeptCertificate) {
        if self.count_kept(sha256, kept.connections, kept.chain_length) {
            return;
        }
        self.certificates.insert(sha256.to_string(), kept);
        while self.certificates.len() > CAP_CERTIFICATES {
            let (_, dropped) = self.certificates.pop_last().expect("over the cap");
            self.other += dropped.connections;
        }
    }
}

/// The leaf with its SAN lists capped at [`CAP_SAN`].
fn trimmed(leaf: &LeafCertificate) -> LeafCertificate {
    let mut leaf = leaf.clone();
    leaf.san_dns.truncate(CAP_SAN);
    leaf.san_ip.truncate(CAP_SAN);
    leaf
}

/// The capture's end as the census knows it: its last handshake (RFC 3339) in Unix seconds.
pub fn end_of(last_seen: Option<&str>) -> Option<i64> {
    unix_seconds(last_seen?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(not_after: &str, key_bits: u32, sig_oid: &str) -> LeafCertificate {
        LeafCertificate {
            subject: "CN=a".into(),
            issuer: "CN=b".into(),
            common_name: Some("a".into()),
            san_dns: vec![],
            san_ip: vec![],
            serial: "1".into(),
            not_before: "2020-01-01T00:00:00Z".into(),
            not_after: not_after.into(),
            key_type: "RSA".into(),
            key_bits,
            signature_algorithm: "x".into(),
            signature_algorithm_oid: sig_oid.into(),
            sha256: "00".into(),
            self_signed: false,
        }
    }

    /// The boundaries, by RFC 5280 4.1.2.5's reading of notAfter (valid through it).
    #[test]
    fn flags_follow_the_capture_end() {
        let end = unix_seconds("2026-01-01T00:00:00Z");
        let sha256 = "1.2.840.113549.1.1.11";
        let f = |na: &str| flags(&leaf(na, 2048, sha256), end);
        assert_eq!(f("2025-12-31T23:59:59Z"), [Flag::Expired]);
        assert_eq!(
            f("2026-01-31T00:00:00Z"),
            [Flag::Expiring30d, Flag::Expiring60d]
        );
        assert_eq!(f("2026-01-31T00:00:01Z"), [Flag::Expiring60d]);
        assert_eq!(f("2026-03-02T00:00:01Z"), []);
        assert_eq!(
            flags(
                &leaf("2030-01-01T00:00:00Z", 1024, "1.2.840.113549.1.1.5"),
                end
            ),
            [Flag::RsaBelow2048, Flag::Sha1Signature]
        );
    }

    #[test]
    fn keeps_the_first_certificates_by_fingerprint() {
        let mut s = ServerCertificates::default();
        for i in (0..20).rev() {
            let kept = KeptCertificate {
                connections: 1,
                chain_length: Some(2),
                leaf: leaf("2030-01-01T00:00:00Z", 2048, ""),
            };
            s.add_kept(&format!("{i:02}"), kept);
        }
        assert_eq!(s.certificates.len(), CAP_CERTIFICATES);
        assert_eq!(s.certificates.keys().next().map(String::as_str), Some("00"));
        assert_eq!(s.other, 20 - CAP_CERTIFICATES as u64);
    }
}
