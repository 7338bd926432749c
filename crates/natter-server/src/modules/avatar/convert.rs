//! The two conversions of XEP-0398 §3: a metadata publish into the vCard's
//! photo, a vCard's photo into the avatar nodes. Both write the other side
//! directly (the store, [`pep::publish_item`]), so neither starts the
//! other.

use super::image::{self, hex, Image};
use super::{NS_DATA, NS_METADATA};
use crate::c2s::session::Session;
use crate::modules::iq::Reply;
use crate::modules::pep::{self, AccessModel, PepError, Setting, Settings};
use crate::ns::VCARD;
use natter_store::StoreError;
use natter_xml::{Element, Stanza};

/// A stored vCard as an element.
pub fn parse_vcard(bytes: &[u8]) -> Result<Element, ()> {
    Stanza::parse(bytes, "")
        .and_then(|c| c.element())
        .map_err(|e| tracing::error!(error = %e, "unreadable stored vCard"))
}

/// What a metadata publish does to the vCard: `Some(Some(image))` puts
/// the image in, `Some(None)` takes the photo out, `None` leaves the vCard
/// alone. Checked before anything is published: a data item that is not
/// an image in base64, or not the one the id names, is `bad-request`.
pub async fn pep_change(s: &Session, metadata: &Element) -> Result<Option<Option<Image>>, Reply> {
    let infos: Vec<&Element> = metadata
        .elements()
        .filter(|e| e.name == "info" && e.ns == NS_METADATA)
        .collect();
    if infos.is_empty() {
        return Ok(Some(None));
    }
    // XEP-0398 §3.1: the info that does not point to an external URL.
    let Some(info) = infos.iter().find(|i| i.attr("url").is_none()) else {
        return Ok(None);
    };
    let Some(id) = info.attr("id").filter(|i| !i.is_empty()) else {
        return Ok(None);
    };
    let items = match s
        .shared
        .store
        .pep_items(&s.bare, NS_DATA, &[id.to_owned()], None)
        .await
    {
        Ok(items) => items,
        Err(StoreError::NotFound) => Vec::new(),
        Err(e) => return Err(PepError::from(e).reply()),
    };
    let Some(item) = items.into_iter().next() else {
        tracing::debug!(
            id,
            "avatar metadata names no stored data item: vCard unchanged"
        );
        return Ok(None);
    };
    let payload = Stanza::parse(&item.payload, "")
        .and_then(|p| p.element())
        .map_err(|_| PepError::Internal.reply())?;
    let Some(img) = image::from_data(&payload, info.attr("type")) else {
        return Err(Reply::bad_request(&format!(
            "the avatar data item '{id}' is not an image in base64 (<data xmlns='{NS_DATA}'/>)"
        )));
    };
    let sha1 = hex(&img.hash());
    if !sha1.eq_ignore_ascii_case(id) {
        return Err(Reply::bad_request(&format!(
            "the SHA-1 of avatar data item '{id}' is {sha1}: the id must be the image's SHA-1"
        )));
    }
    Ok(Some(Some(img)))
}

/// Puts `image` in the owner's vCard photo (None: takes it out), keeping
/// the rest, and sets the hash. The vCard size limit is for what clients
/// send: the image here is bounded by the stanza size it was published in.
pub async fn to_vcard(s: &Session, image: Option<&Image>) {
    let store = &s.shared.store;
    let card = match store.vcard(&s.bare).await {
        Ok(Some(bytes)) => match parse_vcard(&bytes) {
            Ok(card) => Some(card),
            Err(()) => return,
        },
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "vCard read for the avatar conversion failed");
            return;
        }
    };
    let new = match (card, image) {
        (Some(card), _) => image::with_photo(&card, image),
        (None, Some(_)) => image::with_photo(&Element::new("vCard", VCARD), image),
        (None, None) => {
            s.shared.avatars.set(&s.bare, None);
            return;
        }
    };
    match store.set_vcard(&s.bare, &new.to_bytes("")).await {
        Ok(()) => s.shared.avatars.set(&s.bare, image.map(Image::hash)),
        Err(e) => tracing::error!(error = %e, "vCard write of the avatar conversion failed"),
    }
}

/// Publishes `image` to the avatar nodes (None: an empty metadata, when
/// the metadata names an image), unless the metadata says so already.
pub async fn to_pep(s: &mut Session, image: Option<&Image>) {
    let store = s.shared.store.clone();
    let newest = match store.pep_items(&s.bare, NS_METADATA, &[], Some(1)).await {
        Ok(items) => items.into_iter().next(),
        Err(StoreError::NotFound) => None,
        Err(e) => {
            tracing::error!(error = %e, "avatar metadata read failed");
            return;
        }
    };
    let names_image = newest.as_ref().is_some_and(|i| {
        Stanza::parse(&i.payload, "")
            .and_then(|p| p.element())
            .is_ok_and(|m| m.elements().any(|e| e.name == "info"))
    });
    let result = match image {
        Some(img) => {
            let id = hex(&img.hash());
            if names_image && newest.is_some_and(|i| i.id == id) {
                return;
            }
            match publish(s, NS_DATA, Some(&id), &img.data()).await {
                Ok(()) => publish(s, NS_METADATA, Some(&id), &img.metadata()).await,
                Err(e) => Err(e),
            }
        }
        None if names_image => {
            publish(s, NS_METADATA, None, &Element::new("metadata", NS_METADATA)).await
        }
        None => return,
    };
    if let Err(e) = result {
        tracing::warn!(error = ?e, account = %s.bare, "vCard photo not published to PEP");
    }
}

/// Publishes to one of the owner's avatar nodes: a node that does not
/// exist is created open, one that does keeps its configuration.
async fn publish(
    s: &mut Session,
    node: &str,
    id: Option<&str>,
    payload: &Element,
) -> Result<(), PepError> {
    let exists = s.shared.store.pep_node(&s.bare, node).await?.is_some();
    let open = Settings::of([Setting::AccessModel(AccessModel::Open)]);
    let options = (!exists).then_some(&open);
    pep::publish_item(s, node, id, payload, options).await?;
    Ok(())
}
