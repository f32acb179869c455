//! The PostgreSQL side of [`crate::store::sql::Tx`]: a pooled connection
//! holding an open transaction, its statements prepared once per
//! connection. A transaction dropped before [`PgStore::finish`] (its
//! request cancelled mid-way) takes its connection out of the pool, so
//! that no connection goes back into it inside a transaction.
//!
//! `BEGIN` is not a round trip of its own: it goes out with the first
//! statement, pipelined on the connection (tokio-postgres sends requests
//! in the order their futures are first polled, and PostgreSQL answers
//! both in one write), and a transaction that ran no statement sends
//! neither `BEGIN` nor its end; an operation of one statement
//! ([`Kind::PeekOne`], [`Kind::ReadOne`], [`Kind::RelaxedOne`],
//! [`Kind::IndependentOne`]) sends neither at all.
//!
//! A connection's commits do not wait for the WAL's flush
//! (`synchronous_commit = off`, set when the pool creates it): relaxed
//! writes, which a power cut may lose, need no `SET LOCAL`, and one of a
//! single statement runs alone. A durable transaction's `BEGIN` sets the
//! server's own level back for itself ([`DURABLE_BEGIN`]).
//! A `BEGIN` refused would leave the statement outside a transaction; it
//! is refused only inside another transaction, which no pooled connection
//! is (see above), and its error is still the operation's answer.

use std::error::Error as StdError;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use deadpool_postgres::Object;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

use super::{PgStore, ATTEMPTS};
use crate::chain::ChainKey;
use crate::store::sql::{Dialect, End, Kind, Param, Row, Tx, Value};
use crate::store::{StoreError, StoreResult};

/// A durable transaction's `BEGIN`: its commit waits for the WAL's flush
/// at the level the server gives a session (`DEFAULT`: its configuration,
/// the database's or the role's, so an operator's `remote_apply` stays),
/// not the pool's `off`.
pub(crate) const DURABLE_BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO DEFAULT";

/// A transaction on a connection of the pool.
pub(crate) struct PgTx {
    client: Option<Object>,
    /// The `BEGIN` to send with the first statement; none for one
    /// statement on its own (the kinds named `…One`).
    begin: Option<&'static str>,
    /// A statement ran.
    begun: AtomicBool,
    chain_key: ChainKey,
    started: Instant,
    /// It appended a row waiting for its chain position.
    link: AtomicBool,
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            // Whatever integer type the placeholder has: checked, never truncated.
            Param::Int(v) if *ty == Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
            Param::Int(v) if *ty == Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
            Param::Int(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Bytes(v) => v.to_sql(ty, out),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Ints(v) => v.to_sql(ty, out),
            Param::BytesArray(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn value_of(row: &tokio_postgres::Row, index: usize) -> StoreResult<Value> {
    let ty = row.columns()[index].type_();
    let value = if *ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(index)?.map(|v| Value::Int(i64::from(v)))
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(index)?.map(|v| Value::Int(i64::from(v)))
    } else if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(index)?.map(Value::Int)
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(index)?.map(Value::Bool)
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(index)?.map(Value::Bytes)
    } else {
        row.try_get::<_, Option<String>>(index)?.map(Value::Text)
    };
    Ok(value.unwrap_or(Value::Null))
}

impl PgTx {
    fn client(&self) -> StoreResult<&Object> {
        self.client.as_ref().ok_or_else(|| StoreError::Backend("the transaction is over".into()))
    }

    /// Runs `statement`, preceded on the wire by the `BEGIN` if it is the
    /// transaction's first.
    async fn pipelined<T>(&self, statement: impl Future<Output = Result<T, tokio_postgres::Error>>) -> StoreResult<T> {
        let first = !self.begun.swap(true, Ordering::Relaxed);
        match (first, self.begin) {
            (true, Some(begin)) => {
                let begin = self.client()?.batch_execute(begin);
                // Biased: `BEGIN` is polled, so sent, first.
                let (begun, out) = tokio::join!(biased; begin, statement);
                begun?;
                Ok(out?)
            }
            (true, None) | (false, Some(_)) => Ok(statement.await?),
            (false, None) => Err(StoreError::Backend("a one-statement peek ran a second statement".into())),
        }
    }
}

impl Tx for PgTx {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn chain_key(&self) -> &ChainKey {
        &self.chain_key
    }

