//! The JSON and HTML reports are streamed: writing them costs memory for one client at a
//! time, not for the whole report, and the bytes are those of the whole-report forms
//! (`json::to_value` pretty-printed, `html::render`). Memory is measured with an
//! instrumented global allocator, sampled at every write the report makes.

use std::alloc::System;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Mutex;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use tlscensus::census::{
    Census, CensusConfig, Client, ClientKey, Direction, ServiceCounts, ServiceCountsInner, Set,
};
use tlscensus::report::{html, json};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Bytes allocated and not yet freed, by the whole process.
fn live() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// A writer that keeps nothing and notes the most memory in use at any of its writes.
struct PeakSink {
    start: isize,
    peak: isize,
    bytes: usize,
}

impl PeakSink {
    fn new() -> Self {
        PeakSink {
            start: live(),
            peak: 0,
            bytes: 0,
        }
    }
}

impl Write for PeakSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.peak = self.peak.max(live() - self.start);
        self.bytes += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn hour(i: usize) -> String {
    format!("2024-05-{:02}T{:02}:00Z", 1 + i / 24 % 28, i % 24)
}

/// A census of `n` clients on one to three services, with addresses whose text order is
/// not their numeric order, IPv6 and load-balanced clients, and strings that need escaping.
fn census(n: usize) -> Census {
    let mut census = Census::new(CensusConfig::default());
    let services = ["https", "smtp", "imaps", "tcp/8443 \"odd\"\n"];
    for i in 0..n {
        let ip: IpAddr = if i % 5 == 0 {
            format!("2001:db8::{:x}", i).parse().unwrap()
        } else {
            format!("{}.{}.{}.{}", 1 + i % 200, i / 200 % 256, i % 7, i % 251)
                .parse()
                .unwrap()
        };
        let key = ClientKey {
            ip,
            via: (i % 11 == 0).then(|| "192.0.2.9".parse().unwrap()),
            direction: [Direction::Inbound, Direction::Outbound, Direction::Other][i % 3],
        };
        let mut client = Client::default();
        for s in 0..=(i % 3) {
            let name = services[(i + s) % services.len()];
            let version = ["TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"][(i + s) % 4];
            let mut c = ServiceCountsInner::default();
            c.connections = 1 + (i % 13) as u64;
            if i % 9 == 0 {
                c.uncommon_mut().plaintext = 1;
            }
            if i % 17 == 0 {
                c.uncommon_mut().incomplete = 1;
            }
            c.see(&format!("{}:{:02}.123456Z", &hour(i)[..14], i % 60));
            c.see(&format!("{}:59.999999Z", &hour(i + 3)[..14]));
            c.negotiated.insert(version.into(), c.connections);
            c.max_offered.insert("TLSv1.3".into(), c.connections);
            if i % 4 == 0 {
                let u = c.uncommon_mut();
                u.failed = 1;
                u.failures.insert("server alert protocol_version".into(), 1);
            }
            if version < "TLSv1.2" {
                c.policy_failures
                    .insert(format!("{version} below TLSv1.2"), 1);
            }
            c.add_to(Set::Sni, &format!("host-{}.example.org\t\"ü\"", i % 97));
            c.add_to(Set::Alpn, "h2");
            c.add_to(Set::Ja4, &format!("t13d1516h2_{i:012x}"));
            c.add_to(Set::CipherSuites, "0xc02f");
            c.add_to(Set::Servers, &format!("10.0.{}.1", i % 3));
            client
                .services
                .insert(name.to_string(), ServiceCounts::from(c));
        }
        census.clients.insert(key, client);
    }
    for (i, server) in [
        "9.0.0.1",
        "10.0.0.1",
        "10.0.0.10",
        "10.0.0.2",
        "::1",
        "fe80::2",
    ]
    .iter()
    .enumerate()
    {
        let l = census
            .latency_by_server
            .entry(server.parse().unwrap())
            .or_default();
        for us in 1..(50 * (i as u64 + 1)) {
            l.record(us * 37);
        }
    }
    // Latency of the services clients used (the report keeps it under their totals).
    let used: BTreeSet<String> = census
        .clients
        .values()
        .flat_map(|c| c.services.keys().cloned())
        .collect();
    for name in used {
        census
            .latency_by_service
            .entry(name)
            .or_default()
            .record(1500);
    }
    for i in 0..n.min(500) {
        let t = census.timeline.entry(hour(i)).or_default();
        t.insert("TLSv1.2".into(), i as u64);
        t.insert("failed".into(), 1);
    }
    census
}

