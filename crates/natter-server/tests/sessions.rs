//! Sessions: binding, conflicts, shutdown.

mod common;
use common::*;

#[tokio::test]
async fn conflicting_resource_replaces_the_old_session() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    let mut old = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut new = Client::online(srv.addr, "alice", "pw", "phone").await;
    assert_eq!(old.stream_error().await.as_deref(), Some("conflict"));
    let r = new
        .iq(
            "p",
            "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    srv.stop().await;
}

#[tokio::test]
async fn server_generated_resources_are_distinct() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    let mut jids = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(srv.addr).await;
        assert!(c.auth("alice", "pw", "SCRAM-SHA-1").await);
        c.open().await;
        let _ = c.stanza().await;
        c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
            .await;
        let r = c.expect("bind", |s| s.id().as_deref() == Some("b")).await;
        let jid = r
            .element()
            .unwrap()
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .get_child("jid", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .text();
        assert!(jid.starts_with("alice@localhost/"), "{jid}");
        jids.push(jid);
        std::mem::forget(c); // keep the connection open
    }
    jids.sort();
    jids.dedup();
    assert_eq!(jids.len(), 3);
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_closes_every_stream_with_system_shutdown() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    let mut pending = Client::connect(srv.addr).await;
    pending.open().await;
    let stop = tokio::spawn(srv.stop());
    assert_eq!(a.stream_error().await.as_deref(), Some("system-shutdown"));
    assert_eq!(b.stream_error().await.as_deref(), Some("system-shutdown"));
    assert_eq!(
        pending.stream_error().await.as_deref(),
        Some("system-shutdown")
    );
    stop.await.unwrap();
}

#[tokio::test]
async fn data_survives_a_restart() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    a.send("<message to='bob@localhost' type='chat' id='keep'><body>kept</body></message>")
        .await;
    a.iq(
        "p",
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    let dir = srv.dir.path().to_owned();
    // The stopped server keeps its temporary directory alive.
    let stopped = srv.stop_keep_dir().await;
    let srv2 = TestServer::start_with(|c| c.data_dir = dir.clone()).await;
    let mut b = Client::online(srv2.addr, "bob", "pw", "b").await;
    let m = b.expect("kept", |s| s.name() == "message").await;
    assert!(text(&m).contains("kept"));
    srv2.stop().await;
    drop(stopped);
}

#[tokio::test]
async fn replaced_session_does_not_announce_unavailable() {
    use natter_store::{RosterItem, Subscription};
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    for (owner, contact) in [
        ("alice@localhost", "bob@localhost"),
        ("bob@localhost", "alice@localhost"),
    ] {
        let item = RosterItem {
            jid: contact.into(),
            subscription: Subscription::Both,
            in_roster: true,
            ..RosterItem::default()
        };
        srv.store.roster_put(owner, &item).await.unwrap();
    }
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut old = Client::online(srv.addr, "alice", "pw", "phone").await;
    b.expect("alice online", |s| {
        s.name() == "presence" && s.from().as_deref() == Some("alice@localhost/phone")
    })
    .await;
    let _new = Client::online(srv.addr, "alice", "pw", "phone").await;
    assert_eq!(old.stream_error().await.as_deref(), Some("conflict"));
    // Bob sees the new session's presence and never an unavailable for it,
    // whichever order the old session's end and the new presence took.
    let mut seen_new = false;
    b.send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let mut pinged = false;
    while !(seen_new && pinged) {
        let s = b.stanza().await;
        assert_ne!(
            s.stanza_type().as_deref(),
            Some("unavailable"),
            "{}",
            text(&s)
        );
        if s.name() == "presence" {
            seen_new = true;
        }
        if s.id().as_deref() == Some("p2") {
            pinged = true;
            if seen_new {
                break;
            }
            b.send("<iq type='get' id='p3'><ping xmlns='urn:xmpp:ping'/></iq>")
                .await;
        }
        if s.id().as_deref() == Some("p3") {
            pinged = true;
        }
    }
    srv.stop().await;
}
