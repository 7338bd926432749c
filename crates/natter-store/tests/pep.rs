//! PEP (XEP-0163) nodes and items: the behaviour every storage backend
//! must show. The backend is chosen by `NATTER_TEST_STORE` as in
//! `conformance.rs`.

mod common;
use common::test_store;
use natter_store::{
    PepCreated, PepItem, PepNewNode, PepPublished, RosterItem, Store, StoreConfig, StoreError,
    Subscription,
};

const A: &str = "alice@x";
const B: &str = "bob@x";
const NODE: &str = "urn:xmpp:omemo:2:bundles";

fn item(id: &str, n: u64) -> PepItem {
    PepItem {
        id: id.into(),
        payload: format!("<p xmlns='x'>{id}-{n}</p>").into_bytes(),
        publisher: "alice@x/phone".into(),
        stamp_unix_ms: 1_700_000_000_000 + n,
    }
}

fn create(config: &[u8]) -> Option<PepNewNode<'_>> {
    Some(PepNewNode {
        config,
        max_nodes: 10,
    })
}

async fn ids(s: &Store, owner: &str, node: &str) -> Vec<String> {
    s.pep_items(owner, node, &[], None)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect()
}

#[tokio::test]
async fn nodes_are_created_listed_configured_and_limited() {
    let (s, _g) = test_store().await;
    assert!(s.pep_nodes(A).await.unwrap().is_empty());
    assert_eq!(s.pep_node(A, "n1").await.unwrap(), None);
    assert_eq!(
        s.pep_create_node(A, "n2", b"c2", 2).await,
        Ok(PepCreated::Created)
    );
    assert_eq!(
        s.pep_create_node(A, "n1", b"c1", 2).await,
        Ok(PepCreated::Created)
    );
    assert_eq!(
        s.pep_create_node(A, "n1", b"other", 2).await,
        Ok(PepCreated::Exists)
    );
    assert_eq!(
        s.pep_create_node(A, "n3", b"c3", 2).await,
        Ok(PepCreated::TooManyNodes)
    );
    // The limit is per owner.
    assert_eq!(
        s.pep_create_node(B, "n3", b"b3", 2).await,
        Ok(PepCreated::Created)
    );
    let nodes = s.pep_nodes(A).await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2"]);
    assert_eq!(nodes[0].config, b"c1");
    assert_eq!(
        s.pep_node(A, "n2").await.unwrap().as_deref(),
        Some(&b"c2"[..])
    );

    s.pep_configure(A, "n1", b"c1'", 10).await.unwrap();
    assert_eq!(
        s.pep_node(A, "n1").await.unwrap().as_deref(),
        Some(&b"c1'"[..])
    );
    assert_eq!(
        s.pep_configure(A, "n9", b"x", 10).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.pep_node(B, "n1").await.unwrap(),
        None,
        "nodes belong to their owner"
    );
}

