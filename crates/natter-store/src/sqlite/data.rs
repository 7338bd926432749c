//! Offline queue, vCard, last activity and key-value operations.

use std::time::{Duration, Instant};

use rusqlite::{params, OptionalExtension};

use super::rows::{offline_row, stored_seqs, to_i64, to_u64};
use super::SqliteStore;
use crate::{OfflineMessage, StoreError};

// The offline queue's statements, each a search of one index (tested below).
const FETCH_SQL: &str = "SELECT seq, sender, stanza_id, msg_id, stamp_ms, stanza FROM offline
     WHERE owner = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3";
const DELETE_SQL: &str = "DELETE FROM offline WHERE seq = ?2 AND owner = ?1";
const FIND_SQL: &str = "SELECT MIN(seq) FROM offline
     WHERE owner = ?1 AND msg_id = ?3 AND msg_id <> ''
       AND (sender = ?2 OR (sender >= ?4 AND sender < ?5))";

impl SqliteStore {
    // ---- offline queue --------------------------------------------------

    pub(crate) async fn offline_push(
        &self,
        owner: &str,
        msg: &OfflineMessage,
    ) -> Result<u64, StoreError> {
        let stamp = to_i64(msg.stamp_unix_ms, "timestamp")?;
        let (_, done) = self.queue_insert(owner.to_owned(), msg.clone(), stamp, false, None);
        match done.await? {
            Some(seq) => Ok(seq),
            None => Err(StoreError::Backend("queue insert was not run".into())),
        }
    }

    /// Queues the message now (in call order) if `owner` has an account:
    /// its seq at once, and a future that resolves after the commit to the
    /// seq, or None when there is no account. With a nonzero `ack_wait` the
    /// write waits that long for a delete that withdraws it.
    pub(crate) fn offline_push_if_account(
        &self,
        owner: &str,
        msg: OfflineMessage,
        ack_wait: Duration,
    ) -> (
        u64,
        impl std::future::Future<Output = Result<Option<u64>, StoreError>> + Send + 'static,
    ) {
        // A time past the year 292,000,000 is kept as the latest one.
        let stamp = i64::try_from(msg.stamp_unix_ms).unwrap_or(i64::MAX);
        let due = (!ack_wait.is_zero()).then(|| Instant::now() + ack_wait);
        let (seq, done) = self.queue_insert(owner.to_owned(), msg, stamp, true, due);
        (seq.unsigned_abs(), done)
    }

    pub(crate) async fn offline_fetch(
        &self,
        owner: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, OfflineMessage)>, StoreError> {
        // Anything past i64::MAX is past every stored seq.
        let Ok(after) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let owner = owner.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(FETCH_SQL)?;
            let rows = st.query_map(params![owner, after, limit], offline_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Queued now (after every write asked for before it); the future
    /// resolves after the commit.
    pub(crate) fn offline_delete(
        &self,
        owner: &str,
        seqs: &[u64],
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let seqs = stored_seqs(seqs);
        // Inserts not yet written are withdrawn instead: nothing to delete.
        let seqs = self.withdraw(owner, seqs);
        let owner = owner.to_owned();
        // No savepoint: deleting is idempotent, so a failure part-way (the
        // caller sees the error) leaves nothing a later delete cannot finish.
        let job = (!seqs.is_empty()).then(|| {
            self.submit_single(move |c| {
                let mut st = c.prepare_cached(DELETE_SQL)?;
                for seq in seqs {
                    st.execute(params![owner, seq])?;
                }
                Ok(())
            })
        });
        async move {
            match job {
                Some(job) => job.await,
                None => Ok(()),
            }
        }
    }

    pub(crate) async fn offline_find(
        &self,
        owner: &str,
        from_bare: &str,
        msg_id: &str,
    ) -> Result<Option<u64>, StoreError> {
        if msg_id.is_empty() {
            return Ok(None);
        }
        // `sender` is a full JID. It belongs to `from_bare` if it equals it
        // or starts with `from_bare/`. The prefix test is a byte range
        // (BINARY collation compares with memcmp): exactly the strings that
        // start with `from_bare/` sort in ["from_bare/", "from_bare0"), as
        // '0' is the byte after '/'. No LIKE, so `%` and `_` in a JID are
        // plain characters.
        let (owner, bare, msg_id) = (owner.to_owned(), from_bare.to_owned(), msg_id.to_owned());
        let (lo, hi) = (format!("{bare}/"), format!("{bare}0"));
        self.read(move |c| {
            // A search of the (owner, msg_id) index, which holds only rows
            // with a msg_id (hence `msg_id <> ''`); the sender is checked
            // on the few rows it finds. `MIN` yields one row, NULL if
            // nothing matched.
            let seq: Option<i64> = c
                .prepare_cached(FIND_SQL)?
                .query_row(params![owner, bare, msg_id, lo, hi], |r| r.get(0))?;
            Ok(seq.map(to_u64).transpose()?)
        })
        .await
    }

    pub(crate) async fn offline_count(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            let n: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM offline WHERE owner = ?1")?
                .query_row([&owner], |r| r.get(0))?;
            Ok(to_u64(n)?)
        })
        .await
    }

