//! The DDL that `--events clickhouse://...` runs and `tlscensus schema clickhouse` prints.
//!
//! Only types and engines that ClickHouse 18.16 (Debian 12's package) already had, so one
//! schema serves old and current servers: no Nullable (empty string or -1 stand for
//! "none"), no LowCardinality, no insert deduplication tokens.
//!
//! Retried batches must not count twice. A batch that timed out may have been inserted
//! anyway, the next run resends what a run spooled, and `watch` restarted after a crash
//! reads again what its state had not yet recorded. So the table deduplicates by connection:
//! it is a ReplacingMergeTree whose key is the sensor, the ClientHello's time to the
//! microsecond, and the connection's addresses and ports. Copies of a record share that key
//! and collapse into one row when parts merge; `FINAL` (which the census view and
//! `tlscensus report --from` use) collapses them at query time before any merge. Two
//! sensors that see the same connection keep a row each, as `merge` of their reports
//! counts it twice. The key also orders the table by sensor and time, which time-range
//! queries want. Block deduplication of ReplicatedMergeTree would need identical batches
//! and ZooKeeper; `insert_deduplication_token` came years after 18.16.

use super::target::Target;

/// `CREATE DATABASE` and `CREATE TABLE` for the events, and the census view: the
/// statements `--events` runs, in order, each without a trailing semicolon.
pub fn statements(database: &str, table: &str) -> Vec<String> {
    vec![
        format!("CREATE DATABASE IF NOT EXISTS {database}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {database}.{table}
(
    sensor       String,            -- --sensor of the tlscensus that saw it
    run          String,            -- the run that sent it (its start and process id)
    seq          UInt64,            -- the record's number in that run
    time         DateTime('UTC'),   -- the ClientHello's time, to the second
    ts           String,            -- the same to the microsecond, as in the record
    client_ip    String,            -- the client (the PROXY header's when a load balancer gave one)
    via          String,            -- the load balancer's address when it did, else ''
    client_port  UInt16,
    server_ip    String,
    server_port  UInt16,
    direction    String,            -- inbound, outbound, other (by the sensor's --server)
    service      String,
    outcome      String,            -- negotiated, alert, no_server_hello, incomplete, plaintext
    max_offered  String,            -- the client's highest version, '' without a ClientHello
    negotiated   String,            -- the version the server chose (or a server log says), else ''
    cipher_suite String,            -- the chosen suite ('0xc02f'), '' without a ServerHello
    sni          String,
    ja4          String,
    handshake_us Int64,             -- ClientHello to ServerHello, -1 when not both seen
    record       String             -- the whole JSON record, exactly as --events FILE has it
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (sensor, ts, client_ip, via, client_port, server_ip, server_port)"
        ),
        format!(
            "CREATE VIEW IF NOT EXISTS {database}.{table}_census AS
SELECT
    client_ip,
    via,
    direction,
    service,
    count() AS connections,
    countIf(negotiated = 'SSLv3') AS ssl3,
    countIf(negotiated = 'TLSv1.0') AS tls10,
    countIf(negotiated = 'TLSv1.1') AS tls11,
    countIf(negotiated = 'TLSv1.2') AS tls12,
    countIf(negotiated = 'TLSv1.3') AS tls13,
    countIf(outcome = 'plaintext') AS plaintext,
    countIf(outcome IN ('alert', 'no_server_hello')) AS failed,
    countIf(outcome = 'incomplete') AS incomplete,
    groupUniqArray(max_offered) AS max_offered,
    groupUniqArray(sni) AS sni,
    groupUniqArray(sensor) AS sensors,
    min(ts) AS first_seen,
    max(ts) AS last_seen
FROM {database}.{table} FINAL
GROUP BY client_ip, via, direction, service"
        ),
    ]
}

/// The DDL as a script for `clickhouse-client --multiquery`.
pub fn script(target_database: &str, target_table: &str) -> String {
    let mut out = String::from(
        "-- tlscensus events table and per-client census view (ClickHouse 18.16 and later).\n\
         -- Query the census with FINAL-collapsed rows: SELECT * FROM <table>_census.\n",
    );
    for statement in statements(target_database, target_table) {
        out.push_str(&statement);
        out.push_str(";\n\n");
    }
    out
}

/// The statements for a target.
pub fn for_target(target: &Target) -> Vec<String> {
    statements(&target.database, &target.table)
}
