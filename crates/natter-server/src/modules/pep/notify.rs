//! Event notifications (XEP-0163 §4.3, XEP-0060 §7–8): headline messages
//! from the owner's bare JID to every available session — the owner's own
//! and its contacts' — that asked for the node's notifications
//! (`NODE+notify` in its entity capabilities), may read the node and
//! receives the owner's presence; never across a block (XEP-0191). And the
//! last items a session gets when its capabilities become known.

use super::access::{self, Relation};
use super::config::{NodeConfig, SendLast};
use super::NS_EVENT;
use crate::c2s::session::Session;
use crate::modules::blocking;
use crate::modules::caps::Features;
use crate::util;
use natter_store::Subscription;
use std::collections::HashMap;
use std::sync::Arc;

/// What a notification tells.
pub enum Event<'a> {
    /// An item was published; its payload unless the node withholds them.
    Published {
        id: &'a str,
        payload: &'a [u8],
    },
    Retracted {
        id: &'a str,
    },
    Deleted,
    Purged,
    /// The configuration changed (sent only with `notify_config`).
    Configured,
}

/// The `<event/>` element for `node`.
fn event_xml(node: &str, config: &NodeConfig, event: &Event<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"<event xmlns='");
    out.extend_from_slice(NS_EVENT.as_bytes());
    out.extend_from_slice(b"'>");
    let open = |out: &mut Vec<u8>, name: &[u8]| {
        out.push(b'<');
        out.extend_from_slice(name);
        out.extend_from_slice(b" node='");
        natter_xml::escape_attr(node, out);
        out.push(b'\'');
    };
    match event {
        Event::Published { id, payload } => {
            open(&mut out, b"items");
            out.extend_from_slice(b"><item id='");
            natter_xml::escape_attr(id, &mut out);
            if config.deliver_payloads {
                out.extend_from_slice(b"'>");
                out.extend_from_slice(payload);
                out.extend_from_slice(b"</item></items>");
            } else {
                out.extend_from_slice(b"'/></items>");
            }
        }
        Event::Retracted { id } => {
            open(&mut out, b"items");
            out.extend_from_slice(b"><retract id='");
            natter_xml::escape_attr(id, &mut out);
            out.extend_from_slice(b"'/></items>");
        }
        Event::Deleted => {
            open(&mut out, b"delete");
            out.extend_from_slice(b"/>");
        }
        Event::Purged => {
            open(&mut out, b"purge");
            out.extend_from_slice(b"/>");
        }
        Event::Configured => {
            open(&mut out, b"configuration");
            out.extend_from_slice(b"/>");
        }
    }
    out.extend_from_slice(b"</event>");
    out
}

/// One notification message to `to`; with `delay`, the item's time
/// (XEP-0203), for a last item sent later.
fn message(
    owner: &str,
    to: &str,
    config: &NodeConfig,
    event: &[u8],
    delay: Option<u64>,
) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(event.len() + 200);
    out.extend_from_slice(b"<message from='");
    natter_xml::escape_attr(owner, &mut out);
    out.extend_from_slice(b"' to='");
    natter_xml::escape_attr(to, &mut out);
    out.extend_from_slice(if config.headline {
        b"' type='headline' id='"
    } else {
        b"' type='normal' id='"
    });
    out.extend_from_slice(util::random_id().as_bytes());
    out.extend_from_slice(b"'>");
    out.extend_from_slice(event);
    if let Some(ms) = delay {
        out.extend_from_slice(b"<delay xmlns='urn:xmpp:delay' from='");
        natter_xml::escape_attr(owner, &mut out);
        out.extend_from_slice(b"' stamp='");
        out.extend_from_slice(util::xmpp_datetime(ms).as_bytes());
        out.extend_from_slice(b"'/>");
    }
    out.extend_from_slice(b"</message>");
    out.into()
}

/// Sends the event to the interested available sessions of `bare`.
fn to_sessions(s: &mut Session, owner: &str, bare: &str, node: &str, cfg: &NodeConfig, ev: &[u8]) {
    for (mailbox, resource) in s.shared.router.interested(bare, node) {
        let m = message(owner, &format!("{bare}/{resource}"), cfg, ev, None);
        if bare == s.bare && resource == s.resource {
            s.send(&m);
        } else {
            mailbox.stanza(&m);
        }
    }
}

/// Notifies an event of `owner`'s node to everyone entitled to it. The
/// owner's roster is read once.
pub async fn broadcast(
    s: &mut Session,
    owner: &str,
    node: &str,
    config: &NodeConfig,
    event: Event<'_>,
) {
    if !config.deliver_notifications {
        return;
    }
    let ev = event_xml(node, config, &event);
    to_sessions(s, owner, owner, node, config, &ev);
    if config.access_model == super::config::AccessModel::Whitelist {
        return;
    }
    let roster = match s.shared.store.roster(owner).await {
        Ok((_, items)) => items,
        Err(e) => {
            tracing::error!(error = %e, "roster read for PEP notifications failed");
            return;
        }
    };
    for item in &roster {
        if !access::notified(config, &Relation::from_roster(Some(item))) {
            continue;
        }
        if s.shared.router.interested(&item.jid, node).is_empty() {
            continue;
        }
        if !blocking::presence_allowed(s, owner, owner, &item.jid).await {
            continue;
        }
        to_sessions(s, owner, &item.jid, node, config, &ev);
    }
}

