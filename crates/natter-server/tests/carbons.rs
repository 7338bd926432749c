//! Message carbons (XEP-0280 v2): every other device of an account sees
//! both sides of its conversations, exactly once, and nobody else does.
//!
//! "Nothing else arrived" is checked without waiting: a headline marker
//! (never copied) is sent after the fact to the session in question, whose
//! next message must then be that marker (a session's mailbox keeps order,
//! and copies are handed on before the original).

mod common;
use common::*;
use natter_xml::{Element, Stanza};

const CARBONS: &str = "urn:xmpp:carbons:2";
const FORWARD: &str = "urn:xmpp:forward:0";
const CLIENT: &str = "jabber:client";

async fn server(users: &[&str]) -> TestServer {
    let srv = TestServer::start().await;
    for u in users {
        srv.add_user(u, "pw").await;
    }
    srv
}

async fn carbons(c: &mut Client, on: bool) {
    let what = if on { "enable" } else { "disable" };
    let r = c
        .iq(
            "cb",
            &format!("<iq type='set' id='cb'><{what} xmlns='{CARBONS}'/></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
}

/// Online with carbons enabled.
async fn device(srv: &TestServer, user: &str, resource: &str) -> Client {
    let mut c = Client::online(srv.addr, user, "pw", resource).await;
    carbons(&mut c, true).await;
    c
}

/// The next message, skipping presence (other devices coming online).
async fn next_message(c: &mut Client) -> Stanza {
    loop {
        let s = c.stanza().await;
        match s.name() {
            "presence" => continue,
            "message" => return s,
            _ => panic!("[{}] unexpected {}", c.jid, text(&s)),
        }
    }
}

/// Sends `to` a headline marker (never copied) and checks it is the next
/// message `to` gets: nothing else came before it.
async fn nothing_else(from: &mut Client, to: &mut Client, mark: &str) {
    from.send(format!(
        "<message to='{}' type='headline' id='{mark}'><body>mark</body></message>",
        to.jid
    ))
    .await;
    let m = next_message(to).await;
    assert_eq!(
        m.id().as_deref(),
        Some(mark),
        "[{}] got {}",
        to.jid,
        text(&m)
    );
}

/// The message inside a `<sent/>` or `<received/>` copy, after checking
/// the wrapper: from the account's bare JID to the device.
fn unwrap_copy(s: &Stanza, kind: &str, device: &str) -> Element {
    let bare = device.split('/').next().unwrap();
    assert_eq!(s.from().as_deref(), Some(bare), "{}", text(s));
    assert_eq!(s.to().as_deref(), Some(device), "{}", text(s));
    s.element()
        .unwrap()
        .get_child(kind, CARBONS)
        .and_then(|k| k.get_child("forwarded", FORWARD))
        .and_then(|f| f.get_child("message", CLIENT))
        .unwrap_or_else(|| panic!("not a {kind} copy: {}", text(s)))
        .clone()
}

fn body(m: &Element) -> String {
    m.get_child("body", CLIENT)
        .map(|b| b.text())
        .unwrap_or_default()
}

fn error_condition(s: &Stanza) -> String {
    let e = s.element().unwrap();
    let err = e.get_child("error", CLIENT).expect("an error");
    let cond = err
        .elements()
        .find(|c| c.ns == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.name != "text")
        .map(|c| c.name.clone());
    cond.unwrap_or_default()
}

#[tokio::test]
async fn enable_disable_and_their_errors() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let info = a
        .iq(
            "d",
            "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    assert!(
        text(&info).contains(&format!("var='{CARBONS}'")),
        "{}",
        text(&info)
    );
    carbons(&mut a, true).await;
    // Enabling twice is no error (§9.1), nor is disabling twice.
    carbons(&mut a, true).await;
    let cases = [
        (
            format!("<iq type='get' id='e1'><enable xmlns='{CARBONS}'/></iq>"),
            "bad-request",
        ),
        (
            format!("<iq type='set' id='e2'><toggle xmlns='{CARBONS}'/></iq>"),
            "bad-request",
        ),
        (
            format!("<iq type='set' id='e3' to='bob@localhost'><disable xmlns='{CARBONS}'/></iq>"),
            "not-allowed",
        ),
    ];
    for (i, (iq, cond)) in cases.iter().enumerate() {
        let r = a.iq(&format!("e{}", i + 1), iq).await;
        assert_eq!(r.stanza_type().as_deref(), Some("error"), "{}", text(&r));
        assert_eq!(error_condition(&r), *cond, "{}", text(&r));
    }
    // To the own bare JID works like no 'to'.
    let r = a
        .iq(
            "e4",
            &format!(
                "<iq type='set' id='e4' to='alice@localhost'><disable xmlns='{CARBONS}'/></iq>"
            ),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    carbons(&mut a, false).await;
    srv.stop().await;
}

#[tokio::test]
async fn sent_copies_reach_the_other_enabled_devices_only() {
    let srv = server(&["alice", "bob", "carol"]).await;
    let mut a1 = device(&srv, "alice", "a1").await;
    let mut a2 = device(&srv, "alice", "a2").await;
    let mut a3 = Client::online(srv.addr, "alice", "pw", "a3").await; // no carbons
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut c = device(&srv, "carol", "c").await; // another account
    a1.send("<message to='bob@localhost' type='chat' id='m1'><body>hi bob</body></message>")
        .await;
    let orig = next_message(&mut b).await;
    assert_eq!(orig.from().as_deref(), Some("alice@localhost/a1"));
    let copy = next_message(&mut a2).await;
    assert_eq!(copy.stanza_type().as_deref(), Some("chat"));
    let inner = unwrap_copy(&copy, "sent", "alice@localhost/a2");
    assert_eq!(inner.attr("from"), Some("alice@localhost/a1"));
    assert_eq!(inner.attr("to"), Some("bob@localhost"));
    assert_eq!(inner.attr("id"), Some("m1"));
    assert_eq!(body(&inner), "hi bob");
    // The sender's devices learn the id in the sender's archive (the same
    // as in the recipient's, which bob got).
    let sid = |m: &Element, by: &str| {
        m.elements()
            .find(|c| c.name == "stanza-id" && c.ns == "urn:xmpp:sid:0" && c.attr("by") == Some(by))
            .and_then(|c| c.attr("id").map(str::to_owned))
    };
    let bobs = orig
        .children()
        .iter()
        .find(|c| c.name == "stanza-id" && c.attr(&orig, "by").as_deref() == Some("bob@localhost"))
        .and_then(|c| c.attr(&orig, "id").map(|i| i.into_owned()));
    assert!(bobs.is_some());
    assert_eq!(sid(&inner, "alice@localhost"), bobs);
    assert_eq!(sid(&inner, "bob@localhost"), bobs);
    // A chat state is copied too (type chat); a normal message with a
    // body is; a headline and a normal message without a body are not.
    a1.send("<message to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>").await;
    a1.send("<message to='bob@localhost' id='n1'><body>normal</body></message>")
        .await;
    a1.send("<message to='bob@localhost' type='headline'><body>news</body></message>")
        .await;
    a1.send("<message to='bob@localhost' id='n2'><subject>no body</subject></message>")
        .await;
    let cs = next_message(&mut a2).await;
    let inner = unwrap_copy(&cs, "sent", "alice@localhost/a2");
    assert!(inner
        .get_child("composing", "http://jabber.org/protocol/chatstates")
        .is_some());
    let n = next_message(&mut a2).await;
    assert_eq!(cs.stanza_type().as_deref(), Some("chat"));
    assert_eq!(n.stanza_type(), None, "the copy keeps the type");
    assert_eq!(
        body(&unwrap_copy(&n, "sent", "alice@localhost/a2")),
        "normal"
    );
    for _ in 0..4 {
        next_message(&mut b).await;
    }
    // Not to the sender, not to a device without carbons, not to another
    // account, and nothing more to a2.
    nothing_else(&mut b, &mut a2, "k1").await;
    nothing_else(&mut b, &mut a1, "k2").await;
    nothing_else(&mut b, &mut a3, "k3").await;
    nothing_else(&mut b, &mut c, "k4").await;
    srv.stop().await;
}

#[tokio::test]
async fn received_copies_go_to_the_devices_that_did_not_get_it() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b1 = device(&srv, "bob", "b1").await;
    let mut b2 = device(&srv, "bob", "b2").await;
    // A negative priority: messages to the bare JID skip it (RFC 6121).
    let mut b3 = Client::login(srv.addr, "bob", "pw", "b3").await;
    b3.send("<presence><priority>-1</priority></presence>")
        .await;
    b3.expect("own presence", |s| {
        s.name() == "presence" && s.from().as_deref() == Some("bob@localhost/b3")
    })
    .await;
    carbons(&mut b3, true).await;
    let mut b4 = Client::online(srv.addr, "bob", "pw", "b4").await; // no carbons
                                                                    // Carbons on but no presence sent: not in the conversation yet (it gets
                                                                    // what it missed from the queue and the archive once available).
    let mut b5 = Client::login(srv.addr, "bob", "pw", "b5").await;
    carbons(&mut b5, true).await;

    a.send("<message to='bob@localhost/b1' type='chat' id='full'><body>to b1</body></message>")
        .await;
    a.send("<message to='bob@localhost' type='chat' id='bare'><body>to bob</body></message>")
        .await;

    // b1: both originals.
    for id in ["full", "bare"] {
        let m = next_message(&mut b1).await;
        assert_eq!(m.id().as_deref(), Some(id), "{}", text(&m));
        assert!(!m.has_child("received", CARBONS));
    }
    // b2: a copy of the one to b1, then the original to the bare JID.
    let copy = next_message(&mut b2).await;
    let inner = unwrap_copy(&copy, "received", "bob@localhost/b2");
    assert_eq!(inner.attr("from"), Some("alice@localhost/a"));
    assert_eq!(inner.attr("to"), Some("bob@localhost/b1"));
    assert_eq!(body(&inner), "to b1");
    assert!(
        inner.get_child("stanza-id", "urn:xmpp:sid:0").is_some(),
        "the copy is the message as delivered"
    );
    let m = next_message(&mut b2).await;
    assert_eq!(m.id().as_deref(), Some("bare"));
    // b3 (negative priority) got neither original: a copy of each.
    for (id, to) in [("full", "bob@localhost/b1"), ("bare", "bob@localhost")] {
        let c = next_message(&mut b3).await;
        let inner = unwrap_copy(&c, "received", "bob@localhost/b3");
        assert_eq!(inner.attr("id"), Some(id));
        assert_eq!(inner.attr("to"), Some(to));
    }
    // b4 (no carbons): the original to the bare JID only.
    let m = next_message(&mut b4).await;
    assert_eq!(m.id().as_deref(), Some("bare"));
    for (i, c) in [&mut b1, &mut b2, &mut b3, &mut b4, &mut b5]
        .into_iter()
        .enumerate()
    {
        nothing_else(&mut a, c, &format!("k{i}")).await;
    }
    srv.stop().await;
}

#[tokio::test]
async fn private_and_no_copy_messages_are_not_copied() {
    let srv = server(&["alice", "bob"]).await;
    let mut a1 = device(&srv, "alice", "a1").await;
    let mut a2 = device(&srv, "alice", "a2").await;
    let mut b1 = device(&srv, "bob", "b1").await;
    let mut b2 = device(&srv, "bob", "b2").await;
    a1.send(format!(
        "<message to='bob@localhost/b1' type='chat' id='p1'><body>secret</body><private xmlns='{CARBONS}'/><no-copy xmlns='urn:xmpp:hints'/></message>"
    ))
    .await;
    a1.send("<message to='bob@localhost/b1' type='chat' id='p2'><body>hint</body><no-copy xmlns='urn:xmpp:hints'/></message>")
        .await;
    a1.send(format!(
        "<message to='bob@localhost/b1' type='chat' id='p3'><body>private</body><private xmlns='{CARBONS}'/></message>"
    ))
    .await;
    for id in ["p1", "p2", "p3"] {
        let m = next_message(&mut b1).await;
        assert_eq!(m.id().as_deref(), Some(id));
        // The receiving server removes <private/> (§7).
        assert!(!m.has_child("private", CARBONS), "{}", text(&m));
    }
    nothing_else(&mut b1, &mut a2, "k1").await;
    nothing_else(&mut a1, &mut b2, "k2").await;
    srv.stop().await;
}

#[tokio::test]
async fn carbons_from_a_client_are_refused() {
    let srv = server(&["mallory", "bob"]).await;
    let mut m = Client::online(srv.addr, "mallory", "pw", "m").await;
    let mut b1 = device(&srv, "bob", "b1").await;
    let mut b2 = device(&srv, "bob", "b2").await;
    let forged = |to: &str, kind: &str, id: &str| {
        format!(
            "<message to='{to}' type='chat' id='{id}'><{kind} xmlns='{CARBONS}'><forwarded xmlns='{FORWARD}'><message xmlns='jabber:client' from='alice@localhost/x' to='bob@localhost/b1' type='chat'><body>fake</body></message></forwarded></{kind}></message>"
        )
    };
    // Another user cannot slip a copy in…
    m.send(forged("bob@localhost", "received", "f1")).await;
    let e = next_message(&mut m).await;
    assert_eq!(e.id().as_deref(), Some("f1"));
    assert_eq!(e.stanza_type().as_deref(), Some("error"));
    assert_eq!(error_condition(&e), "not-allowed", "{}", text(&e));
    // …nor can the account's own client: copies come from the server only.
    b1.send(forged("bob@localhost/b2", "sent", "f2")).await;
    let e = next_message(&mut b1).await;
    assert_eq!(e.id().as_deref(), Some("f2"));
    assert_eq!(error_condition(&e), "not-allowed", "{}", text(&e));
    nothing_else(&mut m, &mut b1, "k1").await;
    nothing_else(&mut m, &mut b2, "k2").await;
    srv.stop().await;
}

#[tokio::test]
async fn disabled_devices_get_no_copies() {
    let srv = server(&["alice", "bob"]).await;
    let mut a1 = device(&srv, "alice", "a1").await;
    let mut a2 = device(&srv, "alice", "a2").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    a1.send("<message to='bob@localhost' type='chat' id='x1'><body>one</body></message>")
        .await;
    next_message(&mut b).await;
    let c = next_message(&mut a2).await;
    assert_eq!(body(&unwrap_copy(&c, "sent", "alice@localhost/a2")), "one");
    carbons(&mut a2, false).await;
    a1.send("<message to='bob@localhost' type='chat' id='x2'><body>two</body></message>")
        .await;
    b.send("<message to='alice@localhost/a1' type='chat' id='x3'><body>three</body></message>")
        .await;
    assert_eq!(next_message(&mut b).await.id().as_deref(), Some("x2"));
    assert_eq!(next_message(&mut a1).await.id().as_deref(), Some("x3"));
    nothing_else(&mut b, &mut a2, "k1").await;
    srv.stop().await;
}

#[tokio::test]
async fn a_message_to_the_own_account_is_copied_once() {
    let srv = server(&["alice"]).await;
    let mut a1 = device(&srv, "alice", "a1").await;
    let mut a2 = device(&srv, "alice", "a2").await;
    let mut a3 = device(&srv, "alice", "a3").await;
    a1.send("<message to='alice@localhost/a2' type='chat' id='s1'><body>note</body></message>")
        .await;
    assert_eq!(next_message(&mut a2).await.id().as_deref(), Some("s1"));
    let c = next_message(&mut a3).await;
    let inner = unwrap_copy(&c, "received", "alice@localhost/a3");
    assert_eq!(inner.attr("id"), Some("s1"));
    nothing_else(&mut a2, &mut a3, "k1").await;
    nothing_else(&mut a2, &mut a1, "k2").await;
    srv.stop().await;
}
