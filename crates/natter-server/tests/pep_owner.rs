//! PEP (XEP-0163 on XEP-0060): the owner's requests — configure,
//! create, default, delete, purge — the node limit, discovery of the PEP
//! service, and account removal.

mod common;
mod pep_helpers;
use common::*;
use pep_helpers::*;

#[tokio::test]
async fn configure_get_set_and_errors() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    publish_ok(&mut a, "n", Some("1"), &nick("1")).await;
    // The defaults of a PEP node (XEP-0163 §3).
    let r = owner_iq(&mut a, "g1", "get", "<configure node='n'/>").await;
    assert_ok(&r);
    let el = r.element().unwrap();
    let x = el
        .get_child("pubsub", OWNER)
        .and_then(|p| p.get_child("configure", OWNER))
        .and_then(|c| c.get_child("x", "jabber:x:data"))
        .expect("a form");
    assert_eq!(x.attr("type"), Some("form"));
    let value = |x: &natter_xml::Element, var: &str| -> Vec<String> {
        x.elements()
            .find(|f| f.attr("var") == Some(var))
            .unwrap_or_else(|| panic!("field {var}"))
            .elements()
            .filter(|v| v.name == "value")
            .map(|v| v.text())
            .collect()
    };
    assert_eq!(value(x, "FORM_TYPE"), [NODE_CONFIG]);
    assert_eq!(value(x, "pubsub#access_model"), ["presence"]);
    assert_eq!(value(x, "pubsub#max_items"), ["1"]);
    assert_eq!(value(x, "pubsub#persist_items"), ["1"]);
    assert_eq!(
        value(x, "pubsub#send_last_published_item"),
        ["on_sub_and_presence"]
    );
    for var in [
        "pubsub#notify_retract",
        "pubsub#deliver_payloads",
        "pubsub#roster_groups_allowed",
        "pubsub#title",
    ] {
        value(x, var);
    }
    // Set some fields; the others stay.
    let r = a
        .iq("s1", &format!("<iq type='set' id='s1'><pubsub xmlns='{OWNER}'><configure node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{NODE_CONFIG}</value></field><field var='pubsub#title'><value>My nick</value></field><field var='pubsub#access_model'><value>roster</value></field><field var='pubsub#roster_groups_allowed'><value>Friends</value><value>Family</value></field><field var='pubsub#deliver_payloads'><value>false</value></field></x></configure></pubsub></iq>"))
        .await;
    assert_ok(&r);
    let r = owner_iq(&mut a, "g2", "get", "<configure node='n'/>").await;
    let el = r.element().unwrap();
    let x = el
        .get_child("pubsub", OWNER)
        .unwrap()
        .get_child("configure", OWNER)
        .unwrap()
        .get_child("x", "jabber:x:data")
        .unwrap();
    assert_eq!(value(x, "pubsub#title"), ["My nick"]);
    assert_eq!(value(x, "pubsub#access_model"), ["roster"]);
    assert_eq!(
        value(x, "pubsub#roster_groups_allowed"),
        ["Friends", "Family"]
    );
    assert_eq!(value(x, "pubsub#deliver_payloads"), ["0"]);
    assert_eq!(value(x, "pubsub#max_items"), ["1"]);
    // A cancelled form changes nothing.
    let r = owner_iq(
        &mut a,
        "s2",
        "set",
        "<configure node='n'><x xmlns='jabber:x:data' type='cancel'/></configure>",
    )
    .await;
    assert_ok(&r);
    // Errors.
    // (id, iq type, request, error type, condition, pubsub condition)
    type Case<'a> = (&'a str, &'a str, String, &'a str, &'a str, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "e1",
            "get",
            "<configure node='nope'/>".into(),
            "cancel",
            "item-not-found",
            None,
        ),
        (
            "e2",
            "get",
            "<configure/>".into(),
            "modify",
            "bad-request",
            Some("nodeid-required"),
        ),
        (
            "e3",
            "set",
            "<configure node='n'/>".into(),
            "modify",
            "bad-request",
            None,
        ),
        (
            "e4",
            "set",
            format!(
                "<configure node='n'>{}</configure>",
                form(NODE_CONFIG, &[("pubsub#frobnicate", "1")])
            ),
            "modify",
            "not-acceptable",
            None,
        ),
        (
            "e5",
            "set",
            format!(
                "<configure node='n'>{}</configure>",
                form(PUBLISH_OPTIONS, &[])
            ),
            "modify",
            "bad-request",
            None,
        ),
        (
            "e6",
            "set",
            format!(
                "<configure node='n'>{}</configure>",
                form(
                    NODE_CONFIG,
                    &[("pubsub#send_last_published_item", "sometimes")]
                )
            ),
            "modify",
            "not-acceptable",
            None,
        ),
        (
            "e7",
            "set",
            format!(
                "<configure node='nope'>{}</configure>",
                form(NODE_CONFIG, &[])
            ),
            "cancel",
            "item-not-found",
            None,
        ),
        (
            "e8",
            "set",
            "<affiliations node='n'/>".into(),
            "cancel",
            "feature-not-implemented",
            Some("unsupported"),
        ),
        (
            "e9",
            "get",
            "<purge node='n'/>".into(),
            "modify",
            "bad-request",
            None,
        ),
    ];
    for (id, ty, inner, ety, cond, app) in cases {
        let r = owner_iq(&mut a, id, ty, &inner).await;
        assert_error(&r, ety, cond, app);
    }
    // Someone else's node: forbidden, to read and to change.
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    for (id, ty) in [("f1", "get"), ("f2", "set")] {
        let r = b
            .iq(id, &format!("<iq type='{ty}' id='{id}' to='{A}'><pubsub xmlns='{OWNER}'><configure node='n'>{}</configure></pubsub></iq>", form(NODE_CONFIG, &[])))
            .await;
        assert_error(&r, "auth", "forbidden", None);
    }
}