    pub(crate) async fn offline_total(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM offline")?
                .query_row([], |r| r.get(0))?;
            Ok(to_u64(n)?)
        })
        .await
    }

    // ---- vCard ----------------------------------------------------------

    pub(crate) async fn vcard(&self, owner: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT data FROM vcards WHERE owner = ?1")?
                    .query_row([&owner], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    pub(crate) async fn set_vcard(&self, owner: &str, data: &[u8]) -> Result<(), StoreError> {
        let (owner, data) = (owner.to_owned(), data.to_vec());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO vcards (owner, data) VALUES (?1, ?2)
                 ON CONFLICT (owner) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![owner, data])?;
            Ok(())
        })
        .await
    }

    // ---- last activity --------------------------------------------------

    pub(crate) async fn last_activity(
        &self,
        owner: &str,
    ) -> Result<Option<(u64, String)>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT unix_secs, status FROM last_activity WHERE owner = ?1")?
                    .query_row([&owner], |r| Ok((to_u64(r.get(0)?)?, r.get(1)?)))
                    .optional()?,
            )
        })
        .await
    }

    pub(crate) async fn set_last_activity(
        &self,
        owner: &str,
        unix_secs: u64,
        status: &str,
    ) -> Result<(), StoreError> {
        let secs = to_i64(unix_secs, "timestamp")?;
        let (owner, status) = (owner.to_owned(), status.to_owned());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO last_activity (owner, unix_secs, status) VALUES (?1, ?2, ?3)
                 ON CONFLICT (owner) DO UPDATE SET
                    unix_secs = excluded.unix_secs, status = excluded.status",
            )?
            .execute(params![owner, secs, status])?;
            Ok(())
        })
        .await
    }

    // ---- key-value ------------------------------------------------------

    pub(crate) async fn kv_get(
        &self,
        namespace: &str,
        owner: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (ns, owner, key) = (namespace.to_owned(), owner.to_owned(), key.to_owned());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT value FROM kv WHERE namespace = ?1 AND owner = ?2 AND key = ?3",
            )?
            .query_row([&ns, &owner, &key], |r| r.get(0))
            .optional()?)
        })
        .await
    }

    pub(crate) async fn kv_put(
        &self,
        namespace: &str,
        owner: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let (ns, owner, key) = (namespace.to_owned(), owner.to_owned(), key.to_owned());
        let value = value.to_vec();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO kv (namespace, owner, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (namespace, owner, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![ns, owner, key, value])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn kv_delete(
        &self,
        namespace: &str,
        owner: &str,
        key: &str,
    ) -> Result<(), StoreError> {
        let (ns, owner, key) = (namespace.to_owned(), owner.to_owned(), key.to_owned());
        self.write(move |c| {
            c.prepare_cached("DELETE FROM kv WHERE namespace = ?1 AND owner = ?2 AND key = ?3")?
                .execute([&ns, &owner, &key])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn kv_list(
        &self,
        namespace: &str,
        owner: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let (ns, owner) = (namespace.to_owned(), owner.to_owned());
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT key, value FROM kv WHERE namespace = ?1 AND owner = ?2 ORDER BY key",
            )?;
            let rows = st.query_map([&ns, &owner], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub(crate) async fn kv_owners(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        let ns = namespace.to_owned();
        self.read(move |c| {
            // The primary key (namespace, owner, key) serves this in order.
            let mut st = c.prepare_cached(
                "SELECT DISTINCT owner FROM kv WHERE namespace = ?1 ORDER BY owner",
            )?;
            let rows = st.query_map([&ns], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for `sql`, one line per step.
    fn plan(c: &rusqlite::Connection, sql: &str) -> String {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = st.parameter_count();
        let args: Vec<rusqlite::types::Value> = (0..n).map(|_| 1i64.into()).collect();
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    /// Every queue statement is a search of one index, never a scan: the
    /// queue can hold millions of rows.
    #[test]
    fn queue_statements_search_an_index() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&c).unwrap();
        let fetch = plan(&c, FETCH_SQL);
        assert!(fetch.contains("USING INDEX offline_owner_seq"), "{fetch}");
        let delete = plan(&c, DELETE_SQL);
        assert!(delete.contains("USING INTEGER PRIMARY KEY"), "{delete}");
        let find = plan(&c, FIND_SQL);
        assert!(find.contains("USING INDEX offline_owner_msg_id"), "{find}");
        for p in [&fetch, &delete, &find] {
            assert!(!p.contains("SCAN"), "{p}");
        }
    }
}
