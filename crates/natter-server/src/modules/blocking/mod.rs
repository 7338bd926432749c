//! Blocking (XEP-0191): the blocklist IQs with pushes to the resources that
//! asked for the list, and the checks the routing, presence and IQ paths
//! make.
//!
//! Lists live in the store's key-value space (namespace [`NS`], one key per
//! blocked JID). The checks never read the store in the steady state:
//! [`Blocklists`] knows every account that has a non-empty list (read once
//! at start) and keeps the lists themselves of a bounded number of them in
//! memory. An account with no list costs one atomic load (nobody blocks
//! anyone) or one map lookup; a list not in memory is loaded before the
//! stanza that needs it is handled ([`prepare`]).
//!
//! Layout: `lists.rs` — a blocklist, XEP-0016 matching and the in-memory
//! cache of lists; `iq.rs` — the blocklist IQs, pushes and the presence
//! changes blocking and unblocking cause; this file — the checks.

mod iq;
mod lists;

pub use iq::handle;
pub use lists::{Blocklists, List};

use super::message::Plan;
use crate::c2s::session::Session;
use crate::{ns, util};
use natter_xml::Stanza;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub const NS: &str = "urn:xmpp:blocking";
pub const NS_ERRORS: &str = "urn:xmpp:blocking:errors";

/// Items one account may block.
pub const MAX_ITEMS: usize = 1000;

// ---- checks -----------------------------------------------------------

/// Makes sure the lists a message from the client needs are in memory
/// (a no-op in the steady state), so that [`refuse_message`] decides
/// without the store.
pub async fn prepare(s: &Session, st: &Stanza) {
    let b = &s.shared.blocking;
    if b.owners.load(Ordering::SeqCst) == 0 {
        return;
    }
    if let Err(e) = b.ensure(&s.shared.store, &s.bare).await {
        tracing::error!(error = %e, "blocklist read failed");
    }
    let Some(to) = st.to() else { return };
    if let Ok(j) = jid::Jid::new(&to) {
        let bare = j.to_bare();
        if let Err(e) = b.ensure(&s.shared.store, bare.as_str()).await {
            tracing::error!(error = %e, "blocklist read failed");
        }
    }
}

/// Which side blocks a stanza from the session's user to `to` (a
/// normalised JID of bare JID `bare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The user blocks the recipient: `not-acceptable` with `<blocked/>`.
    SenderBlocks,
    /// The recipient blocks the user: refused as if it did not exist.
    RecipientBlocks,
}

fn verdict_now(s: &Session, to: &str, bare: &str) -> Option<Verdict> {
    let b = &s.shared.blocking;
    if bare == s.bare {
        return Some(Verdict::Allowed);
    }
    if b.blocks(&s.bare, to)? {
        return Some(Verdict::SenderBlocks);
    }
    if b.blocks(bare, &s.full)? {
        return Some(Verdict::RecipientBlocks);
    }
    Some(Verdict::Allowed)
}

/// The verdict, loading lists as needed.
pub async fn verdict(s: &Session, to: &str, bare: &str) -> Verdict {
    if let Some(v) = verdict_now(s, to, bare) {
        return v;
    }
    let (b, store) = (&s.shared.blocking, &s.shared.store);
    if b.check(store, &s.bare, to).await {
        Verdict::SenderBlocks
    } else if b.check(store, bare, &s.full).await {
        Verdict::RecipientBlocks
    } else {
        Verdict::Allowed
    }
}

/// The error for a stanza the user sent to someone it blocks (XEP-0191
/// §3.5): `not-acceptable` with `<blocked xmlns='urn:xmpp:blocking:errors'/>`.
pub fn blocked_error(st: &Stanza, sender: &str, to: &str) -> Vec<u8> {
    let mut e = util::bounce(st, sender, to, "cancel", "not-acceptable", None);
    let at = e
        .windows(8)
        .rposition(|w| w == b"</error>")
        .expect("bounce has an error element");
    let blocked = format!("<blocked xmlns='{NS_ERRORS}'/>");
    e.splice(at..at, blocked.bytes());
    e
}

