//! What the TLS 1.0/1.1 shutdown will do to a client: its categories, most severe first.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::version::below_tls12;
use super::ServiceCounts;

/// A client's category. The order is the severity order: the first that applies is the
/// client's primary category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// On some connection it offered nothing above TLS 1.1: it breaks when TLS 1.0 and
    /// 1.1 are switched off. Also a client known only from logs that negotiated below
    /// TLS 1.2 (what it offers is unknown; see `would_fail_negotiated_only`).
    LegacyOnly,
    /// It offered TLS 1.2 or later but the server picked TLS 1.1 or lower: the server (or a
    /// middlebox) is the one to fix.
    ServerLimited,
    /// Handshakes that ended in an alert or got no ServerHello.
    Failing,
    /// The server picked an RC4, DES/3DES, NULL, EXPORT, anonymous or MD5 suite.
    WeakCipher,
    /// Mail sessions that never started TLS.
    NoTls,
    /// None of the above.
    Ok,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::LegacyOnly,
        Category::ServerLimited,
        Category::Failing,
        Category::WeakCipher,
        Category::NoTls,
        Category::Ok,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::LegacyOnly => "legacy-only",
            Category::ServerLimited => "server-limited",
            Category::Failing => "failing",
            Category::WeakCipher => "weak-cipher",
            Category::NoTls => "no-tls",
            Category::Ok => "ok",
        }
    }

    /// What to do about a client in this category, in one sentence.
    pub fn advice(self) -> &'static str {
        match self {
            Category::LegacyOnly => {
                "Will break when TLS 1.0/1.1 are disabled: update, reconfigure or replace \
                 the client (enable TLS 1.2 in its OS/runtime) before the change."
            }
            Category::ServerLimited => {
                "The client can do TLS 1.2 but the server side chose less: enable TLS 1.2 \
                 on the server, load balancer or middlebox first."
            }
            Category::Failing => {
                "Handshakes already fail (alert or no answer): find out why before the \
                 change, or its failures will be blamed on it."
            }
            Category::WeakCipher => {
                "Negotiates a broken cipher suite: remove RC4/3DES/NULL/EXPORT suites from \
                 the server and check the client still connects."
            }
            Category::NoTls => {
                "Mail sent without TLS: not affected by the version change, but the mail \
                 is readable on the wire; enable or require STARTTLS."
            }
            Category::Ok => "Nothing to do: TLS 1.2 or later with a sound suite.",
        }
    }

    pub fn is_at_risk(self) -> bool {
        self != Category::Ok
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which categories apply, as one bit per category in severity order: computed once per
/// client and service and combined with `|`, since the reports ask for the categories of
/// every client, of every client on each service, and of each service's clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Found(u8);

impl Found {
    /// The categories that apply to one client on one service.
    pub fn service(s: &ServiceCounts) -> Found {
        let bit = |set: bool, category: Category| if set { 1u8 << category as u8 } else { 0 };
        Found(
            bit(
                s.max_offered.iter().any(|(v, n)| n > 0 && below_tls12(v)) || s.legacy_by_logs(),
                Category::LegacyOnly,
            ) | bit(s.server_limited() > 0, Category::ServerLimited)
                | bit(s.failed() > 0, Category::Failing)
                | bit(s.weak_cipher() > 0, Category::WeakCipher)
                | bit(s.plaintext() > 0, Category::NoTls),
        )
    }

    /// The most severe category that applies; `Ok` when none does.
    pub fn primary(self) -> Category {
        Category::ALL
            .into_iter()
            .find(|c| self.0 & (1 << *c as u8) != 0)
            .unwrap_or(Category::Ok)
    }

    /// Every category that applies, most severe first; `[Ok]` when none does.
    pub fn categories(self) -> Categories {
        let mut out = Categories {
            list: [Category::Ok; Category::ALL.len()],
            len: 0,
        };
        for c in Category::ALL {
            if self.0 & (1 << c as u8) != 0 {
                out.list[out.len as usize] = c;
                out.len += 1;
            }
        }
        if out.len == 0 {
            out.len = 1;
        }
        out
    }
}

/// A list of categories, most severe first, held inline: a report keeps one for every
/// client and every row of a client on a service, tens of thousands of them, and a vector
/// each cost an allocation and 24 bytes more.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Categories {
    list: [Category; Category::ALL.len()],
    len: u8,
}

impl std::ops::Deref for Categories {
    type Target = [Category];

    fn deref(&self) -> &[Category] {
        &self.list[..self.len as usize]
    }
}

impl<'a> IntoIterator for &'a Categories {
    type Item = &'a Category;
    type IntoIter = std::slice::Iter<'a, Category>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Categories {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl std::ops::BitOr for Found {
    type Output = Found;

    fn bitor(self, other: Found) -> Found {
        Found(self.0 | other.0)
    }
}
