//! Names of hosts from the UDP traffic of a capture: DNS answers (port 53), mDNS (5353),
//! LLMNR (5355), NetBIOS name service (137) and DHCP (67/68). The TLS pipeline reads TCP;
//! this stage reads the same frames for the few UDP messages that name an address, and
//! hands the census `(address, name, source)` triples (names only, never payloads).
//!
//! IP fragments and tunnels are not followed here (name-service messages are small and ride
//! in whole packets).

pub mod dhcp;
pub mod dns;
pub mod netbios;
pub mod resolve;

use std::net::IpAddr;
use std::path::Path;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use crate::census::names::{NameSource, Names};
use crate::source::{linktype, CaptureReader, SourceError};

/// A name learned from one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learned {
    pub address: IpAddr,
    pub name: String,
    pub source: NameSource,
}

/// Counts of what this stage saw, for `--stats` and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameStats {
    /// UDP messages on a name-service port that were read.
    pub messages: u64,
    /// Of those, messages that did not parse (counted, never fatal).
    pub malformed: u64,
    /// Names learned (before the census's caps).
    pub names: u64,
}

/// The UDP source address, ports and payload of a frame, or `None` for anything else.
fn udp_of(link_type: u32, frame: &[u8]) -> Option<(IpAddr, u16, u16, &[u8])> {
    let sliced = match link_type {
        linktype::ETHERNET => SlicedPacket::from_ethernet(frame),
        linktype::RAW | linktype::IPV4 | linktype::IPV6 => SlicedPacket::from_ip(frame),
        linktype::LINUX_SLL => SlicedPacket::from_linux_sll(frame),
        linktype::NULL | linktype::LOOP => SlicedPacket::from_ip(frame.get(4..)?),
        linktype::LINUX_SLL2 => {
            let ether_type = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
            SlicedPacket::from_ether_type(etherparse::EtherType(ether_type), frame.get(20..)?)
        }
        _ => return None,
    }
    .ok()?;
    let src = match sliced.net? {
        NetSlice::Ipv4(v4) => IpAddr::V4(v4.header().source_addr()),
        NetSlice::Ipv6(v6) => IpAddr::V6(v6.header().source_addr()),
        _ => return None,
    };
    match sliced.transport? {
        TransportSlice::Udp(udp) => Some((
            src,
            udp.source_port(),
            udp.destination_port(),
            udp.payload(),
        )),
        _ => None,
    }
}

/// The names one frame carries, appended to `out`.
pub fn names_in_frame(link_type: u32, frame: &[u8], out: &mut Vec<Learned>, stats: &mut NameStats) {
    // A cheap test first: most frames of a TLS capture are TCP.
    let Some((src, sport, dport, payload)) = udp_of(link_type, frame) else {
        return;
    };
    let before = out.len();
    let parsed = match (sport, dport) {
        (53, _) => dns_names(payload, NameSource::Dns, out),
        (5353, _) | (_, 5353) => dns_names(payload, NameSource::Mdns, out),
        (5355, _) => dns_names(payload, NameSource::Llmnr, out),
        (137, _) | (_, 137) => netbios::names(payload, src, out),
        (67, 68) | (68, 67) => dhcp::names(payload, out),
        _ => return,
    };
    stats.messages += 1;
    if !parsed {
        stats.malformed += 1;
    }
    stats.names += (out.len() - before) as u64;
}

/// DNS-format answers as names; false when the message did not parse.
fn dns_names(payload: &[u8], source: NameSource, out: &mut Vec<Learned>) -> bool {
    match dns::bindings(payload) {
        Ok(bindings) => {
            out.extend(bindings.into_iter().map(|b| Learned {
                address: b.address,
                name: b.name,
                source,
            }));
            true
        }
        Err(_) => false,
    }
}

/// Read capture files for names; a damaged file is reported to `on_error` and the others
/// are still read (what came before the damage counts). Anything but a regular file (a
/// pipe, standard input) is skipped.
pub fn names_in_files(
    files: &[impl AsRef<Path>],
    names: &mut Names,
    on_error: &mut impl FnMut(SourceError),
) -> NameStats {
    let mut stats = NameStats::default();
    let mut learned = Vec::new();
    for file in files {
        // Regular files only: a pipe or standard input can be read once, by the pipeline.
        if !file.as_ref().is_file() {
            continue;
        }
        let mut reader = match CaptureReader::open(file.as_ref()) {
            Ok(reader) => reader,
            Err(e) => {
                on_error(e);
                continue;
            }
        };
        loop {
            match reader.next_packet() {
                Ok(Some(packet)) => {
                    names_in_frame(packet.link_type, packet.data, &mut learned, &mut stats);
                    for l in learned.drain(..) {
                        names.add_observed(l.address, &l.name, l.source);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    on_error(e);
                    break;
                }
            }
        }
    }
    stats
}
