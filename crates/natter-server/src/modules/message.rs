//! 1:1 message routing (RFC 6121 §8.5) with XEP-0359 stanza-ids, and the
//! offline store (XEP-0160) for accounts with no available resource.
//!
//! The routing path never builds an XML tree: it reads the envelope, checks
//! the direct children's names, and forwards the bytes with `from` stamped.

use crate::c2s::session::Session;
use crate::router::Outbound;
use crate::server::Shared;
use crate::{ns, util};
use natter_store::OfflineMessage;
use natter_xml::Stanza;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsgType {
    Normal,
    Chat,
    Groupchat,
    Headline,
    Error,
}

impl MsgType {
    fn parse(t: Option<&str>) -> MsgType {
        match t {
            Some("chat") => MsgType::Chat,
            Some("groupchat") => MsgType::Groupchat,
            Some("headline") => MsgType::Headline,
            Some("error") => MsgType::Error,
            _ => MsgType::Normal,
        }
    }
}

/// A message from the client.
pub async fn from_client(s: &mut Session, st: &Stanza) {
    let ty = MsgType::parse(st.stanza_type().as_deref());
    let to = match st.to() {
        None => s.bare.clone(),
        Some(t) => t.into_owned(),
    };
    let Some(target) = s.local_target(st, &to) else {
        return;
    };
    if target.node().is_none() {
        // Messages to the server itself: nothing here consumes them.
        if !matches!(ty, MsgType::Error | MsgType::Headline) {
            s.send(&util::bounce(
                st,
                &s.full,
                &to,
                "cancel",
                "service-unavailable",
                None,
            ));
        }
        return;
    }
    let bare = target.to_bare().as_str().to_owned();
    let resource = target.resource().map(|r| r.as_str().to_owned());
    let full = s.full.clone();
    if let Err(cond) = route(&s.shared, &full, &bare, resource.as_deref(), st).await {
        if ty != MsgType::Error {
            s.send(&util::bounce(st, &full, &to, "cancel", cond, None));
        }
    }
}

/// Routes a message from `from` to `bare` (and `resource`, if a full JID).
/// Chat and normal messages with content are first written to the
/// recipient's durable queue (so the sender's acknowledgement means the
/// message is safe), then handed to the available sessions, which remove
/// it from the queue once their client has it. `Err(condition)` when the
/// sender must get an error.
pub async fn route(
    shared: &Shared,
    from: &str,
    bare: &str,
    resource: Option<&str>,
    st: &Stanza,
) -> Result<(), &'static str> {
    let ty = MsgType::parse(st.stanza_type().as_deref());
    let (bytes, stanza_id) = stamp(st, from, bare);
    let queued = matches!(ty, MsgType::Normal | MsgType::Chat) && storable(st);
    // Full JID of a connected resource: that resource (RFC 6121 §8.5.3.1).
    if let Some(r) = resource {
        if let Some(e) = shared.router.session(bare, r) {
            if !queued {
                e.mailbox.stanza(&bytes);
                return Ok(());
            }
            let seq = enqueue(shared, from, bare, st, &bytes, stanza_id.clone()).await?;
            e.mailbox.deliver(Outbound::Queued { seq, bytes });
            return Ok(());
        }
        if ty == MsgType::Groupchat {
            return Err("service-unavailable");
        }
    }
    let targets = shared.router.message_targets(bare);
    match ty {
        // Errors to a missing resource or an unavailable account are dropped.
        MsgType::Error => {
            if resource.is_none() {
                targets.iter().for_each(|t| {
                    t.stanza(&bytes);
                });
            }
            return Ok(());
        }
        MsgType::Groupchat => return Err("service-unavailable"),
        _ => {}
    }
    if targets.is_empty() && !account_exists(shared, bare).await {
        return if ty == MsgType::Headline {
            Ok(())
        } else {
            Err("service-unavailable")
        };
    }
    if !queued {
        // Headlines, chat states and no-store messages: live or not at all.
        targets.iter().for_each(|t| {
            t.stanza(&bytes);
        });
        return Ok(());
    }
    let seq = enqueue(shared, from, bare, st, &bytes, stanza_id.clone()).await?;
    // Look again now that it is committed: a session that became available
    // meanwhile either gets it here or finds it in its offline flush (it
    // ignores a second copy of the same entry).
    for t in shared.router.message_targets(bare) {
        t.deliver(Outbound::Queued {
            seq,
            bytes: bytes.clone(),
        });
    }
    Ok(())
}

async fn account_exists(shared: &Shared, bare: &str) -> bool {
    shared.router.is_online(bare) || shared.store.account_exists(bare).await.unwrap_or(false)
}

/// The bytes to forward: `from` stamped, a server stanza-id added for
/// chat and normal messages, and any stanza-id claiming to be ours removed.
fn stamp(st: &Stanza, from: &str, bare: &str) -> (Arc<[u8]>, String) {
    let ty = MsgType::parse(st.stanza_type().as_deref());
    let spoofed: Vec<usize> = st
        .children()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.name == "stanza-id" && c.ns == ns::SID && c.attr(st, "by").as_deref() == Some(bare)
        })
        .map(|(i, _)| i)
        .collect();
    let mut extra = Vec::new();
    let mut id = String::new();
    if matches!(ty, MsgType::Normal | MsgType::Chat) {
        id = util::random_id();
        extra.extend_from_slice(b"<stanza-id xmlns='urn:xmpp:sid:0' id='");
        extra.extend_from_slice(id.as_bytes());
        extra.extend_from_slice(b"' by='");
        natter_xml::escape_attr(bare, &mut extra);
        extra.extend_from_slice(b"'/>");
    }
    (st.rewrite(Some(from), None, &spoofed, &extra).into(), id)
}

/// Whether a message is kept for an offline recipient: chat states alone and
/// `no-store` hints are not (XEP-0160, XEP-0085, XEP-0334).
fn storable(st: &Stanza) -> bool {
    let children = st.children();
    if children
        .iter()
        .any(|c| c.ns == ns::HINTS && (c.name == "no-store" || c.name == "no-permanent-store"))
    {
        return false;
    }
    if children
        .iter()
        .any(|c| c.ns == ns::HINTS && c.name == "store")
    {
        return true;
    }
    children.iter().any(|c| {
        !(c.ns == ns::CHATSTATES
            || c.name == "thread"
            || (c.ns == ns::SID && c.name == "origin-id"))
    })
}

/// Writes the message to the recipient's durable queue; its entry number.
async fn enqueue(
    shared: &Shared,
    from: &str,
    bare: &str,
    st: &Stanza,
    bytes: &Arc<[u8]>,
    stanza_id: String,
) -> Result<u64, &'static str> {
    let msg = OfflineMessage {
        from: from.to_owned(),
        stanza_id,
        stamp_unix_ms: util::now_unix_ms(),
        stanza: bytes.to_vec(),
        msg_id: st.id().map(|i| i.into_owned()).unwrap_or_default(),
    };
    shared.store.offline_push(bare, &msg).await.map_err(|e| {
        tracing::error!(error = %e, "queueing a message failed");
        "internal-server-error"
    })
}
