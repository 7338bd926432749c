//! Helpers for the PEP (XEP-0163) tests, `pep*.rs` (apart from `common/`,
//! which natterd's tests share): requests, forms, errors, roster relations
//! set up in the store, and entity capabilities (XEP-0115) that ask for
//! notifications.
#![allow(dead_code)]

use crate::common::{text, Client, TestServer};
use natter_store::{RosterItem, Subscription};
use natter_xml::Stanza;

/// The caps tests' helpers: the verification string of a client's
/// features, and the server's disco#info queries.
#[path = "../caps_helpers/mod.rs"]
mod caps;

pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// A submitted data form of `form_type` with these (field, value) pairs.
pub fn form(form_type: &str, fields: &[(&str, &str)]) -> String {
    let mut x = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>"
    );
    for (var, value) in fields {
        x.push_str(&format!(
            "<field var='{var}'><value>{value}</value></field>"
        ));
    }
    x.push_str("</x>");
    x
}

/// A publish of `payload` as item `item` (None: no id) to `node`, with
/// publish-options when `options` is given; returns the reply.
pub async fn publish(
    c: &mut Client,
    id: &str,
    node: &str,
    item: Option<&str>,
    payload: &str,
    options: Option<&[(&str, &str)]>,
) -> Stanza {
    let item_id = item.map(|i| format!(" id='{i}'")).unwrap_or_default();
    let opts = options
        .map(|o| {
            format!(
                "<publish-options>{}</publish-options>",
                form(PUBLISH_OPTIONS, o)
            )
        })
        .unwrap_or_default();
    c.iq(
        id,
        &format!(
            "<iq type='set' id='{id}'><pubsub xmlns='{PUBSUB}'><publish node='{node}'><item{item_id}>{payload}</item></publish>{opts}</pubsub></iq>"
        ),
    )
    .await
}

/// A publish that must succeed; returns the item id the server reports.
pub async fn publish_ok(c: &mut Client, node: &str, item: Option<&str>, payload: &str) -> String {
    let r = publish(c, "pub-ok", node, item, payload, None).await;
    assert_ok(&r);
    let el = r.element().unwrap();
    el.get_child("pubsub", PUBSUB)
        .and_then(|p| p.get_child("publish", PUBSUB))
        .and_then(|p| p.get_child("item", PUBSUB))
        .and_then(|i| i.attr("id"))
        .expect("the result names the item")
        .to_owned()
}

/// An items request to `owner`'s `node` (`extra`: attributes or children).
pub async fn items(
    c: &mut Client,
    id: &str,
    owner: &str,
    node: &str,
    attrs: &str,
    inner: &str,
) -> Stanza {
    c.iq(
        id,
        &format!(
            "<iq type='get' id='{id}' to='{owner}'><pubsub xmlns='{PUBSUB}'><items node='{node}'{attrs}>{inner}</items></pubsub></iq>"
        ),
    )
    .await
}

/// The item ids of an items result, in order.
pub fn item_ids(r: &Stanza) -> Vec<String> {
    assert_ok(r);
    let el = r.element().unwrap();
    let items = el
        .get_child("pubsub", PUBSUB)
        .and_then(|p| p.get_child("items", PUBSUB))
        .expect("an items result");
    items
        .elements()
        .map(|i| i.attr("id").unwrap_or_default().to_owned())
        .collect()
}

/// An owner request (`pubsub#owner`) with `inner` as the request element.
pub async fn owner_iq(c: &mut Client, id: &str, ty: &str, inner: &str) -> Stanza {
    c.iq(
        id,
        &format!("<iq type='{ty}' id='{id}'><pubsub xmlns='{OWNER}'>{inner}</pubsub></iq>"),
    )
    .await
}

/// Sets `node`'s configuration fields; returns the reply.
pub async fn configure(c: &mut Client, id: &str, node: &str, fields: &[(&str, &str)]) -> Stanza {
    let x = form(NODE_CONFIG, fields);
    owner_iq(
        c,
        id,
        "set",
        &format!("<configure node='{node}'>{x}</configure>"),
    )
    .await
}

pub fn assert_ok(r: &Stanza) {
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(r));
}

