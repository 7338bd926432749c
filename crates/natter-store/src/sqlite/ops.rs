//! Account and roster operations.
//!
//! Writes go through [`SqliteStore::write`] (writer thread, group commit),
//! reads through [`SqliteStore::read`] (read-only pool).

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::{json_strings, roster_row, to_u64, ROSTER_COLUMNS};
use super::SqliteStore;
use crate::{RosterItem, StoreError};

fn exists(conn: &Connection, jid: &str) -> Result<bool, StoreError> {
    let mut st = conn.prepare_cached("SELECT 1 FROM accounts WHERE jid = ?1")?;
    Ok(st.exists([jid])?)
}

/// Gives `owner` a new roster version from the store-wide counter.
fn bump_roster_version(conn: &Connection, owner: &str) -> Result<u64, StoreError> {
    let v: i64 = conn
        .prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'roster_version' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?;
    conn.prepare_cached(
        "INSERT INTO roster_versions (owner, version) VALUES (?1, ?2)
         ON CONFLICT (owner) DO UPDATE SET version = excluded.version",
    )?
    .execute(params![owner, v])?;
    Ok(to_u64(v)?)
}

impl SqliteStore {
    // ---- accounts -------------------------------------------------------

    pub(crate) async fn create_account(&self, jid: &str, creds: &[u8]) -> Result<(), StoreError> {
        let (jid, creds) = (jid.to_owned(), creds.to_vec());
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT OR IGNORE INTO accounts (jid, credentials) VALUES (?1, ?2)",
                )?
                .execute(params![jid, creds])?;
            if n == 0 {
                return Err(StoreError::AlreadyExists);
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn create_accounts(
        &self,
        accounts: Vec<(String, Vec<u8>)>,
    ) -> Result<usize, StoreError> {
        self.write(move |c| {
            let mut st = c.prepare_cached(
                "INSERT OR IGNORE INTO accounts (jid, credentials) VALUES (?1, ?2)",
            )?;
            let mut created = 0;
            for (jid, creds) in &accounts {
                created += st.execute(params![jid, creds])?;
            }
            Ok(created)
        })
        .await
    }

    pub(crate) async fn set_credentials(&self, jid: &str, creds: &[u8]) -> Result<(), StoreError> {
        let (jid, creds) = (jid.to_owned(), creds.to_vec());
        self.write(move |c| {
            let n = c
                .prepare_cached("UPDATE accounts SET credentials = ?2 WHERE jid = ?1")?
                .execute(params![jid, creds])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn credentials(&self, jid: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let jid = jid.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT credentials FROM accounts WHERE jid = ?1")?;
            Ok(st.query_row([&jid], |r| r.get(0)).optional()?)
        })
        .await
    }

    pub(crate) async fn account_exists(&self, jid: &str) -> Result<bool, StoreError> {
        let jid = jid.to_owned();
        self.read(move |c| exists(c, &jid)).await
    }

    pub(crate) async fn delete_account(&self, jid: &str) -> Result<(), StoreError> {
        let jid = jid.to_owned();
        self.write(move |c| {
            if !exists(c, &jid)? {
                return Err(StoreError::NotFound);
            }
            for sql in [
                "DELETE FROM accounts WHERE jid = ?1",
                "DELETE FROM roster WHERE owner = ?1",
                "DELETE FROM roster_groups WHERE owner = ?1",
                "DELETE FROM roster_versions WHERE owner = ?1",
                "DELETE FROM offline WHERE owner = ?1",
                "DELETE FROM vcards WHERE owner = ?1",
                "DELETE FROM last_activity WHERE owner = ?1",
                "DELETE FROM kv WHERE owner = ?1",
                "DELETE FROM archive WHERE owner = ?1",
                "DELETE FROM archive_prefs WHERE owner = ?1",
                "DELETE FROM pep_nodes WHERE owner = ?1",
                "DELETE FROM pep_items WHERE owner = ?1",
            ] {
                c.prepare_cached(sql)?.execute([&jid])?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn list_accounts(&self) -> Result<Vec<String>, StoreError> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT jid FROM accounts ORDER BY jid")?;
            let rows = st.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    // ---- roster ---------------------------------------------------------

    pub(crate) async fn roster(&self, owner: &str) -> Result<(u64, Vec<RosterItem>), StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            // One read transaction: version, items and groups agree.
            let tx = c.unchecked_transaction()?;
            let version: Option<i64> = tx
                .prepare_cached("SELECT version FROM roster_versions WHERE owner = ?1")?
                .query_row([&owner], |r| r.get(0))
                .optional()?;
            let mut groups: HashMap<String, Vec<String>> = HashMap::new();
            {
                let mut st = tx.prepare_cached(
                    "SELECT contact, name FROM roster_groups WHERE owner = ?1 ORDER BY contact, pos",
                )?;
                let mut rows = st.query([&owner])?;
                while let Some(r) = rows.next()? {
                    groups.entry(r.get(0)?).or_default().push(r.get(1)?);
                }
            }
            let sql = format!("SELECT {ROSTER_COLUMNS} FROM roster WHERE owner = ?1 ORDER BY contact");
            let mut st = tx.prepare_cached(&sql)?;
            let items = st
                .query_map([&owner], roster_row)?
                .map(|item| {
                    item.map(|mut item| {
                        item.groups = groups.remove(&item.jid).unwrap_or_default();
                        item
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((version.map(to_u64).transpose()?.unwrap_or(0), items))
        })
        .await
    }

    pub(crate) async fn roster_item(
        &self,
        owner: &str,
        contact: &str,
    ) -> Result<Option<RosterItem>, StoreError> {
        let (owner, contact) = (owner.to_owned(), contact.to_owned());
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let sql =
                format!("SELECT {ROSTER_COLUMNS} FROM roster WHERE owner = ?1 AND contact = ?2");
            let item = tx
                .prepare_cached(&sql)?
                .query_row([&owner, &contact], roster_row)
                .optional()?;
            let Some(mut item) = item else {
                return Ok(None);
            };
            let mut st = tx.prepare_cached(
                "SELECT name FROM roster_groups WHERE owner = ?1 AND contact = ?2 ORDER BY pos",
            )?;
            item.groups = st
                .query_map([&owner, &contact], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(Some(item))
        })
        .await
    }

    pub(crate) async fn roster_items_of(
        &self,
        owners: &[String],
        contact: &str,
    ) -> Result<Vec<(String, RosterItem)>, StoreError> {
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let (owners, contact) = (json_strings(owners), contact.to_owned());
        self.read(move |c| {
            let tx = c.unchecked_transaction()?;
            let mut groups: HashMap<String, Vec<String>> = HashMap::new();
            {
                let mut st = tx.prepare_cached(
                    "SELECT owner, name FROM roster_groups
                     WHERE owner IN (SELECT value FROM json_each(?1)) AND contact = ?2
                     ORDER BY owner, pos",
                )?;
                let mut rows = st.query([&owners, &contact])?;
                while let Some(r) = rows.next()? {
                    groups.entry(r.get(0)?).or_default().push(r.get(1)?);
                }
            }
            let sql = format!(
                "SELECT {ROSTER_COLUMNS}, owner FROM roster
                 WHERE owner IN (SELECT value FROM json_each(?1)) AND contact = ?2 ORDER BY owner"
            );
            let mut st = tx.prepare_cached(&sql)?;
            let items = st
                .query_map([&owners, &contact], |r| {
                    let owner: String = r.get(8)?;
                    let mut item = roster_row(r)?;
                    item.groups = groups.remove(&owner).unwrap_or_default();
                    Ok((owner, item))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(items)
        })
        .await
    }

    pub(crate) async fn roster_put(
        &self,
        owner: &str,
        item: &RosterItem,
    ) -> Result<u64, StoreError> {
        let (owner, item) = (owner.to_owned(), item.clone());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO roster (owner, contact, name, subscription, ask_out, pending_in,
                                     approved, in_roster, pending_in_stanza)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (owner, contact) DO UPDATE SET
                    name = excluded.name, subscription = excluded.subscription,
                    ask_out = excluded.ask_out, pending_in = excluded.pending_in,
                    approved = excluded.approved, in_roster = excluded.in_roster,
                    pending_in_stanza = excluded.pending_in_stanza",
            )?
            .execute(params![
                owner,
                item.jid,
                item.name,
                item.subscription.as_str(),
                item.ask_out,
                item.pending_in,
                item.approved,
                item.in_roster,
                item.pending_in_stanza,
            ])?;
            c.prepare_cached("DELETE FROM roster_groups WHERE owner = ?1 AND contact = ?2")?
                .execute([&owner, &item.jid])?;
            let mut st = c.prepare_cached(
                "INSERT INTO roster_groups (owner, contact, pos, name) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (pos, group) in item.groups.iter().enumerate() {
                st.execute(params![owner, item.jid, pos as i64, group])?;
            }
            bump_roster_version(c, &owner)
        })
        .await
    }

    pub(crate) async fn roster_remove(
        &self,
        owner: &str,
        contact: &str,
    ) -> Result<u64, StoreError> {
        let (owner, contact) = (owner.to_owned(), contact.to_owned());
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM roster WHERE owner = ?1 AND contact = ?2")?
                .execute([&owner, &contact])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            c.prepare_cached("DELETE FROM roster_groups WHERE owner = ?1 AND contact = ?2")?
                .execute([&owner, &contact])?;
            bump_roster_version(c, &owner)
        })
        .await
    }
}
