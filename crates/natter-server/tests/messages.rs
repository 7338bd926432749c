//! Message routing (RFC 6121 §8.5), offline storage and delivery.

mod common;
use common::*;

async fn two_users() -> TestServer {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    srv
}

#[tokio::test]
async fn offline_messages_are_delivered_with_delay_then_deleted() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    for i in 0..3 {
        a.send(format!(
            "<message to='bob@localhost' type='chat' id='o{i}'><body>offline {i}</body></message>"
        ))
        .await;
    }
    // A chat state alone and a no-store hint are not kept.
    a.send("<message to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>").await;
    a.send("<message to='bob@localhost' type='chat'><body>ephemeral</body><no-store xmlns='urn:xmpp:hints'/></message>").await;
    // A marker and a receipt are kept (they are the ticks).
    a.send("<message to='bob@localhost' id='mk'><displayed xmlns='urn:xmpp:chat-markers:0' id='x'/></message>").await;
    // Wait until the store has them all (ping round trip orders it: the
    // message handling above finished before the ping is answered).
    a.iq(
        "p1",
        "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    assert_eq!(srv.store.offline_count("bob@localhost").await.unwrap(), 4);

    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    // Nothing before initial presence.
    b.send("<presence/>").await;
    let mut got = Vec::new();
    while got.len() < 4 {
        let s = b.stanza().await;
        if s.name() == "message" {
            assert!(s.has_child("delay", "urn:xmpp:delay"), "{}", text(&s));
            assert!(s.has_child("stanza-id", "urn:xmpp:sid:0"), "{}", text(&s));
            assert_eq!(s.from().as_deref(), Some("alice@localhost/a"));
            got.push(text(&s));
        }
    }
    for (i, m) in got.iter().take(3).enumerate() {
        assert!(m.contains(&format!("offline {i}")), "order: {got:?}");
    }
    assert!(got[3].contains("displayed"));
    assert!(!got
        .iter()
        .any(|m| m.contains("ephemeral") || m.contains("composing")));
    b.iq(
        "p2",
        "<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    // Deleted once written.
    for _ in 0..50 {
        if srv.store.offline_count("bob@localhost").await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(srv.store.offline_count("bob@localhost").await.unwrap(), 0);
    drop(b);
    let mut b = Client::online(srv.addr, "bob", "pw", "b2").await;
    let r = b
        .iq(
            "p3",
            "<iq type='get' id='p3'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert_eq!(r.name(), "iq"); // no message arrived before the ping reply
    srv.stop().await;
}

#[tokio::test]
async fn bare_full_and_priorities() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b1 = Client::online(srv.addr, "bob", "pw", "one").await;
    let mut b2 = Client::login(srv.addr, "bob", "pw", "two").await;
    b2.send("<presence><priority>5</priority></presence>").await;
    b2.expect("own presence", |s| {
        s.name() == "presence" && s.from().as_deref() == Some("bob@localhost/two")
    })
    .await;
    let mut b3 = Client::login(srv.addr, "bob", "pw", "neg").await;
    b3.send("<presence><priority>-1</priority></presence>")
        .await;
    b3.expect("own presence", |s| {
        s.name() == "presence" && s.from().as_deref() == Some("bob@localhost/neg")
    })
    .await;
    // Bare JID: every non-negative available resource.
    a.send("<message to='bob@localhost' type='chat' id='m1'><body>to all</body></message>")
        .await;
    b1.expect("m1", |s| s.id().as_deref() == Some("m1")).await;
    b2.expect("m1", |s| s.id().as_deref() == Some("m1")).await;
    // Full JID: only that resource, even with negative priority.
    a.send("<message to='bob@localhost/neg' type='chat' id='m2'><body>just you</body></message>")
        .await;
    let m = b3.expect("m2", |s| s.name() == "message").await;
    assert_eq!(m.id().as_deref(), Some("m2"), "{}", text(&m));
    // Full JID of a resource that is gone: bare-JID rules.
    a.send("<message to='bob@localhost/gone' type='chat' id='m3'><body>fallback</body></message>")
        .await;
    b1.expect("m3", |s| s.id().as_deref() == Some("m3")).await;
    srv.stop().await;
}

#[tokio::test]
async fn ordering_of_many_messages() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let n = 500;
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(&format!(
            "<message to='bob@localhost' type='chat' id='n{i}'><body>{i}</body></message>"
        ));
    }
    a.send(batch).await;
    for i in 0..n {
        let m = b.expect("message", |s| s.name() == "message").await;
        assert_eq!(m.id().as_deref(), Some(format!("n{i}").as_str()));
    }
    srv.stop().await;
}

#[tokio::test]
async fn client_stanza_id_claiming_the_server_is_replaced() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    a.send("<message to='bob@localhost' type='chat'><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='bob@localhost' id='forged'/></message>").await;
    let m = b.expect("message", |s| s.name() == "message").await;
    assert!(!text(&m).contains("forged"), "{}", text(&m));
    assert!(m.has_child("stanza-id", "urn:xmpp:sid:0"));
    srv.stop().await;
}
