//! The behaviour every storage backend must show.
//!
//! Each test gets a fresh store from [`test_store`]; the backend is chosen
//! by the `NATTER_TEST_STORE` environment variable (default `sqlite`).

mod common;
use common::test_store;
use natter_store::{OfflineMessage, RosterItem, StoreError, Subscription};

fn msg(from: &str, id: &str, body: &str) -> OfflineMessage {
    OfflineMessage {
        from: from.into(),
        stanza_id: id.into(),
        msg_id: format!("c{id}"),
        stamp_unix_ms: 1_700_000_000_000,
        stanza: format!("<message id='{id}'><body>{body}</body></message>").into_bytes(),
    }
}

fn item(jid: &str) -> RosterItem {
    RosterItem {
        jid: jid.into(),
        in_roster: true,
        ..RosterItem::default()
    }
}

#[tokio::test]
async fn account_lifecycle() {
    let (s, _g) = test_store().await;
    assert!(!s.account_exists("alice@localhost").await.unwrap());
    assert_eq!(s.credentials("alice@localhost").await.unwrap(), None);
    s.create_account("alice@localhost", b"cred1").await.unwrap();
    assert!(s.account_exists("alice@localhost").await.unwrap());
    assert_eq!(
        s.credentials("alice@localhost").await.unwrap().as_deref(),
        Some(&b"cred1"[..])
    );
    assert_eq!(
        s.create_account("alice@localhost", b"other").await,
        Err(StoreError::AlreadyExists)
    );
    // The failed create did not overwrite.
    assert_eq!(
        s.credentials("alice@localhost").await.unwrap().as_deref(),
        Some(&b"cred1"[..])
    );
    s.set_credentials("alice@localhost", b"cred2")
        .await
        .unwrap();
    assert_eq!(
        s.credentials("alice@localhost").await.unwrap().as_deref(),
        Some(&b"cred2"[..])
    );
    assert_eq!(
        s.set_credentials("bob@localhost", b"x").await,
        Err(StoreError::NotFound)
    );
    s.delete_account("alice@localhost").await.unwrap();
    assert!(!s.account_exists("alice@localhost").await.unwrap());
    assert_eq!(
        s.delete_account("alice@localhost").await,
        Err(StoreError::NotFound)
    );
    // Can be created again.
    s.create_account("alice@localhost", b"cred3").await.unwrap();
}

#[tokio::test]
async fn binary_credentials_round_trip() {
    let (s, _g) = test_store().await;
    let creds: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    s.create_account("a@x", &creds).await.unwrap();
    assert_eq!(s.credentials("a@x").await.unwrap(), Some(creds));
    s.create_account("empty@x", b"").await.unwrap();
    assert_eq!(s.credentials("empty@x").await.unwrap(), Some(vec![]));
}

#[tokio::test]
async fn list_accounts_sorted() {
    let (s, _g) = test_store().await;
    assert!(s.list_accounts().await.unwrap().is_empty());
    for j in ["carol@x", "alice@x", "bob@x"] {
        s.create_account(j, b"c").await.unwrap();
    }
    assert_eq!(
        s.list_accounts().await.unwrap(),
        vec!["alice@x", "bob@x", "carol@x"]
    );
}

#[tokio::test]
async fn bulk_import_skips_existing() {
    let (s, _g) = test_store().await;
    s.create_account("u1@x", b"original").await.unwrap();
    let batch = vec![
        ("u0@x".to_string(), b"a".to_vec()),
        ("u1@x".to_string(), b"replaced?".to_vec()),
        ("u2@x".to_string(), b"b".to_vec()),
        ("u2@x".to_string(), b"dup".to_vec()),
    ];
    assert_eq!(s.create_accounts(batch).await.unwrap(), 2);
    assert_eq!(
        s.credentials("u1@x").await.unwrap().as_deref(),
        Some(&b"original"[..])
    );
    assert_eq!(
        s.credentials("u2@x").await.unwrap().as_deref(),
        Some(&b"b"[..])
    );
    assert_eq!(s.list_accounts().await.unwrap().len(), 3);
    assert_eq!(s.create_accounts(Vec::new()).await.unwrap(), 0);
}

