//! Storage: the SQLite pool, the migrations and every query of Passgate.
//! No SQL lives anywhere else. State transitions are compare-and-set updates
//! (`... WHERE state = 'waiting'`), so that several processes sharing the
//! database never both win the same transition.
//!
//! SQLite has one writer at a time. Writes go through a pool of one
//! connection, so this process's writers queue in order in memory instead
//! of polling SQLite's busy lock; reads use their own pool and never wait
//! for writers (WAL). Write transactions start with `BEGIN IMMEDIATE`, so
//! that against another process sharing the file they wait on the busy
//! timeout rather than fail on a lock upgrade.

mod directory;
mod ledger;
pub mod passkeys;
mod sessions;
mod sms;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlitePool, Transaction};

pub use directory::{Caller, UserRecord};
pub use passkeys::StoredPasskey;
pub use sessions::NewSession;

use crate::error::{Error, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone, Debug)]
pub struct Store {
    reader: SqlitePool,
    writer: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database and runs pending migrations.
    pub async fn open(database_url: &str) -> anyhow::Result<Self> {
        if let Some(path) = sqlite_file_path(database_url) {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
        }
        let options = SqliteConnectOptions::from_str(database_url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        Ok(Store { reader, writer })
    }

    /// A write transaction.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, sqlx::Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// For single-statement writes.
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

fn sqlite_file_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// True when the error is a violated UNIQUE constraint.
fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Internal(format!("migration failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_are_read_from_sqlite_urls() {
        assert_eq!(sqlite_file_path("sqlite://data/passgate.db"), Some("data/passgate.db"));
        assert_eq!(sqlite_file_path("sqlite:data/x.db?mode=rwc"), Some("data/x.db"));
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("postgres://x"), None);
    }
}