/// Asserts an error with this type, condition and pubsub#errors condition.
pub fn assert_error(r: &Stanza, ty: &str, cond: &str, app: Option<&str>) {
    let t = text(r);
    assert_eq!(r.stanza_type().as_deref(), Some("error"), "{t}");
    assert!(
        t.contains(&format!("<error type='{ty}'>")),
        "type {ty}: {t}"
    );
    assert!(
        t.contains(&format!(
            "<{cond} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        )),
        "{cond}: {t}"
    );
    match app {
        Some(a) => assert!(t.contains(&format!("<{a} xmlns='{ERRORS}'")), "{a}: {t}"),
        None => assert!(!t.contains(ERRORS), "no pubsub condition: {t}"),
    }
}

/// Puts `contact` in `owner`'s roster with `sub` (and `groups`), and the
/// matching row in `contact`'s roster, straight in the store.
pub async fn relate(
    srv: &TestServer,
    owner: &str,
    contact: &str,
    sub: Subscription,
    groups: &[&str],
) {
    let (o, c) = (format!("{owner}@localhost"), format!("{contact}@localhost"));
    let mirror = match sub {
        Subscription::From => Subscription::To,
        Subscription::To => Subscription::From,
        other => other,
    };
    let row = |jid: &str, sub, groups: &[&str]| RosterItem {
        jid: jid.into(),
        subscription: sub,
        in_roster: true,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..RosterItem::default()
    };
    srv.store
        .roster_put(&o, &row(&c, sub, groups))
        .await
        .unwrap();
    srv.store
        .roster_put(&c, &row(&o, mirror, &[]))
        .await
        .unwrap();
}

/// A ping round trip to the server: what the server sent the client
/// because of its earlier stanzas comes before the answer (it handles one
/// client's stanzas in order). Returns those stanzas.
pub async fn sync(c: &mut Client) -> Vec<Stanza> {
    c.send("<iq type='get' id='pep-sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let mut before = Vec::new();
    loop {
        let s = c.stanza().await;
        if s.name() == "iq" && s.id().as_deref() == Some("pep-sync") {
            return before;
        }
        before.push(s);
    }
}

/// The PEP notifications among `stanzas`: (from, node, the event's bytes).
pub fn notifications(stanzas: &[Stanza]) -> Vec<(String, String, String)> {
    stanzas
        .iter()
        .filter(|s| s.name() == "message" && s.has_child("event", EVENT))
        .map(|s| {
            let el = s.element().unwrap();
            let ev = el.get_child("event", EVENT).unwrap();
            let node = ev
                .elements()
                .next()
                .and_then(|e| e.attr("node"))
                .unwrap_or_default()
                .to_owned();
            (s.from().unwrap_or_default().into_owned(), node, text(s))
        })
        .collect()
}

/// Announces entity capabilities (XEP-0115) whose features ask for
/// notifications of `nodes` (plus one feature unique to this client, so
/// the server asks it), answers the server's disco#info query, and
/// returns what the server sent meanwhile and up to a later ping result
/// (the last items, among others). Sends available presence.
pub async fn announce_caps(c: &mut Client, nodes: &[&str]) -> Vec<Stanza> {
    let tag = c.jid.clone();
    announce(c, &tag, nodes, true).await
}

/// Announces the capabilities of `nodes` plus the feature
/// `urn:natter:test:TAG`: when `asked`, answers the server's query (the
/// first client with these features), otherwise expects the server to know
/// them already. Returns what the server sent up to a later ping result.
pub async fn announce(c: &mut Client, tag: &str, nodes: &[&str], asked: bool) -> Vec<Stanza> {
    let mut features: Vec<String> = vec![DISCO_INFO.to_owned(), format!("urn:natter:test:{tag}")];
    features.extend(nodes.iter().map(|n| format!("{n}+notify")));
    let features: Vec<&str> = features.iter().map(String::as_str).collect();
    let caps::Caps { ver, inner } = caps::caps(&features);
    let node = "https://natter.test/pep";
    c.send(format!(
        "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='{node}' ver='{ver}'/></presence>"
    ))
    .await;
    if !asked {
        let seen = sync(c).await;
        assert!(
            !seen.iter().any(caps::is_query),
            "known capabilities were asked for"
        );
        return seen;
    }
    let (mut seen, query) = until(c, caps::is_query).await;
    let id = query.id().unwrap().into_owned();
    let from = query.from().unwrap_or_default().into_owned();
    c.send(format!(
        "<iq type='result' to='{from}' id='{id}'><query xmlns='{DISCO_INFO}' node='{node}#{ver}'>{inner}</query></iq>"
    ))
    .await;
    seen.extend(sync(c).await);
    seen
}

pub const NICK: &str = "http://jabber.org/protocol/nick";
/// Alice's bare JID (the owner in most tests).
pub const A: &str = "alice@localhost";

/// A XEP-0172 nickname payload.
pub fn nick(n: &str) -> String {
    format!("<nick xmlns='{NICK}'>{n}</nick>")
}

/// A server with accounts `users` (password "pw").
pub async fn server(users: &[&str]) -> TestServer {
    let srv = TestServer::start().await;
    for u in users {
        srv.add_user(u, "pw").await;
    }
    srv
}

/// Sends an IQ (with id `id`) and returns what came before its answer,
/// and the answer.
pub async fn iq_collect(c: &mut Client, id: &str, iq: &str) -> (Vec<Stanza>, Stanza) {
    c.send(iq).await;
    let mut before = Vec::new();
    loop {
        let s = c.stanza().await;
        let answer = matches!(s.stanza_type().as_deref(), Some("result" | "error"));
        if s.name() == "iq" && s.id().as_deref() == Some(id) && answer {
            return (before, s);
        }
        before.push(s);
    }
}

/// A chat message from `from` to `to` with body `marker`: whatever `from`
/// caused for `to` before it arrives first.
pub async fn send_marker(from: &mut Client, to: &str, marker: &str) {
    from.send(format!(
        "<message to='{to}' type='chat' id='{marker}'><body>{marker}</body></message>"
    ))
    .await;
}

/// Reads until a stanza satisfies `pred`; returns what came before it,
/// and it.
pub async fn until(c: &mut Client, pred: impl Fn(&Stanza) -> bool) -> (Vec<Stanza>, Stanza) {
    let mut before = Vec::new();
    loop {
        let s = c.stanza().await;
        if pred(&s) {
            return (before, s);
        }
        before.push(s);
    }
}

/// Reads until the message with body `marker`; returns what came before.
pub async fn until_marker(c: &mut Client, marker: &str) -> Vec<Stanza> {
    let body = format!("<body>{marker}</body>");
    until(c, |s| s.name() == "message" && text(s).contains(&body))
        .await
        .0
}

/// Reads until a PEP notification of `node` arrives; returns its bytes.
pub async fn next_notification(c: &mut Client, node: &str) -> String {
    let s = c
        .expect("a notification", |s| {
            !notifications(std::slice::from_ref(s)).is_empty()
                && notifications(std::slice::from_ref(s))[0].1 == node
        })
        .await;
    text(&s)
}
