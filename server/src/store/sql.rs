//! The narrow seam between an operation and either database: SQL text
//! written once with `$n` placeholders, the values it binds ([`Param`]),
//! the rows it reads ([`Row`]), in one transaction ([`Tx`]). An operation
//! is one `async fn` over a `Tx` (generic: each backend is compiled in,
//! no boxing); where the dialects truly differ, it branches on
//! [`Tx::dialect`] side by side in the same function.
//!
//! How an operation ends is its own to say ([`End`]): a refusal rolls
//! back everything it wrote, on both databases (SQLite's group commit
//! rolls it back to its savepoint, PostgreSQL rolls the transaction back).

use std::future::Future;

use super::{StoreError, StoreResult};
use crate::chain::ChainKey;

/// How an operation's transaction ends.
#[derive(Debug)]
pub enum End<T> {
    Commit(T),
    /// Undo everything the operation wrote, and answer `T`.
    Rollback(T),
}

impl<T> End<T> {
    /// The answer, however the transaction ended.
    pub fn into_inner(self) -> T {
        match self {
            End::Commit(value) | End::Rollback(value) => value,
        }
    }
}

/// What a transaction may do, and how durable its commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads on one snapshot; answered once what it read is as durable as
    /// its writers asked (SQLite: after the fsync of a decision it saw).
    Read,
    /// Reads on one snapshot, answered at once: only for data whose loss
    /// to a power cut no answer depends on (the directory, which requests
    /// do not write: a caller's access token), or for a caller that
    /// answers nothing from it ([`Lookup::Rechecked`]). The request's own
    /// writes still wait for their fsync, which covers everything before
    /// them.
    Peek,
    /// A [`Kind::Peek`] of exactly one statement: PostgreSQL runs it
    /// without a transaction of its own (one statement reads one
    /// snapshot), sparing a `BEGIN` and a `COMMIT` on the path of every
    /// partner request; a second statement is refused there.
    PeekOne,
    /// A [`Kind::Read`] of exactly one statement: PostgreSQL runs it as
    /// [`Kind::PeekOne`]; SQLite answers it as a read.
    ReadOne,
    /// A write a power cut may lose without harm (a poll's time, a rate
    /// taken): its commit does not wait for stable storage. Its answer
    /// still waits for the fsync of others' writes it may have seen.
    Relaxed,
    /// A [`Kind::Relaxed`] write of exactly one statement that never
    /// refuses: PostgreSQL runs it alone, committed as it runs (a
    /// connection's own commits do not wait for the WAL's flush: see
    /// `postgres::tx`); a second statement, or a rollback, is refused.
    RelaxedOne,
    /// A relaxed write whose answer shows only what it wrote itself (a
    /// new session's token, a ceremony's challenge) or refuses: answered
    /// once committed, without waiting for anyone's fsync. A refusal it
    /// read from others' writes errs on the safe side if a power cut
    /// undoes them.
    Independent,
    /// A [`Kind::Independent`] write of exactly one statement that never
    /// refuses, run alone on PostgreSQL as [`Kind::RelaxedOne`] is.
    IndependentOne,
    /// A write answered once on stable storage: decisions, factors.
    Durable,
}

/// How a look-up that comes before a write may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Once what it read is as durable as its writers asked: the caller
    /// answers with what it read.
    Settled,
    /// At once ([`Kind::Peek`]): the caller promises nothing from what it
    /// read. It checks it again in a durable write, whose wait covers
    /// everything before it, or only starts a ceremony such a write will
    /// finish.
    Rechecked,
}

impl Lookup {
    pub(crate) fn kind(self) -> Kind {
        match self {
            Lookup::Settled => Kind::Read,
            Lookup::Rechecked => Kind::Peek,
        }
    }

