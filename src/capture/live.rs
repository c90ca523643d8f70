//! Capture devices through the `pcap` crate (libpcap, Npcap on Windows).
//!
//! Only the reader thread touches the capture handles. Each frame libpcap lends is handed to
//! the pipeline, which copies it once into a pooled block; nothing else of the packet is
//! kept: the engine only ever stores handshake metadata.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pcap::{Active, Capture, Device};

use crate::pipeline::{LiveSource, LIVE_POLL};
use crate::source::{linktype, Packet, SourceError, SourceErrorKind};

/// A capture device as `tlscensus interfaces` lists it.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    pub addresses: Vec<std::net::IpAddr>,
    pub up: bool,
    pub loopback: bool,
}

/// Every capture device libpcap knows, in its order.
pub fn interfaces() -> Result<Vec<Interface>, pcap::Error> {
    Ok(Device::list()?
        .into_iter()
        .map(|d| Interface {
            addresses: d.addresses.iter().map(|a| a.addr).collect(),
            up: d.flags.is_up(),
            loopback: d.flags.is_loopback(),
            name: d.name,
            description: d.desc,
        })
        .collect())
}

/// Find a device by name, by its 1-based number in `tlscensus interfaces`, or (for Npcap's
/// unreadable `\Device\NPF_{GUID}` names) by a unique part of its description.
pub fn resolve(wanted: &str) -> Result<String, String> {
    let list = interfaces().map_err(|e| format!("cannot list capture devices: {e}"))?;
    if list.iter().any(|i| i.name == wanted) {
        return Ok(wanted.to_string());
    }
    if let Ok(n) = wanted.parse::<usize>() {
        if let Some(i) = n.checked_sub(1).and_then(|k| list.get(k)) {
            return Ok(i.name.clone());
        }
    }
    let needle = wanted.to_lowercase();
    let matches: Vec<&Interface> = list
        .iter()
        .filter(|i| {
            i.description
                .as_deref()
                .is_some_and(|d| d.to_lowercase().contains(&needle))
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.name.clone()),
        [] => Ok(wanted.to_string()), // let libpcap say what is wrong with it
        _ => Err(format!(
            "{wanted}: matches several devices' descriptions; use the name or number from `tlscensus interfaces`"
        )),
    }
}

/// How to open the devices.
#[derive(Debug, Clone)]
pub struct Settings {
    pub promiscuous: bool,
    pub snaplen: i32,
    /// Kernel buffer size in bytes (`None`: libpcap's default, 2 MiB on Linux).
    pub buffer_size: Option<i32>,
    pub immediate: bool,
    pub filter: String,
}

/// Counters the capture publishes for the status line and the final report.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames handed to the pipeline.
    pub packets: AtomicU64,
    /// Frames that passed the filter, by libpcap's count.
    pub received: AtomicU64,
    /// Dropped because the kernel buffer was full (tlscensus too slow).
    pub dropped: AtomicU64,
    /// Dropped by the interface or its driver.
    pub if_dropped: AtomicU64,
}

impl Counters {
    pub fn get(&self) -> (u64, u64, u64, u64) {
        (
            self.packets.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.if_dropped.load(Ordering::Relaxed),
        )
    }
}

/// Open capture devices, ready to be polled by the pipeline.
pub struct LiveCapture {
    devices: Vec<(String, Capture<Active>, u32)>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    counters: Arc<Counters>,
    /// Last statistics per device, summed into the counters.
    last_stats: Vec<(u64, u64, u64)>,
    stats_due: Instant,
    frame_number: u64,
    next: usize,
}

/// Why a device could not be opened or filtered.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{device}: cannot open for capture: {error}{hint}")]
    Open {
        device: String,
        error: pcap::Error,
        hint: &'static str,
    },
    #[error("bad BPF filter expression {filter:?}: {error}")]
    Filter { filter: String, error: pcap::Error },
}

