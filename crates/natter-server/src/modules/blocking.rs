//! Blocking (XEP-0191): the blocklist IQs with pushes to the resources that
//! asked for the list, and the checks the routing, presence and IQ paths
//! make.
//!
//! Lists live in the store's key-value space (namespace [`NS`], one key per
//! blocked JID). The checks never read the store in the steady state:
//! [`Blocklists`] knows every account that has a non-empty list (read once
//! at start) and keeps the lists themselves of a bounded number of them in
//! memory. An account with no list costs one atomic load (nobody blocks
//! anyone) or one map lookup; a list not in memory is loaded before the
//! stanza that needs it is handled ([`prepare`]).

use super::iq::Reply;
use super::message::Plan;
use crate::c2s::session::Session;
use crate::server::Shared;
use crate::{ns, util};
use natter_store::{Store, StoreError, Subscription};
use natter_xml::{Element, Stanza};
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub const NS: &str = "urn:xmpp:blocking";
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

/// Items one account may block.
pub const MAX_ITEMS: usize = 1000;
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
    items: HashSet<String>,
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
fn item_covers(item: &str, entity: &str) -> bool {
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
    owners: AtomicUsize,
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
    async fn modify(
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
    fn interest(&self, shared: &Shared, owner: &str, conn_id: u64) {
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
    fn interested_in(&self, owner: &str) -> Vec<u64> {
        self.interested
            .lock()
            .expect("interest lock")
            .get(owner)
            .cloned()
            .unwrap_or_default()
    }
}

// ---- checks -----------------------------------------------------------

/// Makes sure the lists a message from the client needs are in memory
/// (a no-op in the steady state), so that [`refuse_message`] decides
/// without the store.
pub async fn prepare(s: &Session, st: &Stanza) {
    let b = &s.shared.blocking;
    if b.owners.load(Ordering::SeqCst) == 0 {
        return;
    }
    if let Err(e) = b.ensure(&s.shared.store, &s.bare).await {
        tracing::error!(error = %e, "blocklist read failed");
    }
    let Some(to) = st.to() else { return };
    if let Ok(j) = jid::Jid::new(&to) {
        let bare = j.to_bare();
        if let Err(e) = b.ensure(&s.shared.store, bare.as_str()).await {
            tracing::error!(error = %e, "blocklist read failed");
        }
    }
}

/// Which side blocks a stanza from the session's user to `to` (a
/// normalised JID of bare JID `bare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The user blocks the recipient: `not-acceptable` with `<blocked/>`.
    SenderBlocks,
    /// The recipient blocks the user: refused as if it did not exist.
    RecipientBlocks,
}

fn verdict_now(s: &Session, to: &str, bare: &str) -> Option<Verdict> {
    let b = &s.shared.blocking;
    if bare == s.bare {
        return Some(Verdict::Allowed);
    }
    if b.blocks(&s.bare, to)? {
        return Some(Verdict::SenderBlocks);
    }
    if b.blocks(bare, &s.full)? {
        return Some(Verdict::RecipientBlocks);
    }
    Some(Verdict::Allowed)
}

/// The verdict, loading lists as needed.
pub async fn verdict(s: &Session, to: &str, bare: &str) -> Verdict {
    if let Some(v) = verdict_now(s, to, bare) {
        return v;
    }
    let (b, store) = (&s.shared.blocking, &s.shared.store);
    if b.check(store, &s.bare, to).await {
        Verdict::SenderBlocks
    } else if b.check(store, bare, &s.full).await {
        Verdict::RecipientBlocks
    } else {
        Verdict::Allowed
    }
}

/// The error for a stanza the user sent to someone it blocks (XEP-0191
/// §3.5): `not-acceptable` with `<blocked xmlns='urn:xmpp:blocking:errors'/>`.
pub fn blocked_error(st: &Stanza, sender: &str, to: &str) -> Vec<u8> {
    let mut e = util::bounce(st, sender, to, "cancel", "not-acceptable", None);
    let at = e
        .windows(8)
        .rposition(|w| w == b"</error>")
        .expect("bounce has an error element");
    let blocked = format!("<blocked xmlns='{NS_ERRORS}'/>");
    e.splice(at..at, blocked.bytes());
    e
}

/// The plan for a message refused by a blocklist, or None to route it. A
/// message from a blocked sender gets `service-unavailable` and is never
/// queued; errors are dropped silently.
pub fn refuse_message(s: &Session, st: &Stanza, to: &str, bare: &str) -> Option<Plan> {
    let v = match verdict_now(s, to, bare) {
        Some(v) => v,
        // `prepare` loaded both lists just before; only a store failure
        // leaves one unknown, and then the message is not routed.
        None => {
            return Some(Plan::Reply(util::bounce(
                st,
                &s.full,
                to,
                "wait",
                "internal-server-error",
                None,
            )))
        }
    };
    let is_error = st.stanza_type().as_deref() == Some("error");
    match v {
        Verdict::Allowed => None,
        _ if is_error => Some(Plan::Nothing),
        Verdict::SenderBlocks => Some(Plan::Reply(blocked_error(st, &s.full, to))),
        Verdict::RecipientBlocks => Some(Plan::Reply(util::bounce(
            st,
            &s.full,
            to,
            "cancel",
            "service-unavailable",
            None,
        ))),
    }
}

/// Refuses an IQ from the client to another account (its bare JID or a
/// resource) that a blocklist stands between; true when it was refused
/// (an error went to the client for a get/set). A blocked entity asking
/// for the user's last activity gets `forbidden` (XEP-0012 privacy).
pub async fn refuse_iq(s: &mut Session, st: &Stanza, to: &str, bare: &str) -> bool {
    if bare == s.bare {
        return false;
    }
    let v = verdict(s, to, bare).await;
    let is_request = matches!(st.stanza_type().as_deref(), Some("get") | Some("set"));
    match v {
        Verdict::Allowed => return false,
        _ if !is_request => {}
        Verdict::SenderBlocks => {
            let e = blocked_error(st, &s.full, to);
            s.send(&e);
        }
        Verdict::RecipientBlocks => {
            let last = !to.contains('/')
                && st
                    .children()
                    .first()
                    .is_some_and(|c| c.name == "query" && c.ns == ns::LAST);
            let (kind, cond) = if last {
                ("auth", "forbidden")
            } else {
                ("cancel", "service-unavailable")
            };
            let e = util::bounce(st, &s.full, to, kind, cond, None);
            s.send(&e);
        }
    }
    true
}

/// Presence the client sends to another account (directed, subscription
/// or probe) that a blocklist stands between: true when it must not go
/// on. To a blocked entity only cancellations go (`unavailable` is dropped:
/// it got that at the block); others get `not-acceptable` with
/// `<blocked/>`. From a user someone blocks, presence is dropped silently,
/// except cancellations, which change the sender's own roster (their
/// delivery is dropped in `subscription::to_contact`).
pub async fn refuse_presence(s: &mut Session, st: &Stanza, to: &str, bare: &str) -> bool {
    if bare == s.bare {
        return false;
    }
    let ty = st.stanza_type().map(|t| t.into_owned());
    let cancel = matches!(ty.as_deref(), Some("unsubscribe") | Some("unsubscribed"));
    match verdict(s, to, bare).await {
        Verdict::Allowed => false,
        _ if cancel => false,
        Verdict::SenderBlocks => {
            if !matches!(ty.as_deref(), Some("unavailable") | Some("error")) {
                let e = blocked_error(st, &s.full, to);
                s.send(&e);
            }
            true
        }
        Verdict::RecipientBlocks => true,
    }
}

/// Whether presence of `from` (a bare or full JID of bare `from_bare`)
/// may reach `to` (bare): neither blocks the other.
pub async fn presence_allowed(s: &Session, from: &str, from_bare: &str, to: &str) -> bool {
    if from_bare == to {
        return true;
    }
    let (b, store) = (&s.shared.blocking, &s.shared.store);
    !b.check(store, to, from).await && !b.check(store, from_bare, to).await
}

/// The session's own list (for filters at login).
pub async fn own_list(s: &Session) -> Arc<List> {
    match s.shared.blocking.list(&s.shared.store, &s.bare).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "blocklist read failed");
            Arc::new(List::default())
        }
    }
}

