//! Reverse DNS at report time (`--resolve`): a PTR query per client address, to the
//! system's name server (the first `nameserver` of /etc/resolv.conf) or `--dns-server`.
//!
//! Opt-in because it sends queries about the census's clients. One UDP socket, at most
//! [`ResolveOptions::concurrency`] queries in flight, each retried once after
//! [`ResolveOptions::timeout`], and an overall [`ResolveOptions::deadline`] after which the
//! unanswered are given up: a name server that never answers delays the report by the
//! deadline, no more. Each address is asked once per run (the cache), whatever the number of
//! clients (directions, load balancers) it stands for. Answers are read with the capture's
//! own DNS reader ([`super::dns`]).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::dns;

/// How lookups run.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub server: SocketAddr,
    /// Queries in flight at once.
    pub concurrency: usize,
    /// Wait for an answer before asking again (once), then giving up on the address.
    pub timeout: Duration,
    /// Wait for all lookups at most this long.
    pub deadline: Duration,
}

impl ResolveOptions {
    pub fn new(server: SocketAddr) -> Self {
        ResolveOptions {
            server,
            concurrency: 32,
            timeout: Duration::from_millis(1500),
            deadline: Duration::from_secs(10),
        }
    }
}

/// What the lookups gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Address → the names its PTR records give (empty: answered, no name).
    pub names: HashMap<IpAddr, Vec<String>>,
    /// Addresses asked about.
    pub asked: usize,
    /// Addresses with no answer by the deadline.
    pub unanswered: usize,
}

/// `IP` or `IP:PORT` (port 53 by default; `[v6]:PORT` for IPv6 with a port).
pub fn parse_server(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{text:?} is not a DNS server address (192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53)"))
}

/// The system's name server: the first `nameserver` line of /etc/resolv.conf.
pub fn system_server() -> Result<SocketAddr, String> {
    let path = "/etc/resolv.conf";
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{path}: {e}; name a server with --dns-server IP[:PORT]"))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| format!("{path} names no nameserver; name one with --dns-server IP[:PORT]"))
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`).
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0x0f, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// A PTR query (RFC 1035 4.1) with recursion desired.
fn query(id: u16, ip: IpAddr) -> Vec<u8> {
    let mut m = Vec::with_capacity(96);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in reverse_name(ip).split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 12, 0, 1]);
    m
}

struct InFlight {
    ip: IpAddr,
    sent: Instant,
    tries: u8,
}

/// Look up the names of `addresses` (duplicates asked once).
pub fn reverse_lookup(addresses: &[IpAddr], options: &ResolveOptions) -> io::Result<Resolved> {
    let mut queue: Vec<IpAddr> = addresses.to_vec();
    queue.sort();
    queue.dedup();
    let mut result = Resolved {
        asked: queue.len(),
        ..Resolved::default()
    };
    if queue.is_empty() {
        return Ok(result);
    }
    let bind: SocketAddr = match options.server {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    let socket = UdpSocket::bind(bind)?;
    socket.connect(options.server)?;
    socket.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut queue: VecDeque<IpAddr> = queue.into();
    let mut in_flight: HashMap<u16, InFlight> = HashMap::new();
    // Query ids from the clock and the process id, stepped by a full-period generator:
    // never two equal ids in flight.
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut next_id = (clock as u16) ^ (std::process::id() as u16);
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while (!queue.is_empty() || !in_flight.is_empty()) && start.elapsed() < options.deadline {
        while in_flight.len() < options.concurrency {
            let Some(ip) = queue.pop_front() else { break };
            while in_flight.contains_key(&next_id) {
                next_id = next_id.wrapping_mul(0x6255).wrapping_add(0x3619);
            }
            // A send error (no route) counts as no answer.
            let _ = socket.send(&query(next_id, ip));
            in_flight.insert(
                next_id,
                InFlight {
                    ip,
                    sent: Instant::now(),
                    tries: 1,
                },
            );
            next_id = next_id.wrapping_mul(0x6255).wrapping_add(0x3619);
        }
        match socket.recv(&mut buf) {
            Ok(n) => {
                let answer = &buf[..n];
                let id = u16::from_be_bytes([answer[0], *answer.get(1).unwrap_or(&0)]);
                if let Some(q) = in_flight.get(&id) {
                    let ip = q.ip;
                    if let Ok(bindings) = dns::bindings(answer) {
                        in_flight.remove(&id);
                        let names = result.names.entry(ip).or_default();
                        names.extend(
                            bindings
                                .into_iter()
                                .filter(|b| b.address == ip)
                                .map(|b| b.name),
                        );
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            // ICMP port unreachable shows up as a refused receive: keep waiting for the rest.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let mut expired = Vec::new();
        for (id, q) in &mut in_flight {
            if now.duration_since(q.sent) >= options.timeout {
                if q.tries < 2 {
                    q.tries += 1;
                    q.sent = now;
                    let _ = socket.send(&query(*id, q.ip));
                } else {
                    expired.push(*id);
                }
            }
        }
        for id in expired {
            in_flight.remove(&id);
            result.unanswered += 1;
        }
    }
    result.unanswered += in_flight.len() + queue.len();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_and_queries() {
        assert_eq!(
            reverse_name("192.0.2.7".parse().unwrap()),
            "7.2.0.192.in-addr.arpa"
        );
        // RFC 3596 2.5's example.
        assert_eq!(
            reverse_name("4321:0:1:2:3:4:567:89ab".parse().unwrap()),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa"
        );
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(dns::reverse_address(&reverse_name(ip)), Some(ip));
        let q = query(0xbeef, ip);
        assert_eq!(&q[..4], &[0xbe, 0xef, 0x01, 0x00]);
        assert_eq!(&q[q.len() - 4..], &[0, 12, 0, 1]);
        assert_eq!(parse_server("192.0.2.53").unwrap().port(), 53);
        assert_eq!(parse_server("127.0.0.1:5353").unwrap().port(), 5353);
        assert!(parse_server("dns.example").is_err());
    }
}