#[tokio::test]
async fn create_default_delete_and_purge() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let set = |id: &str, inner: &str| {
        format!("<iq type='set' id='{id}'><pubsub xmlns='{PUBSUB}'>{inner}</pubsub></iq>")
    };
    assert_ok(&a.iq("c1", &set("c1", "<create node='empty'/>")).await);
    assert!(item_ids(&items(&mut a, "i1", A, "empty", "", "").await).is_empty());
    assert_error(
        &a.iq("c2", &set("c2", "<create node='empty'/>")).await,
        "cancel",
        "conflict",
        None,
    );
    assert_error(
        &a.iq("c3", &set("c3", "<create/>")).await,
        "modify",
        "not-acceptable",
        Some("nodeid-required"),
    );
    // Create and configure at once.
    let cc = format!(
        "<create node='conf'/><configure>{}</configure>",
        form(
            NODE_CONFIG,
            &[
                ("pubsub#access_model", "whitelist"),
                ("pubsub#max_items", "10")
            ]
        )
    );
    assert_ok(&a.iq("c4", &set("c4", &cc)).await);
    let r = owner_iq(&mut a, "g1", "get", "<configure node='conf'/>").await;
    assert!(
        text(&r).contains("<value>whitelist</value></field>"),
        "{}",
        text(&r)
    );
    let bad = format!(
        "<create node='bad'/><configure>{}</configure>",
        form(NODE_CONFIG, &[("pubsub#max_items", "x")])
    );
    assert_error(
        &a.iq("c5", &set("c5", &bad)).await,
        "modify",
        "bad-request",
        None,
    );
    // The default configuration.
    let r = owner_iq(&mut a, "d1", "get", "<default/>").await;
    assert_ok(&r);
    let t = text(&r);
    assert!(
        t.contains("<default><x xmlns='jabber:x:data' type='form'>"),
        "{t}"
    );
    assert!(t.contains("<value>presence</value></field>"), "{t}");
    // Purge: the items go, the node stays.
    for i in 1..=3 {
        assert_ok(&publish(&mut a, "p", "conf", Some(&i.to_string()), &nick("x"), None).await);
    }
    assert_ok(&owner_iq(&mut a, "u1", "set", "<purge node='conf'/>").await);
    assert!(item_ids(&items(&mut a, "i2", A, "conf", "", "").await).is_empty());
    assert_error(
        &owner_iq(&mut a, "u2", "set", "<purge node='nope'/>").await,
        "cancel",
        "item-not-found",
        None,
    );
    assert_error(
        &owner_iq(&mut a, "u3", "set", "<purge/>").await,
        "modify",
        "bad-request",
        Some("nodeid-required"),
    );
    // Delete: the node and its items go.
    publish_ok(&mut a, "conf", Some("4"), &nick("x")).await;
    assert_ok(&owner_iq(&mut a, "x1", "set", "<delete node='conf'/>").await);
    assert_error(
        &items(&mut a, "i3", A, "conf", "", "").await,
        "cancel",
        "item-not-found",
        None,
    );
    assert_error(
        &owner_iq(&mut a, "x2", "set", "<delete node='conf'/>").await,
        "cancel",
        "item-not-found",
        None,
    );
    assert_error(
        &owner_iq(&mut a, "x3", "set", "<delete/>").await,
        "modify",
        "bad-request",
        Some("nodeid-required"),
    );
    assert_eq!(
        srv.store.pep_items(A, "conf", &[], None).await,
        Err(natter_store::StoreError::NotFound)
    );
    // Bob may not delete or purge alice's nodes.
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    for (id, inner) in [
        ("f1", "<delete node='empty'/>"),
        ("f2", "<purge node='empty'/>"),
    ] {
        let r = b.iq(id, &format!("<iq type='set' id='{id}' to='{A}'><pubsub xmlns='{OWNER}'>{inner}</pubsub></iq>")).await;
        assert_error(&r, "auth", "forbidden", None);
    }
    assert!(srv.store.pep_node(A, "empty").await.unwrap().is_some());
}

