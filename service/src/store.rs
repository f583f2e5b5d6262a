//! Durable embedded storage: one SQLite file per service, WAL with `synchronous=FULL`.
//!
//! Writes go to a single writer thread that commits everything queued in one transaction
//! (group commit) and answers each write only after that commit is on disk. Each write runs
//! inside its own savepoint, so a write that fails leaves no partial effect and does not
//! disturb the others in its batch. Reads use a separate connection (WAL lets them run
//! beside the writer) on the blocking pool, never on the async runtime. The WAL is copied
//! into the database file by a checkpointer thread on a third connection, so a commit never
//! stops to copy pages and sync the database file. After each of its checkpoints the writer,
//! between two batches, copies the few frames committed meanwhile: with every frame copied,
//! SQLite starts the WAL over from its beginning at the next transaction, so under steady
//! load the WAL is rewritten in place instead of growing by every commit (a file that grows
//! makes every fsync also commit the file system's journal). A disk fault (`disk_fault`)
//! fails the writer's commits as a full or read-only disk does, and rolls each batch back.

use crate::disk_fault::{DiskFault, DiskState};
use crate::settings::Live;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How many writes one transaction may hold. Bounds the latency one batch adds.
pub const MAX_WRITES_PER_BATCH: usize = 512;

/// How many writes may wait for the writer. Callers that find it full are told to shed load.
pub const WRITE_QUEUE_CAPACITY: usize = 8192;
/// A store is saturated, and the coordinator sheds new transfers, when fewer places than
/// this are free in its write queue: the writes a transfer already admitted still owes
/// (its later saga steps) find room.
pub const SATURATED_BELOW_FREE_SLOTS: usize = WRITE_QUEUE_CAPACITY / 4;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite error: {0}")]
    Sqlite(String),
    #[error("commit failed, the write is not durable: {0}")]
    Commit(String),
    #[error("the store writer has stopped")]
    Closed,
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The disk took nothing of the batch (`disk_fault`): nothing was written.
    #[error("the store cannot write, nothing was written: {0}")]
    Unavailable(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Sqlite(err.to_string())
    }
}

/// A write waiting for the writer: `run` executes it inside the open transaction and says
/// whether it succeeded; `finish` delivers its answer once the batch has committed (or not).
trait WriteJob: Send {
    fn run(&mut self, conn: &Connection) -> bool;
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct TypedJob<T, E, F> {
    op: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> WriteJob for TypedJob<T, E, F>
where
    F: FnOnce(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(op) = self.op.take() else {
            return false;
        };
        let result = op(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let answer = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(E::from(StoreError::Commit("write was not run".into()))),
            (Err(err), _) => Err(E::from(err.clone())),
        };
        let _ = self.reply.send(answer);
    }
}

type Job = Box<dyn WriteJob>;

/// Counters that show whether group commit is working (writes per batch).
#[derive(Debug, Default)]
pub struct StoreStats {
    pub batches_committed: AtomicU64,
    pub writes_committed: AtomicU64,
    /// Writes whose commit a disk fault failed.
    pub writes_refused: AtomicU64,
}

/// When a write is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After the transaction that holds it is committed with fsync.
    AfterCommit,
    /// MUTANT (`ack-before-durable`): at once, with a commit every `commit_every`; a crash
    /// loses what was acknowledged since the last one.
    AckBeforeCommit { commit_every: std::time::Duration },
}

