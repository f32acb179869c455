//! Group commit on one SQLite connection.
//!
//! SQLite calls are short and run inline on the async worker: a thread
//! hand-off per statement (what async SQLite drivers do) costs more than
//! the statement. The process uses one connection, queued behind a fair
//! async mutex: SQLite has one writer at a time anyway, and a connection
//! that no other connection of ours writes behind keeps its page cache (in
//! WAL mode a reader drops its whole cache whenever another connection
//! wrote). Writers share transactions: each runs in a savepoint of the
//! open transaction, whose commit waits for the tasks ready to run to join
//! it, so that under load one commit (one write, and with
//! `synchronous = FULL` one fsync, of the WAL) serves many requests;
//! nobody gets an answer before the commit that makes it true.
//! Transactions are `BEGIN IMMEDIATE`: against another process sharing the
//! file they wait on the busy timeout rather than fail on a lock upgrade.
//!
//! Durability ([`Durability::Full`]): a group's members are answered only
//! once the WAL holding its commit is on stable storage. The connection
//! commits with `synchronous = NORMAL` (no fsync under the connection's
//! lock) and hands the group to the [`Syncer`], a thread that fsyncs the
//! WAL file and then answers every group committed before that fsync
//! began. The next group runs on the connection meanwhile, and one fsync
//! serves every group that committed while the previous one ran. (An fsync
//! covers the whole file, whoever wrote it; a checkpoint that moved the
//! commit into the database file synced the WAL first.)

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::watch;

use crate::store::{Durability, StoreError, StoreResult};

/// Tells the members of a group transaction how its commit went.
type Batch = Arc<watch::Sender<Option<Result<(), String>>>>;

pub(super) struct Group {
    shared: tokio::sync::Mutex<Shared>,
    /// With [`Durability::Full`]: where committed groups wait for the fsync.
    syncer: Option<Syncer>,
}

struct Shared {
    conn: Connection,
    /// The open group transaction, if any.
    batch: Option<Batch>,
}

impl Group {
    /// `wal`: the connection's WAL file, synced before answering when
    /// `durability` is [`Durability::Full`].
    pub(super) fn new(conn: Connection, wal: PathBuf, durability: Durability) -> std::io::Result<Arc<Self>> {
        let syncer = match durability {
            Durability::Full => Some(Syncer::spawn(wal)?),
            Durability::Normal => None,
        };
        Ok(Arc::new(Group { shared: tokio::sync::Mutex::new(Shared { conn, batch: None }), syncer }))
    }

