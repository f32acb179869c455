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
//! file they wait for its write lock up front rather than fail on a lock
//! upgrade, and they wait asleep (an async retry), never by blocking a
//! worker thread in SQLite's busy handler: a blocked worker could be the
//! one holding the task that would release the lock.
//!
//! Durability ([`Durability::Full`]): a [`Commit::Durable`] write (a
//! decision, an action) is answered only once the WAL holding its commit
//! is on stable storage. The connection commits with `synchronous =
//! NORMAL` (no fsync under the connection's lock) and hands the group to
//! the [`Syncer`], a thread that fsyncs the WAL file and then answers every
//! group committed before that fsync began. The next group runs on the
//! connection meanwhile, and one fsync serves every group that committed
//! while the previous one ran. (An fsync covers the whole file, whoever
//! wrote it; a checkpoint that moved the commit into the database file
//! synced the WAL first.) A [`Commit::Relaxed`] write (a poll's time, a
//! rate taken) asks for no fsync of its own: a power cut may lose it, and
//! the partner or user starts again. Nobody answers with data that could
//! still vanish: a reader, or a relaxed writer, that may have seen a
//! durable write waits for that write's fsync too. Only a
//! [`Commit::Independent`] write (a session opened, a ceremony started),
//! whose answer shows nothing but what it wrote itself, and a peek, whose
//! caller answers nothing from it, wait for no one's fsync.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::watch;

use crate::store::sql::End;
use crate::store::{Durability, StoreError, StoreResult};

/// Where a group transaction stands; its members wait on it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Open,
    Committed,
    /// Committed and on stable storage (or no fsync was asked for).
    Synced,
    Failed(String),
}

type Batch = Arc<watch::Sender<Phase>>;

/// What a writer's answer needs of its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// On stable storage before the answer (with [`Durability::Full`]).
    Durable,
    /// Committed before the answer; a power cut may lose it.
    Relaxed,
    /// Committed before the answer, which waits for nobody's fsync: it
    /// shows only what the write wrote itself ([`Kind::Independent`]).
    ///
    /// [`Kind::Independent`]: crate::store::sql::Kind::Independent
    Independent,
}

/// What a member waits for before it answers.
struct Waits {
    /// Its own group, and the phase it needs.
    own: Option<(Batch, Phase)>,
    /// The newest committed group still waiting for its fsync, whose data
    /// the member may have seen.
    earlier: Option<Batch>,
}

pub(super) struct Group {
    shared: tokio::sync::Mutex<Shared>,
    /// With [`Durability::Full`]: where committed groups wait for the fsync.
    syncer: Option<Syncer>,
}

struct Shared {
    conn: Connection,
    /// The open group transaction, if any.
    batch: Option<Batch>,
    /// The open group holds a durable write.
    needs_sync: bool,
    /// The newest group handed to the syncer.
    unsynced: Option<Batch>,
}

impl Group {
    /// `wal`: the connection's WAL file, synced before answering when
    /// `durability` is [`Durability::Full`].
    pub(super) fn new(conn: Connection, wal: PathBuf, durability: Durability) -> std::io::Result<Arc<Self>> {
        let syncer = match durability {
            Durability::Full => Some(Syncer::spawn(wal)?),
            Durability::Normal => None,
        };
        let shared = Shared { conn, batch: None, needs_sync: false, unsynced: None };
        Ok(Arc::new(Group { shared: tokio::sync::Mutex::new(shared), syncer }))
    }

    /// Runs `work` in a write transaction; its changes are committed, and
    /// its result returned, only if it returns `Ok` and the commit succeeds
    /// (and, for a [`Commit::Durable`] write, is on stable storage).
    ///
    /// `work` runs in a savepoint of the open transaction, or opens one.
    /// The writer that opens it also starts its commit task, which first
    /// yields: the writers and readers ready to run meanwhile join the
    /// group, and one commit serves them all.
    #[cfg(test)]
    pub(super) async fn write<T>(self: &Arc<Self>, commit: Commit, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.write_keeping(commit, work, Result::is_ok).await
    }

    /// [`Group::write`] of an operation that says how it ends: one that
    /// ends in [`End::Rollback`] leaves nothing, as one that fails.
    pub(super) async fn write_op<T>(
        self: &Arc<Self>,
        commit: Commit,
        work: impl FnOnce(&Connection) -> StoreResult<End<T>>,
    ) -> StoreResult<T> {
        let kept = |out: &StoreResult<End<T>>| matches!(out, Ok(End::Commit(_)));
        self.write_keeping(commit, work, kept).await.map(End::into_inner)
    }

