//! The "what if" policy: which clients would fail if the servers enforced it.
//!
//! `--policy min-version=TLSv1.2` (the default) and `--policy forbid=SUITES`, where SUITES
//! is a comma-separated list of IANA names (`TLS_RSA_WITH_3DES_EDE_CBC_SHA`), codes
//! (`0x000a`) or the word `weak` (every suite of [`super::ciphers::WEAK`]). Each connection
//! is judged by what its client *offered*, since that is what the client can do once the
//! server changes: a connection fails the policy when the client's highest offered version
//! is below the minimum, or when every suite it offered is forbidden.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::ciphers;
use super::version::{parse_version, version_name};
use crate::record::ClientHelloRecord;
use crate::tls::hello::is_grease;

/// TLS_EMPTY_RENEGOTIATION_INFO_SCSV and TLS_FALLBACK_SCSV: signals, not suites.
const SCSV: [u16; 2] = [0x00ff, 0x5600];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Lowest version the servers would accept (`TLSv1.2`), or none.
    pub min_version: Option<String>,
    /// Forbidden suites, as codes (`0x000a`), sorted.
    #[serde(default)]
    pub forbid: BTreeSet<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_version: Some("TLSv1.2".into()),
            forbid: BTreeSet::new(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("--policy {0:?}: expected min-version=VERSION or forbid=SUITE,...")]
    Syntax(String),
    #[error("--policy: unknown version {0:?} (use SSLv3, TLSv1.0, TLSv1.1, TLSv1.2, TLSv1.3)")]
    Version(String),
    #[error(
        "--policy: unknown cipher suite {0:?} (use an IANA name, a code like 0x000a, or weak)"
    )]
    Suite(String),
}

impl Policy {
    /// Build a policy from `--policy` arguments; with none, the default (min TLS 1.2).
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Policy, PolicyError> {
        let mut policy = Policy::default();
        for spec in specs {
            let spec = spec.as_ref();
            let (key, value) = spec
                .split_once('=')
                .ok_or_else(|| PolicyError::Syntax(spec.to_string()))?;
            match key.trim() {
                "min-version" | "min_version" => {
                    let value = value.trim();
                    if value.eq_ignore_ascii_case("none") {
                        policy.min_version = None;
                        continue;
                    }
                    let v = parse_version(value)
                        .ok_or_else(|| PolicyError::Version(value.to_string()))?;
                    policy.min_version = Some(version_name(v));
                }
                "forbid" | "forbid-ciphers" => {
                    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if item.eq_ignore_ascii_case("weak") {
                            for (code, _) in ciphers::WEAK {
                                policy.forbid.insert(ciphers::code(u32::from(*code)));
                            }
                            continue;
                        }
                        let code =
                            ciphers::lookup(item).ok_or_else(|| PolicyError::Suite(item.into()))?;
                        policy.forbid.insert(ciphers::code(code));
                    }
                }
                _ => return Err(PolicyError::Syntax(spec.to_string())),
            }
        }
        Ok(policy)
    }

    /// Why a connection with this ClientHello would fail under the policy, if it would.
    pub fn violation(&self, hello: &ClientHelloRecord) -> Option<String> {
        if let Some(min) = self.min_version.as_deref().and_then(parse_version) {
            if hello.max_version.0 < min {
                return Some(format!("offers at most {}", hello.max_version.name()));
            }
        }
        if !self.forbid.is_empty() {
            let mut offered = hello
                .cipher_suites
                .iter()
                .filter(|s| !is_grease(**s) && !SCSV.contains(s))
                .peekable();
            if offered.peek().is_some()
                && offered.all(|s| self.forbid.contains(&ciphers::code(u32::from(*s))))
            {
                return Some("offers only forbidden cipher suites".into());
            }
        }
        None
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(v) = &self.min_version {
            parts.push(format!("min-version={v}"));
        }
        if !self.forbid.is_empty() {
            parts.push(format!("forbid {} suites", self.forbid.len()));
        }
        if parts.is_empty() {
            parts.push("none".into());
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(Policy::parse::<&str>(&[]).unwrap(), Policy::default());
        let p = Policy::parse(&[
            "min-version=TLSv1.3",
            "forbid=TLS_RSA_WITH_RC4_128_SHA,0x000a",
        ])
        .unwrap();
        assert_eq!(p.min_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(p.forbid.iter().collect::<Vec<_>>(), ["0x0005", "0x000a"]);
        assert_eq!(
            Policy::parse(&["forbid=weak"]).unwrap().forbid.len(),
            ciphers::WEAK.len()
        );
        assert!(Policy::parse(&["min-version=TLSv9"]).is_err());
        assert!(Policy::parse(&["forbid=NOPE"]).is_err());
        assert!(Policy::parse(&["nonsense"]).is_err());
    }
}
