//! XEP-0402 compatibility: a write through XEP-0402, through private
//! storage (XEP-0049) or through the XEP-0048 PEP node reaches the other
//! two (rooms added, changed, removed), with XEP-0402 notifications only
//! for the rooms that changed; what a format cannot carry stays in its
//! own copy; lists stored before are brought in; two sessions writing at
//! once leave the copies in step.

mod bookmarks_helpers;
mod common;
mod pep_helpers;
use bookmarks_helpers::*;
use common::*;
use natter_server::modules::pep::NodeConfig;
use natter_store::{PepItem, PepNewNode};
use pep_helpers::*;

/// A XEP-0402 payload as natterd writes it for a room.
fn native(attrs: &str, inner: &str) -> String {
    if inner.is_empty() {
        format!("<conference xmlns='{BM}'{attrs}/>")
    } else {
        format!("<conference xmlns='{BM}'{attrs}>{inner}</conference>")
    }
}

fn room(id: &str, payload: &str) -> (String, String) {
    (id.to_owned(), payload.to_owned())
}

const A: &str = "a@conf.localhost";
const B: &str = "b@conf.localhost";
const C: &str = "c@conf.localhost";
const URL: &str = "<url name='Site' url='https://example.org/'/>";

#[tokio::test]
async fn private_storage_writes_reach_xep_0402_and_pep() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut w = watcher(srv.addr, "alice", "w").await;
    let list = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='Room A' autojoin='1' minimize='1'><nick>al</nick><print_status>x</print_status></conference><conference jid='{B}'><password>s3</password></conference>{URL}</storage>");
    assert_ok(&private_set(&mut a, &list).await);
    let pa = native(" name='Room A' autojoin='true'", "<nick>al</nick>");
    let pb = native("", "<password>s3</password>");
    assert_eq!(
        events(&mut a, &mut w, "m1").await,
        [
            published_event(A, &pa),
            published_event(B, &pb),
            legacy_event(&list)
        ]
    );
    assert_eq!(native_rooms(&mut a).await, [room(A, &pa), room(B, &pb)]);
    assert_eq!(private_list(&mut a).await, list);
    assert_eq!(legacy_list(&mut a).await, list);
    // A unchanged, B removed, C added: only B and C are notified.
    let list2 = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='Room A' autojoin='true' minimize='1'><nick>al</nick></conference><conference jid='{C}' name='C'/>{URL}</storage>");
    assert_ok(&private_set(&mut a, &list2).await);
    let pc = native(" name='C'", "");
    assert_eq!(
        events(&mut a, &mut w, "m2").await,
        [
            published_event(C, &pc),
            retract_event(B),
            legacy_event(&list2)
        ]
    );
    assert_eq!(native_rooms(&mut a).await, [room(A, &pa), room(C, &pc)]);
    assert_eq!(legacy_list(&mut a).await, list2);
    // A changed.
    let list3 = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='Room A'/><conference jid='{C}' name='C'/></storage>");
    assert_ok(&private_set(&mut a, &list3).await);
    let pa3 = native(" name='Room A'", "");
    assert_eq!(
        events(&mut a, &mut w, "m3").await,
        [published_event(A, &pa3), legacy_event(&list3)]
    );
    // An empty list removes every room.
    let empty = format!("<storage xmlns='{LEGACY}'/>");
    assert_ok(&private_set(&mut a, &empty).await);
    assert_eq!(
        events(&mut a, &mut w, "m4").await,
        [retract_event(C), retract_event(A), legacy_event(&empty)]
    );
    assert!(native_rooms(&mut a).await.is_empty());
    assert_eq!(legacy_list(&mut a).await, empty);
}

