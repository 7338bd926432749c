//! Client state indication (XEP-0352): while a client is inactive, presence
//! and chat states wait, folded to the latest per sender; anything else
//! releases them first, in order. Nothing is lost, and XEP-0198 counts
//! only what was sent.
//!
//! Order across senders is made certain with ping round trips: once a
//! sender's ping is answered, what it sent before is in the recipient's
//! mailbox. Where a test needs the recipient's session to have taken
//! those from its mailbox (before `<active/>` or a dropped connection), it
//! relies on the test runtime being single-threaded: the recipient's task
//! was woken by the delivery, before the ping answer woke the test, and
//! runs first.

mod common;
use common::*;
use natter_xml::Stanza;

const CSI: &str = "urn:xmpp:csi:0";
const SM: &str = "urn:xmpp:sm:3";
const STATES: &str = "http://jabber.org/protocol/chatstates";

async fn server() -> TestServer {
    let srv = TestServer::start_with(|c| c.c2s.resume_timeout_secs = 30).await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    srv
}

async fn ping(c: &mut Client, id: &str) {
    c.iq(
        id,
        &format!("<iq type='get' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>"),
    )
    .await;
}

/// Tells the server the client is inactive; the ping makes sure it was
/// taken before anything that follows.
async fn inactive(c: &mut Client) {
    c.send(format!("<inactive xmlns='{CSI}'/>")).await;
    ping(c, "inactive").await;
}

async fn show(c: &mut Client, to: &str, show: &str) {
    c.send(format!(
        "<presence to='{to}'><show>{show}</show></presence>"
    ))
    .await;
}

async fn state(c: &mut Client, to: &str, state: &str) {
    c.send(format!(
        "<message to='{to}' type='chat'><{state} xmlns='{STATES}'/></message>"
    ))
    .await;
}

/// A short description of a stanza: `presence:FROM:SHOW`,
/// `state:FROM:STATE`, `message:ID`, `iq:ID`, `presence:FROM:TYPE`.
fn describe(s: &Stanza) -> String {
    let from = s.from().unwrap_or_default().into_owned();
    let el = s.element().unwrap();
    match s.name() {
        "presence" => match s.stanza_type() {
            Some(t) => format!("presence:{from}:{t}"),
            None => {
                let show = el
                    .get_child("show", "jabber:client")
                    .map(|e| e.text())
                    .unwrap_or_default();
                format!("presence:{from}:{show}")
            }
        },
        "message" => match el.elements().find(|c| c.ns == STATES) {
            Some(c) if !s.has_child("body", "jabber:client") => {
                format!("state:{from}:{}", c.name)
            }
            _ => format!("message:{}", s.id().unwrap_or_default()),
        },
        other => format!("{other}:{}", s.id().unwrap_or_default()),
    }
}

async fn next(c: &mut Client, n: usize) -> Vec<String> {
    let mut v = Vec::new();
    while v.len() < n {
        v.push(describe(&c.stanza().await));
    }
    v
}

#[tokio::test]
async fn offered_after_authentication() {
    let srv = server().await;
    let mut c = Client::connect(srv.addr).await;
    c.open().await;
    let f = c.stanza().await;
    assert!(!f.has_child("csi", CSI), "not before authentication");
    assert!(c.auth_with("bob", "pw", "SCRAM-SHA-256", None).await);
    c.open().await;
    let f = c.stanza().await;
    assert!(f.has_child("csi", CSI), "{}", text(&f));
    srv.stop().await;
}

#[tokio::test]
async fn presence_and_chat_states_fold_and_a_message_releases_them_in_order() {
    let srv = server().await;
    let mut a1 = Client::online(srv.addr, "alice", "pw", "a1").await;
    let mut a2 = Client::online(srv.addr, "alice", "pw", "a2").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let to = "bob@localhost/b";
    inactive(&mut b).await;
    show(&mut a1, to, "away").await;
    state(&mut a1, to, "composing").await;
    ping(&mut a1, "p1").await;
    show(&mut a2, to, "dnd").await;
    ping(&mut a2, "p2").await;
    show(&mut a1, to, "xa").await;
    state(&mut a1, to, "paused").await;
    a1.send(format!(
        "<message to='{to}' type='chat' id='m1'><body>wake up</body></message>"
    ))
    .await;
    assert_eq!(
        next(&mut b, 4).await,
        [
            "presence:alice@localhost/a2:dnd",
            "presence:alice@localhost/a1:xa",
            "state:alice@localhost/a1:paused",
            "message:m1",
        ]
    );
    // Nothing else was kept back: a presence update now waits again, and
    // a headline releases it.
    show(&mut a1, to, "chat").await;
    a1.send(format!(
        "<message to='{to}' type='headline' id='h1'><body>x</body></message>"
    ))
    .await;
    assert_eq!(
        next(&mut b, 2).await,
        ["presence:alice@localhost/a1:chat", "message:h1"]
    );
    srv.stop().await;
}