    /// Runs `work` in a savepoint, kept if `keep` says so of its result.
    async fn write_keeping<T>(
        self: &Arc<Self>,
        commit: Commit,
        work: impl FnOnce(&Connection) -> StoreResult<T>,
        keep: impl FnOnce(&StoreResult<T>) -> bool,
    ) -> StoreResult<T> {
        let (mut shared, joined) = self.lock_for_writing().await?;
        let batch = match joined {
            Some(batch) => batch,
            None => {
                let batch: Batch = Arc::new(watch::channel(Phase::Open).0);
                shared.batch = Some(batch.clone());
                shared.needs_sync = false;
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
        let (out, kept) = match run_in_savepoint(&shared.conn, work, keep) {
            Ok(out) => out,
            // The savepoint could not be undone: nothing of the group may
            // be committed.
            Err(e) => {
                abort(&mut shared, &e);
                return Err(e.into());
            }
        };
        if kept && commit == Commit::Durable && self.syncer.is_some() {
            shared.needs_sync = true;
        }
        let waits = match commit {
            Commit::Independent => Waits { own: Some((batch, Phase::Committed)), earlier: None },
            Commit::Durable | Commit::Relaxed => waits(&shared, Some(batch)),
        };
        drop(shared);
        waits.wait().await.and(out)
    }

    /// The connection, in a write transaction: the open group's (returned
    /// to join it), or a new one begun with `BEGIN IMMEDIATE`. While another
    /// process holds the write lock, waits asleep with the connection
    /// released, for up to [`LOCK_WAIT`].
    async fn lock_for_writing(&self) -> StoreResult<(tokio::sync::MutexGuard<'_, Shared>, Option<Batch>)> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        let mut pause = std::time::Duration::from_micros(250);
        loop {
            let shared = self.shared.lock().await;
            if let Some(batch) = shared.batch.clone() {
                return Ok((shared, Some(batch)));
            }
            match run(&shared.conn, "BEGIN IMMEDIATE") {
                Ok(()) => return Ok((shared, None)),
                Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                    drop(shared);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Runs `work` (reads only) on one snapshot. With no group open it
    /// reads committed data at once; otherwise it joins the group, which it
    /// sees, and so waits for the same commit. Either way it answers only
    /// once what it may have seen is as durable as its writers asked.
    pub(super) async fn read<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let shared = self.shared.lock().await;
        let Some(batch) = shared.batch.clone() else {
            run(&shared.conn, "BEGIN")?;
            let out = work(&shared.conn);
            run(&shared.conn, "COMMIT")?;
            let waits = waits(&shared, None);
            drop(shared);
            return waits.wait().await.and(out);
        };
        // Reads change nothing: no savepoint to roll back to.
        let out = work(&shared.conn);
        let waits = waits(&shared, Some(batch));
        drop(shared);
        waits.wait().await.and(out)
    }

    /// Runs `work` (reads only) on one snapshot and answers at once, even
    /// if what it read still waits for its commit or its fsync
    /// ([`crate::store::sql::Kind::Peek`]).
    pub(super) async fn peek<T>(&self, work: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let shared = self.shared.lock().await;
        if shared.batch.is_some() {
            return work(&shared.conn);
        }
        run(&shared.conn, "BEGIN")?;
        let out = work(&shared.conn);
        run(&shared.conn, "COMMIT")?;
        out
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
                let started = std::time::Instant::now();
                let synced = handle.and_then(|open| {
                    open.sync_data()?;
                    metrics::histogram!("passgate_db_commit_seconds", "backend" => "sqlite", "step" => "fsync")
                        .record(started.elapsed().as_secs_f64());
                    file = Some(open);
                    Ok(())
                });
                let synced = synced.map_err(|e| e.to_string());
                if let Err(e) = &synced {
                    tracing::error!(error = %e, "fsync of the WAL failed: the groups waiting for it fail");
                }
                for group in groups {
                    group.send_replace(match &synced {
                        Ok(()) => Phase::Synced,
                        Err(e) => Phase::Failed(e.clone()),
                    });
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
            batch.send_replace(Phase::Failed("the WAL sync thread is gone".into()));
        }
    }
}

/// What a member of `batch` (or a reader outside any group) waits for:
/// its group's commit, and its fsync if the group holds a durable write
/// (whose data the member may have seen); and the fsync of the newest
/// earlier group still waiting for one.
fn waits(shared: &Shared, batch: Option<Batch>) -> Waits {
    let needed = if shared.needs_sync { Phase::Synced } else { Phase::Committed };
    Waits { own: batch.map(|b| (b, needed)), earlier: shared.unsynced.clone() }
}

impl Waits {
    async fn wait(self) -> StoreResult<()> {
        if let Some(earlier) = self.earlier {
            reached(&earlier, &Phase::Synced).await?;
        }
        match self.own {
            Some((batch, needed)) => reached(&batch, &needed).await,
            None => Ok(()),
        }
    }
}

/// Waits for `batch` to reach `needed` (`Committed` or `Synced`).
async fn reached(batch: &Batch, needed: &Phase) -> StoreResult<()> {
    let mut phase = batch.subscribe();
    let outcome = phase
        .wait_for(|p| match p {
            Phase::Open => false,
            Phase::Committed => *needed == Phase::Committed,
            Phase::Synced | Phase::Failed(_) => true,
        })
        .await
        .map(|p| p.clone());
    match outcome {
        Ok(Phase::Failed(message)) => Err(StoreError::Backend(format!("commit failed: {message}"))),
        Ok(_) => Ok(()),
        Err(_) => Err(StoreError::Backend("the group commit was abandoned".into())),
    }
}

/// Runs `work` in a savepoint: unless `keep` says so of its result, its
/// changes are rolled back, the rest of the group's are kept; the result,
/// and whether it was kept. The outer error: the savepoint itself failed,
/// and the group transaction must not be committed.
fn run_in_savepoint<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
    keep: impl FnOnce(&StoreResult<T>) -> bool,
) -> rusqlite::Result<(StoreResult<T>, bool)> {
    run(conn, "SAVEPOINT work")?;
    let out = work(conn);
    let kept = keep(&out);
    if !kept {
        run(conn, "ROLLBACK TO work")?;
    }
    run(conn, "RELEASE work")?;
    Ok((out, kept))
}

/// How long a writer waits for another process's write lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy)
}

/// Runs a transaction control statement, prepared once per connection.
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Commits the open group and tells its members; hands it to the
/// `syncer` when it holds a durable write.
fn commit(shared: &mut Shared, syncer: Option<&Syncer>) -> StoreResult<()> {
    let started = std::time::Instant::now();
    let result = run(&shared.conn, "COMMIT");
    metrics::histogram!("passgate_db_commit_seconds", "backend" => "sqlite", "step" => "commit").record(started.elapsed().as_secs_f64());
    if result.is_err() {
        if let Err(e) = run(&shared.conn, "ROLLBACK") {
            tracing::error!(error = %e, "rollback after a failed commit failed");
        }
    }
    let needs_sync = std::mem::take(&mut shared.needs_sync);
    if let Some(batch) = shared.batch.take() {
        match (&result, syncer) {
            (Err(e), _) => {
                batch.send_replace(Phase::Failed(e.to_string()));
            }
            (Ok(()), Some(syncer)) if needs_sync => {
                batch.send_replace(Phase::Committed);
                shared.unsynced = Some(batch.clone());
                syncer.push(batch);
            }
            (Ok(()), Some(_)) => {
                batch.send_replace(Phase::Committed);
            }
            // No syncer: nobody asked for more than the commit.
            (Ok(()), None) => {
                batch.send_replace(Phase::Synced);
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
    shared.needs_sync = false;
    if let Some(batch) = shared.batch.take() {
        batch.send_replace(Phase::Failed(cause.to_string()));
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

    /// A group on a WAL that cannot be synced: every fsync fails.
    fn unsyncable() -> (tempfile::TempDir, Arc<Group>) {
        let (dir, _) = group_with(Durability::Full);
        let conn = Connection::open(dir.path().join("g.db")).unwrap();
        let group = Group::new(conn, dir.path().join("no-such-wal"), Durability::Full).unwrap();
        (dir, group)
    }

    fn insert(name: &'static str) -> impl FnOnce(&Connection) -> StoreResult<usize> {
        move |conn| Ok(conn.execute("INSERT INTO t (name) VALUES (?1)", [name])?)
    }

    fn count(conn: &Connection) -> StoreResult<i64> {
        Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
    }

    async fn names(group: &Group) -> Vec<String> {
        group
            .read(|conn| {
                let mut statement = conn.prepare("SELECT name FROM t")?;
                let names = statement.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
                Ok(names)
            })
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn with_full_durability_every_writer_is_answered_after_the_wal_sync() {
        let (dir, group) = group_with(Durability::Full);
        let tasks = (0..200).map(|i| {
            let group = group.clone();
            tokio::spawn(async move {
                group.write(Commit::Durable, |conn| Ok(conn.execute("INSERT INTO t (name) VALUES (?1)", [format!("n{i}")])?)).await
            })
        });
        for outcome in futures::future::join_all(tasks).await {
            assert_eq!(outcome.unwrap().unwrap(), 1);
        }
        // A WAL that cannot be synced fails the writers waiting for it.
        let conn = Connection::open(dir.path().join("g.db")).unwrap();
        let unsyncable = Group::new(conn, dir.path().join("no-such-wal"), Durability::Full).unwrap();
        let failed = unsyncable.write(Commit::Durable, |conn| Ok(conn.execute("INSERT INTO t (name) VALUES ('late')", [])?)).await;
        assert!(matches!(failed, Err(StoreError::Backend(m)) if m.contains("commit failed")), "answered without a sync");
    }

    #[tokio::test]
    async fn relaxed_writes_ask_no_fsync_and_nobody_answers_with_unsynced_durable_data() {
        let (_dir, unsyncable) = unsyncable();
        // A relaxed write is answered once committed: no fsync asked.
        assert_eq!(unsyncable.write(Commit::Relaxed, insert("relaxed")).await.unwrap(), 1);
        assert_eq!(unsyncable.read(count).await.unwrap(), 1, "relaxed data needs no fsync to be read");
        // A durable write is answered only after its fsync: here, never.
        assert!(unsyncable.write(Commit::Durable, insert("durable")).await.is_err());
        // Its data is committed but not on stable storage: a reader or a
        // relaxed writer that may see it does not answer with it.
        assert!(unsyncable.read(count).await.is_err(), "a read answered with unsynced durable data");
        assert!(unsyncable.write(Commit::Relaxed, insert("after")).await.is_err());
    }

    #[tokio::test]
    async fn an_independent_write_and_a_peek_wait_for_nobodys_fsync() {
        let (_dir, unsyncable) = unsyncable();
        // Committed, never synced: a relaxed writer after it does not answer...
        assert!(unsyncable.write(Commit::Durable, insert("durable")).await.is_err());
        assert!(unsyncable.write(Commit::Relaxed, insert("relaxed")).await.is_err());
        // ...one that answers only with what it wrote does, once committed,
        assert_eq!(unsyncable.write(Commit::Independent, insert("own")).await.unwrap(), 1);
        // and a peek answers with everything committed so far.
        assert_eq!(unsyncable.peek(count).await.unwrap(), 3);
        assert!(unsyncable.read(count).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_writer_that_fails_after_writing_leaves_nothing_and_its_group_commits() {
        let (_dir, group) = group();
        let tasks = (0..100).map(|i| {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .write(Commit::Durable, |conn| {
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
        let names = names(&group).await;
        assert_eq!(names.len(), 50);
        assert!(names.iter().all(|n| n[1..].parse::<u32>().unwrap() % 2 == 0), "{names:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_operation_that_refuses_after_writing_leaves_nothing_as_on_postgresql() {
        let (_dir, group) = group();
        let tasks = (0..100).map(|i| {
            let group = group.clone();
            tokio::spawn(async move {
                group
                    .write_op(Commit::Durable, |conn| {
                        conn.execute("INSERT INTO t (name) VALUES (?1)", [format!("c{i}")])?;
                        Ok(if i % 2 == 0 { End::Commit(true) } else { End::Rollback(false) })
                    })
                    .await
                    .unwrap()
            })
        });
        let committed = futures::future::join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(committed, 50, "every refusal answered as such");
        let names = names(&group).await;
        assert_eq!(names.len(), 50, "the refusals' writes were undone, the others' kept");
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
                group
                    .write(Commit::Durable, |conn| Ok(conn.execute("INSERT INTO t (name) VALUES (?1)", [format!("n{}", i / 2)])?))
                    .await
                    .is_ok()
            })
        });
        let inserted = futures::future::join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(inserted, 50);
        let count: i64 = group.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)).await.unwrap();
        assert_eq!(count, 50);
    }
}
