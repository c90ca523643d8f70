//! The pipeline's own tests: every way of reading gives the same frames and records.

use super::batch::FrameRef;
use super::*;
use crate::decode;
use crate::source::{BlockPool, CaptureReader};

/// Records (as JSON lines), errors (as shown) and frames counted by one run.
fn outcome_of(
    files: &[PathBuf],
    reading: Reading,
    threads: usize,
    block_bytes: usize,
) -> (Vec<String>, Vec<String>, u64) {
    let options = Options {
        engine: Config::default(),
        threads,
        reading,
    };
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    let outcome = run_in_blocks(
        files,
        &options,
        block_bytes,
        &mut |r| records.push(serde_json::to_string(&r).expect("record serialises")),
        &mut |e| errors.push(e.to_string()),
    );
    let p = &outcome.pipeline;
    assert_eq!(p.split_reading, reading != Reading::OneReader);
    assert_eq!(p.mapped_reading, reading == Reading::Map);
    if reading == Reading::Map && (100..=4096).contains(&block_bytes) {
        // The walk follows several chains, from guessed starts, and most guesses hold
        // (the sample captures are too small for larger blocks to be cut into chains).
        assert!(
            p.walk_guesses_kept > p.walk_guesses_rewalked,
            "{block_bytes}-byte blocks: guesses kept {}, walked again {}",
            p.walk_guesses_kept,
            p.walk_guesses_rewalked
        );
    }
    (records, errors, outcome.stats.frames)
}

/// `--stats` gives the lengths of the waits as percentiles: every wait counted is in the
/// histogram, and the histogram adds up to the time waited.
#[test]
fn every_wait_is_in_the_wait_histogram() {
    // Small blocks and three workers on two cores or fewer: the workers wait for each
    // other's parts many times.
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/tls12.pcap");
    let options = Options {
        engine: Config::default(),
        threads: 3,
        reading: Reading::Split,
    };
    let outcome = run_in_blocks(&[file], &options, 64, &mut |_| {}, &mut |_| {});
    let p = &outcome.pipeline;
    assert!(p.queue_waits > 0, "no waits to count");
    assert_eq!(p.queue_wait_us.len(), p.queue_waits);
    // Each wait is at least 1 µs in the histogram, and their sum is the total waited
    // (to the histogram's two significant digits).
    let total_us = p.queue_wait_time.as_micros() as f64;
    let mean = p.queue_wait_us.mean() * p.queue_waits as f64;
    assert!(
        (mean - total_us).abs() <= total_us * 0.02 + p.queue_waits as f64,
        "histogram sums to {mean:.0} µs, waits to {total_us:.0} µs"
    );
}