#[tokio::test]
async fn nodes_per_account_are_limited() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    for i in 0..256 {
        assert_ok(&publish(&mut a, "p", &format!("n{i}"), Some("1"), &nick("x"), None).await);
    }
    let r = publish(&mut a, "p257", "n256", Some("1"), &nick("x"), None).await;
    assert_error(&r, "modify", "policy-violation", None);
    let r = a
        .iq("c257", &format!("<iq type='set' id='c257'><pubsub xmlns='{PUBSUB}'><create node='n256'/></pubsub></iq>"))
        .await;
    assert_error(&r, "modify", "policy-violation", None);
    // Existing nodes still take items; a deleted node makes room.
    assert_ok(&publish(&mut a, "p0", "n0", Some("2"), &nick("y"), None).await);
    assert_ok(&owner_iq(&mut a, "d", "set", "<delete node='n0'/>").await);
    assert_ok(&publish(&mut a, "p258", "n256", Some("1"), &nick("x"), None).await);
}

#[tokio::test]
async fn discovery_shows_the_pep_service() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = a
        .iq("d1", &format!("<iq type='get' id='d1' to='{A}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"))
        .await;
    let t = text(&r);
    assert!(
        t.contains("<identity category='pubsub' type='pep'/>"),
        "{t}"
    );
    assert!(
        t.contains("<identity category='account' type='registered'"),
        "{t}"
    );
    for f in [
        "publish",
        "publish-options",
        "auto-create",
        "access-presence",
        "access-open",
        "access-roster",
        "access-whitelist",
        "retrieve-items",
        "retract-items",
        "purge-nodes",
        "delete-nodes",
        "config-node",
        "create-nodes",
        "persistent-items",
        "last-published",
        "filtered-notifications",
    ] {
        assert!(
            t.contains(&format!("<feature var='{PUBSUB}#{f}'/>")),
            "{f}: {t}"
        );
    }
    assert!(
        !t.contains("#subscribe'"),
        "explicit subscriptions are not offered: {t}"
    );
    publish_ok(&mut a, "n1", Some("x"), &nick("1")).await;
    assert_ok(&configure(&mut a, "c", "n1", &[("pubsub#title", "One")]).await);
    publish_ok(&mut a, "n2", Some("y"), &nick("2")).await;
    let r = a
        .iq("d2", &format!("<iq type='get' id='d2' to='{A}'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"))
        .await;
    let t = text(&r);
    assert!(
        t.contains(&format!("<item jid='{A}' node='n1' name='One'/>")),
        "{t}"
    );
    assert!(t.contains(&format!("<item jid='{A}' node='n2'/>")), "{t}");
    // One node: its item ids, and its identity.
    let r = a
        .iq("d3", &format!("<iq type='get' id='d3' to='{A}'><query xmlns='http://jabber.org/protocol/disco#items' node='n2'/></iq>"))
        .await;
    assert!(
        text(&r).contains(&format!("<item jid='{A}' name='y'/>")),
        "{}",
        text(&r)
    );
    let r = a
        .iq("d4", &format!("<iq type='get' id='d4' to='{A}'><query xmlns='http://jabber.org/protocol/disco#info' node='n2'/></iq>"))
        .await;
    assert!(
        text(&r).contains("<identity category='pubsub' type='leaf'/>"),
        "{}",
        text(&r)
    );
    let r = a
        .iq("d5", &format!("<iq type='get' id='d5' to='{A}'><query xmlns='http://jabber.org/protocol/disco#info' node='nope'/></iq>"))
        .await;
    assert_error(&r, "cancel", "item-not-found", None);
    // Affiliations and subscriptions, as far as they exist.
    let r = a
        .iq(
            "a1",
            &format!(
                "<iq type='get' id='a1'><pubsub xmlns='{PUBSUB}'><affiliations/></pubsub></iq>"
            ),
        )
        .await;
    let t = text(&r);
    assert!(
        t.contains("<affiliation node='n1' affiliation='owner'/>"),
        "{t}"
    );
    let r = a
        .iq(
            "a2",
            &format!(
                "<iq type='get' id='a2'><pubsub xmlns='{PUBSUB}'><subscriptions/></pubsub></iq>"
            ),
        )
        .await;
    assert!(text(&r).contains("<subscriptions/>"), "{}", text(&r));
}

#[tokio::test]
async fn removing_the_account_removes_its_pep_data() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    publish_ok(&mut a, NICK, Some("current"), &nick("Al")).await;
    let r = a
        .iq(
            "rm",
            "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>",
        )
        .await;
    assert_ok(&r);
    assert!(srv.store.pep_nodes(A).await.unwrap().is_empty());
    assert!(srv
        .store
        .pep_last_items(&[A.to_owned()], &[NICK.to_owned()])
        .await
        .unwrap()
        .is_empty());
}
