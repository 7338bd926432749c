//! Presence subscriptions (RFC 6121 §3): the state machine of Appendix A as
//! pure functions on a roster item, and the code that drives it for a user
//! (outbound) and the contact (inbound). Both accounts are local.

use super::roster::save_and_push;
use crate::c2s::session::Session;

use natter_store::{RosterItem, Subscription};
use natter_xml::Stanza;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl Kind {
    pub fn parse(t: &str) -> Option<Kind> {
        Some(match t {
            "subscribe" => Kind::Subscribe,
            "subscribed" => Kind::Subscribed,
            "unsubscribe" => Kind::Unsubscribe,
            "unsubscribed" => Kind::Unsubscribed,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Subscribe => "subscribe",
            Kind::Subscribed => "subscribed",
            Kind::Unsubscribe => "unsubscribe",
            Kind::Unsubscribed => "unsubscribed",
        }
    }
}

/// What an outbound or inbound step asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effect {
    /// The roster item changed and must be stored (and pushed).
    pub changed: bool,
    /// The stanza goes on (outbound: to the contact; inbound: to the client).
    pub deliver: bool,
    /// Inbound only: the server answers `subscribed` on the contact's behalf.
    pub auto_subscribed: bool,
}

/// The user sends `kind` to the contact: the user's item about the contact.
pub fn outbound(kind: Kind, item: &mut RosterItem) -> Effect {
    use Subscription::*;
    let mut e = Effect::default();
    match kind {
        Kind::Subscribe => {
            e.deliver = true;
            if matches!(item.subscription, None | From) && !item.ask_out {
                item.ask_out = true;
                item.in_roster = true;
                e.changed = true;
            }
        }
        Kind::Subscribed => {
            if item.pending_in {
                item.subscription = if item.subscription == To { Both } else { From };
                item.pending_in = false;
                item.pending_in_stanza = Option::None;
                item.in_roster = true;
                e.changed = true;
                e.deliver = true;
            } else if matches!(item.subscription, None | To) && !item.approved {
                // Pre-approval (RFC 6121 §3.4).
                item.approved = true;
                item.in_roster = true;
                e.changed = true;
            }
        }
        Kind::Unsubscribe => {
            e.deliver = true;
            let before = (item.subscription, item.ask_out);
            item.subscription = match item.subscription {
                To => None,
                Both => From,
                s => s,
            };
            item.ask_out = false;
            e.changed = before != (item.subscription, item.ask_out);
        }
        Kind::Unsubscribed => {
            let before = (item.subscription, item.pending_in, item.approved);
            item.subscription = match item.subscription {
                From => None,
                Both => To,
                s => s,
            };
            item.pending_in = false;
            item.pending_in_stanza = Option::None;
            item.approved = false;
            e.changed = before != (item.subscription, item.pending_in, item.approved);
            e.deliver = e.changed;
        }
    }
    e
}

/// The contact receives `kind` from the user: the contact's item about the user.
pub fn inbound(kind: Kind, item: &mut RosterItem, stanza: &[u8]) -> Effect {
    use Subscription::*;
    let mut e = Effect::default();
    match kind {
        Kind::Subscribe => {
            if matches!(item.subscription, From | Both) {
                e.auto_subscribed = true;
            } else if item.approved {
                item.subscription = if item.subscription == To { Both } else { From };
                item.approved = false;
                e.changed = true;
                e.auto_subscribed = true;
            } else {
                item.pending_in = true;
                item.pending_in_stanza = Some(stanza.to_vec());
                e.changed = true;
                e.deliver = true;
            }
        }
        Kind::Subscribed => {
            if item.ask_out {
                item.subscription = if item.subscription == From { Both } else { To };
                item.ask_out = false;
                e.changed = true;
                e.deliver = true;
            }
        }
        Kind::Unsubscribe => {
            if matches!(item.subscription, From | Both) || item.pending_in {
                item.subscription = match item.subscription {
                    From => None,
                    Both => To,
                    s => s,
                };
                item.pending_in = false;
                item.pending_in_stanza = Option::None;
                item.approved = false;
                e.changed = true;
                e.deliver = true;
            }
        }
        Kind::Unsubscribed => {
            if matches!(item.subscription, To | Both) || item.ask_out {
                item.subscription = match item.subscription {
                    To => None,
                    Both => From,
                    s => s,
                };
                item.ask_out = false;
                e.changed = true;
                e.deliver = true;
            }
        }
    }
    e
}