#[tokio::test]
async fn publish_upserts_orders_and_trims() {
    let (s, _g) = test_store().await;
    // No node and no creation asked for: nothing happens.
    assert_eq!(
        s.pep_publish(A, NODE, &item("a", 1), 3, None).await,
        Ok(PepPublished::NoNode)
    );
    assert_eq!(s.pep_node(A, NODE).await.unwrap(), None);
    assert_eq!(
        s.pep_publish(A, NODE, &item("a", 1), 3, create(b"cfg"))
            .await,
        Ok(PepPublished::Stored { created: true })
    );
    assert_eq!(
        s.pep_node(A, NODE).await.unwrap().as_deref(),
        Some(&b"cfg"[..])
    );
    for (id, n) in [("b", 2), ("c", 3)] {
        assert_eq!(
            s.pep_publish(A, NODE, &item(id, n), 3, create(b"ignored"))
                .await,
            Ok(PepPublished::Stored { created: false })
        );
    }
    assert_eq!(
        s.pep_node(A, NODE).await.unwrap().as_deref(),
        Some(&b"cfg"[..]),
        "an existing node keeps its configuration"
    );
    assert_eq!(ids(&s, A, NODE).await, ["c", "b", "a"]);
    // A re-published id replaces the item and becomes the newest.
    s.pep_publish(A, NODE, &item("a", 4), 3, None)
        .await
        .unwrap();
    assert_eq!(ids(&s, A, NODE).await, ["a", "c", "b"]);
    let items = s.pep_items(A, NODE, &[], Some(1)).await.unwrap();
    assert_eq!(items, vec![item("a", 4)]);
    // Over the limit: the oldest goes, in the same write.
    s.pep_publish(A, NODE, &item("d", 5), 3, None)
        .await
        .unwrap();
    assert_eq!(ids(&s, A, NODE).await, ["d", "a", "c"]);
    // A smaller limit trims more.
    s.pep_publish(A, NODE, &item("e", 6), 2, None)
        .await
        .unwrap();
    assert_eq!(ids(&s, A, NODE).await, ["e", "d"]);
    // Keeping none: the node exists, holds nothing.
    assert_eq!(
        s.pep_publish(A, "transient", &item("t", 7), 0, create(b"t"))
            .await,
        Ok(PepPublished::Stored { created: true })
    );
    assert!(ids(&s, A, "transient").await.is_empty());
    // Another owner's node of the same name is another node.
    assert!(matches!(
        s.pep_items(B, NODE, &[], None).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn publish_creates_only_within_the_node_limit() {
    let (s, _g) = test_store().await;
    let one = Some(PepNewNode {
        config: b"c",
        max_nodes: 1,
    });
    assert_eq!(
        s.pep_publish(A, "n1", &item("a", 1), 1, one).await,
        Ok(PepPublished::Stored { created: true })
    );
    assert_eq!(
        s.pep_publish(A, "n2", &item("a", 1), 1, one).await,
        Ok(PepPublished::TooManyNodes)
    );
    assert_eq!(s.pep_node(A, "n2").await.unwrap(), None);
    // Publishing to the existing node still works at the limit.
    assert_eq!(
        s.pep_publish(A, "n1", &item("b", 2), 1, one).await,
        Ok(PepPublished::Stored { created: false })
    );
}

#[tokio::test]
async fn items_by_id_and_max() {
    let (s, _g) = test_store().await;
    for (i, id) in ["1", "2", "3", "4"].iter().enumerate() {
        s.pep_publish(A, NODE, &item(id, i as u64), 10, create(b"c"))
            .await
            .unwrap();
    }
    let want = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let got = s
        .pep_items(A, NODE, &want(&["1", "3", "nope", "it's \"quoted\""]), None)
        .await
        .unwrap();
    assert_eq!(got, vec![item("3", 2), item("1", 0)], "newest first");
    let got = s
        .pep_items(A, NODE, &want(&["1", "3"]), Some(1))
        .await
        .unwrap();
    assert_eq!(got, vec![item("3", 2)]);
    assert!(s.pep_items(A, NODE, &[], Some(0)).await.unwrap().is_empty());
    assert_eq!(
        s.pep_items(A, "missing", &[], None).await,
        Err(StoreError::NotFound)
    );
}

#[tokio::test]
async fn configure_trims_to_the_new_limit() {
    let (s, _g) = test_store().await;
    for (i, id) in ["1", "2", "3"].iter().enumerate() {
        s.pep_publish(A, NODE, &item(id, i as u64), 10, create(b"c"))
            .await
            .unwrap();
    }
    s.pep_configure(A, NODE, b"c2", 2).await.unwrap();
    assert_eq!(ids(&s, A, NODE).await, ["3", "2"]);
    s.pep_configure(A, NODE, b"c3", 0).await.unwrap();
    assert!(ids(&s, A, NODE).await.is_empty());
    assert_eq!(
        s.pep_node(A, NODE).await.unwrap().as_deref(),
        Some(&b"c3"[..])
    );
}

#[tokio::test]
async fn retract_purge_and_delete() {
    let (s, _g) = test_store().await;
    for (i, id) in ["1", "2", "3"].iter().enumerate() {
        s.pep_publish(A, NODE, &item(id, i as u64), 10, create(b"c"))
            .await
            .unwrap();
        s.pep_publish(B, NODE, &item(id, i as u64), 10, create(b"c"))
            .await
            .unwrap();
    }
    assert_eq!(s.pep_retract(A, NODE, "2").await, Ok(true));
    assert_eq!(s.pep_retract(A, NODE, "2").await, Ok(false));
    assert_eq!(
        s.pep_retract(A, "missing", "2").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(ids(&s, A, NODE).await, ["3", "1"]);
    assert_eq!(s.pep_purge(A, NODE).await, Ok(2));
    assert!(ids(&s, A, NODE).await.is_empty());
    assert!(
        s.pep_node(A, NODE).await.unwrap().is_some(),
        "purge keeps the node"
    );
    assert_eq!(s.pep_purge(A, "missing").await, Err(StoreError::NotFound));
    // Bob's node of the same name is untouched.
    assert_eq!(ids(&s, B, NODE).await, ["3", "2", "1"]);

    s.pep_delete_node(B, NODE).await.unwrap();
    assert_eq!(s.pep_node(B, NODE).await.unwrap(), None);
    assert_eq!(s.pep_delete_node(B, NODE).await, Err(StoreError::NotFound));
    // Created again, it starts empty: the items went with the node.
    s.pep_create_node(B, NODE, b"c", 10).await.unwrap();
    assert!(ids(&s, B, NODE).await.is_empty());
}

#[tokio::test]
async fn last_items_of_many_owners_in_one_read() {
    let (s, _g) = test_store().await;
    let carol = "carol \"q\"@x";
    for owner in [A, B, carol] {
        for (i, id) in ["1", "2"].iter().enumerate() {
            s.pep_publish(
                owner,
                "devices",
                &item(id, i as u64),
                5,
                create(owner.as_bytes()),
            )
            .await
            .unwrap();
        }
        s.pep_publish(owner, "nick", &item("current", 9), 1, create(b"nick"))
            .await
            .unwrap();
    }
    // A node with no items gives nothing.
    s.pep_create_node(A, "avatar", b"a", 10).await.unwrap();
    let owners: Vec<String> = [A, carol, "nobody@x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let nodes: Vec<String> = ["devices", "avatar"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let got = s.pep_last_items(&owners, &nodes).await.unwrap();
    let summary: Vec<(&str, &str, &str, &[u8])> = got
        .iter()
        .map(|l| {
            (
                l.owner.as_str(),
                l.node.as_str(),
                l.item.id.as_str(),
                l.config.as_slice(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (A, "devices", "2", A.as_bytes()),
            (carol, "devices", "2", carol.as_bytes()),
        ]
    );
    assert_eq!(got[0].item, item("2", 1));
    assert!(s.pep_last_items(&[], &nodes).await.unwrap().is_empty());
    assert!(s.pep_last_items(&owners, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_the_account_deletes_its_pep_data() {
    let (s, _g) = test_store().await;
    s.create_account(A, b"c").await.unwrap();
    s.create_account(B, b"c").await.unwrap();
    for owner in [A, B] {
        s.pep_publish(owner, NODE, &item("1", 1), 5, create(b"c"))
            .await
            .unwrap();
    }
    s.delete_account(A).await.unwrap();
    assert!(s.pep_nodes(A).await.unwrap().is_empty());
    assert_eq!(
        s.pep_items(A, NODE, &[], None).await,
        Err(StoreError::NotFound)
    );
    // Re-created, the account has no nodes and no old items come back.
    s.create_account(A, b"c").await.unwrap();
    s.pep_create_node(A, NODE, b"c", 5).await.unwrap();
    assert!(ids(&s, A, NODE).await.is_empty());
    assert_eq!(ids(&s, B, NODE).await, ["1"]);
}

#[tokio::test]
async fn pep_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("natter.db");
    let s = Store::open(StoreConfig::sqlite(&path)).await.unwrap();
    s.pep_publish(A, NODE, &item("1", 1), 5, create(b"cfg"))
        .await
        .unwrap();
    s.close().await.unwrap();
    let s = Store::open(StoreConfig::sqlite(&path)).await.unwrap();
    assert_eq!(
        s.pep_node(A, NODE).await.unwrap().as_deref(),
        Some(&b"cfg"[..])
    );
    assert_eq!(
        s.pep_items(A, NODE, &[], None).await.unwrap(),
        vec![item("1", 1)]
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn roster_rows_about_one_contact_from_many_owners() {
    let (s, _g) = test_store().await;
    let row = |sub: Subscription, groups: &[&str]| RosterItem {
        jid: "dave@x".into(),
        subscription: sub,
        in_roster: true,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..RosterItem::default()
    };
    s.roster_put(A, &row(Subscription::Both, &["Friends", "Work"]))
        .await
        .unwrap();
    s.roster_put(B, &row(Subscription::From, &[]))
        .await
        .unwrap();
    s.roster_put(
        "carol@x",
        &RosterItem {
            jid: "erin@x".into(),
            ..row(Subscription::Both, &["Other"])
        },
    )
    .await
    .unwrap();
    let owners: Vec<String> = [B, A, "carol@x"].iter().map(|s| s.to_string()).collect();
    let got = s.roster_items_of(&owners, "dave@x").await.unwrap();
    assert_eq!(
        got,
        vec![
            (A.to_string(), row(Subscription::Both, &["Friends", "Work"])),
            (B.to_string(), row(Subscription::From, &[])),
        ]
    );
    assert!(s.roster_items_of(&[], "dave@x").await.unwrap().is_empty());
}
