//! Versioned schema migrations, applied in order at open.
//!
//! The schema version lives in `PRAGMA user_version`. Step `i` of
//! [`MIGRATIONS`] brings the schema from version `i` to `i + 1`. Steps are
//! append-only: never edit a released step, add a new one.

use rusqlite::Connection;

use crate::StoreError;

/// The ordered migration steps. Index `i` upgrades version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE accounts (
        jid         TEXT PRIMARY KEY NOT NULL,
        credentials BLOB NOT NULL
    );

    CREATE TABLE roster (
        owner             TEXT NOT NULL,
        contact           TEXT NOT NULL,
        name              TEXT,
        subscription      TEXT NOT NULL,
        ask_out           INTEGER NOT NULL,
        pending_in        INTEGER NOT NULL,
        approved          INTEGER NOT NULL,
        in_roster         INTEGER NOT NULL,
        pending_in_stanza BLOB,
        PRIMARY KEY (owner, contact)
    );

    CREATE TABLE roster_groups (
        owner   TEXT NOT NULL,
        contact TEXT NOT NULL,
        pos     INTEGER NOT NULL,
        name    TEXT NOT NULL,
        PRIMARY KEY (owner, contact, pos)
    );

    CREATE TABLE roster_versions (
        owner   TEXT PRIMARY KEY NOT NULL,
        version INTEGER NOT NULL
    );

    -- Store-wide counters; 'roster_version' makes roster versions strictly
    -- increasing even across account deletion and re-creation.
    CREATE TABLE counters (
        name  TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    );
    INSERT INTO counters (name, value) VALUES ('roster_version', 0);

    CREATE TABLE offline (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        owner    TEXT NOT NULL,
        sender   TEXT NOT NULL,
        stanza_id TEXT NOT NULL,
        stamp_ms INTEGER NOT NULL,
        stanza   BLOB NOT NULL
    );
    CREATE INDEX offline_owner_seq ON offline (owner, seq);

    CREATE TABLE vcards (
        owner TEXT PRIMARY KEY NOT NULL,
        data  BLOB NOT NULL
    );

    CREATE TABLE last_activity (
        owner     TEXT PRIMARY KEY NOT NULL,
        unix_secs INTEGER NOT NULL,
        status    TEXT NOT NULL
    );

    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        owner     TEXT NOT NULL,
        key       TEXT NOT NULL,
        value     BLOB NOT NULL,
        PRIMARY KEY (namespace, owner, key)
    );
    CREATE INDEX kv_owner ON kv (owner);
    "#,
    // 2: the sender's own message id, for "is my message X still queued?"
    // (`offline_find`). Existing rows get ''.
    r#"
    ALTER TABLE offline ADD COLUMN msg_id TEXT NOT NULL DEFAULT '';
    CREATE INDEX offline_owner_sender_msg_id ON offline (owner, sender, msg_id);
    "#,
    // 3: a leaner queue. The store now picks each entry's seq itself, so
    // AUTOINCREMENT (a counter row rewritten on every insert) goes; instead
    // the counter 'offline_seq' holds a seq no entry has had yet, raised a
    // block at a time. The msg_id lookup narrows to (owner, msg_id) and
    // leaves out the rows without one. Rows keep their seq.
    r#"
    INSERT OR REPLACE INTO counters (name, value)
        SELECT 'offline_seq', COALESCE(MAX(m), 0) + 1 FROM (
            SELECT MAX(seq) AS m FROM offline
            UNION ALL SELECT seq FROM sqlite_sequence WHERE name = 'offline');
    CREATE TABLE offline_v3 (
        seq       INTEGER PRIMARY KEY,
        owner     TEXT NOT NULL,
        sender    TEXT NOT NULL,
        stanza_id TEXT NOT NULL,
        msg_id    TEXT NOT NULL,
        stamp_ms  INTEGER NOT NULL,
        stanza    BLOB NOT NULL
    );
    INSERT INTO offline_v3 (seq, owner, sender, stanza_id, msg_id, stamp_ms, stanza)
        SELECT seq, owner, sender, stanza_id, msg_id, stamp_ms, stanza FROM offline ORDER BY seq;
    DROP TABLE offline;
    ALTER TABLE offline_v3 RENAME TO offline;
    CREATE INDEX offline_owner_seq ON offline (owner, seq);
    CREATE INDEX offline_owner_msg_id ON offline (owner, msg_id) WHERE msg_id <> '';
    "#,
    // 4: the message archive (XEP-0313) and its preferences. `n` orders an
    // archive (arrival order); `id` is the archive id clients see (the
    // XEP-0359 stanza-id). Each query is one index range: newest of one
    // conversation (owner, with_bare, n), newest or after an id overall
    // (owner, n), an id to its `n` (owner, id), a XEP-0424 retraction
    // (owner, origin_id). Expiry walks `n` from the oldest (arrival order
    // is time order), so the time needs no index of its own.
    r#"
    CREATE TABLE archive (
        n            INTEGER PRIMARY KEY,
        owner        TEXT NOT NULL,
        id           TEXT NOT NULL,
        with_bare    TEXT NOT NULL,
        with_res     TEXT NOT NULL,
        sender       TEXT NOT NULL,
        origin_id    TEXT NOT NULL,
        stamp_ms     INTEGER NOT NULL,
        retracted_ms INTEGER,
        stanza       BLOB NOT NULL
    );
    CREATE UNIQUE INDEX archive_owner_id ON archive (owner, id);
    CREATE INDEX archive_owner_n ON archive (owner, n);
    CREATE INDEX archive_owner_with_n ON archive (owner, with_bare, n);
    CREATE INDEX archive_owner_origin ON archive (owner, origin_id) WHERE origin_id <> '';

    CREATE TABLE archive_prefs (
        owner  TEXT PRIMARY KEY NOT NULL,
        dflt   TEXT NOT NULL,
        always TEXT NOT NULL,
        never  TEXT NOT NULL
    );
    "#,
    // 5: personal eventing (XEP-0163): each account's PEP nodes with their
    // configuration (opaque to the store) and their items. `n` orders a
    // node's items (a re-published id gets a new, highest `n`); reads walk
    // (owner, node, n) from the newest, an id is found by (owner, node, id).
    r#"
    CREATE TABLE pep_nodes (
        owner  TEXT NOT NULL,
        node   TEXT NOT NULL,
        config BLOB NOT NULL,
        PRIMARY KEY (owner, node)
    );

    CREATE TABLE pep_items (
        n         INTEGER PRIMARY KEY,
        owner     TEXT NOT NULL,
        node      TEXT NOT NULL,
        id        TEXT NOT NULL,
        publisher TEXT NOT NULL,
        stamp_ms  INTEGER NOT NULL,
        payload   BLOB NOT NULL
    );
    CREATE UNIQUE INDEX pep_items_id ON pep_items (owner, node, id);
    CREATE INDEX pep_items_order ON pep_items (owner, node, n);
    "#,
];

