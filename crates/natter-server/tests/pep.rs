//! PEP (XEP-0163 on XEP-0060): publishing, reading and retracting
//! items, max_items, nodes that keep no items, publish-options, and the
//! errors of those requests. The owner's requests are in `pep_owner.rs`,
//! access models in `pep_access.rs`, notifications in `pep_notify.rs`,
//! OMEMO in `pep_omemo.rs`.

mod common;
mod pep_helpers;
use common::*;
use pep_helpers::*;

#[tokio::test]
async fn publish_and_read_items() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    // Published with an id; the result names it.
    assert_eq!(
        publish_ok(&mut a, NICK, Some("current"), &nick("Al")).await,
        "current"
    );
    let r = items(&mut a, "i1", A, NICK, "", "").await;
    assert_eq!(item_ids(&r), ["current"]);
    assert!(
        text(&r).contains(&format!(
            "<item id='current'><nick xmlns='{NICK}'>Al</nick></item>"
        )),
        "{}",
        text(&r)
    );
    // Without an id the server makes one up; the node keeps one item by
    // default (XEP-0163), so it replaces the first.
    let made = publish_ok(&mut a, NICK, None, &nick("Alice")).await;
    assert!(!made.is_empty() && made != "current");
    let r = items(&mut a, "i2", A, NICK, "", "").await;
    assert_eq!(item_ids(&r), [made.as_str()]);
    assert!(text(&r).contains(">Alice</nick>"), "{}", text(&r));
    // A request with no `to` is to the own account as well.
    let r = a
        .iq("i3", &format!("<iq type='get' id='i3'><pubsub xmlns='{PUBSUB}'><items node='{NICK}'/></pubsub></iq>"))
        .await;
    assert_eq!(item_ids(&r), [made.as_str()]);
    // A payload with its own prefixes and escaped text comes back as it was.
    let odd = "<p:x xmlns:p='urn:x' a='1&amp;2'><p:y>&lt;b&gt;</p:y></p:x>";
    publish_ok(&mut a, "urn:x", Some("1"), odd).await;
    let r = items(&mut a, "i4", A, "urn:x", "", "").await;
    let el = r.element().unwrap();
    let item = el
        .get_child("pubsub", PUBSUB)
        .and_then(|p| p.get_child("items", PUBSUB))
        .and_then(|i| i.get_child("item", PUBSUB))
        .unwrap();
    let x = item
        .get_child("x", "urn:x")
        .expect("payload in its namespace");
    assert_eq!(x.attr("a"), Some("1&2"));
    assert_eq!(x.get_child("y", "urn:x").unwrap().text(), "<b>");
    // No such items: an empty result (XEP-0060 §6.5.9.11).
    let r = items(&mut a, "i5", A, NICK, "", "<item id='nope'/>").await;
    assert!(item_ids(&r).is_empty());
}

#[tokio::test]
async fn max_items_trims_and_max_is_the_server_maximum() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = publish(
        &mut a,
        "p0",
        "n",
        Some("1"),
        &nick("1"),
        Some(&[("pubsub#max_items", "3")]),
    )
    .await;
    assert_ok(&r);
    for i in 2..=5 {
        publish_ok(&mut a, "n", Some(&i.to_string()), &nick(&i.to_string())).await;
    }
    // The newest three, oldest first (XEP-0060 §6.5.3).
    assert_eq!(
        item_ids(&items(&mut a, "i1", A, "n", "", "").await),
        ["3", "4", "5"]
    );
    assert_eq!(
        item_ids(&items(&mut a, "i2", A, "n", " max_items='2'", "").await),
        ["4", "5"]
    );
    assert_eq!(
        item_ids(
            &items(
                &mut a,
                "i3",
                A,
                "n",
                "",
                "<item id='5'/><item id='3'/><item id='1'/>"
            )
            .await
        ),
        ["3", "5"]
    );
    // Re-publishing an id makes it the newest.
    publish_ok(&mut a, "n", Some("3"), &nick("3b")).await;
    assert_eq!(
        item_ids(&items(&mut a, "i4", A, "n", "", "").await),
        ["4", "5", "3"]
    );
    publish_ok(&mut a, "n", Some("6"), &nick("6")).await;
    assert_eq!(
        item_ids(&items(&mut a, "i5", A, "n", "", "").await),
        ["5", "3", "6"]
    );
    // A lower max_items trims at once.
    assert_ok(&configure(&mut a, "c1", "n", &[("pubsub#max_items", "1")]).await);
    assert_eq!(item_ids(&items(&mut a, "i6", A, "n", "", "").await), ["6"]);
    // 'max' keeps 256 (the server's maximum); the 257th drops the oldest.
    assert_ok(&configure(&mut a, "c2", "n", &[("pubsub#max_items", "max")]).await);
    for i in 0..256 {
        publish_ok(&mut a, "n", Some(&format!("m{i}")), &nick("m")).await;
    }
    let ids = item_ids(&items(&mut a, "i7", A, "n", "", "").await);
    assert_eq!(ids.len(), 256);
    assert_eq!(ids.first().map(String::as_str), Some("m0"));
    assert_eq!(ids.last().map(String::as_str), Some("m255"));
    // Bad max_items: unreadable, zero, above the maximum.
    let r = configure(&mut a, "c3", "n", &[("pubsub#max_items", "ten")]).await;
    assert_error(&r, "modify", "bad-request", None);
    for (id, v) in [("c4", "0"), ("c5", "257")] {
        let r = configure(&mut a, id, "n", &[("pubsub#max_items", v)]).await;
        assert_error(&r, "modify", "not-acceptable", None);
    }
    let r = items(&mut a, "i8", A, "n", " max_items='-1'", "").await;
    assert_error(&r, "modify", "bad-request", None);
}

