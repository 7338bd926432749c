//! Client entity capabilities (XEP-0115): the server asks a client that
//! announces an unknown verification string for its disco#info, checks the
//! answer, caches what verifies, and keeps each session's features in its
//! router entry (shown by the admin API).

mod caps_helpers;
mod common;
use caps_helpers::*;
use common::Client;

const AVATAR: &str = "urn:xmpp:avatar:metadata+notify";
const AVATAR_NODE: &str = "urn:xmpp:avatar:metadata";
const OMEMO: &str = "eu.siacs.conversations.axolotl.devicelist+notify";
const OMEMO_NODE: &str = "eu.siacs.conversations.axolotl.devicelist";
const BASE: [&str; 3] = [
    "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/disco#info",
    "urn:xmpp:ping",
];

fn with(extra: &[&'static str]) -> Vec<&'static str> {
    let mut f = BASE.to_vec();
    f.extend_from_slice(extra);
    f
}

#[tokio::test]
async fn announced_caps_are_asked_once_and_then_cached() {
    let srv = server().await;
    let c = caps(&with(&[OMEMO, AVATAR]));
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    announce(&mut a, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut a, &c.ver).await;
    assert_eq!(
        notify_of(&srv, &a.jid).await,
        None,
        "unknown until answered"
    );
    reply(&mut a, &id, &c.ver, &c.inner).await;
    assert_eq!(
        notify_of(&srv, &a.jid).await.unwrap(),
        [OMEMO_NODE, AVATAR_NODE],
        "the router entry has the features"
    );

    // Another session of the account, and another account: cached.
    let mut a2 = Client::login(srv.addr, "alice", "pw", "a2").await;
    announce(&mut a2, Some("sha-1"), &c.ver).await;
    no_query(&mut a2).await;
    assert_eq!(
        notify_of(&srv, &a2.jid).await.unwrap(),
        [OMEMO_NODE, AVATAR_NODE]
    );
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce(&mut b, Some("sha-1"), &c.ver).await;
    no_query(&mut b).await;
    assert_eq!(
        notify_of(&srv, &b.jid).await.unwrap(),
        [OMEMO_NODE, AVATAR_NODE]
    );

    // A presence update without <c/>, or with the same one: nothing changes.
    a.send("<presence><show>away</show></presence>").await;
    announce(&mut a, Some("sha-1"), &c.ver).await;
    no_query(&mut a).await;
    assert_eq!(
        notify_of(&srv, &a.jid).await.unwrap(),
        [OMEMO_NODE, AVATAR_NODE]
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_changed_ver_replaces_the_caps_and_unavailable_forgets_them() {
    let srv = server().await;
    let (one, two) = (caps(&with(&[AVATAR])), caps(&with(&[OMEMO])));
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    announce(&mut a, Some("sha-1"), &one.ver).await;
    let id = one_query(&mut a, &one.ver).await;
    reply(&mut a, &id, &one.ver, &one.inner).await;
    assert_eq!(notify_of(&srv, &a.jid).await.unwrap(), [AVATAR_NODE]);

    announce(&mut a, Some("sha-1"), &two.ver).await;
    let id = one_query(&mut a, &two.ver).await;
    // Until the new string is known the session has none (not stale ones).
    assert_eq!(notify_of(&srv, &a.jid).await, None);
    // The answer has no `to`: the server handles it for the account.
    a.send(format!(
        "<iq type='result' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'>{}</query></iq>",
        two.inner
    ))
    .await;
    no_query(&mut a).await;
    assert_eq!(notify_of(&srv, &a.jid).await.unwrap(), [OMEMO_NODE]);

    // Back to the first: cached, replaced at once.
    announce(&mut a, Some("sha-1"), &one.ver).await;
    no_query(&mut a).await;
    assert_eq!(notify_of(&srv, &a.jid).await.unwrap(), [AVATAR_NODE]);

    // Unavailable forgets them; available again takes them from the cache.
    a.send("<presence type='unavailable'/>").await;
    no_query(&mut a).await;
    assert_eq!(notify_of(&srv, &a.jid).await, None);
    announce(&mut a, Some("sha-1"), &one.ver).await;
    no_query(&mut a).await;
    assert_eq!(notify_of(&srv, &a.jid).await.unwrap(), [AVATAR_NODE]);
    srv.stop().await;
}

#[tokio::test]
async fn an_answer_that_does_not_verify_is_used_by_its_session_only() {
    let srv = server().await;
    let c = caps(&with(&[AVATAR]));
    let lie = caps(&with(&[AVATAR, OMEMO]));
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    announce(&mut a, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut a, &c.ver).await;
    // What slixmpp <= 1.17 does when a +notify interest is registered
    // before it binds: the announced string misses features it answers
    // with. Its own session goes by its answer (XEP-0115 §5.4 3.9 forbids
    // caching it, not using it for the entity that sent it)...
    reply(&mut a, &id, &c.ver, &lie.inner).await;
    wait_for_notify(&srv, &a.jid, &[OMEMO_NODE, AVATAR_NODE]).await;

    // ...and no other: the next session announcing the string is asked
    // again, and its true answer is cached.
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce(&mut b, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut b, &c.ver).await;
    reply(&mut b, &id, &c.ver, &c.inner).await;
    assert_eq!(notify_of(&srv, &b.jid).await.unwrap(), [AVATAR_NODE]);
    let mut a2 = Client::login(srv.addr, "alice", "pw", "a2").await;
    announce(&mut a2, Some("sha-1"), &c.ver).await;
    no_query(&mut a2).await;
    assert_eq!(notify_of(&srv, &a2.jid).await.unwrap(), [AVATAR_NODE]);

    // Ill-formed (a feature twice) with the right hash of the features
    // set: rejected all the same (XEP-0115 §5.4).
    let d = caps(&with(&[OMEMO]));
    let mut a3 = Client::login(srv.addr, "alice", "pw", "a3").await;
    announce(&mut a3, Some("sha-1"), &d.ver).await;
    let id = one_query(&mut a3, &d.ver).await;
    let twice = format!("{}<feature var='{OMEMO}'/>", d.inner);
    reply(&mut a3, &id, &d.ver, &twice).await;
    assert_eq!(notify_of(&srv, &a3.jid).await, None);
    srv.stop().await;
}

#[tokio::test]
async fn an_error_answer_leaves_the_session_without_caps() {
    let srv = server().await;
    let c = caps(&with(&[AVATAR]));
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    announce(&mut a, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut a, &c.ver).await;
    a.send(format!(
        "<iq type='error' to='localhost' id='{id}'><query xmlns='http://jabber.org/protocol/disco#info'/>\
         <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
    ))
    .await;
    no_query(&mut a).await;
    assert_eq!(notify_of(&srv, &a.jid).await, None);
    // A result without a disco#info payload counts as no answer.
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce(&mut b, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut b, &c.ver).await;
    b.send(format!("<iq type='result' to='localhost' id='{id}'/>"))
        .await;
    no_query(&mut b).await;
    assert_eq!(notify_of(&srv, &b.jid).await, None);
    // Not cached: the next session is asked.
    let mut a2 = Client::login(srv.addr, "alice", "pw", "a2").await;
    announce(&mut a2, Some("sha-1"), &c.ver).await;
    one_query(&mut a2, &c.ver).await;
    srv.stop().await;
}

#[tokio::test]
async fn malformed_caps_and_stray_answers_are_ignored() {
    let srv = server().await;
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    let ns = "http://jabber.org/protocol/caps";
    for c in [
        format!("<c xmlns='{ns}' hash='sha-1' node='{NODE}'/>"),
        format!("<c xmlns='{ns}' hash='sha-1' ver='abc='/>"),
        format!("<c xmlns='{ns}' hash='sha-1' node='{NODE}' ver=''/>"),
        format!("<c xmlns='{ns}' hash='sha-1' node='' ver='abc='/>"),
        format!(
            "<c xmlns='{ns}' hash='sha-1' node='{NODE}' ver='{}'/>",
            "x".repeat(300)
        ),
        format!("<c xmlns='urn:other' hash='sha-1' node='{NODE}' ver='abc='/>"),
    ] {
        a.send(format!("<presence>{c}</presence>")).await;
        // Still broadcast (the echo), and no query.
        let me = a.jid.clone();
        a.expect("own presence", |s| {
            s.name() == "presence" && s.from().as_deref() == Some(me.as_str())
        })
        .await;
        no_query(&mut a).await;
    }
    assert_eq!(notify_of(&srv, &a.jid).await, None);

    // Answers nobody asked for, or asked of another session, do nothing.
    let c = caps(&with(&[AVATAR]));
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce(&mut b, Some("sha-1"), &c.ver).await;
    let id = one_query(&mut b, &c.ver).await;
    reply(&mut a, &id, &c.ver, &c.inner).await;
    reply(&mut a, "caps-999999", &c.ver, &c.inner).await;
    assert_eq!(notify_of(&srv, &a.jid).await, None);
    assert_eq!(notify_of(&srv, &b.jid).await, None);
    // The session asked still answers, once.
    reply(&mut b, &id, &c.ver, &c.inner).await;
    assert_eq!(notify_of(&srv, &b.jid).await.unwrap(), [AVATAR_NODE]);
    srv.stop().await;
}

#[tokio::test]
async fn legacy_and_unknown_hash_caps_are_asked_per_session() {
    let srv = server().await;
    let c = caps(&with(&[AVATAR]));
    for hash in [None, Some("md5")] {
        for user in ["alice", "bob"] {
            // The same string every time: asked every time, never cached.
            let res = hash.unwrap_or("legacy");
            let mut s = Client::login(srv.addr, user, "pw", res).await;
            announce(&mut s, hash, "1.0").await;
            let id = one_query(&mut s, "1.0").await;
            reply(&mut s, &id, "1.0", &c.inner).await;
            assert_eq!(notify_of(&srv, &s.jid).await.unwrap(), [AVATAR_NODE]);
        }
    }
    srv.stop().await;
}
