//! The message archive (XEP-0313): appends and retractions through the
//! writer (batched with every other write), queries on the read pool,
//! expiry in bounded batches, per-account preferences.
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

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tokio::sync::oneshot;

use super::lock;
use super::rows::{to_i64, to_u64};
use super::writer::{control, Job, Msg};
use super::SqliteStore;
use crate::{
    ArchiveDefault, ArchiveEntry, ArchivePage, ArchivePrefs, ArchiveQuery, ArchivedMessage,
    StoreError,
};

/// Most ids one `ids` query may name.
pub(crate) const MAX_IDS: usize = 1000;

const COLUMNS: &str =
    "n, id, with_bare, with_res, sender, origin_id, stamp_ms, retracted_ms, stanza";

/// The owner's account and preferences: no row when there is no account.
const PREFS_SQL: &str = "SELECT p.dflt, p.always, p.never FROM accounts a
     LEFT JOIN archive_prefs p ON p.owner = a.jid WHERE a.jid = ?1";
const IN_ROSTER_SQL: &str =
    "SELECT 1 FROM roster WHERE owner = ?1 AND contact = ?2 AND in_roster = 1";
const INSERT_SQL: &str = "INSERT OR IGNORE INTO archive
     (owner, id, with_bare, with_res, sender, origin_id, stamp_ms, stanza)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
/// An archive id to its position in the owner's archive.
const POSITION_SQL: &str = "SELECT n FROM archive WHERE owner = ?1 AND id = ?2";
/// The content goes (the tombstone keeps who, when and which origin-id).
const RETRACT_SQL: &str = "UPDATE archive SET stanza = x'', retracted_ms = ?4
     WHERE owner = ?1 AND origin_id = ?2 AND origin_id <> '' AND with_bare = ?3
       AND retracted_ms IS NULL AND (sender = ?5 OR (sender >= ?6 AND sender < ?7))";
/// The oldest entries of all archives, in arrival order.
const OLDEST_ALL_SQL: &str = "SELECT n, stamp_ms FROM archive ORDER BY n LIMIT ?1";
/// `NOT INDEXED`: a rowid range, never a skip-scan of an owner index.
const EXPIRE_SQL: &str = "DELETE FROM archive NOT INDEXED WHERE n <= ?1";
const OLDEST_SQL: &str = "SELECT id, stamp_ms FROM archive WHERE owner = ?1 ORDER BY n LIMIT 1";
const NEWEST_SQL: &str =
    "SELECT id, stamp_ms FROM archive WHERE owner = ?1 ORDER BY n DESC LIMIT 1";

/// Splits a JID into its bare part and resource ('' if none).
fn split_jid(jid: &str) -> (&str, &str) {
    match jid.split_once('/') {
        Some((bare, res)) => (bare, res),
        None => (jid, ""),
    }
}

/// The byte range of full JIDs of `bare` (see `offline_find`): exactly the
/// strings starting with `bare/` sort in [`bare/`, `bare0`).
fn resource_range(bare: &str) -> (String, String) {
    (format!("{bare}/"), format!("{bare}0"))
}

fn join(list: &[String]) -> String {
    list.join("\n")
}

