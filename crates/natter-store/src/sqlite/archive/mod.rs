//! The message archive (XEP-0313): appends and retractions through the
//! writer (batched with every other write), queries on the read pool,
//! expiry in bounded batches, per-account preferences.
//!
//! `append.rs` gathers appends into writer jobs; `query.rs` builds and runs
//! queries; this file holds the statements, retraction, expiry,
//! preferences and the store methods that use them.

mod append;
mod query;

use rusqlite::{params, OptionalExtension};

use super::rows::{to_i64, to_u64};
use super::SqliteStore;

pub(crate) use append::Appends;
use query::query;

use crate::{ArchiveDefault, ArchivePage, ArchivePrefs, ArchiveQuery, StoreError};

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

impl SqliteStore {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{types::Value, Connection};

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
