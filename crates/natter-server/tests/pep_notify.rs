//! PEP notifications (XEP-0163 §4.3): who gets them (sessions that ask
//! with `NODE+notify` in their entity capabilities, of the owner and of
//! contacts the access model allows, never across a block), what they
//! carry, and the last items a session gets when its capabilities become
//! known. That nobody else got one is checked with a later stanza from the
//! owner that does arrive, never with a wait.

mod common;
mod pep_helpers;
use common::*;
use natter_store::Subscription;
use pep_helpers::*;

const PUBSUB_NS: &str = PUBSUB;

/// A session that announced capabilities asking for `nodes`.
async fn with_caps(srv: &TestServer, user: &str, resource: &str, nodes: &[&str]) -> Client {
    let mut c = Client::login(srv.addr, user, "pw", resource).await;
    announce_caps(&mut c, nodes).await;
    c
}

/// Asserts `c` gets no PEP notification before `owner`'s marker message.
async fn none_before_marker(owner: &mut Client, c: &mut Client, marker: &str) {
    let to = c.jid.clone();
    send_marker(owner, &to, marker).await;
    let before = until_marker(c, marker).await;
    let got = notifications(&before);
    assert!(got.is_empty(), "{}: unexpected {got:?}", c.jid);
}

#[tokio::test]
async fn publish_notifies_the_entitled_sessions() {
    let srv = server(&["alice", "bob", "carol", "dave"]).await;
    relate(&srv, "alice", "bob", Subscription::From, &[]).await;
    relate(&srv, "alice", "dave", Subscription::Both, &[]).await;
    let mut a1 = Client::online(srv.addr, "alice", "pw", "a1").await;
    let mut a2 = with_caps(&srv, "alice", "a2", &[NICK]).await;
    let mut b = with_caps(&srv, "bob", "b", &[NICK]).await;
    let mut c = with_caps(&srv, "carol", "c", &[NICK]).await;
    let mut d = with_caps(&srv, "dave", "d", &["urn:xmpp:avatar:metadata"]).await;
    // The publisher announced no capabilities: no notification for it.
    let iq = format!("<iq type='set' id='p1'><pubsub xmlns='{PUBSUB_NS}'><publish node='{NICK}'><item id='current'>{}</item></publish></pubsub></iq>", nick("Al"));
    let (before, r) = iq_collect(&mut a1, "p1", &iq).await;
    assert_ok(&r);
    assert!(notifications(&before).is_empty());
    for x in [&mut a2, &mut b] {
        let t = next_notification(x, NICK).await;
        assert!(t.starts_with("<message from='alice@localhost' to='"), "{t}");
        assert!(t.contains(&format!(" to='{}'", x.jid)), "{t}");
        assert!(t.contains("type='headline'"), "{t}");
        assert!(
            t.contains(&format!("<event xmlns='{EVENT}'><items node='{NICK}'><item id='current'><nick xmlns='{NICK}'>Al</nick></item></items></event>")),
            "{t}"
        );
    }
    // A stranger and a contact that did not ask get nothing.
    none_before_marker(&mut a1, &mut c, "m1").await;
    none_before_marker(&mut a1, &mut d, "m2").await;
}

