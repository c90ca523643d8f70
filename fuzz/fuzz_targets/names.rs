#![no_main]
//! The name-service readers (DNS/mDNS/LLMNR answers, NetBIOS-NS, DHCP) over arbitrary
//! bytes, alone and as the engine meets them: the bytes as the payload of a UDP datagram
//! between each service's ports, through decode and the engine's name collector. Never
//! panic, bounded output.

use libfuzzer_sys::fuzz_target;
use tlscensus::census::names::{NameSource, CAP_NAMES};
use tlscensus::engine::{Config, Engine};
use tlscensus::names::{self, dhcp, dns, netbios, NameStats};
use tlscensus::source::{linktype, Packet};

const SERVICES: [(NameSource, u16, u16); 5] = [
    (NameSource::Dns, 53, 40000),
    (NameSource::Mdns, 5353, 5353),
    (NameSource::Llmnr, 5355, 40001),
    (NameSource::Netbios, 137, 137),
    (NameSource::Dhcp, 67, 68),
];

/// A raw IPv4 + UDP packet (checksums zero: the tool does not check them).
fn udp_packet(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = (20 + 8 + payload.len()) as u16;
    let mut p = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&(total - 20).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

fuzz_target!(|data: &[u8]| {
    if let Ok(bindings) = dns::bindings(data) {
        // At most 64 records are read, each naming one address.
        assert!(bindings.len() <= 64);
    }
    let mut out = Vec::new();
    let src = "192.0.2.1".parse().unwrap();
    netbios::names(data, src, &mut out);
    dhcp::names(data, &mut out);
    let mut stats = NameStats::default();
    for (source, ..) in SERVICES {
        names::names_in_message(source, src, data, &mut out, &mut stats);
    }
    assert!(stats.malformed <= stats.messages);

    let mut engine = Engine::new(Config::default());
    if data.len() > 65_000 {
        return;
    }
    for (n, (source, sport, dport)) in SERVICES.into_iter().enumerate() {
        assert_eq!(names::service_of(sport, dport), Some(source));
        let packet = udp_packet(sport, dport, data);
        let packet = Packet {
            ts_nanos: 1_700_000_000_000_000_000,
            link_type: linktype::RAW,
            data: &packet,
            orig_len: packet.len() as u32,
            frame_number: n as u64 + 1,
            interface: None,
            direction: None,
        };
        engine.packet(2 * n as u64 + 1, &packet, &mut |_| {});
    }
    let stats = engine.stats();
    assert_eq!(stats.names.messages, SERVICES.len() as u64);
    assert_eq!(stats.quic_datagrams, 0);
    let names = engine.take_names();
    assert!(names
        .by_address
        .values()
        .all(|set| set.iter().count() <= CAP_NAMES));
    assert!(engine.take_names().by_address.is_empty());
});
