//! The owner's requests (XEP-0060 §8): create (with a configuration),
//! configure, the default configuration, delete and purge. Only on the
//! session's own account; [`super::handle`] refuses others with
//! `forbidden`.

use super::config::{NodeConfig, NODE_CONFIG};
use super::error::PepError;
use super::notify::{self, Event};
use super::settings::Settings;
use super::{check_node_name, form, MAX_NODES, NS, NS_OWNER};
use crate::c2s::session::Session;
use natter_store::{PepCreated, StoreError};
use natter_xml::Element;

/// The settings of a `<configure/>` element's form, if it has one; an
/// unknown field is `not-acceptable` (§8.2.5.3).
fn settings(configure: &Element) -> Result<Option<Settings>, PepError> {
    let Some(x) = form::find(configure) else {
        return Ok(None);
    };
    if x.attr("type") == Some("cancel") {
        return Ok(None);
    }
    Settings::parse(x, NODE_CONFIG, |var| {
        PepError::NotAcceptable(format!("the field {var} is not offered"))
    })
    .map(Some)
}

/// The node's stored configuration; `item-not-found` if there is none.
async fn config_of(s: &Session, node: &str) -> Result<NodeConfig, PepError> {
    match s.shared.store.pep_node(&s.bare, node).await? {
        Some(bytes) => Ok(NodeConfig::from_bytes(&bytes)),
        None => Err(PepError::NodeNotFound),
    }
}

/// `<create node='…'/>` with an optional `<configure/>` sibling (§8.1).
pub async fn create_iq(
    s: &mut Session,
    pubsub: &Element,
    create: &Element,
) -> Result<(), PepError> {
    let node = create
        .attr("node")
        .ok_or(PepError::InstantNodesUnsupported)?;
    check_node_name(node)?;
    let settings = match pubsub.get_child("configure", NS) {
        Some(c) => settings(c)?,
        None => None,
    };
    let base = NodeConfig::default_for(node);
    let config = match settings {
        Some(st) => st.applied_to(&base),
        None => base,
    };
    let created = s
        .shared
        .store
        .pep_create_node(&s.bare, node, &config.to_bytes(), MAX_NODES)
        .await?;
    match created {
        PepCreated::Created => Ok(()),
        PepCreated::Exists => Err(PepError::NodeExists),
        PepCreated::TooManyNodes => Err(PepError::TooManyNodes),
    }
}

/// `<configure node='…'/>`: the form to fill in (§8.2.1).
pub async fn configure_get(s: &Session, configure: &Element) -> Result<Element, PepError> {
    let node = configure.attr("node").ok_or(PepError::NodeIdRequired)?;
    let config = config_of(s, node).await?;
    Ok(Element::new("pubsub", NS_OWNER).with_child(
        Element::new("configure", NS_OWNER)
            .with_attr("node", node)
            .with_child(config.form("form")),
    ))
}

/// `<configure node='…'><x type='submit'>…</x></configure>` (§8.2.4): the
/// fields given change, the others stay.
pub async fn configure_set(s: &mut Session, configure: &Element) -> Result<(), PepError> {
    let node = configure.attr("node").ok_or(PepError::NodeIdRequired)?;
    if form::find(configure).is_none() {
        return Err(PepError::BadRequest(
            "the configuration needs a data form".into(),
        ));
    }
    let current = config_of(s, node).await?;
    let Some(settings) = settings(configure)? else {
        return Ok(()); // cancelled: the configuration stays
    };
    configure_node(s, node, &settings.applied_to(&current)).await
}

/// Gives the session's own node `node` this configuration (its oldest items
/// beyond the new `max_items` go, all of them when it no longer persists
/// items) and notifies the change if the node says so.
pub async fn configure_node(
    s: &mut Session,
    node: &str,
    config: &NodeConfig,
) -> Result<(), PepError> {
    let owner = s.bare.clone();
    match s
        .shared
        .store
        .pep_configure(&owner, node, &config.to_bytes(), config.keep_items())
        .await
    {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(PepError::NodeNotFound),
        Err(e) => return Err(e.into()),
    }
    if config.notify_config {
        notify::broadcast(s, &owner, node, config, Event::Configured).await;
    }
    Ok(())
}

/// `<default/>`: the configuration a new node gets (§8.3).
pub fn default() -> Element {
    Element::new("pubsub", NS_OWNER).with_child(
        Element::new("default", NS_OWNER).with_child(NodeConfig::default().form("form")),
    )
}

/// `<delete node='…'/>` (§8.4).
pub async fn delete_iq(s: &mut Session, delete: &Element) -> Result<(), PepError> {
    let node = delete.attr("node").ok_or(PepError::NodeIdRequired)?;
    delete_node(s, node).await
}

/// Deletes the session's own node `node` with its items, and notifies
/// the deletion if the node says so.
pub async fn delete_node(s: &mut Session, node: &str) -> Result<(), PepError> {
    let config = config_of(s, node).await?;
    let owner = s.bare.clone();
    match s.shared.store.pep_delete_node(&owner, node).await {
        Ok(()) => {}
        Err(StoreError::NotFound) => return Err(PepError::NodeNotFound),
        Err(e) => return Err(e.into()),
    }
    if config.notify_delete {
        notify::broadcast(s, &owner, node, &config, Event::Deleted).await;
    }
    Ok(())
}

/// `<purge node='…'/>` (§8.5): every item goes; notified if the node
/// notifies retractions.
pub async fn purge_iq(s: &mut Session, purge: &Element) -> Result<(), PepError> {
    let node = purge.attr("node").ok_or(PepError::NodeIdRequired)?;
    let config = config_of(s, node).await?;
    if !config.persist_items {
        return Err(PepError::Unsupported("persistent-items"));
    }
    let owner = s.bare.clone();
    match s.shared.store.pep_purge(&owner, node).await {
        Ok(_) => {}
        Err(StoreError::NotFound) => return Err(PepError::NodeNotFound),
        Err(e) => return Err(e.into()),
    }
    if config.notify_retract {
        notify::broadcast(s, &owner, node, &config, Event::Purged).await;
    }
    Ok(())
}