/// The schema version this build produces.
pub(crate) fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Brings the database up to [`latest_version`], all pending steps in one
/// `BEGIN IMMEDIATE` transaction, so two processes opening a fresh file at
/// once do not both migrate.
pub(crate) fn migrate(conn: &Connection) -> Result<u32, StoreError> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = apply_pending(conn);
    match result {
        Ok(v) => {
            conn.execute_batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(e)
        }
    }
}

fn apply_pending(conn: &Connection) -> Result<u32, StoreError> {
    let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = latest_version();
    if found > latest {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: latest,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tracing::info!(from = i, to = i + 1, "applying storage schema migration");
        conn.execute_batch(step)?;
    }
    if found < latest {
        // PRAGMA does not take bound parameters; the value is our own integer.
        conn.execute_batch(&format!("PRAGMA user_version = {latest}"))?;
    }
    Ok(latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OfflineMessage, Store, StoreConfig};
    use std::time::Duration;

    /// A database left at version 1 by an older build (only migration 1
    /// applied, one queued message) upgrades in place at open.
    #[tokio::test]
    async fn upgrade_from_v1_keeps_offline_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch("PRAGMA user_version = 1").unwrap();
            conn.execute(
                "INSERT INTO offline (owner, sender, stanza_id, stamp_ms, stanza)
                 VALUES ('alice@x', 'bob@x/r', 'sid1', 42, x'3c6d2f3e')",
                [],
            )
            .unwrap();
        }

        let store = Store::open(StoreConfig::sqlite(&path)).await.unwrap();
        let got = store.offline_fetch("alice@x", 0, 10).await.unwrap();
        assert_eq!(got.len(), 1);
        let (seq, old) = &got[0];
        assert_eq!(
            *old,
            OfflineMessage {
                from: "bob@x/r".into(),
                stanza_id: "sid1".into(),
                msg_id: String::new(),
                stamp_unix_ms: 42,
                stanza: b"<m/>".to_vec(),
            }
        );
        // The old row has no msg_id, so it is never found; new rows are.
        assert_eq!(store.offline_find("alice@x", "bob@x", "").await, Ok(None));
        let new = OfflineMessage {
            msg_id: "c1".into(),
            ..old.clone()
        };
        let seq2 = store.offline_push("alice@x", &new).await.unwrap();
        assert!(seq2 > *seq);
        assert_eq!(
            store.offline_find("alice@x", "bob@x", "c1").await,
            Ok(Some(seq2))
        );
        store.close().await.unwrap();

        let conn = Connection::open(&path).unwrap();
        let v: u32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, latest_version());
        assert!(v >= 2);
        let index: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'index'
                 AND name = 'offline_owner_msg_id'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(index.contains("(owner, msg_id)"), "{index}");
    }

    /// Upgrading past AUTOINCREMENT keeps the rows and their seqs, and new
    /// entries still get seqs no entry ever had (past a deleted newest one).
    #[tokio::test]
    async fn upgrade_from_v2_never_reuses_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(MIGRATIONS[1]).unwrap();
            conn.execute_batch("PRAGMA user_version = 2").unwrap();
            conn.execute_batch(
                "INSERT INTO accounts (jid, credentials) VALUES ('alice@x', x'00');
                 INSERT INTO offline (owner, sender, stanza_id, msg_id, stamp_ms, stanza)
                 VALUES ('alice@x', 'bob@x/r', 'sid1', 'm1', 42, x'3c6d2f3e'),
                        ('alice@x', 'bob@x/r', 'sid2', 'm2', 43, x'3c6d2f3e'),
                        ('alice@x', 'bob@x/r', 'sid3', 'm3', 44, x'3c6d2f3e');
                 DELETE FROM offline WHERE seq = 3;",
            )
            .unwrap();
        }
        let store = Store::open(StoreConfig::sqlite(&path)).await.unwrap();
        let got = store.offline_fetch("alice@x", 0, 10).await.unwrap();
        let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(got[1].1.msg_id, "m2");
        assert_eq!(
            store.offline_find("alice@x", "bob@x", "m2").await,
            Ok(Some(2))
        );
        let (next, done) =
            store.offline_push_if_account("alice@x", got[0].1.clone(), Duration::ZERO);
        assert_eq!(next, 4, "seq 3 was used before the upgrade");
        assert_eq!(done.await.unwrap(), Some(4));
        store.close().await.unwrap();
    }

    /// A fresh database gets every step, the same schema as an upgraded one.
    #[test]
    fn fresh_and_upgraded_schemas_match() {
        fn schema(conn: &Connection) -> Vec<(String, String)> {
            let mut st = conn
                .prepare(
                    "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .unwrap();
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            rows
        }
        fn columns(conn: &Connection) -> Vec<(String, String, bool, Option<String>)> {
            let mut st = conn.prepare("PRAGMA table_info(offline)").unwrap();
            let rows = st
                .query_map([], |r| Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            rows
        }
        let fresh = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&fresh).unwrap(), latest_version());
        let old = Connection::open_in_memory().unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.execute_batch("PRAGMA user_version = 1").unwrap();
        assert_eq!(migrate(&old).unwrap(), latest_version());
        assert_eq!(columns(&fresh), columns(&old));
        assert!(columns(&fresh).contains(&("msg_id".into(), "TEXT".into(), true, None)));
        assert_eq!(
            schema(&fresh)
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            schema(&old).into_iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    }
}
