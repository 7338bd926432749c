//! Queue inserts, and withdrawing one that is no longer needed.
//!
//! A message handed to the recipient's sessions before its commit may wait
//! a little in the writer (its `due` time) instead of being written at
//! once. If a session of the recipient acknowledges it meanwhile, the
//! delete of its seq withdraws the insert: the message is never written
//! (nor deleted), and whoever waits for the insert hears at once that it is
//! done: the recipient has it. Online delivery then costs no disk write.
//!
//! Every insert not yet run is registered in [`Waiting`] by seq, with its
//! owner and the channel its answer goes to. The writer takes the entry out
//! when it runs the job; a delete takes it out to withdraw it. Whichever
//! comes first wins, under one lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::lock;
use super::writer::Job;
use crate::{OfflineMessage, StoreError};

/// The answer to an insert: its seq, or None when the owner has no account.
pub(crate) type Answer = Result<Option<u64>, StoreError>;

/// An insert not yet run: whose queue it is for, and where its answer goes.
struct Entry {
    owner: String,
    reply: oneshot::Sender<Answer>,
    /// To be written without waiting out its due time.
    hurried: bool,
}

/// The inserts not yet run, by seq; how many were withdrawn; and the
/// writer thread, woken when the insert it waits for is withdrawn.
#[derive(Default)]
pub(crate) struct Waiting {
    map: Mutex<HashMap<i64, Entry>>,
    withdrawn: AtomicU64,
    writer: OnceLock<Thread>,
}

impl Waiting {
    /// Withdraws the inserts of `seqs` still waiting that belong to `owner`
    /// (they then resolve to their seq); returns the other seqs.
    pub(crate) fn withdraw(&self, owner: &str, seqs: Vec<i64>) -> Vec<i64> {
        let mut rest = Vec::new();
        let mut done = Vec::new();
        {
            let mut map = lock(&self.map);
            for seq in seqs {
                match map.get(&seq) {
                    Some(e) if e.owner == owner => done.extend(map.remove(&seq).map(|e| (seq, e))),
                    _ => rest.push(seq),
                }
            }
        }
        if done.is_empty() {
            return rest;
        }
        self.withdrawn
            .fetch_add(done.len() as u64, Ordering::Relaxed);
        // Not woken: the writer looks again within `NAP` anyway, and waking
        // it for every withdrawn insert cost a futex call each.
        for (seq, e) in done {
            let _ = e.reply.send(Ok(Some(seq.unsigned_abs())));
        }
        rest
    }

    /// Inserts withdrawn so far.
    pub(crate) fn withdrawn(&self) -> u64 {
        self.withdrawn.load(Ordering::Relaxed)
    }

    /// Has the inserts of `seqs` into `owner`'s queue that still wait
    /// written without waiting any longer.
    pub(crate) fn hurry(&self, owner: &str, seqs: &[i64]) {
        let mut any = false;
        {
            let mut map = lock(&self.map);
            for seq in seqs {
                if let Some(e) = map.get_mut(seq).filter(|e| e.owner == owner) {
                    e.hurried = true;
                    any = true;
                }
            }
        }
        if any {
            self.wake_writer();
        }
    }

    /// Whether the insert of `seq` still waits out its due time (it is
    /// neither withdrawn nor hurried).
    fn holds(&self, seq: i64) -> bool {
        lock(&self.map).get(&seq).is_some_and(|e| !e.hurried)
    }

    /// Names the writer thread (once, when it starts).
    pub(crate) fn set_writer(&self, t: Thread) {
        let _ = self.writer.set(t);
    }

    /// Wakes the writer thread if it sleeps until a job is due.
    pub(crate) fn wake_writer(&self) {
        if let Some(t) = self.writer.get() {
            t.unpark();
        }
    }

    /// Drops every waiting insert: their callers see `Closed`.
    pub(crate) fn clear(&self) {
        lock(&self.map).clear();
    }
}

/// An insert into the queue (see the module documentation).
pub(crate) struct InsertJob {
    pub(crate) seq: i64,
    pub(crate) msg: OfflineMessage,
    pub(crate) stamp: i64,
    /// Insert only if the owner has an account.
    pub(crate) if_account: bool,
    /// Raise the stored seq counter to this first (see `Seqs`).
    pub(crate) raise: Option<i64>,
    /// Not written before this (None: at once).
    pub(crate) due: Option<Instant>,
    pub(crate) waiting: Arc<Waiting>,
    /// Taken from `waiting` when run.
    taken: Option<Entry>,
    out: Option<Answer>,
}

