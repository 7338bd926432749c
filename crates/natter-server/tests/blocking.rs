//! Blocking (XEP-0191): the blocklist IQs and pushes, and a blocked
//! contact that cannot reach the user (messages, IQs, presence) until it is
//! unblocked.

mod common;
use common::*;
use natter_store::{RosterItem, Subscription};
use natter_xml::Stanza;

const BLOCKING: &str = "urn:xmpp:blocking";

async fn befriend(srv: &TestServer, a: &str, b: &str) {
    for (owner, contact) in [(a, b), (b, a)] {
        let item = RosterItem {
            jid: format!("{contact}@localhost"),
            subscription: Subscription::Both,
            in_roster: true,
            ..RosterItem::default()
        };
        srv.store
            .roster_put(&format!("{owner}@localhost"), &item)
            .await
            .unwrap();
    }
}

/// Waits for a round trip of `c`'s own session (everything it sent before
/// has been handled).
async fn sync(c: &mut Client, id: &str) {
    let r = c
        .iq(
            id,
            &format!("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
}

/// Sends an IQ whose side effects reach the sender before its result:
/// returns what came before the result, and the result.
async fn iq_after(c: &mut Client, id: &str, iq: &str) -> (Vec<Stanza>, Stanza) {
    c.send(iq).await;
    let mut before = Vec::new();
    loop {
        let s = c.stanza().await;
        if s.name() == "iq" && s.id().as_deref() == Some(id) {
            return (before, s);
        }
        before.push(s);
    }
}

/// Everything `c` receives until the message with id `marker`.
async fn until_marker(c: &mut Client, marker: &str) -> Vec<Stanza> {
    let mut seen = Vec::new();
    loop {
        let s = c.stanza().await;
        if s.name() == "message" && s.id().as_deref() == Some(marker) {
            return seen;
        }
        seen.push(s);
    }
}

/// `marker` from `from` to `to`: what `to` received before it came after
/// everything that reached it before.
async fn marker(from: &mut Client, to: &str, id: &str) {
    from.send(format!(
        "<message to='{to}' id='{id}' type='chat'><body>marker</body></message>"
    ))
    .await;
}

fn is_error(s: &Stanza, cond: &str) -> bool {
    s.stanza_type().as_deref() == Some("error") && text(s).contains(&format!("<{cond} "))
}

async fn blocklist(c: &mut Client, id: &str) -> Vec<String> {
    let r = c
        .iq(
            id,
            &format!("<iq type='get' id='{id}'><blocklist xmlns='{BLOCKING}'/></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    let el = r.element().unwrap();
    let list = el.get_child("blocklist", BLOCKING).unwrap();
    list.elements()
        .filter_map(|i| i.attr("jid").map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn block_list_unblock_with_pushes_and_errors() {
    let srv = TestServer::start().await;
    for u in ["alice", "bob", "carol"] {
        srv.add_user(u, "pw").await;
    }
    let mut a1 = Client::online(srv.addr, "alice", "pw", "a1").await;
    let mut a2 = Client::online(srv.addr, "alice", "pw", "a2").await;
    let mut a3 = Client::online(srv.addr, "alice", "pw", "a3").await;
    assert!(blocklist(&mut a1, "l1").await.is_empty());
    assert!(blocklist(&mut a2, "l2").await.is_empty());
    // a3 never asked for the list: no pushes for it.

    let (before, r) = iq_after(
        &mut a1,
        "b1",
        &format!("<iq type='set' id='b1'><block xmlns='{BLOCKING}'><item jid='Bob@LOCALHOST'/><item jid='carol@localhost/phone'/></block></iq>"),
    )
    .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    let mut a1_push = before.into_iter().find(|s| s.has_child("block", BLOCKING));
    for c in [&mut a1, &mut a2] {
        let push = match a1_push.take() {
            Some(p) => p,
            None => {
                c.expect("block push", |s| s.has_child("block", BLOCKING))
                    .await
            }
        };
        assert_eq!(push.stanza_type().as_deref(), Some("set"));
        let t = text(&push);
        assert!(t.contains("jid='bob@localhost'"), "normalised: {t}");
        assert!(t.contains("jid='carol@localhost/phone'"), "{t}");
        // The client answers the push.
        let id = push.id().unwrap().into_owned();
        c.send(format!("<iq type='result' id='{id}'/>")).await;
    }
    assert_eq!(
        blocklist(&mut a3, "l3").await,
        vec!["bob@localhost", "carol@localhost/phone"]
    );
    // The list survives a restart of the server: it is in the store.
    assert_eq!(
        srv.store.kv_owners(BLOCKING).await.unwrap(),
        vec!["alice@localhost"]
    );

    // Bad requests.
    for (id, payload, cond) in [
        ("e1", format!("<block xmlns='{BLOCKING}'/>"), "bad-request"),
        (
            "e2",
            format!("<block xmlns='{BLOCKING}'><item jid='a@b@c'/></block>"),
            "jid-malformed",
        ),
        (
            "e3",
            format!("<block xmlns='{BLOCKING}'><item/></block>"),
            "bad-request",
        ),
        (
            "e4",
            format!("<unblock xmlns='{BLOCKING}'><item jid='@x'/></unblock>"),
            "jid-malformed",
        ),
        (
            "e5",
            format!("<block xmlns='{BLOCKING}'><other jid='x@y'/></block>"),
            "bad-request",
        ),
    ] {
        let r = a1
            .iq(id, &format!("<iq type='set' id='{id}'>{payload}</iq>"))
            .await;
        assert!(is_error(&r, cond), "{id}: {}", text(&r));
    }
    let r = a1
        .iq(
            "e6",
            &format!(
                "<iq type='get' id='e6'><block xmlns='{BLOCKING}'><item jid='x@y'/></block></iq>"
            ),
        )
        .await;
    assert!(is_error(&r, "bad-request"), "{}", text(&r));
    // Someone else's list is not ours to read.
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let r = b
        .iq(
            "e7",
            &format!(
                "<iq type='get' id='e7' to='carol@localhost'><blocklist xmlns='{BLOCKING}'/></iq>"
            ),
        )
        .await;
    assert!(is_error(&r, "forbidden"), "{}", text(&r));

    // Unblock one item, then everything.
    let (before, r) = iq_after(
        &mut a1,
        "u1",
        &format!("<iq type='set' id='u1'><unblock xmlns='{BLOCKING}'><item jid='bob@localhost'/></unblock></iq>"),
    )
    .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    let push = before
        .iter()
        .find(|s| s.has_child("unblock", BLOCKING))
        .unwrap();
    assert!(text(push).contains("jid='bob@localhost'"));
    let push = a2
        .expect("unblock push", |s| s.has_child("unblock", BLOCKING))
        .await;
    assert!(text(&push).contains("jid='bob@localhost'"));
    assert_eq!(
        blocklist(&mut a1, "l4").await,
        vec!["carol@localhost/phone"]
    );
    let (before, r) = iq_after(
        &mut a1,
        "u2",
        &format!("<iq type='set' id='u2'><unblock xmlns='{BLOCKING}'/></iq>"),
    )
    .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    let push = before
        .iter()
        .find(|s| s.has_child("unblock", BLOCKING))
        .unwrap();
    assert!(!text(push).contains("<item"), "{}", text(push));
    let push = a2
        .expect("unblock-all push", |s| s.has_child("unblock", BLOCKING))
        .await;
    assert!(!text(&push).contains("<item"), "{}", text(&push));
    assert!(blocklist(&mut a1, "l5").await.is_empty());
    assert!(srv.store.kv_owners(BLOCKING).await.unwrap().is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn a_blocked_contact_cannot_reach_the_user_until_unblocked() {
    let srv = TestServer::start().await;
    for u in ["alice", "bob", "carol"] {
        srv.add_user(u, "pw").await;
    }
    befriend(&srv, "alice", "bob").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut c = Client::online(srv.addr, "carol", "pw", "c").await;
    a.expect("bob online", |s| {
        s.name() == "presence" && s.from().as_deref() == Some("bob@localhost/b")
    })
    .await;

    let (before, r) = iq_after(
        &mut a,
        "b1",
        &format!("<iq type='set' id='b1'><block xmlns='{BLOCKING}'><item jid='bob@localhost'/></block></iq>"),
    )
    .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    // Each side sees the other go unavailable.
    assert!(
        before.iter().any(|s| s.name() == "presence"
            && s.stanza_type().as_deref() == Some("unavailable")
            && s.from().as_deref() == Some("bob@localhost/b")),
        "{:?}",
        before.iter().map(text).collect::<Vec<_>>()
    );
    b.expect("alice unavailable", |s| {
        s.name() == "presence"
            && s.stanza_type().as_deref() == Some("unavailable")
            && s.from().as_deref() == Some("alice@localhost/a")
    })
    .await;

    // A message from bob: service-unavailable, never delivered or queued.
    b.send("<message to='alice@localhost' id='m1' type='chat'><body>hi</body></message>")
        .await;
    let e = b.expect("error", |s| s.id().as_deref() == Some("m1")).await;
    assert!(is_error(&e, "service-unavailable"), "{}", text(&e));
    assert!(
        !text(&e).contains("blocked"),
        "bob is not told: {}",
        text(&e)
    );
    // IQs: to a resource, to the account, last activity.
    let r = b
        .iq(
            "i1",
            "<iq type='get' id='i1' to='alice@localhost/a'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert!(is_error(&r, "service-unavailable"), "{}", text(&r));
    let r = b
        .iq(
            "i2",
            "<iq type='get' id='i2' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>",
        )
        .await;
    assert!(is_error(&r, "service-unavailable"), "{}", text(&r));
    let r = b
        .iq(
            "i3",
            "<iq type='get' id='i3' to='alice@localhost'><query xmlns='jabber:iq:last'/></iq>",
        )
        .await;
    assert!(is_error(&r, "forbidden"), "{}", text(&r));
    // Presence: an update, a directed presence, a probe, a subscription request.
    b.send("<presence><show>away</show></presence>").await;
    b.send("<presence to='alice@localhost/a'/>").await;
    b.send("<presence to='alice@localhost' type='probe'/>")
        .await;
    b.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    sync(&mut b, "s1").await;
    marker(&mut c, "alice@localhost", "k1").await;
    let got = until_marker(&mut a, "k1").await;
    assert!(
        got.iter()
            .all(|s| !s.from().is_some_and(|f| f.starts_with("bob@"))),
        "nothing from bob: {:?}",
        got.iter().map(text).collect::<Vec<_>>()
    );
    // Bob's probe got nothing back either.
    marker(&mut c, "bob@localhost", "k2").await;
    let got = until_marker(&mut b, "k2").await;
    assert!(
        got.iter()
            .all(|s| !(s.name() == "presence"
                && s.from().is_some_and(|f| f.starts_with("alice@")))),
        "{:?}",
        got.iter().map(text).collect::<Vec<_>>()
    );

    // Alice cannot send to bob: not-acceptable with <blocked/>.
    a.send("<message to='bob@localhost' id='m2' type='chat'><body>x</body></message>")
        .await;
    let e = a.expect("error", |s| s.id().as_deref() == Some("m2")).await;
    assert!(is_error(&e, "not-acceptable"), "{}", text(&e));
    assert!(
        text(&e).contains("<blocked xmlns='urn:xmpp:blocking:errors'/>"),
        "{}",
        text(&e)
    );
    let r = a
        .iq(
            "i4",
            "<iq type='get' id='i4' to='bob@localhost/b'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert!(is_error(&r, "not-acceptable") && text(&r).contains("blocked"));
    a.send("<presence to='bob@localhost' type='subscribe' id='p1'/>")
        .await;
    let e = a
        .expect("presence error", |s| s.id().as_deref() == Some("p1"))
        .await;
    assert!(is_error(&e, "not-acceptable"), "{}", text(&e));

    // Alice offline: bob's message is still refused and nothing is queued.
    a.send("<presence type='unavailable'/>").await;
    sync(&mut a, "s2").await;
    b.send("<message to='alice@localhost' id='m3' type='chat'><body>hi</body></message>")
        .await;
    let e = b.expect("error", |s| s.id().as_deref() == Some("m3")).await;
    assert!(is_error(&e, "service-unavailable"), "{}", text(&e));
    assert_eq!(srv.store.offline_count("alice@localhost").await.unwrap(), 0);
    a.send("<presence/>").await;

    // Unblocked: presence flows again and bob's messages arrive.
    let (before, r) = iq_after(
        &mut a,
        "u1",
        &format!("<iq type='set' id='u1'><unblock xmlns='{BLOCKING}'><item jid='bob@localhost'/></unblock></iq>"),
    )
    .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    assert!(
        before.iter().any(|s| s.name() == "presence"
            && s.stanza_type().is_none()
            && s.from().as_deref() == Some("bob@localhost/b")),
        "bob's presence again: {:?}",
        before.iter().map(text).collect::<Vec<_>>()
    );
    b.expect("alice's presence again", |s| {
        s.name() == "presence"
            && s.stanza_type().is_none()
            && s.from().as_deref() == Some("alice@localhost/a")
    })
    .await;
    b.send("<message to='alice@localhost' id='m4' type='chat'><body>again</body></message>")
        .await;
    let m = a
        .expect("bob's message", |s| s.id().as_deref() == Some("m4"))
        .await;
    assert!(text(&m).contains("again"));
    srv.stop().await;
}

#[tokio::test]
async fn a_blocked_domain_or_resource_matches_like_xep_0016() {
    let srv = TestServer::start().await;
    for u in ["alice", "bob"] {
        srv.add_user(u, "pw").await;
    }
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut phone = Client::online(srv.addr, "bob", "pw", "phone").await;
    let mut laptop = Client::online(srv.addr, "bob", "pw", "laptop").await;
    // Only bob's phone is blocked.
    let r = a
        .iq(
            "b1",
            &format!("<iq type='set' id='b1'><block xmlns='{BLOCKING}'><item jid='bob@localhost/phone'/></block></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    phone
        .send("<message to='alice@localhost' id='m1' type='chat'><body>p</body></message>")
        .await;
    let e = phone
        .expect("error", |s| s.id().as_deref() == Some("m1"))
        .await;
    assert!(is_error(&e, "service-unavailable"), "{}", text(&e));
    laptop
        .send("<message to='alice@localhost' id='m2' type='chat'><body>l</body></message>")
        .await;
    let m = a
        .expect("laptop's message", |s| s.name() == "message")
        .await;
    assert_eq!(m.id().as_deref(), Some("m2"));
    // The whole domain: every account of it, the user itself excepted.
    let r = a
        .iq(
            "b2",
            &format!("<iq type='set' id='b2'><block xmlns='{BLOCKING}'><item jid='localhost'/></block></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    laptop
        .send("<message to='alice@localhost' id='m3' type='chat'><body>l</body></message>")
        .await;
    let e = laptop
        .expect("error", |s| s.id().as_deref() == Some("m3"))
        .await;
    assert!(is_error(&e, "service-unavailable"), "{}", text(&e));
    a.send("<message to='alice@localhost' id='m4' type='chat'><body>self</body></message>")
        .await;
    let m = a.expect("own message", |s| s.name() == "message").await;
    assert_eq!(m.id().as_deref(), Some("m4"));
    srv.stop().await;
}

#[tokio::test]
async fn blocklists_load_from_the_store_at_start() {
    let srv = TestServer::start().await;
    for u in ["alice", "bob"] {
        srv.add_user(u, "pw").await;
    }
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = a
        .iq(
            "b1",
            &format!("<iq type='set' id='b1'><block xmlns='{BLOCKING}'><item jid='bob@localhost'/></block></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    drop(a);
    let kept = srv.stop_keep_dir().await;
    let dir = kept.dir.path().to_owned();
    let srv = TestServer::start_with(|c| c.data_dir = dir).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    b.send("<message to='alice@localhost' id='m1' type='chat'><body>hi</body></message>")
        .await;
    let e = b.expect("error", |s| s.id().as_deref() == Some("m1")).await;
    assert!(is_error(&e, "service-unavailable"), "{}", text(&e));
    assert_eq!(srv.store.offline_count("alice@localhost").await.unwrap(), 0);
    srv.stop().await;
    drop(kept);
}

#[tokio::test]
async fn the_server_advertises_blocking() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = a
        .iq(
            "d",
            "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    assert!(text(&r).contains("var='urn:xmpp:blocking'"), "{}", text(&r));
    srv.stop().await;
}
