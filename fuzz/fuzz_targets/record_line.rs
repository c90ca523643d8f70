#![no_main]
//! A record line read back from ClickHouse (`report --from`): arbitrary text must give a
//! record or an error, never a panic; a record that parses writes back to a line that
//! parses to the same record.

use libfuzzer_sys::fuzz_target;
use tlscensus::sink::record_in;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(record) = record_in::parse(text) else {
        return;
    };
    let line = serde_json::to_string(&record).expect("records serialise");
    let again = record_in::parse(&line).expect("a written record reads back");
    assert_eq!(again, record);
});