async fn load_item(s: &Session, owner: &str, contact: &str) -> Option<RosterItem> {
    match s.shared.store.roster_item(owner, contact).await {
        Ok(i) => Some(i.unwrap_or_else(|| RosterItem {
            jid: contact.to_owned(),
            ..RosterItem::default()
        })),
        Err(e) => {
            tracing::error!(error = %e, "roster read failed");
            Option::None
        }
    }
}

/// A subscription stanza from the client to `contact` (a normalised bare JID).
pub async fn from_client(s: &mut Session, kind: Kind, contact: &str, st: &Stanza) {
    let me = s.bare.clone();
    let Some(mut item) = load_item(s, &me, contact).await else {
        return;
    };
    let effect = outbound(kind, &mut item);
    if effect.changed && save_and_push(s, &me, &item).await.is_err() {
        return;
    }
    if effect.deliver {
        to_contact(s, kind, &me, contact, Some(st)).await;
    }
    match kind {
        Kind::Subscribed if effect.deliver => send_presences(s, &me, contact),
        Kind::Unsubscribed if effect.changed => send_unavailable(s, &me, contact),
        _ => {}
    }
}

/// Inbound processing at `to` of a subscription stanza from `from`.
pub async fn to_contact(
    s: &mut Session,
    kind: Kind,
    from: &str,
    to: &str,
    original: Option<&Stanza>,
) {
    match s.shared.store.account_exists(to).await {
        Ok(true) => {}
        _ => return, // no such account: nothing to tell anyone (RFC 6121 §3.1.3)
    }
    let bytes: Vec<u8> = match original {
        Some(st) => st.rewrite(Some(from), Some(to), &[], b""),
        None => {
            let mut b = b"<presence type='".to_vec();
            b.extend_from_slice(kind.as_str().as_bytes());
            b.extend_from_slice(b"' from='");
            natter_xml::escape_attr(from, &mut b);
            b.extend_from_slice(b"' to='");
            natter_xml::escape_attr(to, &mut b);
            b.extend_from_slice(b"'/>");
            b
        }
    };
    // Between accounts a blocklist stands between, only cancellations
    // change anything, and they are not delivered (XEP-0191).
    let hidden = !super::blocking::presence_allowed(s, from, from, to).await;
    if hidden && matches!(kind, Kind::Subscribe | Kind::Subscribed) {
        return;
    }
    let Some(mut item) = load_item(s, to, from).await else {
        return;
    };
    let effect = inbound(kind, &mut item, &bytes);
    if effect.changed && save_and_push(s, to, &item).await.is_err() {
        return;
    }
    if effect.deliver && !hidden {
        let bytes: Arc<[u8]> = bytes.into();
        deliver_to_available(s, to, &bytes);
    }
    if kind == Kind::Subscribed && effect.changed {
        // `to` now sees `from`'s presence, and its PEP (XEP-0163 §4.3.3).
        send_presences(s, from, to);
        super::pep::new_contact(s, from, to).await;
    }
    if effect.auto_subscribed {
        Box::pin(to_contact(s, Kind::Subscribed, to, from, None)).await;
    }
}

/// Gives every available session of `to` the bytes (this session directly).
pub fn deliver_to_available(s: &mut Session, to: &str, bytes: &Arc<[u8]>) {
    for e in s.shared.router.sessions(to) {
        if !e.available {
            continue;
        }
        if e.conn_id == s.conn_id {
            s.send(bytes);
        } else {
            e.mailbox.stanza(bytes);
        }
    }
}

/// Sends the current presence of every available session of `of` to `to`.
pub fn send_presences(s: &mut Session, of: &str, to: &str) {
    let presences: Vec<Arc<[u8]>> = s
        .shared
        .router
        .sessions(of)
        .into_iter()
        .filter_map(|e| e.presence)
        .collect();
    for p in presences {
        deliver_to_available(s, to, &p);
    }
}

/// Tells `to` that every session of `of` is unavailable (subscription lost).
pub fn send_unavailable(s: &mut Session, of: &str, to: &str) {
    for e in s.shared.router.sessions(of) {
        if e.available {
            let mut b = b"<presence type='unavailable' from='".to_vec();
            natter_xml::escape_attr(&format!("{of}/{}", e.resource), &mut b);
            b.extend_from_slice(b"' to='");
            natter_xml::escape_attr(to, &mut b);
            b.extend_from_slice(b"'/>");
            deliver_to_available(s, to, &Arc::from(b));
        }
    }
}

