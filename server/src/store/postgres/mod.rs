//! The PostgreSQL backend (tokio-postgres with a deadpool pool): for
//! several stateless Passgate instances on one database.
//!
//! Each operation is one transaction at READ COMMITTED. Every state
//! transition is a compare-and-set (`UPDATE … WHERE state = 'waiting'
//! RETURNING …`), which PostgreSQL re-checks against the newest row version
//! after waiting for a concurrent writer, so that two instances never both
//! win one. Where a rule spans rows (the abuse limits) the transaction
//! locks the rows it counts against (`SELECT … FOR UPDATE`, always in the
//! same order: user, then rate rows); an idempotency key is claimed by
//! inserting its row before the action runs, so that a concurrent replay
//! with the same key waits on it. Serialization failures and deadlocks are
//! retried. No advisory lock and no `LISTEN/NOTIFY`: the design needs only
//! what PostgreSQL-compatible distributed databases also offer. The audit
//! chains are linked after the commit (`store/audit.rs`): each instance
//! runs one linker, woken by its own commits and every second.

pub(crate) mod tls;
pub(crate) mod tx;

use std::sync::Arc;

use anyhow::Context;
use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::sync::Notify;
use tokio_postgres::error::SqlState;

use super::migrations::{self, Backend, MIGRATIONS};
use super::StoreError;
use super::StoreOptions;

use crate::chain::ChainKey;
use crate::clock::{Clock, SystemClock};

/// Connections per instance.
const POOL_SIZE: usize = 16;
/// Attempts of a transaction that lost to a concurrent one.
const ATTEMPTS: u32 = 8;

pub struct PgStore {
    pool: Pool,
    /// MACs the audit chain's rows; never sent to the database.
    chain_key: ChainKey,
    /// Wakes the chains' linker (`Store::link_chains`) after a commit that
    /// appended a row waiting for its position.
    pub(crate) linker: Arc<Notify>,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code().is_some_and(|c| *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED) {
            StoreError::Contention(e.to_string())
        } else if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            StoreError::Duplicate(e.as_db_error().map_or_else(|| e.to_string(), |db| db.message().to_owned()))
        } else if e.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            StoreError::NotPermitted(e.as_db_error().map_or_else(|| e.to_string(), |db| db.message().to_owned()))
        } else {
            // "db error" alone says nothing: the server's message says what failed.
            StoreError::Backend(e.as_db_error().map_or_else(|| e.to_string(), |db| format!("{}: {}", db.code().code(), db.message())))
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Backend(format!("connection pool: {e}"))
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://…`, TLS as its `sslmode` and
    /// `sslrootcert` say: [`tls`]) and applies pending migrations;
    /// instances starting at once apply each migration once.
    pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        let (config, tls) = tls::connect_settings(url)?;
        let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            // Commits wait for the WAL's flush only where a durable
            // transaction asks (`tx::DURABLE_BEGIN`).
            .post_create(Hook::async_fn(|client, _| {
                Box::pin(async move { client.batch_execute("SET synchronous_commit = off").await.map_err(HookError::Backend) })
            }))
            .build()
            .context("building the connection pool")?;
        let store = PgStore { pool, chain_key: options.chain_key.clone(), linker: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let mut client = self.pool.get().await?;
        // Up to date: nothing to create, so an application role without
        // the owner's rights opens it as well (its history checked).
        let found = history(&client).await?;
        if let History::Kept(applied) = &found {
            if migrations::check_applied(applied, Backend::Postgres)? == MIGRATIONS.len() {
                return Ok(());
            }
        }
        // Two instances creating it at once: one of them may see a
        // duplicate; it exists either way.
        for attempt in 0..3 {
            match client.batch_execute(CREATE_HISTORY).await {
                Ok(()) => break,
                // ("type … already exists": the other one's catalog rows won.)
                Err(e)
                    if attempt < 2
                        && e.code().is_some_and(|c| {
                            [SqlState::UNIQUE_VIOLATION, SqlState::DUPLICATE_OBJECT, SqlState::DUPLICATE_TABLE].contains(c)
                        }) =>
                {
                    continue
                }
                Err(e) => return Err(e).context("creating passgate_migrations"),
            }
        }
        if matches!(found, History::Legacy) {
            record_legacy_history(&mut client)
                .await
                .context("recording the migrations of an older Passgate with their checksums (as the tables' owner: `passgate migrate`)")?;
        }
        let History::Kept(applied) = history(&client).await? else {
            anyhow::bail!("passgate_migrations has no checksum column after its upgrade");
        };
        let applied = migrations::check_applied(&applied, Backend::Postgres)?;
        for step in &MIGRATIONS[applied..] {
            let checksum = step.checksum(Backend::Postgres);
            let tx = client.transaction().await?;
            // The row is the lock: a second instance's insert waits for the
            // first one's transaction, then finds the version applied.
            let claimed = tx
                .execute(
                    "INSERT INTO passgate_migrations (version, applied_at, name, checksum) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (version) DO NOTHING",
                    &[&step.version, &Clock::now(&SystemClock).0, &step.name, &checksum],
                )
                .await?;
            if claimed == 1 {
                tx.batch_execute(step.postgres).await.with_context(|| format!("PostgreSQL {}", step.label()))?;
                tx.commit().await?;
            } else {
                // Applied meanwhile by another instance: of this very text?
                let theirs: String =
                    tx.query_one("SELECT checksum FROM passgate_migrations WHERE version = $1", &[&step.version]).await?.get(0);
                anyhow::ensure!(theirs == checksum, "{} was applied meanwhile with another text (checksum {theirs})", step.label());
            }
        }
        Ok(())
    }

    /// Gives `role` (the application's, distinct from the tables' owner
    /// who runs this) what Passgate needs and no more: on the append-only
    /// tables (the audit log, the evidence, their anchors, the credential
    /// registry) `SELECT, INSERT` only, so that even the application's
    /// credentials cannot delete, truncate or rewrite them, nor drop their
    /// triggers (only an owner may), but for the chains' link (`seq`,
    /// `chain_hash`, `chain_mac`), which their trigger lets a waiting row
    /// take once; the schema's history, read only.
    /// The retention purge of the chains then runs as the owner
    /// (`passgate purge`).
    pub async fn grant_application_role(&self, role: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            !role.is_empty() && role.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "a role name of lowercase letters, digits and _"
        );
        let client = self.pool.get().await?;
        let append_only = APPEND_ONLY.join(", ");
        let chained = crate::chain::Chain::ALL.map(crate::chain::Chain::table).join(", ");
        client
            .batch_execute(&format!(
                "GRANT USAGE ON SCHEMA public TO {role};
                 REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role};
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
                 REVOKE UPDATE, DELETE ON {append_only}, passgate_migrations FROM {role};
                 REVOKE INSERT ON passgate_migrations FROM {role};
                 GRANT UPDATE (seq, chain_hash, chain_mac) ON {chained} TO {role};
                 GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role};"
            ))
            .await
            .context("granting the application role")?;
        Ok(())
    }
}