#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    reader: Arc<Mutex<Connection>>,
    stats: Arc<StoreStats>,
    disk: Arc<Live<DiskFault>>,
    path: PathBuf,
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: every commit fsyncs the WAL, so an answered write survives a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating if needed) the file at `path`, applies `schema` and starts the writer.
    pub fn open(path: &Path, schema: &str) -> Result<Store, StoreError> {
        Self::open_with(path, schema, Durability::AfterCommit)
    }

    /// As [`Store::open`], answering writes as `durability` says.
    pub fn open_with(
        path: &Path,
        schema: &str,
        durability: Durability,
    ) -> Result<Store, StoreError> {
        let writer = open_connection(path)?;
        writer.execute_batch(schema)?;
        // Checkpoints run on their own connection and thread (`checkpoint_loop`), so the
        // writer's commits never stop to copy the WAL into the database file.
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = open_connection(path)?;
        let reader = open_connection(path)?;
        let (jobs, rx) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let stats = Arc::new(StoreStats::default());
        let thread_stats = stats.clone();
        let disk = Arc::new(Live::new(DiskFault::default()));
        let thread_disk = disk.clone();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let stop = Arc::new(AtomicBool::new(false));
                let copied = Arc::new(AtomicBool::new(false));
                let checkpoints = spawn_checkpointer(checkpointer, stop.clone(), copied.clone());
                match durability {
                    Durability::AfterCommit => {
                        writer_loop(writer, rx, &thread_stats, &thread_disk, &copied)
                    }
                    Durability::AckBeforeCommit { commit_every } => {
                        lazy_writer_loop(writer, rx, &thread_stats, &thread_disk, commit_every)
                    }
                }
                stop.store(true, Ordering::Relaxed);
                if let Ok(handle) = checkpoints {
                    let _ = handle.join();
                }
            })
            .map_err(|e| StoreError::Sqlite(format!("cannot start writer thread: {e}")))?;
        Ok(Store {
            jobs,
            reader: Arc::new(Mutex::new(reader)),
            stats,
            disk,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The disk fault its commits are under, patched by `PUT /admin/disk`.
    pub fn disk_fault(&self) -> Arc<Live<DiskFault>> {
        self.disk.clone()
    }

    /// How many more writes the queue takes before it is full.
    pub fn free_write_slots(&self) -> usize {
        self.jobs.capacity()
    }

    /// Whether fewer than `SATURATED_BELOW_FREE_SLOTS` places are free in the write queue.
    pub fn saturated(&self) -> bool {
        self.free_write_slots() < SATURATED_BELOW_FREE_SLOTS
    }

    /// Runs `op` in the writer's transaction and answers after the commit is durable.
    /// An `Err` from `op` rolls back everything `op` did.
    pub async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, reply_rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(TypedJob {
            op: Some(op),
            result: None,
            reply,
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        reply_rx.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs a read on the read connection, off the async runtime.
    pub async fn read<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::Sqlite("reader lock poisoned".into()))?;
            op(&conn)
        })
        .await
        .map_err(|e| StoreError::Sqlite(format!("read task failed: {e}")))?
    }
}

/// How often the checkpointer copies committed WAL frames into the database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Starts the thread that checkpoints the WAL (PASSIVE: it never waits for the writer or
/// readers, and copies what it can) until `stop`, then once more. Sets `copied` after a
/// checkpoint that copied frames, for the writer to finish the job (`finish_checkpoint`).
fn spawn_checkpointer(
    conn: Connection,
    stop: Arc<AtomicBool>,
    copied: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("store-checkpoint".into())
        .spawn(move || {
            let checkpoint = || match passive_checkpoint(&conn) {
                Ok(frames) if frames > 0 => copied.store(true, Ordering::Release),
                Ok(_) => {}
                Err(err) => tracing::warn!(%err, "WAL checkpoint failed"),
            };
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                checkpoint();
            }
            checkpoint();
        })
}

/// Copies what it can of the WAL into the database file without waiting for anyone;
/// returns how many of the WAL's frames are now copied.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(2))
}

/// Run by the writer between batches once the checkpointer has copied frames: copies the
/// frames committed since (no commit can come in while the writer does this), so every
/// frame is in the database file and the next transaction starts the WAL over.
fn finish_checkpoint(conn: &Connection, copied: &AtomicBool) {
    if copied.swap(false, Ordering::Acquire) {
        if let Err(err) = passive_checkpoint(conn) {
            tracing::warn!(%err, "WAL checkpoint failed");
        }
    }
}

