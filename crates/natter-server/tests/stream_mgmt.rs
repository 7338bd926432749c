//! XEP-0198 stream management and the durable queue: nothing acked is lost.

mod common;
use common::*;
use natter_xml::Stanza;

const SM: &str = "urn:xmpp:sm:3";

async fn enable(c: &mut Client, resume: bool) -> String {
    let r = if resume { " resume='true'" } else { "" };
    c.send(format!("<enable xmlns='{SM}'{r}/>")).await;
    let e = c
        .expect("enabled", |s| s.name() == "enabled" || s.name() == "failed")
        .await;
    assert_eq!(e.name(), "enabled", "{}", text(&e));
    c.handled = 0;
    e.attr("id").unwrap().into_owned()
}

/// Reads until `n` messages arrived; returns them (skips everything else).
async fn messages(c: &mut Client, n: usize) -> Vec<Stanza> {
    let mut v = Vec::new();
    while v.len() < n {
        let s = c.stanza().await;
        if s.name() == "message" {
            v.push(s);
        }
    }
    v
}

async fn queue_len(srv: &TestServer, bare: &str) -> u64 {
    srv.store.offline_count(bare).await.unwrap()
}

/// Polls until the queue of `bare` has `n` entries (deletes happen after the
/// write or ack that triggers them).
async fn wait_queue(srv: &TestServer, bare: &str, n: u64) {
    for _ in 0..200 {
        if queue_len(srv, bare).await == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "queue of {bare} has {} entries, expected {n}",
        queue_len(srv, bare).await
    );
}

async fn setup() -> TestServer {
    setup_with(|_| {}).await
}

/// A server with alice and bob, a 2 s resume timeout, and `f` applied.
async fn setup_with(f: impl FnOnce(&mut natter_server::Config)) -> TestServer {
    let srv = TestServer::start_with(|c| {
        c.c2s.resume_timeout_secs = 2;
        f(c);
    })
    .await;
    for u in ["alice", "bob"] {
        srv.add_user(u, "pw").await;
    }
    srv
}

async fn send_n(a: &mut Client, from: usize, to: usize) {
    let mut batch = String::new();
    for i in from..to {
        batch.push_str(&format!(
            "<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message>"
        ));
    }
    a.send(batch).await;
}

#[tokio::test]
async fn sender_ack_means_queued_and_recipient_ack_dequeues() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    enable(&mut a, false).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    send_n(&mut a, 0, 20).await;
    a.send(format!("<r xmlns='{SM}'/>")).await;
    let ack = a.expect("a", |s| s.name() == "a").await;
    // h counts the 20 messages (stanzas after <enable/>).
    assert_eq!(ack.attr("h").as_deref(), Some("20"));
    let got = messages(&mut b, 20).await;
    assert_eq!(got.len(), 20);
    // Bob has them but has not acknowledged: they are still queued.
    assert_eq!(queue_len(&srv, "bob@localhost").await, 20);
    // The server asked Bob for an ack; answering it empties the queue.
    b.send(format!("<a xmlns='{SM}' h='{}'/>", b.handled)).await;
    wait_queue(&srv, "bob@localhost", 0).await;
    srv.stop().await;
}

/// A message the online recipient acknowledges within `ack_wait_ms` is
/// never written to the queue, and the sender's ack does not wait for it.
#[tokio::test]
async fn acknowledged_in_time_never_touches_the_queue() {
    let srv = setup_with(|c| c.store.ack_wait_ms = 60_000).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    enable(&mut a, false).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    let before = srv.store.stats();
    send_n(&mut a, 0, 5).await;
    assert_eq!(messages(&mut b, 5).await.len(), 5);
    b.send(format!("<a xmlns='{SM}' h='{}'/>", b.handled)).await;
    // Alice's ack comes long before the minute the writes would wait.
    let t = std::time::Instant::now();
    a.send(format!("<r xmlns='{SM}'/>")).await;
    let ack = a.expect("a", |s| s.name() == "a").await;
    assert_eq!(ack.attr("h").as_deref(), Some("5"));
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    let after = srv.store.stats();
    assert_eq!(after.withdrawn - before.withdrawn, 5);
    assert_eq!(queue_len(&srv, "bob@localhost").await, 0);
    // Unacknowledged, the next one is kept: it is there after a reconnect.
    send_n(&mut a, 5, 6).await;
    assert_eq!(messages(&mut b, 1).await.len(), 1);
    drop(b);
    let mut b = Client::online(srv.addr, "bob", "pw", "b2").await;
    let again = messages(&mut b, 1).await;
    assert_eq!(again[0].attr("id").as_deref(), Some("m5"));
    srv.stop().await;
}