#[tokio::test]
async fn a_node_that_keeps_no_items() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = publish(
        &mut a,
        "p1",
        "t",
        Some("1"),
        &nick("x"),
        Some(&[("pubsub#persist_items", "false")]),
    )
    .await;
    assert_ok(&r);
    assert!(srv
        .store
        .pep_items(A, "t", &[], None)
        .await
        .unwrap()
        .is_empty());
    let r = items(&mut a, "i1", A, "t", "", "").await;
    assert_error(&r, "cancel", "feature-not-implemented", Some("unsupported"));
    assert!(
        text(&r).contains("feature='persistent-items'"),
        "{}",
        text(&r)
    );
    let r = a
        .iq("r1", &format!("<iq type='set' id='r1'><pubsub xmlns='{PUBSUB}'><retract node='t'><item id='1'/></retract></pubsub></iq>"))
        .await;
    assert_error(&r, "cancel", "feature-not-implemented", Some("unsupported"));
    let r = owner_iq(&mut a, "u1", "set", "<purge node='t'/>").await;
    assert_error(&r, "cancel", "feature-not-implemented", Some("unsupported"));
    // Persisting again: items are kept from then on.
    assert_ok(&configure(&mut a, "c1", "t", &[("pubsub#persist_items", "1")]).await);
    publish_ok(&mut a, "t", Some("2"), &nick("y")).await;
    assert_eq!(item_ids(&items(&mut a, "i2", A, "t", "", "").await), ["2"]);
    // Turning it off drops what was kept.
    assert_ok(&configure(&mut a, "c2", "t", &[("pubsub#persist_items", "0")]).await);
    assert!(srv
        .store
        .pep_items(A, "t", &[], None)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn publish_options_are_preconditions() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let open: &[(&str, &str)] = &[("pubsub#access_model", "open"), ("pubsub#max_items", "max")];
    // No node yet: it is created with these settings.
    assert_ok(&publish(&mut a, "p1", "n", Some("1"), &nick("1"), Some(open)).await);
    let r = owner_iq(&mut a, "g1", "get", "<configure node='n'/>").await;
    let t = text(&r);
    assert!(
        t.contains("<field var='pubsub#access_model' type='list-single'"),
        "{t}"
    );
    assert!(t.contains("<value>open</value></field>"), "{t}");
    assert!(t.contains("<value>max</value>"), "{t}");
    // The same options again: met. 'max' and 256 keep as many items.
    assert_ok(&publish(&mut a, "p2", "n", Some("2"), &nick("2"), Some(open)).await);
    assert_ok(
        &publish(
            &mut a,
            "p3",
            "n",
            Some("3"),
            &nick("3"),
            Some(&[("pubsub#max_items", "256")]),
        )
        .await,
    );
    // Not met: conflict + precondition-not-met, nothing published.
    let r = publish(
        &mut a,
        "p4",
        "n",
        Some("4"),
        &nick("4"),
        Some(&[("pubsub#access_model", "presence")]),
    )
    .await;
    assert_error(&r, "cancel", "conflict", Some("precondition-not-met"));
    let r = publish(
        &mut a,
        "p5",
        "n",
        Some("5"),
        &nick("5"),
        Some(&[("pubsub#made_up", "1")]),
    )
    .await;
    assert_error(&r, "cancel", "conflict", Some("precondition-not-met"));
    assert_eq!(
        item_ids(&items(&mut a, "i1", A, "n", "", "").await),
        ["1", "2", "3"]
    );
    // The owner reconfigures, then the publish goes through.
    assert_ok(&configure(&mut a, "c1", "n", &[("pubsub#access_model", "presence")]).await);
    assert_ok(
        &publish(
            &mut a,
            "p6",
            "n",
            Some("6"),
            &nick("6"),
            Some(&[("pubsub#access_model", "presence")]),
        )
        .await,
    );
    // Bad forms: another FORM_TYPE, unreadable or unoffered values.
    let wrong_type = format!("<iq type='set' id='p7'><pubsub xmlns='{PUBSUB}'><publish node='n'><item>{}</item></publish><publish-options>{}</publish-options></pubsub></iq>", nick("7"), form(NODE_CONFIG, &[]));
    assert_error(
        &a.iq("p7", &wrong_type).await,
        "modify",
        "bad-request",
        None,
    );
    let r = publish(
        &mut a,
        "p8",
        "m",
        None,
        &nick("8"),
        Some(&[("pubsub#persist_items", "maybe")]),
    )
    .await;
    assert_error(&r, "modify", "bad-request", None);
    let r = publish(
        &mut a,
        "p9",
        "m",
        None,
        &nick("9"),
        Some(&[("pubsub#access_model", "authorize")]),
    )
    .await;
    assert_error(&r, "modify", "not-acceptable", None);
    assert_eq!(
        srv.store.pep_node(A, "m").await.unwrap(),
        None,
        "no node made by a refused publish"
    );
}

