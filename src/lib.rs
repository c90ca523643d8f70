//! tlscensus: a passive TLS handshake census.
//!
//! The crate is laid out by pipeline stage, in the order a packet travels:
//!
//! * [`source`]: capture files (pcap, pcapng, Network Monitor) → timestamped link-layer frames;
//! * [`decode`]: link layer, IP and TCP headers → a borrowed TCP segment view;
//! * [`flow`]: the per-connection table and per-direction TCP reassembly;
//! * [`tls`]: TLS/SSL hello parsing and fingerprints (JA3, JA4);
//! * [`engine`]: ties the stages together and turns each connection into a [`record::Record`];
//! * [`record`]: the public, line-per-connection JSON record format;
//! * [`names`]: host names from the capture's UDP name services (DNS, mDNS, LLMNR, NetBIOS,
//!   DHCP), for the census's per-client names.

pub mod capture;
pub mod census;
pub mod decode;
pub mod engine;
pub mod flow;
pub mod follow;
pub mod logs;
pub mod names;
pub mod pipeline;
pub mod proto;
pub mod quic;
pub mod record;
pub mod report;
pub mod sink;
pub mod source;
pub mod time;
pub mod tls;
