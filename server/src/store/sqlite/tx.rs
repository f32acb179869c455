//! The SQLite side of [`crate::store::sql::Tx`]: statements prepared once
//! per connection (their `$n` placeholders rewritten to `?n`), run on the
//! group commit's connection, never waiting.

use rusqlite::types::ValueRef;
use rusqlite::{params_from_iter, Connection, ToSql};

use super::group::Commit;
use super::SqliteStore;
use crate::chain::ChainKey;
use crate::store::sql::{sqlite_placeholders, Dialect, End, Kind, Param, Row, Tx, Value};
use crate::store::StoreResult;

/// A transaction: the group commit's connection, inside the operation's
/// savepoint (or the read's snapshot).
pub(crate) struct SqliteTx<'c>(&'c Connection, &'c ChainKey);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ToSqlOutput::Borrowed;
        Ok(match *self {
            Param::Null => Borrowed(ValueRef::Null),
            Param::Int(v) => Borrowed(ValueRef::Integer(v)),
            Param::Text(v) => Borrowed(ValueRef::Text(v.as_bytes())),
            Param::Bytes(v) => Borrowed(ValueRef::Blob(v)),
            Param::Bool(v) => Borrowed(ValueRef::Integer(i64::from(v))),
        })
    }
}

fn row_of(row: &rusqlite::Row<'_>, columns: usize) -> rusqlite::Result<Row> {
    let mut values = Vec::with_capacity(columns);
    for index in 0..columns {
        values.push(match row.get_ref(index)? {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::Int(v),
            // No column of Passgate's holds a REAL.
            ValueRef::Real(v) => Value::Text(v.to_string()),
            ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
            ValueRef::Blob(v) => Value::Bytes(v.to_vec()),
        });
    }
    Ok(Row(values))
}

impl Tx for SqliteTx<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn chain_key(&self) -> &ChainKey {
        self.1
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> StoreResult<u64> {
        let changed = self.0.prepare_cached(&sqlite_placeholders(sql))?.execute(params_from_iter(params))?;
        Ok(u64::try_from(changed).unwrap_or(u64::MAX))
    }

    async fn query(&self, sql: &str, params: &[Param<'_>]) -> StoreResult<Vec<Row>> {
        let mut statement = self.0.prepare_cached(&sqlite_placeholders(sql))?;
        let columns = statement.column_count();
        let rows = statement.query_map(params_from_iter(params), |r| row_of(r, columns))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

impl SqliteStore {
    /// Runs an operation written once for both databases (`$op`, over the
    /// transaction `$tx`), as `kind`: in the group commit for a write (a
    /// refusal, [`End::Rollback`], undoes the operation's writes as an
    /// error does), on one snapshot for a read.
    pub(crate) async fn run<T>(&self, kind: Kind, op: impl for<'c> FnOnce(&'c SqliteTx<'c>) -> StoreResult<End<T>>) -> StoreResult<T> {
        let key = &self.chain_key;
        match kind {
            Kind::Read => self.group.read(|conn| op(&SqliteTx(conn, key)).map(End::into_inner)).await,
            Kind::Peek => self.group.peek(|conn| op(&SqliteTx(conn, key)).map(End::into_inner)).await,
            Kind::Relaxed => self.group.write_op(Commit::Relaxed, |conn| op(&SqliteTx(conn, key))).await,
            Kind::Durable => self.group.write_op(Commit::Durable, |conn| op(&SqliteTx(conn, key))).await,
        }
    }
}
