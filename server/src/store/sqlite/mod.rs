//! The SQLite backend (rusqlite, bundled): one file in WAL mode, created
//! readable by its owner only, migrated at open, written through group
//! commit ([`group`]). WAL checkpoints run on a background thread, off the
//! request path. `make bench` measured each of these choices (docs/BENCHMARKS.md,
//! Benchmark).

mod group;
pub(crate) mod tx;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{StoreError, StoreOptions};

use crate::clock::{Clock, SystemClock};
use group::Group;

use super::migrations::{self, Backend, MIGRATIONS};

const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The page size of a new database: 1 KiB, not SQLite's 4 KiB. Each
/// commit writes every page it dirtied to the WAL, and an approval dirties
/// pages all over the file (tokens, links and users' entries are random
/// keys of their indexes), each for a row of a few dozen bytes: with
/// 1 KiB pages the mock flow writes 23 KB per approval instead of 118 and
/// the passkey flow 42 KB instead of 255, and both run faster (docs/BENCHMARKS.md,
/// Benchmark).
const PAGE_SIZE: i64 = 1024;

pub struct SqliteStore {
    group: Arc<Group>,
    /// MACs the audit chain's rows; never written to the file.
    chain_key: crate::chain::ChainKey,
    /// Keeps the checkpoint thread running while the store lives.
    _alive: Arc<()>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if is_unique_violation(&e) {
            StoreError::Duplicate(e.to_string())
        } else {
            StoreError::Backend(e.to_string())
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed, readable by its owner only) the database
    /// and runs pending migrations. `url` is `sqlite://path` or `sqlite:path`.
    pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        let path = sqlite_file_path(url).with_context(|| format!("{url:?} is not a sqlite: URL with a file path"))?;
        let path = PathBuf::from(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        create_private(&path)?;
        let mut conn = connect(&path)?;
        migrate(&mut conn)?;
        // SQLite gives the WAL and shared-memory files the database file's
        // mode; files left by an older Passgate are tightened here.
        for suffix in ["-wal", "-shm"] {
            restrict(&PathBuf::from(format!("{}{suffix}", path.display())))?;
        }
        // Checkpoints (copying the WAL into the database, with an fsync) run
        // on a thread of their own, not inside a request's commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let alive = Arc::new(());
        spawn_checkpointer(&path, Arc::downgrade(&alive))?;
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        Ok(SqliteStore { group: Group::new(conn, wal, options.durability)?, chain_key: options.chain_key.clone(), _alive: alive })
    }
}

/// Creates the database file readable and writable by its owner only
/// (0600), or tightens an existing one.
fn create_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
    }
    restrict(path)
}

fn restrict(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    if path.exists() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {} to its owner", path.display()))?;
    }
    Ok(())
}

/// Every [`CHECKPOINT_EVERY`], a passive checkpoint on its own connection;
/// stops when the store is dropped.
fn spawn_checkpointer(path: &Path, alive: std::sync::Weak<()>) -> anyhow::Result<()> {
    let conn = connect(path)?;
    std::thread::Builder::new().name("passgate-checkpoint".into()).spawn(move || {
        while alive.strong_count() > 0 {
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
    // Short: a writer waiting for another process's lock waits asleep
    // (group.rs); this only absorbs the brief locks of readers and
    // checkpoints.
    conn.busy_timeout(Duration::from_millis(20))?;
    // WAL: readers never block the writer. NORMAL: a commit writes the WAL
    // without an fsync of its own; checkpoints sync. With
    // `Durability::Full` the group commit syncs the WAL itself before it
    // answers, off the connection's lock (`group.rs`).
    // Before WAL: a new database only (an existing one keeps its size).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Applies the steps of [`MIGRATIONS`] not applied yet, in one
/// exclusive transaction (a second process waits, then finds them
/// applied), after checking the ones applied against their checksums.
/// `PRAGMA user_version` keeps counting the steps, so that a Passgate of
/// before the shared history refuses a database it does not know.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let has_history: bool =
        tx.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'passgate_migrations')", [], |r| {
            r.get(0)
        })?;
    if !has_history {
        tx.execute_batch(
            "CREATE TABLE passgate_migrations (
                 version    INTEGER PRIMARY KEY,
                 applied_at INTEGER NOT NULL,
                 name       TEXT NOT NULL,
                 checksum   TEXT NOT NULL
             )",
        )?;
        record_legacy_history(&tx)?;
    }
    let applied: Vec<(i32, String)> = tx
        .prepare("SELECT version, checksum FROM passgate_migrations ORDER BY version")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let applied = migrations::check_applied(&applied, Backend::Sqlite)?;
    for step in &MIGRATIONS[applied..] {
        tx.execute_batch(step.sqlite).with_context(|| step.label())?;
        tx.execute(
            "INSERT INTO passgate_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
            rusqlite::params![step.version, step.name, step.checksum(Backend::Sqlite), Clock::now(&SystemClock).0],
        )?;
        tx.pragma_update(None, "user_version", step.version)?;
    }
    tx.commit()?;
    Ok(())
}

