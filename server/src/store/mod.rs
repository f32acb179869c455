//! Storage: SQLite (rusqlite), the migrations and every query of Passgate.
//! No SQL lives anywhere else. State transitions are compare-and-set updates
//! (`... WHERE state = 'waiting'`), so that several processes sharing the
//! database never both win the same transition.
//!
//! SQLite calls are short and run inline on the async worker: a thread
//! hand-off per statement (what async SQLite drivers do) costs more than
//! the statement. The process uses one connection, queued behind a fair
//! async mutex: SQLite has one writer at a time anyway, and a connection
//! that no other connection of ours writes behind keeps its page cache (in
//! WAL mode a reader drops its whole cache whenever another connection
//! wrote). Writers share transactions (group commit): each runs in a
//! savepoint of the open transaction, whose commit waits for the tasks
//! ready to run to join it, so that under load one commit (one write of
//! the WAL) serves many requests; nobody gets an answer before the commit
//! that makes it true.
//! Transactions are `BEGIN IMMEDIATE`: against another process sharing the
//! file they wait on the busy timeout rather than fail on a lock upgrade.
//! WAL checkpoints run on a background thread. `make bench` measured each
//! of these choices (README, Benchmark).

mod directory;
mod ledger;
pub mod passkeys;
mod sessions;
mod sms;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::watch;

pub use directory::{Caller, UserRecord};
pub use passkeys::StoredPasskey;
pub use sessions::NewSession;

use crate::error::{Error, Result};

const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The schema, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_ceremonies_without_rowid.sql"),
];

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    shared: tokio::sync::Mutex<Shared>,
}

struct Shared {
    conn: Connection,
    /// The open group transaction, if any.
    batch: Option<Batch>,
}

/// Tells the members of a group transaction how its commit went.
type Batch = Arc<watch::Sender<Option<std::result::Result<(), String>>>>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the database and runs pending migrations.
    /// `database_url` is `sqlite://path` or `sqlite:path`.
    pub async fn open(database_url: &str) -> anyhow::Result<Self> {
        let path = sqlite_file_path(database_url)
            .with_context(|| format!("{database_url:?} is not a sqlite: URL with a file path"))?;
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut conn = connect(&path)?;
        migrate(&mut conn)?;
        // Checkpoints (copying the WAL into the database, with an fsync) run
        // on a thread of their own, not inside a request's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let shared = Shared { conn, batch: None };
        let inner = Arc::new(Inner { path: path.clone(), shared: tokio::sync::Mutex::new(shared) });
        spawn_checkpointer(&path, Arc::downgrade(&inner))?;
        Ok(Store { inner })
    }

    /// Runs `work` in a write transaction; its changes are committed, and
    /// its result returned, only if it returns `Ok` and the commit succeeds.
    ///
    /// Group commit: `work` runs in a savepoint of the open transaction, or
    /// opens one. The writer that opens it also starts its commit task,
    /// which first yields: the writers and readers ready to run meanwhile
    /// join the group, and one commit serves them all. No answer leaves
    /// before the commit that makes it true.
    pub(crate) async fn write<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut shared = self.inner.shared.lock().await;
        let batch = match &shared.batch {
            Some(batch) => batch.clone(),
            None => {
                run(&shared.conn, "BEGIN IMMEDIATE")?;
                let batch: Batch = Arc::new(watch::channel(None).0);
                shared.batch = Some(batch.clone());
                // A task of its own: the commit happens even if this
                // writer's request is dropped.
                let (store, group) = (self.clone(), batch.clone());
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    store.commit_group(&group).await;
                });
                batch
            }
        };
        let out = match run_in_savepoint(&shared.conn, work) {
            Ok(out) => out,
            // The savepoint could not be undone: nothing of the group may
            // be committed.
            Err(e) => {
                abort(&mut shared, &e);
                return Err(e.into());
            }
        };
        drop(shared);
        Self::committed(&batch).await.and(out)
    }

    /// Waits for the group transaction `batch` to end: `Ok` once committed.
    async fn committed(batch: &Batch) -> Result<()> {
        let mut done = batch.subscribe();
        let outcome = match done.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        match outcome {
            Some(Ok(())) => Ok(()),
            Some(Err(message)) => Err(Error::Internal(format!("commit failed: {message}"))),
            None => Err(Error::Internal("the group commit was abandoned".into())),
        }
    }

    /// Commits the group transaction `batch`, unless it was already.
    async fn commit_group(&self, batch: &Batch) {
        let mut shared = self.inner.shared.lock().await;
        if shared.batch.as_ref().is_some_and(|open| Arc::ptr_eq(open, batch)) {
            // The members hear of a failure through `batch`; log it once here.
            if let Err(e) = commit(&mut shared) {
                tracing::error!(error = %e, "group commit failed");
            }
        }
    }

    /// Runs `work` (reads only) on one snapshot. With no group open it
    /// reads committed data at once; otherwise it joins the group, which it
    /// sees, and so waits for the same commit.
    pub(crate) async fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let shared = self.inner.shared.lock().await;
        let Some(batch) = shared.batch.clone() else {
            run(&shared.conn, "BEGIN")?;
            let out = work(&shared.conn);
            run(&shared.conn, "COMMIT")?;
            return out;
        };
        // Reads change nothing: no savepoint to roll back to.
        let out = work(&shared.conn);
        drop(shared);
        Self::committed(&batch).await.and(out)
    }
}

