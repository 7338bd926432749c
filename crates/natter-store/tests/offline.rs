//! The offline queue's behaviour every storage backend must show: order,
//! fetch and delete, per-owner queues, seqs never reused, finding a message
//! by sender and id, inserts only for accounts. The backend is chosen by
//! `NATTER_TEST_STORE` as in `conformance.rs`.

mod common;
use common::test_store;
use natter_store::{OfflineMessage, StoreError};
use std::time::Duration;

fn msg(from: &str, id: &str, body: &str) -> OfflineMessage {
    OfflineMessage {
        from: from.into(),
        stanza_id: id.into(),
        msg_id: format!("c{id}"),
        stamp_unix_ms: 1_700_000_000_000,
        stanza: format!("<message id='{id}'><body>{body}</body></message>").into_bytes(),
    }
}

#[tokio::test]
async fn offline_order_fetch_delete_count() {
    let (s, _g) = test_store().await;
    let mut seqs = Vec::new();
    for i in 0..10 {
        let seq = s
            .offline_push("alice@x", &msg("bob@x/r", &i.to_string(), "b"))
            .await
            .unwrap();
        if let Some(&prev) = seqs.last() {
            assert!(seq > prev);
        }
        seqs.push(seq);
    }
    assert_eq!(s.offline_count("alice@x").await.unwrap(), 10);
    s.offline_push("bob@x", &msg("alice@x/r", "x", "b"))
        .await
        .unwrap();
    assert_eq!(s.offline_total().await.unwrap(), 11);
    assert_eq!(s.offline_count("alice@x").await.unwrap(), 10);
    let all = s.offline_fetch("alice@x", 0, 100).await.unwrap();
    assert_eq!(all.iter().map(|(q, _)| *q).collect::<Vec<_>>(), seqs);
    for (i, (_, m)) in all.iter().enumerate() {
        assert_eq!(*m, msg("bob@x/r", &i.to_string(), "b"));
    }
    // Paging with after_seq + limit.
    let page1 = s.offline_fetch("alice@x", 0, 4).await.unwrap();
    assert_eq!(page1.len(), 4);
    let page2 = s.offline_fetch("alice@x", page1[3].0, 4).await.unwrap();
    assert_eq!(page2[0].0, seqs[4]);
    assert_eq!(page2.len(), 4);
    assert!(s.offline_fetch("alice@x", 0, 0).await.unwrap().is_empty());
    assert!(s
        .offline_fetch("alice@x", *seqs.last().unwrap(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .offline_fetch("alice@x", u64::MAX, 10)
        .await
        .unwrap()
        .is_empty());
    // Delete some (plus unknown seqs, ignored).
    s.offline_delete("alice@x", &[seqs[0], seqs[5], 999_999, u64::MAX])
        .await
        .unwrap();
    s.offline_delete("alice@x", &[]).await.unwrap();
    assert_eq!(s.offline_count("alice@x").await.unwrap(), 8);
    let left: Vec<u64> = s
        .offline_fetch("alice@x", 0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(q, _)| q)
        .collect();
    let expect: Vec<u64> = seqs
        .iter()
        .copied()
        .filter(|q| *q != seqs[0] && *q != seqs[5])
        .collect();
    assert_eq!(left, expect);
}

#[tokio::test]
async fn offline_is_per_owner() {
    let (s, _g) = test_store().await;
    let a = s
        .offline_push("alice@x", &msg("c@x", "1", "to alice"))
        .await
        .unwrap();
    let b = s
        .offline_push("bob@x", &msg("c@x", "2", "to bob"))
        .await
        .unwrap();
    assert!(b > a, "seq is store-wide increasing");
    assert_eq!(s.offline_count("alice@x").await.unwrap(), 1);
    let got = s.offline_fetch("bob@x", 0, 10).await.unwrap();
    assert_eq!(got, vec![(b, msg("c@x", "2", "to bob"))]);
    // Deleting another owner's seq does nothing.
    s.offline_delete("alice@x", &[b]).await.unwrap();
    assert_eq!(s.offline_count("bob@x").await.unwrap(), 1);
    assert_eq!(s.offline_count("nobody@x").await.unwrap(), 0);
}

#[tokio::test]
async fn offline_seq_not_reused_after_delete() {
    let (s, _g) = test_store().await;
    let a = s
        .offline_push("alice@x", &msg("c@x", "1", "x"))
        .await
        .unwrap();
    s.offline_delete("alice@x", &[a]).await.unwrap();
    let b = s
        .offline_push("alice@x", &msg("c@x", "2", "y"))
        .await
        .unwrap();
    assert!(b > a);
}

/// A message from `from` whose sender-assigned id is `msg_id`.
fn sent(from: &str, msg_id: &str) -> OfflineMessage {
    OfflineMessage {
        msg_id: msg_id.into(),
        ..msg(from, "sid", msg_id)
    }
}

#[tokio::test]
async fn offline_msg_id_round_trip() {
    let (s, _g) = test_store().await;
    let with = sent("bob@x/r", "abc-1 <&'\"> \u{e9}");
    let without = sent("bob@x/r", "");
    let a = s.offline_push("alice@x", &with).await.unwrap();
    let b = s.offline_push("alice@x", &without).await.unwrap();
    let got = s.offline_fetch("alice@x", 0, 10).await.unwrap();
    assert_eq!(got, vec![(a, with), (b, without)]);
    assert_eq!(got[1].1.msg_id, "");
}

#[tokio::test]
async fn offline_find_by_sender_and_msg_id() {
    let (s, _g) = test_store().await;
    let a = s
        .offline_push("alice@x", &sent("bob@x/phone", "m1"))
        .await
        .unwrap();
    let b = s
        .offline_push("alice@x", &sent("bob@x/laptop", "m2"))
        .await
        .unwrap();
    let bare = s
        .offline_push("alice@x", &sent("bob@x", "m3"))
        .await
        .unwrap();
    // Found: any resource of the sender, or the bare JID itself.
    assert_eq!(s.offline_find("alice@x", "bob@x", "m1").await, Ok(Some(a)));
    assert_eq!(s.offline_find("alice@x", "bob@x", "m2").await, Ok(Some(b)));
    assert_eq!(
        s.offline_find("alice@x", "bob@x", "m3").await,
        Ok(Some(bare))
    );
    // Not found: unknown id, empty id, id is case-sensitive.
    assert_eq!(s.offline_find("alice@x", "bob@x", "m9").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "bob@x", "M1").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "bob@x", "").await, Ok(None));
    // Other owner.
    assert_eq!(s.offline_find("carol@x", "bob@x", "m1").await, Ok(None));
    // Other sender, including JIDs that merely share a prefix.
    assert_eq!(s.offline_find("alice@x", "dave@x", "m1").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "bob@", "m1").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "bob@xx", "m1").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "ob@x", "m1").await, Ok(None));
    assert_eq!(
        s.offline_find("alice@x", "bob@x/phone", "m2").await,
        Ok(None)
    );
    // The sender's bare JID is not the stanza-id.
    assert_eq!(s.offline_find("alice@x", "bob@x", "sid").await, Ok(None));
    // After delete.
    s.offline_delete("alice@x", &[a]).await.unwrap();
    assert_eq!(s.offline_find("alice@x", "bob@x", "m1").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "bob@x", "m2").await, Ok(Some(b)));
}

