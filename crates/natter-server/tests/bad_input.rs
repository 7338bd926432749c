//! Each kind of bad input gets the RFC 6120 error that names it, and a
//! second pair of clients keeps chatting throughout.

mod common;
use common::*;

/// Alice and Bob exchange a message (proves the server is unaffected).
async fn still_chatting(a: &mut Client, b: &mut Client, n: usize) {
    a.send(format!(
        "<message to='bob@localhost' type='chat' id='k{n}'><body>still here {n}</body></message>"
    ))
    .await;
    let m = b.expect("message", |s| s.name() == "message").await;
    assert!(text(&m).contains(&format!("still here {n}")));
}

async fn setup() -> (TestServer, Client, Client) {
    let srv = TestServer::start().await;
    for u in ["alice", "bob", "mallory"] {
        srv.add_user(u, "pw").await;
    }
    let a = Client::online(srv.addr, "alice", "pw", "a").await;
    let b = Client::online(srv.addr, "bob", "pw", "b").await;
    (srv, a, b)
}

/// Sends `bad` on an authenticated session and returns the stream error.
async fn after_login(srv: &TestServer, bad: &[u8]) -> Option<String> {
    let mut m = Client::online(srv.addr, "mallory", "pw", "m").await;
    m.send(bad).await;
    m.stream_error().await
}

/// Sends `bad` right after the stream header (before auth).
async fn before_login(srv: &TestServer, bad: &[u8]) -> Option<String> {
    let mut m = Client::connect(srv.addr).await;
    m.open().await;
    let _features = m.stanza().await;
    m.send(bad).await;
    m.stream_error().await
}

#[tokio::test]
async fn each_bad_input_gets_its_stream_error() {
    let (srv, mut a, mut b) = setup().await;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "malformed XML",
            b"<message><body>x</bdoy></message>".to_vec(),
            "not-well-formed",
        ),
        (
            "unquoted attribute",
            b"<message to=bob@localhost>".to_vec(),
            "not-well-formed",
        ),
        (
            "DOCTYPE",
            b"<!DOCTYPE foo [<!ENTITY x 'y'>]>".to_vec(),
            "restricted-xml",
        ),
        (
            "entity reference",
            b"<message to='bob@localhost'><body>&xxe;</body></message>".to_vec(),
            "restricted-xml",
        ),
        (
            "processing instruction",
            b"<?php echo 1; ?>".to_vec(),
            "restricted-xml",
        ),
        ("comment", b"<!-- hello -->".to_vec(), "restricted-xml"),
        (
            "oversize stanza",
            {
                let mut v = b"<message to='bob@localhost'><body>".to_vec();
                v.extend(std::iter::repeat_n(b'x', 300_000));
                v.extend_from_slice(b"</body></message>");
                v
            },
            "policy-violation",
        ),
        (
            "deep nesting",
            {
                let mut v = b"<message to='bob@localhost'>".to_vec();
                for _ in 0..100 {
                    v.extend_from_slice(b"<a>");
                }
                v
            },
            "policy-violation",
        ),
        (
            "invalid UTF-8",
            b"<message to='bob@localhost'><body>\xff\xfe</body></message>".to_vec(),
            "unsupported-encoding",
        ),
        (
            "undeclared prefix",
            b"<foo:message to='bob@localhost'/>".to_vec(),
            "not-well-formed",
        ),
        (
            "spoofed from",
            b"<message from='bob@localhost/b' to='alice@localhost'><body>I am bob</body></message>"
                .to_vec(),
            "invalid-from",
        ),
        (
            "unknown stanza",
            b"<bogus/>".to_vec(),
            "unsupported-stanza-type",
        ),
    ];
    for (i, (what, bad, want)) in cases.into_iter().enumerate() {
        eprintln!("case: {what}");
        let got = after_login(&srv, &bad).await;
        assert_eq!(got.as_deref(), Some(want), "{what}");
        still_chatting(&mut a, &mut b, i).await;
    }
    // Alice never got bob's spoofed message.
    srv.stop().await;
}

#[tokio::test]
async fn stanza_before_auth_is_not_authorized() {
    let (srv, mut a, mut b) = setup().await;
    let got = before_login(
        &srv,
        b"<message to='bob@localhost'><body>spam</body></message>",
    )
    .await;
    assert_eq!(got.as_deref(), Some("not-authorized"));
    let got = before_login(
        &srv,
        b"<iq type='set' id='x'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
    )
    .await;
    assert_eq!(got.as_deref(), Some("not-authorized"));
    still_chatting(&mut a, &mut b, 1).await;
    srv.stop().await;
}

