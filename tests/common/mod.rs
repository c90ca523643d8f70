//! Helpers shared by the integration tests: where the corpus is, and running the engine.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tlscensus::engine::{Config, Stats};
use tlscensus::pipeline::{self, Options, Reading};
use tlscensus::record::Record;
use tlscensus::source::SourceError;

/// `tests/corpus/` of this repository: public captures with tshark's dissection of each.
/// A checkout without it (the published crate leaves it out) fails here, saying so: no test
/// skips silently.
pub fn corpus_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "the test corpus is missing: expected {}/MANIFEST.tsv. It is kept in the git \
         repository, not in the crate package: run the tests from a clone",
        dir.display()
    );
    dir
}

/// `pcaps/` of this repository.
pub fn pcaps_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps")
}

/// A description of `pcaps/` written by the script that made the captures
/// (`expected.json`, `expected_mail.json`): what each client and server was told to do.
pub fn expected_script(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(pcaps_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The pcap and pcapng files of `pcaps/`, in name order.
pub fn own_captures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(pcaps_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    files
}

/// Every corpus capture (MANIFEST.tsv) and then every capture of `pcaps/`.
pub fn all_captures() -> Vec<PathBuf> {
    let corpus = corpus_dir();
    let mut files: Vec<PathBuf> = manifest()
        .into_iter()
        .map(|(path, _)| corpus.join(path))
        .collect();
    files.extend(own_captures());
    files
}

/// The census of `files` (in time order) counted by the pipeline's workers alone, as
/// `tlscensus read` counts it when no record is asked for, and the run's outcome.
pub fn counted_by_workers(
    files: &[PathBuf],
    threads: usize,
    reading: Reading,
) -> (tlscensus::census::Census, pipeline::Outcome) {
    use tlscensus::census::{Census, CensusConfig, Policy};
    let ordered = pipeline::order_by_time(files);
    let policy = Policy::parse::<&str>(&[]).unwrap();
    let mut census = Census::new(CensusConfig::new(Vec::new(), policy));
    let options = Options {
        engine: Config::default(),
        threads,
        reading,
    };
    let outputs = pipeline::Outputs {
        census: Some(&mut census),
        records: None,
    };
    let outcome = pipeline::run_with_progress(
        &ordered,
        &options,
        &pipeline::Progress::default(),
        outputs,
        &mut |_| {},
        &mut |_| {},
    );
    (census, outcome)
}

/// Corpus captures listed in MANIFEST.tsv: (local path, row as column → value).
pub fn manifest() -> Vec<(String, std::collections::HashMap<String, String>)> {
    let text = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let row: std::collections::HashMap<String, String> = header
                .iter()
                .zip(line.split('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (row["local_path"].clone(), row)
        })
        .collect()
}

/// Everything one run of the engine over some files produced.
pub struct Run {
    pub records: Vec<Record>,
    pub stats: Stats,
    pub errors: Vec<SourceError>,
    /// Names from the UDP name services, as `read` merges them into its census.
    pub names: tlscensus::census::names::Names,
}

/// Read files in the given order through the pipeline, as `tlscensus read` does.
pub fn run_files(paths: &[PathBuf], config: Config) -> Run {
    run_threads(paths, config, 1)
}

/// The same with `threads` worker threads.
pub fn run_threads(paths: &[PathBuf], config: Config, threads: usize) -> Run {
    run_reading(paths, config, threads, Reading::default())
}

/// [`run_threads`], reading the files as `reading` says.
pub fn run_reading(paths: &[PathBuf], config: Config, threads: usize, reading: Reading) -> Run {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let options = Options {
        engine: config,
        threads,
        reading,
    };
    let outcome = pipeline::run(paths, &options, &mut |r| records.push(r), &mut |e| {
        errors.push(e)
    });
    Run {
        records,
        stats: outcome.stats,
        errors,
        names: outcome.names,
    }
}

pub fn run_file(path: &Path) -> Run {
    run_files(&[path.to_path_buf()], Config::default())
}

/// A record's endpoint as the corpus tests match it against tshark's: (address text, port).
pub type Endpoint = (String, u64);

/// The endpoint in a record's `client` or `server` object.
pub fn endpoint(v: &serde_json::Value) -> Endpoint {
    (
        v["ip"].as_str().unwrap().to_string(),
        v["port"].as_u64().unwrap(),
    )
}

/// A corpus capture's records as JSON, grouped by (client, server) endpoints, in record
/// order: where a tshark stream's record is looked up.
pub fn corpus_records_by_endpoints(
    local_path: &str,
) -> std::collections::HashMap<(Endpoint, Endpoint), Vec<serde_json::Value>> {
    let run = run_file(&corpus_dir().join(local_path));
    let mut by_endpoints = std::collections::HashMap::<_, Vec<_>>::new();
    for record in &run.records {
        let value = serde_json::to_value(record).unwrap();
        by_endpoints
            .entry((endpoint(&value["client"]), endpoint(&value["server"])))
            .or_default()
            .push(value);
    }
    by_endpoints
}

/// Runs `command` to completion and returns what it wrote.
///
/// Under Wine, starting a process now and then fails with ERROR_INTERNAL_ERROR (1359) when
/// many start at once: CI saw it once in `etl_files`' hundreds of runs. That is the test
/// host, not tlscensus, so a process that could not be *started* is tried again, a few
/// times and only on Windows. A process that started and then failed is never run again.
pub fn run_to_end(command: &mut std::process::Command) -> std::process::Output {
    let attempts = if cfg!(windows) { 5 } else { 1 };
    let mut last_error = None;
    for attempt in 0..attempts {
        match command.output() {
            Ok(out) => return out,
            Err(e) => {
                eprintln!(
                    "could not run {:?} (attempt {}): {e}",
                    command.get_program(),
                    attempt + 1
                );
                last_error = Some(e);
                std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
            }
        }
    }
    panic!("run {:?}: {}", command.get_program(), last_error.unwrap());
}
