//! Last activity (XEP-0012): server uptime, and how long ago a contact was
//! last online.

use super::iq::Reply;
use crate::c2s::session::Session;
use crate::{ns, util};
use natter_xml::Element;

pub fn server_uptime(s: &Session) -> Reply {
    let secs = s.shared.started.elapsed().as_secs();
    Reply::Result(Some(
        Element::new("query", ns::LAST).with_attr("seconds", secs.to_string()),
    ))
}

/// The contact's last logout, if its last-seen setting lets the asker see it.
pub async fn of_contact(s: &Session, contact: &str) -> Reply {
    let store = &s.shared.store;
    match store.account_exists(contact).await {
        Ok(true) => {}
        Ok(false) => return Reply::service_unavailable(),
        Err(_) => return Reply::error("wait", "internal-server-error"),
    }
    // Who may see it is the contact's choice (`last_seen`); a blocked
    // asker was refused before (`blocking::refuse_iq`).
    match super::last_seen::allows(s, contact, &s.bare).await {
        Ok(true) => {}
        Ok(false) => return Reply::error("auth", "forbidden"),
        Err(_) => return Reply::error("wait", "internal-server-error"),
    }
    if !s.shared.router.available(contact).is_empty() {
        return Reply::Result(Some(
            Element::new("query", ns::LAST).with_attr("seconds", "0"),
        ));
    }
    match store.last_activity(contact).await {
        Ok(Some((at, status))) => {
            let now = util::now_unix_ms() / 1000;
            let mut q = Element::new("query", ns::LAST)
                .with_attr("seconds", now.saturating_sub(at).to_string());
            if !status.is_empty() {
                q = q.with_text(status);
            }
            Reply::Result(Some(q))
        }
        Ok(None) => Reply::error("cancel", "item-not-found"),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}
