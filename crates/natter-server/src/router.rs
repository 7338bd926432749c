//! The session registry: who is connected, with which resource, available or
//! not, at what priority, and the mailbox to reach each session.
//!
//! Sharded by bare JID; every lock is held for a few map operations only and
//! never across an `.await`.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

pub use crate::mailbox::{Mailbox, Outbound};

const SHARDS: usize = 64;

/// One bound session of an account.
#[derive(Debug, Clone)]
pub struct Entry {
    pub resource: String,
    pub conn_id: u64,
    pub mailbox: Mailbox,
    /// Has sent initial presence and not gone unavailable.
    pub available: bool,
    pub priority: i8,
    /// Its last available presence, `from` stamped, for probes.
    pub presence: Option<Arc<[u8]>>,
    /// Has enabled carbons (XEP-0280).
    pub carbons: bool,
    /// Its entity capabilities (XEP-0115), once known.
    pub caps: Option<Arc<crate::modules::caps::Features>>,
}

/// Where one message goes (`Router::message_route`).
#[derive(Debug, Default)]
pub struct MessageRoute {
    /// Addressed to a connected resource (full JID), which alone gets it.
    pub direct: bool,
    /// The sessions that get the message itself.
    pub targets: Vec<Mailbox>,
    /// Carbons-enabled sessions that do not, for a `<received/>` copy:
    /// (mailbox, resource).
    pub copies: Vec<(Mailbox, String)>,
}

/// The registry of bound sessions.
pub struct Router {
    shards: Vec<RwLock<HashMap<String, Vec<Entry>>>>,
    next_conn: AtomicU64,
    /// Bumped by every bind and presence change (see `changes`).
    changes: AtomicU64,
    /// Bound sessions with carbons enabled, server-wide: while none has,
    /// routing skips every carbons step.
    carbons: AtomicUsize,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            next_conn: AtomicU64::new(1),
            changes: AtomicU64::new(0),
            carbons: AtomicUsize::new(0),
        }
    }
}