#[tokio::test]
async fn notifications_follow_the_access_model() {
    let srv = server(&["alice", "bob", "carol", "erin"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &["Work"]).await;
    relate(&srv, "alice", "erin", Subscription::From, &["Friends"]).await;
    let nodes = ["white", "roster", "open"];
    let mut a1 = Client::online(srv.addr, "alice", "pw", "a1").await;
    let mut a2 = with_caps(&srv, "alice", "a2", &nodes).await;
    let mut b = with_caps(&srv, "bob", "b", &nodes).await;
    let mut c = with_caps(&srv, "carol", "c", &nodes).await;
    let mut e = with_caps(&srv, "erin", "e", &nodes).await;
    // Whitelist: the owner's sessions alone.
    assert_ok(
        &publish(
            &mut a1,
            "p1",
            "white",
            Some("1"),
            &nick("w"),
            Some(&[("pubsub#access_model", "whitelist")]),
        )
        .await,
    );
    assert!(next_notification(&mut a2, "white")
        .await
        .contains("<nick xmlns"));
    none_before_marker(&mut a1, &mut b, "m1").await;
    none_before_marker(&mut a1, &mut e, "m2").await;
    // Roster: presence subscribers in an allowed group.
    assert_ok(
        &publish(
            &mut a1,
            "p2",
            "roster",
            Some("1"),
            &nick("r"),
            Some(&[("pubsub#access_model", "roster")]),
        )
        .await,
    );
    assert_ok(
        &configure(
            &mut a1,
            "c2",
            "roster",
            &[("pubsub#roster_groups_allowed", "Friends")],
        )
        .await,
    );
    assert_ok(&publish(&mut a1, "p3", "roster", Some("2"), &nick("r2"), None).await);
    let t = next_notification(&mut e, "roster").await;
    // Erin asked for it before the group was allowed: the first publish
    // did not reach her, the second did.
    assert!(t.contains("<item id='2'>"), "{t}");
    none_before_marker(&mut a1, &mut b, "m3").await;
    // Open: readable by anyone, notified to presence subscribers only.
    assert_ok(
        &publish(
            &mut a1,
            "p4",
            "open",
            Some("1"),
            &nick("o"),
            Some(&[("pubsub#access_model", "open")]),
        )
        .await,
    );
    assert!(next_notification(&mut b, "open")
        .await
        .contains("<item id='1'>"));
    none_before_marker(&mut a1, &mut c, "m4").await;
    let _ = &mut a2;
}

#[tokio::test]
async fn retract_delete_purge_and_payloads() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = with_caps(&srv, "bob", "b", &["n"]).await;
    let set = |id: &str, inner: &str| {
        format!("<iq type='set' id='{id}'><pubsub xmlns='{PUBSUB_NS}'>{inner}</pubsub></iq>")
    };
    // Without payloads: the item id only.
    let opts: &[(&str, &str)] = &[("pubsub#deliver_payloads", "0"), ("pubsub#max_items", "10")];
    assert_ok(&publish(&mut a, "p1", "n", Some("1"), &nick("x"), Some(opts)).await);
    let t = next_notification(&mut b, "n").await;
    assert!(t.contains("<items node='n'><item id='1'/></items>"), "{t}");
    assert_ok(&publish(&mut a, "p2", "n", Some("2"), &nick("y"), None).await);
    next_notification(&mut b, "n").await;
    // Retract with notify='true': a <retract/> notification.
    assert_ok(
        &a.iq(
            "r1",
            &set(
                "r1",
                "<retract node='n' notify='true'><item id='1'/></retract>",
            ),
        )
        .await,
    );
    let t = next_notification(&mut b, "n").await;
    assert!(
        t.contains("<items node='n'><retract id='1'/></items>"),
        "{t}"
    );
    // notify='false', and no notify with notify_retract off: none.
    assert_ok(
        &a.iq(
            "r2",
            &set(
                "r2",
                "<retract node='n' notify='false'><item id='2'/></retract>",
            ),
        )
        .await,
    );
    none_before_marker(&mut a, &mut b, "m1").await;
    assert_ok(&publish(&mut a, "p3", "n", Some("3"), &nick("z"), None).await);
    next_notification(&mut b, "n").await;
    assert_ok(&configure(&mut a, "c1", "n", &[("pubsub#notify_retract", "0")]).await);
    assert_ok(
        &a.iq(
            "r3",
            &set("r3", "<retract node='n'><item id='3'/></retract>"),
        )
        .await,
    );
    none_before_marker(&mut a, &mut b, "m2").await;
    // Purge and delete are notified.
    assert_ok(&configure(&mut a, "c2", "n", &[("pubsub#notify_retract", "1")]).await);
    assert_ok(&owner_iq(&mut a, "u", "set", "<purge node='n'/>").await);
    let t = next_notification(&mut b, "n").await;
    assert!(
        t.contains(&format!("<event xmlns='{EVENT}'><purge node='n'/></event>")),
        "{t}"
    );
    assert_ok(&owner_iq(&mut a, "d", "set", "<delete node='n'/>").await);
    let t = next_notification(&mut b, "n").await;
    assert!(
        t.contains(&format!(
            "<event xmlns='{EVENT}'><delete node='n'/></event>"
        )),
        "{t}"
    );
}

