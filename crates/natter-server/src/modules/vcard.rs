//! vCard-temp (XEP-0054): anyone may read an account's vCard; only its owner
//! may change it. Its photo is the account's avatar, kept the same as its
//! PEP avatar (XEP-0398, `modules/avatar`).

use super::avatar::{self, Photo};
use super::iq::Reply;
use crate::c2s::session::Session;
use crate::ns;
use natter_xml::{Element, Stanza};

/// Largest vCard kept, in bytes of XML.
const MAX_VCARD: usize = 128 * 1024;

pub async fn handle(s: &mut Session, st: &Stanza, owner: &str, set: bool) -> Reply {
    let store = &s.shared.store;
    if set {
        if owner != s.bare {
            return Reply::error("auth", "forbidden");
        }
        let Ok(el) = st.element() else {
            return Reply::bad_request("unreadable vCard");
        };
        let Some(card) = el.get_child("vCard", ns::VCARD) else {
            return Reply::bad_request("missing vCard");
        };
        let bytes = card.to_bytes("");
        if bytes.len() > MAX_VCARD {
            return Reply::error("modify", "not-acceptable");
        }
        let photo = match avatar::photo_of(card) {
            Photo::Bad => {
                return Reply::bad_request("the vCard's PHOTO BINVAL is not base64");
            }
            photo => photo,
        };
        let shared = s.shared.clone();
        let _one_at_a_time = shared.avatars.lock(owner).await;
        return match crate::metrics::store_op(4, shared.store.set_vcard(owner, &bytes)).await {
            Ok(()) => {
                avatar::vcard_stored(s, photo).await;
                Reply::Result(None)
            }
            Err(_) => Reply::error("wait", "internal-server-error"),
        };
    }
    if owner != s.bare {
        match store.account_exists(owner).await {
            Ok(true) => {}
            Ok(false) => return Reply::service_unavailable(),
            Err(_) => return Reply::error("wait", "internal-server-error"),
        }
    }
    match crate::metrics::store_op(4, store.vcard(owner)).await {
        Ok(Some(bytes)) => match natter_xml::Stanza::parse(&bytes, "").and_then(|c| c.element()) {
            Ok(card) => Reply::Result(Some(card)),
            Err(_) => Reply::error("wait", "internal-server-error"),
        },
        Ok(None) => Reply::Result(Some(Element::new("vCard", ns::VCARD))),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}
