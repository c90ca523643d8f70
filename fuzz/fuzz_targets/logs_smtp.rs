#![no_main]
//! Exchange SMTP protocol log rows: any bytes, read as a receive and as a send log, give
//! records and malformed-row reports, never a panic; every record points at a row that
//! exists, comes from the kind of log read, and names an SSL/TLS version.

use libfuzzer_sys::fuzz_target;
use tlscensus::engine::Services;
use tlscensus::logs::smtp::SmtpParser;
use tlscensus::logs::{LogError, LogKind};

fuzz_target!(|data: &[u8]| {
    for kind in [LogKind::SmtpReceive, LogKind::SmtpSend] {
        let mut parser = SmtpParser::new(kind, Services::default());
        let (mut records, mut problems) = (Vec::new(), Vec::new());
        let counts = parser.read(
            data,
            "fuzz.log",
            &mut |r| records.push(r),
            &mut |e: LogError| problems.push(e.to_string()),
        );
        parser.finish();
        for record in &records {
            let line = record.capture.frame;
            assert!(
                line >= 1 && line <= counts.lines,
                "line {line} of {}",
                counts.lines
            );
            assert_eq!(record.source, kind.source());
            let log = record
                .log
                .as_ref()
                .expect("a log record says what the log said");
            assert!(
                [0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304].contains(&log.version.0),
                "{:?}",
                log.version
            );
            let _ = serde_json::to_string(record).expect("records serialise");
        }
        for problem in &problems {
            assert!(problem.starts_with("fuzz.log:"), "{problem}");
        }
    }
});
