//! The single writer thread and its group commit.
//!
//! Every write is a [`Job`] sent over an unbounded channel (callers bound
//! their own outstanding writes). The thread blocks for the first message,
//! takes whatever else is already queued and runs it (up to [`MAX_BATCH`])
//! inside one `BEGIN IMMEDIATE` … `COMMIT`, in the order it came. A queue
//! insert may carry a due time (see `insert`): it and the jobs behind it
//! wait until then, unless [`MAX_QUEUED`] jobs are queued. Each job runs
//! under its own `SAVEPOINT`, so a job that fails (e.g. `AlreadyExists`)
//! is rolled back alone while the others commit.
//! A job made with [`FnJob::single`] skips the savepoint: it runs at most
//! one modifying statement, which SQLite itself undoes alone if it fails,
//! or its writes are harmless when partly applied (idempotent deletes).
//! Replies are sent only after the commit, so an `Ok` always means durable
//! (in the OS with `synchronous=NORMAL`, on disk with `FULL`).
//!
//! The transaction-control statements are prepared once and cached: a
//! message costs a few statements, and parsing them again each time was a
//! measurable share of the writer's time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// At most this many jobs share one transaction.
pub(crate) const MAX_BATCH: usize = 1024;
/// With this many jobs queued, held inserts are written without waiting
/// out their due time. Far more than a batch: at a high message rate the
/// inserts held for the recipients' acks (and withdrawn by them) number
/// thousands, and writing them early is exactly the work holding saves.
const MAX_QUEUED: usize = 16 * MAX_BATCH;
/// Jobs held until a due time that is at most this far off join the
/// transaction of the job before them.
const SLACK: Duration = Duration::from_millis(2);
/// The longest the writer sleeps before it looks at a held insert again.
const NAP: Duration = Duration::from_millis(5);

/// Counters kept by the writer thread (see [`crate::StoreStats`]).
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) writes: AtomicU64,
}

/// A message to the writer thread.
pub(crate) enum Msg {
    Job(Box<dyn Job>),
    /// Finish what is queued before this, checkpoint, close the connection,
    /// then answer.
    Shutdown(oneshot::Sender<Result<(), StoreError>>),
}

/// One unit of work inside a group transaction.
pub(crate) trait Job: Send {
    /// Runs the job inside the open transaction, remembering its outcome.
    /// Returns `false` if the surrounding transaction can no longer be
    /// committed (SQLite rolled it back, or a savepoint could not be undone).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the outcome once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
    /// Not to be run before this time (None: at once).
    fn due(&self) -> Option<Instant> {
        None
    }
    /// False if running it would change nothing (a withdrawn insert).
    fn needed(&self) -> bool {
        true
    }
}

/// A [`Job`] made from a closure and the channel to answer on.
pub(crate) struct FnJob<T, F> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    /// Run under its own savepoint (see the module documentation).
    savepoint: bool,
}

impl<T, F> FnJob<T, F> {
    /// A job whose writes are undone together if it fails.
    pub(crate) fn new(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        FnJob {
            f: Some(f),
            out: None,
            reply,
            savepoint: true,
        }
    }

    /// A job without a savepoint of its own: `f` runs at most one modifying
    /// statement and cannot fail after it (or its writes are harmless when
    /// only partly applied), and does not panic.
    pub(crate) fn single(f: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Self {
        FnJob {
            savepoint: false,
            ..FnJob::new(f, reply)
        }
    }
}

/// Runs one cached transaction-control statement.
pub(crate) fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

impl<T, F> Job for FnJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return true;
        };
        if !self.savepoint {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(StoreError::Backend("write panicked".into())));
            self.out = Some(outcome);
            // A failed statement was undone alone by SQLite, unless SQLite
            // rolled back the whole transaction.
            return !conn.is_autocommit();
        }
        if let Err(e) = control(conn, "SAVEPOINT job") {
            self.out = Some(Err(e.into()));
            return !conn.is_autocommit();
        }
        // A panicking write must not take the writer thread (and with it
        // every later write) down: treat it as a failed write.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| Err(StoreError::Backend("write panicked".into())));
        match outcome {
            Ok(v) => {
                let released = control(conn, "RELEASE job");
                let healthy = released.is_ok() && !conn.is_autocommit();
                self.out = Some(released.map(|()| v).map_err(StoreError::from));
                healthy
            }
            Err(e) => {
                self.out = Some(Err(e));
                if conn.is_autocommit() {
                    return false; // SQLite already rolled back everything
                }
                control(conn, "ROLLBACK TO job").is_ok() && control(conn, "RELEASE job").is_ok()
            }
        }
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let out = match commit {
            Ok(()) => self
                .out
                .unwrap_or_else(|| Err(StoreError::Backend("write was not run".into()))),
            Err(e) => Err(e),
        };
        // The caller may have gone away (future dropped); nothing to do then.
        let _ = self.reply.send(out);
    }
}

