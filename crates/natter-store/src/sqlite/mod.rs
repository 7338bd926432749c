//! The embedded SQLite backend.
//!
//! * One writer connection owned by a dedicated thread ([`writer`]) that
//!   group-commits everything queued.
//! * A small pool of read-only connections used from
//!   `tokio::task::spawn_blocking`, bounded by a semaphore.
//! * WAL journal, `synchronous=NORMAL` (or `FULL` with `fsync: true`),
//!   5 s busy timeout so another process (`natterd user add`) can share the
//!   file.

mod archive;
mod data;
mod insert;
mod migrations;
mod ops;
mod pep;
mod rows;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::{OfflineMessage, StoreError, StoreStats};
use writer::{Counters, FnJob, Msg};

/// How long a connection waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Number of read-only connections (and concurrent reads).
const READERS: usize = 4;

/// A handle to an open SQLite store; cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    /// Unbounded so that a write is queued the moment it is asked for, in
    /// the caller's order; callers bound their own outstanding writes.
    tx: mpsc::UnboundedSender<Msg>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Arc<Semaphore>,
    counters: Arc<Counters>,
    closed: AtomicBool,
    /// The seq the next queue insert gets. Taken together with queueing the
    /// insert (under this lock), so the writer inserts in seq order and a
    /// caller knows an entry's seq before its commit.
    next_seq: Mutex<Seqs>,
    /// Queue inserts not yet run, which a delete may still withdraw.
    waiting: Arc<insert::Waiting>,
    /// Archive appends waiting for the writer's next archive job.
    appends: Arc<archive::Appends>,
}

/// Seqs are handed out in memory. The stored counter `offline_seq` stays
/// above every seq handed out: an insert that reaches `ceiling` first raises
/// it by [`SEQ_BLOCK`] in the same job, so a seq is never given twice, even
/// after a restart (which starts at the stored counter).
struct Seqs {
    next: i64,
    ceiling: i64,
}

