//! Private XML storage (XEP-0049) and who may see "last seen" (XEP-0012
//! with natter's `urn:natter:last-seen:0` setting).

mod common;
use common::*;
use natter_store::{RosterItem, Subscription};

const PRIVATE: &str = "jabber:iq:private";
const LAST_SEEN: &str = "urn:natter:last-seen:0";

fn is_error(s: &natter_xml::Stanza, cond: &str) -> bool {
    s.stanza_type().as_deref() == Some("error") && text(s).contains(&format!("<{cond} "))
}

#[tokio::test]
async fn private_storage_get_set_and_its_errors() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    // Nothing stored yet: the element comes back empty.
    let r = a
        .iq("g0", &format!("<iq type='get' id='g0'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'/></query></iq>"))
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    assert!(
        text(&r).contains("<prefs xmlns='x:prefs'/>"),
        "{}",
        text(&r)
    );
    let r = a
        .iq("s1", &format!("<iq type='set' id='s1'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'><nick>Al &amp; co</nick></prefs></query></iq>"))
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    // Same namespace, another name: a separate element.
    let r = a
        .iq("s2", &format!("<iq type='set' id='s2'><query xmlns='{PRIVATE}'><other xmlns='x:prefs'>2</other></query></iq>"))
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    let r = a
        .iq("g1", &format!("<iq type='get' id='g1' to='alice@localhost'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'/></query></iq>"))
        .await;
    let t = text(&r);
    assert!(t.contains("<nick>Al &amp; co</nick>"), "{t}");
    assert!(!t.contains("<other"), "{t}");
    // Replaced by a later set.
    a.iq("s3", &format!("<iq type='set' id='s3'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'><nick>B</nick></prefs></query></iq>"))
        .await;
    let r = a
        .iq("g2", &format!("<iq type='get' id='g2'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'/></query></iq>"))
        .await;
    assert!(text(&r).contains("<nick>B</nick>"), "{}", text(&r));

    // Errors.
    for (id, iq, cond) in [
        ("e1", format!("<iq type='get' id='e1'><query xmlns='{PRIVATE}'/></iq>"), "not-acceptable"),
        ("e2", format!("<iq type='set' id='e2'><query xmlns='{PRIVATE}'><vCard xmlns='vcard-temp'/></query></iq>"), "not-acceptable"),
        ("e3", format!("<iq type='get' id='e3'><query xmlns='{PRIVATE}'><query xmlns='jabber:iq:roster'/></query></iq>"), "not-acceptable"),
        ("e4", format!("<iq type='set' id='e4'><query xmlns='{PRIVATE}'><x xmlns='http://jabber.org/protocol/muc'/></query></iq>"), "not-acceptable"),
        ("e5", format!("<iq type='get' id='e5'><query xmlns='{PRIVATE}'><a xmlns='x:a'/><b xmlns='x:b'/></query></iq>"), "bad-request"),
    ] {
        let r = a.iq(id, &iq).await;
        assert!(is_error(&r, cond), "{id}: {}", text(&r));
    }
    // Another account's data: forbidden, to read and to write.
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    for (id, ty) in [("f1", "get"), ("f2", "set")] {
        let r = b
            .iq(id, &format!("<iq type='{ty}' id='{id}' to='alice@localhost'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'/></query></iq>"))
            .await;
        assert!(is_error(&r, "forbidden"), "{id}: {}", text(&r));
    }
    // Bob's own storage is his alone: alice's element is not there.
    let r = b
        .iq("g3", &format!("<iq type='get' id='g3'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'/></query></iq>"))
        .await;
    assert!(
        text(&r).contains("<prefs xmlns='x:prefs'/>"),
        "{}",
        text(&r)
    );
    srv.stop().await;
}

