//! Personal eventing (XEP-0163): each account's PEP service, the part of
//! publish-subscribe (XEP-0060) clients use, on the account's bare JID —
//! OMEMO device lists and bundles (XEP-0384), avatars (XEP-0084),
//! nicknames (XEP-0172), bookmarks (XEP-0402).
//!
//! Only the account publishes to its service and manages its nodes;
//! others read what a node's access model lets them (open, presence,
//! roster, whitelist). Publishing creates a node when needed, with the PEP
//! defaults and the publish-options given (which, on an existing node, are
//! preconditions). Notifications go to the sessions, the owner's and its
//! presence subscribers', that asked for them in their entity capabilities
//! (`NODE+notify`, XEP-0115), and a session whose capabilities become
//! known gets the last item of the nodes it asks for ([`caps_known`]).
//! Explicit subscriptions and affiliation management are not offered.
//! The owner's requests on its bookmark nodes go through
//! `modules/bookmarks` first (checks) and after (the other copies).
//!
//! Limits: [`MAX_NODES`] nodes per account (more is `policy-violation`),
//! [`MAX_ITEMS`] items per node (`pubsub#max_items` = `max`; a node keeps
//! its newest `max_items`, publishing beyond drops the oldest), node names
//! up to [`MAX_NODE_BYTES`] and item ids up to [`MAX_ITEM_ID_BYTES`]
//! (`not-acceptable`); a payload is bounded by the stanza size limit.
//!
//! Layout: `config.rs` — node configuration, defaults, its form;
//! `settings.rs` — what a node_config or publish-options form asks for
//! (`form.rs`: data form fields);
//! `access.rs` — who may read; `publish.rs` — publish and retract;
//! `items.rs` — reading items; `owner.rs` — create, configure, default,
//! delete, purge; `notify.rs` — notifications and last items;
//! `discovery.rs` — disco features, nodes and node info; `error.rs` — the
//! errors; this file — dispatch and the functions other modules use.

mod access;
mod config;
mod discovery;
mod error;
mod form;
mod items;
mod notify;
mod owner;
mod publish;
mod settings;

pub use access::Relation;
pub use config::{AccessModel, MaxItems, NodeConfig, SendLast, NODE_CONFIG, PUBLISH_OPTIONS};
pub use discovery::{node_info, FEATURES, IDENTITY};
pub use error::PepError;
pub use items::read as read_items;
pub use owner::{configure_node, delete_node};
pub use publish::{publish_item, retract_item};
pub use settings::{Setting, Settings};

use super::bookmarks;
use super::iq::Reply;
use crate::c2s::session::Session;
use crate::modules::caps::Features;
use natter_xml::{Element, Stanza};

pub const NS: &str = "http://jabber.org/protocol/pubsub";
pub const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";

/// Nodes one account may have.
pub const MAX_NODES: usize = 256;
/// Items one node may keep (`pubsub#max_items` = `max`).
pub const MAX_ITEMS: u32 = 256;
/// Longest node name, in bytes.
pub const MAX_NODE_BYTES: usize = 1024;
/// Longest item id, in bytes (a JID fits: bookmarks use room JIDs).
pub const MAX_ITEM_ID_BYTES: usize = 3072;