    /// The kind of a look-up of exactly one statement.
    pub(crate) fn one_statement(self) -> Kind {
        match self {
            Lookup::Settled => Kind::ReadOne,
            Lookup::Rechecked => Kind::PeekOne,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A value bound to a statement. Integers bind to whatever integer type
/// PostgreSQL infers for the placeholder (checked, never truncated).
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Bytes(&'a [u8]),
    Bool(bool),
    /// An array of integers: PostgreSQL only (`$n::BIGINT[]`).
    Ints(&'a [i64]),
    /// An array of byte strings: PostgreSQL only (`$n::BYTEA[]`).
    BytesArray(&'a [&'a [u8]]),
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl From<u32> for Param<'_> {
    fn from(v: u32) -> Self {
        Param::Int(i64::from(v))
    }
}

impl From<bool> for Param<'_> {
    fn from(v: bool) -> Self {
        Param::Bool(v)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(v: &'a str) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(v: &'a String) -> Self {
        Param::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Param<'a> {
    fn from(v: &'a [u8]) -> Self {
        Param::Bytes(v)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// A value read back.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// One row read back, its columns in the statement's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub(super) Vec<Value>);

impl Row {
    /// Column `index` as a `T`; a missing column or another type is data
    /// this version cannot read.
    pub fn get<T: FromValue>(&self, index: usize) -> StoreResult<T> {
        let value = self.0.get(index).ok_or_else(|| StoreError::Corrupt(format!("no column {index}")))?;
        T::from_value(value)
            .ok_or_else(|| StoreError::Corrupt(format!("column {index} holds {value:?}, not a {}", std::any::type_name::<T>())))
    }
}

pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Option<Self> {
        i64::from_value(value).and_then(|v| u32::try_from(v).ok())
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(v) => Some(*v),
            // SQLite keeps booleans as integers.
            Value::Int(v) => Some(*v != 0),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Bytes(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One transaction on either database.
pub trait Tx {
    fn dialect(&self) -> Dialect;

    /// The key that MACs the audit chain's rows (`crate::chain`): it
    /// travels with the transaction, never to the database.
    fn chain_key(&self) -> &ChainKey;

    /// Asks for the chains' linker once this transaction commits: it
    /// appended a row that waits for its position (`audit::place`). Only
    /// PostgreSQL appends so; SQLite links at the insert.
    fn link_after_commit(&self);

    /// Runs a statement; the number of rows it changed.
    fn execute(&self, sql: &str, params: &[Param<'_>]) -> impl Future<Output = StoreResult<u64>>;

    /// The rows a statement returns.
    fn query(&self, sql: &str, params: &[Param<'_>]) -> impl Future<Output = StoreResult<Vec<Row>>>;

    /// The row a statement returns, if any (more than one is a bug).
    fn query_opt(&self, sql: &str, params: &[Param<'_>]) -> impl Future<Output = StoreResult<Option<Row>>> {
        async move {
            let mut rows = self.query(sql, params).await?;
            match rows.len() {
                0 | 1 => Ok(rows.pop()),
                n => Err(StoreError::Backend(format!("{n} rows where one at most was expected"))),
            }
        }
    }

    /// The one row a statement returns.
    fn query_one(&self, sql: &str, params: &[Param<'_>]) -> impl Future<Output = StoreResult<Row>> {
        async move { self.query_opt(sql, params).await?.ok_or_else(|| StoreError::Backend("no row where one was expected".into())) }
    }
}

/// Polls a future that never waits (every SQLite call completes at once,
/// inside the group commit's lock) to its end.
pub(crate) fn complete_now<T>(future: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => Err(StoreError::Backend("a SQLite operation waited, which it never may".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_its_values_or_says_the_data_is_unreadable() {
        let row = Row(vec![Value::Int(7), Value::Null, Value::Text("x".into()), Value::Int(1)]);
        assert_eq!(row.get::<i64>(0).unwrap(), 7);
        assert_eq!(row.get::<Option<i64>>(1).unwrap(), None);
        assert_eq!(row.get::<String>(2).unwrap(), "x");
        assert!(row.get::<bool>(3).unwrap());
        assert!(matches!(row.get::<String>(0), Err(StoreError::Corrupt(_))));
        assert!(matches!(row.get::<i64>(9), Err(StoreError::Corrupt(_))));
        assert!(matches!(Row(vec![Value::Int(-1)]).get::<u32>(0), Err(StoreError::Corrupt(_))));
    }
}
