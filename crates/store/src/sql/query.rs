//! The only code that runs SQL: [`Sql`] (a statement and its arguments),
//! [`Rec`] (a row read back) and [`Io`], which each driver implements:
//! sqlx for PostgreSQL (here), rusqlite for SQLite (`crate::sqlite`).
//!
//! Statements are written once, with `$1, $2, …` placeholders, which SQLite
//! and PostgreSQL both accept. Values are bound as `TEXT` (ids, names),
//! `BIGINT` (seqs, Unix ms) or `BOOLEAN`; columns are read back the same way.
//! On PostgreSQL an integer expression must be `BIGINT` (`count(*)`,
//! `CAST(… AS BIGINT)`), because its driver checks column types strictly.

use std::borrow::Cow;
use std::future::Future;
use std::str::FromStr;

use roomcast_core::rfc3339_ms;
use sqlx::{Database, Row as _};

use crate::StoreError;

/// One bound value.
#[derive(Clone, Debug)]
pub enum Arg {
    /// `TEXT`, or `NULL`.
    Text(Option<String>),
    /// `BIGINT`, or `NULL`.
    Int(Option<i64>),
    /// `BOOLEAN`.
    Flag(bool),
    /// `TEXT[]` (elements may be `NULL`): PostgreSQL only, for `unnest`.
    Texts(Vec<Option<String>>),
    /// `BIGINT[]`: PostgreSQL only, for `unnest`.
    Ints(Vec<i64>),
}

/// A statement and its arguments, bound in order to `$1, $2, …`.
#[derive(Clone, Debug)]
pub struct Sql {
    text: Cow<'static, str>,
    args: Vec<Arg>,
}

