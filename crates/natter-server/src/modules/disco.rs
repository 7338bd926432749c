//! Service discovery (XEP-0030) and entity capabilities (XEP-0115).

use super::iq::Reply;
use crate::c2s::session::Session;
use crate::ns;
use base64::Engine;
use natter_xml::{Element, Stanza};
use sha1::{Digest, Sha1};

/// The caps node natterd advertises.
pub const CAPS_NODE: &str = "https://natter.chat/natterd";

/// The server's identity: (category, type, name).
const IDENTITY: (&str, &str, &str) = ("server", "im", "natter");

/// Exactly what the server implements, sorted.
pub const SERVER_FEATURES: &[&str] = &[
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    ns::LAST,
    super::private::NS,
    ns::VERSION,
    ns::OFFLINE,
    super::queue::NS,
    super::blocking::NS,
    super::carbons::NS,
    ns::PING,
    ns::SID,
    ns::TIME,
    ns::VCARD,
];

/// Features of an account's bare JID.
const ACCOUNT_FEATURES: &[&str] = &[
    super::avatar::NS_CONVERSION,
    ns::DISCO_INFO,
    ns::DISCO_ITEMS,
    ns::LAST,
    super::last_seen::NS,
    ns::SID,
    ns::VCARD,
];

/// The XEP-0115 verification string's hash for the server's features.
pub fn caps_ver() -> String {
    let mut features: Vec<&str> = SERVER_FEATURES.to_vec();
    features.sort_unstable();
    let mut s = format!("{}/{}//{}<", IDENTITY.0, IDENTITY.1, IDENTITY.2);
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()))
}

/// The `<c/>` element for stream features.
pub fn caps_element() -> String {
    format!(
        "<c xmlns='{}' hash='sha-1' node='{}' ver='{}'/>",
        ns::CAPS,
        CAPS_NODE,
        caps_ver()
    )
}

fn info(identity: (&str, &str, &str), features: &[&str], node: Option<String>) -> Element {
    let mut q = Element::new("query", ns::DISCO_INFO);
    if let Some(n) = node {
        q.set_attr("node", n);
    }
    q.push_child(
        Element::new("identity", ns::DISCO_INFO)
            .with_attr("category", identity.0)
            .with_attr("type", identity.1)
            .with_attr("name", identity.2),
    );
    for f in features {
        q.push_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", *f));
    }
    q
}

/// disco#info of the server (also for the caps node).
pub fn server_info(st: &Stanza) -> Reply {
    let node = st
        .children()
        .first()
        .and_then(|c| c.attr(st, "node"))
        .map(|n| n.into_owned());
    if let Some(n) = &node {
        if *n != format!("{}#{}", CAPS_NODE, caps_ver()) {
            return Reply::error("cancel", "item-not-found");
        }
    }
    Reply::Result(Some(info(IDENTITY, SERVER_FEATURES, node)))
}

/// disco#info of an account, answered by the server on its behalf: the
/// account with its PEP service (XEP-0163), or one of its PEP nodes.
pub async fn account_info(s: &Session, st: &Stanza, owner: &str) -> Reply {
    if let Some(node) = st.children().first().and_then(|c| c.attr(st, "node")) {
        return super::pep::node_info(s, owner, &node).await;
    }
    let mut features = ACCOUNT_FEATURES.to_vec();
    features.extend(super::mam::account_features(&s.shared.config.archive));
    features.extend(super::pep::FEATURES);
    features.extend(super::bookmarks::FEATURES);
    features.sort_unstable();
    match s.shared.store.account_exists(owner).await {
        Ok(true) => {
            let mut q = info(("account", "registered", ""), &features, None);
            let (category, ty) = super::pep::IDENTITY;
            let pep = Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", category)
                .with_attr("type", ty);
            q.children.insert(1, natter_xml::Node::Element(pep));
            Reply::Result(Some(q))
        }
        Ok(false) => Reply::service_unavailable(),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_sorted_and_unique() {
        let mut v = SERVER_FEATURES.to_vec();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v, SERVER_FEATURES);
    }

    #[test]
    fn caps_ver_is_stable_base64_sha1() {
        let v = caps_ver();
        assert_eq!(v.len(), 28);
        assert_eq!(v, caps_ver());
    }
}