/// A stanza that must wait for the messages before it (an IQ) does not
/// wait out their `ack_wait`: their writes are done at once.
#[tokio::test]
async fn an_iq_after_messages_does_not_wait_for_acks() {
    let srv = setup_with(|c| c.store.ack_wait_ms = 60_000).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    enable(&mut a, false).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    send_n(&mut a, 0, 3).await;
    assert_eq!(messages(&mut b, 3).await.len(), 3);
    let t = std::time::Instant::now();
    a.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    a.expect("ping result", |s| {
        s.name() == "iq" && s.attr("id").as_deref() == Some("p1")
    })
    .await;
    assert!(t.elapsed() < std::time::Duration::from_secs(30));
    // Bob never acknowledged them: they were written.
    wait_queue(&srv, "bob@localhost", 3).await;
    srv.stop().await;
}

#[tokio::test]
async fn requests_between_messages_are_answered_in_their_turn() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    enable(&mut a, false).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    // One write: each <r/> counts exactly the messages before it, though
    // the session reads on while their commits are in flight.
    let mut batch = String::new();
    for i in 0..10 {
        batch.push_str(&format!(
            "<message to='bob@localhost' type='chat' id='m{i}'><body>{i}</body></message><r xmlns='{SM}'/>"
        ));
    }
    a.send(batch).await;
    for i in 1..=10 {
        let ack = a.expect("a", |s| s.name() == "a").await;
        assert_eq!(ack.attr("h").as_deref(), Some(i.to_string().as_str()));
    }
    // Every answered one is committed: all ten are in Bob's queue (he has
    // not acknowledged any) and arrive in order.
    assert_eq!(queue_len(&srv, "bob@localhost").await, 10);
    let got = messages(&mut b, 10).await;
    let ids: Vec<String> = got.iter().map(|m| m.id().unwrap().into_owned()).collect();
    assert_eq!(ids, (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>());
    // Bob acks and asks: the answer comes once the deletes are committed.
    b.send(format!(
        "<a xmlns='{SM}' h='{}'/><r xmlns='{SM}'/>",
        b.handled
    ))
    .await;
    b.expect("a", |s| s.name() == "a").await;
    assert_eq!(queue_len(&srv, "bob@localhost").await, 0);
    srv.stop().await;
}

