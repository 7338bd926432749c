//! Publishing and retracting items (XEP-0060 §7.1–7.2) on the session's
//! own account, with publish-options (§7.1.5) and automatic node creation.

use super::config::{NodeConfig, PUBLISH_OPTIONS};
use super::error::PepError;
use super::notify::{self, Event};
use super::settings::Settings;
use super::{check_node_name, form, MAX_ITEM_ID_BYTES, MAX_NODES, NS};
use crate::c2s::session::Session;
use crate::util;
use natter_store::{PepItem, PepNewNode, PepPublished, StoreError};
use natter_xml::Element;

/// The publish request: `<publish node='…'><item id='…'>PAYLOAD</item>
/// </publish>` with an optional `<publish-options/>` sibling.
pub async fn iq(s: &mut Session, pubsub: &Element, publish: &Element) -> Result<Element, PepError> {
    let node = publish.attr("node").ok_or(PepError::NodeIdRequired)?;
    let items: Vec<&Element> = publish
        .elements()
        .filter(|e| e.name == "item" && e.ns == NS)
        .collect();
    let item = match items.as_slice() {
        [] => return Err(PepError::ItemRequired),
        [item] => *item,
        _ => {
            return Err(PepError::BadRequest(
                "one item per publish (XEP-0060 §7.1.1)".into(),
            ))
        }
    };
    let payloads: Vec<&Element> = item.elements().collect();
    let payload = match payloads.as_slice() {
        [] => return Err(PepError::PayloadRequired),
        [p] => *p,
        _ => return Err(PepError::InvalidPayload),
    };
    let options = match pubsub.get_child("publish-options", NS) {
        None => None,
        Some(po) => match form::find(po) {
            // An empty <publish-options/> asks for nothing.
            None => None,
            Some(x) => Some(Settings::parse(x, PUBLISH_OPTIONS, |var| {
                PepError::PreconditionNotMet(var.to_owned())
            })?),
        },
    };
    let id = item.attr("id").filter(|i| !i.is_empty());
    let id = publish_item(s, node, id, payload, options.as_ref()).await?;
    Ok(Element::new("pubsub", NS).with_child(
        Element::new("publish", NS)
            .with_attr("node", node)
            .with_child(Element::new("item", NS).with_attr("id", id)),
    ))
}

/// Publishes `payload` to the session's own node `node` as item `id` (one
/// is made up when None) and notifies it; returns the item id.
///
/// `options` are preconditions (XEP-0060 §7.1.5): an existing node must
/// already have each setting (else [`PepError::PreconditionNotMet`]), a
/// missing node is created with these settings on the node's defaults
/// ([`NodeConfig::default_for`]).
pub async fn publish_item(
    s: &mut Session,
    node: &str,
    id: Option<&str>,
    payload: &Element,
    options: Option<&Settings>,
) -> Result<String, PepError> {
    check_node_name(node)?;
    if id.is_some_and(|i| i.len() > MAX_ITEM_ID_BYTES) {
        return Err(PepError::NotAcceptable(format!(
            "item ids are at most {MAX_ITEM_ID_BYTES} bytes"
        )));
    }
    let owner = s.bare.clone();
    let store = s.shared.store.clone();
    let config = match store.pep_node(&owner, node).await? {
        Some(bytes) => {
            let config = NodeConfig::from_bytes(&bytes);
            if let Some(var) = options.and_then(|o| o.unmet_by(&config)) {
                return Err(PepError::PreconditionNotMet(var.to_owned()));
            }
            config
        }
        None => {
            let base = NodeConfig::default_for(node);
            match options {
                Some(o) => o.applied_to(&base),
                None => base,
            }
        }
    };
    let item = PepItem {
        id: id.map_or_else(util::random_id, str::to_owned),
        payload: payload.to_bytes(""),
        publisher: s.full.clone(),
        stamp_unix_ms: util::now_unix_ms(),
    };
    let bytes = config.to_bytes();
    let create = PepNewNode {
        config: &bytes,
        max_nodes: MAX_NODES,
    };
    match store
        .pep_publish(&owner, node, &item, config.keep_items(), Some(create))
        .await?
    {
        PepPublished::Stored { .. } => {}
        PepPublished::TooManyNodes => return Err(PepError::TooManyNodes),
        PepPublished::NoNode => return Err(PepError::Internal),
    }
    let event = Event::Published {
        id: &item.id,
        payload: &item.payload,
    };
    notify::broadcast(s, &owner, node, &config, event).await;
    Ok(item.id)
}

/// The retract request: `<retract node='…' notify='…'><item id='…'/>
/// </retract>`.
pub async fn retract_iq(s: &mut Session, retract: &Element) -> Result<(), PepError> {
    let node = retract.attr("node").ok_or(PepError::NodeIdRequired)?;
    let ids: Vec<&str> = retract
        .elements()
        .filter(|e| e.name == "item" && e.ns == NS)
        .map(|e| e.attr("id").unwrap_or_default())
        .collect();
    let id = match ids.as_slice() {
        [id] if !id.is_empty() => *id,
        [] | [_] => return Err(PepError::ItemRequired),
        _ => return Err(PepError::BadRequest("one item per retract".into())),
    };
    let notify = match retract.attr("notify") {
        None => None,
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        Some(_) => return Err(PepError::BadRequest("'notify' is a boolean".into())),
    };
    retract_item(s, node, id, notify).await
}

/// Deletes item `id` of the session's own node `node`. Notifies the
/// retraction when `notify` says so, or when it is None and the node's
/// `pubsub#notify_retract` does.
pub async fn retract_item(
    s: &mut Session,
    node: &str,
    id: &str,
    notify: Option<bool>,
) -> Result<(), PepError> {
    let owner = s.bare.clone();
    let store = s.shared.store.clone();
    let config = match store.pep_node(&owner, node).await? {
        Some(bytes) => NodeConfig::from_bytes(&bytes),
        None => return Err(PepError::NodeNotFound),
    };
    if !config.persist_items {
        return Err(PepError::Unsupported("persistent-items"));
    }
    match store.pep_retract(&owner, node, id).await {
        Ok(true) => {}
        Ok(false) => return Err(PepError::ItemNotFound),
        Err(StoreError::NotFound) => return Err(PepError::NodeNotFound),
        Err(e) => return Err(e.into()),
    }
    if notify.unwrap_or(config.notify_retract) {
        notify::broadcast(s, &owner, node, &config, Event::Retracted { id }).await;
    }
    Ok(())
}
