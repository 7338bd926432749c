//! Private XML storage (XEP-0049): an account keeps elements on the server
//! that only it can read, one per (element name, namespace). Stored in the
//! key-value space, namespace [`NS`], key `"{name} {namespace}"`.
//!
//! The XEP-0048 bookmarks list (`<storage xmlns='storage:bookmarks'/>`)
//! goes through `modules/bookmarks`, which checks it and keeps it in step
//! with the account's XEP-0402 bookmarks.

use super::bookmarks;
use super::iq::Reply;
use crate::c2s::session::Session;
use natter_xml::{Element, Stanza};

pub const NS: &str = "jabber:iq:private";

/// Elements one account may keep.
pub const MAX_ENTRIES: usize = 100;

/// Namespaces XEP-0049 §2 reserves: `jabber:*` (`jabber:client`,
/// `jabber:server`, `jabber:iq:private` and the rest), `http://jabber.org/*`
/// and `vcard-temp`.
pub fn reserved(namespace: &str) -> bool {
    namespace.starts_with("jabber:")
        || namespace.starts_with("http://jabber.org/")
        || namespace == "vcard-temp"
        || namespace.is_empty()
}

/// The key an element is stored under.
pub(crate) fn key(name: &str, namespace: &str) -> String {
    format!("{name} {namespace}")
}

/// A get or set of private data; `own` is whether it is addressed to the
/// sender's own account.
pub async fn handle(s: &mut Session, st: &Stanza, own: bool, set: bool) -> Reply {
    if !own {
        return Reply::Error(
            "auth",
            "forbidden",
            Some("private data belongs to its owner alone".into()),
        );
    }
    let Ok(el) = st.element() else {
        return Reply::bad_request("unreadable private storage query");
    };
    let Some(query) = el.get_child("query", NS) else {
        return Reply::bad_request("missing query");
    };
    let children: Vec<&Element> = query.elements().collect();
    if children.is_empty() {
        return Reply::Error(
            "modify",
            "not-acceptable",
            Some("name the element to get or set inside <query/>".into()),
        );
    }
    if let Some(bad) = children.iter().find(|c| reserved(&c.ns)) {
        return Reply::Error(
            "modify",
            "not-acceptable",
            Some(format!("the namespace '{}' is reserved", bad.ns)),
        );
    }
    if set {
        store(s, &children).await
    } else {
        let [child] = children.as_slice() else {
            return Reply::bad_request("get one element at a time");
        };
        get(s, child).await
    }
}

async fn get(s: &mut Session, child: &Element) -> Reply {
    if bookmarks::is_private_list(child) {
        if let Err(reply) = bookmarks::before_private_read(s).await {
            return reply;
        }
    }
    let k = key(&child.name, &child.ns);
    let found = s.shared.store.kv_get(NS, &s.bare, &k).await;
    let stored = match found {
        Ok(Some(bytes)) => match Stanza::parse(&bytes, "").and_then(|c| c.element()) {
            Ok(e) => e,
            Err(_) => return Reply::error("wait", "internal-server-error"),
        },
        // Nothing kept: the element comes back empty.
        Ok(None) => Element::new(&child.name, &child.ns),
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    Reply::Result(Some(Element::new("query", NS).with_child(stored)))
}

async fn store(s: &mut Session, children: &[&Element]) -> Reply {
    for list in children.iter().filter(|c| bookmarks::is_private_list(c)) {
        if let Err(reply) = bookmarks::check_private(list) {
            return reply;
        }
    }
    let store = s.shared.store.clone();
    let existing = match store.kv_list(NS, &s.bare).await {
        Ok(l) => l.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        Err(_) => return Reply::error("wait", "internal-server-error"),
    };
    let mut keys: Vec<String> = Vec::new();
    for c in children {
        let k = key(&c.name, &c.ns);
        if keys.contains(&k) {
            return Reply::bad_request("one element per name and namespace");
        }
        keys.push(k);
    }
    let new = keys.iter().filter(|k| !existing.contains(k)).count();
    if existing.len() + new > MAX_ENTRIES {
        return Reply::Error(
            "wait",
            "resource-constraint",
            Some(format!("at most {MAX_ENTRIES} private elements")),
        );
    }
    // Each element is bounded by the stanza it came in
    // (`[c2s] max_stanza_bytes`).
    for (c, k) in children.iter().zip(&keys) {
        if bookmarks::is_private_list(c) {
            if let Err(reply) = bookmarks::store_private(s, c).await {
                return reply;
            }
        } else if store.kv_put(NS, &s.bare, k, &c.to_bytes("")).await.is_err() {
            return Reply::error("wait", "internal-server-error");
        }
    }
    Reply::Result(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_namespaces() {
        for ns in [
            "jabber:client",
            "jabber:server",
            "jabber:iq:private",
            "jabber:iq:roster",
            "http://jabber.org/protocol/disco#info",
            "vcard-temp",
        ] {
            assert!(reserved(ns), "{ns}");
        }
        for ns in ["storage:bookmarks", "exodus:prefs", "urn:xmpp:bookmarks:1"] {
            assert!(!reserved(ns), "{ns}");
        }
    }
}
