//! PEP access models (XEP-0060 §4.5, §6.5.9) on every read: items,
//! disco#items of the account and of a node, disco#info of a node; and
//! blocked entities (XEP-0191), who get nothing.

mod common;
mod pep_helpers;
use common::*;
use natter_store::Subscription;
use pep_helpers::*;

const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// Alice's nodes, one per access model; roster-node allows "Friends".
async fn alice_nodes(srv: &TestServer) -> Client {
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let nodes: [(&str, &[(&str, &str)]); 4] = [
        ("presence-node", &[]),
        ("open-node", &[("pubsub#access_model", "open")]),
        ("white-node", &[("pubsub#access_model", "whitelist")]),
        ("roster-node", &[("pubsub#access_model", "roster")]),
    ];
    for (node, options) in nodes {
        let r = publish(&mut a, "p", node, Some("1"), &nick(node), Some(options)).await;
        assert_ok(&r);
    }
    let r = configure(
        &mut a,
        "c",
        "roster-node",
        &[("pubsub#roster_groups_allowed", "Friends")],
    )
    .await;
    assert_ok(&r);
    a
}

/// Who is who to alice: bob and erin receive her presence (erin in
/// Friends), dave too (in Work), frank is in Friends but does not receive
/// her presence, carol is a stranger.
async fn people(srv: &TestServer) {
    relate(srv, "alice", "bob", Subscription::From, &[]).await;
    relate(srv, "alice", "erin", Subscription::Both, &["Friends"]).await;
    relate(srv, "alice", "dave", Subscription::Both, &["Work"]).await;
    relate(srv, "alice", "frank", Subscription::To, &["Friends"]).await;
}

/// What a read gets: Ok, or the error's (type, condition, pubsub condition).
type Read = Result<(), (String, String, String)>;

/// What `c` gets reading each of alice's nodes.
async fn reads(c: &mut Client) -> Vec<(&'static str, Read)> {
    let mut out = Vec::new();
    for node in ["presence-node", "open-node", "white-node", "roster-node"] {
        let r = items(c, "r", A, node, "", "").await;
        if r.stanza_type().as_deref() == Some("result") {
            assert_eq!(item_ids(&r), ["1"]);
            assert!(
                text(&r).contains(&format!(">{node}</nick>")),
                "{}",
                text(&r)
            );
            out.push((node, Ok(())));
            continue;
        }
        let el = r.element().unwrap();
        let err = el.get_child("error", "jabber:client").expect("an error");
        let ty = err.attr("type").unwrap_or_default().to_owned();
        let mut conds = err.elements().map(|e| e.name.clone());
        let cond = conds.next().unwrap_or_default();
        let app = err
            .elements()
            .find(|e| e.ns == ERRORS)
            .map(|e| e.name.clone())
            .unwrap_or_default();
        out.push((node, Err((ty, cond, app))));
    }
    out
}

fn denied(ty: &str, cond: &str, app: &str) -> Read {
    Err((ty.into(), cond.into(), app.into()))
}

#[tokio::test]
async fn items_follow_the_access_model() {
    let srv = server(&["alice", "bob", "carol", "dave", "erin", "frank"]).await;
    people(&srv).await;
    let mut a = alice_nodes(&srv).await;
    let presence_required = denied("auth", "not-authorized", "presence-subscription-required");
    let not_in_group = denied("auth", "not-authorized", "not-in-roster-group");
    let closed = denied("cancel", "not-allowed", "closed-node");
    // The owner reads everything.
    for (node, got) in reads(&mut a).await {
        assert_eq!(got, Ok(()), "alice {node}");
    }
    let expect: [(&str, [Read; 4]); 5] = [
        (
            "carol",
            [
                presence_required.clone(),
                Ok(()),
                closed.clone(),
                not_in_group.clone(),
            ],
        ),
        (
            "bob",
            [Ok(()), Ok(()), closed.clone(), not_in_group.clone()],
        ),
        (
            "dave",
            [Ok(()), Ok(()), closed.clone(), not_in_group.clone()],
        ),
        ("erin", [Ok(()), Ok(()), closed.clone(), Ok(())]),
        (
            "frank",
            [
                presence_required.clone(),
                Ok(()),
                closed.clone(),
                not_in_group.clone(),
            ],
        ),
    ];
    for (user, want) in expect {
        let mut c = Client::online(srv.addr, user, "pw", "r").await;
        let got = reads(&mut c).await;
        for ((node, got), want) in got.into_iter().zip(want) {
            assert_eq!(got, want, "{user} reading {node}");
        }
    }
    // A node that does not exist is item-not-found for anyone.
    let mut c = Client::online(srv.addr, "carol", "pw", "r2").await;
    assert_error(
        &items(&mut c, "i", A, "nope", "", "").await,
        "cancel",
        "item-not-found",
        None,
    );
}

