//! Names of hosts from the UDP name services: DNS answers (port 53), mDNS (5353), LLMNR
//! (5355), NetBIOS name service (137) and DHCP (67/68). The decoder hands the engine the
//! datagrams on these ports (after IP reassembly and tunnels), the engine hands each one to
//! [`names_in_message`], and the census gets `(address, name, source)` triples (names only,
//! never payloads).

pub mod dhcp;
pub mod dns;
pub mod kept;
pub mod netbios;
pub mod resolve;

use std::net::IpAddr;

use crate::census::names::NameSource;

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

/// The name service a UDP datagram between these ports belongs to, if any: DNS and LLMNR
/// answers (from the server's port: queries name nothing), mDNS and NetBIOS either way,
/// DHCP between its two ports. The decoder lets these datagrams through for the engine.
#[inline]
pub fn service_of(sport: u16, dport: u16) -> Option<NameSource> {
    match (sport, dport) {
        (53, _) => Some(NameSource::Dns),
        (5353, _) | (_, 5353) => Some(NameSource::Mdns),
        (5355, _) => Some(NameSource::Llmnr),
        (137, _) | (_, 137) => Some(NameSource::Netbios),
        (67, 68) | (68, 67) => Some(NameSource::Dhcp),
        _ => None,
    }
}

/// The names one name-service message carries (`service` from [`service_of`]), appended
/// to `out`, counted in `stats`. A message that does not parse is counted, never fatal.
pub fn names_in_message(
    service: NameSource,
    src: IpAddr,
    payload: &[u8],
    out: &mut Vec<Learned>,
    stats: &mut NameStats,
) {
    let before = out.len();
    let parsed = match service {
        NameSource::Dns | NameSource::Mdns | NameSource::Llmnr => dns_names(payload, service, out),
        NameSource::Netbios => netbios::names(payload, src, out),
        NameSource::Dhcp => dhcp::names(payload, out),
        // Not UDP name services.
        NameSource::Ehlo | NameSource::ImapId | NameSource::Resolved => return,
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
