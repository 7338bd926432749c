//! Queue inserts that wait for an acknowledgement (`ack_wait`): withdrawn
//! by a delete that comes in time, written otherwise, and never out of
//! order with the writes queued after them.

mod common;
use common::msg;

use std::path::Path;
use std::time::{Duration, Instant};

use natter_store::{Store, StoreConfig};

async fn open(path: &Path) -> Store {
    let store = Store::open(StoreConfig::sqlite(path)).await.expect("open");
    for j in ["a@x", "b@x"] {
        store.create_account(j, b"c").await.unwrap();
    }
    store
}

async fn seqs(store: &Store, owner: &str) -> Vec<u64> {
    let rows = store.offline_fetch(owner, 0, 100).await.unwrap();
    rows.into_iter().map(|(s, _)| s).collect()
}

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_delete_in_time_withdraws_the_insert() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("n.db")).await;
    let before = store.stats();
    // Waits an hour unless withdrawn: the test would hang if it were not.
    let (seq, done) = store.offline_push_if_account("a@x", msg(1), LONG);
    store.offline_delete("a@x", &[seq]).await.unwrap();
    assert_eq!(done.await.unwrap(), Some(seq), "resolves to its seq");
    assert_eq!(store.stats().withdrawn - before.withdrawn, 1);
    // Never written; a later write commits at once.
    let (next, done) = store.offline_push_if_account("a@x", msg(2), Duration::ZERO);
    assert_eq!(done.await.unwrap(), Some(next));
    assert_eq!(seqs(&store, "a@x").await, vec![next]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn another_owners_delete_withdraws_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("n.db")).await;
    let wait = Duration::from_millis(50);
    let (seq, done) = store.offline_push_if_account("a@x", msg(1), wait);
    store.offline_delete("b@x", &[seq]).await.unwrap();
    let t = Instant::now();
    assert_eq!(done.await.unwrap(), Some(seq));
    assert_eq!(store.stats().withdrawn, 0);
    assert_eq!(seqs(&store, "a@x").await, vec![seq]);
    assert!(t.elapsed() < Duration::from_secs(5));
    store.close().await.unwrap();
}

#[tokio::test]
async fn unacknowledged_inserts_are_written_after_their_wait_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("n.db")).await;
    let wait = Duration::from_millis(30);
    let t = Instant::now();
    let (held, held_done) = store.offline_push_if_account("a@x", msg(1), wait);
    // Queued after the held insert, for another account, not held itself:
    // it still commits no earlier (the writer keeps the order).
    let (after, after_done) = store.offline_push_if_account("b@x", msg(2), Duration::ZERO);
    assert_eq!(after_done.await.unwrap(), Some(after));
    assert!(t.elapsed() >= wait, "{:?}", t.elapsed());
    assert_eq!(held_done.await.unwrap(), Some(held));
    assert_eq!(seqs(&store, "a@x").await, vec![held]);
    assert_eq!(seqs(&store, "b@x").await, vec![after]);
    // A delete after the write is an ordinary delete.
    store.offline_delete("a@x", &[held]).await.unwrap();
    assert!(seqs(&store, "a@x").await.is_empty());
    assert_eq!(store.stats().withdrawn, 0);
    store.close().await.unwrap();
}

#[tokio::test]
async fn close_writes_what_still_waits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let store = open(&path).await;
    let (seq, done) = store.offline_push_if_account("a@x", msg(1), LONG);
    let t = Instant::now();
    store.close().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "close did not wait out the hour"
    );
    assert_eq!(done.await.unwrap(), Some(seq));
    let store = Store::open(StoreConfig::sqlite(&path)).await.unwrap();
    assert_eq!(seqs(&store, "a@x").await, vec![seq]);
    // The seq counter moved past it.
    let (next, done) = store.offline_push_if_account("a@x", msg(2), Duration::ZERO);
    assert!(next > seq);
    done.await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_withdrawn_insert_for_no_account_is_not_an_error_later() {
    // The account check runs only if the insert is written; a withdrawn
    // one (its owner's session acknowledged it, so the owner exists) is
    // simply done.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("n.db")).await;
    let (seq, done) = store.offline_push_if_account("nobody@x", msg(1), LONG);
    store.offline_delete("nobody@x", &[seq]).await.unwrap();
    assert_eq!(done.await.unwrap(), Some(seq));
    let (_, done) = store.offline_push_if_account("nobody@x", msg(2), Duration::ZERO);
    assert_eq!(done.await.unwrap(), None, "written ones are checked");
    store.close().await.unwrap();
}

#[tokio::test]
async fn a_hurried_insert_is_written_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("n.db")).await;
    let (seq, done) = store.offline_push_if_account("a@x", msg(1), LONG);
    // Another owner's hurry changes nothing; the owner's does.
    store.offline_hurry("b@x", &[seq]);
    assert!(tokio::time::timeout(Duration::from_millis(100), async {
        while seqs(&store, "a@x").await.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .is_err());
    store.offline_hurry("a@x", &[seq]);
    assert_eq!(done.await.unwrap(), Some(seq));
    assert_eq!(seqs(&store, "a@x").await, vec![seq]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn more_held_inserts_than_a_batch_still_wait_for_their_acks() {
    // At a high message rate thousands of inserts wait for acks at once;
    // they must not be written early just because they are many.
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("n.db")).await;
    let before = store.stats();
    let mut pending = Vec::new();
    for i in 0..3000 {
        pending.push(store.offline_push_if_account("a@x", msg(i), LONG));
    }
    let seqs_held: Vec<u64> = pending.iter().map(|(s, _)| *s).collect();
    // Time for the writer to take them all in (it would write them early
    // then, if it were going to); the outcome does not depend on it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.offline_delete("a@x", &seqs_held).await.unwrap();
    for (seq, done) in pending {
        assert_eq!(done.await.unwrap(), Some(seq));
    }
    let after = store.stats();
    assert_eq!(after.withdrawn - before.withdrawn, 3000);
    assert!(seqs(&store, "a@x").await.is_empty());
    store.close().await.unwrap();
}