#[tokio::test]
async fn xep_0048_pep_writes_reach_xep_0402_and_private_storage() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut w = watcher(srv.addr, "alice", "w").await;
    let list = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' autojoin='true' name='A'><nick>al</nick></conference><conference jid='{B}'/>{URL}</storage>");
    assert_ok(&legacy_publish(&mut a, &list).await);
    let pa = native(" name='A' autojoin='true'", "<nick>al</nick>");
    let pb = native("", "");
    assert_eq!(
        events(&mut a, &mut w, "m1").await,
        [
            legacy_event(&list),
            published_event(A, &pa),
            published_event(B, &pb)
        ]
    );
    assert_eq!(native_rooms(&mut a).await, [room(A, &pa), room(B, &pb)]);
    assert_eq!(private_list(&mut a).await, list);
    // Removing a room through the XEP-0048 node.
    let list2 = format!("<storage xmlns='{LEGACY}'><conference jid='{B}'/>{URL}</storage>");
    assert_ok(&legacy_publish(&mut a, &list2).await);
    assert_eq!(
        events(&mut a, &mut w, "m2").await,
        [legacy_event(&list2), retract_event(A)]
    );
    assert_eq!(native_rooms(&mut a).await, [room(B, &pb)]);
    assert_eq!(private_list(&mut a).await, list2);
    assert_eq!(legacy_list(&mut a).await, list2);
}

#[tokio::test]
async fn xep_0402_writes_reach_both_xep_0048_copies() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut w = watcher(srv.addr, "alice", "w").await;
    // What XEP-0402 cannot carry: a URL, a conference's own attribute and
    // child.
    let list = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='old' minimize='1'><nick>al</nick><x xmlns='urn:example'/></conference>{URL}</storage>");
    assert_ok(&private_set(&mut a, &list).await);
    events(&mut a, &mut w, "m0").await;
    let pa = conference(
        "name='new'",
        "<nick>al</nick><extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions>",
    );
    assert_ok(&publish_room(&mut a, A, &pa).await);
    assert_ok(&publish_room(&mut a, B, &conference("autojoin='1'", "")).await);
    let want = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='new' minimize='1'><nick>al</nick><x xmlns='urn:example'/></conference><conference jid='{B}' autojoin='true'/>{URL}</storage>");
    assert_eq!(private_list(&mut a).await, want);
    assert_eq!(legacy_list(&mut a).await, want);
    let got = events(&mut a, &mut w, "m1").await;
    assert_eq!(only(LEGACY, &got).last(), Some(&legacy_event(&want)));
    // Removing through XEP-0402.
    assert_ok(&retract_room(&mut a, A).await);
    let want =
        format!("<storage xmlns='{LEGACY}'><conference jid='{B}' autojoin='true'/>{URL}</storage>");
    assert_eq!(private_list(&mut a).await, want);
    assert_eq!(legacy_list(&mut a).await, want);
    // Purging, then deleting the node removes every room; the URL stays.
    assert_ok(&owner_iq(&mut a, "pu", "set", &format!("<purge node='{BM}'/>")).await);
    let want = format!("<storage xmlns='{LEGACY}'>{URL}</storage>");
    assert_eq!(private_list(&mut a).await, want);
    assert_ok(&publish_room(&mut a, C, &conference("", "")).await);
    assert_ok(&owner_iq(&mut a, "de", "set", &format!("<delete node='{BM}'/>")).await);
    assert_eq!(private_list(&mut a).await, want);
    assert_eq!(legacy_list(&mut a).await, want);
}

#[tokio::test]
async fn extensions_survive_a_xep_0048_change() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let ext = "<extensions><pinned xmlns='urn:xmpp:bookmarks-pinning:0'/></extensions>";
    assert_ok(&publish_room(&mut a, A, &conference("name='A'", ext)).await);
    // A XEP-0048 client renames the room; it knows nothing of extensions.
    let list = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='A2'/></storage>");
    assert_ok(&private_set(&mut a, &list).await);
    assert_eq!(
        native_rooms(&mut a).await,
        [room(A, &native(" name='A2'", ext))]
    );
}

#[tokio::test]
async fn removing_the_xep_0048_node_removes_that_copy_only() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    assert_ok(&publish_room(&mut a, A, &conference("", "")).await);
    let want = format!("<storage xmlns='{LEGACY}'><conference jid='{A}'/></storage>");
    assert_eq!(legacy_list(&mut a).await, want);
    assert_ok(&owner_iq(&mut a, "de", "set", &format!("<delete node='{LEGACY}'/>")).await);
    assert_eq!(native_ids(&mut a).await, [A]);
    assert_eq!(private_list(&mut a).await, want);
    // The next change writes it again.
    assert_ok(&publish_room(&mut a, B, &conference("", "")).await);
    let want = format!(
        "<storage xmlns='{LEGACY}'><conference jid='{A}'/><conference jid='{B}'/></storage>"
    );
    assert_eq!(legacy_list(&mut a).await, want);
}

