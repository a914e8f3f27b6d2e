//! [`Io`] on rusqlite: statements run synchronously on the calling thread
//! (the store's writer or a reader, see [`super::threads`]), so every future
//! here is ready the first time it is polled.
//!
//! Statements are prepared once per connection and cached
//! ([`STATEMENT_CACHE`] of them). Arguments bind by name: `$3` takes the
//! third argument wherever it appears, as on PostgreSQL. Rows are read into
//! owned values ([`Row`]), since the work that reads them may hold them
//! across statements.

use std::sync::Arc;

use rusqlite::types::Value;

use super::Sqlite;
use crate::StoreError;
use crate::sql::query::{Arg, Io, Sql};

/// Prepared statements kept per connection.
pub const STATEMENT_CACHE: usize = 256;

/// One SQLite connection, used by one thread at a time; the writer's holds
/// the events its batch queued when the outbox is in memory.
#[derive(Debug)]
pub struct Conn(
    pub(super) rusqlite::Connection,
    pub(super) Option<crate::held::Pending>,
);

/// A row read back: its column names (shared by the rows of one statement)
/// and values.
#[derive(Debug)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    fn get(&self, col: &str) -> Result<&Value, StoreError> {
        self.columns
            .iter()
            .position(|c| c == col)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError::Corrupt(format!("no column {col}")))
    }
}

fn kind(col: &str, want: &str, got: &Value) -> StoreError {
    StoreError::Corrupt(format!("column {col}: expected {want}, got {got:?}"))
}

/// Bind `args` to `stmt`'s parameters, each `$n` to the n-th.
fn bind(stmt: &mut rusqlite::Statement<'_>, args: &[Arg]) -> Result<(), StoreError> {
    for index in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=args.len()).contains(n))
            .ok_or_else(|| StoreError::Corrupt(format!("statement parameter {index} unbound")))?;
        match &args[n - 1] {
            Arg::Text(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::Int(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::Flag(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::Texts(_) | Arg::Ints(_) => {
                return Err(StoreError::Corrupt(format!(
                    "statement parameter {index}: SQLite takes no arrays"
                )));
            }
        }
    }
    Ok(())
}

fn fetch(conn: &mut Conn, sql: &Sql) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.0.prepare_cached(sql.sql())?;
    bind(&mut stmt, sql.args())?;
    let columns: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..width)
            .map(|i| row.get_ref(i).map(Value::from))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(Row {
            columns: columns.clone(),
            values,
        });
    }
    Ok(out)
}

fn execute(conn: &mut Conn, sql: &Sql) -> Result<u64, StoreError> {
    let mut stmt = conn.0.prepare_cached(sql.sql())?;
    bind(&mut stmt, sql.args())?;
    Ok(stmt.raw_execute()? as u64)
}

impl Io for Sqlite {
    type Conn = Conn;
    type Row = Row;

    async fn fetch(conn: &mut Conn, sql: Sql) -> Result<Vec<Row>, StoreError> {
        fetch(conn, &sql)
    }

    async fn execute(conn: &mut Conn, sql: Sql) -> Result<u64, StoreError> {
        execute(conn, &sql)
    }

    fn get_int(row: &Row, col: &str) -> Result<Option<i64>, StoreError> {
        match row.get(col)? {
            Value::Null => Ok(None),
            Value::Integer(v) => Ok(Some(*v)),
            other => Err(kind(col, "an integer", other)),
        }
    }

    fn get_text(row: &Row, col: &str) -> Result<Option<String>, StoreError> {
        match row.get(col)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            other => Err(kind(col, "text", other)),
        }
    }

    fn get_flag(row: &Row, col: &str) -> Result<bool, StoreError> {
        match row.get(col)? {
            Value::Integer(v) => Ok(*v != 0),
            other => Err(kind(col, "a boolean", other)),
        }
    }

    fn unique_violation(e: &StoreError) -> bool {
        matches!(
            e,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _))
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    }
}
