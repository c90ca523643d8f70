//! The output does not depend on the number of worker threads: 1, 2 and 4 give byte-identical
//! event streams, over every corpus capture and our own.

mod common;

use std::path::PathBuf;

use tlscensus::engine::Config;

fn events(paths: &[PathBuf], threads: usize) -> String {
    let run = common::run_threads(paths, Config::default(), threads);
    run.records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn one_two_and_four_threads_write_the_same_events() {
    let corpus = common::corpus_dir();
    let mut files: Vec<PathBuf> = common::manifest()
        .into_iter()
        .map(|(path, _)| corpus.join(path))
        .collect();
    let mut own: Vec<PathBuf> = std::fs::read_dir(common::pcaps_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    own.sort();
    files.extend(own);
    // Per file, and all files as one stream (the many flows then share the workers).
    for file in files.iter().take(40) {
        let one = events(std::slice::from_ref(file), 1);
        assert_eq!(
            one,
            events(std::slice::from_ref(file), 2),
            "{}",
            file.display()
        );
    }
    let ordered = tlscensus::pipeline::order_by_time(&files);
    let one = events(&ordered, 1);
    assert!(
        one.lines().count() > 1000,
        "the whole corpus gives over a thousand records"
    );
    assert_eq!(one, events(&ordered, 2), "2 threads");
    assert_eq!(one, events(&ordered, 4), "4 threads");
}
