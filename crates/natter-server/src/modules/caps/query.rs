//! A session's side of XEP-0115: the `<c/>` of its available presence, the
//! disco#info queries sent to its client and their answers, and the
//! features set in its router entry.
//!
//! The router entry holds the features of the string the session last
//! announced, once known, and nothing while they are not (being asked,
//! or the answer was an error, never came or was ill-formed).

use super::cache::{Key, Lookup};
use super::verify::{self, Algo};
use super::Features;
use crate::c2s::session::Session;
use crate::ns;
use natter_xml::{escape_attr, Element, Node, Stanza};
use std::sync::Arc;

/// disco#info queries a session may have unanswered at once; one more
/// forgets the oldest (its answer is then ignored).
pub const MAX_PENDING: usize = 4;
/// Longest `node` and `ver` taken; a longer one makes the `<c/>` malformed.
const MAX_NODE: usize = 1024;
const MAX_VER: usize = 256;

/// What a session's client announced and was asked (boxed in `Session`,
/// absent until its client sends `<c/>`).
#[derive(Debug, Default)]
pub struct SessionCaps {
    /// The `<c/>` of its latest available presence that had one.
    announced: Option<Announced>,
    /// What its router entry holds.
    current: Option<Arc<Features>>,
    /// The features PEP last heard of for this session (kept while a
    /// changed string is asked, so PEP sends only what the new features
    /// add).
    told: Option<Arc<Features>>,
    /// Queries sent to its client, oldest first.
    pending: Vec<Pending>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Announced {
    node: String,
    ver: String,
    hash: Option<String>,
    /// The cache key when `hash` names a function natterd checks; None for
    /// legacy caps (no `hash`) and unknown functions: those answers are
    /// used for this session only, never cached (XEP-0115 §5.4 steps 1-2).
    key: Option<Arc<Key>>,
}

#[derive(Debug)]
struct Pending {
    id: String,
    announced: Announced,
}

/// Takes the `<c/>` of available presence `st` from the client (initial or
/// an update), after the presence itself was handled, so the session is
/// available in the router before PEP hears of its capabilities. A
/// presence without `<c/>` changes nothing; a malformed one is ignored.
pub async fn presence(s: &mut Session, st: &Stanza) {
    let Some(c) = st.child("c", ns::CAPS) else {
        return;
    };
    let attr = |name, max: usize| {
        c.attr(st, name)
            .map(|v| v.into_owned())
            .filter(|v| !v.is_empty() && v.len() <= max)
    };
    let (Some(node), Some(ver)) = (attr("node", MAX_NODE), attr("ver", MAX_VER)) else {
        tracing::debug!(jid = %s.full, "ignored a <c/> without a usable node or ver");
        return;
    };
    let hash = attr("hash", MAX_VER);
    let key = hash.as_deref().and_then(Algo::parse).map(|algo| {
        Arc::new(Key {
            algo,
            ver: ver.as_str().into(),
        })
    });
    let announced = Announced {
        node,
        ver,
        hash,
        key,
    };
    let state = s.caps.get_or_insert_default();
    if state.announced.as_ref() == Some(&announced) {
        return;
    }
    state.announced = Some(announced.clone());
    resolve(s, announced).await;
}

/// Sets the features of `announced` if they are known, or asks.
async fn resolve(s: &mut Session, announced: Announced) {
    let Some(key) = announced.key.clone() else {
        set(s, None).await;
        let id = s.shared.caps.next_id();
        ask(s, id, announced);
        return;
    };
    match s.shared.caps.lookup(&key, &s.mailbox) {
        Lookup::Known(features) => set(s, Some(features)).await,
        Lookup::Wait => set(s, None).await,
        Lookup::Ask(id) => {
            set(s, None).await;
            s.shared.caps.watch(key, id.clone());
            ask(s, id, announced);
        }
    }
}

/// Sends the client the disco#info query for `announced` (XEP-0115 §6.2:
/// node `NODE#VER`, to its full JID).
fn ask(s: &mut Session, id: String, announced: Announced) {
    let mut iq = b"<iq type='get' from='".to_vec();
    escape_attr(&s.shared.config.domain, &mut iq);
    iq.extend_from_slice(b"' to='");
    escape_attr(&s.full, &mut iq);
    iq.extend_from_slice(b"' id='");
    escape_attr(&id, &mut iq);
    iq.extend_from_slice(b"'><query xmlns='");
    iq.extend_from_slice(ns::DISCO_INFO.as_bytes());
    iq.extend_from_slice(b"' node='");
    escape_attr(&format!("{}#{}", announced.node, announced.ver), &mut iq);
    iq.extend_from_slice(b"'/></iq>");
    let state = s.caps.get_or_insert_default();
    if state.pending.len() >= MAX_PENDING {
        let oldest = state.pending.remove(0);
        if let Some(key) = &oldest.announced.key {
            s.shared.caps.failed(key, &oldest.id);
        }
    }
    state.pending.push(Pending { id, announced });
    s.send(&iq);
}

/// Sets the session's features in its router entry; PEP hears of new ones.
async fn set(s: &mut Session, features: Option<Arc<Features>>) {
    let state = s.caps.get_or_insert_default();
    let same = match (&state.current, &features) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => false,
    };
    if same {
        return;
    }
    state.current = features.clone();
    let previous = match &features {
        Some(f) => state.told.replace(f.clone()),
        None => None,
    };
    let now_known = features.is_some();
    s.shared.router.set_caps(&s.bare, s.conn_id, features);
    if now_known {
        crate::modules::pep::caps_known(s, previous.as_deref()).await;
    }
}