#[tokio::test]
async fn lists_stored_before_are_brought_in() {
    let srv = server(&["alice"]).await;
    let owner = "alice@localhost";
    // Before natterd kept them in step: a private list, a different PEP
    // list, and a XEP-0402 item for a room both lists also name.
    let private = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='private'/><conference jid='{B}' name='private'/>{URL}</storage>");
    let pep = format!("<storage xmlns='{LEGACY}'><conference jid='{A}' name='pep'/><conference jid='{C}'/></storage>");
    let store = &srv.store;
    store
        .kv_put(
            PRIVATE,
            owner,
            "storage storage:bookmarks",
            private.as_bytes(),
        )
        .await
        .unwrap();
    let put = |node: &'static str, id: &'static str, payload: String| async move {
        let item = PepItem {
            id: id.into(),
            payload: payload.into_bytes(),
            publisher: format!("{owner}/old"),
            stamp_unix_ms: 1,
        };
        let config = NodeConfig::default_for(node).to_bytes();
        let create = PepNewNode {
            config: &config,
            max_nodes: 256,
        };
        store
            .pep_publish(owner, node, &item, 256, Some(create))
            .await
            .unwrap();
    };
    put(LEGACY, "current", pep).await;
    put(BM, B, native(" name='native'", "")).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    assert_eq!(
        native_rooms(&mut a).await,
        [
            room(B, &native(" name='native'", "")),
            room(A, &native(" name='private'", "")),
            room(C, &native("", ""))
        ]
    );
    let want = format!("<storage xmlns='{LEGACY}'><conference jid='{B}' name='native'/><conference jid='{A}' name='private'/><conference jid='{C}'/>{URL}</storage>");
    assert_eq!(private_list(&mut a).await, want);
    assert_eq!(legacy_list(&mut a).await, want);
}

#[tokio::test]
async fn two_sessions_writing_at_once_keep_the_copies_in_step() {
    let srv = server(&["alice"]).await;
    let mut a1 = Client::online(srv.addr, "alice", "pw", "a1").await;
    let mut a2 = Client::online(srv.addr, "alice", "pw", "a2").await;
    let jids = |list: String| {
        let mut jids: Vec<String> = list
            .split("jid='")
            .skip(1)
            .map(|s| s.split('\'').next().unwrap().to_owned())
            .collect();
        jids.sort();
        jids
    };
    for i in 0..20 {
        // Each round, both sessions write at once.
        let payload = conference(&format!("name='n{i}'"), "");
        let publish = format!("<iq type='set' id='n{i}'><pubsub xmlns='{PUBSUB}'><publish node='{BM}'><item id='n{i}@conf.localhost'>{payload}</item></publish></pubsub></iq>");
        let list = format!("<storage xmlns='{LEGACY}'><conference jid='p{i}@conf.localhost'/><conference jid='n{i}@conf.localhost' name='private'/></storage>");
        let set = format!("<iq type='set' id='p{i}'><query xmlns='{PRIVATE}'>{list}</query></iq>");
        tokio::join!(a1.send(publish), a2.send(set));
        let (n, p) = (format!("n{i}"), format!("p{i}"));
        let (r1, r2) = tokio::join!(
            a1.expect("n", |s| s.id().as_deref() == Some(n.as_str())),
            a2.expect("p", |s| s.id().as_deref() == Some(p.as_str()))
        );
        assert_ok(&r1);
        assert_ok(&r2);
        let mut rooms = native_ids(&mut a1).await;
        rooms.sort();
        assert_eq!(jids(private_list(&mut a1).await), rooms, "round {i}");
        assert_eq!(jids(legacy_list(&mut a1).await), rooms, "round {i}");
    }
}
