//! Client entity capabilities (XEP-0115) across sessions: sessions that
//! announce the same unknown string at once share one query, a failed one
//! lets the next session be asked, and a session's unanswered queries are
//! bounded.

mod caps_helpers;
mod common;
use caps_helpers::*;
use common::Client;

const AVATAR: &str = "urn:xmpp:avatar:metadata+notify";
const AVATAR_NODE: &str = "urn:xmpp:avatar:metadata";

#[tokio::test]
async fn sessions_announcing_the_same_string_share_one_query() {
    let srv = server().await;
    let c = caps(&[AVATAR, "urn:xmpp:ping"]);
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce(&mut a, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut a, &c.ver).await;
    announce(&mut b, Some("sha-1"), &c.ver).await;
    no_query(&mut b).await;
    assert_eq!(notify_of(&srv, &b.jid).await, None);
    reply(&mut a, &id, &c.ver, &c.inner).await;
    wait_for_notify(&srv, &a.jid, &[AVATAR_NODE]).await;
    // b learns it from a's answer, never asked.
    wait_for_notify(&srv, &b.jid, &[AVATAR_NODE]).await;
    no_query(&mut b).await;
    srv.stop().await;
}

#[tokio::test]
async fn when_the_shared_query_fails_a_waiting_session_is_asked() {
    let srv = server().await;
    let c = caps(&[AVATAR]);
    let lie = caps(&[AVATAR, "urn:xmpp:ping"]);
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce(&mut a, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut a, &c.ver).await;
    announce(&mut b, Some("sha-1"), &c.ver).await;
    no_query(&mut b).await;
    // a's answer does not verify: b is asked (XEP-0115 §5.4 3.9).
    reply(&mut a, &id, &c.ver, &lie.inner).await;
    let q = b.expect("b's query", is_query).await;
    let id = q.id().unwrap().into_owned();
    reply(&mut b, &id, &c.ver, &c.inner).await;
    assert_eq!(notify_of(&srv, &b.jid).await.unwrap(), [AVATAR_NODE]);
    // a goes by its own answer (for its session only).
    assert_eq!(notify_of(&srv, &a.jid).await.unwrap(), [AVATAR_NODE]);

    // The same when the asked session leaves without answering.
    let d = caps(&["urn:xmpp:ping"]);
    let mut a2 = Client::login(srv.addr, "alice", "pw", "a2").await;
    let mut b2 = Client::login(srv.addr, "bob", "pw", "b2").await;
    announce(&mut a2, Some("sha-1"), &d.ver).await;
    one_query(&mut a2, &d.ver).await;
    announce(&mut b2, Some("sha-1"), &d.ver).await;
    no_query(&mut b2).await;
    drop(a2);
    let q = b2.expect("b2's query", is_query).await;
    let id = q.id().unwrap().into_owned();
    reply(&mut b2, &id, &d.ver, &d.inner).await;
    assert_eq!(
        notify_of(&srv, &b2.jid).await.unwrap(),
        Vec::<String>::new()
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_session_has_at_most_four_queries_unanswered() {
    let srv = server().await;
    let all: Vec<Caps> = (0..5)
        .map(|i| caps(&[AVATAR, &format!("urn:example:feature:{i}")]))
        .collect();
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    let mut ids = Vec::new();
    for c in &all {
        announce(&mut a, Some("sha-1"), &c.ver).await;
        ids.push(one_query(&mut a, &c.ver).await);
    }
    // The first query was given up when the fifth was sent: its answer is
    // ignored (not cached); the second's is still taken.
    reply(&mut a, &ids[0], &all[0].ver, &all[0].inner).await;
    reply(&mut a, &ids[1], &all[1].ver, &all[1].inner).await;
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce(&mut b, Some("sha-1"), &all[0].ver).await;
    one_query(&mut b, &all[0].ver).await;
    let mut b2 = Client::login(srv.addr, "bob", "pw", "b2").await;
    announce(&mut b2, Some("sha-1"), &all[1].ver).await;
    no_query(&mut b2).await;
    assert_eq!(notify_of(&srv, &b2.jid).await.unwrap(), [AVATAR_NODE]);
    // a still announces the fifth, and has no features until it answers.
    assert_eq!(notify_of(&srv, &a.jid).await, None);
    reply(&mut a, &ids[4], &all[4].ver, &all[4].inner).await;
    assert_eq!(notify_of(&srv, &a.jid).await.unwrap(), [AVATAR_NODE]);
    srv.stop().await;
}