/// Runs `work` in a savepoint: on error its changes are rolled back, the
/// rest of the group's are kept. The outer error: the savepoint itself
/// failed, and the group transaction must not be committed.
fn run_in_savepoint<T>(conn: &Connection, work: impl FnOnce(&Connection) -> Result<T>) -> rusqlite::Result<Result<T>> {
    run(conn, "SAVEPOINT work")?;
    let out = work(conn);
    if out.is_err() {
        run(conn, "ROLLBACK TO work")?;
    }
    run(conn, "RELEASE work")?;
    Ok(out)
}

/// Runs a transaction control statement, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Commits the open group and tells its members.
fn commit(shared: &mut Shared) -> Result<()> {
    let result = run(&shared.conn, "COMMIT");
    if result.is_err() {
        if let Err(e) = run(&shared.conn, "ROLLBACK") {
            tracing::error!(error = %e, "rollback after a failed commit failed");
        }
    }
    if let Some(batch) = shared.batch.take() {
        batch.send_replace(Some(result.as_ref().map(|_| ()).map_err(|e| e.to_string())));
    }
    Ok(result?)
}

/// Rolls the open group back and tells its members it failed.
fn abort(shared: &mut Shared, cause: &rusqlite::Error) {
    tracing::error!(error = %cause, "a savepoint failed: the group transaction is rolled back");
    if let Err(e) = run(&shared.conn, "ROLLBACK") {
        tracing::error!(error = %e, "rollback of the group failed");
    }
    if let Some(batch) = shared.batch.take() {
        batch.send_replace(Some(Err(cause.to_string())));
    }
}

/// Every [`CHECKPOINT_EVERY`], a passive checkpoint on its own connection;
/// stops when the store is dropped.
fn spawn_checkpointer(path: &Path, store: std::sync::Weak<Inner>) -> anyhow::Result<()> {
    let conn = connect(path)?;
    std::thread::Builder::new().name("passgate-checkpoint".into()).spawn(move || {
        while store.strong_count() > 0 {
            std::thread::sleep(CHECKPOINT_EVERY);
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    })?;
    Ok(())
}

fn connect(path: &Path) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL: readers never block the writer. NORMAL: a commit reaches the WAL
    // without an fsync of its own (durable across a crash of Passgate, not
    // necessarily across a power cut before the next checkpoint).
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let applied: usize = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if applied > MIGRATIONS.len() {
        anyhow::bail!("the database was migrated by a newer Passgate (schema {applied}, this one knows {})", MIGRATIONS.len());
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql).with_context(|| format!("migration {}", index + 1))?;
        tx.pragma_update(None, "user_version", index + 1)?;
    }
    tx.commit()?;
    Ok(())
}

fn sqlite_file_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// True when the error is a violated UNIQUE (or primary key) constraint.
fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _)
        if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// A row id: UUIDv7, time-ordered, so that new rows and their index