/// Pending inbound requests of `owner`, redelivered on each initial presence.
pub async fn pending_requests(s: &Session) -> Vec<Vec<u8>> {
    let blocked = super::blocking::own_list(s).await;
    match s.shared.store.roster(&s.bare).await {
        Ok((_, items)) => items
            .into_iter()
            .filter(|i| i.pending_in && !blocked.blocks(&i.jid))
            .map(|i| {
                i.pending_in_stanza.unwrap_or_else(|| {
                    let mut b = b"<presence type='subscribe' from='".to_vec();
                    natter_xml::escape_attr(&i.jid, &mut b);
                    b.extend_from_slice(b"'/>");
                    b
                })
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Subscription::*;

    fn item(sub: Subscription) -> RosterItem {
        RosterItem {
            jid: "c@x".into(),
            subscription: sub,
            in_roster: true,
            ..RosterItem::default()
        }
    }

    #[test]
    fn full_handshake_both_ways() {
        // user subscribes to contact
        let mut u = item(None);
        assert!(outbound(Kind::Subscribe, &mut u).deliver);
        assert!(u.ask_out);
        let mut c = RosterItem {
            jid: "u@x".into(),
            ..RosterItem::default()
        };
        let e = inbound(Kind::Subscribe, &mut c, b"<presence/>");
        assert!(e.deliver && c.pending_in && !c.in_roster);
        // contact approves
        let e = outbound(Kind::Subscribed, &mut c);
        assert!(e.deliver && e.changed);
        assert_eq!(c.subscription, From);
        let e = inbound(Kind::Subscribed, &mut u, b"");
        assert!(e.deliver);
        assert_eq!(u.subscription, To);
        assert!(!u.ask_out);
        // contact subscribes back: user already has From? no: user has To
        let e = outbound(Kind::Subscribe, &mut c);
        assert!(e.deliver && c.ask_out);
        let e = inbound(Kind::Subscribe, &mut u, b"");
        assert!(e.deliver && u.pending_in);
        outbound(Kind::Subscribed, &mut u);
        assert_eq!(u.subscription, Both);
        inbound(Kind::Subscribed, &mut c, b"");
        assert_eq!(c.subscription, Both);
        // user unsubscribes
        outbound(Kind::Unsubscribe, &mut u);
        assert_eq!(u.subscription, From);
        inbound(Kind::Unsubscribe, &mut c, b"");
        assert_eq!(c.subscription, To);
        // contact cancels user's... user cancels contact's subscription
        let e = outbound(Kind::Unsubscribed, &mut u);
        assert!(e.deliver);
        assert_eq!(u.subscription, None);
        inbound(Kind::Unsubscribed, &mut c, b"");
        assert_eq!(c.subscription, None);
    }

    #[test]
    fn preapproval_auto_answers() {
        let mut c = item(None);
        let e = outbound(Kind::Subscribed, &mut c);
        assert!(!e.deliver && c.approved);
        let e = inbound(Kind::Subscribe, &mut c, b"");
        assert!(e.auto_subscribed && !e.deliver);
        assert_eq!(c.subscription, From);
        assert!(!c.approved);
    }

    #[test]
    fn already_subscribed_is_answered_by_the_server() {
        let mut c = item(From);
        let e = inbound(Kind::Subscribe, &mut c, b"");
        assert!(e.auto_subscribed && !e.deliver && !e.changed);
    }

    #[test]
    fn unsolicited_subscribed_is_ignored() {
        let mut u = item(None);
        assert_eq!(inbound(Kind::Subscribed, &mut u, b""), Effect::default());
        assert_eq!(u.subscription, None);
    }

    #[test]
    fn denying_a_request_clears_it() {
        let mut c = RosterItem {
            jid: "u@x".into(),
            ..RosterItem::default()
        };
        inbound(Kind::Subscribe, &mut c, b"");
        let e = outbound(Kind::Unsubscribed, &mut c);
        assert!(e.deliver && !c.pending_in);
        let mut u = item(None);
        u.ask_out = true;
        let e = inbound(Kind::Unsubscribed, &mut u, b"");
        assert!(e.deliver && !u.ask_out);
    }
}
