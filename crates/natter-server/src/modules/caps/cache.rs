//! The server-wide capabilities cache: verification string → features,
//! for answers that verified (XEP-0115 §5.4 3.8), and the queries under
//! way for strings not known yet, so that sessions announcing the same one
//! at once wait for one answer instead of each being asked.
//!
//! In memory only, bounded by `MAX_ENTRIES` and `MAX_BYTES`; the least
//! recently used entries go first. After a restart every string is asked
//! once more (one disco#info round trip to one client per string).

use super::verify::Algo;
use super::Features;
use crate::mailbox::{Mailbox, Outbound};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Verification strings kept at most.
pub const MAX_ENTRIES: usize = 1000;
/// Feature bytes kept at most (counted with a per-string overhead).
pub const MAX_BYTES: usize = 4 << 20;
/// How long sessions waiting for another session's answer wait before
/// asking for themselves.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A verification string with the hash function it names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub algo: Algo,
    pub ver: Box<str>,
}

/// What a session announcing a verification string does.
#[derive(Debug)]
pub enum Lookup {
    /// It is known: these are its features.
    Known(Arc<Features>),
    /// Another session is being asked; this one is told (`Outbound::Caps`)
    /// when that ends, and looks again.
    Wait,
    /// Nobody is asking: this session asks its client, with this IQ id.
    Ask(String),
}

#[derive(Default)]
pub struct Cache {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Inner {
    known: HashMap<Arc<Key>, Known>,
    /// Sum of `Known::bytes`.
    bytes: usize,
    /// Bumped by every use, for least-recently-used eviction.
    clock: u64,
    asking: HashMap<Arc<Key>, Asking>,
}

struct Known {
    features: Arc<Features>,
    used: u64,
    bytes: usize,
}

/// A query under way for a string nobody knows yet.
struct Asking {
    /// The id of the IQ sent.
    id: Box<str>,
    /// Sessions announcing the same string meanwhile.
    waiters: Vec<Mailbox>,
}

impl Cache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics while holding it; a poisoned map is still whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh id for a disco#info query to a client.
    pub fn next_id(&self) -> String {
        format!("caps-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// What the session of mailbox `me`, announcing `key`, does.
    pub fn lookup(&self, key: &Arc<Key>, me: &Mailbox) -> Lookup {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        if let Some(k) = inner.known.get_mut(key) {
            k.used = now;
            return Lookup::Known(k.features.clone());
        }
        if let Some(a) = inner.asking.get_mut(key) {
            if !a.waiters.iter().any(|w| w.same(me)) {
                a.waiters.push(me.clone());
            }
            return Lookup::Wait;
        }
        let id = self.next_id();
        inner.asking.insert(
            key.clone(),
            Asking {
                id: id.clone().into(),
                waiters: Vec::new(),
            },
        );
        Lookup::Ask(id)
    }

    /// An answer for `key` verified: it is known from now on, and whoever
    /// waited for it is told (also when another session's query for it,
    /// after a timeout, is still under way: that one is not needed now).
    pub fn resolved(&self, key: &Arc<Key>, features: Arc<Features>) {
        let waiters = {
            let mut inner = self.lock();
            inner.insert(key, features);
            inner.asking.remove(key).map(|a| a.waiters)
        };
        notify(key, waiters);
    }

    /// Query `id` for `key` came to nothing (an error, an answer that does
    /// not verify, a timeout, its session gone): the sessions waiting for
    /// it look again, and one of them asks its own client (§5.4 3.9: check
    /// another entity that announces the string).
    pub fn failed(&self, key: &Arc<Key>, id: &str) {
        let waiters = {
            let mut inner = self.lock();
            match inner.asking.get(key) {
                Some(a) if &*a.id == id => inner.asking.remove(key).map(|a| a.waiters),
                _ => None,
            }
        };
        notify(key, waiters);
    }

    /// Fails query `id` for `key` after `QUERY_TIMEOUT` if it is still
    /// under way then.
    pub fn watch(self: &Arc<Self>, key: Arc<Key>, id: String) {
        let cache: Weak<Cache> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(QUERY_TIMEOUT).await;
            if let Some(cache) = cache.upgrade() {
                cache.failed(&key, &id);
            }
        });
    }
}

impl Inner {
    /// Adds a known string, evicting the least recently used ones to stay
    /// within the bounds. One larger than all of `MAX_BYTES` is not kept.
    fn insert(&mut self, key: &Arc<Key>, features: Arc<Features>) {
        let bytes = size_of(&features);
        if bytes > MAX_BYTES {
            return;
        }
        self.clock += 1;
        if let Some(old) = self.known.remove(key) {
            self.bytes -= old.bytes;
        }
        while !self.known.is_empty()
            && (self.known.len() >= MAX_ENTRIES || self.bytes + bytes > MAX_BYTES)
        {
            let oldest = self
                .known
                .iter()
                .min_by_key(|(_, k)| k.used)
                .map(|(key, _)| key.clone())
                .expect("not empty");
            if let Some(k) = self.known.remove(&oldest) {
                self.bytes -= k.bytes;
            }
        }
        self.bytes += bytes;
        self.known.insert(
            key.clone(),
            Known {
                features,
                used: self.clock,
                bytes,
            },
        );
    }
}

