//! Avatars: PEP avatars (XEP-0084) and vCard avatars (XEP-0153) kept
//! consistent by the server, as XEP-0398 says.
//!
//! User avatars and nicknames (XEP-0172) are ordinary PEP nodes
//! (`modules/pep`); this module adds the conversion between the two
//! avatar stores and the hash in presence:
//!
//! - PEP → vCard: when the owner publishes `urn:xmpp:avatar:metadata`, the
//!   image its `<info/>` names (the first one without a `url`) is read from
//!   `urn:xmpp:avatar:data` and put in the vCard's `<PHOTO/>`, the rest of
//!   the vCard kept; an empty `<metadata/>` (avatar disabled) removes the
//!   photo. A data item that is not base64, or whose SHA-1 is not the id,
//!   is `bad-request` and nothing is published. An `<info/>` naming no
//!   stored item (the image is elsewhere) changes nothing.
//! - vCard → PEP: a vCard set with a `<PHOTO/>` publishes the image to
//!   `urn:xmpp:avatar:data` and its `<info/>` to `urn:xmpp:avatar:metadata`
//!   (item ids: its SHA-1), unless the metadata already names it; nodes
//!   that do not exist are created with access model `open` (a vCard is
//!   public), existing ones keep theirs. A vCard without a photo publishes
//!   an empty `<metadata/>` when the metadata named an image. A `BINVAL`
//!   that is not base64 is `bad-request` and nothing is stored.
//! - Presence: every available presence of the account's sessions
//!   (broadcast, reflected, kept for probes, directed) carries
//!   `<x xmlns='vcard-temp:x:update'><photo>HASH</photo></x>` with the
//!   current hash, or an empty `<photo/>`; see [`stamp`] for what happens
//!   to the client's own. When the avatar changes nothing is re-sent
//!   (XEP-0398 §5): the next presence carries the new hash, PEP
//!   notifications go out as for any publish.
//!
//! No loops: the conversions are started by the client's requests (the
//! publish IQ, the vCard set) and write the other side with the store and
//! [`pep::publish_item`], which start none. One account's conversions run
//! one at a time ([`Hashes::lock`]).
//!
//! Layout: `image.rs` — the image in a vCard, a data item, a metadata
//! info; `stamp.rs` — the hash in presence; `hashes.rs` — the hashes in
//! memory and the locks; `convert.rs` — the two conversions; this file —
//! what other modules call.

mod convert;
mod hashes;
mod image;
mod stamp;

pub use hashes::Hashes;
pub use image::{photo_of, Photo};

use super::iq::Reply;
use super::pep;
use crate::c2s::session::Session;
use crate::server::Shared;
use hashes::Current;
use natter_xml::{Element, Stanza};

/// XEP-0084 avatar data node and payload namespace.
pub const NS_DATA: &str = "urn:xmpp:avatar:data";
/// XEP-0084 avatar metadata node and payload namespace.
pub const NS_METADATA: &str = "urn:xmpp:avatar:metadata";
/// XEP-0153 presence update.
pub const NS_UPDATE: &str = "vcard-temp:x:update";
/// XEP-0398, in the account's disco#info.
pub const NS_CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";

/// An available presence (broadcast or directed) of the session's client,
/// ready to send: `from` set, the avatar hash stamped. Unstamped if the
/// hash cannot be read (the store failed).
pub async fn presence(s: &Session, st: &Stanza) -> Vec<u8> {
    match current(&s.shared, &s.bare).await {
        Some(hash) => stamp::stamped(st, &s.full, hash.as_ref()),
        None => st.rewrite(Some(&s.full), None, &[], b""),
    }
}

/// The account's avatar hash: from memory, or read from its vCard once.
/// None if the store failed.
async fn current(shared: &Shared, account: &str) -> Option<Current> {
    if let Some(c) = shared.avatars.get(account) {
        return Some(c);
    }
    let ticket = shared.avatars.ticket();
    let card = match shared.store.vcard(account).await {
        Ok(card) => card,
        Err(e) => {
            tracing::error!(error = %e, "vCard read for the avatar hash failed");
            return None;
        }
    };
    let hash = match card.map(|b| convert::parse_vcard(&b)) {
        None => None,
        Some(Ok(card)) => match photo_of(&card) {
            Photo::Image(i) => Some(i.hash()),
            Photo::None | Photo::Bad => None,
        },
        Some(Err(())) => return None,
    };
    shared.avatars.loaded(account, ticket, hash);
    Some(hash)
}

/// A pubsub set from the client to its own account: a publish to
/// `urn:xmpp:avatar:metadata` is converted to the vCard (see the module
/// docs); everything goes to PEP.
pub async fn pubsub_set(s: &mut Session, st: &Stanza) -> Reply {
    let owner = s.bare.clone();
    let el = match st.element() {
        Ok(el) => el,
        Err(_) => return pep::handle(s, st, &owner, true).await,
    };
    let Some(metadata) = metadata_published(&el) else {
        return pep::handle(s, st, &owner, true).await;
    };
    let shared = s.shared.clone();
    let _one_at_a_time = shared.avatars.lock(&owner).await;
    let change = match convert::pep_change(s, metadata).await {
        Ok(change) => change,
        Err(reply) => return reply,
    };
    let reply = pep::handle(s, st, &owner, true).await;
    if let (Reply::Result(_), Some(image)) = (&reply, change) {
        convert::to_vcard(s, image.as_ref()).await;
    }
    reply
}

/// The `<metadata/>` payload of a publish to `urn:xmpp:avatar:metadata`
/// (one item with one payload; anything else is left to PEP).
fn metadata_published(el: &Element) -> Option<&Element> {
    let publish = el
        .get_child("pubsub", pep::NS)?
        .get_child("publish", pep::NS)
        .filter(|p| p.attr("node") == Some(NS_METADATA))?;
    let mut items = publish
        .elements()
        .filter(|e| e.name == "item" && e.ns == pep::NS);
    let item = items.next().filter(|_| items.next().is_none())?;
    let mut payloads = item.elements();
    let payload = payloads.next().filter(|_| payloads.next().is_none())?;
    (payload.name == "metadata" && payload.ns == NS_METADATA).then_some(payload)
}

/// The owner stored a vCard with `photo` (under the lock): the hash is
/// set and the image published to PEP.
pub async fn vcard_stored(s: &mut Session, photo: Photo) {
    let image = match photo {
        Photo::Image(i) => Some(i),
        Photo::None | Photo::Bad => None,
    };
    s.shared
        .avatars
        .set(&s.bare, image.as_ref().map(|i| i.hash()));
    convert::to_pep(s, image.as_ref()).await;
}
