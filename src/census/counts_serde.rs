//! A client's counts on a service ([`ServiceCountsInner`]) as the JSON report writes and
//! reads them: one flat object, whatever the counts keep inline or in their
//! [`super::Uncommon`] box.
//!
//! The report's format is a public interface: [`Out`] has every key the counts were ever
//! written with, in the order they always were, and [`In`] reads what it always read
//! (the same keys required, the same ones defaulted when missing).

use serde::{Deserialize, Serialize};

use super::capped::{Capped, CappedSet};
use super::counts::CountMap;
use super::seen::Seen;
use super::{ServiceCountsInner, Set};

/// The counts as written, borrowed.
#[derive(Debug, Serialize)]
pub(super) struct Out<'a> {
    connections: u64,
    negotiated: &'a CountMap,
    max_offered: &'a CountMap,
    plaintext: u64,
    failed: u64,
    failures: &'a CountMap,
    plaintext_reasons: &'a CountMap,
    incomplete: u64,
    server_limited: u64,
    weak_cipher: u64,
    policy_failures: &'a CountMap,
    first_seen: Option<Seen<'a>>,
    last_seen: Option<Seen<'a>>,
    cipher_suites: Capped<'a>,
    sni: Capped<'a>,
    alpn: Capped<'a>,
    ja4: Capped<'a>,
    servers: Capped<'a>,
    ja3: Capped<'a>,
    sources: &'a CountMap,
    negotiated_only: u64,
    log_negotiated: &'a CountMap,
    log_policy_failures: &'a CountMap,
}

impl<'a> Out<'a> {
    pub fn of(s: &'a ServiceCountsInner) -> Self {
        Out {
            connections: s.connections,
            negotiated: &s.negotiated,
            max_offered: &s.max_offered,
            plaintext: s.plaintext(),
            failed: s.failed(),
            failures: s.failures(),
            plaintext_reasons: s.plaintext_reasons(),
            incomplete: s.incomplete(),
            server_limited: s.server_limited(),
            weak_cipher: s.weak_cipher(),
            policy_failures: &s.policy_failures,
            first_seen: s.first_seen(),
            last_seen: s.last_seen(),
            cipher_suites: s.cipher_suites(),
            sni: s.sni(),
            alpn: s.alpn(),
            ja4: s.ja4(),
            servers: s.servers(),
            ja3: s.ja3(),
            sources: &s.sources,
            negotiated_only: s.negotiated_only(),
            log_negotiated: s.log_negotiated(),
            log_policy_failures: s.log_policy_failures(),
        }
    }
}

/// The counts as read. Named as the struct that was derived, so that a report that does
/// not parse gets the message it always got.
#[derive(Deserialize)]
#[serde(rename = "ServiceCountsInner")]
pub(super) struct In {
    connections: u64,
    negotiated: CountMap,
    max_offered: CountMap,
    plaintext: u64,
    failed: u64,
    #[serde(default)]
    failures: CountMap,
    #[serde(default)]
    plaintext_reasons: CountMap,
    #[serde(default)]
    incomplete: u64,
    #[serde(default)]
    server_limited: u64,
    #[serde(default)]
    weak_cipher: u64,
    #[serde(default)]
    policy_failures: CountMap,
    first_seen: Option<String>,
    last_seen: Option<String>,
    #[serde(default)]
    cipher_suites: CappedSet,
    #[serde(default)]
    sni: CappedSet,
    #[serde(default)]
    alpn: CappedSet,
    #[serde(default)]
    ja4: CappedSet,
    #[serde(default)]
    servers: CappedSet,
    #[serde(default)]
    ja3: CappedSet,
    #[serde(default)]
    sources: CountMap,
    #[serde(default)]
    negotiated_only: u64,
    #[serde(default)]
    log_negotiated: CountMap,
    #[serde(default)]
    log_policy_failures: CountMap,
}

impl In {
    /// The counts, exactly as read (a set is kept whole even beyond its cap, as it always
    /// was: merging it into a census applies the cap).
    pub fn into_counts(self) -> ServiceCountsInner {
        let mut s = ServiceCountsInner {
            connections: self.connections,
            negotiated: self.negotiated,
            max_offered: self.max_offered,
            policy_failures: self.policy_failures,
            sources: self.sources,
            ..ServiceCountsInner::default()
        };
        let uncommon = super::Uncommon {
            failed: self.failed,
            failures: self.failures,
            plaintext: self.plaintext,
            plaintext_reasons: self.plaintext_reasons,
            incomplete: self.incomplete,
            server_limited: self.server_limited,
            weak_cipher: self.weak_cipher,
            negotiated_only: self.negotiated_only,
            log_negotiated: self.log_negotiated,
            log_policy_failures: self.log_policy_failures,
            overflow: None,
        };
        if uncommon != *s.uncommon() {
            s.uncommon = Some(Box::new(uncommon));
        }
        let sets = [
            (Set::CipherSuites, self.cipher_suites),
            (Set::Sni, self.sni),
            (Set::Alpn, self.alpn),
            (Set::Ja4, self.ja4),
            (Set::Servers, self.servers),
            (Set::Ja3, self.ja3),
        ];
        for (set, read) in sets {
            s.sets[set as usize] = read.values;
            if read.other > 0 {
                s.uncommon_mut().overflow_mut().other[set as usize] = read.other;
            }
        }
        if let Some(first) = &self.first_seen {
            s.set_seen(super::End::First, Seen::of(first));
        }
        if let Some(last) = &self.last_seen {
            s.set_seen(super::End::Last, Seen::of(last));
        }
        s
    }
}
