//! Live capture (issue #6): frames from network devices instead of files.
//!
//! The capture itself needs libpcap (Npcap on Windows) and is the cargo feature `live`
//! ([`live`]); what does not need it (the default BPF filter) is always built.

#[cfg(feature = "live")]
pub mod live;

/// The BPF filter used when `--bpf` is not given: TCP on the given ports, e.g.
/// `tcp and (port 25 or port 587)`. Every port the engine treats specially is in it;
/// without ports it is plain `tcp`.
pub fn default_filter(ports: &[u16]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    if ports.is_empty() {
        return "tcp".into();
    }
    let list: Vec<String> = ports.iter().map(|p| format!("port {p}")).collect();
    format!("tcp and ({})", list.join(" or "))
}

/// `filter` widened to the UDP name services' messages that name hosts (DNS and LLMNR
/// answers, mDNS, NetBIOS name service, DHCP; see [`crate::names::service_of`]).
pub fn with_name_services(filter: &str) -> String {
    format!(
        "({filter}) or (udp and (src port 53 or src port 5355 or port 5353 or port 137 or \
         (port 67 and port 68)))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_lists_each_port_once_in_order() {
        assert_eq!(
            default_filter(&[587, 25, 443, 25]),
            "tcp and (port 25 or port 443 or port 587)"
        );
        assert_eq!(default_filter(&[]), "tcp");
        assert_eq!(
            with_name_services("tcp"),
            "(tcp) or (udp and (src port 53 or src port 5355 or port 5353 or port 137 or \
             (port 67 and port 68)))"
        );
    }
}
