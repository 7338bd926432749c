//! 1:1 message routing (RFC 6121 §8.5) with XEP-0359 stanza-ids, and the
//! offline store (XEP-0160) for accounts with no available resource.
//!
//! The routing path never builds an XML tree: it reads the envelope, checks
//! the direct children's names, and forwards the bytes with `from` stamped.

use crate::c2s::session::{deliver_one, Session};
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
    if let Err(cond) = route(
        &s.shared,
        &full,
        &bare,
        resource.as_deref(),
        st,
        Some(s.conn_id),
        &mut s.out,
    )
    .await
    {
        if ty != MsgType::Error {
            s.send(&util::bounce(st, &full, &to, "cancel", cond, None));
        }
    }
}

/// Routes a message from `from` to `bare` (and `resource`, if a full JID).
/// Output for the sending session itself (`self_conn`) goes to `self_out`.
/// `Err(condition)` when the sender must get an error.
pub async fn route(
    shared: &Shared,
    from: &str,
    bare: &str,
    resource: Option<&str>,
    st: &Stanza,
    self_conn: Option<u64>,
    self_out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    let ty = MsgType::parse(st.stanza_type().as_deref());
    let bytes = stamp(st, from, bare);
    let give = |tx: &tokio::sync::mpsc::Sender<Outbound>, conn: u64, out: &mut Vec<u8>| -> bool {
        if Some(conn) == self_conn {
            out.extend_from_slice(&bytes);
            true
        } else {
            deliver_one(tx, &bytes)
        }
    };
    // Full JID of a connected resource: that resource (RFC 6121 §8.5.3.1).
    if let Some(r) = resource {
        if let Some(e) = shared.router.session(bare, r) {
            if give(&e.tx, e.conn_id, self_out) {
                return Ok(());
            }
        }
        if ty == MsgType::Groupchat {
            return Err("service-unavailable");
        }
    }
    if ty == MsgType::Error {
        // Errors to a missing resource or an unavailable account are dropped.
        if resource.is_none() {
            deliver_bare(shared, bare, &give, self_out);
        }
        return Ok(());
    }
    if deliver_bare(shared, bare, &give, self_out) > 0 {
        return if ty == MsgType::Groupchat {
            Err("service-unavailable")
        } else {
            Ok(())
        };
    }
    // Nobody available to take it now.
    let exists =
        shared.router.is_online(bare) || shared.store.account_exists(bare).await.unwrap_or(false);
    if !exists {
        return if ty == MsgType::Headline {
            Ok(())
        } else {
            Err("service-unavailable")
        };
    }
    match ty {
        MsgType::Groupchat => Err("service-unavailable"),
        MsgType::Headline | MsgType::Error => Ok(()),
        MsgType::Normal | MsgType::Chat => {
            if storable(st) {
                store_offline(shared, from, bare, &bytes).await
            } else {
                Ok(())
            }
        }
    }
}

/// Delivers to the available non-negative-priority sessions of `bare`.
fn deliver_bare(
    shared: &Shared,
    bare: &str,
    give: &impl Fn(&tokio::sync::mpsc::Sender<Outbound>, u64, &mut Vec<u8>) -> bool,
    out: &mut Vec<u8>,
) -> usize {
    shared
        .router
        .sessions(bare)
        .iter()
        .filter(|e| e.available && e.priority >= 0)
        .filter(|e| give(&e.tx, e.conn_id, out))
        .count()
}

/// The bytes to forward: `from` stamped, a server stanza-id added for
/// chat and normal messages, and any stanza-id claiming to be ours removed.
fn stamp(st: &Stanza, from: &str, bare: &str) -> Arc<[u8]> {
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
    if matches!(ty, MsgType::Normal | MsgType::Chat) {
        extra.extend_from_slice(b"<stanza-id xmlns='urn:xmpp:sid:0' id='");
        extra.extend_from_slice(util::random_id().as_bytes());
        extra.extend_from_slice(b"' by='");
        natter_xml::escape_attr(bare, &mut extra);
        extra.extend_from_slice(b"'/>");
    }
    st.rewrite(Some(from), None, &spoofed, &extra).into()
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

async fn store_offline(
    shared: &Shared,
    from: &str,
    bare: &str,
    bytes: &Arc<[u8]>,
) -> Result<(), &'static str> {
    let stanza_id = Stanza::parse(bytes, ns::CLIENT)
        .ok()
        .and_then(|s| {
            s.child("stanza-id", ns::SID)
                .and_then(|c| c.attr(&s, "id"))
                .map(|c| c.into_owned())
        })
        .unwrap_or_default();
    let msg = OfflineMessage {
        from: from.to_owned(),
        stanza_id,
        stamp_unix_ms: util::now_unix_ms(),
        stanza: bytes.to_vec(),
    };
    if let Err(e) = shared.store.offline_push(bare, &msg).await {
        tracing::error!(error = %e, "offline store failed");
        return Err("internal-server-error");
    }
    // A session may have become available while this was being written:
    // make it look again so nothing waits until the next login.
    for tx in shared.router.available(bare) {
        let _ = tx.try_send(Outbound::CheckOffline);
    }
    Ok(())
}