/// Memory a cached entry holds, roughly.
fn size_of(f: &Features) -> usize {
    64 + f.iter().map(|s| s.len() + 24).sum::<usize>()
}

fn notify(key: &Arc<Key>, waiters: Option<Vec<Mailbox>>) {
    for w in waiters.into_iter().flatten() {
        w.deliver(Outbound::Caps(key.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ver: &str) -> Arc<Key> {
        Arc::new(Key {
            algo: Algo::Sha1,
            ver: ver.into(),
        })
    }

    fn features(n: usize, len: usize) -> Arc<Features> {
        Arc::new(Features::new(
            (0..n).map(|i| format!("{i:0len$}")).collect(),
        ))
    }

    /// The strings of the notes in `m`.
    fn notes(m: &Mailbox) -> Vec<String> {
        std::iter::from_fn(|| m.pop())
            .map(|o| match o {
                Outbound::Caps(k) => k.ver.to_string(),
                other => panic!("not a caps note: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn one_session_asks_and_the_others_are_told() {
        let cache = Cache::default();
        let (a, b, c) = (Mailbox::new(8), Mailbox::new(8), Mailbox::new(8));
        let k = key("v1");
        assert!(matches!(cache.lookup(&k, &a), Lookup::Ask(_)));
        assert!(matches!(cache.lookup(&k, &b), Lookup::Wait));
        assert!(matches!(cache.lookup(&k, &b), Lookup::Wait));
        assert!(matches!(cache.lookup(&k, &c), Lookup::Wait));
        // Another string is asked for on its own.
        assert!(matches!(cache.lookup(&key("v2"), &b), Lookup::Ask(_)));
        let f = features(3, 4);
        cache.resolved(&k, f.clone());
        assert_eq!(notes(&b), ["v1"], "told once");
        assert_eq!(notes(&c), ["v1"]);
        assert!(notes(&a).is_empty(), "the asker is not told");
        match cache.lookup(&k, &b) {
            Lookup::Known(got) => assert_eq!(got, f),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_query_lets_a_waiting_session_ask() {
        let cache = Cache::default();
        let (a, b, c) = (Mailbox::new(8), Mailbox::new(8), Mailbox::new(8));
        let k = key("v1");
        let Lookup::Ask(first) = cache.lookup(&k, &a) else {
            panic!("asks")
        };
        assert!(matches!(cache.lookup(&k, &b), Lookup::Wait));
        cache.failed(&k, "caps-other");
        assert!(notes(&b).is_empty(), "another query's failure");
        cache.failed(&k, &first);
        assert_eq!(notes(&b), ["v1"]);
        let Lookup::Ask(second) = cache.lookup(&k, &b) else {
            panic!("b asks now")
        };
        assert_ne!(first, second);
        assert!(matches!(cache.lookup(&k, &c), Lookup::Wait));
        // The first query failing again (say, its timer) changes nothing.
        cache.failed(&k, &first);
        assert!(notes(&c).is_empty());
        // A late answer to the first query still verifies: c is told.
        cache.resolved(&k, features(1, 1));
        assert_eq!(notes(&c), ["v1"]);
        assert!(matches!(cache.lookup(&k, &c), Lookup::Known(_)));
        // The second query's answer then only refreshes the entry.
        cache.resolved(&k, features(1, 1));
        assert_eq!(cache.lock().known.len(), 1);
    }

    #[test]
    fn the_least_recently_used_go_first() {
        let cache = Cache::default();
        let me = Mailbox::new(8);
        for i in 0..MAX_ENTRIES {
            cache.resolved(&key(&format!("v{i}")), features(2, 8));
        }
        // v0 is used again: v1 is now the oldest.
        assert!(matches!(cache.lookup(&key("v0"), &me), Lookup::Known(_)));
        cache.resolved(&key("new"), features(2, 8));
        let inner = cache.lock();
        assert_eq!(inner.known.len(), MAX_ENTRIES);
        assert!(inner.known.contains_key(&key("v0")));
        assert!(!inner.known.contains_key(&key("v1")));
        assert!(inner.known.contains_key(&key("new")));
        let sum: usize = inner.known.values().map(|k| k.bytes).sum();
        assert_eq!(inner.bytes, sum);
    }

    #[test]
    fn memory_stays_bounded() {
        let cache = Cache::default();
        // Just under 1 MiB each: four fit, the fifth evicts the first.
        let big = || features(1000, 1024);
        for i in 0..5 {
            cache.resolved(&key(&format!("big{i}")), big());
        }
        {
            let inner = cache.lock();
            assert!(inner.bytes <= MAX_BYTES);
            assert_eq!(inner.known.len(), 4);
            assert!(!inner.known.contains_key(&key("big0")));
        }
        // Too large for the whole cache: used, never kept.
        cache.resolved(&key("huge"), features(5000, 1024));
        assert!(!cache.lock().known.contains_key(&key("huge")));
    }
}
