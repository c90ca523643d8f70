//! `tlscensus interfaces`: the capture devices, for `capture -i`.

use std::process::ExitCode;

use anyhow::Result;

#[cfg(not(feature = "live"))]
pub fn interfaces() -> Result<ExitCode> {
    anyhow::bail!(super::capture::NO_LIVE)
}

#[cfg(feature = "live")]
pub fn interfaces() -> Result<ExitCode> {
    use anyhow::Context;
    use std::io::{self, Write};
    use tlscensus::capture::live;

    let list = live::interfaces().context("cannot list capture devices")?;
    if list.is_empty() {
        eprintln!(
            "tlscensus: no capture devices found (capturing needs root or cap_net_raw, \
             and on Windows the Npcap driver)"
        );
    }
    let mut out = io::stdout().lock();
    for (n, i) in list.iter().enumerate() {
        let mut flags = Vec::new();
        if i.up {
            flags.push("up");
        }
        if i.loopback {
            flags.push("loopback");
        }
        writeln!(out, "{}. {} [{}]", n + 1, i.name, flags.join(", "))?;
        if let Some(d) = &i.description {
            writeln!(out, "     {d}")?;
        }
        for a in &i.addresses {
            writeln!(out, "     {a}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
