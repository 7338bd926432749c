//! In-band registration (XEP-0077), only for what a logged-in account may
//! do: ask whether it is registered, and remove itself (§3.2). Accounts are
//! created by the administrator (`natterd user add`): registering new ones
//! in-band is refused and not advertised.
//!
//! Removal deletes everything of the account (`Store::delete_account`),
//! cancels its subscriptions both ways as RFC 6121 §3.2–3.3 would (the
//! contacts' rosters are updated and pushed, they see it go unavailable),
//! and ends every session of it with the stream error `not-authorized`.

use super::iq::Reply;
use super::subscription::{self, Kind};
use crate::c2s::session::Session;
use crate::mailbox::Outbound;
use crate::util;
use natter_store::Subscription;
use natter_xml::{Element, Stanza};
use std::sync::Arc;

pub const NS: &str = "jabber:iq:register";

/// The register query from a logged-in client (to its own account or the
/// server).
pub async fn handle(s: &mut Session, st: &Stanza, own: bool, set: bool) -> Reply {
    if !own {
        return Reply::Error(
            "auth",
            "forbidden",
            Some("an account can only be removed by itself".into()),
        );
    }
    if !set {
        let local = s.bare.split('@').next().unwrap_or_default().to_owned();
        return Reply::Result(Some(
            Element::new("query", NS)
                .with_child(Element::new("registered", NS))
                .with_child(Element::new("username", NS).with_text(local)),
        ));
    }
    let Ok(el) = st.element() else {
        return Reply::bad_request("unreadable register query");
    };
    let Some(query) = el.get_child("query", NS) else {
        return Reply::bad_request("missing query");
    };
    if query.get_child("remove", NS).is_none() {
        return Reply::Error(
            "cancel",
            "not-allowed",
            Some("accounts are managed by the administrator; only <remove/> is accepted".into()),
        );
    }
    remove(s).await
}

/// Removes the session's account.
async fn remove(s: &mut Session) -> Reply {
    let me = s.bare.clone();
    let store = s.shared.store.clone();
    let items = match store.roster(&me).await {
        Ok((_, items)) => items,
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    // Subscriptions end as if the account cancelled each one: the
    // contacts' items are updated and pushed, and those who saw it online
    // see it go.
    for item in &items {
        if matches!(item.subscription, Subscription::From | Subscription::Both) || item.pending_in {
            subscription::send_unavailable(s, &me, &item.jid);
            subscription::to_contact(s, Kind::Unsubscribed, &me, &item.jid, None).await;
        }
        if matches!(item.subscription, Subscription::To | Subscription::Both) || item.ask_out {
            subscription::to_contact(s, Kind::Unsubscribe, &me, &item.jid, None).await;
        }
    }
    match store.delete_account(&me).await {
        Ok(()) | Err(natter_store::StoreError::NotFound) => {}
        Err(e) => {
            tracing::error!(error = %e, jid = %me, "account removal failed");
            return Reply::error("wait", "internal-server-error");
        }
    }
    s.shared.blocking.forget(&me).await;
    s.shared.avatars.forget(&me);
    tracing::info!(jid = %me, "account removed by its owner");
    // Every session ends, this one after the result is written.
    for e in s.shared.router.sessions(&me) {
        e.mailbox.deliver(Outbound::AccountRemoved);
    }
    Reply::Result(None)
}

/// A session whose account was removed: it leaves quietly (no last
/// activity is written for an account that is gone); directed presence
/// still hears that it went.
pub fn session_removed(s: &mut Session) {
    s.shared.router.set_presence(&s.bare, s.conn_id, None);
    if s.available {
        let mut b = b"<presence type='unavailable' from='".to_vec();
        natter_xml::escape_attr(&s.full, &mut b);
        b.extend_from_slice(b"'/>");
        let b: Arc<[u8]> = b.into();
        for target in std::mem::take(&mut s.directed) {
            let Ok(j) = jid::Jid::new(&target) else {
                continue;
            };
            let bare = j.to_bare();
            for e in s.shared.router.sessions(bare.as_str()) {
                let matches = j.resource().is_none_or(|r| r.as_str() == e.resource);
                if e.available && matches {
                    e.mailbox.stanza(&b);
                }
            }
        }
    }
    s.available = false;
}

/// Whether a stanza sent before authentication is an in-band registration
/// request.
pub fn is_registration(st: &Stanza) -> bool {
    st.name() == "iq" && st.has_child("query", NS)
}

/// The answer to in-band registration before authentication: natter does
/// not offer it (XEP-0077 §3.1: accounts come from the administrator).
pub fn refuse_registration(st: &Stanza) -> Vec<u8> {
    let id = st.id().map(|i| i.into_owned()).unwrap_or_default();
    util::iq_error_bytes(
        &id,
        None,
        "cancel",
        "service-unavailable",
        Some("in-band registration is not offered; ask the administrator for an account"),
    )
}
