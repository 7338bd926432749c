//! What an operator sees, over real HTTP: XEP-0156 host-meta, `/metrics`,
//! `/health`, the admin API and its token, HTTPS, and connection limits.

mod common;

use common::http::{exchange, request};
use common::ws::WsClient;
use common::{Client, TestServer};
use std::time::Duration;

const TOKEN: &str = "test-admin-token-0123456789";

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

#[tokio::test]
async fn host_meta_announces_the_websocket_url() {
    let srv = TestServer::start().await;
    let r = request(srv.http_addr, "GET", "/.well-known/host-meta", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/xrd+xml"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(
        r.body.contains(
            "<Link rel='urn:xmpp:alt-connections:websocket' href='ws://127.0.0.1/xmpp-websocket'/>"
        ),
        "{}",
        r.body
    );
    let r = request(srv.http_addr, "GET", "/.well-known/host-meta.json", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["links"][0],
        serde_json::json!({"rel": "urn:xmpp:alt-connections:websocket", "href": "ws://127.0.0.1/xmpp-websocket"})
    );
    let r = request(srv.http_addr, "POST", "/.well-known/host-meta", &[], "x").await;
    assert_eq!(r.status, 405);
    let r = request(srv.http_addr, "GET", "/nothing", &[], "").await;
    assert_eq!(r.status, 404);
    srv.stop().await;

    // A configured URL wins over the Host header.
    let srv = TestServer::start_with(|c| {
        c.http.websocket_url = Some("wss://chat.example.com/xmpp-websocket".into())
    })
    .await;
    let r = request(srv.http_addr, "GET", "/.well-known/host-meta.json", &[], "").await;
    assert!(
        r.body.contains("wss://chat.example.com/xmpp-websocket"),
        "{}",
        r.body
    );
    srv.stop().await;
}

/// The value of an unlabelled or labelled sample in Prometheus text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_and_health() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw-a").await;
    srv.add_user("bob", "pw-b").await;
    let h = request(srv.admin_addr, "GET", "/health", &[], "").await;
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));

    let before = request(srv.admin_addr, "GET", "/metrics", &[], "")
        .await
        .body;
    let mut a = WsClient::login(srv.http_addr, "alice", "pw-a", "web").await;
    a.send("<presence/>").await;
    let mut b = Client::online(srv.addr, "bob", "pw-b", "tcp").await;
    let mut bad = Client::connect(srv.addr).await;
    assert!(!bad.auth("bob", "wrong", "PLAIN").await);
    a.send("<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>count me</body></message>").await;
    b.expect("message", |s| s.name() == "message").await;

    let r = request(srv.admin_addr, "GET", "/metrics", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = &r.body;
    // Counters are process-wide (other tests run in this process): compare.
    for (name, at_least) in [
        ("natter_logins_total", 2.0),
        ("natter_auth_failures_total", 1.0),
        ("natter_stanzas_in_total{kind=\"message\"}", 1.0),
        ("natter_stanzas_in_total{kind=\"presence\"}", 2.0),
        ("natter_stanzas_out_total{kind=\"message\"}", 1.0),
        ("natter_delivery_latency_seconds_count", 1.0),
        (
            "natter_store_operation_seconds_count{op=\"credentials\"}",
            3.0,
        ),
        ("natter_store_operation_seconds_count{op=\"roster\"}", 2.0),
        (
            "natter_store_operation_seconds_count{op=\"offline_fetch\"}",
            2.0,
        ),
    ] {
        let d = sample(m, name) - sample(&before, name);
        assert!(
            d >= at_least,
            "{name} grew by {d}, expected {at_least}:\n{m}"
        );
    }
    assert!(sample(m, "natter_sessions{transport=\"websocket\"}") >= 1.0);
    assert!(sample(m, "natter_sessions{transport=\"tcp\"}") >= 1.0);
    assert!(sample(m, "natter_router_sessions") >= 2.0);
    assert_eq!(sample(m, "natter_offline_queue_depth"), 0.0);
    assert!(sample(m, "process_resident_memory_bytes") > 1e6);
    assert!(m.contains("# TYPE natter_queue_inserts_withdrawn_total counter"));
    assert!(m.contains("# TYPE natter_delivery_latency_seconds histogram"));
    assert!(m.contains("natter_delivery_latency_seconds_bucket{le=\"+Inf\"}"));

    // Once stopped, the admin listener is gone (health checks fail).
    let admin = srv.admin_addr;
    srv.stop().await;
    assert!(tokio::net::TcpStream::connect(admin).await.is_err());
}

