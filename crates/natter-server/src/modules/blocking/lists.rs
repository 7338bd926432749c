//! One account's blocklist, XEP-0016 matching, and the in-memory cache of
//! lists the checks read ([`Blocklists`]).

use super::NS;
use crate::modules::iq::Reply;
use crate::server::Shared;
use natter_store::{Store, StoreError};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Lists kept in memory at most (beyond that, lists not used for a while
/// are dropped and loaded again when needed).
const CACHED_LISTS: usize = 20_000;
/// A list loaded this recently is never dropped: the stanza it was loaded
/// for is checked right after.
const FRESH: Duration = Duration::from_secs(10);
const SHARDS: usize = 64;

/// One account's blocklist: normalised JIDs (full, bare, domain/resource or
/// domain).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct List {
    pub(super) items: HashSet<String>,
}

impl List {
    pub fn from_items<I: IntoIterator<Item = String>>(items: I) -> List {
        List {
            items: items.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The items, sorted.
    pub fn sorted(&self) -> Vec<String> {
        let mut v: Vec<String> = self.items.iter().cloned().collect();
        v.sort_unstable();
        v
    }

    /// Whether the list blocks `entity` (a normalised JID), matched as
    /// XEP-0016 §2.1 says: the full JID, the bare JID, the domain with the
    /// resource, or the domain.
    pub fn blocks(&self, entity: &str) -> bool {
        if self.items.is_empty() {
            return false;
        }
        matches_any(entity, |j| self.items.contains(j))
    }
}

/// Whether `pred` holds for one of the forms of `entity` an item may name.
fn matches_any(entity: &str, pred: impl Fn(&str) -> bool) -> bool {
    let (bare, resource) = match entity.split_once('/') {
        Some((b, r)) => (b, Some(r)),
        None => (entity, None),
    };
    let domain = bare.split_once('@').map_or(bare, |(_, d)| d);
    if pred(entity) || (resource.is_some() && pred(bare)) {
        return true;
    }
    if bare != domain {
        if pred(domain) {
            return true;
        }
        if let Some(r) = resource {
            return pred(&format!("{domain}/{r}"));
        }
    }
    false
}

/// Whether an item (as stored) covers `entity`.
pub(super) fn item_covers(item: &str, entity: &str) -> bool {
    matches_any(entity, |j| j == item)
}

enum Slot {
    /// The account has (or may have) a non-empty list, not in memory.
    Unloaded,
    Loaded(Arc<List>, Instant),
}

/// Every account's blocklist as far as the checks need it.
pub struct Blocklists {
    shards: Vec<RwLock<HashMap<String, Slot>>>,
    /// Accounts in the shards: 0 means nobody blocks anyone.
    pub(super) owners: AtomicUsize,
    loaded: AtomicUsize,
    /// Bumped by every change of a list: a load that saw a change while it
    /// read the store reads again.
    writes: AtomicU64,
    /// One change of a list at a time (changes are rare).
    write_lock: tokio::sync::Mutex<()>,
    /// Sessions (connection ids) that asked for their account's list: they
    /// get the pushes (XEP-0191 §3.3).
    interested: Mutex<HashMap<String, Vec<u64>>>,
}

impl Blocklists {
    /// Knows every account with a non-empty list (one read of the store).
    pub async fn load(store: &Store) -> Result<Blocklists, StoreError> {
        let b = Blocklists {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            owners: AtomicUsize::new(0),
            loaded: AtomicUsize::new(0),
            writes: AtomicU64::new(0),
            write_lock: tokio::sync::Mutex::new(()),
            interested: Mutex::new(HashMap::new()),
        };
        let owners = store.kv_owners(NS).await?;
        b.owners.store(owners.len(), Ordering::SeqCst);
        for o in owners {
            b.shard(&o)
                .write()
                .expect("blocklist lock")
                .insert(o, Slot::Unloaded);
        }
        Ok(b)
    }

    fn shard(&self, owner: &str) -> &RwLock<HashMap<String, Slot>> {
        let mut h = DefaultHasher::new();
        owner.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// Whether `owner` blocks `entity`: None when `owner`'s list must be
    /// loaded first ([`Blocklists::ensure`]).
    pub fn blocks(&self, owner: &str, entity: &str) -> Option<bool> {
        if self.owners.load(Ordering::SeqCst) == 0 {
            return Some(false);
        }
        match self.shard(owner).read().expect("blocklist lock").get(owner) {
            None => Some(false),
            Some(Slot::Unloaded) => None,
            Some(Slot::Loaded(l, _)) => Some(l.blocks(entity)),
        }
    }

    /// Whether `owner`'s list is known without the store.
    fn known(&self, owner: &str) -> bool {
        self.blocks(owner, "").is_some()
    }

    /// Loads `owner`'s list if the checks need it and it is not in memory.
    pub async fn ensure(&self, store: &Store, owner: &str) -> Result<(), StoreError> {
        while !self.known(owner) {
            let seen = self.writes.load(Ordering::SeqCst);
            let items = store.kv_list(NS, owner).await?;
            let mut map = self.shard(owner).write().expect("blocklist lock");
            if self.writes.load(Ordering::SeqCst) != seen {
                continue; // a list changed meanwhile: read again
            }
            if !matches!(map.get(owner), Some(Slot::Unloaded)) {
                break;
            }
            if items.is_empty() {
                map.remove(owner);
                self.owners.fetch_sub(1, Ordering::SeqCst);
            } else {
                let list = List::from_items(items.into_iter().map(|(k, _)| k));
                map.insert(
                    owner.to_owned(),
                    Slot::Loaded(Arc::new(list), Instant::now()),
                );
                drop(map);
                if self.loaded.fetch_add(1, Ordering::SeqCst) + 1 > CACHED_LISTS {
                    self.evict();
                }
            }
            break;
        }
        Ok(())
    }

    /// `owner`'s list (loaded if needed).
    pub async fn list(&self, store: &Store, owner: &str) -> Result<Arc<List>, StoreError> {
        loop {
            self.ensure(store, owner).await?;
            match self.shard(owner).read().expect("blocklist lock").get(owner) {
                None => return Ok(Arc::new(List::default())),
                Some(Slot::Loaded(l, _)) => return Ok(l.clone()),
                Some(Slot::Unloaded) => {} // dropped again meanwhile
            }
        }
    }

    /// Whether `owner` blocks `entity`, loading the list if needed. A store
    /// failure counts as blocked (privacy first) and is logged.
    pub async fn check(&self, store: &Store, owner: &str, entity: &str) -> bool {
        if let Some(b) = self.blocks(owner, entity) {
            return b;
        }
        match self.list(store, owner).await {
            Ok(l) => l.blocks(entity),
            Err(e) => {
                tracing::error!(error = %e, %owner, "blocklist read failed");
                true
            }
        }
    }

    /// Drops lists not used since `FRESH` until the cache is back under
    /// its bound (they stay known as "has a list").
    fn evict(&self) {
        let now = Instant::now();
        let target = CACHED_LISTS * 9 / 10;
        for shard in &self.shards {
            let mut map = shard.write().expect("blocklist lock");
            for slot in map.values_mut() {
                if self.loaded.load(Ordering::SeqCst) <= target {
                    return;
                }
                if let Slot::Loaded(_, at) = slot {
                    if now.duration_since(*at) > FRESH {
                        *slot = Slot::Unloaded;
                        self.loaded.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
        }
    }

    /// Replaces `owner`'s list in the store and in memory: `change` gets
    /// the current items and returns the new ones, or an error reply.
    /// Returns (old, new).
    pub(super) async fn modify(
        &self,
        store: &Store,
        owner: &str,
        change: impl FnOnce(&List) -> Result<List, Reply>,
    ) -> Result<(List, List), Reply> {
        let _one = self.write_lock.lock().await;
        let failed = |e: StoreError| {
            tracing::error!(error = %e, %owner, "blocklist write failed");
            Reply::error("wait", "internal-server-error")
        };
        let old = List::from_items(
            store
                .kv_list(NS, owner)
                .await
                .map_err(failed)?
                .into_iter()
                .map(|(k, _)| k),
        );
        let new = change(&old)?;
        for added in new.items.difference(&old.items) {
            store.kv_put(NS, owner, added, b"").await.map_err(failed)?;
        }
        for removed in old.items.difference(&new.items) {
            store.kv_delete(NS, owner, removed).await.map_err(failed)?;
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.install(owner, (!new.is_empty()).then(|| new.clone()));
        Ok((old, new))
    }

    /// Puts `list` in memory as `owner`'s (None: no list).
    fn install(&self, owner: &str, list: Option<List>) {
        let mut map = self.shard(owner).write().expect("blocklist lock");
        let before = match list {
            Some(l) => map.insert(owner.to_owned(), Slot::Loaded(Arc::new(l), Instant::now())),
            None => map.remove(owner),
        };
        let now_loaded = map.get(owner).is_some();
        match (before, now_loaded) {
            (None, true) => {
                self.owners.fetch_add(1, Ordering::SeqCst);
                self.loaded.fetch_add(1, Ordering::SeqCst);
            }
            (Some(Slot::Unloaded), true) => {
                self.loaded.fetch_add(1, Ordering::SeqCst);
            }
            (Some(Slot::Loaded(..)), false) => {
                self.owners.fetch_sub(1, Ordering::SeqCst);
                self.loaded.fetch_sub(1, Ordering::SeqCst);
            }
            (Some(Slot::Unloaded), false) => {
                self.owners.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }

    /// Forgets a deleted account's list and interest (its rows went with
    /// the account).
    pub async fn forget(&self, owner: &str) {
        let _one = self.write_lock.lock().await;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.install(owner, None);
        self.interested.lock().expect("interest lock").remove(owner);
    }

    /// Records that session `conn_id` of `owner` asked for the list; forgets
    /// ended sessions of `owner` on the way.
    pub(super) fn interest(&self, shared: &Shared, owner: &str, conn_id: u64) {
        let live: Vec<u64> = shared
            .router
            .sessions(owner)
            .iter()
            .map(|e| e.conn_id)
            .collect();
        let mut map = self.interested.lock().expect("interest lock");
        let list = map.entry(owner.to_owned()).or_default();
        list.retain(|c| live.contains(c));
        if !list.contains(&conn_id) {
            list.push(conn_id);
        }
    }

    /// Connection ids of `owner`'s sessions that asked for the list.
    pub(super) fn interested_in(&self, owner: &str) -> Vec<u64> {
        self.interested
            .lock()
            .expect("interest lock")
            .get(owner)
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> List {
        List::from_items(items.iter().map(|s| s.to_string()))
    }

    #[test]
    fn matching_follows_xep_0016() {
        let l = list(&["bob@x"]);
        assert!(l.blocks("bob@x"));
        assert!(l.blocks("bob@x/phone"));
        assert!(!l.blocks("bobby@x/phone"));
        assert!(!l.blocks("x"));
        let l = list(&["bob@x/phone"]);
        assert!(l.blocks("bob@x/phone"));
        assert!(!l.blocks("bob@x/laptop"));
        assert!(!l.blocks("bob@x"));
        let l = list(&["x"]);
        assert!(l.blocks("x"));
        assert!(l.blocks("anyone@x/r"));
        assert!(l.blocks("x/r"));
        assert!(!l.blocks("a@y"));
        let l = list(&["x/r"]);
        assert!(l.blocks("x/r"));
        assert!(l.blocks("a@x/r"));
        assert!(!l.blocks("a@x/s"));
        assert!(!l.blocks("a@x"));
        assert!(!List::default().blocks("a@x"));
    }

    #[test]
    fn item_covers_like_the_list() {
        assert!(item_covers("x", "a@x/r"));
        assert!(item_covers("a@x", "a@x/r"));
        assert!(!item_covers("a@x/s", "a@x/r"));
    }
}