#[tokio::test]
async fn publish_errors() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let p = |id: &str, to: &str, inner: &str| {
        format!("<iq type='set' id='{id}'{to}><pubsub xmlns='{PUBSUB}'>{inner}</pubsub></iq>")
    };
    let n = nick("x");
    let cases: Vec<(&str, String, &str, &str, Option<&str>)> = vec![
        ("e1", p("e1", " to='bob@localhost'", &format!("<publish node='n'><item>{n}</item></publish>")), "auth", "forbidden", None),
        ("e2", p("e2", "", &format!("<publish><item>{n}</item></publish>")), "modify", "bad-request", Some("nodeid-required")),
        ("e3", p("e3", "", "<publish node='n'/>"), "modify", "bad-request", Some("item-required")),
        ("e4", p("e4", "", "<publish node='n'><item id='1'/></publish>"), "modify", "bad-request", Some("payload-required")),
        ("e5", p("e5", "", &format!("<publish node='n'><item>{n}{n}</item></publish>")), "modify", "bad-request", Some("invalid-payload")),
        ("e6", p("e6", "", &format!("<publish node='n'><item>{n}</item><item>{n}</item></publish>")), "modify", "bad-request", None),
        ("e7", p("e7", "", &format!("<publish node='{}'><item>{n}</item></publish>", "x".repeat(1025))), "modify", "not-acceptable", None),
        ("e8", p("e8", "", &format!("<publish node='n'><item id='{}'>{n}</item></publish>", "x".repeat(3073))), "modify", "not-acceptable", None),
        ("e9", p("e9", "", "<subscribe node='n' jid='alice@localhost'/>"), "cancel", "feature-not-implemented", Some("unsupported")),
        ("e10", p("e10", "", ""), "modify", "bad-request", None),
        ("e11", format!("<iq type='get' id='e11'><pubsub xmlns='{PUBSUB}'><publish node='n'/></pubsub></iq>"), "modify", "bad-request", None),
        ("e12", p("e12", " to='bob@localhost'", "<create node='n'/>"), "auth", "forbidden", None),
        ("e13", p("e13", " to='bob@localhost'", "<retract node='n'><item id='1'/></retract>"), "auth", "forbidden", None),
    ];
    for (id, iq, ty, cond, app) in cases {
        let r = a.iq(id, &iq).await;
        assert_error(&r, ty, cond, app);
    }
    assert!(srv.store.pep_nodes(A).await.unwrap().is_empty());
    assert!(srv
        .store
        .pep_nodes("bob@localhost")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn retract_and_its_errors() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    assert_ok(
        &publish(
            &mut a,
            "p1",
            "n",
            Some("1"),
            &nick("1"),
            Some(&[("pubsub#max_items", "5")]),
        )
        .await,
    );
    publish_ok(&mut a, "n", Some("2"), &nick("2")).await;
    let retract = |id: &str, inner: &str| {
        format!("<iq type='set' id='{id}'><pubsub xmlns='{PUBSUB}'>{inner}</pubsub></iq>")
    };
    let r = a
        .iq(
            "r1",
            &retract(
                "r1",
                "<retract node='n' notify='true'><item id='1'/></retract>",
            ),
        )
        .await;
    assert_ok(&r);
    assert_eq!(item_ids(&items(&mut a, "i1", A, "n", "", "").await), ["2"]);
    let cases = [
        (
            "r2",
            "<retract node='n'><item id='1'/></retract>",
            "cancel",
            "item-not-found",
            None,
        ),
        (
            "r3",
            "<retract node='nope'><item id='2'/></retract>",
            "cancel",
            "item-not-found",
            None,
        ),
        (
            "r4",
            "<retract node='n'/>",
            "modify",
            "bad-request",
            Some("item-required"),
        ),
        (
            "r5",
            "<retract node='n'><item/></retract>",
            "modify",
            "bad-request",
            Some("item-required"),
        ),
        (
            "r6",
            "<retract><item id='2'/></retract>",
            "modify",
            "bad-request",
            Some("nodeid-required"),
        ),
        (
            "r7",
            "<retract node='n' notify='perhaps'><item id='2'/></retract>",
            "modify",
            "bad-request",
            None,
        ),
    ];
    for (id, inner, ty, cond, app) in cases {
        let r = a.iq(id, &retract(id, inner)).await;
        assert_error(&r, ty, cond, app);
    }
    assert_eq!(item_ids(&items(&mut a, "i2", A, "n", "", "").await), ["2"]);
}
