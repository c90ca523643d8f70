//! One record as one JSONEachRow row of the events table ([`super::schema`]): the columns a
//! SQL user filters and groups by, and the record line itself, which `report --from` reads
//! back so its census is exactly a local run's.

use serde::Serialize;

use crate::census::{ciphers, CensusConfig};
use crate::record::Record;

/// Who wrote a row: the sensor (part of the table's key) and its run.
#[derive(Debug, Clone)]
pub struct Origin {
    pub sensor: String,
    pub run: String,
}

#[derive(Serialize)]
struct Row<'a> {
    sensor: &'a str,
    run: &'a str,
    seq: u64,
    time: &'a str,
    ts: &'a str,
    client_ip: String,
    via: String,
    client_port: u16,
    server_ip: String,
    server_port: u16,
    direction: &'static str,
    service: &'a str,
    outcome: &'static str,
    max_offered: &'a str,
    negotiated: &'a str,
    cipher_suite: String,
    sni: &'a str,
    ja4: &'a str,
    handshake_us: i64,
    record: &'a str,
}

/// `2024-05-01 10:00:03` from the record's `2024-05-01T10:00:03.123456Z`: the text form a
/// `DateTime('UTC')` column reads on every ClickHouse version.
fn datetime_of(ts: &str) -> String {
    match (ts.get(..10), ts.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time}"),
        _ => "1970-01-01 00:00:00".into(),
    }
}

/// Append `record`'s row (number `seq` of its run) and a newline to `out`; `line` is the
/// record already serialised (without its newline).
pub fn write_row(
    out: &mut Vec<u8>,
    origin: &Origin,
    seq: u64,
    config: &CensusConfig,
    record: &Record,
    line: &str,
) {
    let (client_ip, via) = match &record.client.proxied {
        Some(p) => (p.ip.to_string(), record.client.ip.to_string()),
        None => (record.client.ip.to_string(), String::new()),
    };
    let ch = record.client_hello.as_ref();
    let sh = record.server_hello.as_ref();
    let max_offered = ch.map(|c| c.max_version.name());
    // A server log's record has no hellos, but knows the version negotiated.
    let negotiated = sh
        .map(|s| s.version)
        .or(record.log.as_ref().map(|l| l.version))
        .map(|v| v.name());
    let time = datetime_of(&record.ts);
    let row = Row {
        sensor: &origin.sensor,
        run: &origin.run,
        seq,
        time: &time,
        ts: &record.ts,
        client_ip,
        via,
        client_port: record.client.port,
        server_ip: record.server.ip.to_string(),
        server_port: record.server.port,
        direction: config.record_direction(record).name(),
        service: &record.service,
        outcome: record.outcome.name(),
        max_offered: max_offered.as_deref().unwrap_or(""),
        negotiated: negotiated.as_deref().unwrap_or(""),
        cipher_suite: sh.map_or(String::new(), |s| ciphers::Code(s.cipher_suite).to_string()),
        sni: ch.and_then(|c| c.sni.as_deref()).unwrap_or(""),
        ja4: ch.map_or("", |c| c.ja4.as_str()),
        handshake_us: record
            .handshake_us
            .map_or(-1, |us| i64::try_from(us).unwrap_or(i64::MAX)),
        record: line,
    };
    serde_json::to_writer(&mut *out, &row).expect("rows always serialise");
    out.push(b'\n');
}
