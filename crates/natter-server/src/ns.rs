//! XML namespaces natterd speaks.

pub const CLIENT: &str = "jabber:client";
pub const TLS: &str = "urn:ietf:params:xml:ns:xmpp-tls";
pub const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";
pub const BIND: &str = "urn:ietf:params:xml:ns:xmpp-bind";
pub const SESSION: &str = "urn:ietf:params:xml:ns:xmpp-session";
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const ROSTER: &str = "jabber:iq:roster";
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
pub const CAPS: &str = "http://jabber.org/protocol/caps";
pub const PING: &str = "urn:xmpp:ping";
pub const VERSION: &str = "jabber:iq:version";
pub const TIME: &str = "urn:xmpp:time";
pub const LAST: &str = "jabber:iq:last";
pub const VCARD: &str = "vcard-temp";
pub const DELAY: &str = "urn:xmpp:delay";
pub const SID: &str = "urn:xmpp:sid:0";
pub const HINTS: &str = "urn:xmpp:hints";
pub const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";
pub const OFFLINE: &str = "msgoffline";
