//! Message carbons (XEP-0280, `urn:xmpp:carbons:2`): every other device of
//! an account sees both sides of its conversations.
//!
//! A session turns carbons on or off with an IQ; the flag lives in its
//! router entry. Routing a message then costs nothing more while no session
//! of the server has carbons on (one atomic load), and otherwise no more
//! registry look-ups than before: the recipient's carbons-enabled sessions
//! come with the same look-up that finds where the message goes
//! (`Router::message_route`), and the sender's own are cached in its session
//! until the registry changes.
//!
//! Copies are live only: never queued for later (the archive is how a
//! device catches up). A message a client sends with a `<sent/>` or
//! `<received/>` wrapper is refused: only the server makes carbons
//! (§11: copies are trusted because they come from the account itself).

use super::iq::Reply;
use crate::c2s::session::Session;
use crate::ns;
use crate::router::{Mailbox, Router};
use natter_xml::Stanza;
use std::sync::Arc;

pub const NS: &str = "urn:xmpp:carbons:2";
/// Stanza forwarding (XEP-0297), the wrapper inside a carbon.
pub const FORWARD: &str = "urn:xmpp:forward:0";

/// `<enable/>` or `<disable/>` from the session's client, to its own
/// account (or with no `to`).
pub fn handle(s: &mut Session, name: &str, set: bool) -> Reply {
    let on = match name {
        "enable" => true,
        "disable" => false,
        _ => return Reply::bad_request("carbons knows <enable/> and <disable/>"),
    };
    if !set {
        return Reply::bad_request("carbons are enabled and disabled with an iq of type set");
    }
    if !s.shared.router.set_carbons(&s.bare, s.conn_id, on) {
        return Reply::error("wait", "internal-server-error");
    }
    Reply::Result(None)
}

/// Carbons of another account's sessions are not this client's to change.
pub fn not_yours() -> Reply {
    Reply::error("cancel", "not-allowed")
}

/// Whether a message from a client carries a carbon wrapper of its own:
/// only the server makes those.
pub fn is_forged(st: &Stanza) -> bool {
    st.children()
        .iter()
        .any(|c| c.ns == NS && (c.name == "sent" || c.name == "received"))
}

/// Whether a message is copied to the other devices (XEP-0280 §6): chat
/// messages, and normal ones with a body; not when the sender asked for no
/// copies (`<private/>`, XEP-0334 `<no-copy/>`).
pub fn eligible(st: &Stanza) -> bool {
    let children = st.children();
    let kind_ok = match st.stanza_type().as_deref() {
        Some("chat") => true,
        None | Some("normal") => children.iter().any(|c| c.name == "body"),
        _ => false,
    };
    kind_ok
        && !children.iter().any(|c| {
            (c.ns == NS && matches!(c.name.as_str(), "private" | "sent" | "received"))
                || (c.ns == ns::HINTS && c.name == "no-copy")
        })
}

/// Indexes of the `<private/>` elements among a message's children: the
/// server removes them before delivery (§7).
pub fn private_children(st: &Stanza) -> impl Iterator<Item = usize> + '_ {
    st.children()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.ns == NS && c.name == "private")
        .map(|(i, _)| i)
}

/// The sender's other carbons-enabled sessions, as of the router's
/// `changes()` count when they were looked up (boxed: most sessions never
/// need it).
#[derive(Default)]
pub struct Siblings(Option<Box<(u64, Vec<Copied>)>>);

/// A session that gets a copy: its mailbox and resource.
pub type Copied = (Mailbox, String);

impl Siblings {
    fn get(&mut self, router: &Router, bare: &str, conn_id: u64) -> &[Copied] {
        let now = router.changes();
        let fresh = matches!(&self.0, Some(b) if b.0 == now);
        if !fresh {
            let list = router.carbon_sessions(bare, conn_id);
            self.0 = Some(Box::new((now, list)));
        }
        self.0.as_ref().map(|b| b.1.as_slice()).unwrap_or(&[])
    }
}

