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
