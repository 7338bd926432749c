//! Archive appends through the writer.
//!
//! Appends are gathered: the first append finding none waiting queues one
//! writer job ([`AppendBatch`]); appends asked for before that job runs
//! join it, so a busy server writes its archive entries a batch per
//! transaction, not a job each. The job is queued while the gathering lock
//! is held, so a write queued after an append (a barrier) runs after the
//! job that carries it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::*;
use crate::sqlite::lock;
use crate::sqlite::writer::{control, Job, Msg};
use crate::sqlite::SqliteStore;
use crate::{ArchiveDefault, ArchiveEntry, StoreError};

/// Whether `prefs` (None: the defaults) let `owner` archive a message with
/// `with_bare`.
fn wanted(
    c: &Connection,
    owner: &str,
    with_bare: &str,
    prefs: Option<(String, String, String)>,
) -> Result<bool, StoreError> {
    let Some((dflt, always, never)) = prefs else {
        return Ok(true);
    };
    if never.split('\n').any(|j| j == with_bare) {
        return Ok(false);
    }
    if always.split('\n').any(|j| j == with_bare) {
        return Ok(true);
    }
    Ok(match ArchiveDefault::parse(&dflt).unwrap_or_default() {
        ArchiveDefault::Always => true,
        ArchiveDefault::Never => false,
        ArchiveDefault::Roster => c
            .prepare_cached(IN_ROSTER_SQL)?
            .query_row([owner, with_bare], |_| Ok(()))
            .optional()?
            .is_some(),
    })
}

/// An owner's account and preferences as [`PREFS_SQL`] reads them: None
/// without an account, `Some(None)` with the default preferences.
type OwnerPrefs = Option<Option<(String, String, String)>>;

/// What one batch of appends already looked up (a busy archive sees the
/// same accounts again and again).
#[derive(Default)]
pub(super) struct Lookups {
    prefs: HashMap<String, OwnerPrefs>,
    accounts: HashMap<String, bool>,
}

impl Lookups {
    fn prefs(&mut self, c: &Connection, owner: &str) -> Result<OwnerPrefs, StoreError> {
        if let Some(p) = self.prefs.get(owner) {
            return Ok(p.clone());
        }
        let p: OwnerPrefs = c
            .prepare_cached(PREFS_SQL)?
            .query_row([owner], |r| {
                let dflt: Option<String> = r.get(0)?;
                Ok(match dflt {
                    Some(d) => Some((d, r.get(1)?, r.get(2)?)),
                    None => None,
                })
            })
            .optional()?;
        self.prefs.insert(owner.to_owned(), p.clone());
        Ok(p)
    }

    fn account(&mut self, c: &Connection, jid: &str) -> Result<bool, StoreError> {
        if let Some(&e) = self.accounts.get(jid) {
            return Ok(e);
        }
        let e = c
            .prepare_cached("SELECT 1 FROM accounts WHERE jid = ?1")?
            .query_row([jid], |_| Ok(()))
            .optional()?
            .is_some();
        self.accounts.insert(jid.to_owned(), e);
        Ok(e)
    }
}

/// Appends `entries` inside the writer's transaction; returns how many were
/// stored (an entry is skipped when its owner has no account, its
/// preferences exclude it, or its id is already in the owner's archive).
fn append(
    c: &Connection,
    entries: &[ArchiveEntry],
    seen: &mut Lookups,
) -> Result<usize, StoreError> {
    let mut stored = 0;
    for e in entries {
        let Some(prefs) = seen.prefs(c, &e.owner)? else {
            continue; // no such account
        };
        let (with_bare, with_res) = split_jid(&e.with);
        if e.with_must_exist && !seen.account(c, with_bare)? {
            continue;
        }
        if !wanted(c, &e.owner, with_bare, prefs)? {
            continue;
        }
        let stamp = i64::try_from(e.stamp_unix_ms).unwrap_or(i64::MAX);
        stored += c.prepare_cached(INSERT_SQL)?.execute(params![
            e.owner,
            e.id,
            with_bare,
            with_res,
            e.sender,
            e.origin_id,
            stamp,
            &e.stanza[..]
        ])?;
    }
    Ok(stored)
}

/// One caller's entries and where their outcome goes.
pub(super) type Group = (
    Vec<ArchiveEntry>,
    oneshot::Sender<Result<usize, StoreError>>,
);

/// Appends gathered for the next [`AppendBatch`].
#[derive(Default)]
pub(crate) struct Appends {
    pending: Mutex<Gathered>,
    /// Entries asked for and not yet committed (or failed).
    backlog: AtomicUsize,
}

#[derive(Default)]
struct Gathered {
    groups: Vec<Group>,
    /// An [`AppendBatch`] is queued and has not taken them yet.
    queued: bool,
}

/// The writer job that appends whatever was gathered when it runs, under
/// one savepoint (all of it or none).
pub(super) struct AppendBatch {
    appends: Arc<Appends>,
    taken: Vec<(usize, oneshot::Sender<Result<usize, StoreError>>)>,
    entries: usize,
    out: Option<Result<Vec<usize>, StoreError>>,
    finished: bool,
}

