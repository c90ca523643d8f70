//! Software hints: which programs public fingerprint data saw sending a client's JA3.
//!
//! The table is `data/software_hints.tsv`, built by `tools/make_software_hints.py` from
//! cisco/mercury's fingerprint database (its header states source, commit and licence).
//! Matching is exact on the JA3 MD5 the census keeps per service. A hint says how often the
//! source saw that program send that hello — many programs share one TLS stack and so one
//! fingerprint — so it is a lead for the admin, never a certainty.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Serialize;

use super::Client;

/// The table, embedded so the binary needs no data files at run time.
const TABLE: &str = include_str!("../../data/software_hints.tsv");

/// What the `source` key of a hint says.
pub const SOURCE: &str = "mercury@84c6462";

/// Share of the source's sightings of a JA3 (percent) that one program must account for to
/// be named. Fingerprints identify TLS stacks, not programs: OpenSSL's default hello is sent
/// by every program built on it, and the source names whichever it happened to see most
/// (for OpenSSL 3's, KakaoTalk.exe). A program that sent nearly all of a fingerprint's
/// sightings is a fair lead; a shared one would name the wrong program, so it is left out.
pub const DOMINANT_SHARE_PERCENT: u64 = 90;

/// Most hints shown per client.
pub const MAX_HINTS: usize = 3;

/// One line of the table: a program the source saw sending a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// ClientHello `legacy_version` of the fingerprint (0x0301 for a TLS 1.0 hello).
    pub legacy_version: u16,
    /// Sightings of the fingerprint by any program.
    pub total: u64,
    pub process: &'static str,
    pub os: &'static str,
    /// Sightings of the fingerprint from this program.
    pub seen: u64,
}

/// A hint as reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hint {
    pub name: &'static str,
    pub os: &'static str,
    /// How often the source saw this program send the fingerprint.
    pub seen: u64,
    /// How often the source saw the fingerprint at all.
    pub total: u64,
    pub source: &'static str,
    /// The JA3 the hint matched.
    pub ja3: String,
    /// The well-known fix for the program's family, when the fingerprint offers no TLS 1.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<&'static str>,
}

/// JA3 → entries, most seen first. Lines that do not parse are skipped (a unit test checks
/// that none do in the table shipped). Hashed with foldhash: a report looks up every JA3 of
/// every client, and SipHash was most of what that cost.
fn table() -> &'static HashMap<&'static str, Vec<Entry>, foldhash::fast::RandomState> {
    static TABLE_MAP: OnceLock<HashMap<&'static str, Vec<Entry>, foldhash::fast::RandomState>> =
        OnceLock::new();
    TABLE_MAP.get_or_init(|| {
        let mut map: HashMap<&str, Vec<Entry>, _> = HashMap::default();
        for (ja3, entry) in TABLE.lines().filter_map(parse_line) {
            map.entry(ja3).or_default().push(entry);
        }
        for entries in map.values_mut() {
            entries.sort_by(|a, b| b.seen.cmp(&a.seen).then(a.process.cmp(b.process)));
        }
        map
    })
}

/// `ja3 legacy_version total process os seen`, tab-separated; `#` starts a comment.
fn parse_line(line: &'static str) -> Option<(&'static str, Entry)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != 6 || f[0].len() != 32 {
        return None;
    }
    Some((
        f[0],
        Entry {
            legacy_version: u16::from_str_radix(f[1], 16).ok()?,
            total: f[2].parse().ok()?,
            process: f[3],
            os: f[4],
            seen: f[5].parse().ok()?,
        },
    ))
}

/// The table's entries for one JA3 (lower-case hex MD5), most seen first.
pub fn lookup(ja3: &str) -> &'static [Entry] {
    table().get(ja3).map_or(&[], Vec::as_slice)
}

/// The program that sent at least [`DOMINANT_SHARE_PERCENT`] of the source's sightings of
/// a JA3, if one did.
pub fn dominant(ja3: &str) -> Option<&'static Entry> {
    lookup(ja3)
        .first()
        .filter(|e| e.seen.saturating_mul(100) >= e.total.saturating_mul(DOMINANT_SHARE_PERCENT))
}

/// The fix for a family that offers no TLS 1.2 by default and whose remedy is well known.
pub fn advice(entry: &Entry) -> Option<&'static str> {
    if entry.legacy_version >= 0x0303 {
        return None;
    }
    // Compared without case, without a lowered copy of the name per hint.
    let name = entry.process;
    if name
        .as_bytes()
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case(b"java"))
    {
        return Some(
            "Java 7 and older: enable TLS 1.2 explicitly (-Dhttps.protocols=TLSv1.2, \
             -Djdk.tls.client.protocols=TLSv1.2, or SSLContext.getInstance(\"TLSv1.2\")), \
             or move to Java 8+",
        );
    }
    if [
        "powershell.exe",
        "powershell_ise.exe",
        "w3wp.exe",
        "msbuild.exe",
    ]
    .iter()
    .any(|known| name.eq_ignore_ascii_case(known))
    {
        return Some(
            ".NET Framework 3.5/4.x: set SystemDefaultTlsVersions=1 and SchUseStrongCrypto=1 \
             under HKLM\\SOFTWARE\\Microsoft\\.NETFramework\\v2.0.50727 and v4.0.30319 (and \
             Wow6432Node)",
        );
    }
    let os = entry.os;
    if os.starts_with("Windows 7") || os.contains("2008 R2") || os.contains(" 6.1.") {
        return Some(
            "Windows 7 / Server 2008 R2, for programs on Windows' own TLS (Schannel, WinHTTP): \
             enable TLS 1.2 (SCHANNEL\\Protocols registry keys; KB3140245) and set WinHttp \
             DefaultSecureProtocols (0xA80)",
        );
    }
    None
}