/// `$first, $first+1, …` for `n` values, for an `IN (…)` list.
pub fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($first, …, $first+width-1), ($first+width, …), …` for a multi-row
/// `INSERT … VALUES` of `rows` rows of `width` arguments each.
pub fn value_rows_from(first: usize, rows: usize, width: usize) -> String {
    (0..rows)
        .map(|i| format!("({})", placeholders(first + width * i, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Sql {
    /// A statement with no arguments yet.
    pub fn new(text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Bind text (an id, a name: anything displayed).
    pub fn text(mut self, v: impl ToString) -> Self {
        self.args.push(Arg::Text(Some(v.to_string())));
        self
    }

    /// Bind text or `NULL`.
    pub fn opt_text(mut self, v: Option<impl ToString>) -> Self {
        self.args.push(Arg::Text(v.map(|v| v.to_string())));
        self
    }

    /// Bind each of `vs` as text, in order.
    pub fn texts<T: ToString>(self, vs: impl IntoIterator<Item = T>) -> Self {
        vs.into_iter().fold(self, Self::text)
    }

    /// Bind an integer.
    pub fn int(mut self, v: i64) -> Self {
        self.args.push(Arg::Int(Some(v)));
        self
    }

    /// Bind an integer or `NULL`.
    pub fn opt_int(mut self, v: Option<i64>) -> Self {
        self.args.push(Arg::Int(v));
        self
    }

    /// Bind a boolean.
    pub fn flag(mut self, v: bool) -> Self {
        self.args.push(Arg::Flag(v));
        self
    }

    /// Bind one argument.
    pub fn arg(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self
    }

    /// Bind `args`, in order.
    pub fn args_from(mut self, args: impl IntoIterator<Item = Arg>) -> Self {
        self.args.extend(args);
        self
    }

    /// Every row.
    pub async fn all<D: Io>(self, conn: &mut D::Conn) -> Result<Vec<Rec<D>>, StoreError> {
        let rows = D::fetch(conn, self).await?;
        Ok(rows.into_iter().map(Rec).collect())
    }

    /// The first row, if any.
    pub async fn opt<D: Io>(self, conn: &mut D::Conn) -> Result<Option<Rec<D>>, StoreError> {
        Ok(self.all(conn).await?.into_iter().next())
    }

    /// The first row; a statement that returns none is a database error.
    pub async fn one<D: Io>(self, conn: &mut D::Conn) -> Result<Rec<D>, StoreError> {
        self.opt(conn)
            .await?
            .ok_or_else(|| sqlx::Error::RowNotFound.into())
    }

    /// Run it; how many rows it changed.
    pub async fn run<D: Io>(self, conn: &mut D::Conn) -> Result<u64, StoreError> {
        D::execute(conn, self).await
    }
}

/// A row read back.
pub struct Rec<D: Io>(D::Row);

fn corrupt(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("column {col}: {e}"))
}

impl<D: Io> Rec<D> {
    /// A non-null integer column.
    pub fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.opt_int(col)?.ok_or_else(|| corrupt(col, "null"))
    }

    /// An integer column.
    pub fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        D::get_int(&self.0, col)
    }

    /// A non-null text column.
    pub fn text(&self, col: &str) -> Result<String, StoreError> {
        self.opt_text(col)?.ok_or_else(|| corrupt(col, "null"))
    }

    /// A text column.
    pub fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        D::get_text(&self.0, col)
    }

    /// A boolean column (an integer on SQLite).
    pub fn flag(&self, col: &str) -> Result<bool, StoreError> {
        D::get_flag(&self.0, col)
    }

    /// A text column parsed as `T` (an id, a role).
    pub fn id<T: FromStr>(&self, col: &str) -> Result<T, StoreError> {
        let s = self.text(col)?;
        s.parse()
            .map_err(|_| corrupt(col, format!("bad value {s:?}")))
    }

    /// A nullable text column parsed as `T`.
    pub fn opt_id<T: FromStr>(&self, col: &str) -> Result<Option<T>, StoreError> {
        match self.opt_text(col)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| corrupt(col, format!("bad value {s:?}"))),
        }
    }

    /// A Unix-ms column as RFC 3339.
    pub fn time(&self, col: &str) -> Result<String, StoreError> {
        Ok(rfc3339_ms(self.int(col)?))
    }

    /// A nullable Unix-ms column as RFC 3339.
    pub fn opt_time(&self, col: &str) -> Result<Option<String>, StoreError> {
        Ok(self.opt_int(col)?.map(rfc3339_ms))
    }
}

/// What a driver does for [`Sql`] and [`Rec`]: implemented for
/// [`sqlx::Postgres`] here and for [`crate::sqlite::Sqlite`] (rusqlite, on
/// the store's own threads) in `sqlite::io`.
pub trait Io: Send + Sync + Sized + 'static {
    /// A connection, inside whatever transaction the operation holds.
    type Conn: Send;
    /// A row read back.
    type Row: Send + Sync;
    /// Run `sql`, returning its rows.
    fn fetch(
        conn: &mut Self::Conn,
        sql: Sql,
    ) -> impl Future<Output = Result<Vec<Self::Row>, StoreError>> + Send + '_;
    /// Run `sql`, returning how many rows it changed.
    fn execute(
        conn: &mut Self::Conn,
        sql: Sql,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send + '_;
    /// Read an integer column.
    fn get_int(row: &Self::Row, col: &str) -> Result<Option<i64>, StoreError>;
    /// Read a text column.
    fn get_text(row: &Self::Row, col: &str) -> Result<Option<String>, StoreError>;
    /// Read a boolean column.
    fn get_flag(row: &Self::Row, col: &str) -> Result<bool, StoreError>;
    /// Whether `e` is a unique-constraint violation.
    fn unique_violation(e: &StoreError) -> bool;
}

impl Io for sqlx::Postgres {
    type Conn = sqlx::PgConnection;
    type Row = sqlx::postgres::PgRow;

    async fn fetch(conn: &mut Self::Conn, sql: Sql) -> Result<Vec<Self::Row>, StoreError> {
        Ok(bind::<sqlx::Postgres>(&sql).fetch_all(conn).await?)
    }

    async fn execute(conn: &mut Self::Conn, sql: Sql) -> Result<u64, StoreError> {
        Ok(bind::<sqlx::Postgres>(&sql)
            .execute(conn)
            .await?
            .rows_affected())
    }

    fn get_int(row: &Self::Row, col: &str) -> Result<Option<i64>, StoreError> {
        Ok(row.try_get(col)?)
    }

    fn get_text(row: &Self::Row, col: &str) -> Result<Option<String>, StoreError> {
        Ok(row.try_get(col)?)
    }

    fn get_flag(row: &Self::Row, col: &str) -> Result<bool, StoreError> {
        Ok(row.try_get(col)?)
    }

    fn unique_violation(e: &StoreError) -> bool {
        matches!(e, StoreError::Db(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

impl Sql {
    /// The statement's text.
    pub fn sql(&self) -> &str {
        &self.text
    }

    /// Its arguments, in order (`$1` first).
    pub fn args(&self) -> &[Arg] {
        &self.args
    }
}

/// `sql` as a sqlx query with its arguments bound.
fn bind<'q, D>(sql: &'q Sql) -> sqlx::query::Query<'q, D, D::Arguments<'q>>
where
    D: Database,
    Option<String>: sqlx::Encode<'q, D> + sqlx::Type<D>,
    Option<i64>: sqlx::Encode<'q, D> + sqlx::Type<D>,
    bool: sqlx::Encode<'q, D> + sqlx::Type<D>,
    Vec<Option<String>>: sqlx::Encode<'q, D> + sqlx::Type<D>,
    Vec<i64>: sqlx::Encode<'q, D> + sqlx::Type<D>,
{
    sql.args
        .iter()
        .fold(sqlx::query(&sql.text), |q, arg| match arg {
            Arg::Text(v) => q.bind(v.clone()),
            Arg::Int(v) => q.bind(*v),
            Arg::Flag(v) => q.bind(*v),
            Arg::Texts(v) => q.bind(v.clone()),
            Arg::Ints(v) => q.bind(v.clone()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_from_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
        assert_eq!(placeholders(1, 0), "");
    }
}