#[tokio::test]
async fn last_items_when_capabilities_become_known() {
    let srv = server(&["alice", "bob", "carol"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    publish_ok(&mut a, NICK, Some("current"), &nick("Al")).await;
    let opts = |model: &'static str| [("pubsub#access_model", model)];
    assert_ok(
        &publish(
            &mut a,
            "p1",
            "white",
            Some("1"),
            &nick("w"),
            Some(&opts("whitelist")),
        )
        .await,
    );
    assert_ok(
        &publish(
            &mut a,
            "p2",
            "open",
            Some("1"),
            &nick("o"),
            Some(&opts("open")),
        )
        .await,
    );
    assert_ok(
        &publish(
            &mut a,
            "p3",
            "quiet",
            Some("1"),
            &nick("q"),
            Some(&[("pubsub#send_last_published_item", "never")]),
        )
        .await,
    );
    let everything = [NICK, "white", "open", "quiet"];
    // Bob, a contact: the nodes he may read that send their last item.
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    let got = announce_caps(&mut b, &[NICK, "white", "quiet"]).await;
    let n = notifications(&got);
    let nodes: Vec<&str> = n.iter().map(|(_, node, _)| node.as_str()).collect();
    assert_eq!(nodes, [NICK], "{n:?}");
    let t = &n[0].2;
    assert!(t.contains("<item id='current'><nick"), "{t}");
    assert!(
        t.contains("<delay xmlns='urn:xmpp:delay' from='alice@localhost' stamp='"),
        "{t}"
    );
    // Bob's second session announces more: it had none, it gets all the
    // nodes it asks for.
    let more = [NICK, "white", "quiet", "open"];
    let mut b2 = Client::login(srv.addr, "bob", "pw", "b2").await;
    let got = announce(&mut b2, "bob-more", &more, true).await;
    let mut nodes: Vec<String> = notifications(&got).into_iter().map(|(_, n, _)| n).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, [NICK, "open"]);
    // The first session changes to those (known) capabilities: only the
    // node asked for now and not before.
    let got = announce(&mut b, "bob-more", &more, false).await;
    let nodes: Vec<String> = notifications(&got).into_iter().map(|(_, n, _)| n).collect();
    assert_eq!(nodes, ["open"]);
    // Then to capabilities the server has not seen (asked for while the
    // session has none): still only what they add, nothing again.
    let got = announce(&mut b, "bob-unseen", &more, true).await;
    assert!(notifications(&got).is_empty(), "{:?}", notifications(&got));
    // The owner's own other session gets its own last items, all of them
    // that send on presence.
    let mut a2 = Client::login(srv.addr, "alice", "pw", "a2").await;
    let got = announce_caps(&mut a2, &everything).await;
    let mut nodes: Vec<String> = notifications(&got).into_iter().map(|(_, n, _)| n).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, [NICK, "open", "white"]);
    // A stranger gets nothing, not even of the open node.
    let mut c = Client::login(srv.addr, "carol", "pw", "c").await;
    assert!(notifications(&announce_caps(&mut c, &everything).await).is_empty());
}

#[tokio::test]
async fn a_blocked_contact_gets_no_notifications() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = with_caps(&srv, "bob", "b", &[NICK]).await;
    let block = |id: &str, verb: &str| {
        format!("<iq type='set' id='{id}'><{verb} xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></{verb}></iq>")
    };
    assert_ok(&a.iq("b1", &block("b1", "block")).await);
    publish_ok(&mut a, NICK, Some("current"), &nick("secret")).await;
    // Unblocking sends bob alice's presence again: the marker.
    assert_ok(&a.iq("b2", &block("b2", "unblock")).await);
    let (before, _) = until(&mut b, |s| {
        s.name() == "presence"
            && s.from().as_deref() == Some("alice@localhost/a")
            && s.stanza_type().is_none()
    })
    .await;
    assert!(
        notifications(&before).is_empty(),
        "{:?}",
        notifications(&before)
    );
    // Unblocked, he is notified again.
    publish_ok(&mut a, NICK, Some("current"), &nick("open")).await;
    assert!(next_notification(&mut b, NICK)
        .await
        .contains(">open</nick>"));
}

#[tokio::test]
async fn a_new_contact_gets_the_last_items_it_may_now_read() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    publish_ok(&mut a, NICK, Some("current"), &nick("Al")).await;
    for (id, node, field, value) in [
        ("p1", "white", "pubsub#access_model", "whitelist"),
        ("p2", "quiet", "pubsub#send_last_published_item", "never"),
        ("p3", "onsub", "pubsub#send_last_published_item", "on_sub"),
    ] {
        let opts = [(field, value)];
        assert_ok(&publish(&mut a, id, node, Some("1"), &nick(node), Some(&opts)).await);
    }
    // Bob, a stranger, asks for all of them: he may read none yet.
    let mut b = with_caps(&srv, "bob", "b", &[NICK, "white", "quiet", "onsub"]).await;
    none_before_marker(&mut a, &mut b, "m1").await;
    // He subscribes to Alice's presence and she approves: the nodes he may
    // now read that send their last item on subscription arrive.
    b.send("<presence to='alice@localhost' type='subscribe'/>")
        .await;
    a.expect("the request", |s| {
        s.name() == "presence" && s.stanza_type().as_deref() == Some("subscribe")
    })
    .await;
    a.send("<presence to='bob@localhost' type='subscribed'/>")
        .await;
    send_marker(&mut a, "bob@localhost/b", "m2").await;
    let got = notifications(&until_marker(&mut b, "m2").await);
    let mut nodes: Vec<&str> = got.iter().map(|(_, n, _)| n.as_str()).collect();
    nodes.sort_unstable();
    assert_eq!(nodes, [NICK, "onsub"], "{got:?}");
    assert!(got.iter().all(|(from, _, _)| from == A), "{got:?}");
}