/// Sends the copies of an eligible message `bytes` (as delivered: `from`
/// stamped) that session `s` sent to `to_bare`: `<received/>` to
/// `received` (the recipient's carbons-enabled sessions that did not get
/// it), `<sent/>` to the sender's other carbons-enabled sessions. A message
/// to the sender's own account is copied once, as received. A sent copy
/// also carries the message's id in the sender's archive (`stanza_id`, the
/// same as in the recipient's; XEP-0313 §5.1), so the sender's other
/// devices can page the archive from it.
pub fn copy(
    s: &mut Session,
    to_bare: &str,
    received: &[Copied],
    ty: Option<&str>,
    bytes: &[u8],
    stanza_id: &str,
) {
    let router = &s.shared.router;
    if !router.any_carbons() {
        return;
    }
    for (mailbox, resource) in received {
        mailbox.stanza(&wrap("received", to_bare, resource, ty, bytes));
    }
    if to_bare == s.bare {
        return;
    }
    let siblings = s.carbons.get(router, &s.bare, s.conn_id);
    if siblings.is_empty() {
        return;
    }
    let sent = with_own_stanza_id(bytes, stanza_id, &s.bare);
    for (mailbox, resource) in siblings {
        mailbox.stanza(&wrap("sent", &s.bare, resource, ty, &sent));
    }
}

/// The message with `<stanza-id id=ID by=BARE/>` added as its last child
/// (the bytes as they are when there is no id or no children).
fn with_own_stanza_id<'a>(bytes: &'a [u8], id: &str, bare: &str) -> std::borrow::Cow<'a, [u8]> {
    const END: &[u8] = b"</message>";
    if id.is_empty() || !bytes.ends_with(END) {
        return bytes.into();
    }
    let mut out = Vec::with_capacity(bytes.len() + id.len() + bare.len() + 48);
    out.extend_from_slice(&bytes[..bytes.len() - END.len()]);
    out.extend_from_slice(b"<stanza-id xmlns='urn:xmpp:sid:0' id='");
    natter_xml::escape_attr(id, &mut out);
    out.extend_from_slice(b"' by='");
    natter_xml::escape_attr(bare, &mut out);
    out.extend_from_slice(b"'/>");
    out.extend_from_slice(END);
    out.into()
}

/// `<message from=bare to=bare/resource><KIND><forwarded>MESSAGE</forwarded></KIND></message>`.
fn wrap(kind: &str, bare: &str, resource: &str, ty: Option<&str>, inner: &[u8]) -> Arc<[u8]> {
    let mut out = Vec::with_capacity(inner.len() + 2 * bare.len() + resource.len() + 160);
    out.extend_from_slice(b"<message from='");
    natter_xml::escape_attr(bare, &mut out);
    out.extend_from_slice(b"' to='");
    natter_xml::escape_attr(bare, &mut out);
    out.push(b'/');
    natter_xml::escape_attr(resource, &mut out);
    out.push(b'\'');
    if let Some(t) = ty {
        out.extend_from_slice(b" type='");
        natter_xml::escape_attr(t, &mut out);
        out.push(b'\'');
    }
    out.extend_from_slice(b"><");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b" xmlns='");
    out.extend_from_slice(NS.as_bytes());
    out.extend_from_slice(b"'><forwarded xmlns='");
    out.extend_from_slice(FORWARD.as_bytes());
    out.extend_from_slice(b"'>");
    push_in_client_ns(inner, &mut out);
    out.extend_from_slice(b"</forwarded></");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"></message>");
    out.into()
}

