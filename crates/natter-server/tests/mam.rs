//! Message archive (XEP-0313) queries through the real server: both
//! archives, filters, paging both ways, flip-page, errors, metadata.

mod common;

use common::mam::*;
use common::{text, Client};

#[tokio::test]
async fn both_archives_hold_the_message_under_its_stanza_id() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    let to_bob = exchange(&mut a, &mut b, "bob@localhost", "ab", 3).await;
    let to_alice = exchange(&mut b, &mut a, "alice@localhost", "ba", 2).await;

    let bob_view = query(&mut b, "", "").await;
    let alice_view = query(&mut a, "", "").await;
    let all: Vec<String> = to_bob.iter().chain(&to_alice).cloned().collect();
    assert_eq!(bob_view.ids(), all);
    assert_eq!(alice_view.ids(), all, "the sender's copy has the same id");
    assert_eq!(
        alice_view.bodies(),
        ["ab 0", "ab 1", "ab 2", "ba 0", "ba 1"]
    );
    assert!(alice_view.complete());
    assert_eq!(alice_view.rsm("first").as_deref(), Some(all[0].as_str()));
    assert_eq!(alice_view.rsm("last").as_deref(), Some(all[4].as_str()));
    let first = &alice_view.items[0];
    assert_eq!(first.message.attr("from"), Some("alice@localhost/phone"));
    assert_eq!(first.message.attr("to"), Some("bob@localhost"));
    assert!(first.stamp.ends_with('Z'), "{}", first.stamp);

    // with: bare matches every resource, full only that one.
    let with_bob = query(&mut a, &field("with", "bob@localhost"), "").await;
    assert_eq!(with_bob.items.len(), 5);
    let desk = query(&mut a, &field("with", "bob@localhost/desk"), "").await;
    assert_eq!(desk.ids(), to_alice, "bob's messages came from bob/desk");
    let carol = query(&mut a, &field("with", "carol@localhost"), "").await;
    assert!(carol.items.is_empty());
    assert!(carol.complete());
    assert_eq!(carol.rsm("count").as_deref(), Some("0"));

    // #extended: after-id, before-id, ids.
    let after = query(&mut b, &field("after-id", &all[2]), "").await;
    assert_eq!(after.ids(), &all[3..]);
    let before = query(&mut b, &field("before-id", &all[2]), "").await;
    assert_eq!(before.ids(), &all[..2]);
    let some = format!(
        "<field var='ids'><value>{}</value><value>{}</value></field>",
        all[4], all[1]
    );
    assert_eq!(query(&mut b, &some, "").await.ids(), [&all[1], &all[4]]);

    // start/end: everything is from the last minute.
    let past = query(&mut b, &field("end", "2000-01-01T00:00:00Z"), "").await;
    assert!(past.items.is_empty());
    let recent = query(&mut b, &field("start", "2000-01-01T00:00:00Z"), "").await;
    assert_eq!(recent.items.len(), 5);
    srv.stop().await;
}

#[tokio::test]
async fn paging_both_ways_and_flip_page() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    let ids = exchange(&mut a, &mut b, "bob@localhost", "m", 10).await;

    // Forward with RSM after.
    let p1 = query(&mut b, "", "<max>4</max>").await;
    assert_eq!(p1.ids(), &ids[0..4]);
    assert!(!p1.complete());
    let last = p1.rsm("last").unwrap();
    let p2 = query(&mut b, "", &format!("<max>4</max><after>{last}</after>")).await;
    assert_eq!(p2.ids(), &ids[4..8]);
    let last = p2.rsm("last").unwrap();
    let p3 = query(&mut b, "", &format!("<max>4</max><after>{last}</after>")).await;
    assert_eq!(p3.ids(), &ids[8..10]);
    assert!(p3.complete());

    // Backward: empty <before/> is the last page.
    let b1 = query(&mut b, "", "<max>4</max><before/>").await;
    assert_eq!(b1.ids(), &ids[6..10], "in archive order");
    assert!(!b1.complete());
    let first = b1.rsm("first").unwrap();
    let b2 = query(&mut b, "", &format!("<max>4</max><before>{first}</before>")).await;
    assert_eq!(b2.ids(), &ids[2..6]);
    let first = b2.rsm("first").unwrap();
    let b3 = query(&mut b, "", &format!("<max>4</max><before>{first}</before>")).await;
    assert_eq!(b3.ids(), &ids[0..2]);
    assert!(
        b3.complete(),
        "the page with the oldest is complete going backward"
    );

    // flip-page: the same page, newest first.
    let flipped = query_to(&mut b, None, "", "<max>4</max><before/>", "<flip-page/>").await;
    let mut want: Vec<&str> = ids[6..10].iter().map(String::as_str).collect();
    want.reverse();
    assert_eq!(flipped.ids(), want);
    assert_eq!(flipped.rsm("first").as_deref(), Some(want[0]));

    // max 0: nothing, but says whether there is more.
    let none = query(&mut b, "", "<max>0</max>").await;
    assert!(none.items.is_empty());
    assert!(!none.complete());
    srv.stop().await;
}