#[tokio::test]
async fn bad_stream_headers() {
    let (srv, mut a, mut b) = setup().await;
    let cases: [(&str, &str); 3] = [
        ("<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>", "invalid-namespace"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>", "host-unknown"),
        ("<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='localhost' version='1.0'>", "invalid-namespace"),
    ];
    for (header, want) in cases {
        let mut m = Client::connect(srv.addr).await;
        m.send(header).await;
        assert_eq!(m.stream_error().await.as_deref(), Some(want), "{header}");
    }
    still_chatting(&mut a, &mut b, 1).await;
    srv.stop().await;
}

#[tokio::test]
async fn wrong_password_is_not_authorized() {
    let (srv, mut a, mut b) = setup().await;
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let mut m = Client::connect(srv.addr).await;
        assert!(!m.auth("mallory", "wrong", mech).await, "{mech}");
        let mut m = Client::connect(srv.addr).await;
        assert!(!m.auth("nobody", "pw", mech).await, "{mech} unknown user");
    }
    // The right password still works, with each mechanism.
    for mech in ["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"] {
        let mut m = Client::connect(srv.addr).await;
        assert!(m.auth("mallory", "pw", mech).await, "{mech}");
    }
    still_chatting(&mut a, &mut b, 1).await;
    srv.stop().await;
}

#[tokio::test]
async fn message_to_unknown_user_is_service_unavailable() {
    let (srv, mut a, mut b) = setup().await;
    a.send("<message to='nobody@localhost' type='chat' id='u1'><body>hello?</body></message>")
        .await;
    let e = a
        .expect("error", |s| {
            s.name() == "message" && s.id().as_deref() == Some("u1")
        })
        .await;
    assert_eq!(e.stanza_type().as_deref(), Some("error"));
    assert!(text(&e).contains("service-unavailable"), "{}", text(&e));
    assert_eq!(e.from().as_deref(), Some("nobody@localhost"));
    a.send(
        "<message to='someone@elsewhere.example' type='chat' id='u2'><body>hello?</body></message>",
    )
    .await;
    let e = a.expect("error", |s| s.id().as_deref() == Some("u2")).await;
    assert!(text(&e).contains("remote-server-not-found"), "{}", text(&e));
    still_chatting(&mut a, &mut b, 1).await;
    srv.stop().await;
}

#[tokio::test]
async fn require_tls_refuses_auth_on_plain_tcp() {
    let srv = TestServer::start_with(|c| c.c2s.require_tls = true).await;
    srv.add_user("alice", "pw").await;
    let mut m = Client::connect(srv.addr).await;
    m.open().await;
    let f = m.stanza().await;
    assert!(f.has_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls"));
    assert!(
        !f.has_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"),
        "{}",
        text(&f)
    );
    use base64::Engine;
    let ir = base64::engine::general_purpose::STANDARD
        .encode(natter_sasl::plain_initial_response(None, "alice", "pw"));
    m.send(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{ir}</auth>"
    ))
    .await;
    let r = m.stanza().await;
    assert_eq!(r.name(), "failure");
    assert!(r.has_child("encryption-required", "urn:ietf:params:xml:ns:xmpp-sasl"));
    srv.stop().await;
}

#[tokio::test]
async fn too_many_failed_authentications_end_the_stream() {
    let (srv, mut a, mut b) = setup().await;
    let mut m = Client::connect(srv.addr).await;
    m.open().await;
    // Features first; then failed attempts, each answered with <failure/>.
    m.expect("features", |s| s.name() == "features").await;
    let attempts = natter_server::c2s::negotiate::MAX_AUTH_ATTEMPTS;
    for i in 1..=attempts {
        m.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='NO-SUCH-MECH'/>")
            .await;
        let f = m.expect("failure", |s| s.name() == "failure").await;
        assert_eq!(
            f.children().first().map(|c| c.name.as_str()),
            Some("invalid-mechanism"),
            "attempt {i}"
        );
    }
    // The last one's failure is followed by policy-violation (RFC 6120 §6.4.5).
    assert_eq!(m.stream_error().await.as_deref(), Some("policy-violation"));
    // A new connection may try again, and others are not disturbed.
    let mut m = Client::connect(srv.addr).await;
    assert!(m.auth("mallory", "pw", "SCRAM-SHA-1").await);
    still_chatting(&mut a, &mut b, 1).await;
    srv.stop().await;
}