#[tokio::test]
async fn offline_find_empty_msg_id_never_matches() {
    let (s, _g) = test_store().await;
    s.offline_push("alice@x", &sent("bob@x/r", ""))
        .await
        .unwrap();
    assert_eq!(s.offline_find("alice@x", "bob@x", "").await, Ok(None));
}

#[tokio::test]
async fn offline_find_lowest_seq_of_duplicates() {
    let (s, _g) = test_store().await;
    let first = s
        .offline_push("alice@x", &sent("bob@x/a", "dup"))
        .await
        .unwrap();
    let second = s
        .offline_push("alice@x", &sent("bob@x/b", "dup"))
        .await
        .unwrap();
    assert!(second > first);
    assert_eq!(
        s.offline_find("alice@x", "bob@x", "dup").await,
        Ok(Some(first))
    );
    s.offline_delete("alice@x", &[first]).await.unwrap();
    assert_eq!(
        s.offline_find("alice@x", "bob@x", "dup").await,
        Ok(Some(second))
    );
}

#[tokio::test]
async fn offline_find_jids_with_like_wildcards() {
    let (s, _g) = test_store().await;
    let under = s
        .offline_push("alice@x", &sent("b_b@x/r", "u"))
        .await
        .unwrap();
    let pct = s
        .offline_push("alice@x", &sent("b%b@x/r", "p"))
        .await
        .unwrap();
    let esc = s
        .offline_push("alice@x", &sent("b\\b@x/r", "e"))
        .await
        .unwrap();
    // A literal match works.
    assert_eq!(
        s.offline_find("alice@x", "b_b@x", "u").await,
        Ok(Some(under))
    );
    assert_eq!(s.offline_find("alice@x", "b%b@x", "p").await, Ok(Some(pct)));
    assert_eq!(
        s.offline_find("alice@x", "b\\b@x", "e").await,
        Ok(Some(esc))
    );
    // `_` and `%` do not act as wildcards, in either direction.
    assert_eq!(s.offline_find("alice@x", "bob@x", "u").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "b_b@x", "p").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "b%b@x", "u").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "b%", "p").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "%", "p").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "%", "u").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "b__@x", "u").await, Ok(None));
    assert_eq!(s.offline_find("alice@x", "b%@x", "p").await, Ok(None));
    // Nor does the sender's stored JID act as a pattern.
    s.offline_push("alice@x", &sent("%@x/r", "q"))
        .await
        .unwrap();
    assert_eq!(s.offline_find("alice@x", "bob@x", "q").await, Ok(None));
}