#[tokio::test]
async fn bulk_import_100k() {
    let (s, _g) = test_store().await;
    let accounts: Vec<(String, Vec<u8>)> = (0..100_000)
        .map(|i| (format!("user{i:06}@localhost"), vec![7u8; 120]))
        .collect();
    let t = std::time::Instant::now();
    assert_eq!(s.create_accounts(accounts).await.unwrap(), 100_000);
    eprintln!("create_accounts(100_000): {:?}", t.elapsed());
    assert!(s.account_exists("user099999@localhost").await.unwrap());
    assert_eq!(s.list_accounts().await.unwrap().len(), 100_000);
}

#[tokio::test]
async fn delete_account_cascades() {
    let (s, _g) = test_store().await;
    let (a, b) = ("alice@x", "bob@x");
    for j in [a, b] {
        s.create_account(j, b"c").await.unwrap();
        s.roster_put(j, &item("carol@x")).await.unwrap();
        s.offline_push(j, &msg("carol@x/r", "1", "hi"))
            .await
            .unwrap();
        s.set_vcard(j, b"<vCard/>").await.unwrap();
        s.set_last_activity(j, 100, "bye").await.unwrap();
        s.kv_put("private", j, "k", b"v").await.unwrap();
    }
    s.delete_account(a).await.unwrap();
    let (_, items) = s.roster(a).await.unwrap();
    assert!(items.is_empty());
    assert_eq!(s.roster_item(a, "carol@x").await.unwrap(), None);
    assert_eq!(s.offline_count(a).await.unwrap(), 0);
    assert_eq!(s.vcard(a).await.unwrap(), None);
    assert_eq!(s.last_activity(a).await.unwrap(), None);
    assert_eq!(s.kv_get("private", a, "k").await.unwrap(), None);
    assert!(s.kv_list("private", a).await.unwrap().is_empty());
    // Bob untouched.
    assert_eq!(s.roster(b).await.unwrap().1.len(), 1);
    assert_eq!(s.offline_count(b).await.unwrap(), 1);
    assert!(s.vcard(b).await.unwrap().is_some());
    assert!(s.last_activity(b).await.unwrap().is_some());
    assert!(s.kv_get("private", b, "k").await.unwrap().is_some());
}

#[tokio::test]
async fn roster_item_round_trip() {
    let (s, _g) = test_store().await;
    let full = RosterItem {
        jid: "bob@x".into(),
        name: Some("Bob, the \u{1F600} one; |x|".into()),
        subscription: Subscription::Both,
        ask_out: true,
        pending_in: true,
        approved: true,
        in_roster: true,
        groups: vec![
            "Friends".into(),
            "a,b;c|d\n".into(),
            "".into(),
            "Work".into(),
        ],
        pending_in_stanza: Some(b"<presence type='subscribe'/>".to_vec()),
    };
    s.roster_put("alice@x", &full).await.unwrap();
    assert_eq!(
        s.roster_item("alice@x", "bob@x").await.unwrap(),
        Some(full.clone())
    );
    let hidden = RosterItem {
        jid: "carol@x".into(),
        pending_in: true,
        ..RosterItem::default()
    };
    s.roster_put("alice@x", &hidden).await.unwrap();
    let (_, items) = s.roster("alice@x").await.unwrap();
    assert_eq!(items, vec![full.clone(), hidden.clone()]);

    // Replace: fields and groups are overwritten, not merged.
    let replaced = RosterItem {
        name: None,
        subscription: Subscription::To,
        groups: vec!["Only".into()],
        pending_in_stanza: None,
        ..full
    };
    s.roster_put("alice@x", &replaced).await.unwrap();
    assert_eq!(
        s.roster_item("alice@x", "bob@x").await.unwrap(),
        Some(replaced)
    );
    assert_eq!(s.roster_item("alice@x", "nobody@x").await.unwrap(), None);
}

