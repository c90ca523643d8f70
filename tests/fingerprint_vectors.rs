//! JA3 and JA4 against nDPI's expected outputs for its own test captures.
//!
//! For each nDPI capture, every ClientHello that tshark dissected (`truth/**.jsonl`) is rebuilt
//! as a [`ClientHello`]; its JA3 must equal the `JA3C` that nDPI's `result/*.out` printed for
//! the same flow (matched by transport and the unordered address/port pair), and the first two
//! sections of its JA4 (`JA4_a_JA4_b`) must equal nDPI's. JA4_c cannot be compared: the truth
//! has no signature algorithms.
//!
//! Where nDPI departs from the published JA4 text, the difference is named in [`NdpiQuirk`] with
//! the reason, and a mismatch is accepted only if that quirk, applied to our value, gives nDPI's.

use std::collections::HashMap;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde_json::Value;
use tlscensus::tls::fingerprint::{ja3, ja3s, ja4, Transport};
use tlscensus::tls::hello::{ClientHello, ServerHello};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");
const NDPI: &str = "nDPI/tests/cfgs/default";

fn corpus() -> PathBuf {
    let root = PathBuf::from(CORPUS);
    assert!(
        root.join(NDPI).join("result").is_dir() && root.join("truth").join(NDPI).is_dir(),
        "TLS capture corpus not found at {CORPUS} (expected {NDPI}/result and truth/{NDPI}); \
         see /work/shared/corpus/README.md"
    );
    root
}

/// Transport plus the unordered endpoint pair.
type FlowKey = (&'static str, SocketAddr, SocketAddr);

fn flow_key(proto: &'static str, a: SocketAddr, b: SocketAddr) -> FlowKey {
    if a <= b {
        (proto, a, b)
    } else {
        (proto, b, a)
    }
}

fn hex16(v: &Value) -> u16 {
    let s = v.as_str().unwrap_or_else(|| panic!("hex string expected, got {v}"));
    u16::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn list<T>(v: &Value, f: impl Fn(&Value) -> T) -> Vec<T> {
    v.as_array().map(|a| a.iter().map(f).collect()).unwrap_or_default()
}

fn int(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("integer expected, got {v}"))
}

/// Rebuilds the hello summary from tshark's fields (no signature algorithms in the truth).
fn client_hello(m: &Value) -> ClientHello {
    let alpn: Vec<String> = list(&m["alpn"], |v| v.as_str().unwrap_or_default().to_owned());
    ClientHello {
        record_version: m["record_version"].as_str().map_or(0, |_| hex16(&m["record_version"])),
        legacy_version: hex16(&m["client_version"]),
        supported_versions: list(&m["supported_versions"], hex16),
        cipher_suites: list(&m["cipher_suites"], hex16),
        extensions: list(&m["extensions"], |v| int(v) as u16),
        sni: m["sni"].as_str().map(str::to_owned),
        alpn_first_raw: alpn.first().map(|s| s.as_bytes().to_vec()),
        alpn,
        supported_groups: list(&m["supported_groups"], hex16),
        ec_point_formats: list(&m["ec_point_formats"], |v| int(v) as u8),
        key_share_groups: list(&m["key_share_groups"], |v| int(v) as u16),
        ..Default::default()
    }
}

fn endpoint(ip: &Value, port: &Value) -> SocketAddr {
    let ip: IpAddr = ip.as_str().and_then(|s| s.parse().ok()).expect("ip address");
    SocketAddr::new(ip, int(port) as u16)
}

/// ClientHellos of one capture, by flow, in capture order.
fn truth_hellos(path: &Path) -> HashMap<FlowKey, Vec<(ClientHello, Transport)>> {
    let mut out: HashMap<FlowKey, Vec<_>> = HashMap::new();
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let m: Value = serde_json::from_str(line).expect("truth line is JSON");
        if m["msg"] != "client_hello" {
            continue;
        }
        let (proto, transport) = match (m["transport"].as_str(), m["quic"].as_bool()) {
            (Some("tcp"), _) => ("TCP", Transport::Tcp),
            (Some("udp"), Some(true)) => ("UDP", Transport::Quic),
            (Some("udp"), _) => ("UDP", Transport::Dtls),
            _ => continue,
        };
        let key = flow_key(
            proto,
            endpoint(&m["src"], &m["sport"]),
            endpoint(&m["dst"], &m["dport"]),
        );
        out.entry(key)
            .or_default()
            .push((client_hello(&m), transport));
    }
    out
}

/// One flow line of an nDPI `.out` file that printed a JA3C or JA4.
struct NdpiFlow {
    line: String,
    proto: &'static str,
    /// Endpoints; the address is `None` where nDPI printed an invalid IPv6 text (it compresses
    /// two zero runs, e.g. `[2600:1901::7a0b::]`), and then only the port is matched.
    ends: [(Option<IpAddr>, u16); 2],
    ja3c: Option<String>,
    ja4: Option<String>,
}