/// A client's hints: the [`dominant`] program of every JA3 it sent (on any service), the
/// most seen first, at most [`MAX_HINTS`], one per program and OS.
pub fn hints(client: &Client) -> Vec<Hint> {
    let mut found = Vec::new();
    for s in client.services.values() {
        add_candidates(&mut found, s);
    }
    choose(found)
}

/// The [`dominant`] programs of one service's JA3s, added to `found` for [`choose`]: the
/// census's classification gathers them in its one pass over each client's counts
/// ([`super::ClientSummary`]), which reads them from cold memory.
pub(crate) fn add_candidates<'a>(
    found: &mut Vec<(&'a str, &'static Entry)>,
    s: &'a super::ServiceCountsInner,
) {
    for ja3 in s.ja3().values.keys() {
        found.extend(dominant(ja3).map(|e| (ja3, e)));
    }
}

/// The hints of a client's [`add_candidates`]: the most seen first, at most
/// [`MAX_HINTS`], one per program and OS.
pub(crate) fn choose(mut all: Vec<(&str, &'static Entry)>) -> Vec<Hint> {
    if all.is_empty() {
        return Vec::new();
    }
    all.sort_by(|(ja, a), (jb, b)| {
        b.seen
            .cmp(&a.seen)
            .then(a.process.cmp(b.process))
            .then(ja.cmp(jb))
    });
    let mut out: Vec<Hint> = Vec::new();
    for (ja3, e) in all {
        if out.len() == MAX_HINTS {
            break;
        }
        if out.iter().any(|h| h.name == e.process && h.os == e.os) {
            continue;
        }
        out.push(Hint {
            name: e.process,
            os: e.os,
            seen: e.seen,
            total: e.total,
            source: SOURCE,
            ja3: ja3.to_string(),
            advice: advice(e),
        });
    }
    out
}

/// `name (os; seen 12 of 40, mercury@84c6462); ...` for one-cell reports.
pub fn summary(hints: &[Hint]) -> String {
    hints
        .iter()
        .map(|h| {
            let os = if h.os.is_empty() { "" } else { h.os };
            let sep = if os.is_empty() { "" } else { "; " };
            format!(
                "{} ({os}{sep}seen {} of {}, {})",
                h.name, h.seen, h.total, h.source
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The distinct fixes of a client's hints, `; `-joined.
pub fn advice_summary(hints: &[Hint]) -> String {
    let mut fixes: Vec<&str> = hints.iter().filter_map(|h| h.advice).collect();
    fixes.dedup();
    fixes.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every data line of the shipped table parses; the header names its source and licence.
    #[test]
    fn the_shipped_table_parses_and_states_its_source() {
        let data_lines = TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
        let mut n = 0;
        for line in data_lines {
            assert!(parse_line(line).is_some(), "{line:?}");
            n += 1;
        }
        assert!(n > 1000, "{n} lines");
        assert!(TABLE.contains("84c64620e0f8111dbb455e0258e17e6946060753"));
        assert!(TABLE.contains("BSD 3-Clause"));
    }

    /// The first fingerprint of mercury's database (sfc.exe on Windows 10, 2,001,758,132
    /// sightings of 2,002,592,247 in the source line), its JA3 string written by hand from
    /// the str_repr (see tools/test_make_software_hints.py) and hashed here.
    #[test]
    fn a_hand_converted_mercury_entry_is_found() {
        let ja3 = "771,49200-49196-49192-49188-165-161-159-107-105-104-49202-49198-49194-\
                   49190-157-61-49199-49195-49191-49187-164-160-158-103-63-62-49201-49197-\
                   49193-49189-156-60-255,11-10-35-13-15,23-25-28-27-24-26-22-14-13-11-12-9-\
                   10,0-1-2";
        let hash = crate::tls::fingerprint::ja3_of_string(ja3);
        let entries = lookup(&hash);
        let sfc = entries
            .iter()
            .find(|e| e.process == "sfc.exe")
            .expect("sfc.exe");
        assert_eq!(sfc.seen, 2_001_758_132);
        assert!(sfc.total >= 2_002_592_247);
        assert!(sfc.os.starts_with("Windows 10 Enterprise"));
        assert_eq!(advice(sfc), None, "a TLS 1.2 hello needs no fix");
    }

    #[test]
    fn families_with_a_known_fix_get_it_only_without_tls12() {
        let e = |process: &'static str, os: &'static str, v: u16| Entry {
            legacy_version: v,
            total: 2,
            process,
            os,
            seen: 1,
        };
        assert!(advice(&e("java.exe", "Windows 10", 0x0301))
            .unwrap()
            .contains("Java 7"));
        assert!(
            advice(&e("OUTLOOK.EXE", "Windows 7 Enterprise 6.1.7601", 0x0301))
                .unwrap()
                .contains("DefaultSecureProtocols")
        );
        assert!(advice(&e("powershell.exe", "Windows 10", 0x0301))
            .unwrap()
            .contains("SchUseStrongCrypto"));
        assert_eq!(advice(&e("java.exe", "Windows 7", 0x0303)), None);
        assert_eq!(advice(&e("curl", "Mojave", 0x0301)), None);
    }
}