/// A node name the service takes.
fn check_node_name(node: &str) -> Result<(), PepError> {
    if node.is_empty() {
        return Err(PepError::NodeIdRequired);
    }
    if node.len() > MAX_NODE_BYTES {
        return Err(PepError::NotAcceptable(format!(
            "node names are at most {MAX_NODE_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The request element of a `<pubsub/>` (its first child in `ns`, besides
/// the options that go with one).
fn request<'a>(el: &'a Element, ns: &str) -> Result<(&'a Element, &'a Element), Reply> {
    let pubsub = el
        .get_child("pubsub", ns)
        .ok_or_else(|| Reply::bad_request("missing pubsub"))?;
    // In `pubsub`, <publish-options/> goes with <publish/> and <configure/>
    // with <create/>.
    let companions: &[&str] = if ns == NS {
        &["publish-options", "configure"]
    } else {
        &[]
    };
    let req = pubsub
        .elements()
        .find(|e| e.ns == ns && !companions.contains(&e.name.as_str()))
        .ok_or_else(|| Reply::bad_request("an empty pubsub request"))?;
    Ok((pubsub, req))
}

fn answer(r: Result<Option<Element>, PepError>) -> Reply {
    match r {
        Ok(e) => Reply::Result(e),
        Err(e) => e.reply(),
    }
}

fn not_a_request(name: &str, set: bool) -> PepError {
    let ty = if set { "set" } else { "get" };
    PepError::BadRequest(format!("<{name}/> is not a pubsub {ty} request"))
}

/// An IQ in the `pubsub` namespace to `owner`'s account.
pub async fn handle(s: &mut Session, st: &Stanza, owner: &str, set: bool) -> Reply {
    let Ok(el) = st.element() else {
        return Reply::bad_request("unreadable pubsub request");
    };
    let (pubsub, req) = match request(&el, NS) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let own = owner == s.bare;
    let bookmark = match bookmark_begin(s, own, req, set).await {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let done = match (req.name.as_str(), set) {
        ("publish", true) if own => publish::iq(s, pubsub, req).await.map(Some),
        ("retract", true) if own => publish::retract_iq(s, req).await.map(|_| None),
        ("create", true) if own => owner::create_iq(s, pubsub, req).await.map(|_| None),
        ("publish" | "retract" | "create", true) => Err(PepError::Forbidden),
        ("items", false) => items::iq(s, owner, req).await.map(Some),
        ("subscriptions", false) => Ok(Some(
            // Subscriptions are implicit (presence): none to list.
            Element::new("pubsub", NS).with_child(Element::new("subscriptions", NS)),
        )),
        ("affiliations", false) => affiliations(s, owner, own, req).await.map(Some),
        ("subscribe" | "unsubscribe", true) => Err(PepError::Unsupported("subscribe")),
        ("options", _) | ("default", false) => Err(PepError::Unsupported("subscription-options")),
        (name, set) => Err(not_a_request(name, set)),
    };
    bookmark_finish(s, bookmark, done).await
}

/// An IQ in the `pubsub#owner` namespace to `owner`'s account.
pub async fn handle_owner(s: &mut Session, st: &Stanza, owner: &str, set: bool) -> Reply {
    let Ok(el) = st.element() else {
        return Reply::bad_request("unreadable pubsub request");
    };
    let (_, req) = match request(&el, NS_OWNER) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    if owner != s.bare && req.name != "default" {
        return PepError::Forbidden.reply();
    }
    let bookmark = match bookmark_begin(s, owner == s.bare, req, set).await {
        Ok(b) => b,
        Err(reply) => return reply,
    };
    let done = match (req.name.as_str(), set) {
        ("configure", false) => owner::configure_get(s, req).await.map(Some),
        ("configure", true) => owner::configure_set(s, req).await.map(|_| None),
        ("default", false) => Ok(Some(owner::default())),
        ("delete", true) => owner::delete_iq(s, req).await.map(|_| None),
        ("purge", true) => owner::purge_iq(s, req).await.map(|_| None),
        ("subscriptions", _) => Err(PepError::Unsupported("manage-subscriptions")),
        ("affiliations", _) => Err(PepError::Unsupported("modify-affiliations")),
        (name, set) => Err(not_a_request(name, set)),
    };
    bookmark_finish(s, bookmark, done).await
}

/// A request of the owner on a bookmark node is checked by, and followed
/// by, the bookmarks module (which keeps the XEP-0402 and XEP-0048 copies
/// in step); None for any other request.
async fn bookmark_begin(
    s: &mut Session,
    own: bool,
    req: &Element,
    set: bool,
) -> Result<Option<bookmarks::Pending>, Reply> {
    match bookmarks::node_of(req).filter(|_| own) {
        Some(node) => bookmarks::begin(s, node, req, set).await.map(Some),
        None => Ok(None),
    }
}

/// The answer, once the bookmarks module followed a request that worked.
async fn bookmark_finish(
    s: &mut Session,
    bookmark: Option<bookmarks::Pending>,
    done: Result<Option<Element>, PepError>,
) -> Reply {
    if let (Some(pending), Ok(_)) = (bookmark, &done) {
        if let Err(reply) = bookmarks::finish(s, pending).await {
            return reply;
        }
    }
    answer(done)
}

/// The requester's affiliations (XEP-0060 §5.7): the owner owns every
/// node; nobody else has an affiliation.
async fn affiliations(
    s: &Session,
    owner: &str,
    own: bool,
    req: &Element,
) -> Result<Element, PepError> {
    let mut list = Element::new("affiliations", NS);
    if own {
        let only = req.attr("node");
        for n in s.shared.store.pep_nodes(owner).await? {
            if only.is_none_or(|o| o == n.name) {
                list.push_child(
                    Element::new("affiliation", NS)
                        .with_attr("node", n.name)
                        .with_attr("affiliation", "owner"),
                );
            }
        }
    }
    Ok(Element::new("pubsub", NS).with_child(list))
}

/// disco#items of `owner`'s account (the nodes), or of one of its nodes
/// (the item ids).
pub async fn disco_items(s: &Session, st: &Stanza, owner: &str) -> Reply {
    let node = st
        .children()
        .first()
        .and_then(|c| c.attr(st, "node"))
        .map(|n| n.into_owned());
    discovery::items(s, owner, node.as_deref()).await
}

/// Called when the session's entity capabilities (XEP-0115) become known or
/// change (its router entry's `caps` is already set), with the capabilities
/// it had before: PEP sends it the last item of every node it now asks to
/// be notified of (and did not before) and may read — of its own account
/// and of every contact whose presence it receives — where the node's
/// `send_last_published_item` is `on_sub_and_presence`.
pub async fn caps_known(s: &mut Session, previous: Option<&Features>) {
    notify::last_items(s, previous).await;
}

/// `contact` was just allowed to see `owner`'s presence (a subscription
/// approved): PEP sends its available sessions the last item of every node
/// of `owner` they ask for and may now read, where the node's
/// `send_last_published_item` is `on_sub` or `on_sub_and_presence`.
pub async fn new_contact(s: &mut Session, owner: &str, contact: &str) {
    notify::last_items_to_new_contact(s, owner, contact).await;
}
