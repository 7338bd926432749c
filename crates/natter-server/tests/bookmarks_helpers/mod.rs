//! Helpers for the bookmark tests (`bookmarks*.rs`): the three places a
//! client writes bookmarks — XEP-0402 items, the XEP-0048 list in private
//! storage (XEP-0049) and in the `storage:bookmarks` PEP node — and what
//! reading each gives back.
#![allow(dead_code)]

use crate::common::{text, Client};
use crate::pep_helpers::*;
use natter_xml::Stanza;

pub const BM: &str = "urn:xmpp:bookmarks:1";
pub const LEGACY: &str = "storage:bookmarks";
pub const PRIVATE: &str = "jabber:iq:private";

/// The publish-options XEP-0402 clients send.
pub const NATIVE_OPTIONS: &[(&str, &str)] = &[
    ("pubsub#persist_items", "true"),
    ("pubsub#max_items", "max"),
    ("pubsub#send_last_published_item", "never"),
    ("pubsub#access_model", "whitelist"),
];

/// The publish-options XEP-0048 clients send with their PEP list.
pub const LEGACY_OPTIONS: &[(&str, &str)] = &[
    ("pubsub#persist_items", "true"),
    ("pubsub#access_model", "whitelist"),
];

/// A XEP-0402 payload: `attrs` as written (`name='A' autojoin='true'`),
/// `inner` its children.
pub fn conference(attrs: &str, inner: &str) -> String {
    format!("<conference xmlns='{BM}' {attrs}>{inner}</conference>")
}

/// Publishes a room as XEP-0402 clients do; returns the reply.
pub async fn publish_room(c: &mut Client, room: &str, payload: &str) -> Stanza {
    publish(c, "bm-pub", BM, Some(room), payload, Some(NATIVE_OPTIONS)).await
}

/// Retracts a room with notify='true', as XEP-0402 asks; returns the reply.
pub async fn retract_room(c: &mut Client, room: &str) -> Stanza {
    c.iq(
        "bm-retract",
        &format!(
            "<iq type='set' id='bm-retract'><pubsub xmlns='{PUBSUB}'><retract node='{BM}' notify='true'><item id='{room}'/></retract></pubsub></iq>"
        ),
    )
    .await
}

/// The XEP-0402 items of the client's own account: (room, item XML),
/// oldest first.
pub async fn native_rooms(c: &mut Client) -> Vec<(String, String)> {
    let own = c.jid.split('/').next().unwrap().to_owned();
    let r = items(c, "bm-items", &own, BM, "", "").await;
    assert_ok(&r);
    let el = r.element().unwrap();
    let items = el
        .get_child("pubsub", PUBSUB)
        .and_then(|p| p.get_child("items", PUBSUB))
        .expect("an items result");
    items
        .elements()
        .map(|i| {
            let payload = i.elements().next().expect("a payload");
            (
                i.attr("id").unwrap_or_default().to_owned(),
                String::from_utf8(payload.to_bytes("")).unwrap(),
            )
        })
        .collect()
}

/// The room ids of [`native_rooms`].
pub async fn native_ids(c: &mut Client) -> Vec<String> {
    native_rooms(c)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// Stores a XEP-0048 list in private storage; returns the reply.
pub async fn private_set(c: &mut Client, list: &str) -> Stanza {
    c.iq(
        "bm-priv-set",
        &format!("<iq type='set' id='bm-priv-set'><query xmlns='{PRIVATE}'>{list}</query></iq>"),
    )
    .await
}

/// The XEP-0048 list in private storage, as XML.
pub async fn private_list(c: &mut Client) -> String {
    let r = c
        .iq(
            "bm-priv-get",
            &format!(
                "<iq type='get' id='bm-priv-get'><query xmlns='{PRIVATE}'><storage xmlns='{LEGACY}'/></query></iq>"
            ),
        )
        .await;
    assert_ok(&r);
    let el = r.element().unwrap();
    let list = el
        .get_child("query", PRIVATE)
        .and_then(|q| q.get_child("storage", LEGACY))
        .expect("the list");
    String::from_utf8(list.to_bytes("")).unwrap()
}

/// Publishes a XEP-0048 list to `storage:bookmarks` as XEP-0048 clients
/// do (item `current`); returns the reply.
pub async fn legacy_publish(c: &mut Client, list: &str) -> Stanza {
    publish(
        c,
        "bm-legacy",
        LEGACY,
        Some("current"),
        list,
        Some(LEGACY_OPTIONS),
    )
    .await
}

/// The XEP-0048 list in the `storage:bookmarks` node, as XML.
pub async fn legacy_list(c: &mut Client) -> String {
    let own = c.jid.split('/').next().unwrap().to_owned();
    let r = items(c, "bm-legacy-items", &own, LEGACY, "", "").await;
    assert_eq!(item_ids(&r), ["current"], "{}", text(&r));
    let el = r.element().unwrap();
    let item = el
        .get_child("pubsub", PUBSUB)
        .and_then(|p| p.get_child("items", PUBSUB))
        .and_then(|i| i.elements().next())
        .unwrap();
    let list = item.get_child("storage", LEGACY).expect("the list");
    String::from_utf8(list.to_bytes("")).unwrap()
}

/// A session of `user` whose capabilities ask for both bookmark nodes'
/// notifications.
pub async fn watcher(addr: std::net::SocketAddr, user: &str, resource: &str) -> Client {
    let mut c = Client::login(addr, user, "pw", resource).await;
    announce_caps(&mut c, &[BM, LEGACY]).await;
    c
}

/// The notifications `watcher` got because of what `actor` (same
/// account) did before: (node, event XML), up to a marker from `actor`.
pub async fn events(
    actor: &mut Client,
    watcher: &mut Client,
    marker: &str,
) -> Vec<(String, String)> {
    let to = watcher.jid.clone();
    send_marker(actor, &to, marker).await;
    let before = until_marker(watcher, marker).await;
    notifications(&before)
        .into_iter()
        .map(|(_, node, xml)| {
            let at = xml.find("<event").unwrap();
            let end = xml.find("</event>").unwrap() + "</event>".len();
            (node, xml[at..end].to_owned())
        })
        .collect()
}

/// The events of `node` among `events`.
pub fn only(node: &str, events: &[(String, String)]) -> Vec<(String, String)> {
    events.iter().filter(|(n, _)| n == node).cloned().collect()
}

/// A XEP-0402 item event: published `room` with `payload`.
pub fn published_event(room: &str, payload: &str) -> (String, String) {
    (
        BM.to_owned(),
        format!("<event xmlns='{EVENT}'><items node='{BM}'><item id='{room}'>{payload}</item></items></event>"),
    )
}

/// A XEP-0402 retraction event for `room`.
pub fn retract_event(room: &str) -> (String, String) {
    (
        BM.to_owned(),
        format!("<event xmlns='{EVENT}'><items node='{BM}'><retract id='{room}'/></items></event>"),
    )
}

/// A `storage:bookmarks` event carrying `list`.
pub fn legacy_event(list: &str) -> (String, String) {
    (
        LEGACY.to_owned(),
        format!("<event xmlns='{EVENT}'><items node='{LEGACY}'><item id='current'>{list}</item></items></event>"),
    )
}
