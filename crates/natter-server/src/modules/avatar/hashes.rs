//! Each account's current avatar hash in memory, so stamping presence does
//! not read the store: loaded when first needed, set when the avatar
//! changes; and the per-account locks that keep a conversion's read and
//! write of the vCard and PEP together.

use super::image::Hash;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash as _, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const SHARDS: usize = 64;
/// Hashes kept per shard (beyond that, one is dropped and read again when
/// needed): 64 × 4,096 accounts, some 100 bytes each.
const PER_SHARD: usize = 4096;

/// What is known of an account's avatar: `None` = it has none.
pub type Current = Option<Hash>;

/// The hashes, and the locks of the accounts' avatar changes.
pub struct Hashes {
    shards: Vec<Mutex<HashMap<String, Current>>>,
    /// Bumped by every change: a load that saw one while it read the store
    /// does not keep what it read.
    changes: AtomicU64,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl Default for Hashes {
    fn default() -> Self {
        Hashes {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            changes: AtomicU64::new(0),
            locks: (0..SHARDS).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

fn shard_of(account: &str) -> usize {
    let mut h = DefaultHasher::new();
    account.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

/// A load under way: [`Hashes::loaded`] keeps its result only if nothing
/// changed meanwhile.
pub struct Ticket(u64);

impl Hashes {
    /// The account's hash, if in memory.
    pub fn get(&self, account: &str) -> Option<Current> {
        let map = self.shards[shard_of(account)].lock().expect("hash lock");
        map.get(account).copied()
    }

    /// To be taken before reading the store for [`Hashes::loaded`].
    pub fn ticket(&self) -> Ticket {
        Ticket(self.changes.load(Ordering::SeqCst))
    }

    /// Keeps a hash read from the store, unless an avatar changed since the
    /// ticket was taken (the value read may be stale then) or the account's
    /// is already known.
    pub fn loaded(&self, account: &str, ticket: Ticket, current: Current) {
        let mut map = self.shards[shard_of(account)].lock().expect("hash lock");
        if self.changes.load(Ordering::SeqCst) != ticket.0 || map.contains_key(account) {
            return;
        }
        make_room(&mut map);
        map.insert(account.to_owned(), current);
    }

    /// The account's avatar changed (it is stored).
    pub fn set(&self, account: &str, current: Current) {
        let mut map = self.shards[shard_of(account)].lock().expect("hash lock");
        self.changes.fetch_add(1, Ordering::SeqCst);
        if !map.contains_key(account) {
            make_room(&mut map);
        }
        map.insert(account.to_owned(), current);
    }

    /// The account is gone.
    pub fn forget(&self, account: &str) {
        let mut map = self.shards[shard_of(account)].lock().expect("hash lock");
        self.changes.fetch_add(1, Ordering::SeqCst);
        map.remove(account);
    }

    /// The lock one account's avatar changes take, one at a time.
    pub async fn lock(&self, account: &str) -> tokio::sync::MutexGuard<'_, ()> {
        self.locks[shard_of(account)].lock().await
    }
}

fn make_room(map: &mut HashMap<String, Current>) {
    if map.len() >= PER_SHARD {
        if let Some(k) = map.keys().next().cloned() {
            map.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_never_overwrite_a_change() {
        let h = Hashes::default();
        assert_eq!(h.get("a@x"), None);
        let t = h.ticket();
        h.set("a@x", Some([1; 20]));
        h.loaded("a@x", t, None);
        assert_eq!(h.get("a@x"), Some(Some([1; 20])));
        // A change of another account while loading: this load is not
        // kept either (it is read again next time).
        let t = h.ticket();
        h.set("b@x", None);
        h.loaded("c@x", t, Some([2; 20]));
        assert_eq!(h.get("c@x"), None);
        let t = h.ticket();
        h.loaded("c@x", t, Some([2; 20]));
        assert_eq!(h.get("c@x"), Some(Some([2; 20])));
        h.forget("c@x");
        assert_eq!(h.get("c@x"), None);
    }

    #[test]
    fn a_full_shard_drops_one() {
        let h = Hashes::default();
        for i in 0..SHARDS * PER_SHARD * 2 {
            h.set(&format!("u{i}@x"), None);
        }
        let kept: usize = h.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(kept <= SHARDS * PER_SHARD, "{kept}");
        h.set("last@x", Some([3; 20]));
        assert_eq!(h.get("last@x"), Some(Some([3; 20])));
    }
}