#[tokio::test]
async fn bad_queries_get_the_error_that_names_the_problem() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    exchange(&mut a, &mut b, "bob@localhost", "m", 2).await;

    let unknown = query(&mut a, "", "<after>no-such-id</after>").await;
    assert_eq!(unknown.error(), "item-not-found");
    let unknown = query(&mut a, &field("before-id", "nope"), "").await;
    assert_eq!(unknown.error(), "item-not-found");
    assert_eq!(
        query(&mut a, &field("shoe-size", "9"), "").await.error(),
        "bad-request"
    );
    assert_eq!(
        query(&mut a, &field("start", "yesterday"), "")
            .await
            .error(),
        "bad-request"
    );
    assert_eq!(
        query(&mut a, &field("with", "a@b@c"), "").await.error(),
        "bad-request"
    );
    assert_eq!(
        query(&mut a, "", "<max>lots</max>").await.error(),
        "bad-request"
    );
    assert_eq!(
        query(&mut a, "", "<index>3</index>").await.error(),
        "bad-request"
    );
    assert_eq!(
        query(&mut a, "", "<max>1000</max>").await.error(),
        "policy-violation"
    );
    let wrong_type = query_to(
        &mut a,
        None,
        "",
        "",
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x>",
    )
    .await;
    assert_eq!(wrong_type.error(), "bad-request");
    let reversed = format!(
        "{}{}",
        field("start", "2020-01-02T00:00:00Z"),
        field("end", "2020-01-01T00:00:00Z")
    );
    assert_eq!(query(&mut a, &reversed, "").await.error(), "bad-request");

    // Another account's archive.
    let theirs = query_to(&mut a, Some("bob@localhost"), "", "", "").await;
    assert_eq!(theirs.error(), "forbidden");
    let r = a
        .iq(
            "p1",
            "<iq type='get' id='p1' to='bob@localhost'><prefs xmlns='urn:xmpp:mam:2'/></iq>",
        )
        .await;
    assert!(text(&r).contains("<forbidden"), "{}", text(&r));

    // The session still works.
    assert_eq!(query(&mut a, "", "").await.items.len(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn offline_recipient_finds_the_message_in_the_archive_too() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    for i in 0..3 {
        a.send(format!(
            "<message to='bob@localhost' type='chat' id='o{i}'><body>while away {i}</body></message>"
        ))
        .await;
    }
    // A message to an account that does not exist is in no archive.
    a.send("<message to='nobody@localhost' type='chat' id='n1'><body>hello?</body></message>")
        .await;
    let e = a
        .expect("bounce", |s| s.id().as_deref() == Some("n1"))
        .await;
    assert_eq!(e.stanza_type().as_deref(), Some("error"));
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    let got = query(&mut b, "", "").await;
    assert_eq!(
        got.bodies(),
        ["while away 0", "while away 1", "while away 2"]
    );
    let sent = query(&mut a, "", "").await;
    assert_eq!(sent.ids(), got.ids());
    srv.stop().await;
}

#[tokio::test]
async fn metadata_and_disco() {
    let srv = two_users().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "desk").await;
    let r = a
        .iq(
            "m0",
            "<iq type='get' id='m0'><metadata xmlns='urn:xmpp:mam:2'/></iq>",
        )
        .await;
    let el = r.element().unwrap();
    assert_eq!(el.get_child("metadata", MAM).unwrap().elements().count(), 0);
    let ids = exchange(&mut a, &mut b, "bob@localhost", "m", 3).await;
    let r = a
        .iq(
            "m1",
            "<iq type='get' id='m1'><metadata xmlns='urn:xmpp:mam:2'/></iq>",
        )
        .await;
    let el = r.element().unwrap();
    let md = el.get_child("metadata", MAM).unwrap();
    assert_eq!(
        md.get_child("start", MAM).unwrap().attr("id"),
        Some(ids[0].as_str())
    );
    assert_eq!(
        md.get_child("end", MAM).unwrap().attr("id"),
        Some(ids[2].as_str())
    );

    let r = a
        .iq(
            "d1",
            "<iq type='get' id='d1' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    let t = text(&r);
    for f in [MAM, "urn:xmpp:mam:2#extended", "urn:xmpp:message-retract:1"] {
        assert!(t.contains(&format!("var='{f}'")), "{f} in {t}");
    }
    // The query form.
    let r = a
        .iq(
            "f1",
            "<iq type='get' id='f1'><query xmlns='urn:xmpp:mam:2'/></iq>",
        )
        .await;
    let t = text(&r);
    for v in ["with", "start", "end", "before-id", "after-id", "ids"] {
        assert!(t.contains(&format!("var='{v}'")), "{v} in {t}");
    }
    srv.stop().await;
}
