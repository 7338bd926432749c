//! The message archive's life cycle through the real server: retraction
//! tombstones (XEP-0424), what is not archived, preferences,
//! `[archive] enabled = false`, account deletion, retention, and held queue
//! inserts with archiving on.

mod common;

use common::mam::*;
use common::{text, Client, TestServer, TIMEOUT};
use natter_store::{ArchiveEntry, Store, StoreConfig};
use std::sync::Arc;

#[tokio::test]
async fn retraction_turns_the_original_into_a_tombstone() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    a.send(
        "<message to='bob@localhost' type='chat' id='m1'><body>oops, wrong chat</body>\
         <origin-id xmlns='urn:xmpp:sid:0' id='orig-1'/></message>",
    )
    .await;
    a.send(
        "<message to='bob@localhost' type='chat' id='m2'><body>keep me</body>\
         <origin-id xmlns='urn:xmpp:sid:0' id='orig-2'/></message>",
    )
    .await;
    b.expect("m2", |s| s.id().as_deref() == Some("m2")).await;
    // bob cannot retract alice's message.
    b.send(
        "<message to='alice@localhost' type='chat' id='x1'>\
         <retract xmlns='urn:xmpp:message-retract:1' id='orig-2'/>\
         <body>/me retracted a message</body></message>",
    )
    .await;
    a.expect("bob's attempt", |s| s.id().as_deref() == Some("x1"))
        .await;
    a.send(
        "<message to='bob@localhost' type='chat' id='r1'>\
         <retract xmlns='urn:xmpp:message-retract:1' id='orig-1'/>\
         <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>\
         <body>/me retracted a previous message</body>\
         <store xmlns='urn:xmpp:hints'/></message>",
    )
    .await;
    // The retraction is routed like any message.
    let r = b
        .expect("retraction", |s| s.id().as_deref() == Some("r1"))
        .await;
    assert!(r.has_child("retract", "urn:xmpp:message-retract:1"));

    for c in [&mut a, &mut b] {
        let all = query(c, "", "").await;
        assert_eq!(
            all.items.len(),
            4,
            "original, kept, bob's attempt, retraction"
        );
        let tomb = &all.items[0];
        assert!(
            tomb.body().is_none(),
            "the content is gone: {:?}",
            tomb.message
        );
        let retracted = tomb
            .message
            .get_child("retracted", "urn:xmpp:message-retract:1")
            .expect("tombstone");
        assert!(retracted.attr("stamp").is_some());
        assert_eq!(
            tomb.message
                .get_child("origin-id", "urn:xmpp:sid:0")
                .and_then(|o| o.attr("id")),
            Some("orig-1")
        );
        assert_eq!(tomb.message.attr("from"), Some("alice@localhost/phone"));
        assert_eq!(tomb.message.attr("to"), Some("bob@localhost"));
        assert_eq!(all.items[1].body().as_deref(), Some("keep me"));
        assert!(all.items[3]
            .message
            .get_child("retract", "urn:xmpp:message-retract:1")
            .is_some());
    }
    srv.stop().await;
}

#[tokio::test]
async fn what_is_not_archived() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    for (id, payload) in [
        (
            "s1",
            "<body>secret</body><no-store xmlns='urn:xmpp:hints'/>",
        ),
        (
            "s2",
            "<body>secret</body><no-permanent-store xmlns='urn:xmpp:hints'/>",
        ),
        (
            "s3",
            "<composing xmlns='http://jabber.org/protocol/chatstates'/>",
        ),
        ("s4", "<received xmlns='urn:xmpp:receipts' id='m0'/>"),
        (
            "s5",
            "<displayed xmlns='urn:xmpp:chat-markers:0' id='m0'/><store xmlns='urn:xmpp:hints'/>",
        ),
        ("s6", "<body>normal</body>"),
    ] {
        a.send(format!(
            "<message to='bob@localhost' type='chat' id='{id}'>{payload}</message>"
        ))
        .await;
    }
    a.send("<message to='bob@localhost' type='headline' id='s7'><body>news</body></message>")
        .await;
    b.expect("last", |s| s.id().as_deref() == Some("s7")).await;
    let got = query(&mut b, "", "").await;
    let ids: Vec<&str> = got
        .items
        .iter()
        .map(|i| i.message.attr("id").unwrap())
        .collect();
    assert_eq!(ids, ["s5", "s6"], "a marker with <store/>, and a body");
    srv.stop().await;
}

