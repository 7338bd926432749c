//! The blocklist IQs (get, block, unblock), the pushes to the resources
//! that asked for the list, and the presence that blocking and unblocking
//! hide or show again.

use super::lists::item_covers;
use super::{List, MAX_ITEMS, NS};
use crate::c2s::session::Session;
use crate::modules::iq::Reply;
use crate::{ns, util};
use natter_store::Subscription;
use natter_xml::{Element, Stanza};
use std::sync::Arc;

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