fn split(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn archived_row(r: &Row<'_>) -> rusqlite::Result<(i64, ArchivedMessage)> {
    let with_bare: String = r.get(2)?;
    let with_res: String = r.get(3)?;
    let with = if with_res.is_empty() {
        with_bare
    } else {
        format!("{with_bare}/{with_res}")
    };
    let retracted: Option<i64> = r.get(7)?;
    Ok((
        r.get(0)?,
        ArchivedMessage {
            id: r.get(1)?,
            with,
            sender: r.get(4)?,
            origin_id: r.get(5)?,
            stamp_unix_ms: to_u64(r.get(6)?)?,
            retracted_unix_ms: retracted.map(to_u64).transpose()?,
            stanza: r.get(8)?,
        },
    ))
}

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
struct Lookups {
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

/// The position of archive id `id` in `owner`'s archive.
fn position(c: &Connection, owner: &str, id: &str) -> Result<i64, StoreError> {
    c.prepare_cached(POSITION_SQL)?
        .query_row([owner, id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// Builds and runs the query (see [`crate::Store::archive_query`]).
fn query(c: &Connection, owner: &str, q: &ArchiveQuery) -> Result<ArchivePage, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM archive WHERE owner = ?");
    let mut args: Vec<Value> = vec![owner.to_owned().into()];
    if let Some(with) = &q.with {
        let (bare, res) = split_jid(with);
        sql.push_str(" AND with_bare = ?");
        args.push(bare.to_owned().into());
        if !res.is_empty() {
            sql.push_str(" AND with_res = ?");
            args.push(res.to_owned().into());
        }
    }
    if let Some(id) = &q.after_id {
        sql.push_str(" AND n > ?");
        args.push(position(c, owner, id)?.into());
    }
    if let Some(id) = &q.before_id {
        sql.push_str(" AND n < ?");
        args.push(position(c, owner, id)?.into());
    }
    if let Some(t) = q.start_unix_ms {
        sql.push_str(" AND stamp_ms >= ?");
        args.push(i64::try_from(t).unwrap_or(i64::MAX).into());
    }
    if let Some(t) = q.end_unix_ms {
        sql.push_str(" AND stamp_ms <= ?");
        args.push(i64::try_from(t).unwrap_or(i64::MAX).into());
    }
    if !q.ids.is_empty() {
        if q.ids.len() > MAX_IDS {
            return Err(StoreError::InvalidInput(format!(
                "more than {MAX_IDS} ids in one query"
            )));
        }
        sql.push_str(" AND id IN (");
        for (i, id) in q.ids.iter().enumerate() {
            sql.push_str(if i == 0 { "?" } else { ", ?" });
            args.push(id.clone().into());
        }
        sql.push(')');
    }
    sql.push_str(if q.backward {
        " ORDER BY n DESC LIMIT ?"
    } else {
        " ORDER BY n LIMIT ?"
    });
    // One more than asked for tells whether another page follows.
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX - 1);
    args.push((limit + 1).into());
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(rusqlite::params_from_iter(args), archived_row)?;
    let mut items: Vec<ArchivedMessage> = Vec::new();
    for row in rows {
        items.push(row?.1);
    }
    let complete = items.len() <= q.limit;
    items.truncate(q.limit);
    if q.backward {
        items.reverse();
    }
    Ok(ArchivePage { items, complete })
}

/// One caller's entries and where their outcome goes.
type Group = (
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
struct AppendBatch {
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
struct Barrier(Option<oneshot::Sender<Result<(), StoreError>>>);

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

    pub(crate) fn archive_retract(
        &self,
        owner: &str,
        with_bare: &str,
        sender_bare: &str,
        origin_id: &str,
        at_unix_ms: u64,
    ) -> impl std::future::Future<Output = Result<usize, StoreError>> + Send + 'static {
        let (owner, with, sender, origin) = (
            owner.to_owned(),
            with_bare.to_owned(),
            sender_bare.to_owned(),
            origin_id.to_owned(),
        );
        let at = i64::try_from(at_unix_ms).unwrap_or(i64::MAX);
        self.submit_single(move |c| {
            let (lo, hi) = resource_range(&sender);
            Ok(c.prepare_cached(RETRACT_SQL)?
                .execute(params![owner, origin, with, at, sender, lo, hi])?)
        })
    }

    pub(crate) async fn archive_expire(
        &self,
        before_unix_ms: u64,
        max_rows: usize,
    ) -> Result<usize, StoreError> {
        let cutoff = to_i64(before_unix_ms, "timestamp")?;
        let max = i64::try_from(max_rows).unwrap_or(i64::MAX);
        self.submit_single(move |c| {
            // The run of entries from the oldest that are all older than
            // the cutoff: arrival order is time order, so this is every
            // expired entry (one stamped older than an entry that arrived
            // before it goes once that one has gone).
            let mut last = None;
            {
                let mut st = c.prepare_cached(OLDEST_ALL_SQL)?;
                let mut rows = st.query([max])?;
                while let Some(r) = rows.next()? {
                    let (n, stamp): (i64, i64) = (r.get(0)?, r.get(1)?);
                    if stamp >= cutoff {
                        break;
                    }
                    last = Some(n);
                }
            }
            let Some(last) = last else {
                return Ok(0);
            };
            Ok(c.prepare_cached(EXPIRE_SQL)?.execute([last])?)
        })
        .await
    }

    pub(crate) async fn archive_query(
        &self,
        owner: &str,
        q: ArchiveQuery,
    ) -> Result<ArchivePage, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            // One read transaction: the positions and the rows agree.
            let tx = c.unchecked_transaction()?;
            let page = query(&tx, &owner, &q)?;
            tx.finish()?;
            Ok(page)
        })
        .await
    }

    pub(crate) async fn archive_bounds(
        &self,
        owner: &str,
    ) -> Result<Option<((String, u64), (String, u64))>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let one = |sql: &str| -> Result<Option<(String, u64)>, StoreError> {
                Ok(tx
                    .prepare_cached(sql)?
                    .query_row([&owner], |r| Ok((r.get(0)?, to_u64(r.get(1)?)?)))
                    .optional()?)
            };
            let bounds = match (one(OLDEST_SQL)?, one(NEWEST_SQL)?) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            };
            Ok(bounds)
        })
        .await
    }

    pub(crate) async fn archive_count(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM archive WHERE owner = ?1")?
                .query_row([&owner], |r| r.get(0))?;
            Ok(to_u64(n)?)
        })
        .await
    }

    pub(crate) async fn archive_prefs(&self, owner: &str) -> Result<ArchivePrefs, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            let row: Option<(String, String, String)> = c
                .prepare_cached("SELECT dflt, always, never FROM archive_prefs WHERE owner = ?1")?
                .query_row([&owner], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            Ok(match row {
                None => ArchivePrefs::default(),
                Some((d, a, n)) => ArchivePrefs {
                    default: ArchiveDefault::parse(&d).unwrap_or_default(),
                    always: split(&a),
                    never: split(&n),
                },
            })
        })
        .await
    }

    pub(crate) async fn set_archive_prefs(
        &self,
        owner: &str,
        prefs: &ArchivePrefs,
    ) -> Result<(), StoreError> {
        if let Some(j) = prefs
            .always
            .iter()
            .chain(&prefs.never)
            .find(|j| j.is_empty() || j.contains('\n'))
        {
            return Err(StoreError::InvalidInput(format!("not a JID: {j:?}")));
        }
        let (owner, dflt) = (owner.to_owned(), prefs.default.as_str());
        let (always, never) = (join(&prefs.always), join(&prefs.never));
        self.submit_single(move |c| {
            c.prepare_cached(
                "INSERT INTO archive_prefs (owner, dflt, always, never) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner) DO UPDATE SET dflt = excluded.dflt,
                    always = excluded.always, never = excluded.never",
            )?
            .execute(params![owner, dflt, always, never])?;
            Ok(())
        })
        .await
    }

    pub(crate) fn write_barrier(
        &self,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        self.queue(|reply| Box::new(Barrier(Some(reply))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(c: &Connection, sql: &str, args: Vec<Value>) -> String {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    /// 2000 messages in each of 20 archives, two conversations each.
    fn fill(c: &Connection) {
        let mut st = c.prepare(INSERT_SQL).unwrap();
        for i in 0..40_000 {
            let owner = if i % 20 == 0 {
                "a@x".to_owned()
            } else {
                format!("u{}@x", i % 20)
            };
            let with = if i % 40 == 0 { "b@x" } else { "c@x" };
            st.execute(params![
                owner,
                format!("id{i}"),
                with,
                "",
                "a@x/r",
                "",
                i,
                b"<m/>".to_vec()
            ])
            .unwrap();
        }
    }

    /// The archive statements search an index even with many rows: the
    /// newest of one conversation, after an id, an id's position,
    /// retraction and expiry.
    #[test]
    fn archive_statements_search_an_index() {
        let c = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&c).unwrap();
        fill(&c);
        let newest = ArchiveQuery {
            with: Some("b@x".into()),
            limit: 50,
            backward: true,
            ..ArchiveQuery::default()
        };
        let page = query(&c, "a@x", &newest).unwrap();
        assert_eq!(page.items.len(), 50);
        assert_eq!(page.items.last().unwrap().id, "id39960");
        // As SQLite plans them with no statistics (natterd never runs
        // ANALYZE) and with statistics.
        plans(&c);
        c.execute_batch("ANALYZE").unwrap();
        plans(&c);
    }

    fn plans(c: &Connection) {
        let conv = plan(
            c,
            &format!(
                "SELECT {COLUMNS} FROM archive WHERE owner = ? AND with_bare = ? \
                 ORDER BY n DESC LIMIT ?"
            ),
            vec![
                "a@x".to_owned().into(),
                "b@x".to_owned().into(),
                51i64.into(),
            ],
        );
        assert!(conv.contains("USING INDEX archive_owner_with_n"), "{conv}");
        let after = plan(
            c,
            &format!("SELECT {COLUMNS} FROM archive WHERE owner = ? AND n > ? ORDER BY n LIMIT ?"),
            vec!["a@x".to_owned().into(), 1000i64.into(), 51i64.into()],
        );
        assert!(after.contains("USING INDEX archive_owner_n"), "{after}");
        let pos = plan(
            c,
            POSITION_SQL,
            vec!["a@x".to_owned().into(), "id5".to_owned().into()],
        );
        assert!(pos.contains("INDEX archive_owner_id"), "{pos}");
        let v = |s: &str| -> Value { s.to_owned().into() };
        let retract = plan(
            c,
            RETRACT_SQL,
            vec![
                v("a@x"),
                v("o"),
                v("b@x"),
                1i64.into(),
                v("a@x"),
                v("a@x/"),
                v("a@x0"),
            ],
        );
        assert!(
            retract.contains("USING INDEX archive_owner_origin"),
            "{retract}"
        );
        let expire = plan(c, EXPIRE_SQL, vec![5i64.into()]);
        assert!(expire.contains("USING INTEGER PRIMARY KEY"), "{expire}");
        // Expiry reads the oldest entries in table order, never more than
        // its batch (LIMIT).
        let oldest = plan(c, OLDEST_ALL_SQL, vec![10i64.into()]);
        assert_eq!(oldest, "SCAN archive", "{oldest}");
        for p in [&conv, &after, &pos, &retract, &expire] {
            assert!(!p.contains("SCAN archive"), "{p}");
        }
    }
}