const PERMISSION_HINT: &str = " (capturing needs root, or the capabilities: \
     sudo setcap cap_net_raw,cap_net_admin=eip $(command -v tlscensus))";

impl LiveCapture {
    /// Open every device with the settings. Stops when `stop` is set or after `duration`.
    pub fn open(
        names: &[String],
        settings: &Settings,
        stop: Arc<AtomicBool>,
        duration: Option<Duration>,
    ) -> Result<LiveCapture, OpenError> {
        let mut devices = Vec::new();
        let poll_ms = LIVE_POLL.as_millis() as i32;
        for name in names {
            let open_err = |error: pcap::Error| {
                let text = error.to_string().to_lowercase();
                let hint = if text.contains("permission") || text.contains("not permitted") {
                    PERMISSION_HINT
                } else {
                    ""
                };
                OpenError::Open {
                    device: name.clone(),
                    error,
                    hint,
                }
            };
            let mut inactive = Capture::from_device(name.as_str())
                .map_err(open_err)?
                .promisc(settings.promiscuous)
                .snaplen(settings.snaplen)
                .immediate_mode(settings.immediate)
                .timeout(poll_ms);
            if let Some(size) = settings.buffer_size {
                inactive = inactive.buffer_size(size);
            }
            let mut cap = inactive.open().map_err(open_err)?;
            cap.filter(&settings.filter, true)
                .map_err(|error| OpenError::Filter {
                    filter: settings.filter.clone(),
                    error,
                })?;
            // Never block in libpcap: on Linux (TPACKET_V3) a blocking read with no traffic
            // waits forever, whatever the timeout. We wait for readiness ourselves.
            cap = cap.setnonblock().map_err(open_err)?;
            let link = link_type(cap.get_datalink().0);
            devices.push((name.clone(), cap, link));
        }
        Ok(LiveCapture {
            last_stats: vec![(0, 0, 0); devices.len()],
            devices,
            stop,
            deadline: duration.map(|d| Instant::now() + d),
            counters: Arc::new(Counters::default()),
            stats_due: Instant::now(),
            frame_number: 0,
            next: 0,
        })
    }

    /// The counters, shared with the status line.
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Read libpcap's statistics for every device into the counters.
    pub fn update_stats(&mut self) {
        let (mut received, mut dropped, mut if_dropped) = (0, 0, 0);
        for ((_, cap, _), last) in self.devices.iter_mut().zip(self.last_stats.iter_mut()) {
            if let Ok(s) = cap.stats() {
                *last = (
                    u64::from(s.received),
                    u64::from(s.dropped),
                    u64::from(s.if_dropped),
                );
            }
            received += last.0;
            dropped += last.1;
            if_dropped += last.2;
        }
        self.counters.received.store(received, Ordering::Relaxed);
        self.counters.dropped.store(dropped, Ordering::Relaxed);
        self.counters
            .if_dropped
            .store(if_dropped, Ordering::Relaxed);
    }

    // `tv_sec`/`tv_usec` are 64-bit on Linux but 32-bit on Windows and `tv_usec` on macOS.
    #[allow(clippy::useless_conversion)]
    fn deliver(
        frame_number: &mut u64,
        link: u32,
        packet: &pcap::Packet<'_>,
        on_frame: &mut dyn FnMut(&Packet<'_>),
    ) {
        *frame_number += 1;
        let ts = &packet.header.ts;
        let ts_nanos = i64::from(ts.tv_sec)
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(ts.tv_usec).saturating_mul(1_000));
        on_frame(&Packet {
            ts_nanos,
            link_type: link,
            data: packet.data,
            orig_len: packet.header.len,
            frame_number: *frame_number,
            interface: None,
            direction: None,
        });
    }

    fn device_error(name: &str, err: pcap::Error) -> SourceError {
        SourceError {
            path: name.into(),
            offset: 0,
            kind: SourceErrorKind::Io(std::io::Error::other(err.to_string())),
        }
    }
}