/// The report as it was written before streaming: the whole value, pretty-printed.
fn whole(value: &serde_json::Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(value).unwrap();
    out.push(b'\n');
    out
}

fn streamed(census: &Census) -> Vec<u8> {
    let mut out = Vec::new();
    json::write(census, &mut out).unwrap();
    out
}

/// Held by every test: the allocator's counters are global, so the memory test must not
/// count what another test allocates meanwhile.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn streamed_json_is_the_whole_value_pretty_printed() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for n in [0, 1, 2, 57] {
        let census = census(n);
        let bytes = streamed(&census);
        assert!(
            bytes == whole(&json::to_value(&census)),
            "{n} clients:\n{}",
            String::from_utf8_lossy(&bytes)
        );
        // And `tlscensus merge` reads it back to the same census.
        let back = json::read(std::str::from_utf8(&bytes).unwrap()).unwrap();
        assert!(back == census, "{n} clients read back differ");
    }
    // Nothing at all.
    let empty = Census::default();
    assert!(streamed(&empty) == whole(&json::to_value(&empty)));
    assert!(json::read(std::str::from_utf8(&streamed(&empty)).unwrap()).unwrap() == empty);
}

#[test]
fn extra_keys_take_their_alphabetical_place() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let census = census(9);
    let mut extra = serde_json::Map::new();
    extra.insert(
        "capture".into(),
        serde_json::json!({"running": true, "interfaces": ["eth0"], "dropped_by_kernel": 0}),
    );
    extra.insert("zz_last".into(), serde_json::json!([]));
    extra.insert("format".into(), serde_json::json!("replaced"));
    let mut value = json::to_value(&census);
    for (k, v) in &extra {
        value.as_object_mut().unwrap().insert(k.clone(), v.clone());
    }
    let mut out = Vec::new();
    json::write_with(&census, &extra, &mut out).unwrap();
    assert!(out == whole(&value), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn html_page_is_the_rendered_page() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for n in [0, 3, 2000] {
        let census = census(n);
        let mut out = Vec::new();
        html::write(&census, &mut out).unwrap();
        assert!(out == html::render(&census).into_bytes(), "{n} clients");
    }
}

#[test]
fn reports_cost_one_client_at_a_time() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let census = census(5_000);

    // What the report costs held whole, for scale.
    let before = live();
    let value = json::to_value(&census);
    let whole_value = live() - before;
    drop(value);

    let mut sink = PeakSink::new();
    json::write(&census, &mut sink).unwrap();
    let json_peak = sink.peak;
    let json_bytes = sink.bytes;

    let mut sink = PeakSink::new();
    html::write(&census, &mut sink).unwrap();
    let html_peak = sink.peak;
    let html_bytes = sink.bytes;

    eprintln!(
        "5000 clients: JSON {json_bytes} bytes, whole value {whole_value} bytes, streamed peak \
         {json_peak}; HTML {html_bytes} bytes, streamed peak {html_peak}"
    );
    // The classified client list (some 250 bytes a client) is all that grows with the
    // census: a fraction of the report's value tree, and of the report itself.
    assert!(
        json_peak < whole_value / 5,
        "JSON: peak {json_peak} bytes while writing, the whole value is {whole_value}"
    );
    assert!(
        (json_peak as usize) < json_bytes / 3,
        "JSON: peak {json_peak} bytes while writing a report of {json_bytes}"
    );
    // Also the (client, service) rows; but not the page, which the writer once held whole.
    assert!(
        (html_peak as usize) < html_bytes,
        "HTML: peak {html_peak} bytes while writing a page of {html_bytes}"
    );
}
