//! `tlscensus schema clickhouse`: the DDL that `--events clickhouse://...` runs, for a
//! database administrator to review or run first.

use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::{Args, ValueEnum};

use tlscensus::sink::schema;
use tlscensus::sink::target::split_table;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Store {
    /// ClickHouse 18.16 (Debian 12's package) and later.
    Clickhouse,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The store whose DDL to print.
    #[arg(value_enum)]
    store: Store,

    /// The events table, as in clickhouse://HOST:PORT/DATABASE.TABLE; the census view is
    /// TABLE_census beside it.
    #[arg(
        long,
        value_name = "DATABASE.TABLE",
        default_value = "tlscensus.events"
    )]
    table: String,
}

pub fn schema(args: SchemaArgs) -> Result<ExitCode> {
    let Store::Clickhouse = args.store;
    let (database, table) = split_table(&args.table).ok_or_else(|| {
        anyhow!(
            "--table {:?}: expected DATABASE.TABLE (letters, digits, _)",
            args.table
        )
    })?;
    print!("{}", schema::script(&database, &table));
    Ok(ExitCode::SUCCESS)
}