#[tokio::test]
async fn preferences_never_and_roster() {
    let srv = two_users().await;
    srv.add_user("carol", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    let mut c = Client::online(srv.addr, "carol", "pw", "r").await;

    let r = b
        .iq(
            "g1",
            "<iq type='get' id='g1'><prefs xmlns='urn:xmpp:mam:2'/></iq>",
        )
        .await;
    let prefs = r.element().unwrap();
    assert_eq!(
        prefs.get_child("prefs", MAM).unwrap().attr("default"),
        Some("always")
    );

    let r = b
        .iq(
            "s1",
            "<iq type='set' id='s1'><prefs xmlns='urn:xmpp:mam:2' default='never'>\
             <always><jid>carol@localhost/r</jid></always><never/></prefs></iq>",
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    let r = b
        .iq(
            "g2",
            "<iq type='get' id='g2'><prefs xmlns='urn:xmpp:mam:2'/></iq>",
        )
        .await;
    let el = r.element().unwrap();
    let p = el.get_child("prefs", MAM).unwrap();
    assert_eq!(p.attr("default"), Some("never"));
    let always: Vec<String> = p
        .get_child("always", MAM)
        .unwrap()
        .elements()
        .map(|j| j.text())
        .collect();
    assert_eq!(always, ["carol@localhost"], "kept as a bare JID");

    exchange(&mut a, &mut b, "bob@localhost", "from-alice", 2).await;
    exchange(&mut c, &mut b, "bob@localhost", "from-carol", 1).await;
    let bob = query(&mut b, "", "").await;
    assert_eq!(bob.bodies(), ["from-carol 0"], "never, except carol");
    let alice = query(&mut a, "", "").await;
    assert_eq!(alice.items.len(), 2, "alice's own archive is hers");

    // Bad preferences.
    for (id, bad, cond) in [
        ("b1", "<prefs xmlns='urn:xmpp:mam:2'/>", "bad-request"),
        (
            "b2",
            "<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>",
            "bad-request",
        ),
        (
            "b3",
            "<prefs xmlns='urn:xmpp:mam:2' default='roster'><never><jid>@@</jid></never></prefs>",
            "jid-malformed",
        ),
    ] {
        let r = b
            .iq(id, &format!("<iq type='set' id='{id}'>{bad}</iq>"))
            .await;
        assert!(text(&r).contains(&format!("<{cond}")), "{}", text(&r));
    }
    srv.stop().await;
}

#[tokio::test]
async fn disabled_archive_writes_nothing() {
    let srv = two_users_with(|c| c.archive.enabled = false).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    exchange(&mut a, &mut b, "bob@localhost", "m", 3).await;
    let answer = query(&mut a, "", "").await;
    assert_eq!(answer.error(), "service-unavailable");
    let r = a
        .iq(
            "d1",
            "<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    assert!(!text(&r).contains(MAM), "{}", text(&r));
    srv.store.write_barrier().await.unwrap();
    for u in ["alice@localhost", "bob@localhost"] {
        assert_eq!(srv.store.archive_count(u).await.unwrap(), 0);
    }
    srv.stop().await;
}

#[tokio::test]
async fn account_deletion_leaves_no_archive_rows() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    exchange(&mut a, &mut b, "bob@localhost", "m", 3).await;
    let r = a
        .iq(
            "s1",
            "<iq type='set' id='s1'><prefs xmlns='urn:xmpp:mam:2' default='roster'/></iq>",
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    srv.store.write_barrier().await.unwrap();
    assert_eq!(srv.store.archive_count("alice@localhost").await.unwrap(), 3);
    srv.store.delete_account("alice@localhost").await.unwrap();
    assert_eq!(srv.store.archive_count("alice@localhost").await.unwrap(), 0);
    assert_eq!(
        srv.store.archive_prefs("alice@localhost").await.unwrap(),
        natter_store::ArchivePrefs::default()
    );
    assert_eq!(
        srv.store.archive_count("bob@localhost").await.unwrap(),
        3,
        "bob's copies are his"
    );
    srv.stop().await;
}

/// Rows older than `retention_days`, put in the store before the server
/// starts, are deleted by the expiry job; recent ones stay.
#[tokio::test]
async fn retention_expires_old_messages() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("natter.sqlite3");
    {
        let store = Store::open(StoreConfig::sqlite(&db)).await.unwrap();
        store.create_account("alice@localhost", b"x").await.unwrap();
        let day = 86_400_000u64;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let entries = [(40, "old1"), (31, "old2"), (29, "recent"), (0, "today")]
            .into_iter()
            .map(|(days, id)| ArchiveEntry {
                owner: "alice@localhost".into(),
                id: id.into(),
                with: "bob@localhost".into(),
                sender: "bob@localhost/r".into(),
                origin_id: String::new(),
                stamp_unix_ms: now - days * day,
                stanza: Arc::from(&b"<message><body>x</body></message>"[..]),
                with_must_exist: false,
            })
            .collect();
        assert_eq!(store.archive_append(entries).await.unwrap(), 4);
        store.close().await.unwrap();
    }
    let path = dir.path().to_owned();
    let srv = TestServer::start_with(move |c| {
        c.data_dir = path;
        c.archive.retention_days = 30;
    })
    .await;
    // The job runs at start; wait (bounded) for it to finish.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while srv.store.archive_count("alice@localhost").await.unwrap() != 2 {
        assert!(tokio::time::Instant::now() < deadline, "expiry did not run");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let page = srv
        .store
        .archive_query(
            "alice@localhost",
            natter_store::ArchiveQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["recent", "today"]);
    srv.stop().await;
    drop(dir);
}

/// Archiving does not weaken the queue's contract: a message the online
/// recipient acknowledges within `ack_wait_ms` is still withdrawn (never
/// written to the queue, the sender's ack does not wait the minute), and
/// both archive copies are written anyway.
#[tokio::test]
async fn held_inserts_are_still_withdrawn_and_the_archive_written() {
    const SM: &str = "urn:xmpp:sm:3";
    async fn enable(c: &mut Client) {
        c.send(format!("<enable xmlns='{SM}'/>")).await;
        let e = c.expect("enabled", |s| s.name() == "enabled").await;
        assert_eq!(e.name(), "enabled");
        c.handled = 0;
    }
    let srv = two_users_with(|c| c.store.ack_wait_ms = 60_000).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    enable(&mut a).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    enable(&mut b).await;
    let before = srv.store.stats();
    for i in 0..5 {
        a.send(format!(
            "<message to='bob@localhost' type='chat' id='w{i}'><body>{i}</body></message>"
        ))
        .await;
    }
    b.expect("last", |s| s.id().as_deref() == Some("w4")).await;
    b.send(format!("<a xmlns='{SM}' h='{}'/>", b.handled)).await;
    let t = std::time::Instant::now();
    a.send(format!("<r xmlns='{SM}'/>")).await;
    let ack = a.expect("a", |s| s.name() == "a").await;
    assert_eq!(ack.attr("h").as_deref(), Some("5"));
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(srv.store.stats().withdrawn - before.withdrawn, 5);
    assert_eq!(srv.store.offline_count("bob@localhost").await.unwrap(), 0);
    let got = query(&mut b, "", "").await;
    assert_eq!(got.bodies(), ["0", "1", "2", "3", "4"]);
    assert_eq!(query(&mut a, "", "").await.ids(), got.ids());
    srv.stop().await;
}