#[tokio::test]
async fn receipts_iqs_and_subscription_requests_release_what_is_held() {
    let srv = server().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let to = "bob@localhost/b";
    inactive(&mut b).await;
    show(&mut a, to, "away").await;
    a.send(format!(
        "<message to='{to}' id='r1'><received xmlns='urn:xmpp:receipts' id='m0'/></message>"
    ))
    .await;
    assert_eq!(
        next(&mut b, 2).await,
        ["presence:alice@localhost/a:away", "message:r1"]
    );
    show(&mut a, to, "xa").await;
    a.send(format!(
        "<iq to='{to}' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>"
    ))
    .await;
    assert_eq!(
        next(&mut b, 2).await,
        ["presence:alice@localhost/a:xa", "iq:q1"]
    );
    b.send("<iq to='alice@localhost/a' type='result' id='q1'/>")
        .await;
    a.expect("pong", |s| s.id().as_deref() == Some("q1")).await;
    show(&mut a, to, "dnd").await;
    a.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    assert_eq!(
        next(&mut b, 2).await,
        [
            "presence:alice@localhost/a:dnd",
            "presence:alice@localhost:subscribe"
        ]
    );
    srv.stop().await;
}

#[tokio::test]
async fn active_releases_the_latest_of_each() {
    let srv = server().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let to = "bob@localhost/b";
    inactive(&mut b).await;
    show(&mut a, to, "away").await;
    state(&mut a, to, "composing").await;
    show(&mut a, to, "xa").await;
    ping(&mut a, "p1").await;
    b.send(format!("<active xmlns='{CSI}'/>")).await;
    assert_eq!(
        next(&mut b, 2).await,
        [
            "state:alice@localhost/a:composing",
            "presence:alice@localhost/a:xa"
        ]
    );
    // Active again: a chat state goes out at once.
    state(&mut a, to, "paused").await;
    assert_eq!(next(&mut b, 1).await, ["state:alice@localhost/a:paused"]);
    srv.stop().await;
}

async fn enable_sm(c: &mut Client) -> String {
    c.send(format!("<enable xmlns='{SM}' resume='true'/>"))
        .await;
    let e = c.expect("enabled", |s| s.name() == "enabled").await;
    c.handled = 0;
    e.attr("id").unwrap().into_owned()
}

#[tokio::test]
async fn stream_management_counts_only_what_was_sent() {
    let srv = server().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let to = "bob@localhost/b";
    enable_sm(&mut b).await;
    inactive(&mut b).await; // its ping reply: 1 stanza
    for s in ["away", "xa", "dnd"] {
        show(&mut a, to, s).await;
    }
    state(&mut a, to, "composing").await;
    state(&mut a, to, "paused").await;
    a.send(format!(
        "<message to='{to}' type='chat' id='m1'><body>hi</body></message>"
    ))
    .await;
    // 5 held, 2 sent after folding, then the message.
    let mut got = Vec::new();
    while got.len() < 3 {
        let s = b.stanza().await;
        if s.name() == "r" {
            continue;
        }
        got.push(describe(&s));
    }
    assert_eq!(
        got,
        [
            "presence:alice@localhost/a:dnd",
            "state:alice@localhost/a:paused",
            "message:m1"
        ]
    );
    assert_eq!(b.handled, 4);
    // Acknowledging exactly what arrived is right…
    b.send(format!("<a xmlns='{SM}' h='4'/>")).await;
    ping(&mut b, "after").await;
    assert_eq!(b.handled, 5);
    // …and one more than that was never sent.
    b.send(format!("<a xmlns='{SM}' h='6'/>")).await;
    assert_eq!(
        b.stream_error().await.as_deref(),
        Some("undefined-condition")
    );
    srv.stop().await;
}

#[tokio::test]
async fn held_stanzas_come_with_a_resumption_which_starts_active() {
    let srv = server().await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let to = "bob@localhost/b";
    let id = enable_sm(&mut b).await;
    inactive(&mut b).await;
    show(&mut a, to, "away").await;
    show(&mut a, to, "xa").await;
    ping(&mut a, "p1").await;
    let h = b.handled;
    drop(b); // the connection is cut while the presence is held
    let mut b = Client::connect(srv.addr).await;
    assert!(b.auth("bob", "pw", "SCRAM-SHA-256").await);
    b.open().await;
    b.stanza().await; // features
    b.send(format!("<resume xmlns='{SM}' previd='{id}' h='{h}'/>"))
        .await;
    let r = b
        .expect("resumed", |s| s.name() == "resumed" || s.name() == "failed")
        .await;
    assert_eq!(r.name(), "resumed", "{}", text(&r));
    // The folded presence, retransmitted; then the resumed stream is active.
    state(&mut a, to, "composing").await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let s = b.stanza().await;
        if s.name() == "r" {
            continue;
        }
        got.push(describe(&s));
    }
    assert_eq!(
        got,
        [
            "presence:alice@localhost/a:xa",
            "state:alice@localhost/a:composing"
        ]
    );
    srv.stop().await;
}

#[tokio::test]
async fn an_unknown_client_state_is_a_stream_error() {
    let srv = server().await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    b.send(format!("<asleep xmlns='{CSI}'/>")).await;
    assert_eq!(
        b.stream_error().await.as_deref(),
        Some("unsupported-stanza-type")
    );
    srv.stop().await;
}