impl LiveCapture {
    /// Wait until a device may have frames, or at most `limit` (and at most 20 ms, so a
    /// kernel that wakes nobody for a retired block cannot hold frames back for long).
    #[cfg(unix)]
    fn wait(&self, limit: Duration) {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let limit = limit.min(Duration::from_millis(20));
        let mut fds: Vec<PollFd<'_>> = self
            .devices
            .iter()
            .map(|(_, cap, _)| PollFd::new(cap.as_fd(), PollFlags::POLLIN))
            .collect();
        let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::ZERO);
        if poll(&mut fds, timeout).is_err() {
            std::thread::sleep(limit);
        }
    }

    #[cfg(not(unix))]
    fn wait(&self, limit: Duration) {
        std::thread::sleep(limit.min(Duration::from_millis(2)));
    }
}

/// LINKTYPE_ number for a libpcap DLT_ number (they differ for raw IP).
fn link_type(dlt: i32) -> u32 {
    match dlt {
        12 | 14 => linktype::RAW,
        n => n as u32,
    }
}

/// Frames read from one device per poll before the others get their turn.
const BURST: usize = 512;

impl LiveSource for LiveCapture {
    fn name(&self) -> String {
        let names: Vec<&str> = self.devices.iter().map(|(n, ..)| n.as_str()).collect();
        format!("live:{}", names.join(","))
    }

    fn poll(&mut self, on_frame: &mut dyn FnMut(&Packet<'_>)) -> Result<bool, SourceError> {
        let now = Instant::now();
        if now >= self.stats_due {
            self.update_stats();
            self.stats_due = now + Duration::from_secs(1);
        }
        if self.stop.load(Ordering::Relaxed) || self.deadline.is_some_and(|d| now >= d) {
            self.update_stats();
            return Ok(false);
        }
        let started = Instant::now();
        let count = self.devices.len();
        let mut delivered = 0u64;
        loop {
            for turn in 0..count {
                let at = (self.next + turn) % count;
                let (name, cap, link) = &mut self.devices[at];
                for _ in 0..BURST {
                    match cap.next_packet() {
                        Ok(packet) => {
                            Self::deliver(&mut self.frame_number, *link, &packet, on_frame);
                            delivered += 1;
                        }
                        Err(pcap::Error::TimeoutExpired) => break,
                        Err(err) => return Err(Self::device_error(name, err)),
                    }
                }
            }
            self.next = (self.next + 1) % count.max(1);
            let waited = started.elapsed();
            if delivered > 0 || waited >= LIVE_POLL {
                break;
            }
            self.wait(LIVE_POLL - waited);
        }
        self.counters
            .packets
            .fetch_add(delivered, Ordering::Relaxed);
        Ok(true)
    }
}

/// Give up root for `user` (and its group) once the devices are open (Unix).
#[cfg(unix)]
pub fn drop_privileges(user: &str) -> Result<(), String> {
    use nix::unistd::{setgid, setuid, User};
    let entry = User::from_name(user)
        .map_err(|e| format!("cannot look up user {user}: {e}"))?
        .ok_or_else(|| format!("no such user: {user}"))?;
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    nix::unistd::setgroups(&[entry.gid])
        .map_err(|e| format!("cannot drop supplementary groups: {e}"))?;
    setgid(entry.gid).map_err(|e| format!("cannot switch to group {}: {e}", entry.gid))?;
    setuid(entry.uid).map_err(|e| format!("cannot switch to user {user}: {e}"))?;
    if setuid(nix::unistd::Uid::from_raw(0)).is_ok() && !entry.uid.is_root() {
        return Err("still able to regain root after dropping privileges".into());
    }
    Ok(())
}

/// `--user` is for Unix: on Windows, Npcap's driver does the privileged part.
#[cfg(not(unix))]
pub fn drop_privileges(_user: &str) -> Result<(), String> {
    Err("--user is only supported on Unix".into())
}
