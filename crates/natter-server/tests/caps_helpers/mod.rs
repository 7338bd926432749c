//! Helpers for the entity capabilities (XEP-0115) tests, `caps.rs` and
//! `caps_sharing.rs` (apart from `common/`, which natterd's tests share):
//! a client's capabilities with their verification string, announcing
//! them, the server's disco#info queries, and the features the admin API
//! shows.
#![allow(dead_code)]

use crate::common::http::request;
use crate::common::{Client, TestServer, TIMEOUT};
use base64::Engine;
use natter_xml::Stanza;
use sha1::{Digest, Sha1};
use std::time::Duration;

pub const ADMIN_TOKEN: &str = "caps-test-admin-token-0123456789";
pub const NODE: &str = "https://client.example/app";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// A server whose admin API the tests read.
pub async fn server() -> TestServer {
    let srv = TestServer::start_with(|c| c.admin.token = Some(ADMIN_TOKEN.into())).await;
    for user in ["alice", "bob"] {
        srv.add_user(user, "pw").await;
    }
    srv
}

/// A client's capabilities: the features, their SHA-1 verification
/// string (computed here by hand, XEP-0115 §5.1) and the disco#info
/// payload that answers for them.
pub struct Caps {
    pub ver: String,
    pub inner: String,
}

pub fn caps(features: &[&str]) -> Caps {
    let mut sorted = features.to_vec();
    sorted.sort_unstable();
    let mut s = String::from("client/phone//Test<");
    let mut inner = String::from("<identity category='client' type='phone' name='Test'/>");
    for f in sorted {
        s.push_str(f);
        s.push('<');
    }
    for f in features {
        inner.push_str(&format!("<feature var='{f}'/>"));
    }
    let ver = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(s.as_bytes()));
    Caps { ver, inner }
}

/// Sends available presence with `<c hash node ver/>` (no hash when None).
pub async fn announce(c: &mut Client, hash: Option<&str>, ver: &str) {
    let hash = hash.map(|h| format!(" hash='{h}'")).unwrap_or_default();
    c.send(format!(
        "<presence><c xmlns='http://jabber.org/protocol/caps'{hash} node='{NODE}' ver='{ver}'/></presence>"
    ))
    .await;
}

/// Whether `s` is a disco#info query from the server.
pub fn is_query(s: &Stanza) -> bool {
    s.name() == "iq"
        && s.stanza_type().as_deref() == Some("get")
        && s.has_child("query", DISCO_INFO)
}

/// A ping round trip; returns the server's disco#info queries that came
/// before its answer (the server handles a client's stanzas in order, so
/// whatever an earlier stanza made it send is there).
pub async fn sync(c: &mut Client) -> Vec<Stanza> {
    let mut queries = Vec::new();
    c.send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    loop {
        let s = c.stanza().await;
        if s.name() == "iq" && s.id().as_deref() == Some("sync") {
            assert_eq!(s.stanza_type().as_deref(), Some("result"));
            return queries;
        }
        if is_query(&s) {
            queries.push(s);
        }
    }
}

/// The one disco#info query for `ver` the client got: checks its
/// addressing and node (XEP-0115 §6.2) and returns its id.
pub async fn one_query(c: &mut Client, ver: &str) -> String {
    let queries = sync(c).await;
    assert_eq!(queries.len(), 1, "exactly one query for {ver}");
    let q = &queries[0];
    assert_eq!(q.from().as_deref(), Some("localhost"));
    assert_eq!(q.to().as_deref(), Some(c.jid.as_str()));
    let node = q.child("query", DISCO_INFO).unwrap().attr(q, "node");
    assert_eq!(node.as_deref(), Some(format!("{NODE}#{ver}").as_str()));
    q.id().unwrap().into_owned()
}

/// No disco#info query came.
pub async fn no_query(c: &mut Client) {
    let queries = sync(c).await;
    assert!(
        queries.is_empty(),
        "unexpected query: {}",
        String::from_utf8_lossy(queries[0].bytes())
    );
}

/// Answers query `id` with a disco#info result holding `inner`, and waits
/// until the server handled it.
pub async fn reply(c: &mut Client, id: &str, ver: &str, inner: &str) {
    c.send(format!(
        "<iq type='result' to='localhost' id='{id}'><query xmlns='{DISCO_INFO}' node='{NODE}#{ver}'>{inner}</query></iq>"
    ))
    .await;
    no_query(c).await;
}

/// The PEP nodes the session `jid` wants notifications of, as the admin
/// API shows its router entry: None while its capabilities are unknown.
pub async fn notify_of(srv: &TestServer, jid: &str) -> Option<Vec<String>> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = request(
        srv.admin_addr,
        "GET",
        "/api/sessions",
        &[("Authorization", &auth)],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let session = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["jid"] == jid)
        .unwrap_or_else(|| panic!("{jid} is not listed: {}", r.body));
    let caps = &session["caps"];
    if caps.is_null() {
        return None;
    }
    let mut nodes: Vec<String> = caps["notify"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    nodes.sort_unstable();
    Some(nodes)
}

/// Waits until the admin API shows `want` for `jid` (another session's
/// doing, handled by `jid`'s session in its own time).
pub async fn wait_for_notify(srv: &TestServer, jid: &str, want: &[&str]) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let got = notify_of(srv, jid).await;
        if got.as_deref().is_some_and(|g| g == want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{jid} never got {want:?}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
