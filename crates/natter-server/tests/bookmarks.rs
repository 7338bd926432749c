//! XEP-0402 bookmarks on PEP: publishing, reading and retracting rooms,
//! their notifications, the node's privacy (whitelist, also when a client
//! forgets the publish-options), discovery, and malformed bookmarks
//! refused on every path with nothing changed. The compatibility copies
//! (XEP-0048 in private storage and PEP) are in `bookmarks_compat.rs`.

mod bookmarks_helpers;
mod common;
mod pep_helpers;
use bookmarks_helpers::*;
use common::*;
use natter_store::Subscription;
use pep_helpers::*;

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

#[tokio::test]
async fn publish_retrieve_retract_with_notifications() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut w = watcher(srv.addr, "alice", "w").await;
    let play = conference("name='The Play' autojoin='true'", "<nick>JC</nick>");
    let orchard = conference(
        "name='Orchard'",
        "<password>pw</password><extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions>",
    );
    assert_ok(&publish_room(&mut a, "play@conf.localhost", &play).await);
    assert_ok(&publish_room(&mut a, "orchard@conf.localhost", &orchard).await);
    let got = events(&mut a, &mut w, "m1").await;
    assert_eq!(
        only(BM, &got),
        [
            published_event("play@conf.localhost", &play),
            published_event("orchard@conf.localhost", &orchard)
        ]
    );
    // The XEP-0048 copy followed each change.
    assert_eq!(only(LEGACY, &got).len(), 2, "{got:?}");
    assert_eq!(
        native_rooms(&mut a).await,
        [
            ("play@conf.localhost".to_owned(), play.clone()),
            ("orchard@conf.localhost".to_owned(), orchard.clone())
        ]
    );
    // Re-publishing a room replaces it.
    let play2 = conference("name='The Play'", "<nick>Puck</nick>");
    assert_ok(&publish_room(&mut a, "play@conf.localhost", &play2).await);
    assert_eq!(
        native_rooms(&mut a).await,
        [
            ("orchard@conf.localhost".to_owned(), orchard),
            ("play@conf.localhost".to_owned(), play2)
        ]
    );
    assert_ok(&retract_room(&mut a, "orchard@conf.localhost").await);
    let got = events(&mut a, &mut w, "m2").await;
    assert_eq!(
        only(BM, &got).last(),
        Some(&retract_event("orchard@conf.localhost"))
    );
    assert_eq!(native_ids(&mut a).await, ["play@conf.localhost"]);
    // An unknown room is item-not-found.
    let r = retract_room(&mut a, "nowhere@conf.localhost").await;
    assert_error(&r, "cancel", "item-not-found", None);
}

#[tokio::test]
async fn the_node_is_created_private_even_without_publish_options() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = watcher(srv.addr, "bob", "b").await;
    let payload = conference("name='R'", "");
    // A client that forgets the publish-options still gets a private node.
    let r = publish(&mut a, "p", BM, Some("r@conf.localhost"), &payload, None).await;
    assert_ok(&r);
    let r = owner_iq(&mut a, "c", "get", &format!("<configure node='{BM}'/>")).await;
    assert_ok(&r);
    let el = r.element().unwrap();
    let x = el
        .get_child("pubsub", OWNER)
        .and_then(|p| p.get_child("configure", OWNER))
        .and_then(|c| c.get_child("x", "jabber:x:data"))
        .unwrap();
    for (var, value) in [
        ("pubsub#access_model", "whitelist"),
        ("pubsub#max_items", "max"),
        ("pubsub#persist_items", "1"),
        ("pubsub#send_last_published_item", "never"),
    ] {
        let field = x.elements().find(|f| f.attr("var") == Some(var)).unwrap();
        let got = field.get_child("value", "jabber:x:data").map(|v| v.text());
        assert_eq!(got.as_deref(), Some(value), "{var}");
    }
    // A contact receiving alice's presence, asking for notifications,
    // reads nothing and is told nothing.
    let r = items(&mut b, "r", A, BM, "", "").await;
    assert_error(&r, "cancel", "not-allowed", Some("closed-node"));
    let r = items(&mut b, "r", A, LEGACY, "", "").await;
    assert_error(&r, "cancel", "not-allowed", Some("closed-node"));
    let r = b
        .iq(
            "pv",
            &format!(
                "<iq type='get' id='pv' to='{A}'><query xmlns='{PRIVATE}'><storage xmlns='{LEGACY}'/></query></iq>"
            ),
        )
        .await;
    assert_error(&r, "auth", "forbidden", None);
    assert_ok(&publish_room(&mut a, "s@conf.localhost", &payload).await);
    let to = b.jid.clone();
    send_marker(&mut a, &to, "m1").await;
    let got = notifications(&until_marker(&mut b, "m1").await);
    assert!(got.is_empty(), "{got:?}");
    // The XEP's publish-options are met by the node as created.
    assert_ok(&publish_room(&mut a, "t@conf.localhost", &payload).await);
}