// ---- the IQs ----------------------------------------------------------

/// `<blocklist/>` get, `<block/>` and `<unblock/>` sets, on the user's own
/// account.
pub async fn handle(s: &mut Session, st: &Stanza, name: &str, set: bool) -> Reply {
    match (name, set) {
        ("blocklist", false) => get(s).await,
        ("block", true) | ("unblock", true) => {
            let Ok(el) = st.element() else {
                return Reply::bad_request("unreadable blocking command");
            };
            let Some(cmd) = el.get_child(name, NS) else {
                return Reply::bad_request("missing blocking command");
            };
            let items = match parse_items(cmd) {
                Ok(i) => i,
                Err(r) => return r,
            };
            if name == "block" {
                block(s, items).await
            } else {
                unblock(s, items).await
            }
        }
        _ => Reply::bad_request("blocklist is read with get, block and unblock are sets"),
    }
}

/// The items' JIDs, normalised.
fn parse_items(cmd: &Element) -> Result<Vec<String>, Reply> {
    let mut out = Vec::new();
    for item in cmd.elements() {
        if item.name != "item" || item.ns != NS {
            return Err(Reply::bad_request("only <item/> elements may be listed"));
        }
        let Some(raw) = item.attr("jid") else {
            return Err(Reply::bad_request("an <item/> needs a 'jid'"));
        };
        match jid::Jid::new(raw) {
            Ok(j) => {
                let j = j.as_str().to_owned();
                if !out.contains(&j) {
                    out.push(j);
                }
            }
            Err(_) => {
                return Err(Reply::Error(
                    "modify",
                    "jid-malformed",
                    Some(format!("not a JID: {raw}")),
                ))
            }
        }
    }
    Ok(out)
}