/// Workers reading or mapping their share of each file give exactly what one reader
/// thread gives (the records, their order, the errors of damaged files, the frames
/// counted) however finely the files are cut — blocks far smaller than a frame, so that
/// records straddle blocks and many blocks hold no record start, and mapped blocks
/// walked as many short chains from guessed starts — and however many workers share
/// them.
/// The captures are the real ones of `pcaps/`, read as one stream (file boundaries
/// inside it), with three damaged copies of one among them: cut inside a record header,
/// cut inside a frame, and a record whose length field claims 4 GiB.
#[test]
fn split_reading_gives_what_one_reader_gives() {
    let pcaps = pcaps_dir();
    let mut files = pcap_files();
    let dir = std::env::temp_dir().join(format!("tlscensus-split-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let whole = std::fs::read(pcaps.join("tls12.pcap")).expect("tls12.pcap");
    let caplen = |at: usize| u32::from_le_bytes(whole[at + 8..at + 12].try_into().unwrap());
    let second = 24 + 16 + caplen(24) as usize;
    let mut huge = whole.clone();
    huge[second + 8..second + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    let damaged = [
        ("cut_in_header.pcap", whole[..second + 5].to_vec()),
        ("cut_in_frame.pcap", whole[..second + 16 + 10].to_vec()),
        ("huge_length.pcap", huge),
    ];
    for (at, (name, bytes)) in damaged.into_iter().enumerate() {
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("write a damaged copy");
        files.insert(3 + 5 * at, path);
    }

    let reference = outcome_of(&files, Reading::OneReader, 1, split::BLOCK_BYTES);
    assert!(reference.0.len() > 20, "{} records", reference.0.len());
    assert_eq!(reference.1.len(), 3, "{:?}", reference.1);
    let sizes = [
        7,
        100,
        1500,
        4096,
        split::BLOCK_BYTES,
        split::MAPPED_BLOCK_BYTES,
    ];
    for (reading, block_bytes) in [Reading::Split, Reading::Map]
        .into_iter()
        .flat_map(|r| sizes.map(|b| (r, b)))
    {
        for threads in [1, 2, 3] {
            let split = outcome_of(&files, reading, threads, block_bytes);
            assert!(
                split == reference,
                "{reading:?}, {threads} workers, {block_bytes}-byte blocks: {} records, \
                 errors {:?}",
                split.0.len(),
                split.1
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Packing a decoded frame for its worker and unpacking it gives back exactly what the
/// decoder produced (every header field, the payload bytes, the skip reason), for every
/// frame of the sample captures and of the test corpus.
#[test]
fn frames_survive_packing() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    let corpus = root.join("tests/corpus");
    assert!(
        corpus.join("MANIFEST.tsv").is_file(),
        "the test corpus is missing: expected {}/MANIFEST.tsv (run the tests from a clone)",
        corpus.display()
    );
    let mut walk = vec![root.join("pcaps"), corpus];
    while let Some(dir) = walk.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")
            {
                files.push(path);
            }
        }
    }
    let (mut segments, mut wide_seen, mut skipped) = (0, 0, 0);
    for path in &files {
        let Ok(mut reader) = CaptureReader::open(path) else {
            continue;
        };
        while let Ok(Some(packet)) = reader.next_packet() {
            let decoded = decode::decode(packet.link_type, packet.data);
            let mut wide = Vec::new();
            let mut frame = FrameRef::pack(7, packet.ts_nanos, 3, &decoded, &mut wide);
            // One block holding the frame: the payload's offset is its offset in it.
            let block = BlockPool::new(0).seal(packet.data.to_vec());
            if let Ok(segment) = &decoded {
                frame.payload_start =
                    (segment.payload.as_ptr() as usize - packet.data.as_ptr() as usize) as u32;
            }
            let blocks = [block];
            let unpacked = frame.unpack(&blocks, &wide);
            assert_eq!(
                unpacked,
                decoded,
                "{} frame {}",
                path.display(),
                packet.frame_number
            );
            assert_eq!(
                (frame.index, frame.ts_nanos, frame.frame_number),
                (7, packet.ts_nanos, 3)
            );
            match decoded {
                Ok(_) => segments += 1,
                Err(_) => skipped += 1,
            }
            wide_seen += wide.len();
        }
    }
    // The sample captures alone hold IPv4 and IPv6 segments and non-TCP frames.
    assert!(
        segments > 100 && wide_seen > 0 && skipped > 0,
        "{segments} {wide_seen} {skipped}"
    );
}

/// The project's own captures.
fn pcaps_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps")
}

/// The classic pcap files of `pcaps/`, sorted by name.
fn pcap_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps_dir())
        .expect("pcaps/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    files
}

/// The corpus's records, in the canonical order, and a census configuration.
fn corpus_records() -> (Vec<Record>, crate::census::CensusConfig) {
    use crate::census::{CensusConfig, Policy};
    let options = Options {
        engine: Config::default(),
        threads: 1,
        reading: Reading::OneReader,
    };
    let mut records = Vec::new();
    run(
        &pcap_files(),
        &options,
        &mut |r| records.push(r),
        &mut |_| {},
    );
    assert!(records.len() > 50, "{} records", records.len());
    let config = CensusConfig::new(Vec::new(), Policy::parse::<&str>(&[]).unwrap());
    (records, config)
}

/// A census as its JSON report.
fn json(census: &crate::census::Census) -> String {
    let mut out = Vec::new();
    crate::report::write(census, crate::report::Format::Json, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The census cut into shards by client, and copied for a report at any moment, counts
/// exactly what one census adding every record in order counts: the same report, byte for
/// byte, at the end and at every snapshot; and the status figures, kept record by record
/// once asked for, are those of that census.
#[test]
fn sharded_census_and_snapshots_count_every_record_once() {
    use crate::census::Census;
    use shards::{Glance, Live, Tally};

    let (records, config) = corpus_records();
    let mut whole = Census::new(config.clone());
    records.iter().for_each(|r| whole.add(r));
    let figures = Glance::of(&whole);
    // The corpus has what the figures count: clients with several records, and clients
    // below TLS 1.2.
    assert!(
        figures.clients < records.len() && figures.below_tls12 > 0,
        "{figures:?}"
    );

    for (shards, glance_from) in [(1, 0), (1, 30), (2, 0), (3, 11), (8, 0), (16, 40)] {
        // A census that already holds counts (as `read`'s logs or a restored watch state).
        let mut sequential = Census::new(config.clone());
        let (before, rest) = records.split_at(7);
        before.iter().for_each(|r| sequential.add(r));
        let tally = Tally::with_shards(sequential.clone(), 2, shards);
        let live = Live {
            tally: Some(&tally),
        };
        for (n, record) in rest.iter().enumerate() {
            // Records go to workers by connection, so a client's records are spread.
            let worker = (record.client.port as usize + n) % 2;
            tally.counter(worker).add(record);
            sequential.add(record);
            if n >= glance_from {
                assert_eq!(
                    live.glance(),
                    Glance::of(&sequential),
                    "{shards} shards: status figures after {n} records"
                );
            }
            if n % 17 == 0 {
                let now = live.census().expect("a census is counted");
                assert_eq!(json(&now), json(&sequential), "snapshot after {n} records");
            }
        }
        assert_eq!(json(&tally.into_census()), json(&whole), "{shards} shards");
    }
}

/// Workers adding to the shards at once, while snapshots are taken: the census at the end
/// is the one census of every record, and no snapshot counts a record twice or loses one
/// an earlier snapshot had.
#[test]
fn sharded_census_counted_by_threads_at_once() {
    use crate::census::Census;
    use shards::{Glance, Live, Tally};

    let (records, config) = corpus_records();
    let mut whole = Census::new(config.clone());
    records.iter().for_each(|r| whole.add(r));
    let total = Glance::of(&whole).handshakes;
    for (workers, shards) in [(2, 8), (3, 4), (4, 16)] {
        let tally = Tally::with_shards(Census::new(config.clone()), workers, shards);
        let live = Live {
            tally: Some(&tally),
        };
        std::thread::scope(|scope| {
            for worker in 0..workers {
                let (tally, records) = (&tally, &records);
                scope.spawn(move || {
                    // By connection, as the workers get them: a client's records are spread.
                    let batches = records.iter().skip(worker).step_by(workers);
                    for batch in batches.collect::<Vec<_>>().chunks(3) {
                        let mut counter = tally.counter(worker);
                        batch.iter().for_each(|record| counter.add(record));
                    }
                });
            }
            let mut last = 0;
            for _ in 0..20 {
                let glance = live.glance();
                let now = Glance::of(&live.census().expect("a census is counted"));
                assert!(last <= glance.handshakes && glance.handshakes <= now.handshakes);
                assert!(now.handshakes <= total, "{now:?} of {total} records");
                last = now.handshakes;
            }
        });
        assert_eq!(live.glance(), Glance::of(&whole));
        assert_eq!(
            json(&tally.into_census()),
            json(&whole),
            "{workers} workers"
        );
    }
}

/// The client a record is sharded by is the one the census counts it for.
#[test]
fn client_key_is_the_census_key() {
    use crate::census::Census;

    use crate::census::{CensusConfig, Policy};

    let (records, _) = corpus_records();
    // With servers named, directions differ from the default's.
    let servers = ["10.0.0.0/8", "192.168.0.0/16"].map(|s| s.parse().unwrap());
    let config = CensusConfig::new(servers.to_vec(), Policy::default());
    for record in &records {
        let mut census = Census::new(config.clone());
        census.add(record);
        let key = config.client_key(record);
        assert_eq!(
            census.clients.keys().collect::<Vec<_>>(),
            [&key],
            "{record:?}"
        );
    }
}