/// How far the stored seq counter is raised at a time.
const SEQ_BLOCK: i64 = 1 << 16;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub(crate) async fn open(path: PathBuf, fsync: bool) -> Result<Self, StoreError> {
        let (writer_conn, readers, next_seq) = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> Result<_, StoreError> {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let conn = open_writer(&path, fsync)?;
                let version = migrations::migrate(&conn)?;
                let next_seq: i64 = conn.query_row(
                    "SELECT MAX(COALESCE((SELECT MAX(seq) FROM offline), 0) + 1,
                                COALESCE((SELECT value FROM counters
                                          WHERE name = 'offline_seq'), 1))",
                    [],
                    |r| r.get(0),
                )?;
                tracing::debug!(path = %path.display(), version, "storage: opened sqlite");
                let readers = (0..READERS)
                    .map(|_| open_reader(&path))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((conn, readers, next_seq))
            }
        })
        .await
        .map_err(|e| StoreError::Backend(format!("open task failed: {e}")))??;

        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let waiting = Arc::new(insert::Waiting::default());
        let writer = std::thread::Builder::new()
            .name("natter-store-writer".into())
            .spawn({
                let counters = counters.clone();
                let waiting = waiting.clone();
                move || {
                    writer::run(writer_conn, rx, counters);
                    tracing::info!(withdrawn = waiting.withdrawn(), "storage: writer stopped");
                    waiting.clear();
                }
            })?;
        waiting.set_writer(writer.thread().clone());

        Ok(SqliteStore {
            shared: Arc::new(Shared {
                path,
                tx,
                readers: Mutex::new(readers),
                read_permits: Arc::new(Semaphore::new(READERS)),
                counters,
                closed: AtomicBool::new(false),
                next_seq: Mutex::new(Seqs {
                    next: next_seq,
                    ceiling: next_seq,
                }),
                waiting,
                appends: Arc::new(archive::Appends::default()),
            }),
        })
    }

    /// Finishes queued writes, checkpoints, stops the writer thread and
    /// drops the read connections. Idempotent.
    pub(crate) async fn close(&self) -> Result<(), StoreError> {
        let shared = &self.shared;
        if shared.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        shared.read_permits.close();
        // Readers in use are dropped when returned (they see `closed`).
        let idle = std::mem::take(&mut *lock(&shared.readers));
        drop(idle);
        let (reply, answer) = oneshot::channel();
        if shared.tx.send(Msg::Shutdown(reply)).is_err() {
            return Ok(()); // writer already gone
        }
        // It may be waiting for a held insert to fall due.
        shared.waiting.wake_writer();
        answer.await.unwrap_or(Ok(()))
    }

    pub(crate) fn stats(&self) -> StoreStats {
        let c = &self.shared.counters;
        StoreStats {
            commits: c.commits.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            withdrawn: self.shared.waiting.withdrawn(),
        }
    }

    /// Runs `f` on the writer thread inside a group transaction; resolves
    /// after the commit.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f).await
    }

    /// Queues `f` for the writer thread now (writes run in the order they
    /// were submitted); the returned future resolves after the commit.
    pub(crate) fn submit<T, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.queue(|reply| Box::new(FnJob::new(f, reply)))
    }

    /// Like [`submit`](Self::submit), for `f` that needs no savepoint of its
    /// own (see [`FnJob::single`]).
    pub(crate) fn submit_single<T, F>(
        &self,
        f: F,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.queue(|reply| Box::new(FnJob::single(f, reply)))
    }

    /// Queues an insert of `msg` into `owner`'s queue now, with the next
    /// seq (returned at once); the future resolves after the commit to the
    /// seq, or None if `if_account` and `owner` has no account. With `due`,
    /// the insert is not written before then and a delete of its seq
    /// withdraws it meanwhile (see [`insert`]).
    pub(crate) fn queue_insert(
        &self,
        owner: String,
        msg: OfflineMessage,
        stamp: i64,
        if_account: bool,
        due: Option<Instant>,
    ) -> (
        i64,
        impl std::future::Future<Output = Result<Option<u64>, StoreError>> + Send + 'static,
    ) {
        let mut seqs = lock(&self.shared.next_seq);
        let seq = seqs.next;
        seqs.next += 1;
        let raise = (seq >= seqs.ceiling).then(|| seq.saturating_add(SEQ_BLOCK));
        if let Some(ceiling) = raise {
            seqs.ceiling = ceiling;
        }
        let (job, answer) = insert::InsertJob::new(
            self.shared.waiting.clone(),
            owner,
            seq,
            msg,
            stamp,
            if_account,
            raise,
            due,
        );
        let done = self.send(Box::new(job), answer);
        drop(seqs);
        (seq, done)
    }

    /// Withdraws the inserts of `seqs` into `owner`'s queue that are not
    /// written yet; returns the other seqs.
    pub(crate) fn withdraw(&self, owner: &str, seqs: Vec<i64>) -> Vec<i64> {
        self.shared.waiting.withdraw(owner, seqs)
    }

    /// Writes the inserts of `seqs` into `owner`'s queue that still wait
    /// without waiting any longer.
    pub(crate) fn offline_hurry(&self, owner: &str, seqs: &[u64]) {
        self.shared.waiting.hurry(owner, &rows::stored_seqs(seqs));
    }

    /// Queues the job `make` builds around the reply channel.
    fn queue<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Box<dyn writer::Job>,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply), answer)
    }

    /// Queues `job` for the writer now; the returned future is its
    /// `answer` (`Closed` if the store is closed or the job was dropped).
    fn send<T>(
        &self,
        job: Box<dyn writer::Job>,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
    {
        let queued = !self.shared.closed.load(Ordering::SeqCst)
            && self.shared.tx.send(Msg::Job(job)).is_ok();
        async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            answer.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// Runs `f` on a pooled read-only connection on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .shared
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = lock(&shared.readers).pop();
            // A connection is missing only if a read panicked; replace it.
            let conn = match pooled {
                Some(c) => c,
                None => open_reader(&shared.path)?,
            };
            let result = f(&conn);
            if !shared.closed.load(Ordering::SeqCst) {
                lock(&shared.readers).push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_writer(path: &Path, fsync: bool) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Switching a fresh file to WAL takes an exclusive lock and SQLite
    // answers BUSY at once (not after busy_timeout) when another process
    // opens it at the same moment: retry within the same time limit.
    let started = std::time::Instant::now();
    let mode: String = loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot enable WAL journal (got {mode:?})"
        )));
    }
    conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
