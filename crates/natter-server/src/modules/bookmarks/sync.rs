//! Keeping an account's three bookmark copies in step: the XEP-0402 node,
//! and the XEP-0048 list in private storage and in the `storage:bookmarks`
//! node. Every function here runs under the account's bookmark lock (see
//! `mod.rs`) and writes through the PEP functions, so the changes are
//! notified as any publish or retract is, and through nothing that would
//! come back here.

use super::format::{self, Room, LEGACY_NS, NS};
use super::{defaults, LEGACY_NODE, MAX_ROOMS};
use crate::c2s::session::Session;
use crate::modules::pep::{self, AccessModel, NodeConfig, PepError};
use crate::modules::private;
use natter_store::StoreError;
use natter_xml::{Element, Stanza};

/// Where natterd notes that an account's copies were brought together.
const MARK_NS: &str = "urn:natter:bookmarks";
const MARK_KEY: &str = "synced";

/// One item of the XEP-0402 node and, if it reads as a bookmark, its room.
struct Native {
    id: String,
    payload: Element,
    room: Option<Room>,
}

fn parse(bytes: &[u8], what: &str) -> Option<Element> {
    match Stanza::parse(bytes, "").and_then(|st| st.element()) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!(error = %e, "unreadable stored {what}");
            None
        }
    }
}

