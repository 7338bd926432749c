//! What service discovery (XEP-0030) shows of an account's PEP service:
//! the features, the nodes the requester may read (disco#items), a node's
//! identity (disco#info with a node) and its item ids (disco#items with a
//! node).

use super::access::{self, Relation};
use super::config::NodeConfig;
use super::error::PepError;
use super::{items, NS};
use crate::c2s::session::Session;
use crate::modules::iq::Reply;
use crate::ns;
use natter_xml::Element;

/// The PEP identity in an account's disco#info (XEP-0163 §6).
pub const IDENTITY: (&str, &str) = ("pubsub", "pep");

/// The XEP-0060 features the PEP service implements (the account's
/// disco#info lists them).
pub const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#auto-subscribe",
    "http://jabber.org/protocol/pubsub#config-node",
    // `pubsub#max_items` takes `max`.
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-affiliations",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
];

fn reply(r: Result<Element, PepError>) -> Reply {
    match r {
        Ok(e) => Reply::Result(Some(e)),
        Err(e) => e.reply(),
    }
}

/// disco#items of `owner`'s account: the nodes the session's account may
/// read, or with `node`, that node's item ids.
pub async fn items(s: &Session, owner: &str, node: Option<&str>) -> Reply {
    reply(match node {
        None => nodes(s, owner).await,
        Some(node) => item_ids(s, owner, node).await,
    })
}

async fn nodes(s: &Session, owner: &str) -> Result<Element, PepError> {
    let all = s.shared.store.pep_nodes(owner).await?;
    let rel = Relation::of(s, owner, &s.bare).await?;
    let mut q = Element::new("query", ns::DISCO_ITEMS);
    for n in all {
        let config = NodeConfig::from_bytes(&n.config);
        if access::check(&config, &rel).is_err() {
            continue;
        }
        let mut item = Element::new("item", ns::DISCO_ITEMS)
            .with_attr("jid", owner)
            .with_attr("node", n.name);
        if !config.title.is_empty() {
            item.set_attr("name", config.title);
        }
        q.push_child(item);
    }
    Ok(q)
}

async fn item_ids(s: &Session, owner: &str, node: &str) -> Result<Element, PepError> {
    let found = items::read(s, owner, node, &[], None).await?;
    let mut q = Element::new("query", ns::DISCO_ITEMS).with_attr("node", node);
    for i in found {
        q.push_child(
            Element::new("item", ns::DISCO_ITEMS)
                .with_attr("jid", owner)
                .with_attr("name", i.id),
        );
    }
    Ok(q)
}

/// disco#info of one node of `owner` (XEP-0060 §5.3), for those who may
/// read it.
pub async fn node_info(s: &Session, owner: &str, node: &str) -> Reply {
    reply(
        async {
            let config = match s.shared.store.pep_node(owner, node).await? {
                Some(bytes) => NodeConfig::from_bytes(&bytes),
                None => return Err(PepError::NodeNotFound),
            };
            access::check(&config, &Relation::of(s, owner, &s.bare).await?)?;
            Ok(Element::new("query", ns::DISCO_INFO)
                .with_attr("node", node)
                .with_child(
                    Element::new("identity", ns::DISCO_INFO)
                        .with_attr("category", "pubsub")
                        .with_attr("type", "leaf"),
                )
                .with_child(Element::new("feature", ns::DISCO_INFO).with_attr("var", NS)))
        }
        .await,
    )
}