/// A database of a Passgate before the shared history counted its steps
/// in `PRAGMA user_version` only, the same steps as [`MIGRATIONS`]: steps
/// 1 to `user_version` are recorded as applied, with this Passgate's
/// checksums (the bodies never changed) and time 0 (not known).
fn record_legacy_history(tx: &Connection) -> anyhow::Result<()> {
    let counted: i32 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if counted > migrations::LEGACY_SQLITE_VERSIONS {
        anyhow::bail!(
            "the database was migrated by a newer Passgate (it counts {counted} migrations without their history, which no Passgate \
             wrote beyond {})",
            migrations::LEGACY_SQLITE_VERSIONS
        );
    }
    for step in MIGRATIONS.iter().take_while(|m| m.version <= counted) {
        tx.execute(
            "INSERT INTO passgate_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, 0)",
            rusqlite::params![step.version, step.name, step.checksum(Backend::Sqlite)],
        )?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Millis;
    use crate::model::{AuditEvent, CeremonyKind};
    use crate::store::Store;
    use crate::token::SecretHash;

    #[tokio::test]
    async fn a_new_database_has_small_pages_and_an_older_one_keeps_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let page_size =
            |path: &Path| Connection::open(path).unwrap().pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0)).unwrap();
        let fresh = dir.path().join("new.db");
        drop(
            Store::open(&format!("sqlite://{}", fresh.display()), &StoreOptions::new(&crate::sealed::SecretsKey::sandbox())).await.unwrap(),
        );
        assert_eq!(page_size(&fresh), PAGE_SIZE);
        // A database made with SQLite's default pages opens, migrated, as it is.
        let older = dir.path().join("old.db");
        Connection::open(&older).unwrap().execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);").unwrap();
        drop(
            Store::open(&format!("sqlite://{}", older.display()), &StoreOptions::new(&crate::sealed::SecretsKey::sandbox())).await.unwrap(),
        );
        assert_eq!(page_size(&older), 4096);
    }

    #[test]
    fn file_paths_are_read_from_sqlite_urls() {
        assert_eq!(sqlite_file_path("sqlite://data/passgate.db"), Some("data/passgate.db"));
        assert_eq!(sqlite_file_path("sqlite:data/x.db?mode=rwc"), Some("data/x.db"));
        assert_eq!(sqlite_file_path("sqlite::memory:"), None);
        assert_eq!(sqlite_file_path("postgres://x"), None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let store =
            Store::open(&format!("sqlite://{}", path.display()), &StoreOptions::new(&crate::sealed::SecretsKey::sandbox())).await.unwrap();
        store.ensure_company("C", Millis(1)).await.unwrap();
        for file in ["p.db", "p.db-wal", "p.db-shm"] {
            let mode = std::fs::metadata(dir.path().join(file)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }

    #[tokio::test]
    async fn a_ceremony_pending_before_the_upgrade_to_schema_2_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        {
            let conn = connect(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0].sqlite).unwrap();
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
        let store =
            Store::open(&format!("sqlite://{}", path.display()), &StoreOptions::new(&crate::sealed::SecretsKey::sandbox())).await.unwrap();
        let linked = store
            .session_by_link(&SecretHash([2; 32]), Some(CeremonyKind::Authentication), crate::store::Lookup::Settled)
            .await
            .unwrap()
            .unwrap();
        let ceremony = linked.ceremony.expect("the pending ceremony survives the migration");
        assert_eq!(ceremony.state, r#"{"saved":1}"#);
        let event = AuditEvent::webauthn_failed(&linked.session, "authentication", "test", &Default::default(), Millis(1));
        store.discard_ceremony(&ceremony, &event).await.unwrap();
        let linked = store
            .session_by_link(&SecretHash([2; 32]), Some(CeremonyKind::Authentication), crate::store::Lookup::Settled)
            .await
            .unwrap()
            .unwrap();
        assert!(linked.ceremony.is_none(), "consumed by its id");
    }

    #[tokio::test]
    async fn the_upgrade_to_schema_3_carries_counters_and_passkey_counts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        {
            let conn = connect(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0].sqlite).unwrap();
            conn.execute_batch(MIGRATIONS[1].sqlite).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO companies VALUES ('c', 'C', 0);
                 INSERT INTO users VALUES ('u', 'c', '+33600000001', 'U', 'h', 0);
                 INSERT INTO users VALUES ('v', 'c', '+33600000002', 'V', 'i', 0);
                 INSERT INTO passkeys VALUES ('k', 'u', x'01', '{\"cred\":{\"counter\":7}}', 0, 0);",
            )
            .unwrap();
        }
        drop(
            SqliteStore::open(&format!("sqlite://{}", path.display()), &StoreOptions::new(&crate::sealed::SecretsKey::sandbox()))
                .await
                .unwrap(),
        );
        let conn = Connection::open(&path).unwrap();
        let sign_count: i64 = conn.query_row("SELECT sign_count FROM passkeys WHERE id = 'k'", [], |r| r.get(0)).unwrap();
        assert_eq!(sign_count, 7);
        let counts: Vec<(String, i64)> = conn
            .prepare("SELECT id, passkey_count FROM users ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(counts, [("u".to_owned(), 1), ("v".to_owned(), 0)]);
    }

    #[tokio::test]
    async fn the_audit_log_and_the_evidence_refuse_updates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        drop(
            SqliteStore::open(&format!("sqlite://{}", path.display()), &StoreOptions::new(&crate::sealed::SecretsKey::sandbox()))
                .await
                .unwrap(),
        );
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "INSERT INTO audit_events (at, kind, detail) VALUES (1, 'session.created', '{}');
             INSERT INTO approval_evidence (session_id, at, evidence) VALUES ('s', 1, '{}');
             INSERT INTO credential_registry (user_id, credential_id, public_key, event, at) VALUES ('u', x'01', '{}', 'added', 1);",
        )
        .unwrap();
        for sql in [
            "UPDATE audit_events SET kind = 'x'",
            "UPDATE approval_evidence SET evidence = 'forged'",
            "UPDATE credential_registry SET public_key = 'forged'",
            "DELETE FROM credential_registry",
        ] {
            let err = conn.execute(sql, []).unwrap_err();
            assert!(err.to_string().contains("append-only"), "{sql}: {err}");
        }
    }

    fn sqlite_url(path: &Path) -> String {
        format!("sqlite://{}", path.display())
    }

    async fn open_at(path: &Path) -> anyhow::Result<SqliteStore> {
        SqliteStore::open(&sqlite_url(path), &StoreOptions::new(&crate::sealed::SecretsKey::sandbox())).await
    }

    /// A database of a Passgate of before the history (the steps counted
    /// in `user_version` only) opens with steps 1 to 12 recorded, at time
    /// 0, and nothing run again (step 1 again would fail: its tables
    /// exist); the later steps run once.
    #[tokio::test]
    async fn a_database_counted_in_user_version_upgrades_without_running_anything_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        {
            let conn = connect(&path).unwrap();
            for step in &MIGRATIONS[..12] {
                conn.execute_batch(step.sqlite).unwrap();
            }
            conn.execute_batch("PRAGMA user_version = 12; INSERT INTO companies (id, name, created_at) VALUES ('c', 'Kept', 1);").unwrap();
        }
        drop(open_at(&path).await.unwrap());
        let conn = Connection::open(&path).unwrap();
        let rows: Vec<(i32, i64, String, String)> = conn
            .prepare("SELECT version, applied_at, name, checksum FROM passgate_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), MIGRATIONS.len());
        for ((version, applied_at, name, checksum), step) in rows.into_iter().zip(MIGRATIONS) {
            assert_eq!((version, name.as_str(), checksum), (step.version, step.name, step.checksum(Backend::Sqlite)));
            if version <= 12 {
                assert_eq!(applied_at, 0, "step {version} recorded, not run");
            } else {
                assert!(applied_at > 0, "step {version} ran");
            }
        }
        let counted: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(counted, migrations::known());
        let name: String = conn.query_row("SELECT name FROM companies WHERE id = 'c'", [], |r| r.get(0)).unwrap();
        assert_eq!(name, "Kept");
        // Opened again: up to date, nothing to do.
        drop(open_at(&path).await.unwrap());
    }

    #[tokio::test]
    async fn a_migration_changed_after_it_was_applied_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        drop(open_at(&path).await.unwrap());
        Connection::open(&path).unwrap().execute("UPDATE passgate_migrations SET checksum = 'x' WHERE version = 7", []).unwrap();
        let err = open_at(&path).await.err().unwrap().to_string();
        assert!(err.contains("migration 7 (step_up) was changed after it was applied"), "{err}");
    }

    #[tokio::test]
    async fn a_database_of_a_newer_passgate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        drop(open_at(&path).await.unwrap());
        Connection::open(&path).unwrap().execute("INSERT INTO passgate_migrations VALUES (999, 0, 'future', '')", []).unwrap();
        let err = open_at(&path).await.err().unwrap().to_string();
        assert!(err.contains("newer Passgate"), "{err}");
        // And one counted beyond the older numbering, without a history.
        let path = dir.path().join("q.db");
        connect(&path).unwrap().execute_batch("PRAGMA user_version = 13").unwrap();
        let err = open_at(&path).await.err().unwrap().to_string();
        assert!(err.contains("newer Passgate"), "{err}");
    }
}