#[tokio::test]
async fn admin_api_refuses_without_the_right_token() {
    // No token configured: refused, whatever is sent.
    let srv = TestServer::start().await;
    for auth in [None, Some(bearer("anything-at-all-long-enough"))] {
        let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        let r = request(srv.admin_addr, "GET", "/api/counts", &h, "").await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("admin API is disabled"), "{}", r.body);
        assert!(r.body.contains("admin.token"), "{}", r.body);
    }
    srv.stop().await;

    let srv = TestServer::start_with(|c| c.admin.token = Some(TOKEN.into())).await;
    let r = request(srv.admin_addr, "GET", "/api/counts", &[], "").await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"natterd admin\"")
    );
    assert!(
        r.body.contains("missing `Authorization: Bearer TOKEN`"),
        "{}",
        r.body
    );
    for wrong in [
        bearer("test-admin-token-0123456788"),
        bearer(""),
        format!("Basic {TOKEN}"),
    ] {
        let r = request(
            srv.admin_addr,
            "GET",
            "/api/sessions",
            &[("Authorization", &wrong)],
            "",
        )
        .await;
        assert_eq!(r.status, 401, "{wrong}");
    }
    let r = request(
        srv.admin_addr,
        "POST",
        "/api/kick",
        &[("Authorization", &bearer("nope-nope-nope-nope"))],
        "{\"jid\":\"alice@localhost\"}",
    )
    .await;
    assert_eq!(r.status, 401);
    // /metrics and /health need no token; the public listener has no API.
    assert_eq!(
        request(srv.admin_addr, "GET", "/metrics", &[], "")
            .await
            .status,
        200
    );
    let auth = bearer(TOKEN);
    let r = request(
        srv.http_addr,
        "GET",
        "/api/counts",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 404);
    srv.stop().await;
}

#[tokio::test]
async fn admin_api_lists_messages_and_kicks_sessions() {
    // The token from data_dir/admin.token this time.
    let srv = TestServer::start_with(|c| {
        std::fs::write(c.data_dir.join("admin.token"), format!("{TOKEN}\n")).unwrap();
    })
    .await;
    srv.add_user("alice", "pw-a").await;
    srv.add_user("bob", "pw-b").await;
    let mut a = WsClient::login(srv.http_addr, "alice", "pw-a", "web").await;
    a.send("<presence/>").await;
    a.expect("own presence", |s| s.name() == "presence").await;
    let mut b = Client::online(srv.addr, "bob", "pw-b", "tcp").await;
    let auth = bearer(TOKEN);
    let h = [("Authorization", auth.as_str())];

    let r = request(srv.admin_addr, "GET", "/api/counts", &h, "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["sessions"], 2);
    assert_eq!(v["accounts"], 2);
    assert_eq!(v["domain"], "localhost");

    let r = request(srv.admin_addr, "GET", "/api/sessions", &h, "").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let mut jids: Vec<String> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["jid"].as_str().unwrap().to_owned())
        .collect();
    jids.sort();
    assert_eq!(jids, ["alice@localhost/web", "bob@localhost/tcp"]);

    // A server message to one user, then to everyone.
    let r = request(
        srv.admin_addr,
        "POST",
        "/api/message",
        &h,
        "{\"to\":\"bob@localhost\",\"body\":\"maintenance at 5 <pm>\"}",
    )
    .await;
    assert_eq!(r.body.trim(), "{\"delivered\":1}");
    let m = b.expect("server message", |s| s.name() == "message").await;
    assert_eq!(m.from().as_deref(), Some("localhost"));
    assert_eq!(m.stanza_type().as_deref(), Some("headline"));
    assert!(common::text(&m).contains("maintenance at 5 &lt;pm&gt;"));
    let r = request(
        srv.admin_addr,
        "POST",
        "/api/message",
        &h,
        "{\"body\":\"hello all\"}",
    )
    .await;
    assert_eq!(r.body.trim(), "{\"delivered\":2}");
    a.expect("broadcast", |s| {
        s.name() == "message" && s.from().as_deref() == Some("localhost")
    })
    .await;

    // Bad requests are named.
    for (body, words) in [
        ("not json", "not JSON"),
        ("{}", "`jid` (a JID string) is required"),
        (
            "{\"jid\":\"mallory@elsewhere\"}",
            "not a user of this server",
        ),
        ("{\"jid\":\"nobody@localhost\"}", "has no session"),
    ] {
        let r = request(srv.admin_addr, "POST", "/api/kick", &h, body).await;
        assert!(r.status == 400 || r.status == 404, "{body}: {}", r.status);
        assert!(r.body.contains(words), "{body}: {}", r.body);
    }

    // Kick: the WebSocket session ends with a stream error; bob stays.
    let r = request(
        srv.admin_addr,
        "POST",
        "/api/kick",
        &h,
        "{\"jid\":\"alice@localhost/web\"}",
    )
    .await;
    assert_eq!((r.status, r.body.trim()), (200, "{\"kicked\":1}"));
    let (err, close_el, _) = a.until_closed().await;
    assert_eq!(err.unwrap().0, "policy-violation");
    assert!(close_el);
    let r = request(srv.admin_addr, "GET", "/api/counts", &h, "").await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["sessions"], 1);
    b.iq(
        "p",
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    srv.stop().await;
}