/// Appends a stanza from the stream, whose namespace was the stream's
/// default, declaring `jabber:client` on it (inside `<forwarded/>` the
/// default namespace is XEP-0297's).
fn push_in_client_ns(stanza: &[u8], out: &mut Vec<u8>) {
    let name_end = stanza
        .iter()
        .skip(1)
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .map_or(stanza.len(), |p| p + 1);
    let (head, rest) = stanza.split_at(name_end);
    out.extend_from_slice(head);
    if !declares_default_ns(rest) {
        out.extend_from_slice(b" xmlns='");
        out.extend_from_slice(ns::CLIENT.as_bytes());
        out.push(b'\'');
    }
    out.extend_from_slice(rest);
}

/// Whether the start tag at the beginning of `rest` (just after the element
/// name) declares a default namespace (an `xmlns` attribute outside quotes).
fn declares_default_ns(rest: &[u8]) -> bool {
    let mut quote = 0u8;
    for (i, &b) in rest.iter().enumerate() {
        match (quote, b) {
            (0, b'\'' | b'"') => quote = b,
            (0, b'>') => return false,
            (0, b' ' | b'\t' | b'\r' | b'\n') => {
                let after = &rest[i + 1..];
                if after.starts_with(b"xmlns")
                    && matches!(after.get(5), Some(b'=' | b' ' | b'\t' | b'\r' | b'\n'))
                {
                    return true;
                }
            }
            (q, c) if q != 0 && c == q => quote = 0,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &str) -> Stanza {
        Stanza::parse(b.as_bytes(), ns::CLIENT).unwrap()
    }

    #[test]
    fn which_messages_are_copied() {
        assert!(eligible(&parse("<message type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")));
        assert!(eligible(&parse("<message><body>hi</body></message>")));
        assert!(!eligible(&parse("<message><subject>x</subject></message>")));
        assert!(!eligible(&parse(
            "<message type='headline'><body>hi</body></message>"
        )));
        assert!(!eligible(&parse(
            "<message type='groupchat'><body>hi</body></message>"
        )));
        assert!(!eligible(&parse(
            "<message type='error'><body>hi</body></message>"
        )));
        assert!(!eligible(&parse(
            "<message type='chat'><body>hi</body><private xmlns='urn:xmpp:carbons:2'/></message>"
        )));
        assert!(!eligible(&parse(
            "<message type='chat'><body>hi</body><no-copy xmlns='urn:xmpp:hints'/></message>"
        )));
    }

    #[test]
    fn forged_carbons_are_recognised() {
        assert!(is_forged(&parse(
            "<message><received xmlns='urn:xmpp:carbons:2'/></message>"
        )));
        assert!(is_forged(&parse(
            "<message><sent xmlns='urn:xmpp:carbons:2'/></message>"
        )));
        assert!(!is_forged(&parse(
            "<message><sent xmlns='urn:example'/></message>"
        )));
    }

    #[test]
    fn a_copy_wraps_the_message_in_the_client_namespace() {
        let w = wrap(
            "sent",
            "a@x",
            "r&1",
            Some("chat"),
            b"<message from='a@x/p' to='b@x'><body>hi</body></message>",
        );
        let st = parse(std::str::from_utf8(&w).unwrap());
        assert_eq!(st.from().as_deref(), Some("a@x"));
        assert_eq!(st.to().as_deref(), Some("a@x/r&1"));
        let el = st.element().unwrap();
        let inner = el
            .get_child("sent", NS)
            .and_then(|e| e.get_child("forwarded", FORWARD))
            .and_then(|e| e.get_child("message", ns::CLIENT))
            .expect("message in jabber:client");
        assert_eq!(
            inner.get_child("body", ns::CLIENT).map(|b| b.text()),
            Some("hi".into())
        );
        // Already declared: not declared twice.
        let w = wrap(
            "received",
            "a@x",
            "r",
            None,
            b"<message xmlns='jabber:client' to='a@x'/>",
        );
        parse(std::str::from_utf8(&w).unwrap());
        assert!(!declares_default_ns(b" a=' xmlns=1' xmlns:p='u'>"));
        assert!(declares_default_ns(b" a='>' xmlns = 'u'>"));
    }
}