fn writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    stats: &StoreStats,
    disk: &Live<DiskFault>,
    copied: &AtomicBool,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_WRITES_PER_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_WRITES_PER_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = run_batch(&conn, &mut batch, disk.get().disk);
        match &outcome {
            Ok(()) => {
                stats.batches_committed.fetch_add(1, Ordering::Relaxed);
                stats
                    .writes_committed
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(err) => {
                if matches!(err, StoreError::Unavailable(_)) {
                    stats
                        .writes_refused
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                tracing::error!(%err, writes = batch.len(), "batch not committed");
                // Leave no half-open transaction behind for the next batch.
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        for job in batch.drain(..) {
            job.finish(outcome.as_ref().map(|_| ()));
        }
        finish_checkpoint(&conn, copied);
    }
}

/// MUTANT (`ack-before-durable`): each write is answered as soon as it ran, inside a
/// transaction committed every `commit_every`.
fn lazy_writer_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    stats: &StoreStats,
    disk: &Live<DiskFault>,
    commit_every: std::time::Duration,
) {
    let mut open_since: Option<std::time::Instant> = None;
    let mut writes = 0u64;
    let commit = |open_since: &mut Option<std::time::Instant>, writes: &mut u64| {
        if open_since.take().is_some() {
            // On a faulty disk the writes already acknowledged are lost: this mutant's bug.
            if disk.get().disk.commit_error().is_some() {
                let _ = conn.execute_batch("ROLLBACK");
                stats.writes_refused.fetch_add(*writes, Ordering::Relaxed);
            } else if conn.execute_batch("COMMIT").is_ok() {
                stats.batches_committed.fetch_add(1, Ordering::Relaxed);
                stats.writes_committed.fetch_add(*writes, Ordering::Relaxed);
            }
        }
        *writes = 0;
    };
    loop {
        let next = match open_since {
            None => rx.blocking_recv(),
            Some(since) => match rx.try_recv() {
                Ok(job) => Some(job),
                Err(mpsc::error::TryRecvError::Empty) => {
                    if since.elapsed() >= commit_every {
                        commit(&mut open_since, &mut writes);
                    } else {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            },
        };
        let Some(mut job) = next else {
            commit(&mut open_since, &mut writes);
            return;
        };
        if open_since.is_none() {
            if let Err(err) = conn.execute_batch("BEGIN IMMEDIATE") {
                job.finish(Err(&StoreError::from(err)));
                continue;
            }
            open_since = Some(std::time::Instant::now());
        }
        let ran = begin_write(&conn).is_ok() && job.run(&conn);
        let _ = end_write(&conn, ran);
        writes += 1;
        job.finish(Ok(()));
        if open_since.is_some_and(|since| since.elapsed() >= commit_every) {
            commit(&mut open_since, &mut writes);
        }
    }
}

/// Opens a write's savepoint (the statement is prepared once per connection: the writer
/// runs it for every write).
fn begin_write(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("SAVEPOINT write_op")?
        .execute([])
        .map(|_| ())
}

/// Keeps a write's effects (`ran`) or undoes them, and closes its savepoint.
fn end_write(conn: &Connection, ran: bool) -> rusqlite::Result<()> {
    if !ran {
        conn.prepare_cached("ROLLBACK TO write_op")?.execute([])?;
    }
    conn.prepare_cached("RELEASE write_op")?
        .execute([])
        .map(|_| ())
}

/// Runs every job of the batch in one transaction, each inside its own savepoint, and
/// commits, or fails the commit as `disk` does (the caller then rolls back). Nothing is
/// answered here: the caller answers after this returns.
fn run_batch(conn: &Connection, batch: &mut [Job], disk: DiskState) -> Result<(), StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    for job in batch.iter_mut() {
        begin_write(conn)?;
        let ran = job.run(conn);
        end_write(conn, ran)?;
    }
    if let Some(error) = disk.commit_error() {
        return Err(StoreError::Unavailable(error.to_owned()));
    }
    conn.execute_batch("COMMIT")
        .map_err(|e| StoreError::Commit(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that holds the writer, alone in its batch, until `release` is sent to;
    /// returns once the writer runs it.
    async fn hold_the_writer(
        store: &Store,
    ) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let store = store.clone();
        let task = tokio::spawn(async move {
            store
                .write(move |_conn| {
                    let _ = started.send(());
                    let _ = held.recv();
                    Ok::<(), StoreError>(())
                })
                .await
                .expect("the holding write");
        });
        running.await.expect("the writer runs the hold");
        (release, task)
    }

    /// `n` writes queued behind a held writer; returns once all are in the queue.
    async fn queue_writes(store: &Store, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
        let free_before = store.free_write_slots();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write(move |conn| {
                            conn.execute("INSERT INTO t (v) VALUES (?1)", [i.to_string()])
                                .map_err(StoreError::from)
                        })
                        .await
                        .expect("write");
                })
            })
            .collect();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while store.free_write_slots() > free_before - n {
            assert!(std::time::Instant::now() < until, "the writes never queued");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tasks
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_commits_at_most_max_writes_per_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(&dir.path().join("t.db"), "CREATE TABLE t (v TEXT);").expect("open");
        let (release, held) = hold_the_writer(&store).await;
        // One more than two full batches waits behind the hold.
        let writes = queue_writes(&store, 2 * MAX_WRITES_PER_BATCH + 1).await;
        release.send(()).expect("release");
        held.await.expect("held");
        for w in writes {
            w.await.expect("a write");
        }
        let stats = store.stats();
        assert_eq!(
            stats.writes_committed.load(Ordering::Relaxed),
            2 * MAX_WRITES_PER_BATCH as u64 + 2
        );
        // The hold's batch, two full ones and one of a single write.
        assert_eq!(stats.batches_committed.load(Ordering::Relaxed), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_store_is_saturated_below_a_quarter_of_its_queue_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            Store::open(&dir.path().join("t.db"), "CREATE TABLE t (v TEXT);").expect("open");
        let (release, held) = hold_the_writer(&store).await;
        let mut writes =
            queue_writes(&store, WRITE_QUEUE_CAPACITY - SATURATED_BELOW_FREE_SLOTS).await;
        assert_eq!(store.free_write_slots(), SATURATED_BELOW_FREE_SLOTS);
        assert!(!store.saturated(), "saturated with a quarter free");
        writes.extend(queue_writes(&store, 1).await);
        assert!(store.saturated(), "not saturated with one place less");
        release.send(()).expect("release");
        held.await.expect("held");
        for w in writes {
            w.await.expect("a write");
        }
        assert!(!store.saturated());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_is_checkpointed_off_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = Store::open(&path, "CREATE TABLE t (v TEXT NOT NULL);").expect("open");
        let empty_bytes = std::fs::metadata(&path).expect("db file").len();
        for i in 0..400 {
            store
                .write(move |conn| {
                    conn.execute("INSERT INTO t (v) VALUES (?1)", [format!("{i:0>200}")])
                        .map_err(StoreError::from)
                })
                .await
                .expect("write");
        }
        // The writer never checkpoints (wal_autocheckpoint 0); the checkpointer copies the
        // committed frames into the database file within a few of its periods.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&path).expect("db file").len() <= empty_bytes {
            assert!(
                std::time::Instant::now() < until,
                "the database file never grew: nothing checkpointed the WAL"
            );
            tokio::time::sleep(CHECKPOINT_EVERY).await;
        }
        let rows: i64 = store
            .read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .expect("read");
        assert_eq!(rows, 400);
    }
    /// Writers that keep the writer busy without a pause for a few seconds: the checkpointer
    /// alone never finds the WAL fully copied (frames arrive while it copies), so without the
    /// writer finishing its checkpoints the WAL never starts over (measured: 0 restarts and
    /// a WAL 2.4 times the rows written; with it, 10 restarts).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_starts_over_under_writes_without_a_pause() {
        const ROW_BYTES: usize = 1_000;
        const WRITERS: usize = 16;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let store = Store::open(&path, "CREATE TABLE t (v TEXT NOT NULL);").expect("open");
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut rows = 0u64;
                    while tokio::time::Instant::now() < until {
                        let row = format!("{w}-{rows:0>ROW_BYTES$}");
                        store
                            .write(move |conn| {
                                conn.execute("INSERT INTO t (v) VALUES (?1)", [row])
                                    .map_err(StoreError::from)
                            })
                            .await
                            .expect("write");
                        rows += 1;
                    }
                    rows
                })
            })
            .collect();
        let mut written_bytes = 0;
        for writer in writers {
            written_bytes += writer.await.expect("writer") * ROW_BYTES as u64;
        }
        let wal = std::fs::read(dir.path().join("t.db-wal")).expect("wal file");
        // The WAL header's checkpoint sequence number (bytes 12..16, big-endian) counts the
        // times the WAL started over.
        let restarts = wal
            .get(12..16)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        // Judged on the restarts alone: the WAL's size also depends on when the first
        // restart came, which a busy machine can delay.
        assert!(
            restarts >= 2,
            "the WAL started over {restarts} times and holds {} bytes after {written_bytes} \
             bytes of rows: it grows by every commit",
            wal.len()
        );
    }
}
