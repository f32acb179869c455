//! The SQLite side of [`crate::store::sql::Tx`]: statements prepared once
//! per connection as written (SQLite reads `$n` as a parameter named
//! "$n": each value is bound by its name), run on the group commit's
//! connection, never waiting.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ToSql};

use super::group::Commit;
use super::SqliteStore;
use crate::chain::ChainKey;
use crate::store::sql::{Dialect, End, Kind, Param, Row, Tx, Value};
use crate::store::{StoreError, StoreResult};

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
            Param::Ints(_) | Param::BytesArray(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure("SQLite has no arrays: they bind on PostgreSQL only".into()))
            }
        })
    }
}

/// The names SQLite gives the statements' `$n` placeholders: it reads
/// `$1` as a parameter named "$1", so the text written for PostgreSQL is
/// prepared as it is, and each value bound by its name.
const NAMES: [&str; 16] = ["$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16"];

/// Binds `params` to `$1`, `$2`, …: every one, and nothing else.
fn bind(statement: &mut rusqlite::CachedStatement<'_>, params: &[Param<'_>]) -> StoreResult<()> {
    let count = statement.parameter_count();
    let wrong = || StoreError::Backend(format!("{} values for a statement of {count} parameters", params.len()));
    if params.len() != count || count > NAMES.len() {
        return Err(wrong());
    }
    for (name, param) in NAMES.iter().zip(params) {
        let index = statement.parameter_index(name)?.ok_or_else(wrong)?;
        statement.raw_bind_parameter(index, param)?;
    }
    Ok(())
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

    fn link_after_commit(&self) {
        // Never asked: SQLite's one writer links each row at its insert.
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> StoreResult<u64> {
        let mut statement = self.0.prepare_cached(sql)?;
        bind(&mut statement, params)?;
        Ok(u64::try_from(statement.raw_execute()?).unwrap_or(u64::MAX))
    }

    async fn query(&self, sql: &str, params: &[Param<'_>]) -> StoreResult<Vec<Row>> {
        let mut statement = self.0.prepare_cached(sql)?;
        bind(&mut statement, params)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(row_of(row, columns)?);
        }
        Ok(out)
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
            Kind::Read | Kind::ReadOne => self.group.read(|conn| op(&SqliteTx(conn, key)).map(End::into_inner)).await,
            Kind::Peek | Kind::PeekOne => self.group.peek(|conn| op(&SqliteTx(conn, key)).map(End::into_inner)).await,
            Kind::Relaxed | Kind::RelaxedOne => self.group.write_op(Commit::Relaxed, |conn| op(&SqliteTx(conn, key))).await,
            Kind::Independent | Kind::IndependentOne => self.group.write_op(Commit::Independent, |conn| op(&SqliteTx(conn, key))).await,
            Kind::Durable => self.group.write_op(Commit::Durable, |conn| op(&SqliteTx(conn, key))).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::complete_now;

    #[test]
    fn placeholders_bind_by_number_in_any_order_and_repeated() {
        let conn = Connection::open_in_memory().unwrap();
        let key = ChainKey::new(&crate::sealed::SecretsKey::sandbox());
        let tx = SqliteTx(&conn, &key);
        let sql = "SELECT $2 || $1 || $2, CAST($1 AS TEXT), '$1'";
        let row = complete_now(tx.query_one(sql, &["a".into(), "b".into()])).unwrap();
        assert_eq!(row, Row(vec![Value::Text("bab".into()), Value::Text("a".into()), Value::Text("$1".into())]));
        // Every value is bound, and nothing else.
        assert!(complete_now(tx.query_one(sql, &["a".into()])).is_err());
        assert!(complete_now(tx.query_one(sql, &["a".into(), "b".into(), "c".into()])).is_err());
    }
}
