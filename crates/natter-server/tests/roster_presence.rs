//! Roster, subscriptions and presence (RFC 6121 §2–§4).

mod common;
use common::*;
use natter_xml::Stanza;

const ROSTER: &str = "jabber:iq:roster";

fn items(r: &Stanza) -> Vec<(String, String, Option<String>)> {
    let el = r.element().unwrap();
    el.get_child("query", ROSTER)
        .map(|q| {
            q.elements()
                .map(|i| {
                    (
                        i.attr("jid").unwrap_or("").to_owned(),
                        i.attr("subscription").unwrap_or("none").to_owned(),
                        i.attr("ask").map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn is_push(s: &Stanza) -> bool {
    s.name() == "iq" && s.stanza_type().as_deref() == Some("set") && s.has_child("query", ROSTER)
}

#[tokio::test]
async fn roster_set_get_remove_with_pushes_and_versions() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    let mut a1 = Client::online(srv.addr, "alice", "pw", "one").await;
    let mut a2 = Client::online(srv.addr, "alice", "pw", "two").await;
    let r = a1
        .iq(
            "g0",
            "<iq type='get' id='g0'><query xmlns='jabber:iq:roster'/></iq>",
        )
        .await;
    assert!(items(&r).is_empty());
    let v0 = r
        .element()
        .unwrap()
        .get_child("query", ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_owned();
    let r = a1.iq("s1", "<iq type='set' id='s1'><query xmlns='jabber:iq:roster'><item jid='Carol@localhost' name='Carol'><group>Friends</group></item></query></iq>").await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    // (a1's own push came before the result and was passed over by `iq`.)
    let p = a2.expect("push", is_push).await;
    assert_eq!(
        items(&p),
        vec![("carol@localhost".into(), "none".into(), None)]
    );
    // Versioning: the old version gets the full roster, the current one an empty result.
    let r = a1
        .iq(
            "g1",
            &format!("<iq type='get' id='g1'><query xmlns='jabber:iq:roster' ver='{v0}'/></iq>"),
        )
        .await;
    assert_eq!(items(&r).len(), 1);
    let v1 = r
        .element()
        .unwrap()
        .get_child("query", ROSTER)
        .unwrap()
        .attr("ver")
        .unwrap()
        .to_owned();
    assert_ne!(v0, v1);
    let r = a1
        .iq(
            "g2",
            &format!("<iq type='get' id='g2'><query xmlns='jabber:iq:roster' ver='{v1}'/></iq>"),
        )
        .await;
    assert!(!r.has_child("query", ROSTER), "{}", text(&r));
    // Errors: two items, a duplicate group, an empty group.
    let r = a1.iq("e1", "<iq type='set' id='e1'><query xmlns='jabber:iq:roster'><item jid='x@localhost'/><item jid='y@localhost'/></query></iq>").await;
    assert!(text(&r).contains("bad-request"));
    let r = a1.iq("e2", "<iq type='set' id='e2'><query xmlns='jabber:iq:roster'><item jid='x@localhost'><group>A</group><group>A</group></item></query></iq>").await;
    assert!(text(&r).contains("bad-request"));
    let r = a1.iq("e3", "<iq type='set' id='e3'><query xmlns='jabber:iq:roster'><item jid='x@localhost'><group></group></item></query></iq>").await;
    assert!(text(&r).contains("not-acceptable"));
    // Remove.
    let r = a1.iq("r1", "<iq type='set' id='r1'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' subscription='remove'/></query></iq>").await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    let p = a2
        .expect("remove push", |s| is_push(s) && text(s).contains("remove"))
        .await;
    assert_eq!(items(&p)[0].1, "remove");
    let r = a1.iq("r2", "<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='carol@localhost' subscription='remove'/></query></iq>").await;
    assert!(text(&r).contains("item-not-found"));
    srv.stop().await;
}

#[tokio::test]
async fn subscription_handshake_presence_and_unavailable() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    // Alice asks.
    a.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    let p = a.expect("push ask", is_push).await;
    assert_eq!(
        items(&p)[0],
        (
            "bob@localhost".into(),
            "none".into(),
            Some("subscribe".into())
        )
    );
    let req = b
        .expect("subscribe", |s| {
            s.name() == "presence" && s.stanza_type().as_deref() == Some("subscribe")
        })
        .await;
    assert_eq!(req.from().as_deref(), Some("alice@localhost"));
    // Bob approves: Bob gets from, Alice gets to, and Bob's presence.
    b.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    let p = b.expect("push from", is_push).await;
    assert_eq!(items(&p)[0].1, "from");
    let p = a.expect("push to", is_push).await;
    assert_eq!(items(&p)[0].1, "to");
    a.expect("subscribed", |s| {
        s.stanza_type().as_deref() == Some("subscribed")
    })
    .await;
    a.expect("bob's presence", |s| {
        s.name() == "presence"
            && s.stanza_type().is_none()
            && s.from().as_deref() == Some("bob@localhost/b")
    })
    .await;
    // Bob asks back; Alice approves: both.
    b.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    a.expect("subscribe", |s| {
        s.stanza_type().as_deref() == Some("subscribe")
    })
    .await;
    a.send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    let p = a
        .expect("push both", |s| is_push(s) && text(s).contains("both"))
        .await;
    assert_eq!(items(&p)[0].1, "both");
    let p = b
        .expect("push both", |s| is_push(s) && text(s).contains("both"))
        .await;
    assert_eq!(items(&p)[0].1, "both");
    b.expect("alice's presence", |s| {
        s.name() == "presence"
            && s.stanza_type().is_none()
            && s.from().as_deref() == Some("alice@localhost/a")
    })
    .await;
    // A presence update reaches the contact.
    a.send("<presence><show>away</show><status>lunch</status></presence>")
        .await;
    let u = b
        .expect("away", |s| {
            s.name() == "presence" && text(s).contains("lunch")
        })
        .await;
    assert_eq!(u.from().as_deref(), Some("alice@localhost/a"));
    // Probes on login: a second resource of Bob gets Alice's current presence.
    let mut b2 = Client::login(srv.addr, "bob", "pw", "b2").await;
    b2.send("<presence/>").await;
    b2.expect("probe answer", |s| {
        s.name() == "presence" && s.from().as_deref() == Some("alice@localhost/a")
    })
    .await;
    // Alice disconnects: Bob learns she is unavailable.
    drop(a);
    b.expect("unavailable", |s| {
        s.stanza_type().as_deref() == Some("unavailable")
            && s.from().as_deref() == Some("alice@localhost/a")
    })
    .await;
    // Last activity of the offline contact.
    let r = b
        .iq(
            "l1",
            "<iq type='get' id='l1' to='alice@localhost'><query xmlns='jabber:iq:last'/></iq>",
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    assert!(r
        .element()
        .unwrap()
        .get_child("query", "jabber:iq:last")
        .unwrap()
        .attr("seconds")
        .is_some());
    srv.stop().await;
}

#[tokio::test]
async fn pending_request_is_redelivered_and_preapproval_works() {
    let srv = TestServer::start().await;
    for u in ["alice", "bob", "carol"] {
        srv.add_user(u, "pw").await;
    }
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    a.send(
        "<presence to='bob@localhost' type='subscribe'><status>hi, it's alice</status></presence>",
    )
    .await;
    a.expect("push", is_push).await;
    // Bob is offline; the request waits and comes at each login until answered.
    for round in 0..2 {
        let mut b = Client::online(srv.addr, "bob", "pw", &format!("r{round}")).await;
        let req = b
            .expect("pending subscribe", |s| {
                s.stanza_type().as_deref() == Some("subscribe")
            })
            .await;
        assert!(text(&req).contains("it's alice"));
    }
    // Last activity is forbidden without a subscription.
    let r = a
        .iq(
            "l",
            "<iq type='get' id='l' to='carol@localhost'><query xmlns='jabber:iq:last'/></iq>",
        )
        .await;
    assert!(text(&r).contains("forbidden"), "{}", text(&r));
    // Carol pre-approves Alice; Alice's later request is answered at once.
    let mut c = Client::online(srv.addr, "carol", "pw", "c").await;
    c.send("<presence to='alice@localhost' type='subscribed'/>")
        .await;
    let p = c.expect("pre-approval push", is_push).await;
    assert!(text(&p).contains("approved='true'"), "{}", text(&p));
    a.send("<presence to='carol@localhost' type='subscribe'/>")
        .await;
    a.expect("to push", |s| {
        is_push(s) && text(s).contains("subscription='to'")
    })
    .await;
    a.expect("subscribed", |s| {
        s.stanza_type().as_deref() == Some("subscribed")
            && s.from().as_deref() == Some("carol@localhost")
    })
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn directed_presence_and_unavailable_on_end() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    a.send("<presence to='bob@localhost/b'><status>direct</status></presence>")
        .await;
    let p = b.expect("directed", |s| s.name() == "presence").await;
    assert!(text(&p).contains("direct"));
    assert_eq!(p.from().as_deref(), Some("alice@localhost/a"));
    drop(a);
    b.expect("unavailable", |s| {
        s.stanza_type().as_deref() == Some("unavailable")
    })
    .await;
    srv.stop().await;
}