/// The plan for a message refused by a blocklist, or None to route it. A
/// message from a blocked sender gets `service-unavailable` and is never
/// queued; errors are dropped silently.
pub fn refuse_message(s: &Session, st: &Stanza, to: &str, bare: &str) -> Option<Plan> {
    let v = match verdict_now(s, to, bare) {
        Some(v) => v,
        // `prepare` loaded both lists just before; only a store failure
        // leaves one unknown, and then the message is not routed.
        None => {
            return Some(Plan::Reply(util::bounce(
                st,
                &s.full,
                to,
                "wait",
                "internal-server-error",
                None,
            )))
        }
    };
    let is_error = st.stanza_type().as_deref() == Some("error");
    match v {
        Verdict::Allowed => None,
        _ if is_error => Some(Plan::Nothing),
        Verdict::SenderBlocks => Some(Plan::Reply(blocked_error(st, &s.full, to))),
        Verdict::RecipientBlocks => Some(Plan::Reply(util::bounce(
            st,
            &s.full,
            to,
            "cancel",
            "service-unavailable",
            None,
        ))),
    }
}

/// Refuses an IQ from the client to another account (its bare JID or a
/// resource) that a blocklist stands between; true when it was refused
/// (an error went to the client for a get/set). A blocked entity asking
/// for the user's last activity gets `forbidden` (XEP-0012 privacy).
pub async fn refuse_iq(s: &mut Session, st: &Stanza, to: &str, bare: &str) -> bool {
    if bare == s.bare {
        return false;
    }
    let v = verdict(s, to, bare).await;
    let is_request = matches!(st.stanza_type().as_deref(), Some("get") | Some("set"));
    match v {
        Verdict::Allowed => return false,
        _ if !is_request => {}
        Verdict::SenderBlocks => {
            let e = blocked_error(st, &s.full, to);
            s.send(&e);
        }
        Verdict::RecipientBlocks => {
            let last = !to.contains('/')
                && st
                    .children()
                    .first()
                    .is_some_and(|c| c.name == "query" && c.ns == ns::LAST);
            let (kind, cond) = if last {
                ("auth", "forbidden")
            } else {
                ("cancel", "service-unavailable")
            };
            let e = util::bounce(st, &s.full, to, kind, cond, None);
            s.send(&e);
        }
    }
    true
}

/// Presence the client sends to another account (directed, subscription
/// or probe) that a blocklist stands between: true when it must not go
/// on. To a blocked entity only cancellations go (`unavailable` is dropped:
/// it got that at the block); others get `not-acceptable` with
/// `<blocked/>`. From a user someone blocks, presence is dropped silently,
/// except cancellations, which change the sender's own roster (their
/// delivery is dropped in `subscription::to_contact`).
pub async fn refuse_presence(s: &mut Session, st: &Stanza, to: &str, bare: &str) -> bool {
    if bare == s.bare {
        return false;
    }
    let ty = st.stanza_type().map(|t| t.into_owned());
    let cancel = matches!(ty.as_deref(), Some("unsubscribe") | Some("unsubscribed"));
    match verdict(s, to, bare).await {
        Verdict::Allowed => false,
        _ if cancel => false,
        Verdict::SenderBlocks => {
            if !matches!(ty.as_deref(), Some("unavailable") | Some("error")) {
                let e = blocked_error(st, &s.full, to);
                s.send(&e);
            }
            true
        }
        Verdict::RecipientBlocks => true,
    }
}

/// Whether presence of `from` (a bare or full JID of bare `from_bare`)
/// may reach `to` (bare): neither blocks the other.
pub async fn presence_allowed(s: &Session, from: &str, from_bare: &str, to: &str) -> bool {
    if from_bare == to {
        return true;
    }
    let (b, store) = (&s.shared.blocking, &s.shared.store);
    !b.check(store, to, from).await && !b.check(store, from_bare, to).await
}

/// The session's own list (for filters at login).
pub async fn own_list(s: &Session) -> Arc<List> {
    match s.shared.blocking.list(&s.shared.store, &s.bare).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "blocklist read failed");
            Arc::new(List::default())
        }
    }
}