fn bracket(line: &str, tag: &str) -> Option<String> {
    let start = line.find(tag)? + tag.len();
    let len = line[start..].find(']')?;
    Some(line[start..start + len].to_owned())
}

fn ndpi_flows(path: &Path) -> Vec<NdpiFlow> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines() {
        let (ja3c, ja4) = (bracket(line, "[JA3C: "), bracket(line, "[JA4: "));
        if ja3c.is_none() && ja4.is_none() {
            continue;
        }
        // "\t<n>\t<TCP|UDP> <a> <-> <b> [..." (or "->" for one-way flows).
        let words: Vec<&str> = line.split_whitespace().take(5).collect();
        let proto = match words.get(1) {
            Some(&"TCP") => "TCP",
            Some(&"UDP") => "UDP",
            _ => panic!("{}: unexpected flow line {line}", path.display()),
        };
        let end = |w: Option<&&str>| -> (Option<IpAddr>, u16) {
            let w = w.unwrap_or_else(|| panic!("{}: short line {line}", path.display()));
            if let Ok(sa) = w.parse::<SocketAddr>() {
                return (Some(sa.ip()), sa.port());
            }
            let port = w.rsplit(':').next().and_then(|p| p.parse().ok());
            (None, port.unwrap_or_else(|| panic!("{}: bad endpoint {w}", path.display())))
        };
        out.push(NdpiFlow {
            line: format!("{}:{}", path.file_name().unwrap().to_string_lossy(), words[0]),
            proto,
            ends: [end(words.get(2)), end(words.get(4))],
            ja3c,
            ja4,
        });
    }
    out
}

impl NdpiFlow {
    fn hellos<'a>(
        &self,
        truth: &'a HashMap<FlowKey, Vec<(ClientHello, Transport)>>,
    ) -> Option<&'a Vec<(ClientHello, Transport)>> {
        let fits = |(ip, port): (Option<IpAddr>, u16), sa: SocketAddr| {
            port == sa.port() && ip.is_none_or(|ip| ip == sa.ip())
        };
        let [a, b] = self.ends;
        truth.iter().find_map(|((proto, x, y), hellos)| {
            let hit = *proto == self.proto
                && ((fits(a, *x) && fits(b, *y)) || (fits(a, *y) && fits(b, *x)));
            hit.then_some(hellos)
        })
    }
}

/// Where nDPI (ndpiReader at commit 3b1286ab03b0, `ndpi_compute_ja4` in `src/lib/protocols/tls.c`)
/// departs from JA4.md. Each is re-derived here from the hello, independently of our code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum NdpiQuirk {
    /// JA4.md "SNI": `d` iff the SNI extension exists; nDPI prints `i` only when its
    /// numeric-IP-hostname risk is set (an SNI holding an IP literal) and `d` otherwise, even
    /// with no SNI at all.
    SniFromNumericHostRisk,
    /// JA4.md "ALPN Extension Value": first and last character of the first value; nDPI
    /// prints the first two bytes of the comma-joined list with its final byte cut off
    /// (`http/1.1` -> `ht`, a lone `h2` -> `h0`).
    AlpnFirstTwoBytes,
    /// JA4.md "Cipher hash": an empty list is `000000000000`; nDPI hashes the empty string.
    EmptyListHashed,
}

/// The JA4_a fields (protocol, version, SNI, cipher count, extension count, ALPN), JA4_b and
/// JA4_c.
fn ja4_fields(ja4: &str) -> Option<[&str; 8]> {
    let mut parts = ja4.split('_');
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    (a.len() == 10 && a.is_ascii()).then(|| {
        [&a[0..1], &a[1..3], &a[3..4], &a[4..6], &a[6..8], &a[8..10], b, c]
    })
}

/// What nDPI prints under `quirk`: the indexes in [`ja4_fields`] it affects, and the value.
fn ndpi_field(quirk: NdpiQuirk, ch: &ClientHello) -> (&'static [usize], String) {
    match quirk {
        NdpiQuirk::SniFromNumericHostRisk => {
            let numeric = ch.sni.as_deref().is_some_and(|s| s.parse::<IpAddr>().is_ok());
            (&[2], if numeric { "i" } else { "d" }.to_owned())
        }
        NdpiQuirk::AlpnFirstTwoBytes => {
            let mut joined = ch.alpn.join(",").into_bytes();
            joined.pop();
            let at = |i: usize| joined.get(i).map_or('0', |b| char::from(*b));
            (&[5], [at(0), at(1)].iter().collect())
        }
        NdpiQuirk::EmptyListHashed => (&[6, 7], "e3b0c44298fc".to_owned()),
    }
}

