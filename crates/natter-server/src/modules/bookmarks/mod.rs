//! Bookmarks: XEP-0402 PEP Native Bookmarks on the PEP service, kept in
//! step, as XEP-0402's compatibility section describes (advertised as
//! `urn:xmpp:bookmarks:1#compat` and `#compat-pep`), with the two places
//! XEP-0048 clients keep their list: private storage (XEP-0049, `<storage
//! xmlns='storage:bookmarks'/>`) and the XEP-0223 node `storage:bookmarks`
//! (item `current`). XEP-0411's conversion between those two follows from
//! it (`urn:xmpp:bookmarks-conversion:0`).
//!
//! A client writes through any of the three:
//! - publishing or retracting a room's item on the `urn:xmpp:bookmarks:1`
//!   node (or configuring, purging, deleting it): both XEP-0048 copies are
//!   rebuilt from the node's rooms;
//! - storing a list in private storage, or publishing one to the
//!   `storage:bookmarks` node: both copies hold the list as written, and
//!   the XEP-0402 node gets its rooms — new and changed ones published,
//!   missing ones retracted, unchanged ones left alone, each notified to
//!   the owner's sessions that ask for `urn:xmpp:bookmarks:1+notify`.
//!
//! Rooms carry their JID, name, autojoin, nick and password both ways.
//! What a format cannot carry stays where it is (`format.rs`): a XEP-0402
//! item's `<extensions/>` is kept in the item when a XEP-0048 client
//! changes the room, and is not in the XEP-0048 lists; a XEP-0048 list's
//! `<url/>` entries and other children, and a `<conference/>`'s other
//! attributes and children, are kept in the lists and are not in XEP-0402.
//! Retracting the `storage:bookmarks` item, or purging or deleting that
//! node, removes that copy only (clients clean it up after moving to
//! XEP-0402); it is written again at the next change.
//!
//! Bad bookmarks are refused before anything is stored: `bad-request` for
//! a malformed payload (with `<invalid-payload/>` on the PEP paths) or an
//! item id that is not a room's bare JID, `policy-violation` beyond
//! [`MAX_ROOMS`] rooms. natterd creates the bookmark nodes private
//! ([`defaults`]) and sets them back to private before writing into one
//! that a client made readable by others.
//!
//! One account's bookmark requests run one at a time (a lock per account,
//! held from the check to the last copy written), so two clients writing
//! at once cannot interleave the copies. The first time an account's
//! bookmarks are used, lists stored before natterd kept them in step are
//! brought into XEP-0402 (`sync.rs`, `ensure_synced`).

mod format;
mod sync;

pub use format::{LEGACY_NS, NS};

use super::iq::Reply;
use super::pep::{self, AccessModel, MaxItems, NodeConfig, SendLast};
use crate::c2s::session::Session;
use crate::server::Shared;
use format::{Invalid, LegacyError};
use natter_store::StoreError;
use natter_xml::Element;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// The XEP-0048 PEP node (XEP-0223): named after its namespace.
pub const LEGACY_NODE: &str = LEGACY_NS;

/// Features of the account's disco#info: the server keeps XEP-0402 in
/// step with private storage (`#compat`) and with the XEP-0048 PEP node
/// (`#compat-pep`), and those two with each other (XEP-0411).
pub const FEATURES: &[&str] = &[
    "urn:xmpp:bookmarks-conversion:0",
    "urn:xmpp:bookmarks:1#compat",
    "urn:xmpp:bookmarks:1#compat-pep",
];

/// Rooms one account may bookmark: all the items a node keeps.
pub const MAX_ROOMS: usize = pep::MAX_ITEMS as usize;

/// The configuration of a bookmark node natterd creates (when a client
/// first publishes to it, with its publish-options on top): the owner
/// alone reads it, items persist, no last item is pushed (what XEP-0402's
/// publish-options ask for); the XEP-0402 node keeps `max` items, the
/// XEP-0048 one its one list. None for other nodes.
pub fn defaults(node: &str) -> Option<NodeConfig> {
    let max_items = match node {
        NS => MaxItems::Max,
        LEGACY_NODE => MaxItems::Count(1),
        _ => return None,
    };
    Some(NodeConfig {
        access_model: AccessModel::Whitelist,
        max_items,
        persist_items: true,
        send_last_published_item: SendLast::Never,
        ..NodeConfig::default()
    })
}

/// The per-account bookmark locks (in [`Shared`]); an entry lives while
/// someone holds or waits for it.
#[derive(Default)]
pub struct Locks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// An account's bookmark lock, held.
struct Held {
    shared: Arc<Shared>,
    bare: String,
    _guard: OwnedMutexGuard<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut map = self.shared.bookmarks.0.lock().expect("bookmark locks");
        // Nobody else holds or waits for it: the map's and our guard's.
        if map
            .get(&self.bare)
            .is_some_and(|m| Arc::strong_count(m) == 2)
        {
            map.remove(&self.bare);
        }
    }
}

async fn lock(s: &Session) -> Held {
    let mutex = {
        let mut map = s.shared.bookmarks.0.lock().expect("bookmark locks");
        map.entry(s.bare.clone()).or_default().clone()
    };
    Held {
        shared: s.shared.clone(),
        bare: s.bare.clone(),
        _guard: mutex.lock_owned().await,
    }
}

/// The lock, with the account's copies brought together once.
async fn lock_synced(s: &mut Session) -> Result<Held, Reply> {
    let held = lock(s).await;
    sync::ensure_synced(s).await.map_err(|e| e.reply())?;
    Ok(held)
}

/// The bookmark node a pubsub request is about, if it is one.
pub fn node_of(req: &Element) -> Option<&'static str> {
    match req.attr("node") {
        Some(NS) => Some(NS),
        Some(LEGACY_NODE) => Some(LEGACY_NODE),
        _ => None,
    }
}

