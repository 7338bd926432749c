//! IQ dispatch (RFC 6120 §8.2.3): to the server, to an account, or routed
//! to a resource.

use crate::c2s::session::Session;
use crate::modules::{
    account, avatar, blocking, caps, carbons, disco, last, last_seen, mam, pep, private, queue,
    roster, vcard,
};
use crate::{ns, util};
use natter_xml::{Element, Stanza};
use std::sync::Arc;

/// Who an IQ is for.
enum Target {
    /// The server itself (`to` is the domain).
    Server,
    /// An account's bare JID (`to` absent means the sender's own).
    Account(String),
    /// A resource: routed, not answered.
    Resource(String, String),
}

/// The answer to an IQ get/set.
pub enum Reply {
    Result(Option<Element>),
    Error(&'static str, &'static str, Option<String>),
    /// An error with an application-specific condition besides the
    /// defined one (RFC 6120 §8.3.4), e.g. XEP-0060's
    /// `<precondition-not-met/>`: (type, condition, text, app condition).
    Detailed(&'static str, &'static str, Option<String>, Box<Element>),
}

impl Reply {
    pub fn error(kind: &'static str, condition: &'static str) -> Reply {
        Reply::Error(kind, condition, None)
    }
    pub fn service_unavailable() -> Reply {
        Reply::error("cancel", "service-unavailable")
    }
    pub fn bad_request(text: &str) -> Reply {
        Reply::Error("modify", "bad-request", Some(text.into()))
    }
}

pub async fn from_client(s: &mut Session, st: &Stanza) {
    let ty = st.stanza_type().map(|t| t.into_owned()).unwrap_or_default();
    let id = st.id().map(|i| i.into_owned());
    let is_request = ty == "get" || ty == "set";
    let Some(id) = id.filter(|_| is_request || ty == "result" || ty == "error") else {
        if is_request || ty.is_empty() {
            let e = util::iq_error_bytes(
                "",
                Some(&s.full),
                "modify",
                "bad-request",
                Some("an iq needs an id and a type"),
            );
            s.send(&e);
        }
        return;
    };
    let to_attr = st.to().map(|t| t.into_owned());
    let target = match &to_attr {
        None => Target::Account(s.bare.clone()),
        Some(to) => match jid::Jid::new(to) {
            Err(_) => {
                if is_request {
                    let e =
                        util::iq_error_bytes(&id, Some(&s.full), "modify", "jid-malformed", None);
                    s.send(&e);
                }
                return;
            }
            Ok(j) => {
                if j.domain().as_str() != s.shared.config.domain {
                    if is_request {
                        let e = util::bounce(
                            st,
                            &s.full,
                            to,
                            "cancel",
                            "remote-server-not-found",
                            None,
                        );
                        s.send(&e);
                    }
                    return;
                }
                match (j.node(), j.resource()) {
                    (None, None) => Target::Server,
                    (None, Some(_)) => Target::Server,
                    (Some(_), None) => Target::Account(j.as_str().to_owned()),
                    (Some(_), Some(r)) => {
                        Target::Resource(j.to_bare().as_str().to_owned(), r.as_str().to_owned())
                    }
                }
            }
        },
    };
    // Blocklists (XEP-0191) stand between accounts.
    let peer = match &target {
        Target::Account(o) => Some((o.clone(), o.clone())),
        Target::Resource(b, r) => Some((b.clone(), format!("{b}/{r}"))),
        Target::Server => None,
    };
    if let Some((bare, to)) = peer {
        if blocking::refuse_iq(s, st, &to, &bare).await {
            return;
        }
    }
    if let Target::Resource(bare, resource) = target {
        route_to_resource(s, st, &bare, &resource, is_request);
        return;
    }
    if !is_request {
        // Answers to the server's own queries (XEP-0115 disco#info); other
        // results and errors to the server or an account end here.
        if matches!(target, Target::Server) || to_attr.is_none() {
            caps::answer(s, st, &id).await;
        }
        return;
    }
    let Some(payload) = st.children().first() else {
        let e = util::iq_error_bytes(
            &id,
            Some(&s.full),
            "modify",
            "bad-request",
            Some("an iq get/set needs one payload"),
        );
        s.send(&e);
        return;
    };
    let key = (payload.name.clone(), payload.ns.clone());
    let set = ty == "set";
    let reply = match target {
        Target::Server => server_iq(s, st, &key.0, &key.1, set).await,
        Target::Account(owner) => {
            account_iq(s, st, &owner, &key.0, &key.1, set, to_attr.is_none()).await
        }
        Target::Resource(..) => unreachable!(),
    };
    let mut out = Vec::with_capacity(128);
    match reply {
        Reply::Result(payload) => {
            out.extend_from_slice(b"<iq type='result' id='");
            natter_xml::escape_attr(&id, &mut out);
            out.push(b'\'');
            if let Some(from) = &to_attr {
                out.extend_from_slice(b" from='");
                natter_xml::escape_attr(from, &mut out);
                out.push(b'\'');
            }
            out.extend_from_slice(b" to='");
            natter_xml::escape_attr(&s.full, &mut out);
            out.push(b'\'');
            match payload {
                Some(p) => {
                    out.push(b'>');
                    p.write_to(&mut out, ns::CLIENT);
                    out.extend_from_slice(b"</iq>");
                }
                None => out.extend_from_slice(b"/>"),
            }
        }
        Reply::Error(kind, cond, text) => {
            let from = to_attr.clone().unwrap_or_else(|| s.bare.clone());
            out = util::bounce(st, &s.full, &from, kind, cond, text.as_deref());
        }
        Reply::Detailed(kind, cond, text, app) => {
            let from = to_attr.clone().unwrap_or_else(|| s.bare.clone());
            out = util::bounce(st, &s.full, &from, kind, cond, text.as_deref());
            let at = out
                .windows(8)
                .rposition(|w| w == b"</error>")
                .expect("bounce has an error element");
            out.splice(at..at, app.to_bytes(ns::STANZAS));
        }
    }
    s.send(&out);
}

