//! Reading a node's items (XEP-0060 §6.5): all of them, the newest
//! `max_items`, or some by id; only for those the node's access model
//! lets read.

use super::access::{self, Relation};
use super::config::NodeConfig;
use super::error::PepError;
use super::NS;
use crate::c2s::session::Session;
use natter_store::{PepItem, StoreError};
use natter_xml::{Element, Stanza};

/// The items request `<items node='…' max_items='…'>` (with `<item id/>`
/// children to ask for those) to `owner`'s service.
pub async fn iq(s: &Session, owner: &str, items: &Element) -> Result<Element, PepError> {
    let node = items.attr("node").ok_or(PepError::NodeIdRequired)?;
    let max = match items.attr("max_items") {
        None => None,
        Some(m) => Some(
            m.trim()
                .parse::<usize>()
                .map_err(|_| PepError::BadRequest("max_items is a number".into()))?,
        ),
    };
    let ids: Vec<String> = items
        .elements()
        .filter(|e| e.name == "item" && e.ns == NS)
        .map(|e| e.attr("id").unwrap_or_default().to_owned())
        .collect();
    if ids.iter().any(String::is_empty) {
        return Err(PepError::BadRequest(
            "an <item/> asked for needs an id".into(),
        ));
    }
    let found = read(s, owner, node, &ids, max).await?;
    let mut out = Element::new("items", NS).with_attr("node", node);
    for item in &found {
        out.push_child(item_element(item, NS)?);
    }
    Ok(Element::new("pubsub", NS).with_child(out))
}

/// `<item id='…'>PAYLOAD</item>` in namespace `ns`.
pub fn item_element(item: &PepItem, ns: &str) -> Result<Element, PepError> {
    let payload = Stanza::parse(&item.payload, "")
        .and_then(|p| p.element())
        .map_err(|e| {
            tracing::error!(error = %e, id = %item.id, "unreadable stored PEP payload");
            PepError::Internal
        })?;
    Ok(Element::new("item", ns)
        .with_attr("id", item.id.clone())
        .with_child(payload))
}

/// Items of `owner`'s node as the session's account may read them, oldest
/// first (XEP-0060 §6.5.3): all, those with an id in `ids` (unknown ids
/// left out), or with `max` the newest `max`. Checks the node's access
/// model against the session's account.
pub async fn read(
    s: &Session,
    owner: &str,
    node: &str,
    ids: &[String],
    max: Option<usize>,
) -> Result<Vec<PepItem>, PepError> {
    let store = &s.shared.store;
    let config = match store.pep_node(owner, node).await? {
        Some(bytes) => NodeConfig::from_bytes(&bytes),
        None => return Err(PepError::NodeNotFound),
    };
    access::check(&config, &Relation::of(s, owner, &s.bare).await?)?;
    if !config.persist_items {
        return Err(PepError::Unsupported("persistent-items"));
    }
    let mut items = match store.pep_items(owner, node, ids, max).await {
        Ok(items) => items,
        Err(StoreError::NotFound) => return Err(PepError::NodeNotFound),
        Err(e) => return Err(e.into()),
    };
    items.reverse();
    Ok(items)
}