#[tokio::test]
async fn a_node_made_readable_is_made_private_again_before_natterd_writes() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    assert_ok(&publish_room(&mut a, "r@conf.localhost", &conference("", "")).await);
    assert_ok(&configure(&mut a, "c", BM, &[("pubsub#access_model", "presence")]).await);
    assert_ok(&items(&mut b, "r1", A, BM, "", "").await);
    // A XEP-0048 client writes: the rooms go to a private node only.
    let list = format!("<storage xmlns='{LEGACY}'><conference jid='r@conf.localhost' name='secret'><password>s3</password></conference></storage>");
    assert_ok(&private_set(&mut a, &list).await);
    let r = items(&mut b, "r2", A, BM, "", "").await;
    assert_error(&r, "cancel", "not-allowed", Some("closed-node"));
}

#[tokio::test]
async fn the_account_advertises_the_compatibility() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = a
        .iq(
            "d",
            &format!("<iq type='get' id='d' to='{A}'><query xmlns='{DISCO_INFO}'/></iq>"),
        )
        .await;
    let t = text(&r);
    for f in [
        "urn:xmpp:bookmarks:1#compat",
        "urn:xmpp:bookmarks:1#compat-pep",
        "urn:xmpp:bookmarks-conversion:0",
        "http://jabber.org/protocol/pubsub#config-node-max",
        "http://jabber.org/protocol/pubsub#publish-options",
    ] {
        assert!(t.contains(&format!("<feature var='{f}'/>")), "{f}: {t}");
    }
}

/// Everything alice's bookmarks hold, in all three places.
async fn everything(a: &mut Client) -> (Vec<(String, String)>, String, String) {
    (
        native_rooms(a).await,
        private_list(a).await,
        legacy_list(a).await,
    )
}

