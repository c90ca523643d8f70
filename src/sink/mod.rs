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

impl SinkError {
    /// Whether the server refused the user or password (HTTP 401/403, or its error codes
    /// for an unknown user, a wrong or missing password, a failed authentication): no
    /// statement will go through until the credentials are fixed.
    pub fn is_authentication(&self) -> bool {
        match self {
            SinkError::Server {
                status, message, ..
            } => {
                // `Code: 193, e.displayText() = ...` (18.16), `Code: 516. DB::Exception: ...`
                // (current releases).
                let code = message
                    .strip_prefix("Code: ")
                    .and_then(|rest| rest.split([',', '.']).next())
                    .and_then(|n| n.parse::<u32>().ok());
                matches!(status, 401 | 403) || matches!(code, Some(192 | 193 | 194 | 516))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_credentials_are_told_from_other_refusals() {
        let server = |status, message: &str| SinkError::Server {
            url: "http://127.0.0.1:8123/".into(),
            status,
            message: message.into(),
        };
        // As 18.16 and current servers word them.
        assert!(server(
            500,
            "Code: 193, e.displayText() = DB::Exception: Wrong password for user census"
        )
        .is_authentication());
        assert!(server(
            500,
            "Code: 516. DB::Exception: census: Authentication failed"
        )
        .is_authentication());
        assert!(server(401, "anything").is_authentication());
        assert!(!server(
            500,
            "Code: 164, e.displayText() = DB::Exception: Cannot insert into table in readonly mode"
        )
        .is_authentication());
        assert!(!server(500, "Code: 1930, odd").is_authentication());
    }
}