/// The session's capabilities became known or changed: it gets the last
/// item of every node it now asks for (and did not before), of its own
/// account and of every contact whose presence it receives, where the
/// node sends its last item on presence and the session may read it.
/// Three store reads at most, however many contacts.
pub async fn last_items(s: &mut Session, previous: Option<&Features>) {
    let Some(caps) = s
        .shared
        .router
        .session(&s.bare, &s.resource)
        .and_then(|e| e.caps)
    else {
        return;
    };
    let nodes: Vec<String> = caps
        .notify_nodes()
        .filter(|n| previous.is_none_or(|p| !p.notify(n)))
        .map(str::to_owned)
        .collect();
    if nodes.is_empty() {
        return;
    }
    let me = s.bare.clone();
    let store = s.shared.store.clone();
    let mut owners = vec![me.clone()];
    match store.roster(&me).await {
        Ok((_, items)) => {
            for i in items {
                let sees = matches!(i.subscription, Subscription::To | Subscription::Both);
                if i.in_roster && sees && blocking::presence_allowed(s, &i.jid, &i.jid, &me).await {
                    owners.push(i.jid);
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "roster read for PEP last items failed"),
    }
    let last = match store.pep_last_items(&owners, &nodes).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "PEP last items read failed");
            return;
        }
    };
    // How each owner with an item here stands to us, from its roster.
    let mut others: Vec<String> = last
        .iter()
        .map(|l| l.owner.clone())
        .filter(|o| *o != me)
        .collect();
    others.dedup();
    let mut relations: HashMap<String, Relation> = HashMap::new();
    if !others.is_empty() {
        match store.roster_items_of(&others, &me).await {
            Ok(rows) => {
                for (owner, item) in rows {
                    relations.insert(owner, Relation::from_roster(Some(&item)));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "roster read for PEP last items failed");
                return;
            }
        }
    }
    let nobody = Relation::from_roster(None);
    for l in last {
        let rel = if l.owner == me {
            &Relation::Owner
        } else {
            relations.get(&l.owner).unwrap_or(&nobody)
        };
        let Some((config, ev)) = last_item_event(&l, rel, false) else {
            continue;
        };
        let m = message(
            &l.owner,
            &s.full.clone(),
            &config,
            &ev,
            Some(l.item.stamp_unix_ms),
        );
        s.send(&m);
    }
}

/// The node's configuration and the `<event/>` of its last item `l`, if it
/// goes to a reader standing in `relation`: the node sends its last item on
/// presence (or, `on_sub`, on subscription too), sends notifications, and
/// lets that reader read it.
fn last_item_event(
    l: &natter_store::PepLastItem,
    relation: &Relation,
    on_sub: bool,
) -> Option<(NodeConfig, Vec<u8>)> {
    let config = NodeConfig::from_bytes(&l.config);
    let sends = match config.send_last_published_item {
        SendLast::OnSubAndPresence => true,
        SendLast::OnSub => on_sub,
        SendLast::Never => false,
    };
    if !sends || !config.deliver_notifications || !access::notified(&config, relation) {
        return None;
    }
    let ev = event_xml(
        &l.node,
        &config,
        &Event::Published {
            id: &l.item.id,
            payload: &l.item.payload,
        },
    );
    Some((config, ev))
}

/// `contact` was just allowed to see `owner`'s presence (a subscription
/// approved, XEP-0163 §4.3.3 implicit subscription): its available
/// sessions get the last item of every node of `owner` they ask for and
/// may now read, where the node sends its last item on subscription.
pub async fn last_items_to_new_contact(s: &mut Session, owner: &str, contact: &str) {
    let sessions: Vec<_> = s
        .shared
        .router
        .sessions(contact)
        .into_iter()
        .filter(|e| e.available)
        .filter_map(|e| e.caps.clone().map(|caps| (e, caps)))
        .collect();
    let mut nodes: Vec<String> = sessions
        .iter()
        .flat_map(|(_, caps)| caps.notify_nodes().map(str::to_owned))
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    if nodes.is_empty() || !blocking::presence_allowed(s, owner, owner, contact).await {
        return;
    }
    let store = s.shared.store.clone();
    let owners = [owner.to_owned()];
    let (rows, last) = match (
        store.roster_items_of(&owners, contact).await,
        store.pep_last_items(&owners, &nodes).await,
    ) {
        (Ok(rows), Ok(last)) => (rows, last),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "PEP last items for a new contact: read failed");
            return;
        }
    };
    let relation = Relation::from_roster(rows.first().map(|(_, item)| item));
    for l in last {
        let Some((config, ev)) = last_item_event(&l, &relation, true) else {
            continue;
        };
        for (e, caps) in &sessions {
            if !caps.notify(&l.node) {
                continue;
            }
            let to = format!("{contact}/{}", e.resource);
            let m = message(owner, &to, &config, &ev, Some(l.item.stamp_unix_ms));
            if e.conn_id == s.conn_id {
                s.send(&m);
            } else {
                e.mailbox.stanza(&m);
            }
        }
    }
}