impl AppendBatch {
    fn append_all(
        conn: &Connection,
        groups: &[Vec<ArchiveEntry>],
    ) -> Result<Vec<usize>, StoreError> {
        let mut seen = Lookups::default();
        groups.iter().map(|g| append(conn, g, &mut seen)).collect()
    }
}

impl Job for AppendBatch {
    fn run(&mut self, conn: &Connection) -> bool {
        let groups = {
            let mut g = lock(&self.appends.pending);
            g.queued = false;
            std::mem::take(&mut g.groups)
        };
        let mut lists = Vec::with_capacity(groups.len());
        for (entries, reply) in groups {
            self.entries += entries.len();
            self.taken.push((entries.len(), reply));
            lists.push(entries);
        }
        if let Err(e) = control(conn, "SAVEPOINT job") {
            self.out = Some(Err(e.into()));
            return !conn.is_autocommit();
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Self::append_all(conn, &lists)
        }))
        .unwrap_or_else(|_| Err(StoreError::Backend("write panicked".into())));
        let healthy = match &outcome {
            Ok(_) => control(conn, "RELEASE job").is_ok() && !conn.is_autocommit(),
            Err(_) if conn.is_autocommit() => false,
            Err(_) => {
                control(conn, "ROLLBACK TO job").is_ok() && control(conn, "RELEASE job").is_ok()
            }
        };
        self.out = Some(outcome);
        healthy
    }

    fn finish(mut self: Box<Self>, commit: Result<(), StoreError>) {
        self.appends
            .backlog
            .fetch_sub(self.entries, Ordering::Relaxed);
        let out = self.out.take();
        // Drop sees `finished` and leaves the gathered appends alone.
        self.finished = true;
        let out = match commit {
            Ok(()) => out.unwrap_or_else(|| Err(StoreError::Backend("write was not run".into()))),
            Err(e) => Err(e),
        };
        for (i, (_, reply)) in std::mem::take(&mut self.taken).into_iter().enumerate() {
            let _ = reply.send(out.clone().map(|counts| counts[i]));
        }
    }
}

impl Drop for AppendBatch {
    fn drop(&mut self) {
        if self.finished || self.out.is_some() {
            return;
        }
        // Never run (the writer stopped): what it would have taken fails
        // with Closed, and a later append queues a job of its own (which
        // then fails the same way).
        let mut g = lock(&self.appends.pending);
        g.queued = false;
        for (entries, reply) in std::mem::take(&mut g.groups) {
            self.appends
                .backlog
                .fetch_sub(entries.len(), Ordering::Relaxed);
            let _ = reply.send(Err(StoreError::Closed));
        }
    }
}

impl Drop for Appends {
    fn drop(&mut self) {
        // Gathered but never taken (the writer stopped): callers see Closed.
        let groups = std::mem::take(&mut lock(&self.pending).groups);
        drop(groups);
    }
}

/// A job that changes nothing: its answer comes once every write queued
/// before it is committed.
pub(super) struct Barrier(Option<oneshot::Sender<Result<(), StoreError>>>);

impl Job for Barrier {
    fn run(&mut self, _conn: &Connection) -> bool {
        true
    }
    fn finish(mut self: Box<Self>, commit: Result<(), StoreError>) {
        if let Some(reply) = self.0.take() {
            let _ = reply.send(commit);
        }
    }
    fn needed(&self) -> bool {
        false
    }
}

impl SqliteStore {
    pub(crate) fn archive_append(
        &self,
        entries: Vec<ArchiveEntry>,
    ) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let appends = &self.shared.appends;
        let n = entries.len();
        let queued = !self.shared.closed.load(Ordering::SeqCst) && {
            let mut g = lock(&appends.pending);
            g.groups.push((entries, reply));
            appends.backlog.fetch_add(n, Ordering::Relaxed);
            if g.queued {
                true
            } else {
                let job = AppendBatch {
                    appends: appends.clone(),
                    taken: Vec::new(),
                    entries: 0,
                    out: None,
                    finished: false,
                };
                // Queued under the lock: see the module documentation.
                let sent = !self.shared.closed.load(Ordering::SeqCst)
                    && self.shared.tx.send(Msg::Job(Box::new(job))).is_ok();
                if sent {
                    g.queued = true;
                } else {
                    // Nobody will take them: fail this caller's entries.
                    if let Some((entries, reply)) = g.groups.pop() {
                        appends.backlog.fetch_sub(entries.len(), Ordering::Relaxed);
                        let _ = reply.send(Err(StoreError::Closed));
                    }
                }
                sent
            }
        };
        async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            answer.await.map_err(|_| StoreError::Closed)?
        }
    }

    pub(crate) fn archive_backlog(&self) -> usize {
        self.shared.appends.backlog.load(Ordering::Relaxed)
    }

    pub(crate) fn write_barrier(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        self.queue(|reply| Box::new(Barrier(Some(reply))))
    }
}