impl Router {
    fn shard(&self, bare: &str) -> &RwLock<HashMap<String, Vec<Entry>>> {
        let mut h = DefaultHasher::new();
        bare.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// A count of binds and presence changes so far: while it stays the
    /// same, the sessions a message goes to are the same.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }

    /// Binds `resource` of `bare`; a session already bound to it is returned
    /// so the caller can tell it of the conflict.
    pub fn bind(&self, bare: &str, entry: Entry) -> Option<Entry> {
        let mut map = self.shard(bare).write().expect("router lock");
        // Most accounts have one session: room for exactly one at first.
        let list = map
            .entry(bare.to_owned())
            .or_insert_with(|| Vec::with_capacity(1));
        let old = list
            .iter()
            .position(|e| e.resource == entry.resource)
            .map(|i| list.swap_remove(i));
        if old.as_ref().is_some_and(|e| e.carbons) {
            self.carbons.fetch_sub(1, Ordering::SeqCst);
        }
        list.push(entry);
        self.changes.fetch_add(1, Ordering::SeqCst);
        old
    }

    /// Whether `resource` is bound for `bare`.
    pub fn is_bound(&self, bare: &str, resource: &str) -> bool {
        let map = self.shard(bare).read().expect("router lock");
        map.get(bare)
            .is_some_and(|l| l.iter().any(|e| e.resource == resource))
    }

    /// Removes the session `conn_id` (if it is still the one bound).
    pub fn unbind(&self, bare: &str, conn_id: u64) {
        let mut map = self.shard(bare).write().expect("router lock");
        if let Some(list) = map.get_mut(bare) {
            list.retain(|e| {
                let gone = e.conn_id == conn_id;
                if gone && e.carbons {
                    self.carbons.fetch_sub(1, Ordering::SeqCst);
                }
                !gone
            });
            if list.is_empty() {
                map.remove(bare);
            }
        }
    }

    /// Records a session's presence: `Some((priority, stanza))` when
    /// available, `None` when it went unavailable.
    pub fn set_presence(&self, bare: &str, conn_id: u64, presence: Option<(i8, Arc<[u8]>)>) {
        let mut map = self.shard(bare).write().expect("router lock");
        if let Some(e) = map
            .get_mut(bare)
            .and_then(|l| l.iter_mut().find(|e| e.conn_id == conn_id))
        {
            match presence {
                Some((prio, stanza)) => {
                    e.available = true;
                    e.priority = prio;
                    e.presence = Some(stanza);
                }
                None => {
                    e.available = false;
                    e.presence = None;
                }
            }
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A copy of every session of `bare` (cheap: a few small clones).
    pub fn sessions(&self, bare: &str) -> Vec<Entry> {
        let map = self.shard(bare).read().expect("router lock");
        map.get(bare).cloned().unwrap_or_default()
    }

    /// The session bound to `bare/resource`.
    pub fn session(&self, bare: &str, resource: &str) -> Option<Entry> {
        let map = self.shard(bare).read().expect("router lock");
        map.get(bare)?
            .iter()
            .find(|e| e.resource == resource)
            .cloned()
    }

    /// Mailboxes of the sessions a message to the bare JID goes to (RFC 6121
    /// §8.5.2.1.1): every available resource with a non-negative priority.
    pub fn message_targets(&self, bare: &str) -> Vec<Mailbox> {
        let map = self.shard(bare).read().expect("router lock");
        map.get(bare)
            .map(|l| {
                l.iter()
                    .filter(|e| e.available && e.priority >= 0)
                    .map(|e| e.mailbox.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Mailboxes of every available session of `bare`.
    pub fn available(&self, bare: &str) -> Vec<Mailbox> {
        let map = self.shard(bare).read().expect("router lock");
        map.get(bare)
            .map(|l| {
                l.iter()
                    .filter(|e| e.available)
                    .map(|e| e.mailbox.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `bare` has any bound session.
    pub fn is_online(&self, bare: &str) -> bool {
        self.shard(bare)
            .read()
            .expect("router lock")
            .contains_key(bare)
    }

    /// Tells every bound session that the server is stopping.
    pub fn shutdown_all(&self) {
        for shard in &self.shards {
            for list in shard.read().expect("router lock").values() {
                for e in list {
                    e.mailbox.shutdown();
                }
            }
        }
    }

    /// Every bound session with its bare JID (for the admin API).
    pub fn list(&self) -> Vec<(String, Entry)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            for (bare, list) in shard.read().expect("router lock").iter() {
                out.extend(list.iter().map(|e| (bare.clone(), e.clone())));
            }
        }
        out
    }

    /// Turns carbons (XEP-0280) on or off for the session `conn_id`; false
    /// if it is not bound.
    pub fn set_carbons(&self, bare: &str, conn_id: u64, on: bool) -> bool {
        let mut map = self.shard(bare).write().expect("router lock");
        let Some(e) = map
            .get_mut(bare)
            .and_then(|l| l.iter_mut().find(|e| e.conn_id == conn_id))
        else {
            return false;
        };
        if e.carbons != on {
            e.carbons = on;
            if on {
                self.carbons.fetch_add(1, Ordering::SeqCst);
            } else {
                self.carbons.fetch_sub(1, Ordering::SeqCst);
            }
            self.changes.fetch_add(1, Ordering::SeqCst);
        }
        true
    }

    /// Records the session's entity capabilities (XEP-0115); false if it is
    /// not bound.
    pub fn set_caps(
        &self,
        bare: &str,
        conn_id: u64,
        caps: Option<Arc<crate::modules::caps::Features>>,
    ) -> bool {
        let mut map = self.shard(bare).write().expect("router lock");
        match map
            .get_mut(bare)
            .and_then(|l| l.iter_mut().find(|e| e.conn_id == conn_id))
        {
            Some(e) => {
                e.caps = caps;
                true
            }
            None => false,
        }
    }

    /// The available sessions of `bare` whose capabilities ask for
    /// notifications of PEP node `node` (XEP-0163 `NODE+notify`):
    /// (mailbox, resource).
    pub fn interested(&self, bare: &str, node: &str) -> Vec<(Mailbox, String)> {
        let map = self.shard(bare).read().expect("router lock");
        map.get(bare)
            .map(|l| {
                l.iter()
                    .filter(|e| e.available && e.caps.as_ref().is_some_and(|c| c.notify(node)))
                    .map(|e| (e.mailbox.clone(), e.resource.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether any bound session has carbons enabled.
    pub fn any_carbons(&self) -> bool {
        self.carbons.load(Ordering::Relaxed) > 0
    }

    /// The available carbons-enabled sessions of `bare` other than
    /// `except` (a conn id): (mailbox, resource).
    pub fn carbon_sessions(&self, bare: &str, except: u64) -> Vec<(Mailbox, String)> {
        let map = self.shard(bare).read().expect("router lock");
        map.get(bare)
            .map(|l| {
                l.iter()
                    .filter(|e| e.carbons && e.available && e.conn_id != except)
                    .map(|e| (e.mailbox.clone(), e.resource.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where a message to `bare` (or to `bare/resource`) goes, in one look
    /// at the registry: the connected resource it names, or else the
    /// sessions of RFC 6121 §8.5.2.1.1; with `carbons`, also the available
    /// carbons-enabled sessions that do not get it, except `except` (a conn
    /// id: the sender's own session, for a message to its own account).
    pub fn message_route(
        &self,
        bare: &str,
        resource: Option<&str>,
        carbons: bool,
        except: u64,
    ) -> MessageRoute {
        let map = self.shard(bare).read().expect("router lock");
        let mut route = MessageRoute::default();
        let Some(list) = map.get(bare) else {
            return route;
        };
        let direct = resource.and_then(|r| list.iter().position(|e| e.resource == r));
        let gets = |i: usize, e: &Entry| match direct {
            Some(d) => d == i,
            None => e.available && e.priority >= 0,
        };
        route.direct = direct.is_some();
        for (i, e) in list.iter().enumerate() {
            if gets(i, e) {
                route.targets.push(e.mailbox.clone());
            } else if carbons && e.carbons && e.available && e.conn_id != except {
                route.copies.push((e.mailbox.clone(), e.resource.clone()));
            }
        }
        route
    }

    /// Number of bound sessions.
    pub fn count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .expect("router lock")
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }
}