/// IQs to the domain (and the server-wide namespaces when `to` is absent).
async fn server_iq(s: &mut Session, st: &Stanza, name: &str, ns_: &str, set: bool) -> Reply {
    match (name, ns_, set) {
        ("query", ns::DISCO_INFO, false) => disco::server_info(st),
        ("query", ns::DISCO_ITEMS, false) => {
            Reply::Result(Some(Element::new("query", ns::DISCO_ITEMS)))
        }
        ("ping", ns::PING, false) => Reply::Result(None),
        ("query", ns::VERSION, false) => Reply::Result(Some(
            Element::new("query", ns::VERSION)
                .with_child(Element::new("name", ns::VERSION).with_text("natter"))
                .with_child(
                    Element::new("version", ns::VERSION).with_text(env!("CARGO_PKG_VERSION")),
                ),
        )),
        ("time", ns::TIME, false) => {
            let utc = util::xmpp_datetime(util::now_unix_ms());
            Reply::Result(Some(
                Element::new("time", ns::TIME)
                    .with_child(Element::new("tzo", ns::TIME).with_text("+00:00"))
                    .with_child(Element::new("utc", ns::TIME).with_text(utc)),
            ))
        }
        ("query", ns::LAST, false) => last::server_uptime(s),
        ("query", account::NS, _) => account::handle(s, st, true, set).await,
        ("session", ns::SESSION, true) => Reply::Result(None),
        _ => Reply::service_unavailable(),
    }
}

/// IQs to an account's bare JID (or with no `to`: the sender's own account).
async fn account_iq(
    s: &mut Session,
    st: &Stanza,
    owner: &str,
    name: &str,
    ns_: &str,
    set: bool,
    no_to: bool,
) -> Reply {
    let own = owner == s.bare;
    match (name, ns_) {
        ("query", ns::ROSTER) if own => roster::handle(s, st, set).await,
        ("query", ns::ROSTER) => Reply::error("auth", "forbidden"),
        (_, carbons::NS) if own => carbons::handle(s, name, set),
        (_, carbons::NS) => carbons::not_yours(),
        ("vCard", ns::VCARD) => vcard::handle(s, st, owner, set).await,
        ("queued", queue::NS) if !set && !no_to => queue::handle(s, st, owner).await,
        ("query", ns::LAST) if !own && !set => last::of_contact(s, owner).await,
        ("blocklist" | "block" | "unblock", blocking::NS) if own => {
            blocking::handle(s, st, name, set).await
        }
        ("blocklist" | "block" | "unblock", blocking::NS) => Reply::error("auth", "forbidden"),
        ("query", private::NS) => private::handle(s, st, own, set).await,
        ("visibility", last_seen::NS) => last_seen::handle(s, st, own, set).await,
        ("query", account::NS) => account::handle(s, st, own, set).await,
        // XEP-0313 message archive (query, prefs, metadata).
        (_, mam::NS) => mam::handle(s, st, owner, name, set).await,
        // XEP-0163 personal eventing: the account's PEP service.
        // Publishing the avatar metadata also converts it (XEP-0398).
        ("pubsub", pep::NS) if own && set => avatar::pubsub_set(s, st).await,
        ("pubsub", pep::NS) => pep::handle(s, st, owner, set).await,
        ("pubsub", pep::NS_OWNER) => pep::handle_owner(s, st, owner, set).await,
        ("query", ns::DISCO_INFO) if !set && !no_to => disco::account_info(s, st, owner).await,
        ("query", ns::DISCO_ITEMS) if !set && !no_to => pep::disco_items(s, st, owner).await,
        // With no `to`, server-wide namespaces are answered by the server.
        _ if no_to => server_iq(s, st, name, ns_, set).await,
        ("ping", ns::PING) if !set && own => Reply::Result(None),
        _ => Reply::service_unavailable(),
    }
}

/// Forwards an IQ to one resource; a request to a missing resource gets
/// `service-unavailable` (RFC 6121 §8.5.3.2.1).
fn route_to_resource(s: &mut Session, st: &Stanza, bare: &str, resource: &str, is_request: bool) {
    if let Some(e) = s.shared.router.session(bare, resource) {
        let bytes: Arc<[u8]> = st.rewrite(Some(&s.full), None, &[], b"").into();
        if e.conn_id == s.conn_id {
            s.send(&bytes);
            return;
        }
        if e.mailbox.stanza(&bytes) {
            return;
        }
    }
    if is_request {
        let to = format!("{bare}/{resource}");
        let e = util::bounce(st, &s.full, &to, "cancel", "service-unavailable", None);
        s.send(&e);
    }
}
