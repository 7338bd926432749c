//! Personal eventing (XEP-0163) SQL: nodes and their items.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::rows::{json_strings, to_i64, to_u64};
use super::SqliteStore;
use crate::pep::{PepCreated, PepItem, PepLastItem, PepNewNode, PepNode, PepPublished};
use crate::StoreError;

// Each statement is a search of one index (tested below).
const NODE_SQL: &str = "SELECT config FROM pep_nodes WHERE owner = ?1 AND node = ?2";
const ITEMS_SQL: &str = "SELECT id, publisher, stamp_ms, payload FROM pep_items
     WHERE owner = ?1 AND node = ?2 ORDER BY n DESC LIMIT ?3";
const ITEMS_BY_ID_SQL: &str = "SELECT id, publisher, stamp_ms, payload FROM pep_items
     WHERE owner = ?1 AND node = ?2 AND id IN (SELECT value FROM json_each(?4))
     ORDER BY n DESC LIMIT ?3";
/// Deletes all but the newest `?3 + 1` items of a node (the item at
/// offset `?3` from the newest is the oldest one kept).
const TRIM_SQL: &str = "DELETE FROM pep_items WHERE owner = ?1 AND node = ?2 AND n <
     (SELECT n FROM pep_items WHERE owner = ?1 AND node = ?2 ORDER BY n DESC LIMIT 1 OFFSET ?3)";
const LAST_ITEMS_SQL: &str =
    "SELECT nd.owner, nd.node, nd.config, i.id, i.publisher, i.stamp_ms, i.payload
     FROM pep_nodes AS nd JOIN pep_items AS i ON i.n =
        (SELECT MAX(n) FROM pep_items WHERE owner = nd.owner AND node = nd.node)
     WHERE nd.owner IN (SELECT value FROM json_each(?1))
       AND nd.node IN (SELECT value FROM json_each(?2))
     ORDER BY nd.owner, nd.node";

/// Reads an item selected as `id, publisher, stamp_ms, payload` from
/// column `at` on.
fn item_row(r: &Row<'_>, at: usize) -> rusqlite::Result<PepItem> {
    Ok(PepItem {
        id: r.get(at)?,
        publisher: r.get(at + 1)?,
        stamp_unix_ms: to_u64(r.get(at + 2)?)?,
        payload: r.get(at + 3)?,
    })
}

fn node_exists(c: &Connection, owner: &str, node: &str) -> Result<bool, StoreError> {
    Ok(
        c.prepare_cached("SELECT 1 FROM pep_nodes WHERE owner = ?1 AND node = ?2")?
            .exists([owner, node])?,
    )
}