/// The tables that only grow: the application's role may read and append.
const APPEND_ONLY: [&str; 4] = ["audit_events", "approval_evidence", "chain_anchors", "credential_registry"];

/// The schema's history: one row per step of [`MIGRATIONS`] applied.
const CREATE_HISTORY: &str = "CREATE TABLE IF NOT EXISTS passgate_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at BIGINT NOT NULL,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL
)";

/// What a database says of its migrations.
enum History {
    /// No `passgate_migrations`: a new database.
    Missing,
    /// `passgate_migrations` of a Passgate before the shared sequence: its
    /// own numbering, no checksum.
    Legacy,
    /// The steps applied, by version, with their checksums.
    Kept(Vec<(i32, String)>),
}

async fn history(client: &tokio_postgres::Client) -> anyhow::Result<History> {
    let columns: Vec<String> = client
        .query(
            "SELECT attname::text FROM pg_attribute
             WHERE attrelid = to_regclass('passgate_migrations') AND attnum > 0 AND NOT attisdropped",
            &[],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if columns.is_empty() {
        return Ok(History::Missing);
    }
    if !columns.iter().any(|c| c == "checksum") {
        return Ok(History::Legacy);
    }
    let rows = client.query("SELECT version, checksum FROM passgate_migrations ORDER BY version", &[]).await?;
    Ok(History::Kept(rows.iter().map(|row| (row.get(0), row.get(1))).collect()))
}

/// Rewrites an older Passgate's history (PostgreSQL's own versions 1 to
/// 10, no checksum) as steps of the shared sequence
/// ([`migrations::legacy_postgres_steps`]), keeping each version's time
/// and recording this Passgate's checksums (those bodies never changed).
/// Nothing is applied again. Instances starting at once: the first one
/// rewrites it under the table's lock, the others then find it done.
async fn record_legacy_history(client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
    let tx = client.transaction().await?;
    tx.batch_execute("LOCK TABLE passgate_migrations IN ACCESS EXCLUSIVE MODE").await?;
    if let History::Kept(_) = history(tx.client()).await? {
        return Ok(());
    }
    let old: Vec<(i32, i64)> = tx
        .query("SELECT version, applied_at FROM passgate_migrations ORDER BY version", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    if let Some(&(newest, _)) = old.last() {
        anyhow::ensure!(
            newest <= migrations::LEGACY_POSTGRES_VERSIONS,
            "the database was migrated by a newer Passgate (schema {newest} without checksums)"
        );
    }
    anyhow::ensure!(old.iter().zip(1..).all(|(&(v, _), expected)| v == expected), "passgate_migrations has gaps: not Passgate's");
    tx.batch_execute("ALTER TABLE passgate_migrations ADD COLUMN name TEXT, ADD COLUMN checksum TEXT; DELETE FROM passgate_migrations")
        .await?;
    // Each step takes the time of the first old version that covers it.
    for step in MIGRATIONS {
        let Some(&(_, applied_at)) = old.iter().find(|&&(v, _)| migrations::legacy_postgres_steps(v) >= step.version) else { break };
        tx.execute(
            "INSERT INTO passgate_migrations (version, applied_at, name, checksum) VALUES ($1, $2, $3, $4)",
            &[&step.version, &applied_at, &step.name, &step.checksum(Backend::Postgres)],
        )
        .await?;
    }
    tx.batch_execute("ALTER TABLE passgate_migrations ALTER COLUMN name SET NOT NULL, ALTER COLUMN checksum SET NOT NULL").await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Millis;
    use crate::model::AuditEvent;
    use crate::phone::Phone;

    fn options() -> StoreOptions {
        StoreOptions::new(&crate::sealed::SecretsKey::sandbox())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_starting_at_once_migrate_once() {
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        let options = options();
        let opened = futures::future::join_all((0..4).map(|_| PgStore::open(&url, &options))).await;
        assert!(opened.iter().all(Result::is_ok), "{:?}", opened.iter().filter_map(|r| r.as_ref().err()).collect::<Vec<_>>());
        let store = opened.into_iter().next().unwrap().unwrap();
        let client = store.pool.get().await.unwrap();
        let applied: i64 = client.query_one("SELECT COUNT(*) FROM passgate_migrations", &[]).await.unwrap().get(0);
        assert_eq!(applied, i64::try_from(MIGRATIONS.len()).unwrap());
    }

    #[tokio::test]
    async fn the_audit_log_and_the_evidence_refuse_updates() {
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        let store = PgStore::open(&url, &options()).await.unwrap();
        let client = store.pool.get().await.unwrap();
        client
            .batch_execute(
                "INSERT INTO audit_events (at, kind, detail) VALUES (1, 'session.created', '{}');
                 INSERT INTO approval_evidence (session_id, at, evidence) VALUES ('s', 1, '{}');
                 INSERT INTO credential_registry (user_id, credential_id, public_key, event, at) VALUES ('u', '\\x01', '{}', 'added', 1);",
            )
            .await
            .unwrap();
        for sql in [
            "UPDATE audit_events SET kind = 'x'",
            "UPDATE approval_evidence SET evidence = 'forged'",
            "UPDATE credential_registry SET public_key = 'forged'",
            "DELETE FROM credential_registry",
            "TRUNCATE credential_registry",
        ] {
            let err = client.batch_execute(sql).await.unwrap_err();
            assert!(err.as_db_error().is_some_and(|e| e.message().contains("append-only")), "{sql}: {err}");
        }
    }

    /// An audited operation commits without the chain's head (another
    /// transaction holds its row lock here), its row waiting with its row
    /// MAC; the linker links it once the head is free, in id order, and
    /// never a waiting row the key did not MAC, which verification names.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn appends_commit_while_the_head_is_held_and_the_linker_links_them_after() {
        use crate::chain::Chain::AuditEvents;
        use crate::model::AuditKind;
        use std::time::Duration;
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        let store = crate::store::Store::open(&url, &options()).await.unwrap();
        let key = crate::chain::ChainKey::new(&crate::sealed::SecretsKey::sandbox());
        let holder = app_client(&url).await;
        holder.batch_execute("BEGIN; SELECT 1 FROM chain_heads WHERE chain = 'audit_events' FOR UPDATE").await.unwrap();

        let event = |n: i64| AuditEvent::account(AuditKind::SignedIn, None, serde_json::json!({ "n": n }), &Default::default(), Millis(n));
        for n in 1..=3 {
            // Under the old design this waited for the holder's commit.
            let appended = tokio::time::timeout(Duration::from_secs(10), store.append_audit(&event(n))).await;
            appended.expect("an append does not wait for the chain's head").unwrap();
        }
        let state = store.chain_state(AuditEvents).await.unwrap();
        assert_eq!((state.head_seq, state.waiting), (0, 3));
        let report = crate::audit::chain::verify(&store, &key, AuditEvents).await.unwrap();
        assert_eq!((report.verified, report.waiting, report.broken), (0, 3, None));

        // A copy of a waiting row under another id, and a waiting row with
        // its detail changed: neither row MAC verifies.
        // Made while the head is still held, so that no linker sees them first.
        holder
            .batch_execute(
                "INSERT INTO audit_events (id, at, kind, detail, row_mac)
                     SELECT id + 1000, at, kind, detail, row_mac FROM audit_events WHERE at = 2;
                 CREATE TABLE tamper AS SELECT * FROM audit_events WHERE at = 3;
                 UPDATE tamper SET detail = '{\"n\":33}';
                 DELETE FROM audit_events WHERE at = 3;
                 INSERT INTO audit_events SELECT * FROM tamper;
                 COMMIT;",
            )
            .await
            .unwrap();
        store.link_chains().await.unwrap();
        let report = crate::audit::chain::verify(&store, &key, AuditEvents).await.unwrap();
        let broken = report.broken.expect("a forged waiting row is a break");
        assert_eq!(broken.reason, "a row waiting for its position was not written with this deployment's key");
        let rows = store.chain_rows(AuditEvents, 0, 10).await.unwrap();
        let linked: Vec<i64> = rows.iter().map(|r| r.at).collect();
        assert_eq!(linked, [1, 2], "only the rows the key MACed, in id order");

        // The forgeries removed (the owner may), the chain holds.
        holder.batch_execute("DELETE FROM audit_events WHERE seq IS NULL").await.unwrap();
        let report = crate::audit::chain::verify(&store, &key, AuditEvents).await.unwrap();
        assert_eq!((report.verified, report.waiting, report.broken), (2, 0, None));
    }

    /// The tables' owner migrates and grants; the application's role runs
    /// Passgate, appends to the chains, and can neither delete, truncate
    /// nor rewrite them, nor drop or disable their triggers.
    #[tokio::test]
    async fn the_application_role_appends_to_the_chains_but_cannot_rewrite_them() {
        use crate::chain::Chain;
        let Some(owner_url) = crate::store::suite::postgres_url().await else { return };
        let owner = PgStore::open(&owner_url, &options()).await.unwrap();
        let role = format!("app_{}", uuid::Uuid::new_v4().simple());
        owner.pool.get().await.unwrap().batch_execute(&format!("CREATE ROLE {role} LOGIN")).await.unwrap();
        owner.grant_application_role(&role).await.unwrap();
        let app_url = owner_url.replacen("postgres://passgate@", &format!("postgres://{role}@"), 1);
        assert_ne!(app_url, owner_url);
        let app = crate::store::Store::open(&app_url, &options()).await.expect("the application's role opens a migrated database");

        let company = app.ensure_company("C", Millis(1)).await.unwrap();
        let user = app.ensure_user(&company, &Phone::parse("+33600000001").unwrap(), "A", Millis(1)).await.unwrap();
        let event =
            AuditEvent::account(crate::model::AuditKind::SignedIn, Some(&user), serde_json::json!({}), &Default::default(), Millis(1));
        app.append_audit(&event).await.unwrap();
        app.append_audit(&event).await.unwrap();
        app.link_chains().await.expect("the application's role links the rows it appended");
        assert_eq!(app.chain_state(Chain::AuditEvents).await.unwrap().head_seq, 2);

        let client = app_client(&app_url).await;
        for sql in [
            "DELETE FROM audit_events",
            "TRUNCATE audit_events",
            "UPDATE audit_events SET detail = '{}'",
            "DELETE FROM approval_evidence",
            "DELETE FROM chain_anchors",
            "DELETE FROM credential_registry",
            "DROP TRIGGER audit_events_append_only ON audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
            "DROP TABLE audit_events",
            "INSERT INTO passgate_migrations VALUES (999, 0)",
        ] {
            let err = client.batch_execute(sql).await.unwrap_err();
            let code = err.code().cloned();
            assert!(code == Some(SqlState::INSUFFICIENT_PRIVILEGE) || err.to_string().contains("must be owner"), "{sql}: {err} ({code:?})");
        }
        // The link columns it may write, but only into a waiting row, once.
        let err = client.batch_execute("UPDATE audit_events SET seq = seq + 100").await.unwrap_err();
        assert!(err.as_db_error().is_some_and(|e| e.message().contains("append-only")), "{err}");
        // The application's purge leaves the chains to their owner; the
        // owner's removes the prefix and anchors it.
        let late = Millis(10_000);
        assert!(matches!(app.purge_chain(Chain::AuditEvents, late, 100, late).await, Err(StoreError::NotPermitted(_))));
        let owners = crate::store::Store::open(&owner_url, &options()).await.unwrap();
        assert_eq!(owners.purge_chain(Chain::AuditEvents, late, 100, late).await.unwrap(), 2);
        app.append_audit(&event).await.unwrap();
        app.link_chains().await.unwrap();
        let key = crate::chain::ChainKey::new(&crate::sealed::SecretsKey::sandbox());
        let report = crate::audit::chain::verify(&app, &key, Chain::AuditEvents).await.unwrap();
        assert_eq!((report.from_seq, report.verified, report.broken), (2, 1, None));
    }

    async fn app_client(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// An operation of one statement leaves its connection outside any
    /// transaction (no `BEGIN` sent; a peek's stays open until its end) and
    /// refuses a second statement, which would read another snapshot.
    #[tokio::test]
    async fn a_one_statement_operation_runs_outside_a_transaction_and_alone() {
        use crate::store::postgres::tx::Finished;
        use crate::store::sql::{End, Kind, Tx};
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        let store = PgStore::open(&url, &options()).await.unwrap();
        let observer = app_client(&url).await;
        let state_of = |pid: i32| {
            let observer = &observer;
            async move {
                let row = observer.query_one("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid]).await.unwrap();
                row.get::<_, String>(0)
            }
        };
        let alone = [Kind::PeekOne, Kind::ReadOne, Kind::RelaxedOne, Kind::IndependentOne].map(|kind| (kind, "idle"));
        for (kind, expected) in [(Kind::Peek, "idle in transaction")].into_iter().chain(alone) {
            let tx = store.begin(kind).await.unwrap();
            let pid: i64 = tx.query_one("SELECT pg_backend_pid()::BIGINT", &[]).await.unwrap().get(0).unwrap();
            assert_eq!(state_of(i32::try_from(pid).unwrap()).await, expected, "{kind:?}");
            let second = tx.query_one("SELECT 2::BIGINT", &[]).await;
            assert_eq!(second.is_ok(), kind == Kind::Peek, "{kind:?}: {second:?}");
            let Finished::Done(ended) = store.finish(tx, Ok(End::Commit(())), 1).await else { panic!("{kind:?} asked to run again") };
            ended.unwrap();
        }
        // A write of one statement committed as it ran: a rollback it asks
        // for is an error, never a silent commit.
        let tx = store.begin(Kind::RelaxedOne).await.unwrap();
        tx.execute("CREATE TEMPORARY TABLE t (x BIGINT)", &[]).await.unwrap();
        let Finished::Done(ended) = store.finish(tx, Ok(End::Rollback(())), 1).await else { panic!("asked to run again") };
        assert!(matches!(ended, Err(StoreError::Backend(_))), "{ended:?}");
    }

    /// Relaxed writes commit without waiting for the WAL's flush; a durable
    /// one waits as the server says (its configured level kept: here the
    /// database's `local`, then the default `on`).
    #[tokio::test]
    async fn only_a_durable_transaction_waits_for_the_flush_at_the_server_s_level() {
        use crate::store::postgres::tx::Finished;
        use crate::store::sql::{End, Kind, Tx};
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        async fn level_in(store: &PgStore, kind: Kind) -> String {
            let tx = store.begin(kind).await.unwrap();
            let level: String = tx.query_one("SELECT current_setting('synchronous_commit')", &[]).await.unwrap().get(0).unwrap();
            let Finished::Done(ended) = store.finish(tx, Ok(End::Commit(())), 1).await else { panic!("asked to run again") };
            ended.unwrap();
            level
        }
        let database = url.rsplit_once('/').unwrap().1.to_owned();
        app_client(&url).await.batch_execute(&format!("ALTER DATABASE {database} SET synchronous_commit = local")).await.unwrap();
        let store = PgStore::open(&url, &options()).await.unwrap();
        for (kind, expected) in [(Kind::Durable, "local"), (Kind::Relaxed, "off"), (Kind::IndependentOne, "off"), (Kind::ReadOne, "off")] {
            assert_eq!(level_in(&store, kind).await, expected, "{kind:?}");
        }
        app_client(&url).await.batch_execute(&format!("ALTER DATABASE {database} RESET synchronous_commit")).await.unwrap();
        assert_eq!(level_in(&PgStore::open(&url, &options()).await.unwrap(), Kind::Durable).await, "on");
    }

    #[tokio::test]
    async fn a_database_of_a_newer_passgate_is_refused() {
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        let store = PgStore::open(&url, &options()).await.unwrap();
        let client = store.pool.get().await.unwrap();
        client.batch_execute("INSERT INTO passgate_migrations VALUES (999, 0, 'future', '')").await.unwrap();
        let err = PgStore::open(&url, &options()).await.err().unwrap();
        assert!(err.to_string().contains("newer Passgate"), "{err}");
    }

    #[tokio::test]
    async fn a_migration_changed_after_it_was_applied_is_refused() {
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        let store = PgStore::open(&url, &options()).await.unwrap();
        let client = store.pool.get().await.unwrap();
        client.batch_execute("UPDATE passgate_migrations SET checksum = repeat('0', 64) WHERE version = 7").await.unwrap();
        let err = PgStore::open(&url, &options()).await.err().unwrap().to_string();
        assert!(err.contains("migration 7 (step_up) was changed after it was applied"), "{err}");
    }

    /// A database migrated by a Passgate of before the shared sequence
    /// (PostgreSQL's own versions 1 to 10, no checksum) opens with its
    /// history rewritten as steps 1 to 12, keeping their times; nothing
    /// runs again (step 3 again would fail: its tables exist), the later
    /// steps run once, also with instances starting at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_database_of_the_older_numbering_upgrades_without_running_anything_again() {
        let Some(url) = crate::store::suite::postgres_url().await else { return };
        let client = app_client(&url).await;
        client.batch_execute("CREATE TABLE passgate_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)").await.unwrap();
        // The older list: PostgreSQL's files in their order, 1 to 10.
        let older: Vec<&str> = MIGRATIONS.iter().map(|m| m.postgres).filter(|sql| !sql.is_empty()).take(10).collect();
        for (version, sql) in (1..).zip(&older) {
            client.batch_execute(sql).await.unwrap();
            client.execute("INSERT INTO passgate_migrations VALUES ($1, $2)", &[&version, &(1000 + i64::from(version))]).await.unwrap();
        }
        client.batch_execute("INSERT INTO companies (id, name, created_at) VALUES ('c', 'Kept', 1)").await.unwrap();

        let options = options();
        let opened = futures::future::join_all((0..4).map(|_| PgStore::open(&url, &options))).await;
        assert!(opened.iter().all(Result::is_ok), "{:?}", opened.iter().filter_map(|r| r.as_ref().err()).collect::<Vec<_>>());
        let rows = client.query("SELECT version, applied_at, name, checksum FROM passgate_migrations ORDER BY version", &[]).await.unwrap();
        assert_eq!(rows.len(), MIGRATIONS.len());
        for (row, step) in rows.iter().zip(MIGRATIONS) {
            let (version, applied_at, name, checksum): (i32, i64, String, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
            assert_eq!((version, name.as_str(), checksum), (step.version, step.name, step.checksum(Backend::Postgres)));
            match version {
                1..=3 => assert_eq!(applied_at, 1001, "steps 1 to 3 were the older version 1"),
                4..=12 => assert_eq!(applied_at, 1000 + i64::from(version) - 2, "step {version}"),
                _ => assert!(applied_at > 1_000_000, "step {version} ran now"),
            }
        }
        let name: String = client.query_one("SELECT name FROM companies WHERE id = 'c'", &[]).await.unwrap().get(0);
        assert_eq!(name, "Kept");
    }
}
