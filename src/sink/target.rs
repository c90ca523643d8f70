//! `clickhouse://HOST:PORT/DATABASE.TABLE`: which server and table the records go to, and
//! who we are to it. Credentials never come from the command line (where `ps` shows them):
//! only from the environment or a file.

use std::path::Path;

use super::SinkError;

/// The scheme that marks an `--events` value as a ClickHouse table rather than a file.
pub const SCHEME: &str = "clickhouse://";

/// Environment variables read for the user and password.
pub const USER_ENV: &str = "TLSCENSUS_CLICKHOUSE_USER";
pub const PASSWORD_ENV: &str = "TLSCENSUS_CLICKHOUSE_PASSWORD";

/// A ClickHouse table reached through the HTTP interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub table: String,
}

impl Target {
    /// Whether `text` names a ClickHouse table (and not a file).
    pub fn is_url(text: &str) -> bool {
        text.get(..SCHEME.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
    }

    /// Parse `clickhouse://HOST[:PORT]/DATABASE.TABLE` (port 8123 when not given; an IPv6
    /// host in brackets). Names are plain identifiers, so they go into SQL unquoted.
    pub fn parse(text: &str) -> Result<Target, SinkError> {
        let bad = |why: &str| {
            SinkError::Address(format!(
                "{text:?}: {why} (expected clickhouse://HOST:PORT/DATABASE.TABLE)"
            ))
        };
        if !Target::is_url(text) {
            return Err(bad("not a clickhouse:// address"));
        }
        let rest = &text[SCHEME.len()..];
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no /DATABASE.TABLE"))?;
        if authority.contains('@') {
            return Err(SinkError::Address(format!(
                "{text:?}: credentials are not taken from the command line; set {USER_ENV} and \
                 {PASSWORD_ENV}, or give --clickhouse-credentials FILE"
            )));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad HOST:PORT"))?;
        let (database, table) = split_table(path).ok_or_else(|| bad("bad DATABASE.TABLE"))?;
        Ok(Target {
            host,
            port,
            database,
            table,
        })
    }

    /// `http://HOST:PORT/`, the HTTP interface's root.
    pub fn http_root(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}/", self.host, self.port)
        } else {
            format!("http://{}:{}/", self.host, self.port)
        }
    }

    /// `DATABASE.TABLE` for SQL.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }

    /// A file name that says which server and table, for the default spool directory.
    pub fn file_name(&self) -> String {
        let host: String = self
            .host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{host}_{}_{}.{}", self.port, self.database, self.table)
    }
}

fn split_host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok().filter(|p| *p != 0)?,
        None => 8123,
    };
    Some((host.to_string(), port))
}

/// `DATABASE.TABLE`, or a bare `DATABASE.TABLE` given to `schema --table`.
pub fn split_table(text: &str) -> Option<(String, String)> {
    let (db, table) = text.split_once('.')?;
    (is_identifier(db) && is_identifier(table)).then(|| (db.to_string(), table.to_string()))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A ClickHouse user and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials {{ user: {:?}, password: *** }}", self.user)
    }
}

impl Credentials {
    /// Where the credentials come from, for messages.
    pub fn where_from() -> String {
        format!(
            "they come from {USER_ENV} and {PASSWORD_ENV}, or from the file \
             --clickhouse-credentials names"
        )
    }

    /// From `file` when given (first line `USER:PASSWORD`, or `USER` alone for no
    /// password), else from the environment; none when neither names a user (ClickHouse's
    /// `default` user then).
    pub fn load(file: Option<&Path>) -> Result<Option<Credentials>, SinkError> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                SinkError::Credentials(format!(
                    "--clickhouse-credentials {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
            let (user, password) = line.split_once(':').unwrap_or((line, ""));
            if user.is_empty() {
                return Err(SinkError::Credentials(format!(
                    "{}: line 1: expected USER:PASSWORD",
                    path.display()
                )));
            }
            return Ok(Some(Credentials {
                user: user.to_string(),
                password: password.to_string(),
            }));
        }
        let user = std::env::var(USER_ENV).ok().filter(|u| !u.is_empty());
        let password = std::env::var(PASSWORD_ENV).unwrap_or_default();
        Ok(match user {
            Some(user) => Some(Credentials { user, password }),
            None if !password.is_empty() => Some(Credentials {
                user: "default".into(),
                password,
            }),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_reject_what_they_should() {
        let t = Target::parse("clickhouse://ch1.example:9123/tls.events").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("ch1.example", 9123));
        assert_eq!(t.qualified(), "tls.events");
        let t = Target::parse("clickhouse://[::1]/db.t").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 8123));
        assert_eq!(t.http_root(), "http://[::1]:8123/");
        for bad in [
            "clickhouse://h:1/nodot",
            "clickhouse://h:1/db.t;drop",
            "clickhouse://u:p@h:1/db.t",
            "clickhouse://h:0/db.t",
            "clickhouse:///db.t",
            "http://h/db.t",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