    /// Runs `work` in a write transaction; its changes are committed, and
    /// its result returned, only if it returns `Ok` and the commit succeeds.
    ///
    /// `work` runs in a savepoint of the open transaction, or opens one.
    /// The writer that opens it also starts its commit task, which first
    /// yields: the writers and readers ready to run meanwhile join the
    /// group, and one commit serves them all.
    pub(super) async fn write<T>(self: &Arc<Self>, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut shared = self.shared.lock().await;
        let batch = match &shared.batch {
            Some(batch) => batch.clone(),
            None => {
                run(&shared.conn, "BEGIN IMMEDIATE")?;
                let batch: Batch = Arc::new(watch::channel(None).0);
                shared.batch = Some(batch.clone());
                // A task of its own: the commit happens even if this
                // writer's request is dropped.
                let (group, members) = (self.clone(), batch.clone());
                tokio::spawn(async move {
                    tokio::task::yield_now().await;
                    group.commit_group(&members).await;
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
        committed(&batch).await.and(out)
    }

    /// Runs `work` (reads only) on one snapshot. With no group open it
    /// reads committed data at once; otherwise it joins the group, which it
    /// sees, and so waits for the same commit.
    pub(super) async fn read<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let shared = self.shared.lock().await;
        let Some(batch) = shared.batch.clone() else {
            run(&shared.conn, "BEGIN")?;
            let out = work(&shared.conn);
            run(&shared.conn, "COMMIT")?;
            return out;
        };
        // Reads change nothing: no savepoint to roll back to.
        let out = work(&shared.conn);
        drop(shared);
        committed(&batch).await.and(out)
    }

    /// Commits the group transaction `batch`, unless it was already.
    async fn commit_group(&self, batch: &Batch) {
        let mut shared = self.shared.lock().await;
        if shared.batch.as_ref().is_some_and(|open| Arc::ptr_eq(open, batch)) {
            // The members hear of a failure through `batch`; log it once here.
            if let Err(e) = commit(&mut shared, self.syncer.as_ref()) {
                tracing::error!(error = %e, "group commit failed");
            }
        }
    }
}

/// The thread that makes committed groups durable: it fsyncs the WAL once
/// for every group queued since its last fsync, then answers them.
struct Syncer {
    queue: std::sync::Mutex<mpsc::Sender<Batch>>,
}

impl Syncer {
    fn spawn(wal: PathBuf) -> std::io::Result<Self> {
        let (queue, committed) = mpsc::channel::<Batch>();
        std::thread::Builder::new().name("passgate-wal-sync".into()).spawn(move || {
            // The WAL stays in place while our connection is open: one
            // handle serves every fsync (reopened after a failure).
            let mut file: Option<std::fs::File> = None;
            // Ends when the group (the only sender) is dropped.
            while let Ok(first) = committed.recv() {
                let mut groups = vec![first];
                groups.extend(committed.try_iter());
                let handle = match file.take() {
                    Some(open) => Ok(open),
                    None => std::fs::File::open(&wal),
                };
                let synced = handle.and_then(|open| {
                    open.sync_data()?;
                    file = Some(open);
                    Ok(())
                });
                let synced = synced.map_err(|e| e.to_string());
                if let Err(e) = &synced {
                    tracing::error!(error = %e, "fsync of the WAL failed: the groups waiting for it fail");
                }
                for group in groups {
                    group.send_replace(Some(synced.clone()));
                }
            }
        })?;
        Ok(Syncer { queue: std::sync::Mutex::new(queue) })
    }

    /// Queues a committed group; its members are answered after the fsync.
    fn push(&self, batch: Batch) {
        let sent = match self.queue.lock() {
            Ok(queue) => queue.send(batch),
            Err(poisoned) => poisoned.into_inner().send(batch),
        };
        if let Err(mpsc::SendError(batch)) = sent {
            batch.send_replace(Some(Err("the WAL sync thread is gone".into())));
        }
    }
}

/// Waits for the group transaction `batch` to end: `Ok` once committed.
async fn committed(batch: &Batch) -> StoreResult<()> {
    let mut done = batch.subscribe();
    let outcome = match done.wait_for(Option::is_some).await {
        Ok(outcome) => outcome.clone(),
        Err(_) => None,
    };
    match outcome {
        Some(Ok(())) => Ok(()),
        Some(Err(message)) => Err(StoreError::Backend(format!("commit failed: {message}"))),
        None => Err(StoreError::Backend("the group commit was abandoned".into())),
    }
}

/// Runs `work` in a savepoint: on error its changes are rolled back, the
/// rest of the group's are kept. The outer error: the savepoint itself
/// failed, and the group transaction must not be committed.
fn run_in_savepoint<T>(conn: &Connection, work: impl FnOnce(&Connection) -> StoreResult<T>) -> rusqlite::Result<StoreResult<T>> {
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

/// Commits the open group and tells its members, after the WAL's fsync
/// when there is a `syncer`.
fn commit(shared: &mut Shared, syncer: Option<&Syncer>) -> StoreResult<()> {
    let result = run(&shared.conn, "COMMIT");
    if result.is_err() {
        if let Err(e) = run(&shared.conn, "ROLLBACK") {
            tracing::error!(error = %e, "rollback after a failed commit failed");
        }
    }
    if let Some(batch) = shared.batch.take() {
        match (&result, syncer) {
            (Ok(()), Some(syncer)) => syncer.push(batch),
            _ => {
                batch.send_replace(Some(result.as_ref().map(|_| ()).map_err(|e| e.to_string())));
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn group_with(durability: Durability) -> (tempfile::TempDir, Arc<Group>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("g.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t (name TEXT PRIMARY KEY);").unwrap();
        let wal = dir.path().join("g.db-wal");
        (dir, Group::new(conn, wal, durability).unwrap())
    }

    fn group() -> (tempfile::TempDir, Arc<Group>) {
        group_with(Durability::Full)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn with_full_durability_every_writer_is_answered_after_the_wal_sync() {
        let (dir, group) = group_with(Durability::Full);
        let tasks = (0..200).map(|i| {
            let group = group.clone();
            tokio::spawn(async move { group.write(|conn| Ok(conn.execute("INSERT INTO t (name) VALUES (?1)", [format!("n{i}")])?)).await })
        });
        for outcome in futures::future::join_all(tasks).await {
            assert_eq!(outcome.unwrap().unwrap(), 1);
        }
        // A WAL that cannot be synced fails the writers waiting for it.
        let conn = Connection::open(dir.path().join("g.db")).unwrap();
        let unsyncable = Group::new(conn, dir.path().join("no-such-wal"), Durability::Full).unwrap();
        let failed = unsyncable.write(|conn| Ok(conn.execute("INSERT INTO t (name) VALUES ('late')", [])?)).await;
        assert!(matches!(failed, Err(StoreError::Backend(m)) if m.contains("commit failed")), "answered without a sync");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_writer_that_fails_after_writing_leaves_nothing_and_its_group_commits() {
        let (_dir, group) = group();
        let tasks = (0..100).map(|i| {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .write(|conn| {
                        conn.execute("INSERT INTO t (name) VALUES (?1)", [format!("c{i}")])?;
                        if i % 2 == 0 {
                            Ok(())
                        } else {
                            Err(StoreError::Backend("changed its mind".into()))
                        }
                    })
                    .await
                    .is_ok()
            })
        });
        let committed = futures::future::join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(committed, 50);
        let names: Vec<String> = group
            .read(|conn| {
                let mut statement = conn.prepare("SELECT name FROM t")?;
                let names = statement.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
                Ok(names)
            })
            .await
            .unwrap();
        assert_eq!(names.len(), 50);
        assert!(names.iter().all(|n| n[1..].parse::<u32>().unwrap() % 2 == 0), "{names:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writers_that_violate_a_constraint_fail_alone() {
        let (_dir, group) = group();
        // Every name inserted twice at once: one of each pair violates the
        // primary key and must fail alone; the other must persist.
        let tasks = (0..100u32).map(|i| {
            let group = group.clone();
            tokio::spawn(async move {
                group.write(|conn| Ok(conn.execute("INSERT INTO t (name) VALUES (?1)", [format!("n{}", i / 2)])?)).await.is_ok()
            })
        });
        let inserted = futures::future::join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(inserted, 50);
        let count: i64 = group.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(count, 50);
    }
}