#[tokio::test]
async fn roster_versions_strictly_increase() {
    let (s, _g) = test_store().await;
    assert_eq!(s.roster("alice@x").await.unwrap(), (0, vec![]));
    let mut last = 0;
    for step in 0..10 {
        let v = if step % 3 == 2 {
            s.roster_remove("alice@x", &format!("c{}@x", step - 1))
                .await
                .unwrap()
        } else {
            s.roster_put("alice@x", &item(&format!("c{step}@x")))
                .await
                .unwrap()
        };
        assert!(v > last, "version {v} after {last}");
        assert_eq!(s.roster("alice@x").await.unwrap().0, v);
        last = v;
    }
    // Removing a missing item: NotFound, version unchanged.
    assert_eq!(
        s.roster_remove("alice@x", "nobody@x").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.roster("alice@x").await.unwrap().0, last);
    // Versions survive account deletion and re-creation without repeating.
    s.create_account("alice@x", b"c").await.unwrap();
    s.delete_account("alice@x").await.unwrap();
    let v = s.roster_put("alice@x", &item("z@x")).await.unwrap();
    assert!(v > last);
}

#[tokio::test]
async fn roster_is_per_owner() {
    let (s, _g) = test_store().await;
    s.roster_put("alice@x", &item("bob@x")).await.unwrap();
    s.roster_put("bob@x", &item("alice@x")).await.unwrap();
    let (_, a) = s.roster("alice@x").await.unwrap();
    assert_eq!(a, vec![item("bob@x")]);
    assert_eq!(s.roster_item("bob@x", "bob@x").await.unwrap(), None);
    s.roster_remove("alice@x", "bob@x").await.unwrap();
    assert_eq!(s.roster("bob@x").await.unwrap().1, vec![item("alice@x")]);
}

#[tokio::test]
async fn subscription_strings() {
    for sub in [
        Subscription::None,
        Subscription::To,
        Subscription::From,
        Subscription::Both,
    ] {
        assert_eq!(Subscription::parse(sub.as_str()), Some(sub));
    }
    assert_eq!(Subscription::parse("remove"), None);
    assert_eq!(Subscription::default(), Subscription::None);
}

#[tokio::test]
async fn vcard_set_get_replace() {
    let (s, _g) = test_store().await;
    assert_eq!(s.vcard("alice@x").await.unwrap(), None);
    s.set_vcard("alice@x", b"<vCard><FN>A</FN></vCard>")
        .await
        .unwrap();
    assert_eq!(
        s.vcard("alice@x").await.unwrap().as_deref(),
        Some(&b"<vCard><FN>A</FN></vCard>"[..])
    );
    s.set_vcard("alice@x", b"<vCard/>").await.unwrap();
    assert_eq!(
        s.vcard("alice@x").await.unwrap().as_deref(),
        Some(&b"<vCard/>"[..])
    );
    assert_eq!(s.vcard("bob@x").await.unwrap(), None);
}

