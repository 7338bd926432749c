//! Client state indication (XEP-0352, `urn:xmpp:csi:0`): while a client
//! says it is inactive (a phone in a pocket), what only changes a screen it
//! does not show waits, folded to the latest of each kind.
//!
//! Held while inactive: presence (available or unavailable) from a contact,
//! the latest per sender full JID; messages that carry nothing but a chat
//! state (XEP-0085), the latest per sender full JID. Everything else — a
//! message with content, a carbon, a receipt or marker, an IQ, a
//! subscription request, an error, a queued message — first releases what
//! is held, in the order it came, then goes out itself. `<active/>`
//! releases everything, and so does going over `MAX_HELD` items or
//! `MAX_HELD_BYTES` bytes.
//!
//! Held stanzas are not yet sent, so XEP-0198 does not count them until they
//! are. When the connection is lost (or replaced by a resumption) they are
//! handed to stream management as sent-and-unacknowledged, so a resumption
//! delivers them; and the resumed stream starts active (XEP-0352 §5). A
//! session that ends for good drops them like any other live-only stanza
//! it had not written (presence is sent again on the next login).

use crate::c2s::conn::ConnError;
use crate::c2s::session::Session;
use crate::ns;
use natter_xml::Stanza;
use std::collections::VecDeque;
use std::sync::Arc;

pub const NS: &str = "urn:xmpp:csi:0";

/// The stream feature, offered after authentication.
pub const FEATURE: &[u8] = b"<csi xmlns='urn:xmpp:csi:0'/>";

/// Most stanzas held for an inactive client; one more releases them all.
pub const MAX_HELD: usize = 128;
/// Most bytes held for an inactive client; going over releases them all.
pub const MAX_HELD_BYTES: usize = 64 * 1024;

/// What a held stanza replaces: the earlier one with the same key.
#[derive(Debug, PartialEq, Eq)]
enum Key {
    Presence(Box<str>),
    ChatState(Box<str>),
}

/// The stanzas held for an inactive client, oldest first.
#[derive(Debug, Default)]
pub struct Held {
    items: VecDeque<(Key, Arc<[u8]>)>,
    bytes: usize,
}

impl Held {
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Holds `bytes`, dropping an earlier stanza with the same key (the new
    /// one goes last: it is the newest). False when that would go over the
    /// limits; nothing changes then.
    fn hold(&mut self, key: Key, bytes: &Arc<[u8]>) -> bool {
        let old = self.items.iter().position(|(k, _)| *k == key);
        let freed = old.map_or(0, |i| self.items[i].1.len());
        let count = self.items.len() + usize::from(old.is_none());
        if count > MAX_HELD || self.bytes - freed + bytes.len() > MAX_HELD_BYTES {
            return false;
        }
        if let Some(i) = old {
            self.items.remove(i);
        }
        self.bytes = self.bytes - freed + bytes.len();
        self.items.push_back((key, bytes.clone()));
        true
    }

    fn take(&mut self) -> VecDeque<(Key, Arc<[u8]>)> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }
}

/// `<active/>` or `<inactive/>` from the client (nonzas: not counted by
/// XEP-0198). Any other element in the namespace is a stream error.
pub fn from_client(s: &mut Session, el: &Stanza) -> Result<(), ConnError> {
    match el.name() {
        "inactive" => {
            if s.csi.is_none() {
                s.csi = Some(Box::default());
            }
            Ok(())
        }
        "active" => {
            release(s);
            s.csi = None;
            Ok(())
        }
        other => Err(ConnError::Stream(
            "unsupported-stanza-type",
            Some(format!("<{other}/> is not a client state (XEP-0352)")),
        )),
    }
}

/// Holds a stanza from the mailbox while the client is inactive, if it is
/// one that may wait. True when it was taken care of (held, or released
/// with the rest because the limits were reached).
pub fn hold(s: &mut Session, bytes: &Arc<[u8]>) -> bool {
    let Some(held) = s.csi.as_mut() else {
        return false;
    };
    let Some(key) = key_of(bytes) else {
        return false;
    };
    if held.hold(key, bytes) {
        return true;
    }
    release(s);
    s.write_shared(bytes);
    true
}