#[tokio::test]
async fn malformed_bookmarks_are_refused_and_change_nothing() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut w = watcher(srv.addr, "alice", "w").await;
    let good = format!("<storage xmlns='{LEGACY}'><conference jid='r@conf.localhost' name='R' autojoin='true'><nick>me</nick></conference><url name='u' url='https://example.org/'/></storage>");
    assert_ok(&private_set(&mut a, &good).await);
    events(&mut a, &mut w, "m0").await;
    let before = everything(&mut a).await;
    // XEP-0402 items: the item id is the room's bare JID, the payload a
    // well-formed <conference/>.
    let ok = conference("name='x'", "");
    for (room, payload, app) in [
        ("not-a-room", ok.as_str(), None),
        ("r@conf.localhost/nick", &ok, None),
        ("conf.localhost", &ok, None),
        (
            "s@conf.localhost",
            "<conference xmlns='storage:bookmarks'/>",
            Some("invalid-payload"),
        ),
        (
            "s@conf.localhost",
            &conference("autojoin='yes'", ""),
            Some("invalid-payload"),
        ),
        (
            "s@conf.localhost",
            &conference("", "<nick>a</nick><nick>b</nick>"),
            Some("invalid-payload"),
        ),
        (
            "s@conf.localhost",
            &conference("", "<x xmlns='urn:example'/>"),
            Some("invalid-payload"),
        ),
        (
            "s@conf.localhost",
            &conference("jid='s@conf.localhost'", ""),
            Some("invalid-payload"),
        ),
    ] {
        let r = publish_room(&mut a, room, payload).await;
        assert_error(&r, "modify", "bad-request", app);
    }
    let r = publish(&mut a, "p", BM, None, &ok, Some(NATIVE_OPTIONS)).await;
    assert_error(&r, "modify", "bad-request", None);
    // XEP-0048 lists, in private storage and in PEP.
    let bad_lists = [
        format!("<storage xmlns='{LEGACY}'><conference name='no jid'/></storage>"),
        format!("<storage xmlns='{LEGACY}'><conference jid='not a jid'/></storage>"),
        format!("<storage xmlns='{LEGACY}'><conference jid='r@conf.localhost' autojoin='sometimes'/></storage>"),
        format!("<storage xmlns='{LEGACY}'><conference jid='s@conf.localhost'/><conference jid='s@conf.localhost'/></storage>"),
        format!("<storage xmlns='{LEGACY}'><conference jid='s@conf.localhost'><nick><b/></nick></conference></storage>"),
    ];
    for list in &bad_lists {
        assert_error(
            &private_set(&mut a, list).await,
            "modify",
            "bad-request",
            None,
        );
        let r = legacy_publish(&mut a, list).await;
        assert_error(&r, "modify", "bad-request", Some("invalid-payload"));
    }
    let r = legacy_publish(&mut a, &format!("<conference xmlns='{BM}'/>")).await;
    assert_error(&r, "modify", "bad-request", Some("invalid-payload"));
    let r = publish(
        &mut a,
        "p",
        LEGACY,
        Some("other"),
        &good,
        Some(LEGACY_OPTIONS),
    )
    .await;
    assert_error(&r, "modify", "bad-request", None);
    // More rooms than an account may bookmark.
    let mut many = format!("<storage xmlns='{LEGACY}'>");
    for i in 0..257 {
        many.push_str(&format!("<conference jid='room{i}@conf.localhost'/>"));
    }
    many.push_str("</storage>");
    assert_error(
        &private_set(&mut a, &many).await,
        "modify",
        "policy-violation",
        None,
    );
    assert_error(
        &legacy_publish(&mut a, &many).await,
        "modify",
        "policy-violation",
        None,
    );
    // A refused private set stores none of its elements.
    let mixed = format!("<prefs xmlns='urn:example:prefs'>1</prefs>{}", bad_lists[0]);
    assert_error(
        &private_set(&mut a, &mixed).await,
        "modify",
        "bad-request",
        None,
    );
    let r = a
        .iq(
            "g",
            &format!("<iq type='get' id='g'><query xmlns='{PRIVATE}'><prefs xmlns='urn:example:prefs'/></query></iq>"),
        )
        .await;
    assert!(
        text(&r).contains("<prefs xmlns='urn:example:prefs'/>"),
        "{}",
        text(&r)
    );
    assert_eq!(everything(&mut a).await, before);
    let got = events(&mut a, &mut w, "m1").await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn an_account_bookmarks_at_most_256_rooms() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut full = format!("<storage xmlns='{LEGACY}'>");
    for i in 0..256 {
        full.push_str(&format!("<conference jid='room{i}@conf.localhost'/>"));
    }
    full.push_str("</storage>");
    assert_ok(&private_set(&mut a, &full).await);
    assert_eq!(native_ids(&mut a).await.len(), 256);
    let r = publish_room(&mut a, "one-more@conf.localhost", &conference("", "")).await;
    assert_error(&r, "modify", "policy-violation", None);
    // Changing a room already there is fine.
    let r = publish_room(&mut a, "room7@conf.localhost", &conference("name='7'", "")).await;
    assert_ok(&r);
    let ids = native_ids(&mut a).await;
    assert_eq!((ids.len(), ids[0].as_str()), (256, "room0@conf.localhost"));
}
