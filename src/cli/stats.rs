//! `--stats`: the per-stage counters printed at the end of a run.

use std::time::Duration;

use tlscensus::pipeline;

pub fn print_stats(outcome: &pipeline::Outcome) {
    let (stats, p) = (&outcome.stats, &outcome.pipeline);
    let secs = p.elapsed.as_secs_f64().max(1e-9);
    eprintln!("threads                {}", p.threads);
    eprintln!("elapsed                {:.3} s", secs);
    eprintln!(
        "frames read            {} ({:.2} M/s, {:.1} MB/s)",
        p.frames_read,
        p.frames_read as f64 / secs / 1e6,
        p.bytes_read as f64 / secs / 1e6
    );
    if p.split_reading {
        if p.mapped_reading {
            eprintln!("reading                map: each worker maps, walks and decodes its share");
        } else {
            eprintln!(
                "reading                split: each worker reads, walks and decodes its share"
            );
        }
        eprintln!(
            "parts sent             {} (frames of a block for another worker)",
            p.batches
        );
        if p.mapped_reading {
            eprintln!(
                "walk guesses           {} kept, {} walked again (chains from a guessed record start)",
                p.walk_guesses_kept, p.walk_guesses_rewalked
            );
        }
        eprintln!(
            "worker waits           {} (for another worker's part or the walk), {:.0} ms in all",
            p.queue_waits,
            p.queue_wait_time.as_secs_f64() * 1e3
        );
    } else {
        eprintln!("batches                {}", p.batches);
        eprintln!(
            "reader queue waits     {}, {:.0} ms in all",
            p.queue_waits,
            p.queue_wait_time.as_secs_f64() * 1e3
        );
    }
    if p.queue_waits > 0 {
        let w = &p.queue_wait_us;
        eprintln!(
            "wait length (µs)       p10 {} p50 {} p90 {} p99 {} max {}",
            w.value_at_quantile(0.1),
            w.value_at_quantile(0.5),
            w.value_at_quantile(0.9),
            w.value_at_quantile(0.99),
            w.max()
        );
    }
    let h = &p.batch_latency_us;
    eprintln!(
        "batch latency (µs)     p50 {} p90 {} p99 {} max {}",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.max()
    );
    eprintln!("reorder buffer peak    {}", p.reorder_peak);
    let per_frame = |cpu: Duration, frames: u64| {
        if frames == 0 || cpu.is_zero() {
            return format!("{:.3} s ({frames} frames)", cpu.as_secs_f64());
        }
        let ns = cpu.as_nanos() as f64 / frames as f64;
        format!(
            "{:.3} s ({frames} frames, {ns:.0} ns/frame, {:.2} M frames per CPU-second)",
            cpu.as_secs_f64(),
            1e3 / ns.max(1e-9)
        )
    };
    if let Some(cpu) = p.reader_cpu {
        eprintln!("cpu reader             {}", per_frame(cpu, p.frames_read));
    }
    for (worker, (cpu, frames)) in p.worker_cpu.iter().zip(&p.worker_frames).enumerate() {
        if let Some(cpu) = cpu {
            eprintln!("cpu worker {worker:<11} {}", per_frame(*cpu, *frames));
        }
    }
    if let Some(cpu) = p.aggregator_cpu {
        eprintln!(
            "cpu aggregator         {:.3} s ({} records ordered)",
            cpu.as_secs_f64(),
            p.records_ordered
        );
    }
    for (name, n) in &p.source_counters {
        eprintln!("{name:<22} {n}");
    }
    eprintln!("tcp segments           {}", stats.tcp_segments);
    for (skip, n) in tlscensus::decode::Skip::ALL.iter().zip(stats.skipped) {
        eprintln!("skipped {:<14} {n}", skip.name());
    }
    eprintln!("connections tracked    {}", stats.connections_tracked);
    eprintln!("records                {}", stats.records);
    eprintln!("retransmitted segments {}", stats.retransmitted_segments);
    eprintln!(
        "  with different bytes {}",
        stats.inconsistent_retransmissions
    );
    eprintln!("out-of-order segments  {}", stats.out_of_order_segments);
    eprintln!("dropped segments       {}", stats.dropped_segments);
    eprintln!("snaplen-cut frames     {}", stats.truncated_frames);
    eprintln!("flows expired          {}", stats.flows_expired);
    eprintln!("flows evicted (no data) {}", stats.flows_evicted);
    eprintln!("flows refused (full)   {}", stats.flows_refused);
    let quic = [
        ("quic datagrams", stats.quic_datagrams),
        ("quic initials", stats.quic_initials),
        ("  decrypted", stats.quic_initials_opened),
        ("  undecryptable", stats.quic_undecryptable),
        ("  malformed frames", stats.quic_malformed_frames),
        ("  crypto over budget", stats.quic_crypto_over_budget),
        ("quic short packets", stats.quic_short),
        ("quic unknown versions", stats.quic_unknown_version),
        ("quic other packets", stats.quic_other_packets),
        ("quic connections", stats.quic_connections),
    ];
    for (name, n) in quic {
        eprintln!("{name:<22} {n}");
    }
    let n = &stats.names;
    eprintln!(
        "name messages          {} (DNS, mDNS, LLMNR, NetBIOS, DHCP)",
        n.messages
    );
    eprintln!("  malformed            {}", n.malformed);
    eprintln!("  names learned        {}", n.names);
    let f = &stats.fragments;
    eprintln!("ip fragments           {}", f.fragments);
    eprintln!("  datagrams reassembled {}", f.reassembled);
    eprintln!("  datagrams timed out  {}", f.timed_out);
    eprintln!("  datagrams refused    {}", f.refused);
    eprintln!("  datagrams unfinished {}", f.unfinished);
    eprintln!("  inconsistent overlaps {}", f.inconsistent_overlaps);
}
