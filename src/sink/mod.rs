//! Where records go besides a file: a ClickHouse table, through a bounded on-disk spool that
//! absorbs the server's outages.
//!
//! * [`target`]: the `clickhouse://HOST:PORT/DATABASE.TABLE` address and the credentials;
//! * [`schema`]: the DDL of the events table and of the per-client census view;
//! * [`row`]: one record → one JSONEachRow row (the record line plus columns for SQL);
//! * [`http`]: the ClickHouse HTTP interface (queries, inserts, streamed selects);
//! * [`spool`]: the directory of batches not yet delivered, replayed in order;
//! * [`clickhouse`]: the sender thread that batches, inserts, retries and spools;
//! * [`record_in`]: a record line read back into a [`crate::record::Record`] (for
//!   `tlscensus report --from`).

pub mod clickhouse;
pub mod http;
pub mod record_in;
pub mod row;
pub mod schema;
pub mod spool;
pub mod target;

/// Why ClickHouse could not be reached, spoken to, or the spool used.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{0}")]
    Address(String),
    #[error("{0}")]
    Credentials(String),
    #[error("ClickHouse at {url}: {cause}")]
    Transport { url: String, cause: String },
    #[error("ClickHouse at {url} refused the query (HTTP {status}): {message}")]
    Server {
        url: String,
        status: u16,
        message: String,
    },
    #[error("spool {}: {cause}", path.display())]
    Spool {
        path: std::path::PathBuf,
        cause: std::io::Error,
    },
}