/// A pubsub request of the owner on one of its bookmark nodes, checked
/// and under way (between [`begin`] and [`finish`]).
pub struct Pending {
    _held: Held,
    then: Then,
}

/// What follows the request once PEP has done it.
enum Then {
    Nothing,
    /// The XEP-0402 node changed.
    NativeChanged,
    /// This XEP-0048 list was published to the `storage:bookmarks` node.
    LegacyWritten(Element),
}

/// Before PEP does `req` (a `pubsub` or `pubsub#owner` request of the
/// owner on `node`, a bookmark node): takes the account's bookmark lock
/// and checks a published bookmark, or answers the error.
pub async fn begin(
    s: &mut Session,
    node: &'static str,
    req: &Element,
    set: bool,
) -> Result<Pending, Reply> {
    let held = lock_synced(s).await?;
    let then = match (node, req.name.as_str(), set) {
        (_, _, false) | (_, "create", _) => Then::Nothing,
        (NS, "publish", true) => {
            check_native(s, req).await?;
            Then::NativeChanged
        }
        (NS, _, true) => Then::NativeChanged,
        (_, "publish", true) => match check_legacy_item(req)? {
            Some(list) => Then::LegacyWritten(list),
            None => Then::Nothing,
        },
        _ => Then::Nothing,
    };
    Ok(Pending { _held: held, then })
}

/// After PEP did the request of [`begin`]: the other copies follow.
pub async fn finish(s: &mut Session, pending: Pending) -> Result<(), Reply> {
    let done = match &pending.then {
        Then::Nothing => Ok(()),
        Then::NativeChanged => sync::native_changed(s).await,
        Then::LegacyWritten(list) => sync::legacy_written(s, list).await,
    };
    done.map_err(|e| e.reply())
}

/// The one item and its one payload of a publish request; None when the
/// request is malformed otherwise (PEP answers that).
fn published(publish: &Element) -> Option<(Option<&str>, &Element)> {
    let mut items = publish
        .elements()
        .filter(|e| e.name == "item" && e.ns == pep::NS);
    let item = items.next()?;
    if items.next().is_some() {
        return None;
    }
    let mut payloads = item.elements();
    let payload = payloads.next()?;
    if payloads.next().is_some() {
        return None;
    }
    Some((item.attr("id"), payload))
}

fn invalid_payload(text: String) -> Reply {
    let app = Element::new("invalid-payload", pep::NS_ERRORS);
    Reply::Detailed("modify", "bad-request", Some(text), Box::new(app))
}

fn too_many() -> Reply {
    Reply::Error(
        "modify",
        "policy-violation",
        Some(format!("at most {MAX_ROOMS} bookmarked rooms")),
    )
}

/// A room published to the XEP-0402 node: a well-formed bookmark, and a
/// new room only while the account has fewer than [`MAX_ROOMS`].
async fn check_native(s: &Session, publish: &Element) -> Result<(), Reply> {
    let Some((id, payload)) = published(publish) else {
        return Ok(());
    };
    let id = id.unwrap_or_default();
    match format::parse_item(id, payload) {
        Ok(_) => {}
        Err(Invalid::ItemId(t)) => {
            let t = format!("a bookmark's item id is its room's JID: {t}");
            return Err(Reply::Error("modify", "bad-request", Some(t)));
        }
        Err(Invalid::Payload(t)) => return Err(invalid_payload(t)),
    }
    let items = match s.shared.store.pep_items(&s.bare, NS, &[], None).await {
        Ok(items) => items,
        Err(StoreError::NotFound) => Vec::new(),
        Err(e) => return Err(pep::PepError::from(e).reply()),
    };
    if items.len() >= MAX_ROOMS && !items.iter().any(|i| i.id == id) {
        return Err(too_many());
    }
    Ok(())
}

/// A list published to the `storage:bookmarks` node: item `current` (or
/// no id) holding a well-formed XEP-0048 list.
fn check_legacy_item(publish: &Element) -> Result<Option<Element>, Reply> {
    let Some((id, payload)) = published(publish) else {
        return Ok(None);
    };
    if id.is_some_and(|i| i != "current") {
        let t = "the XEP-0048 bookmarks item is 'current'".to_owned();
        return Err(Reply::Error("modify", "bad-request", Some(t)));
    }
    match format::parse_legacy(payload, MAX_ROOMS) {
        Ok(_) => Ok(Some(payload.clone())),
        Err(LegacyError::Invalid(t)) => Err(invalid_payload(t)),
        Err(LegacyError::TooMany) => Err(too_many()),
    }
}

/// Whether a private storage element is the XEP-0048 list.
pub fn is_private_list(el: &Element) -> bool {
    el.name == "storage" && el.ns == LEGACY_NS
}

/// Checks a XEP-0048 list a client stores in private storage, before
/// anything is stored.
pub fn check_private(list: &Element) -> Result<(), Reply> {
    match format::parse_legacy(list, MAX_ROOMS) {
        Ok(_) => Ok(()),
        Err(LegacyError::Invalid(t)) => Err(Reply::Error("modify", "bad-request", Some(t))),
        Err(LegacyError::TooMany) => Err(too_many()),
    }
}

/// Stores a XEP-0048 list (checked) written to private storage, and
/// brings the other two copies in step.
pub async fn store_private(s: &mut Session, list: &Element) -> Result<(), Reply> {
    let _held = lock_synced(s).await?;
    sync::legacy_written(s, list).await.map_err(|e| e.reply())
}

/// Before the XEP-0048 list is read from private storage: the account's
/// copies are brought together once.
pub async fn before_private_read(s: &mut Session) -> Result<(), Reply> {
    lock_synced(s).await.map(drop)
}
