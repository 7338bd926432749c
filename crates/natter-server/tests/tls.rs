//! TLS: STARTTLS and direct TLS (XEP-0368), SCRAM-PLUS channel binding.

mod common;
use common::*;

#[tokio::test]
async fn starttls_then_scram_plus_with_both_bindings() {
    let srv = TestServer::start_with(|c| c.c2s.require_tls = true).await;
    srv.add_user("alice", "pw").await;
    for (mech, cb) in [
        ("SCRAM-SHA-256-PLUS", "tls-exporter"),
        ("SCRAM-SHA-1-PLUS", "tls-server-end-point"),
        ("SCRAM-SHA-256", ""),
        ("PLAIN", ""),
    ] {
        let mut c = Client::connect(srv.addr).await;
        c.open().await;
        let f = c.stanza().await;
        assert!(f.has_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls"));
        c.starttls(&srv).await;
        c.open().await;
        let f = c.stanza().await;
        let t = text(&f);
        assert!(
            t.contains("SCRAM-SHA-256-PLUS")
                && t.contains("tls-exporter")
                && t.contains("tls-server-end-point"),
            "{t}"
        );
        assert!(!f.has_child("starttls", "urn:ietf:params:xml:ns:xmpp-tls"));
        let binding = match cb {
            "tls-exporter" => Some(("tls-exporter", c.exporter())),
            "tls-server-end-point" => {
                Some(("tls-server-end-point", Client::server_end_point(&srv)))
            }
            _ => None,
        };
        assert!(c.auth_with("alice", "pw", mech, binding).await, "{mech}");
    }
    // Wrong binding data fails.
    let mut c = Client::connect(srv.addr).await;
    c.open().await;
    c.stanza().await;
    c.starttls(&srv).await;
    c.open().await;
    c.stanza().await;
    assert!(
        !c.auth_with(
            "alice",
            "pw",
            "SCRAM-SHA-256-PLUS",
            Some(("tls-exporter", vec![0u8; 32]))
        )
        .await
    );
    srv.stop().await;
}

#[tokio::test]
async fn direct_tls_login_and_chat() {
    let srv = TestServer::start_with(|c| c.c2s.require_tls = true).await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    let mut a = Client::connect_tls(&srv).await;
    assert!(a.auth("alice", "pw", "SCRAM-SHA-256").await);
    a.open().await;
    a.stanza().await;
    a.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tls</resource></bind></iq><presence/>").await;
    a.expect("bind", |s| s.id().as_deref() == Some("b")).await;
    a.expect("own presence", |s| s.name() == "presence").await;
    let mut b = Client::connect_tls(&srv).await;
    assert!(b.auth("bob", "pw", "PLAIN").await);
    b.open().await;
    b.stanza().await;
    b.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tls</resource></bind></iq><presence/>").await;
    b.expect("bind", |s| s.id().as_deref() == Some("b")).await;
    b.expect("presence", |s| s.name() == "presence").await;
    a.send("<message to='bob@localhost' type='chat'><body>over tls</body></message>")
        .await;
    let m = b.expect("message", |s| s.name() == "message").await;
    assert!(text(&m).contains("over tls"));
    srv.stop().await;
}

#[tokio::test]
async fn certificate_is_generated_once_and_kept() {
    let srv = TestServer::start().await;
    let cert = std::fs::read(srv.dir.path().join("tls/cert.pem")).unwrap();
    let dir = srv.dir.path().to_owned();
    let stopped = srv.stop_keep_dir().await;
    let srv2 = TestServer::start_with(|c| c.data_dir = dir.clone()).await;
    assert_eq!(std::fs::read(dir.join("tls/cert.pem")).unwrap(), cert);
    srv2.stop().await;
    drop(stopped);
}