/// The nodes `c` sees in alice's disco#items.
async fn visible_nodes(c: &mut Client) -> Vec<String> {
    let r = c
        .iq(
            "d",
            &format!("<iq type='get' id='d' to='{A}'><query xmlns='{DISCO_ITEMS}'/></iq>"),
        )
        .await;
    assert_ok(&r);
    let el = r.element().unwrap();
    let mut nodes: Vec<String> = el
        .get_child("query", DISCO_ITEMS)
        .unwrap()
        .elements()
        .map(|i| i.attr("node").unwrap_or_default().to_owned())
        .collect();
    nodes.sort_unstable();
    nodes
}

#[tokio::test]
async fn discovery_shows_only_what_the_requester_may_read() {
    let srv = server(&["alice", "bob", "carol", "dave", "erin", "frank"]).await;
    people(&srv).await;
    let mut a = alice_nodes(&srv).await;
    let all = ["open-node", "presence-node", "roster-node", "white-node"];
    assert_eq!(visible_nodes(&mut a).await, all);
    for (user, want) in [
        ("carol", &["open-node"][..]),
        ("bob", &["open-node", "presence-node"][..]),
        ("erin", &["open-node", "presence-node", "roster-node"][..]),
    ] {
        let mut c = Client::online(srv.addr, user, "pw", "r").await;
        assert_eq!(visible_nodes(&mut c).await, want, "{user}");
    }
    // A node's info and item ids follow the same rules.
    let mut carol = Client::online(srv.addr, "carol", "pw", "r2").await;
    let r = carol
        .iq("n1", &format!("<iq type='get' id='n1' to='{A}'><query xmlns='{DISCO_INFO}' node='presence-node'/></iq>"))
        .await;
    assert_error(
        &r,
        "auth",
        "not-authorized",
        Some("presence-subscription-required"),
    );
    let r = carol
        .iq("n2", &format!("<iq type='get' id='n2' to='{A}'><query xmlns='{DISCO_ITEMS}' node='white-node'/></iq>"))
        .await;
    assert_error(&r, "cancel", "not-allowed", Some("closed-node"));
    let r = carol
        .iq("n3", &format!("<iq type='get' id='n3' to='{A}'><query xmlns='{DISCO_ITEMS}' node='open-node'/></iq>"))
        .await;
    assert!(
        text(&r).contains(&format!("<item jid='{A}' name='1'/>")),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn blocked_entities_get_nothing() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = alice_nodes(&srv).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    assert_ok(&items(&mut b, "i1", A, "presence-node", "", "").await);
    let r = a
        .iq("bl", "<iq type='set' id='bl'><block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block></iq>")
        .await;
    assert_ok(&r);
    // Even the open node: a blocked entity's requests are refused as if
    // the account were not there.
    for (id, node) in [("i2", "presence-node"), ("i3", "open-node")] {
        let r = items(&mut b, id, A, node, "", "").await;
        assert_error(&r, "cancel", "service-unavailable", None);
    }
    let r = b
        .iq(
            "d",
            &format!("<iq type='get' id='d' to='{A}'><query xmlns='{DISCO_ITEMS}'/></iq>"),
        )
        .await;
    assert_error(&r, "cancel", "service-unavailable", None);
}