fn node_count(c: &Connection, owner: &str) -> Result<usize, StoreError> {
    let n: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM pep_nodes WHERE owner = ?1")?
        .query_row([owner], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn insert_node(c: &Connection, owner: &str, node: &str, config: &[u8]) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO pep_nodes (owner, node, config) VALUES (?1, ?2, ?3)")?
        .execute(params![owner, node, config])?;
    Ok(())
}

/// Keeps only the newest `keep` items of the node.
fn trim(c: &Connection, owner: &str, node: &str, keep: usize) -> Result<(), StoreError> {
    if keep == 0 {
        c.prepare_cached("DELETE FROM pep_items WHERE owner = ?1 AND node = ?2")?
            .execute([owner, node])?;
    } else {
        let offset = i64::try_from(keep - 1).unwrap_or(i64::MAX);
        c.prepare_cached(TRIM_SQL)?
            .execute(params![owner, node, offset])?;
    }
    Ok(())
}

/// A caller's count as an SQL `LIMIT` (-1: none).
fn limit(max: Option<usize>) -> i64 {
    max.map_or(-1, |m| i64::try_from(m).unwrap_or(i64::MAX))
}

impl SqliteStore {
    pub(crate) async fn pep_nodes(&self, owner: &str) -> Result<Vec<PepNode>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |c| {
            let mut st = c.prepare_cached(
                "SELECT node, config FROM pep_nodes WHERE owner = ?1 ORDER BY node",
            )?;
            let rows = st.query_map([&owner], |r| {
                Ok(PepNode {
                    name: r.get(0)?,
                    config: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    pub(crate) async fn pep_node(
        &self,
        owner: &str,
        node: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        self.read(move |c| {
            Ok(c.prepare_cached(NODE_SQL)?
                .query_row([&owner, &node], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    pub(crate) async fn pep_create_node(
        &self,
        owner: &str,
        node: &str,
        config: &[u8],
        max_nodes: usize,
    ) -> Result<PepCreated, StoreError> {
        let (owner, node, config) = (owner.to_owned(), node.to_owned(), config.to_vec());
        self.write(move |c| {
            if node_exists(c, &owner, &node)? {
                return Ok(PepCreated::Exists);
            }
            if node_count(c, &owner)? >= max_nodes {
                return Ok(PepCreated::TooManyNodes);
            }
            insert_node(c, &owner, &node, &config)?;
            Ok(PepCreated::Created)
        })
        .await
    }

    pub(crate) async fn pep_configure(
        &self,
        owner: &str,
        node: &str,
        config: &[u8],
        keep_items: usize,
    ) -> Result<(), StoreError> {
        let (owner, node, config) = (owner.to_owned(), node.to_owned(), config.to_vec());
        self.write(move |c| {
            let n = c
                .prepare_cached("UPDATE pep_nodes SET config = ?3 WHERE owner = ?1 AND node = ?2")?
                .execute(params![owner, node, config])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            trim(c, &owner, &node, keep_items)
        })
        .await
    }

    pub(crate) async fn pep_delete_node(&self, owner: &str, node: &str) -> Result<(), StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        self.write(move |c| {
            let n = c
                .prepare_cached("DELETE FROM pep_nodes WHERE owner = ?1 AND node = ?2")?
                .execute([&owner, &node])?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            trim(c, &owner, &node, 0)
        })
        .await
    }

    pub(crate) async fn pep_publish(
        &self,
        owner: &str,
        node: &str,
        item: &PepItem,
        keep_items: usize,
        create: Option<PepNewNode<'_>>,
    ) -> Result<PepPublished, StoreError> {
        let stamp = to_i64(item.stamp_unix_ms, "timestamp")?;
        let (owner, node, item) = (owner.to_owned(), node.to_owned(), item.clone());
        let create = create.map(|n| (n.config.to_vec(), n.max_nodes));
        self.write(move |c| {
            let mut created = false;
            if !node_exists(c, &owner, &node)? {
                let Some((config, max_nodes)) = create else {
                    return Ok(PepPublished::NoNode);
                };
                if node_count(c, &owner)? >= max_nodes {
                    return Ok(PepPublished::TooManyNodes);
                }
                insert_node(c, &owner, &node, &config)?;
                created = true;
            }
            c.prepare_cached("DELETE FROM pep_items WHERE owner = ?1 AND node = ?2 AND id = ?3")?
                .execute([&owner, &node, &item.id])?;
            if keep_items > 0 {
                c.prepare_cached(
                    "INSERT INTO pep_items (owner, node, id, publisher, stamp_ms, payload)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    owner,
                    node,
                    item.id,
                    item.publisher,
                    stamp,
                    item.payload
                ])?;
            }
            trim(c, &owner, &node, keep_items)?;
            Ok(PepPublished::Stored { created })
        })
        .await
    }

    pub(crate) async fn pep_items(
        &self,
        owner: &str,
        node: &str,
        ids: &[String],
        max: Option<usize>,
    ) -> Result<Vec<PepItem>, StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        let ids = (!ids.is_empty()).then(|| json_strings(ids));
        self.read(move |c| {
            // One read transaction: the node and its items agree.
            let tx = c.unchecked_transaction()?;
            if !node_exists(&tx, &owner, &node)? {
                return Err(StoreError::NotFound);
            }
            let limit = limit(max);
            let items = match &ids {
                None => tx
                    .prepare_cached(ITEMS_SQL)?
                    .query_map(params![owner, node, limit], |r| item_row(r, 0))?
                    .collect::<Result<_, _>>()?,
                Some(ids) => tx
                    .prepare_cached(ITEMS_BY_ID_SQL)?
                    .query_map(params![owner, node, limit, ids], |r| item_row(r, 0))?
                    .collect::<Result<_, _>>()?,
            };
            Ok(items)
        })
        .await
    }

    pub(crate) async fn pep_retract(
        &self,
        owner: &str,
        node: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let (owner, node, id) = (owner.to_owned(), node.to_owned(), id.to_owned());
        self.write(move |c| {
            if !node_exists(c, &owner, &node)? {
                return Err(StoreError::NotFound);
            }
            let n = c
                .prepare_cached("DELETE FROM pep_items WHERE owner = ?1 AND node = ?2 AND id = ?3")?
                .execute([&owner, &node, &id])?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn pep_purge(&self, owner: &str, node: &str) -> Result<usize, StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        self.write(move |c| {
            if !node_exists(c, &owner, &node)? {
                return Err(StoreError::NotFound);
            }
            Ok(
                c.prepare_cached("DELETE FROM pep_items WHERE owner = ?1 AND node = ?2")?
                    .execute([&owner, &node])?,
            )
        })
        .await
    }

    pub(crate) async fn pep_last_items(
        &self,
        owners: &[String],
        nodes: &[String],
    ) -> Result<Vec<PepLastItem>, StoreError> {
        if owners.is_empty() || nodes.is_empty() {
            return Ok(Vec::new());
        }
        let (owners, nodes) = (json_strings(owners), json_strings(nodes));
        self.read(move |c| {
            let mut st = c.prepare_cached(LAST_ITEMS_SQL)?;
            let rows = st.query_map([&owners, &nodes], |r| {
                Ok(PepLastItem {
                    owner: r.get(0)?,
                    node: r.get(1)?,
                    config: r.get(2)?,
                    item: item_row(r, 3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for `sql`, one line per step.
    fn plan(c: &Connection, sql: &str) -> String {
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = st.parameter_count();
        let args: Vec<rusqlite::types::Value> = (0..n).map(|_| "[]".to_owned().into()).collect();
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.collect::<Result<Vec<_>, _>>().unwrap().join("; ")
    }

    /// Reads and trims search an index of the owner's node; none scans
    /// every item of the store.
    #[test]
    fn statements_search_an_index() {
        let c = Connection::open_in_memory().unwrap();
        super::super::migrations::migrate(&c).unwrap();
        for sql in [
            NODE_SQL,
            ITEMS_SQL,
            ITEMS_BY_ID_SQL,
            TRIM_SQL,
            LAST_ITEMS_SQL,
        ] {
            let p = plan(&c, sql);
            assert!(
                !p.contains("SCAN pep_items") && !p.contains("SCAN nd") && !p.contains("SCAN i"),
                "{sql}: {p}"
            );
            assert!(p.contains("USING"), "{sql}: {p}");
        }
    }
}