/// The items of `node`, oldest first (none when there is no node).
async fn items(s: &Session, node: &str) -> Result<Vec<natter_store::PepItem>, PepError> {
    match s.shared.store.pep_items(&s.bare, node, &[], None).await {
        Ok(mut items) => {
            items.reverse();
            Ok(items)
        }
        Err(StoreError::NotFound) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// The XEP-0402 node's items, oldest first.
async fn native(s: &Session) -> Result<Vec<Native>, PepError> {
    let mut out = Vec::new();
    for item in items(s, NS).await? {
        let Some(payload) = parse(&item.payload, "XEP-0402 bookmark") else {
            continue;
        };
        let room = format::parse_item(&item.id, &payload).ok();
        out.push(Native {
            id: item.id,
            payload,
            room,
        });
    }
    Ok(out)
}

fn rooms(native: Vec<Native>) -> Vec<Room> {
    native.into_iter().filter_map(|n| n.room).collect()
}

fn private_key() -> String {
    private::key("storage", LEGACY_NS)
}

fn a_list(e: Element) -> Option<Element> {
    (e.name == "storage" && e.ns == LEGACY_NS).then_some(e)
}

/// The XEP-0048 list in private storage.
async fn private_list(s: &Session) -> Result<Option<Element>, PepError> {
    let stored = s
        .shared
        .store
        .kv_get(private::NS, &s.bare, &private_key())
        .await?;
    Ok(stored.and_then(|b| parse(&b, "XEP-0048 bookmarks").and_then(a_list)))
}

/// The XEP-0048 list in the `storage:bookmarks` node (its newest item).
async fn pep_list(s: &Session) -> Result<Option<Element>, PepError> {
    let newest = items(s, LEGACY_NODE).await?.pop();
    Ok(newest.and_then(|i| parse(&i.payload, "XEP-0048 bookmarks").and_then(a_list)))
}

/// Puts `list` in private storage, unless it is there already.
async fn write_private(s: &Session, list: &Element) -> Result<(), PepError> {
    let bytes = list.to_bytes("");
    let store = &s.shared.store;
    if store.kv_get(private::NS, &s.bare, &private_key()).await? == Some(bytes.clone()) {
        return Ok(());
    }
    store
        .kv_put(private::NS, &s.bare, &private_key(), &bytes)
        .await?;
    Ok(())
}

/// Publishes `list` as the `storage:bookmarks` node's item `current`
/// (notified to the owner's sessions that ask for it), unless the node
/// holds it already.
async fn write_pep(s: &mut Session, list: &Element) -> Result<(), PepError> {
    let bytes = list.to_bytes("");
    if items(s, LEGACY_NODE).await?.last().map(|i| &i.payload) == Some(&bytes) {
        return Ok(());
    }
    keep_private(s, LEGACY_NODE).await?;
    pep::publish_item(s, LEGACY_NODE, Some("current"), list, None).await?;
    Ok(())
}

/// Before natterd writes into a bookmark node that exists: it must be
/// readable by the owner alone, persist its items and keep as many as a
/// bookmark node does (a node configured otherwise is set back, so that
/// what one client kept private never reaches contacts, and no room is
/// dropped to make space).
async fn keep_private(s: &mut Session, node: &str) -> Result<(), PepError> {
    let Some(bytes) = s.shared.store.pep_node(&s.bare, node).await? else {
        return Ok(()); // created with `defaults` when published to
    };
    let Some(want) = defaults(node) else {
        return Ok(());
    };
    let config = NodeConfig::from_bytes(&bytes);
    let mut fixed = config.clone();
    fixed.access_model = AccessModel::Whitelist;
    fixed.persist_items = true;
    if fixed.max_items.count() < want.max_items.count() {
        fixed.max_items = want.max_items;
    }
    if fixed != config {
        tracing::info!(owner = %s.bare, node, "bookmark node made private again");
        pep::configure_node(s, node, &fixed).await?;
    }
    Ok(())
}

/// Makes the XEP-0402 node hold `wanted`: a room that is new or changed is
/// published (keeping its item's `<extensions/>`), an unchanged one is
/// left alone (no notification), and with `retract`, a room that is no
/// longer wanted is retracted (notified). Items that do not read as
/// bookmarks are left alone.
async fn apply(s: &mut Session, wanted: &[Room], retract: bool) -> Result<(), PepError> {
    let current = native(s).await?;
    if !wanted.is_empty() {
        keep_private(s, NS).await?;
    }
    for room in wanted {
        let before = current.iter().find(|n| n.id == room.jid);
        if before.is_some_and(|n| n.room.as_ref() == Some(room)) {
            continue;
        }
        let extensions = before.and_then(|n| format::extensions_of(&n.payload));
        let payload = format::item_payload(room, extensions);
        pep::publish_item(s, NS, Some(&room.jid), &payload, None).await?;
    }
    if retract {
        for n in current.iter().filter(|n| n.room.is_some()) {
            if wanted.iter().any(|r| r.jid == n.id) {
                continue;
            }
            match pep::retract_item(s, NS, &n.id, Some(true)).await {
                Ok(()) | Err(PepError::ItemNotFound) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Writes both XEP-0048 copies: the XEP-0402 node's rooms, built on
/// `base` (the list as it was).
async fn rebuild(s: &mut Session, base: Option<&Element>) -> Result<(), PepError> {
    let rooms = rooms(native(s).await?);
    let list = format::legacy_list(&rooms, base);
    write_private(s, &list).await?;
    write_pep(s, &list).await
}

/// The XEP-0402 node changed (an item published or retracted, the node
/// configured, purged or deleted): both XEP-0048 copies follow.
pub(super) async fn native_changed(s: &mut Session) -> Result<(), PepError> {
    let base = match private_list(s).await? {
        Some(l) => Some(l),
        None => pep_list(s).await?,
    };
    rebuild(s, base.as_ref()).await
}

/// A client wrote this XEP-0048 list (checked) to private storage or to
/// the `storage:bookmarks` node: the XEP-0402 node gets its rooms, and
/// both copies hold the list as written.
pub(super) async fn legacy_written(s: &mut Session, list: &Element) -> Result<(), PepError> {
    let rooms = format::stored_legacy_rooms(list);
    apply(s, &rooms, true).await?;
    write_private(s, list).await?;
    write_pep(s, list).await
}

/// Brings an account's copies together the first time its bookmarks are
/// used (they may have been stored before natterd kept them in step): the
/// XEP-0402 node gets the rooms of the XEP-0048 lists it lacks (the
/// private list's first, then the PEP one's), and both lists are rebuilt
/// from it. Afterwards a mark in the store says it is done.
pub(super) async fn ensure_synced(s: &mut Session) -> Result<(), PepError> {
    let store = s.shared.store.clone();
    if store.kv_get(MARK_NS, &s.bare, MARK_KEY).await?.is_some() {
        return Ok(());
    }
    let legacy = format::merge_legacy(private_list(s).await?, pep_list(s).await?);
    let mut wanted = rooms(native(s).await?);
    let had_native = !wanted.is_empty();
    if let Some(list) = &legacy {
        for room in format::stored_legacy_rooms(list) {
            if !wanted.iter().any(|w| w.jid == room.jid) {
                wanted.push(room);
            }
        }
    }
    if wanted.len() > MAX_ROOMS {
        // More than natterd ever accepted: the XEP-0402 node takes what it
        // can hold, the XEP-0048 lists stay as they are for now.
        tracing::warn!(
            owner = %s.bare,
            rooms = wanted.len(),
            "more bookmarked rooms than {MAX_ROOMS}; only the first are in XEP-0402"
        );
        wanted.truncate(MAX_ROOMS);
        apply(s, &wanted, false).await?;
    } else if legacy.is_some() || had_native {
        apply(s, &wanted, false).await?;
        rebuild(s, legacy.as_ref()).await?;
    }
    store.kv_put(MARK_NS, &s.bare, MARK_KEY, b"1").await?;
    Ok(())
}