    fn link_after_commit(&self) {
        self.link.store(true, Ordering::Relaxed);
    }

    async fn execute(&self, sql: &str, params: &[Param<'_>]) -> StoreResult<u64> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.pipelined(client.execute(&statement, &params)).await
    }

    async fn query(&self, sql: &str, params: &[Param<'_>]) -> StoreResult<Vec<Row>> {
        let client = self.client()?;
        let statement = client.prepare_cached(sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.pipelined(client.query(&statement, &params)).await?;
        rows.iter().map(|r| (0..r.len()).map(|i| value_of(r, i)).collect::<StoreResult<Vec<_>>>().map(Row)).collect()
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        // Never back into the pool inside a transaction.
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

/// What became of a transaction's end.
pub(crate) enum Finished<T> {
    Done(StoreResult<T>),
    /// It lost to a concurrent one: run the operation again.
    Retry,
}

impl PgStore {
    /// A transaction for an operation of `kind`.
    pub(crate) async fn begin(&self, kind: Kind) -> StoreResult<PgTx> {
        let client = self.pool.get().await?;
        let status = self.pool.status();
        metrics::gauge!("passgate_db_pool_connections", "backend" => "postgres", "state" => "in_use")
            .set((status.size - status.available) as f64);
        let started = Instant::now();
        let begin = match kind {
            Kind::Read | Kind::Peek => Some("BEGIN ISOLATION LEVEL REPEATABLE READ"),
            Kind::PeekOne | Kind::ReadOne | Kind::RelaxedOne | Kind::IndependentOne => None,
            // The connection's default: commits not waiting for the WAL's flush.
            Kind::Relaxed | Kind::Independent => Some("BEGIN ISOLATION LEVEL READ COMMITTED"),
            Kind::Durable => Some(DURABLE_BEGIN),
        };
        Ok(PgTx {
            client: Some(client),
            begin,
            begun: AtomicBool::new(false),
            chain_key: self.chain_key.clone(),
            started,
            link: AtomicBool::new(false),
        })
    }

    /// Ends `tx` as the operation said (`out`); a loss to a concurrent
    /// transaction (`attempt` of [`ATTEMPTS`]) asks to run it again.
    pub(crate) async fn finish<T>(&self, mut tx: PgTx, out: StoreResult<End<T>>, attempt: u32) -> Finished<T> {
        let Some(client) = tx.client.take() else {
            return Finished::Done(Err(StoreError::Backend("the transaction is over".into())));
        };
        let (end, out) = match out {
            Ok(End::Commit(value)) => ("COMMIT", Ok(value)),
            Ok(End::Rollback(value)) => ("ROLLBACK", Ok(value)),
            Err(e) => ("ROLLBACK", Err(e)),
        };
        // Nothing began (nothing ran, or one statement on its own): nothing
        // to end. One statement on its own committed as it ran: it cannot
        // be undone, and an operation that asks to is a bug.
        let ended = match (tx.begun.load(Ordering::Relaxed), tx.begin, end, &out) {
            (true, None, "ROLLBACK", Ok(_)) => Err(StoreError::Backend("a one-statement operation asked to roll back".into())),
            (true, Some(_), ..) => client.batch_execute(end).await.map_err(StoreError::from),
            _ => Ok(()),
        };
        metrics::histogram!("passgate_db_commit_seconds", "backend" => "postgres", "step" => "transaction")
            .record(tx.started.elapsed().as_secs_f64());
        let ended = match ended {
            Ok(()) => {
                if end == "COMMIT" && tx.link.load(Ordering::Relaxed) {
                    self.linker.notify_one();
                }
                out
            }
            Err(e) => {
                // Its state unknown: the connection never goes back to the pool.
                drop(Object::take(client));
                // A failed commit is the answer; a failed rollback, the
                // operation's error if it had one.
                match (end, out) {
                    ("ROLLBACK", Err(first)) => Err(first),
                    _ => Err(e),
                }
            }
        };
        match ended {
            Err(StoreError::Contention(e)) if attempt < ATTEMPTS => {
                metrics::counter!("passgate_db_transaction_retries_total", "backend" => "postgres").increment(1);
                tracing::debug!(error = %e, attempt, "transaction retried after losing to a concurrent one");
                tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
                Finished::Retry
            }
            other => Finished::Done(other),
        }
    }
}