/// Explains every field where nDPI's JA4 differs from ours by a quirk, or names the first field
/// that no quirk explains. JA4_c is compared only when `with_c`.
fn explain(ours: &str, ndpi: &str, ch: &ClientHello, with_c: bool) -> Result<Vec<NdpiQuirk>, String> {
    const NAMES: [&str; 8] = ["protocol", "version", "sni", "ciphers", "extensions", "alpn", "b", "c"];
    let (Some(o), Some(n)) = (ja4_fields(ours), ja4_fields(ndpi)) else {
        return Err(format!("unparsable {ours} / {ndpi}"));
    };
    let quirks = [
        NdpiQuirk::SniFromNumericHostRisk,
        NdpiQuirk::AlpnFirstTwoBytes,
        NdpiQuirk::EmptyListHashed,
    ];
    let mut used = Vec::new();
    for i in (0..if with_c { 8 } else { 7 }).filter(|&i| o[i] != n[i]) {
        let hit = quirks.iter().find(|&&q| {
            let (at, value) = ndpi_field(q, ch);
            at.contains(&i)
                && value == n[i]
                && (q != NdpiQuirk::EmptyListHashed || o[i] == "000000000000")
        });
        match hit {
            Some(q) => used.push(*q),
            None => return Err(format!("{} {} vs nDPI {}", NAMES[i], o[i], n[i])),
        }
    }
    Ok(used)
}

/// `JA4_a_JA4_b`: the part of JA4 that does not need signature algorithms.
fn ja4_ab(ja4: &str) -> &str {
    ja4.rfind('_').map_or(ja4, |i| &ja4[..i])
}

#[test]
fn ndpi_ja3_and_ja4_ab() {
    let root = corpus();
    let results = root.join(NDPI).join("result");
    let mut outs: Vec<PathBuf> = fs::read_dir(&results)
        .expect("nDPI result dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .collect();
    outs.sort();

    let (mut ja3_cmp, mut ja3_ok, mut ja4_cmp, mut ja4_ok, mut no_truth) = (0, 0, 0, 0, 0);
    let (mut ja4_quirk, mut ja4_full) = (0, 0);
    let mut quirk_count: std::collections::BTreeMap<NdpiQuirk, usize> = Default::default();
    let mut failures = Vec::new();
    for out in &outs {
        let name = out.file_stem().unwrap().to_string_lossy().into_owned();
        let truth_path = root.join("truth").join(NDPI).join("pcap").join(format!("{name}.jsonl"));
        if !truth_path.is_file() {
            panic!("no truth for {name}: {}", truth_path.display());
        }
        let truth = truth_hellos(&truth_path);
        for flow in ndpi_flows(out) {
            let Some(hellos) = flow.hellos(&truth) else {
                no_truth += 1;
                eprintln!("no tshark ClientHello for {}", flow.line);
                continue;
            };
            if let Some(want) = &flow.ja3c {
                ja3_cmp += 1;
                let got: Vec<String> = hellos.iter().map(|(ch, _)| ja3(ch)).collect();
                if got.contains(want) {
                    ja3_ok += 1;
                } else {
                    failures.push(format!("{} JA3C nDPI {want} ours {got:?}", flow.line));
                }
            }
            if let Some(want) = &flow.ja4 {
                ja4_cmp += 1;
                // Without a signature_algorithms extension the truth lacks nothing, so JA4_c is
                // compared as well.
                let with_c = |ch: &ClientHello| !ch.extensions.contains(&0x000d);
                let got: Vec<String> = hellos.iter().map(|(ch, t)| ja4(ch, *t)).collect();
                let same = |(ch, g): (&(ClientHello, Transport), &String)| {
                    if with_c(&ch.0) {
                        g == want
                    } else {
                        ja4_ab(g) == ja4_ab(want)
                    }
                };
                if let Some((ch, _)) = hellos.iter().zip(&got).find(|x| same(*x)) {
                    ja4_ok += 1;
                    ja4_full += usize::from(with_c(&ch.0));
                    continue;
                }
                // Accept the first hello whose every difference is a named nDPI quirk.
                let explained = hellos
                    .iter()
                    .zip(&got)
                    .map(|((ch, _), g)| explain(g, want, ch, with_c(ch)));
                match explained.clone().find_map(Result::ok) {
                    Some(qs) => {
                        ja4_quirk += 1;
                        for q in qs {
                            *quirk_count.entry(q).or_insert(0) += 1;
                        }
                    }
                    None => {
                        let why: Vec<String> = explained.filter_map(Result::err).collect();
                        failures.push(format!("{} JA4 nDPI {want} ours {got:?}: {why:?}", flow.line));
                    }
                }
            }
        }
    }
    eprintln!(
        "JA3: {ja3_ok}/{ja3_cmp} match; JA4 a_b: {ja4_ok}/{ja4_cmp} match \
         ({ja4_full} of them in full, having no signature algorithms), {ja4_quirk} differ \
         only by nDPI quirks {quirk_count:?}; {no_truth} nDPI flows without a tshark ClientHello"
    );
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(failures.is_empty(), "{} mismatches", failures.len());
}