#[tokio::test]
async fn connection_limits_are_enforced_with_clear_errors() {
    let srv = TestServer::start_with(|c| c.limits.max_connections = 2).await;
    srv.add_user("alice", "pw-a").await;
    let _a = Client::login(srv.addr, "alice", "pw-a", "one").await;
    let _b = WsClient::connect(srv.http_addr).await;
    // The third connection, on any listener, is refused.
    let mut c = Client::connect(srv.addr).await;
    let err = c.stream_error().await;
    assert_eq!(err.as_deref(), Some("resource-constraint"));
    let r = request(srv.http_addr, "GET", "/.well-known/host-meta", &[], "").await;
    assert_eq!(r.status, 503);
    assert!(
        r.body.contains("connection limit (2 open connections)"),
        "{}",
        r.body
    );
    // The admin listener is not limited.
    assert_eq!(
        request(srv.admin_addr, "GET", "/health", &[], "")
            .await
            .status,
        200
    );
    drop(_b);
    // Its place is given back once the connection is gone.
    let mut ok = false;
    for _ in 0..50 {
        let r = request(srv.http_addr, "GET", "/.well-known/host-meta", &[], "").await;
        if r.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the closed WebSocket's place was not given back");
    srv.stop().await;

    let srv = TestServer::start_with(|c| {
        c.limits.connections_per_ip_per_minute = 2;
        c.limits.limit_loopback = true;
    })
    .await;
    let _a = Client::connect(srv.addr).await;
    let _b = Client::connect(srv.addr).await;
    let mut c = Client::connect(srv.addr).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(common::TIMEOUT, async {
        use tokio::io::AsyncReadExt;
        let common::ClientIo::Tcp(t) = &mut c.tcp else {
            unreachable!()
        };
        t.read_to_end(&mut raw).await
    })
    .await;
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{raw}"
    );
    assert!(raw.contains("at most 2 per minute"), "{raw}");
    let r = request(srv.http_addr, "GET", "/.well-known/host-meta", &[], "").await;
    assert_eq!(r.status, 429);
    srv.stop().await;
}

#[tokio::test]
async fn https_serves_host_meta_and_secure_websockets() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let srv = TestServer::start_with(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
        c.c2s.require_tls = true;
    })
    .await;
    let https = srv
        .https_addr
        .expect("an https listener with a configured certificate");
    let connector = common::tls_connector_trusting(ck.cert.der().clone());
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let tls = connector.connect(name.clone(), tcp).await.unwrap();
    let r = exchange(
        tls,
        "chat.localhost",
        "GET",
        "/.well-known/host-meta.json",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.body.contains("wss://chat.localhost/xmpp-websocket"),
        "{}",
        r.body
    );

    // A WebSocket over TLS may authenticate although require_tls is on.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = tokio::net::TcpStream::connect(https).await.unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(common::ws::upgrade_request("Sec-WebSocket-Protocol: xmpp\r\n").as_bytes())
        .await
        .unwrap();
    tls.write_all(&common::ws::frame(
        0x81,
        b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
    ))
    .await
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("</stream:features>") {
        let n = tokio::time::timeout(common::TIMEOUT, tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 101"), "{got}");
    assert!(
        got.contains("<mechanism>SCRAM-SHA-256</mechanism>"),
        "{got}"
    );
    assert!(
        !got.contains("-PLUS"),
        "no channel binding over WebSocket: {got}"
    );
    srv.stop().await;
}