impl InsertJob {
    /// Registers the insert as waiting; returns the job and its answer.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        waiting: Arc<Waiting>,
        owner: String,
        seq: i64,
        msg: OfflineMessage,
        stamp: i64,
        if_account: bool,
        raise: Option<i64>,
        due: Option<Instant>,
    ) -> (Self, oneshot::Receiver<Answer>) {
        let (reply, answer) = oneshot::channel();
        lock(&waiting.map).insert(
            seq,
            Entry {
                owner,
                reply,
                hurried: false,
            },
        );
        let job = InsertJob {
            seq,
            msg,
            stamp,
            if_account,
            raise,
            due,
            waiting,
            taken: None,
            out: None,
        };
        (job, answer)
    }

    fn insert(&self, c: &Connection, owner: &str) -> Answer {
        if self.if_account
            && c.prepare_cached("SELECT 1 FROM accounts WHERE jid = ?1")?
                .query_row([owner], |_| Ok(()))
                .optional()?
                .is_none()
        {
            return Ok(None);
        }
        let m = &self.msg;
        c.prepare_cached(INSERT_SQL)?.execute(params![
            self.seq,
            owner,
            m.from,
            m.stanza_id,
            m.msg_id,
            self.stamp,
            m.stanza
        ])?;
        Ok(Some(self.seq.unsigned_abs()))
    }
}

/// The account check is a query of its own: as `INSERT … SELECT … WHERE
/// EXISTS` the insert needed a statement journal, a copy of every page it
/// touched. Not `RETURNING seq` either: SQLite collects RETURNING rows in a
/// temporary table, which cost more than the insert itself.
pub(crate) const INSERT_SQL: &str =
    "INSERT INTO offline (seq, owner, sender, stanza_id, msg_id, stamp_ms, stanza)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl Job for InsertJob {
    fn run(&mut self, conn: &Connection) -> bool {
        // The counter goes up even for a withdrawn insert: later seqs of
        // its block count on it.
        if let Some(ceiling) = self.raise {
            let raised = conn
                .prepare_cached("UPDATE counters SET value = ?1 WHERE name = 'offline_seq'")
                .and_then(|mut st| st.execute([ceiling]));
            if let Err(e) = raised {
                // The insert is not run either: it could outlive the
                // counter (a seq given twice after a restart).
                self.taken = lock(&self.waiting.map).remove(&self.seq);
                self.out = Some(Err(e.into()));
                return !conn.is_autocommit();
            }
        }
        let Some(entry) = lock(&self.waiting.map).remove(&self.seq) else {
            return true; // withdrawn: the recipient has it
        };
        // One statement: a failure is undone by SQLite alone, no savepoint.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.insert(conn, &entry.owner)
        }))
        .unwrap_or_else(|_| Err(StoreError::Backend("write panicked".into())));
        self.taken = Some(entry);
        self.out = Some(out);
        !conn.is_autocommit()
    }

    fn finish(mut self: Box<Self>, commit: Result<(), StoreError>) {
        let Some(entry) = self.taken.take() else {
            return; // withdrawn, answered then
        };
        let out = match commit {
            Ok(()) => self
                .out
                .take()
                .unwrap_or_else(|| Err(StoreError::Backend("write was not run".into()))),
            Err(e) => Err(e),
        };
        let _ = entry.reply.send(out);
    }

    fn needed(&self) -> bool {
        self.raise.is_some() || lock(&self.waiting.map).contains_key(&self.seq)
    }

    fn due(&self) -> Option<Instant> {
        // A withdrawn or hurried insert holds nothing up.
        self.due.filter(|_| self.waiting.holds(self.seq))
    }
}

impl Drop for InsertJob {
    fn drop(&mut self) {
        // Never run (the writer stopped): the caller sees `Closed`.
        if self.taken.is_none() && self.out.is_none() {
            lock(&self.waiting.map).remove(&self.seq);
        }
    }
}