#[tokio::test]
async fn last_activity_set_get() {
    let (s, _g) = test_store().await;
    assert_eq!(s.last_activity("alice@x").await.unwrap(), None);
    s.set_last_activity("alice@x", 1_700_000_000, "gone fishing")
        .await
        .unwrap();
    assert_eq!(
        s.last_activity("alice@x").await.unwrap(),
        Some((1_700_000_000, "gone fishing".into()))
    );
    s.set_last_activity("alice@x", 1_700_000_100, "")
        .await
        .unwrap();
    assert_eq!(
        s.last_activity("alice@x").await.unwrap(),
        Some((1_700_000_100, String::new()))
    );
    assert_eq!(s.last_activity("bob@x").await.unwrap(), None);
    assert!(matches!(
        s.set_last_activity("alice@x", u64::MAX, "").await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn kv_put_get_list_delete() {
    let (s, _g) = test_store().await;
    assert_eq!(s.kv_get("ns", "alice@x", "k").await.unwrap(), None);
    s.kv_put("ns", "alice@x", "b", b"2").await.unwrap();
    s.kv_put("ns", "alice@x", "a", b"1").await.unwrap();
    s.kv_put("ns", "alice@x", "a", b"one").await.unwrap();
    s.kv_put("other", "alice@x", "a", b"other-ns")
        .await
        .unwrap();
    s.kv_put("ns", "bob@x", "a", b"bob").await.unwrap();
    assert_eq!(
        s.kv_get("ns", "alice@x", "a").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(
        s.kv_list("ns", "alice@x").await.unwrap(),
        vec![
            ("a".to_string(), b"one".to_vec()),
            ("b".to_string(), b"2".to_vec())
        ]
    );
    s.kv_delete("ns", "alice@x", "a").await.unwrap();
    s.kv_delete("ns", "alice@x", "missing").await.unwrap();
    assert_eq!(s.kv_get("ns", "alice@x", "a").await.unwrap(), None);
    assert_eq!(
        s.kv_get("other", "alice@x", "a").await.unwrap().as_deref(),
        Some(&b"other-ns"[..])
    );
    assert_eq!(
        s.kv_get("ns", "bob@x", "a").await.unwrap().as_deref(),
        Some(&b"bob"[..])
    );
    assert!(s.kv_list("ns", "carol@x").await.unwrap().is_empty());
}

#[tokio::test]
async fn kv_owners_lists_each_owner_of_a_namespace_once() {
    let (s, _g) = test_store().await;
    assert!(s.kv_owners("ns").await.unwrap().is_empty());
    s.kv_put("ns", "carol@x", "a", b"").await.unwrap();
    s.kv_put("ns", "alice@x", "a", b"").await.unwrap();
    s.kv_put("ns", "alice@x", "b", b"").await.unwrap();
    s.kv_put("other", "bob@x", "a", b"").await.unwrap();
    assert_eq!(
        s.kv_owners("ns").await.unwrap(),
        vec!["alice@x".to_string(), "carol@x".to_string()]
    );
    s.kv_delete("ns", "carol@x", "a").await.unwrap();
    assert_eq!(
        s.kv_owners("ns").await.unwrap(),
        vec!["alice@x".to_string()]
    );
    s.create_account("alice@x", b"c").await.unwrap();
    s.delete_account("alice@x").await.unwrap();
    assert!(s.kv_owners("ns").await.unwrap().is_empty());
    assert_eq!(
        s.kv_owners("other").await.unwrap(),
        vec!["bob@x".to_string()]
    );
}

#[tokio::test]
async fn failed_write_does_not_affect_batch_neighbours() {
    let (s, _g) = test_store().await;
    s.create_account("dup@x", b"c").await.unwrap();
    // Many concurrent writes; the duplicates fail alone.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                s.create_account("dup@x", b"x").await
            } else {
                s.create_account(&format!("u{i}@x"), b"x").await
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(r, Err(StoreError::AlreadyExists));
        } else {
            r.unwrap();
        }
    }
    assert_eq!(s.list_accounts().await.unwrap().len(), 101);
}

#[tokio::test]
async fn closed_store_refuses_calls() {
    let (s, _g) = test_store().await;
    s.create_account("a@x", b"c").await.unwrap();
    let clone = s.clone();
    s.close().await.unwrap();
    s.close().await.unwrap(); // idempotent
    assert_eq!(
        clone.create_account("b@x", b"c").await,
        Err(StoreError::Closed)
    );
    assert_eq!(clone.account_exists("a@x").await, Err(StoreError::Closed));
    assert!(!StoreError::Closed.is_retryable());
    assert!(StoreError::Busy("locked".into()).is_retryable());
}
