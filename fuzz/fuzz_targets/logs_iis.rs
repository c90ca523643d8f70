#![no_main]
//! IIS W3C log lines: any bytes give records and malformed-line reports, never a panic; every
//! record points at a line that exists, and reading the same bytes again gives the same.

use libfuzzer_sys::fuzz_target;
use tlscensus::engine::Services;
use tlscensus::logs::iis::IisParser;
use tlscensus::logs::{sniff, LogError};

fn read(data: &[u8]) -> (Vec<String>, Vec<String>, u64) {
    let mut parser = IisParser::new(Services::default());
    let (mut records, mut problems) = (Vec::new(), Vec::new());
    let counts = parser.read(
        data,
        "fuzz.log",
        &mut |r| records.push(serde_json::to_string(&r).expect("records serialise")),
        &mut |e: LogError| problems.push(e.to_string()),
    );
    (records, problems, counts.lines)
}

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data);
    let (records, problems, lines) = read(data);
    for record in &records {
        let value: serde_json::Value = serde_json::from_str(record).unwrap();
        let line = value["capture"]["frame"].as_u64().unwrap();
        assert!(line >= 1 && line <= lines, "line {line} of {lines}");
        assert_eq!(value["source"], "iis-log");
    }
    for problem in &problems {
        assert!(problem.starts_with("fuzz.log:"), "{problem}");
    }
    assert_eq!((records, problems, lines), read(data));
});