#[tokio::test]
async fn without_sm_written_means_delivered() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    send_n(&mut a, 0, 5).await;
    messages(&mut b, 5).await;
    wait_queue(&srv, "bob@localhost", 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn resume_retransmits_exactly_the_unacked() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let id = enable(&mut b, true).await;
    send_n(&mut a, 0, 3).await;
    let got = messages(&mut b, 3).await;
    assert_eq!(got[0].id().as_deref(), Some("m0"));
    drop(b); // the TCP connection is cut; Bob acked nothing
    send_n(&mut a, 3, 5).await;
    a.iq(
        "p",
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    let mut b = Client::connect(srv.addr).await;
    assert!(b.auth("bob", "pw", "SCRAM-SHA-1").await);
    b.open().await;
    let f = b.stanza().await;
    assert!(f.has_child("sm", SM));
    // Bob's client had received 1 stanza of this stream... it says h=1: m0.
    b.send(format!("<resume xmlns='{SM}' previd='{id}' h='1'/>"))
        .await;
    let r = b
        .expect("resumed", |s| s.name() == "resumed" || s.name() == "failed")
        .await;
    assert_eq!(r.name(), "resumed", "{}", text(&r));
    let again = messages(&mut b, 4).await;
    let ids: Vec<String> = again.iter().map(|m| m.id().unwrap().into_owned()).collect();
    assert_eq!(ids, ["m1", "m2", "m3", "m4"]);
    // Same stanza-id as the first delivery, so clients can drop duplicates.
    assert_eq!(
        got[1]
            .child("stanza-id", "urn:xmpp:sid:0")
            .unwrap()
            .attr(&got[1], "id"),
        again[0]
            .child("stanza-id", "urn:xmpp:sid:0")
            .unwrap()
            .attr(&again[0], "id")
    );
    // Alice never saw Bob go unavailable.
    a.send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    loop {
        let s = a.stanza().await;
        assert_ne!(
            s.stanza_type().as_deref(),
            Some("unavailable"),
            "{}",
            text(&s)
        );
        if s.id().as_deref() == Some("p2") {
            break;
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn expired_or_unknown_resumption_fails_and_messages_stay_queued() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let id = enable(&mut b, true).await;
    send_n(&mut a, 0, 3).await;
    messages(&mut b, 3).await;
    drop(b);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await; // past resume_timeout_secs = 2
    for previd in [id.as_str(), "no-such-session"] {
        let mut b = Client::connect(srv.addr).await;
        assert!(b.auth("bob", "pw", "SCRAM-SHA-256").await);
        b.open().await;
        b.stanza().await;
        b.send(format!("<resume xmlns='{SM}' previd='{previd}' h='0'/>"))
            .await;
        let f = b
            .expect("failed", |s| s.name() == "failed" || s.name() == "resumed")
            .await;
        assert!(
            f.has_child("item-not-found", "urn:ietf:params:xml:ns:xmpp-stanzas"),
            "{}",
            text(&f)
        );
    }
    // A fresh login gets the three again, with a delay stamp.
    let mut b = Client::online(srv.addr, "bob", "pw", "b2").await;
    let again = messages(&mut b, 3).await;
    assert!(again.iter().all(|m| m.has_child("delay", "urn:xmpp:delay")));
    srv.stop().await;
}

#[tokio::test]
async fn misuse_gets_failed_or_a_stream_error() {
    let srv = setup().await;
    // <enable/> before bind.
    let mut c = Client::connect(srv.addr).await;
    assert!(c.auth("bob", "pw", "PLAIN").await);
    c.open().await;
    c.stanza().await;
    c.send(format!("<enable xmlns='{SM}'/>")).await;
    let f = c.stanza().await;
    assert_eq!(f.name(), "failed");
    assert!(f.has_child("unexpected-request", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    // A second <enable/>, and <r/>/<a/> before enabling.
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    b.send(format!("<r xmlns='{SM}'/>")).await;
    let f = b.expect("failed", |s| s.name() == "failed").await;
    assert!(f.has_child("unexpected-request", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    enable(&mut b, false).await;
    b.send(format!("<enable xmlns='{SM}'/>")).await;
    let f = b.expect("failed", |s| s.name() == "failed").await;
    assert!(f.has_child("unexpected-request", "urn:ietf:params:xml:ns:xmpp-stanzas"));
    // Acknowledging more than was sent ends the stream.
    b.send(format!("<a xmlns='{SM}' h='99'/>")).await;
    assert_eq!(
        b.stream_error().await.as_deref(),
        Some("undefined-condition")
    );
    srv.stop().await;
}

#[tokio::test]
async fn two_resources_one_acks() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b1 = Client::online(srv.addr, "bob", "pw", "one").await;
    enable(&mut b1, false).await;
    let mut b2 = Client::online(srv.addr, "bob", "pw", "two").await;
    enable(&mut b2, false).await;
    send_n(&mut a, 0, 4).await;
    messages(&mut b1, 4).await;
    messages(&mut b2, 4).await;
    // Delivered before their commits landed: wait for them.
    wait_queue(&srv, "bob@localhost", 4).await;
    // One session acknowledging is enough: the account has them.
    b1.send(format!("<a xmlns='{SM}' h='{}'/>", b1.handled))
        .await;
    wait_queue(&srv, "bob@localhost", 0).await;
    drop(b2);
    let mut b3 = Client::online(srv.addr, "bob", "pw", "three").await;
    let r = b3
        .iq(
            "p",
            "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    srv.stop().await;
}

#[tokio::test]
async fn order_of_1000_through_live_queued_and_redelivered() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    send_n(&mut a, 0, 400).await;
    let live = messages(&mut b, 400).await;
    assert_eq!(b.handled, 400);
    b.send(format!("<a xmlns='{SM}' h='300'/>")).await; // 0..299 acked
    wait_queue(&srv, "bob@localhost", 100).await;
    drop(b); // 300..399 unacked
    send_n(&mut a, 400, 1000).await;
    a.iq(
        "p",
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let later = messages(&mut b, 700).await;
    let ids = |v: &[Stanza]| -> Vec<usize> {
        v.iter()
            .map(|m| m.id().unwrap()[1..].parse().unwrap())
            .collect()
    };
    assert_eq!(ids(&live), (0..400).collect::<Vec<_>>());
    assert_eq!(ids(&later), (300..1000).collect::<Vec<_>>());
    srv.stop().await;
}

#[tokio::test]
async fn slow_reader_is_cut_and_loses_nothing() {
    let srv = TestServer::start_with(|c| c.c2s.max_unacked = 10).await;
    for u in ["alice", "bob"] {
        srv.add_user(u, "pw").await;
    }
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    enable(&mut a, false).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    send_n(&mut a, 0, 50).await;
    a.send(format!("<r xmlns='{SM}'/>")).await;
    let ack = a.expect("a", |s| s.name() == "a").await;
    assert_eq!(
        ack.attr("h").as_deref(),
        Some("50"),
        "the sender is never blocked"
    );
    assert_eq!(b.stream_error().await.as_deref(), Some("policy-violation"));
    assert_eq!(queue_len(&srv, "bob@localhost").await, 50);
    let mut b = Client::online(srv.addr, "bob", "pw", "b2").await;
    let got = messages(&mut b, 50).await;
    assert_eq!(got.len(), 50);
    srv.stop().await;
}

#[tokio::test]
async fn a_backlog_larger_than_max_unacked_is_delivered_at_login() {
    let srv = TestServer::start_with(|c| c.c2s.max_unacked = 10).await;
    for u in ["alice", "bob"] {
        srv.add_user(u, "pw").await;
    }
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    enable(&mut a, false).await;
    send_n(&mut a, 0, 50).await;
    a.send(format!("<r xmlns='{SM}'/>")).await;
    a.expect("a", |s| s.name() == "a").await;
    assert_eq!(queue_len(&srv, "bob@localhost").await, 50);
    // Bob comes online with stream management and 5x the limit waiting:
    // the offline flush alone does not get him cut.
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    b.send("<presence/>").await;
    let got = messages(&mut b, 50).await;
    assert_eq!(got.len(), 50);
    // Still connected: his ack and request are answered, the queue empties.
    b.send(format!(
        "<a xmlns='{SM}' h='{}'/><r xmlns='{SM}'/>",
        b.handled
    ))
    .await;
    let ack = b
        .expect("a", |s| s.name() == "a" || s.name() == "error")
        .await;
    assert_eq!(ack.name(), "a", "{}", text(&ack));
    wait_queue(&srv, "bob@localhost", 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn sender_can_ask_whether_a_message_is_still_queued() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    send_n(&mut a, 0, 2).await;
    let ask = |id: &str, q: &str| {
        format!("<iq type='get' id='{q}' to='bob@localhost'><queued xmlns='urn:natter:queue:0' id='{id}'/></iq>")
    };
    let state = |r: &Stanza| {
        r.element()
            .unwrap()
            .get_child("queued", "urn:natter:queue:0")
            .and_then(|q| q.attr("state").map(str::to_owned))
    };
    let r = a.iq("q1", &ask("m1", "q1")).await;
    assert_eq!(state(&r).as_deref(), Some("queued"), "{}", text(&r));
    let r = a.iq("q2", &ask("nope", "q2")).await;
    assert_eq!(state(&r).as_deref(), Some("not-queued"));
    // Another sender cannot see Alice's messages.
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    let r = b.iq("q3", "<iq type='get' id='q3' to='bob@localhost'><queued xmlns='urn:natter:queue:0' id='m1'/></iq>").await;
    assert_eq!(state(&r).as_deref(), Some("not-queued"));
    // Once Bob's client has it: not queued any more (two ticks).
    b.send("<presence/>").await;
    messages(&mut b, 2).await;
    wait_queue(&srv, "bob@localhost", 0).await;
    let r = a.iq("q4", &ask("m1", "q4")).await;
    assert_eq!(state(&r).as_deref(), Some("not-queued"));
    srv.stop().await;
}

#[tokio::test]
async fn server_asks_again_while_stanzas_stay_unacked() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    enable(&mut b, false).await;
    send_n(&mut a, 0, 3).await;
    let mut requests = 0;
    let mut got = 0;
    while got < 3 || requests == 0 {
        let s = b.stanza().await;
        match s.name() {
            "message" => got += 1,
            "r" => requests += 1,
            _ => {}
        }
    }
    // Acknowledge only the first: the server must ask for the rest.
    b.send(format!("<a xmlns='{SM}' h='1'/>")).await;
    let again = b.expect("another <r/>", |s| s.name() == "r").await;
    assert_eq!(again.ns(), SM);
    b.send(format!("<a xmlns='{SM}' h='3'/>")).await;
    wait_queue(&srv, "bob@localhost", 0).await;
    srv.stop().await;
}

#[tokio::test]
async fn unanswered_requests_of_a_dead_session_get_an_error() {
    let srv = setup().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    enable(&mut a, false).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    b.send("<iq type='get' id='lost' to='alice@localhost/a'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    a.expect("the ping", |s| s.id().as_deref() == Some("lost"))
        .await;
    drop(a); // never answered, never acknowledged
    let e = b
        .expect("error", |s| s.id().as_deref() == Some("lost"))
        .await;
    assert_eq!(e.stanza_type().as_deref(), Some("error"));
    assert!(text(&e).contains("service-unavailable"), "{}", text(&e));
    assert_eq!(e.from().as_deref(), Some("alice@localhost/a"));
    srv.stop().await;
}