#[tokio::test]
async fn offline_push_if_account_only_for_accounts() {
    let (s, _g) = test_store().await;
    s.create_account("alice@x", b"c").await.unwrap();
    // Queued together (one group commit): a failing write among them, a
    // push to nobody, and pushes to alice, in call order.
    // The seqs are known before the commits (in call order).
    let (seq_a, a) =
        s.offline_push_if_account("alice@x", msg("bob@x/r", "1", "one"), Duration::ZERO);
    let dup = s.create_account("alice@x", b"again");
    let (_, nobody) =
        s.offline_push_if_account("nobody@x", msg("bob@x/r", "2", "lost"), Duration::ZERO);
    let (seq_b, b) =
        s.offline_push_if_account("alice@x", msg("bob@x/r", "3", "three"), Duration::ZERO);
    assert!(seq_b > seq_a);
    let (a, dup, nobody, b) = tokio::join!(a, dup, nobody, b);
    assert_eq!(dup, Err(StoreError::AlreadyExists));
    assert_eq!(nobody, Ok(None));
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!((a, b), (seq_a, seq_b));
    assert_eq!(s.offline_count("nobody@x").await.unwrap(), 0);
    let all = s.offline_fetch("alice@x", 0, 10).await.unwrap();
    assert_eq!(
        all,
        vec![
            (a, msg("bob@x/r", "1", "one")),
            (b, msg("bob@x/r", "3", "three"))
        ]
    );
    // Seqs are never reused, even after the newest entry is deleted.
    s.offline_delete("alice@x", &[a, b]).await.unwrap();
    let (seq_c, c) =
        s.offline_push_if_account("alice@x", msg("bob@x/r", "4", "four"), Duration::ZERO);
    let c = c.await.unwrap().unwrap();
    assert_eq!(c, seq_c);
    assert!(c > b);
    // A plain push takes the next seq too.
    let d = s
        .offline_push("alice@x", &msg("bob@x/r", "5", "five"))
        .await
        .unwrap();
    assert!(d > c);
    assert_eq!(
        s.credentials("alice@x").await.unwrap().as_deref(),
        Some(&b"c"[..])
    );
}