/// entries land on the same few pages instead of random ones.
fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
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

    #[tokio::test]
    async fn migrations_run_once_and_a_reopened_database_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("nested/p.db").display());
        let store = Store::open(&url).await.unwrap();
        let id = store.ensure_partner("P", false, crate::clock::Millis(1)).await.unwrap();
        drop(store);
        let reopened = Store::open(&url).await.unwrap();
        assert_eq!(reopened.ensure_partner("P", false, crate::clock::Millis(2)).await.unwrap(), id);
    }

    #[tokio::test]
    async fn a_ceremony_pending_before_the_upgrade_to_schema_2_is_kept() {
        use crate::token::SecretHash;
        use passkeys::CeremonyKind;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        {
            let conn = connect(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 1;
                 INSERT INTO companies VALUES ('c', 'C', 0);
                 INSERT INTO users VALUES ('u', 'c', '+33600000001', 'U', 'h', 0);
                 INSERT INTO partners VALUES ('p', 'P', 0, 0);
                 INSERT INTO sca_sessions (id, token_hash, link_hash, partner_id, user_id, method, action_type,
                     fingerprint, summary, state, created_at, expires_at)
                 VALUES ('s', x'01', x'0202020202020202020202020202020202020202020202020202020202020202', 'p', 'u',
                     'passkey', 'transfer.single.create', zeroblob(32),
                     '{\"action_type\":\"transfer.single.create\",\"amount\":\"1.00\",\"currency\":\"EUR\",\"payee_name\":\"A\",\"iban\":\"FR76\",\"reference\":null}',
                     'waiting', 0, 9999999999999);
                 INSERT INTO webauthn_ceremonies VALUES ('s', 'authentication', '{\"saved\":1}', 0);",
            )
            .unwrap();
        }
        let store = Store::open(&format!("sqlite://{}", path.display())).await.unwrap();
        let linked = store.session_by_link(&SecretHash([2; 32]), Some(CeremonyKind::Authentication)).await.unwrap().unwrap();
        let ceremony = linked.ceremony.expect("the pending ceremony survives the migration");
        assert_eq!(ceremony.state, r#"{"saved":1}"#);
        store.discard_ceremony(&ceremony).await.unwrap();
        let linked = store.session_by_link(&SecretHash([2; 32]), Some(CeremonyKind::Authentication)).await.unwrap().unwrap();
        assert!(linked.ceremony.is_none(), "consumed by its id");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn in_a_group_commit_a_failing_writer_loses_only_its_own_changes() {
        use crate::clock::Millis;
        use crate::token::SecretHash;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("p.db").display())).await.unwrap();
        let now = Millis(1);
        let company = store.ensure_company("C", now).await.unwrap();
        let phone = crate::phone::Phone::parse("+33600000001").unwrap();
        let user = store.ensure_user(&company, &phone, "U", now).await.unwrap();
        let partner = store.ensure_partner("P", false, now).await.unwrap();
        // Every token inserted twice at once: one of each pair violates the
        // primary key and must fail alone; the other must persist.
        let tasks = (0..100u8).map(|i| {
            let (store, partner, user) = (store.clone(), partner.clone(), user.clone());
            tokio::spawn(async move { store.insert_access_token(&SecretHash([i / 2; 32]), &partner, &user, now).await.is_ok() })
        });
        let inserted = futures::future::join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(inserted, 50);
        for i in 0..50u8 {
            assert!(store.caller_by_access_token(&SecretHash([i; 32])).await.unwrap().is_some(), "token {i}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_writer_that_fails_after_writing_leaves_nothing_and_its_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}", dir.path().join("p.db").display())).await.unwrap();
        let tasks = (0..100).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(|conn| {
                        conn.execute("INSERT INTO companies (id, name, created_at) VALUES (?1, ?1, 0)", [format!("c{i}")])?;
                        if i % 2 == 0 { Ok(()) } else { Err(Error::Internal("changed its mind".into())) }
                    })
                    .await
                    .is_ok()
            })
        });
        let committed = futures::future::join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(committed, 50);
        let names: Vec<String> = store
            .read(|conn| {
                let mut statement = conn.prepare("SELECT name FROM companies")?;
                let names = statement.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
                Ok(names)
            })
            .await
            .unwrap();
        assert_eq!(names.len(), 50);
        assert!(names.iter().all(|n| n[1..].parse::<u32>().unwrap() % 2 == 0), "{names:?}");
    }
}