fn items_element(name: &str, items: &[String]) -> Element {
    let mut e = Element::new(name, NS);
    for i in items {
        e.push_child(Element::new("item", NS).with_attr("jid", i.clone()));
    }
    e
}

async fn get(s: &mut Session) -> Reply {
    let shared = s.shared.clone();
    shared.blocking.interest(&shared, &s.bare, s.conn_id);
    match shared.blocking.list(&shared.store, &s.bare).await {
        Ok(l) => Reply::Result(Some(items_element("blocklist", &l.sorted()))),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}

async fn block(s: &mut Session, items: Vec<String>) -> Reply {
    if items.is_empty() {
        return Reply::bad_request("a block needs at least one item");
    }
    let shared = s.shared.clone();
    let change = |old: &List| {
        let mut new = old.clone();
        new.items.extend(items.iter().cloned());
        if new.len() > MAX_ITEMS {
            return Err(Reply::Error(
                "wait",
                "resource-constraint",
                Some(format!("at most {MAX_ITEMS} blocked JIDs")),
            ));
        }
        Ok(new)
    };
    let (old, _new) = match shared.blocking.modify(&shared.store, &s.bare, change).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let added: Vec<String> = items
        .into_iter()
        .filter(|i| !old.items.contains(i))
        .collect();
    push(s, items_element("block", &added));
    if !added.is_empty() {
        hide_presence(s, &added).await;
    }
    Reply::Result(None)
}

async fn unblock(s: &mut Session, items: Vec<String>) -> Reply {
    let shared = s.shared.clone();
    let all = items.is_empty();
    let change = |old: &List| {
        if all {
            return Ok(List::default());
        }
        let mut new = old.clone();
        for i in &items {
            new.items.remove(i);
        }
        Ok(new)
    };
    let (old, new) = match shared.blocking.modify(&shared.store, &s.bare, change).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let removed: Vec<String> = old.items.difference(&new.items).cloned().collect();
    // An empty <unblock/> is pushed as it came: "everything".
    let pushed = if all { Vec::new() } else { removed.clone() };
    if all || !pushed.is_empty() {
        push(s, items_element("unblock", &pushed));
    }
    if !removed.is_empty() {
        show_presence(s, &removed, &new).await;
    }
    Reply::Result(None)
}

/// Sends `payload` as an IQ set to every session of the user that asked
/// for the blocklist.
fn push(s: &mut Session, payload: Element) {
    let wanted = s.shared.blocking.interested_in(&s.bare);
    if wanted.is_empty() {
        return;
    }
    let payload = payload.to_bytes(ns::CLIENT);
    for e in s.shared.router.sessions(&s.bare) {
        if !wanted.contains(&e.conn_id) {
            continue;
        }
        let mut out = Vec::with_capacity(payload.len() + 100);
        out.extend_from_slice(b"<iq type='set' id='push-");
        out.extend_from_slice(util::random_id().as_bytes());
        out.extend_from_slice(b"' to='");
        natter_xml::escape_attr(&format!("{}/{}", s.bare, e.resource), &mut out);
        out.extend_from_slice(b"'>");
        out.extend_from_slice(&payload);
        out.extend_from_slice(b"</iq>");
        if e.conn_id == s.conn_id {
            s.send(&out);
        } else {
            e.mailbox.stanza(&Arc::from(out));
        }
    }
}

fn unavailable(from: &str, to: &str) -> Arc<[u8]> {
    let mut b = b"<presence type='unavailable' from='".to_vec();
    natter_xml::escape_attr(from, &mut b);
    b.extend_from_slice(b"' to='");
    natter_xml::escape_attr(to, &mut b);
    b.extend_from_slice(b"'/>");
    b.into()
}

/// Hands `bytes` to a session: this one directly, another by its mailbox.
fn hand(s: &mut Session, conn_id: u64, mailbox: &crate::router::Mailbox, bytes: &Arc<[u8]>) {
    if conn_id == s.conn_id {
        s.send(bytes);
    } else {
        mailbox.stanza(bytes);
    }
}

/// After a block: each newly blocked contact's online resource gets
/// unavailable presence from the user's available resources (it saw them
/// online), and the user's resources get unavailable presence from it.
async fn hide_presence(s: &mut Session, added: &[String]) {
    let covered = |full: &str| added.iter().any(|i| item_covers(i, full));
    let mine: Vec<_> = s
        .shared
        .router
        .sessions(&s.bare)
        .into_iter()
        .filter(|e| e.available)
        .collect();
    for item in roster_items(s).await {
        let sees_us = matches!(item.subscription, Subscription::From | Subscription::Both);
        let we_see = matches!(item.subscription, Subscription::To | Subscription::Both);
        for e in s.shared.router.sessions(&item.jid) {
            let full = format!("{}/{}", item.jid, e.resource);
            if !e.available || !covered(&full) {
                continue;
            }
            if sees_us {
                for m in &mine {
                    let p = unavailable(&format!("{}/{}", s.bare, m.resource), &full);
                    e.mailbox.stanza(&p);
                }
            }
            if we_see {
                for m in &mine {
                    let p = unavailable(&full, &format!("{}/{}", s.bare, m.resource));
                    hand(s, m.conn_id, &m.mailbox, &p);
                }
            }
        }
    }
    // Directed presence this session sent to what it now blocks.
    let gone: Vec<String> = s.directed.iter().filter(|d| covered(d)).cloned().collect();
    for d in gone {
        s.directed.remove(&d);
        let bare = d.split('/').next().unwrap_or(&d).to_owned();
        let p = unavailable(&s.full, &d);
        for e in s.shared.router.sessions(&bare) {
            let full = format!("{bare}/{}", e.resource);
            if e.available && (full == d || bare == d) {
                e.mailbox.stanza(&p);
            }
        }
    }
}

/// After an unblock: presence flows again where the subscription allows
/// and nothing else blocks it.
async fn show_presence(s: &mut Session, removed: &[String], now: &List) {
    let uncovered = |full: &str| removed.iter().any(|i| item_covers(i, full)) && !now.blocks(full);
    let mine: Vec<_> = s
        .shared
        .router
        .sessions(&s.bare)
        .into_iter()
        .filter(|e| e.available)
        .collect();
    let me = s.bare.clone();
    for item in roster_items(s).await {
        let sees_us = matches!(item.subscription, Subscription::From | Subscription::Both);
        let we_see = matches!(item.subscription, Subscription::To | Subscription::Both);
        if !(sees_us || we_see) {
            continue;
        }
        // The contact may block the user itself.
        let contact_blocks = {
            let (b, store) = (&s.shared.blocking, &s.shared.store);
            b.check(store, &item.jid, &me).await
        };
        if contact_blocks {
            continue;
        }
        for e in s.shared.router.sessions(&item.jid) {
            let full = format!("{}/{}", item.jid, e.resource);
            if !e.available || !uncovered(&full) {
                continue;
            }
            if sees_us {
                for p in mine.iter().filter_map(|m| m.presence.clone()) {
                    e.mailbox.stanza(&p);
                }
            }
            if we_see {
                if let Some(p) = &e.presence {
                    for m in &mine {
                        hand(s, m.conn_id, &m.mailbox, p);
                    }
                }
            }
        }
    }
}

async fn roster_items(s: &Session) -> Vec<natter_store::RosterItem> {
    match s.shared.store.roster(&s.bare).await {
        Ok((_, items)) => items,
        Err(e) => {
            tracing::error!(error = %e, "roster read failed");
            Vec::new()
        }
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