/// The writer thread's main loop. Returns when the channel closes (every
/// `Store` clone dropped) or on [`Msg::Shutdown`].
///
/// Jobs run in the order they came. A job with a `due` time holds up the
/// jobs behind it until then; once it is due, the jobs due within
/// [`SLACK`] after it go into the same transaction, so holding jobs does
/// not turn into one commit per job.
pub(crate) fn run(conn: Connection, mut rx: mpsc::UnboundedReceiver<Msg>, counters: Arc<Counters>) {
    let mut shutdowns = Vec::new();
    let mut queue: VecDeque<Box<dyn Job>> = VecDeque::new();
    let mut open = true;
    loop {
        if queue.is_empty() {
            if !shutdowns.is_empty() || !open {
                break;
            }
            match rx.blocking_recv() {
                Some(Msg::Job(j)) => queue.push_back(j),
                Some(Msg::Shutdown(s)) => shutdowns.push(s),
                None => open = false,
            }
        }
        while shutdowns.is_empty() && open {
            match rx.try_recv() {
                Ok(Msg::Job(j)) => queue.push_back(j),
                Ok(Msg::Shutdown(s)) => shutdowns.push(s),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        // Closing, or too much queued: everything goes now.
        let rush = !shutdowns.is_empty() || !open || queue.len() >= MAX_QUEUED;
        let now = Instant::now();
        if !rush {
            if let Some(due) = queue.front().and_then(|j| j.due()) {
                if due > now {
                    // Looks again within NAP (the insert may be withdrawn
                    // meanwhile); woken early when it is hurried or the
                    // store closes.
                    std::thread::park_timeout((due - now).min(NAP));
                    continue;
                }
            }
        }
        let until = now + SLACK;
        let n = queue
            .iter()
            .take(MAX_BATCH)
            .take_while(|j| rush || j.due().is_none_or(|d| d <= until))
            .count();
        let batch: Vec<Box<dyn Job>> = queue.drain(..n).collect();
        if !batch.is_empty() {
            commit_batch(&conn, batch, &counters);
        }
    }

    // Refuse anything still queued (its callers see `Closed`), but honour
    // concurrent close requests.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Shutdown(s) = msg {
            shutdowns.push(s);
        }
    }

    tracing::info!(
        commits = counters.commits.load(Ordering::Relaxed),
        writes = counters.writes.load(Ordering::Relaxed),
        "storage: writer stopping"
    );
    let result = shut_down(conn);
    for s in shutdowns {
        let _ = s.send(result.clone());
    }
}

fn commit_batch(conn: &Connection, mut batch: Vec<Box<dyn Job>>, counters: &Counters) {
    // Nothing but withdrawn inserts: no transaction at all.
    if !batch.iter().any(|j| j.needed()) {
        for job in batch {
            job.finish(Ok(()));
        }
        return;
    }
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        let e = StoreError::from(e);
        tracing::warn!(error = %e, jobs = batch.len(), "storage: cannot begin write transaction");
        for job in batch {
            job.finish(Err(e.clone()));
        }
        return;
    }

    let mut healthy = true;
    for job in batch.iter_mut() {
        if !job.run(conn) {
            healthy = false;
            break; // the rest get the transaction's error below
        }
    }

    let result = if healthy {
        control(conn, "COMMIT").map_err(StoreError::from)
    } else {
        Err(StoreError::Backend(
            "write transaction aborted by a failing write".into(),
        ))
    };
    match &result {
        Ok(()) => {
            counters.commits.fetch_add(1, Ordering::Relaxed);
            counters
                .writes
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::trace!(jobs = batch.len(), "storage: group commit");
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = batch.len(), "storage: write transaction failed");
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
    for job in batch {
        job.finish(result.clone());
    }
}

/// Checkpoints the WAL into the main file and closes the connection.
fn shut_down(conn: Connection) -> Result<(), StoreError> {
    // TRUNCATE needs no other reader active; if another process is using
    // the file this may be a partial checkpoint, which is fine.
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "storage: checkpoint at close failed");
    }
    conn.close().map_err(|(_, e)| StoreError::from(e))
}
