//! XMPP over WebSocket (RFC 7395) on the real server: the same session code
//! as TCP with another framing, and bad frames closed clearly without
//! disturbing anyone else.

mod common;

use common::http::request;
use common::ws::{frame, upgrade_request, Frame, WsClient};
use common::{Client, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn websocket_client_chats_with_a_tcp_client() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw-a").await;
    srv.add_user("bob", "pw-b").await;
    let mut a = WsClient::login(srv.http_addr, "alice", "pw-a", "web").await;
    assert_eq!(a.jid, "alice@localhost/web");
    a.send("<presence/>").await;
    a.expect("own presence", |s| {
        s.name() == "presence" && s.from().as_deref() == Some("alice@localhost/web")
    })
    .await;
    let mut b = Client::online(srv.addr, "bob", "pw-b", "tcp").await;

    // WebSocket -> TCP, with a receipt request.
    a.send("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='m1'><body>hi from the browser</body><request xmlns='urn:xmpp:receipts'/></message>").await;
    let got = b.expect("message", |s| s.name() == "message").await;
    assert_eq!(got.from().as_deref(), Some("alice@localhost/web"));
    assert!(common::text(&got).contains("hi from the browser"));

    // TCP -> WebSocket: the receipt; it arrives as one message, in jabber:client.
    b.send("<message to='alice@localhost/web' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>").await;
    let r = a.expect("receipt", |s| s.name() == "message").await;
    assert_eq!(r.ns(), "jabber:client");
    assert_eq!(r.from().as_deref(), Some("bob@localhost/tcp"));
    assert!(r.has_child("received", "urn:xmpp:receipts"));

    // An IQ round trip and stream management work the same.
    a.send("<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    let pong = a
        .expect("ping result", |s| s.id().as_deref() == Some("p1"))
        .await;
    assert_eq!(pong.stanza_type().as_deref(), Some("result"));
    a.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        .await;
    let en = a.expect("enabled", |s| s.name() == "enabled").await;
    assert_eq!(en.attr("resume").as_deref(), Some("true"));
    a.send("<r xmlns='urn:xmpp:sm:3'/>").await;
    let ack = a.expect("ack", |s| s.name() == "a").await;
    assert_eq!(ack.attr("h").as_deref(), Some("0"));

    // <close/> ends the stream: the server answers <close/> and a close frame.
    a.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
        .await;
    let (err, close_el, f) = a.until_closed().await;
    assert_eq!(err, None);
    assert!(close_el);
    assert_eq!(f, Frame::Close(1000, String::new()));
    srv.stop().await;
}

#[tokio::test]
async fn ping_frames_get_pongs() {
    let srv = TestServer::start().await;
    let mut c = WsClient::connect(srv.http_addr).await;
    c.send_raw(&frame(0x89, b"are you there")).await;
    assert_eq!(c.frame().await, Frame::Pong(b"are you there".to_vec()));
    c.open().await;
    srv.stop().await;
}

#[tokio::test]
async fn handshakes_without_the_xmpp_subprotocol_or_upgrade_are_refused() {
    let srv = TestServer::start().await;
    let mut tcp = tokio::net::TcpStream::connect(srv.http_addr).await.unwrap();
    tcp.write_all(upgrade_request("Connection: close\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).await.unwrap();
    let r = common::http::parse(&raw);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("subprotocol `xmpp` is required"),
        "{}",
        r.body
    );

    let r = request(srv.http_addr, "GET", "/xmpp-websocket", &[], "").await;
    assert_eq!(r.status, 426);
    assert!(r.body.contains("RFC 7395"), "{}", r.body);

    let r = request(
        srv.http_addr,
        "GET",
        "/xmpp-websocket",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "8"),
            ("Sec-WebSocket-Protocol", "xmpp"),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    srv.stop().await;
}

/// A bystander on each transport, to check bad frames disturb nobody.
async fn bystanders(srv: &TestServer) -> (WsClient, Client) {
    srv.add_user("carol", "pw-c").await;
    srv.add_user("dave", "pw-d").await;
    let c = WsClient::login(srv.http_addr, "carol", "pw-c", "web").await;
    let d = Client::online(srv.addr, "dave", "pw-d", "tcp").await;
    (c, d)
}

async fn still_chatting(c: &mut WsClient, d: &mut Client) {
    c.send("<message xmlns='jabber:client' to='dave@localhost/tcp' type='chat'><body>still here</body></message>").await;
    let m = d.expect("message", |s| s.name() == "message").await;
    assert!(common::text(&m).contains("still here"));
    d.send("<message to='carol@localhost/web' type='chat'><body>me too</body></message>")
        .await;
    let m = c.expect("message", |s| s.name() == "message").await;
    assert!(String::from_utf8_lossy(m.bytes()).contains("me too"));
}

#[tokio::test]
async fn an_oversize_message_gets_policy_violation_and_close_1009() {
    let srv = TestServer::start_with(|c| c.c2s.max_stanza_bytes = 10_000).await;
    let (mut carol, mut dave) = bystanders(&srv).await;
    let mut bad = WsClient::connect(srv.http_addr).await;
    bad.open().await;
    let big = format!("<message><body>{}</body></message>", "x".repeat(20_000));
    bad.send(&big).await;
    let (err, close_el, f) = bad.until_closed().await;
    let (cond, text) = err.expect("a stream error");
    assert_eq!(cond, "policy-violation");
    assert!(text.contains("exceeds the limit of 10000 bytes"), "{text}");
    assert!(close_el);
    let Frame::Close(code, reason) = f else {
        panic!("no close frame: {f:?}")
    };
    assert_eq!(code, 1009);
    assert!(reason.contains("10000"), "{reason}");
    still_chatting(&mut carol, &mut dave).await;
    let m = request(srv.admin_addr, "GET", "/metrics", &[], "")
        .await
        .body;
    assert!(
        !m.contains("natter_websocket_bad_frames_total 0\n"),
        "the bad frame was not counted:\n{m}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn malformed_frames_are_closed_with_the_code_that_names_them() {
    let srv = TestServer::start().await;
    let (mut carol, mut dave) = bystanders(&srv).await;
    // (frame bytes, close code, words the reason must hold)
    let unmasked = {
        let mut f = vec![0x81, 5];
        f.extend_from_slice(b"<a/>x");
        f
    };
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (unmasked, 1002, "masked"),
        (frame(0x82, b"<presence/>"), 1003, "binary"),
        (frame(0x81, &[0xC3, 0x28]), 1007, "UTF-8"),
        (frame(0xC1, b"<presence/>"), 1002, "reserved bits"),
        (frame(0x80, b"<presence/>"), 1002, "continuation"),
    ];
    for (bytes, code, words) in cases {
        let mut bad = WsClient::connect(srv.http_addr).await;
        bad.open().await;
        bad.send_raw(&bytes).await;
        let (err, close_el, f) = bad.until_closed().await;
        let (_, text) = err.expect("a stream error");
        assert!(text.contains(words), "{text}");
        assert!(close_el);
        match f {
            Frame::Close(c, reason) => {
                assert_eq!(c, code, "{reason}");
                assert!(reason.contains(words), "{reason}");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
    // Valid frames, invalid framing: two elements in one message; a TCP
    // stream header.
    for (msg, cond, words) in [
        ("<presence/><presence/>", "not-well-formed", "exactly one"),
        (
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>",
            "not-well-formed",
            "exactly one",
        ),
    ] {
        let mut bad = WsClient::connect(srv.http_addr).await;
        bad.send(msg).await;
        let (err, close_el, f) = bad.until_closed().await;
        let (c, text) = err.expect("a stream error");
        assert_eq!(c, cond);
        assert!(text.contains(words), "{text}");
        assert!(close_el);
        assert!(matches!(f, Frame::Close(1000, _)), "{f:?}");
    }
    still_chatting(&mut carol, &mut dave).await;
    srv.stop().await;
}

#[tokio::test]
async fn plain_websocket_needs_tls_unless_behind_a_tls_proxy() {
    // require_tls (the default): no SASL over plain ws://, and no STARTTLS.
    let srv = TestServer::start_with(|c| c.c2s.require_tls = true).await;
    let mut c = WsClient::connect(srv.http_addr).await;
    let f = c.open().await;
    assert!(!f.has_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"));
    assert!(!f.has_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls"));
    srv.stop().await;

    let srv = TestServer::start_with(|c| {
        c.c2s.require_tls = true;
        c.http.behind_tls_proxy = true;
    })
    .await;
    srv.add_user("erin", "pw-e").await;
    let c = WsClient::login(srv.http_addr, "erin", "pw-e", "web").await;
    assert_eq!(c.jid, "erin@localhost/web");
    srv.stop().await;
}