#[tokio::test]
async fn private_storage_is_bounded_by_the_stanza_limit() {
    let srv = TestServer::start_with(|c| c.c2s.max_stanza_bytes = 10_000).await;
    srv.add_user("alice", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let big = "x".repeat(20_000);
    a.send(format!("<iq type='set' id='big'><query xmlns='{PRIVATE}'><prefs xmlns='x:prefs'>{big}</prefs></query></iq>"))
        .await;
    assert_eq!(a.stream_error().await.as_deref(), Some("policy-violation"));
    assert!(srv
        .store
        .kv_list(PRIVATE, "alice@localhost")
        .await
        .unwrap()
        .is_empty());
    srv.stop().await;
}

async fn set_visibility(c: &mut Client, who: &str) {
    let r = c
        .iq(
            "v",
            &format!("<iq type='set' id='v'><visibility xmlns='{LAST_SEEN}' who='{who}'/></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
}

async fn last_of_alice(c: &mut Client, id: &str) -> natter_xml::Stanza {
    c.iq(
        id,
        &format!(
            "<iq type='get' id='{id}' to='alice@localhost'><query xmlns='jabber:iq:last'/></iq>"
        ),
    )
    .await
}

#[tokio::test]
async fn last_seen_follows_the_owners_setting() {
    let srv = TestServer::start().await;
    for u in ["alice", "bob", "carol"] {
        srv.add_user(u, "pw").await;
    }
    // bob sees alice's presence; carol is nobody to her.
    for (owner, contact, sub) in [
        ("alice@localhost", "bob@localhost", Subscription::From),
        ("bob@localhost", "alice@localhost", Subscription::To),
    ] {
        let item = RosterItem {
            jid: contact.into(),
            subscription: sub,
            in_roster: true,
            ..RosterItem::default()
        };
        srv.store.roster_put(owner, &item).await.unwrap();
    }
    srv.store
        .set_last_activity("alice@localhost", 1_000, "")
        .await
        .unwrap();
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut c = Client::online(srv.addr, "carol", "pw", "c").await;
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;

    // The default: contacts.
    let r = a
        .iq(
            "g",
            &format!("<iq type='get' id='g'><visibility xmlns='{LAST_SEEN}'/></iq>"),
        )
        .await;
    assert!(text(&r).contains("who='contacts'"), "{}", text(&r));
    let r = last_of_alice(&mut b, "l1").await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    assert!(text(&r).contains("seconds="), "{}", text(&r));
    assert!(is_error(&last_of_alice(&mut c, "l2").await, "forbidden"));

    set_visibility(&mut a, "everyone").await;
    let r = last_of_alice(&mut c, "l3").await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    assert_eq!(
        last_of_alice(&mut b, "l4").await.stanza_type().as_deref(),
        Some("result")
    );

    set_visibility(&mut a, "nobody").await;
    assert!(is_error(&last_of_alice(&mut b, "l5").await, "forbidden"));
    assert!(is_error(&last_of_alice(&mut c, "l6").await, "forbidden"));
    let r = a
        .iq(
            "g2",
            &format!("<iq type='get' id='g2'><visibility xmlns='{LAST_SEEN}'/></iq>"),
        )
        .await;
    assert!(text(&r).contains("who='nobody'"), "{}", text(&r));

    // Everyone, but carol is blocked: she never sees it.
    set_visibility(&mut a, "everyone").await;
    let r = a
        .iq("bk", "<iq type='set' id='bk'><block xmlns='urn:xmpp:blocking'><item jid='carol@localhost'/></block></iq>")
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    assert!(is_error(&last_of_alice(&mut c, "l7").await, "forbidden"));
    assert_eq!(
        last_of_alice(&mut b, "l8").await.stanza_type().as_deref(),
        Some("result")
    );

    // Errors: a bad value, someone else's setting.
    let r = a
        .iq(
            "e1",
            &format!("<iq type='set' id='e1'><visibility xmlns='{LAST_SEEN}' who='friends'/></iq>"),
        )
        .await;
    assert!(is_error(&r, "bad-request"), "{}", text(&r));
    let r = b
        .iq("e2", &format!("<iq type='set' id='e2' to='alice@localhost'><visibility xmlns='{LAST_SEEN}' who='everyone'/></iq>"))
        .await;
    assert!(is_error(&r, "forbidden"), "{}", text(&r));
    // Listed in the account's features.
    let r = b
        .iq(
            "d",
            "<iq type='get' id='d' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    assert!(text(&r).contains(LAST_SEEN), "{}", text(&r));
    srv.stop().await;
}
