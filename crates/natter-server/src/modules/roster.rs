//! Roster management (RFC 6121 §2) with versioning (XEP-0237) and pushes.

use super::iq::Reply;
use super::subscription::{self, Kind};
use crate::c2s::session::Session;
use crate::{ns, util};
use natter_store::{RosterItem, StoreError, Subscription};
use natter_xml::{Element, Stanza};
use std::sync::Arc;

/// Roster items one account may have.
const MAX_ITEMS: usize = 10_000;

pub fn item_element(item: &RosterItem) -> Element {
    let mut e = Element::new("item", ns::ROSTER)
        .with_attr("jid", item.jid.clone())
        .with_attr("subscription", item.subscription.as_str());
    if let Some(n) = &item.name {
        e.set_attr("name", n.clone());
    }
    if item.ask_out {
        e.set_attr("ask", "subscribe");
    }
    if item.approved {
        e.set_attr("approved", "true");
    }
    for g in &item.groups {
        e.push_child(Element::new("group", ns::ROSTER).with_text(g.clone()));
    }
    e
}

/// The subscription `owner` has with `contact`, if any item exists.
pub async fn subscription_of(s: &Session, owner: &str, contact: &str) -> Option<Subscription> {
    s.shared
        .store
        .roster_item(owner, contact)
        .await
        .ok()
        .flatten()
        .map(|i| i.subscription)
}

/// Roster get and set.
pub async fn handle(s: &mut Session, st: &Stanza, set: bool) -> Reply {
    let Ok(el) = st.element() else {
        return Reply::bad_request("unreadable roster query");
    };
    let Some(query) = el.get_child("query", ns::ROSTER) else {
        return Reply::bad_request("missing query");
    };
    if !set {
        return get(s, query).await;
    }
    let items: Vec<&Element> = query.elements().collect();
    let [item] = items.as_slice() else {
        return Reply::bad_request("a roster set carries exactly one item");
    };
    if item.name != "item" || item.ns != ns::ROSTER {
        return Reply::bad_request("expected <item/>");
    }
    let contact = match item.attr("jid").map(jid::Jid::new) {
        Some(Ok(j)) if j.resource().is_none() => j.as_str().to_owned(),
        _ => return Reply::bad_request("item needs a bare 'jid'"),
    };
    if item.attr("subscription") == Some("remove") {
        return remove(s, &contact).await;
    }
    let mut groups: Vec<String> = Vec::new();
    for g in item.elements().filter(|g| g.name == "group") {
        let name = g.text();
        if name.is_empty() {
            return Reply::Error("modify", "not-acceptable", Some("empty group name".into()));
        }
        if groups.contains(&name) {
            return Reply::bad_request("duplicate group");
        }
        groups.push(name);
    }
    let store = &s.shared.store;
    let existing = match crate::metrics::store_op(1, store.roster_item(&s.bare, &contact)).await {
        Ok(i) => i,
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    if existing.as_ref().is_none_or(|i| !i.in_roster) {
        match crate::metrics::store_op(1, store.roster(&s.bare)).await {
            Ok((_, all)) if all.iter().filter(|i| i.in_roster).count() >= MAX_ITEMS => {
                return Reply::Error("wait", "resource-constraint", Some("roster is full".into()))
            }
            Err(_) => return Reply::error("wait", "internal-server-error"),
            _ => {}
        }
    }
    let mut new = existing.unwrap_or_else(|| RosterItem {
        jid: contact.clone(),
        ..RosterItem::default()
    });
    new.name = item
        .attr("name")
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    new.groups = groups;
    new.in_roster = true;
    let owner = s.bare.clone();
    match save_and_push(s, &owner, &new).await {
        Ok(()) => Reply::Result(None),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}

async fn get(s: &mut Session, query: &Element) -> Reply {
    let (ver, items) = match crate::metrics::store_op(1, s.shared.store.roster(&s.bare)).await {
        Ok(r) => r,
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    let ver = ver.to_string();
    if query.attr("ver") == Some(ver.as_str()) {
        return Reply::Result(None);
    }
    let mut q = Element::new("query", ns::ROSTER).with_attr("ver", ver);
    for i in items.iter().filter(|i| i.in_roster) {
        q.push_child(item_element(i));
    }
    Reply::Result(Some(q))
}

async fn remove(s: &mut Session, contact: &str) -> Reply {
    let item = match crate::metrics::store_op(1, s.shared.store.roster_item(&s.bare, contact)).await
    {
        Ok(Some(i)) if i.in_roster => i,
        Ok(_) => return Reply::error("cancel", "item-not-found"),
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    let me = s.bare.clone();
    if matches!(item.subscription, Subscription::To | Subscription::Both) || item.ask_out {
        subscription::to_contact(s, Kind::Unsubscribe, &me, contact, None).await;
    }
    if matches!(item.subscription, Subscription::From | Subscription::Both) || item.pending_in {
        subscription::to_contact(s, Kind::Unsubscribed, &me, contact, None).await;
        subscription::send_unavailable(s, &me, contact);
    }
    let store = s.shared.store.clone();
    let ver = match store.roster_remove(&me, contact).await {
        Ok(v) => v,
        Err(StoreError::NotFound) => store.roster(&me).await.map(|(v, _)| v).unwrap_or(0),
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    let removed = Element::new("item", ns::ROSTER)
        .with_attr("jid", contact)
        .with_attr("subscription", "remove");
    push(s, &me, removed, ver);
    Reply::Result(None)
}

/// Stores `item` in `owner`'s roster and pushes it to every session of
/// `owner`; a hidden record with nothing left in it is deleted instead.
pub async fn save_and_push(
    s: &mut Session,
    owner: &str,
    item: &RosterItem,
) -> Result<(), StoreError> {
    let store = s.shared.store.clone();
    let empty = !item.in_roster
        && !item.pending_in
        && !item.ask_out
        && !item.approved
        && item.subscription == Subscription::None;
    if empty {
        return match store.roster_remove(owner, &item.jid).await {
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        };
    }
    let ver = crate::metrics::store_op(1, store.roster_put(owner, item)).await?;
    if item.in_roster {
        push(s, owner, item_element(item), ver);
    }
    Ok(())
}

/// Sends a roster push of `item` to every session of `owner`.
pub fn push(s: &mut Session, owner: &str, item: Element, ver: u64) {
    let query = Element::new("query", ns::ROSTER)
        .with_attr("ver", ver.to_string())
        .with_child(item);
    let payload = query.to_bytes(ns::CLIENT);
    for e in s.shared.router.sessions(owner) {
        let mut out = Vec::with_capacity(payload.len() + 100);
        out.extend_from_slice(b"<iq type='set' id='push-");
        out.extend_from_slice(util::random_id().as_bytes());
        out.extend_from_slice(b"' to='");
        natter_xml::escape_attr(&format!("{owner}/{}", e.resource), &mut out);
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