/// Sends what is held, oldest first (before anything else is sent).
#[inline]
pub fn release(s: &mut Session) {
    if s.csi.as_ref().is_some_and(|h| !h.is_empty()) {
        release_all(s);
    }
}

fn release_all(s: &mut Session) {
    let Some(held) = s.csi.as_mut() else {
        return;
    };
    for (_, bytes) in held.take() {
        s.write_shared(&bytes);
    }
}

/// The connection is gone or replaced: what is held becomes sent and
/// unacknowledged (a resumption retransmits it), and the session is active
/// again (the state is not kept across a resumption).
pub fn reset(s: &mut Session) {
    release(s);
    s.csi = None;
}

/// The key of a stanza that may wait, or None if it may not.
fn key_of(bytes: &[u8]) -> Option<Key> {
    let head = bytes.get(..9)?;
    let presence = head.starts_with(b"<presence");
    if !presence && !head.starts_with(b"<message") {
        return None;
    }
    let st = Stanza::parse(bytes, ns::CLIENT).ok()?;
    let from = st.from()?.into_owned().into_boxed_str();
    let ty = st.stanza_type();
    if presence {
        return match ty.as_deref() {
            None | Some("unavailable") => Some(Key::Presence(from)),
            _ => None,
        };
    }
    if matches!(ty.as_deref(), Some("error" | "groupchat" | "headline")) {
        return None;
    }
    let children = st.children();
    let only_chat_state = children.iter().any(|c| c.ns == ns::CHATSTATES)
        && children.iter().all(|c| {
            c.ns == ns::CHATSTATES || c.ns == ns::SID || c.ns == ns::HINTS || c.name == "thread"
        });
    only_chat_state.then_some(Key::ChatState(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Arc<[u8]> {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn what_may_wait() {
        let p = key_of(b"<presence from='a@x/1'><show>away</show></presence>");
        assert_eq!(p, Some(Key::Presence("a@x/1".into())));
        assert!(key_of(b"<presence from='a@x/1' type='unavailable'/>").is_some());
        assert!(key_of(b"<presence from='a@x' type='subscribe'/>").is_none());
        assert!(key_of(b"<presence from='a@x' type='error'/>").is_none());
        let cs = key_of(b"<message from='a@x/1' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/><stanza-id xmlns='urn:xmpp:sid:0' id='1' by='b@x'/></message>");
        assert_eq!(cs, Some(Key::ChatState("a@x/1".into())));
        assert!(key_of(b"<message from='a@x/1' type='chat'><body>hi</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>").is_none());
        assert!(key_of(
            b"<message from='a@x/1'><received xmlns='urn:xmpp:receipts' id='1'/></message>"
        )
        .is_none());
        assert!(key_of(b"<message from='a@x/1' type='chat'/>").is_none());
        assert!(key_of(b"<iq from='a@x/1' type='get' id='1'/>").is_none());
    }

    #[test]
    fn folds_to_the_latest_per_key_in_arrival_order() {
        let mut h = Held::default();
        assert!(h.hold(Key::Presence("a".into()), &b("1")));
        assert!(h.hold(Key::ChatState("a".into()), &b("22")));
        assert!(h.hold(Key::Presence("b".into()), &b("3")));
        assert!(h.hold(Key::Presence("a".into()), &b("4444")));
        assert_eq!(h.bytes, 2 + 1 + 4);
        let got: Vec<_> = h.take().into_iter().map(|(_, b)| b.to_vec()).collect();
        assert_eq!(got, vec![b"22".to_vec(), b"3".to_vec(), b"4444".to_vec()]);
        assert!(h.is_empty());
        assert_eq!(h.bytes, 0);
    }

    #[test]
    fn refuses_beyond_the_limits() {
        let mut h = Held::default();
        for i in 0..MAX_HELD {
            assert!(h.hold(Key::Presence(i.to_string().into()), &b("x")));
        }
        assert!(!h.hold(Key::Presence("new".into()), &b("x")));
        // Replacing one still fits.
        assert!(h.hold(Key::Presence("0".into()), &b("y")));
        let mut h = Held::default();
        let big: Arc<[u8]> = vec![b'x'; MAX_HELD_BYTES].into();
        assert!(h.hold(Key::Presence("a".into()), &big));
        assert!(!h.hold(Key::Presence("b".into()), &b("x")));
        assert_eq!(h.items.len(), 1);
    }
}
