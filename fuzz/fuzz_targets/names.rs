#![no_main]
//! The name-service readers (DNS/mDNS/LLMNR answers, NetBIOS-NS, DHCP) over arbitrary
//! bytes, alone and inside a UDP frame: never panic, bounded output.

use libfuzzer_sys::fuzz_target;
use tlscensus::names::{self, dhcp, dns, netbios, NameStats};

fuzz_target!(|data: &[u8]| {
    if let Ok(bindings) = dns::bindings(data) {
        // At most 64 records are read, each naming one address.
        assert!(bindings.len() <= 64);
    }
    let mut out = Vec::new();
    netbios::names(data, "192.0.2.1".parse().unwrap(), &mut out);
    dhcp::names(data, &mut out);
    let mut stats = NameStats::default();
    for link_type in [0, 1, 101, 113, 276] {
        names::names_in_frame(link_type, data, &mut out, &mut stats);
    }
    assert!(stats.malformed <= stats.messages);
});
