//! The ClickHouse HTTP interface: statements, JSONEachRow inserts and streamed selects,
//! through a small blocking client (ureq) with timeouts, so a server that never answers
//! costs a bounded wait.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use base64::Engine as _;

use super::target::{Credentials, Target};
use super::SinkError;

/// A connection pool to one server, with the credentials every request carries.
pub struct Client {
    agent: ureq::Agent,
    root: String,
    authorization: Option<String>,
}

impl Client {
    /// A client whose requests give up after `timeout` (connecting, sending, and waiting
    /// for the answer; a select's rows may then take as long as they take).
    pub fn new(target: &Target, credentials: Option<&Credentials>, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .build()
            .into();
        // Basic authentication: the one way every ClickHouse version accepts.
        let authorization = credentials.map(|c| {
            let pair = format!("{}:{}", c.user, c.password);
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Client {
            agent,
            root: target.http_root(),
            authorization,
        }
    }

    fn post(&self, query: Option<&str>, body: &[u8]) -> Result<ureq::Body, SinkError> {
        let mut request = self.agent.post(&self.root);
        if let Some(q) = query {
            request = request.query("query", q);
        }
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let response = request.send(body).map_err(|e| SinkError::Transport {
            url: self.root.clone(),
            cause: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        if status != 200 {
            let message = body
                .with_config()
                .limit(64 << 10)
                .lossy_utf8(true)
                .read_to_string()
                .unwrap_or_default();
            let mut error = SinkError::Server {
                url: self.root.clone(),
                status,
                message: message.trim().to_string(),
            };
            if error.is_authentication() {
                if let SinkError::Server { message, .. } = &mut error {
                    message.push_str(&format!(
                        " (the user or password is not accepted: {})",
                        super::target::Credentials::where_from()
                    ));
                }
            }
            return Err(error);
        }
        Ok(body)
    }

    /// Run one statement (DDL, or a small select) and return its answer.
    pub fn execute(&self, statement: &str) -> Result<String, SinkError> {
        let mut body = self.post(None, statement.as_bytes())?;
        body.with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| self.transport(e.to_string()))
    }

    /// Insert `rows` (JSON objects, one a line) into `table` (`DATABASE.TABLE`).
    pub fn insert(&self, table: &str, rows: &[u8]) -> Result<(), SinkError> {
        let query = format!("INSERT INTO {table} FORMAT JSONEachRow");
        let mut body = self.post(Some(&query), rows)?;
        // Read the (empty) answer to the end, so the connection goes back to the pool.
        std::io::copy(&mut body.as_reader(), &mut std::io::sink())
            .map_err(|e| self.transport(e.to_string()))?;
        Ok(())
    }

    /// Run a select whose answer is one value per line (`FORMAT TabSeparatedRaw`), handing
    /// each line to `each` as it arrives: the answer may be far larger than memory.
    pub fn select_lines(
        &self,
        query: &str,
        mut each: impl FnMut(&str) -> Result<(), SinkError>,
    ) -> Result<u64, SinkError> {
        let body = self.post(None, query.as_bytes())?;
        let reader: Box<dyn Read> = Box::new(body.into_with_config().limit(u64::MAX).reader());
        let mut reader = BufReader::with_capacity(1 << 20, reader);
        let mut line = String::new();
        let mut lines = 0;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| self.transport(e.to_string()))?;
            if n == 0 {
                return Ok(lines);
            }
            lines += 1;
            each(line.trim_end_matches('\n'))?;
        }
    }

    fn transport(&self, cause: String) -> SinkError {
        SinkError::Transport {
            url: self.root.clone(),
            cause,
        }
    }
}
