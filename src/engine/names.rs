//! The engine's share of the UDP name services: the DNS, mDNS, LLMNR, NetBIOS and DHCP
//! datagrams the decoder lets through ([`crate::names::service_of`]) are read here for the
//! names they give addresses, instead of being tried as QUIC. A datagram reaches exactly one
//! worker (the one owning its address and port pair), so no name is counted twice.

use crate::census::names::Names;
use crate::decode::Segment;
use crate::names::kept::KeptNames;
use crate::names::{names_in_message, service_of, Learned, NameStats};

/// What became of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Datagram {
    /// A name-service message, read.
    Read,
    /// A name-service message, not read (`--no-udp-names`): counted as skipped.
    Ignored,
    /// Not a name service's: for QUIC.
    NotNames,
}

/// Names learned since the last [`NameCollector::take`], bounded ([`KeptNames`]).
#[derive(Debug, Default)]
pub(super) struct NameCollector {
    enabled: bool,
    kept: KeptNames,
    /// Reused from message to message.
    learned: Vec<Learned>,
}

impl NameCollector {
    pub(super) fn new(enabled: bool) -> Self {
        NameCollector {
            enabled,
            ..NameCollector::default()
        }
    }

    /// Read a UDP datagram if it belongs to a name service.
    #[inline]
    pub(super) fn datagram(&mut self, seg: &Segment<'_>, stats: &mut NameStats) -> Datagram {
        let Some(service) = service_of(seg.sport, seg.dport) else {
            return Datagram::NotNames;
        };
        if !self.enabled {
            // As before names were read: QUIC if it looks like it, else skipped.
            return if crate::quic::looks_like_initial_datagram(seg.payload) {
                Datagram::NotNames
            } else {
                Datagram::Ignored
            };
        }
        names_in_message(service, seg.src, seg.payload, &mut self.learned, stats);
        for learned in self.learned.drain(..) {
            self.kept
                .add(learned.address, &learned.name, learned.source);
        }
        Datagram::Read
    }

    /// The names learned since the last call.
    pub(super) fn take(&mut self) -> Names {
        std::mem::take(&mut self.kept).into_names()
    }
}
