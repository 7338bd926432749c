//! Last activity (XEP-0012): server uptime, and how long ago a contact was
//! last online.

use super::iq::Reply;
use super::roster::subscription_of;
use crate::c2s::session::Session;
use crate::{ns, util};
use natter_store::Subscription;
use natter_xml::Element;

pub fn server_uptime(s: &Session) -> Reply {
    let secs = s.shared.started.elapsed().as_secs();
    Reply::Result(Some(
        Element::new("query", ns::LAST).with_attr("seconds", secs.to_string()),
    ))
}

/// The contact's last logout, if the asker is subscribed to its presence.
pub async fn of_contact(s: &Session, contact: &str) -> Reply {
    let store = &s.shared.store;
    match store.account_exists(contact).await {
        Ok(true) => {}
        Ok(false) => return Reply::service_unavailable(),
        Err(_) => return Reply::error("wait", "internal-server-error"),
    }
    let sub = subscription_of(s, &s.bare, contact).await;
    if !matches!(sub, Some(Subscription::To | Subscription::Both)) {
        return Reply::error("auth", "forbidden");
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
