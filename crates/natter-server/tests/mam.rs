//! Message archive (XEP-0313), retraction tombstones (XEP-0424), archiving
//! preferences, `[archive] enabled = false` and retention, through the
//! real server.

mod common;

use common::{text, Client, TestServer, TIMEOUT};
use natter_store::{ArchiveEntry, Store, StoreConfig};
use natter_xml::{Element, Stanza};
use std::sync::Arc;

const MAM: &str = "urn:xmpp:mam:2";
const RSM: &str = "http://jabber.org/protocol/rsm";
const FWD: &str = "urn:xmpp:forward:0";

async fn two_users_with(f: impl FnOnce(&mut natter_server::Config)) -> TestServer {
    let srv = TestServer::start_with(f).await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    srv
}

async fn two_users() -> TestServer {
    two_users_with(|_| {}).await
}

/// One archived message as a query returned it.
#[derive(Debug)]
struct Item {
    id: String,
    stamp: String,
    message: Element,
}

impl Item {
    fn body(&self) -> Option<String> {
        self.message
            .get_child("body", "jabber:client")
            .map(|b| b.text())
    }
}

/// The outcome of a query: results, then the IQ answer.
struct Answer {
    items: Vec<Item>,
    iq: Stanza,
}

impl Answer {
    fn ids(&self) -> Vec<&str> {
        self.items.iter().map(|i| i.id.as_str()).collect()
    }
    fn bodies(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|i| i.body().unwrap_or_default())
            .collect()
    }
    fn fin(&self) -> Element {
        let el = self.iq.element().unwrap();
        assert_eq!(
            self.iq.stanza_type().as_deref(),
            Some("result"),
            "{}",
            text(&self.iq)
        );
        el.get_child("fin", MAM).expect("fin").clone()
    }
    fn complete(&self) -> bool {
        self.fin().attr("complete") == Some("true")
    }
    fn rsm(&self, name: &str) -> Option<String> {
        self.fin()
            .get_child("set", RSM)
            .and_then(|s| s.get_child(name, RSM))
            .map(|e| e.text())
    }
    /// The error condition of a failed query.
    fn error(&self) -> String {
        assert_eq!(
            self.iq.stanza_type().as_deref(),
            Some("error"),
            "{}",
            text(&self.iq)
        );
        let el = self.iq.element().unwrap();
        let err = el.get_child("error", "jabber:client").expect("error");
        let cond = err
            .elements()
            .find(|e| e.ns == "urn:ietf:params:xml:ns:xmpp-stanzas" && e.name != "text")
            .map(|e| e.name.clone())
            .unwrap_or_default();
        cond
    }
}

/// A data-form field.
fn field(var: &str, value: &str) -> String {
    format!("<field var='{var}'><value>{value}</value></field>")
}

/// Sends a query (form fields, RSM children, extra children) with `to`
/// (None: own account) and collects results until the IQ answer.
async fn query_to(
    c: &mut Client,
    to: Option<&str>,
    fields: &str,
    rsm: &str,
    extra: &str,
) -> Answer {
    let qid = format!("q{}", rand_id());
    let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
    let form = if fields.is_empty() {
        String::new()
    } else {
        format!(
            "<x xmlns='jabber:x:data' type='submit'>{}{fields}</x>",
            field("FORM_TYPE", MAM)
        )
    };
    let set = if rsm.is_empty() {
        String::new()
    } else {
        format!("<set xmlns='{RSM}'>{rsm}</set>")
    };
    c.send(format!(
        "<iq type='set' id='{qid}'{to}><query xmlns='{MAM}' queryid='{qid}'>{form}{set}{extra}</query></iq>"
    ))
    .await;
    let mut items = Vec::new();
    loop {
        let st = c.stanza().await;
        if st.name() == "iq" && st.id().as_deref() == Some(qid.as_str()) {
            return Answer { items, iq: st };
        }
        if st.name() != "message" {
            continue;
        }
        let el = st.element().unwrap();
        let Some(result) = el.get_child("result", MAM) else {
            continue; // a live message
        };
        assert_eq!(result.attr("queryid"), Some(qid.as_str()));
        let fwd = result.get_child("forwarded", FWD).expect("forwarded");
        let stamp = fwd
            .get_child("delay", "urn:xmpp:delay")
            .and_then(|d| d.attr("stamp"))
            .expect("delay")
            .to_owned();
        let message = fwd
            .get_child("message", "jabber:client")
            .expect("a jabber:client message inside forwarded")
            .clone();
        items.push(Item {
            id: result.attr("id").unwrap().to_owned(),
            stamp,
            message,
        });
    }
}

async fn query(c: &mut Client, fields: &str, rsm: &str) -> Answer {
    query_to(c, None, fields, rsm, "").await
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Sends `n` chat messages from `from` to `to_jid` and waits until `to`
/// received them all; returns the stanza-ids they arrived with.
async fn exchange(
    from: &mut Client,
    to: &mut Client,
    to_jid: &str,
    tag: &str,
    n: usize,
) -> Vec<String> {
    for i in 0..n {
        from.send(format!(
            "<message to='{to_jid}' type='chat' id='{tag}{i}'><body>{tag} {i}</body></message>"
        ))
        .await;
    }
    let mut ids = Vec::new();
    for i in 0..n {
        let want = format!("{tag}{i}");
        let m = to
            .expect("message", |s| {
                s.name() == "message" && s.id().as_deref() == Some(&want)
            })
            .await;
        let el = m.element().unwrap();
        let sid = el
            .get_child("stanza-id", "urn:xmpp:sid:0")
            .expect("stanza-id");
        ids.push(sid.attr("id").unwrap().to_owned());
    }
    ids
}

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