/// An IQ result or error from the client to the server: when it answers
/// one of this session's queries (by id; other sessions' queries are not
/// this session's to answer), it is handled here and true is returned.
///
/// A verified answer is cached for every session. One that does not hash
/// to the announced string is never cached (§5.4 3.9) but is this
/// session's own word on its own features, so this session uses it, as
/// with legacy caps: slixmpp up to 1.17 announces a string computed before
/// binding (when a plugin registers a `+notify` interest early, as
/// slixmpp-omemo does) and answers with all its features, and would
/// otherwise get no PEP notification. One that is ill-formed (§5.4 3.3-3.6)
/// is not used at all; an error leaves the session without features.
/// Sessions waiting for the same string are told either way (and ask for
/// themselves unless it verified).
pub async fn answer(s: &mut Session, st: &Stanza, id: &str) -> bool {
    let Some(state) = s.caps.as_mut() else {
        return false;
    };
    let Some(i) = state.pending.iter().position(|p| p.id == id) else {
        return false;
    };
    let Pending { id, announced } = state.pending.remove(i);
    if state.pending.is_empty() {
        // An idle session keeps no room for queries.
        state.pending = Vec::new();
    }
    let query = match st.stanza_type().as_deref() {
        Some("result") => st.element().ok().and_then(disco_info),
        _ => None,
    };
    let features = match (query, &announced.key) {
        (None, key) => {
            tracing::debug!(jid = %s.full, ver = %announced.ver, "no capabilities: the client answered with an error or without disco#info");
            if let Some(key) = key {
                s.shared.caps.failed(key, &id);
            }
            None
        }
        (Some(q), Some(key)) => match verify::verify(key.algo, &key.ver, &q) {
            Ok(f) => {
                let f = Arc::new(Features::new(f));
                s.shared.caps.resolved(key, f.clone());
                Some(f)
            }
            Err(verify::Invalid::Mismatch) => {
                tracing::info!(jid = %s.full, ver = %announced.ver, "capabilities that do not hash to their ver: used for this session only");
                s.shared.caps.failed(key, &id);
                Some(Arc::new(Features::new(verify::features(&q))))
            }
            Err(why) => {
                tracing::info!(jid = %s.full, ver = %announced.ver, reason = why.text(), "ill-formed capabilities are not used");
                s.shared.caps.failed(key, &id);
                None
            }
        },
        (Some(q), None) => Some(Arc::new(Features::new(verify::features(&q)))),
    };
    let still_announced = s
        .caps
        .as_ref()
        .is_some_and(|c| c.announced.as_ref() == Some(&announced));
    if let (Some(f), true) = (features, still_announced) {
        set(s, Some(f)).await;
    }
    true
}

/// The `<query xmlns='…disco#info'/>` of an IQ.
fn disco_info(iq: Element) -> Option<Element> {
    iq.children.into_iter().find_map(|n| match n {
        Node::Element(e) if e.name == "query" && e.ns == ns::DISCO_INFO => Some(e),
        _ => None,
    })
}

/// The cache says the string `key` was answered, or its query failed:
/// a session still announcing it and still without features looks again.
pub async fn look_again(s: &mut Session, key: &Arc<Key>) {
    let Some(state) = s.caps.as_ref() else {
        return;
    };
    let Some(announced) = state
        .announced
        .as_ref()
        .filter(|a| a.key.as_ref() == Some(key))
    else {
        return;
    };
    let asking = state
        .pending
        .iter()
        .any(|p| p.announced.key.as_ref() == Some(key));
    if state.current.is_some() || asking {
        return;
    }
    let announced = announced.clone();
    resolve(s, announced).await;
}

/// The session went unavailable or ended: its capabilities are forgotten
/// (available again, it announces them anew), its queries are given up and
/// sessions waiting for their answers ask for themselves.
pub fn forget(s: &mut Session) {
    let Some(state) = s.caps.take() else {
        return;
    };
    for p in state.pending {
        if let Some(key) = &p.announced.key {
            s.shared.caps.failed(key, &p.id);
        }
    }
    if state.current.is_some() {
        s.shared.router.set_caps(&s.bare, s.conn_id, None);
    }
}
