//! Archiving preferences (XEP-0313 §6) and archive metadata (§5.5).
//!
//! `<prefs default='always|never|roster'>` with `<always/>` and `<never/>`
//! lists of JIDs (kept as bare JIDs; `never` wins over `always`). They are
//! applied when a message is archived, in the store's writer.

use super::NS;
use crate::c2s::session::Session;
use crate::modules::iq::Reply;
use natter_store::{ArchiveDefault, ArchivePrefs, StoreError};
use natter_xml::{Element, Stanza};

/// The most JIDs one list may hold.
const MAX_LIST: usize = 1000;

fn to_element(p: &ArchivePrefs) -> Element {
    let list = |name: &str, jids: &[String]| {
        let mut e = Element::new(name, NS);
        for j in jids {
            e.push_child(Element::new("jid", NS).with_text(j.clone()));
        }
        e
    };
    Element::new("prefs", NS)
        .with_attr("default", p.default.as_str())
        .with_child(list("always", &p.always))
        .with_child(list("never", &p.never))
}

pub async fn get(s: &mut Session) -> Reply {
    match s.shared.store.archive_prefs(&s.bare).await {
        Ok(p) => Reply::Result(Some(to_element(&p))),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}

/// Reads a `<prefs/>` element; the error to answer if it is not valid.
fn parse(el: &Element) -> Result<ArchivePrefs, Reply> {
    let default = el
        .attr("default")
        .ok_or_else(|| Reply::bad_request("<prefs/> needs a 'default'"))?;
    let default = ArchiveDefault::parse(default)
        .ok_or_else(|| Reply::bad_request("'default' must be always, never or roster"))?;
    let list = |name: &str| -> Result<Vec<String>, Reply> {
        let mut out = Vec::new();
        if let Some(l) = el.get_child(name, NS) {
            for j in l.elements() {
                if j.name != "jid" || j.ns != NS {
                    return Err(Reply::bad_request(
                        "a preferences list holds <jid/> elements",
                    ));
                }
                let jid = jid::Jid::new(j.text().trim()).map_err(|_| {
                    Reply::Error("modify", "jid-malformed", Some(format!("in <{name}/>")))
                })?;
                let bare = jid.to_bare().as_str().to_owned();
                if !out.contains(&bare) {
                    out.push(bare);
                }
            }
        }
        if out.len() > MAX_LIST {
            return Err(Reply::Error(
                "modify",
                "policy-violation",
                Some(format!("at most {MAX_LIST} JIDs per list")),
            ));
        }
        Ok(out)
    };
    Ok(ArchivePrefs {
        default,
        always: list("always")?,
        never: list("never")?,
    })
}

pub async fn set(s: &mut Session, st: &Stanza) -> Reply {
    let Ok(el) = st.element() else {
        return Reply::bad_request("unreadable prefs");
    };
    let Some(prefs_el) = el.get_child("prefs", NS) else {
        return Reply::bad_request("missing prefs");
    };
    let prefs = match parse(prefs_el) {
        Ok(p) => p,
        Err(reply) => return reply,
    };
    match s.shared.store.set_archive_prefs(&s.bare, &prefs).await {
        Ok(()) => Reply::Result(Some(to_element(&prefs))),
        Err(StoreError::InvalidInput(t)) => Reply::Error("modify", "bad-request", Some(t)),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}

/// `<metadata/>`: the oldest and newest archived message (id, time);
/// an empty element for an empty archive.
pub async fn metadata(s: &mut Session) -> Reply {
    let store = s.shared.store.clone();
    if store.write_barrier().await.is_err() {
        return Reply::error("wait", "internal-server-error");
    }
    match store.archive_bounds(&s.bare).await {
        Ok(bounds) => {
            let mut m = Element::new("metadata", NS);
            if let Some((first, last)) = bounds {
                for (name, (id, at)) in [("start", first), ("end", last)] {
                    m.push_child(
                        Element::new(name, NS)
                            .with_attr("id", id)
                            .with_attr("timestamp", crate::util::xmpp_datetime(at)),
                    );
                }
            }
            Reply::Result(Some(m))
        }
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}
