//! SQLite-specific durability and concurrency tests: reopen after close,
//! `kill -9` of a writing process, two handles (two "processes") on one
//! file, group commit batching, migrations.

mod common;
use common::msg;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use natter_store::{Store, StoreConfig, StoreError};

async fn open(path: &Path) -> Store {
    Store::open(StoreConfig::sqlite(path)).await.expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let store = open(&path).await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let owner = format!("user{t}@x");
            let mut seqs = Vec::new();
            for i in 0..200 {
                seqs.push(s.offline_push(&owner, &msg(i)).await.unwrap());
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    store.close().await.unwrap();
    drop(store);

    let store = open(&path).await;
    for t in 0..8 {
        let owner = format!("user{t}@x");
        assert_eq!(store.offline_count(&owner).await.unwrap(), 200);
        let got = store.offline_fetch(&owner, 0, 1000).await.unwrap();
        // Per-owner order is insertion order.
        for (i, (_, m)) in got.iter().enumerate() {
            assert_eq!(*m, msg(i));
        }
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 1600, "seqs are unique");
    store.close().await.unwrap();
}

#[tokio::test]
async fn queue_seqs_continue_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let store = open(&path).await;
    store.create_account("a@x", b"c").await.unwrap();
    let first = store.offline_push("a@x", &msg(1)).await.unwrap();
    let (newest, done) = store.offline_push_if_account("a@x", msg(2), Duration::ZERO);
    assert_eq!(done.await.unwrap(), Some(newest));
    // The newest entry is gone before the restart: its seq stays used.
    store.offline_delete("a@x", &[newest]).await.unwrap();
    store.close().await.unwrap();
    let store = open(&path).await;
    let (next, done) = store.offline_push_if_account("a@x", msg(3), Duration::ZERO);
    assert!(next > newest && newest > first, "{first} {newest} {next}");
    assert_eq!(done.await.unwrap(), Some(next));
    let seqs: Vec<u64> = store
        .offline_fetch("a@x", 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(seqs, vec![first, next]);
    store.close().await.unwrap();
}

#[tokio::test]
async fn dropped_without_close_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    {
        let store = open(&path).await;
        store.create_account("a@x", b"c").await.unwrap();
    }
    let store = open(&path).await;
    assert!(store.account_exists("a@x").await.unwrap());
}

/// The child half of [`acknowledged_writes_survive_kill_9`]: when started
/// with `NATTER_KILL9_DB` set, pushes messages forever, printing `ACK n`
/// after each `Ok`. Otherwise does nothing.
#[tokio::test]
async fn kill9_child() {
    let Ok(path) = std::env::var("NATTER_KILL9_DB") else {
        return;
    };
    let store = open(Path::new(&path)).await;
    let mut tasks = Vec::new();
    for t in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = t * 1_000_000 + i;
                s.offline_push("victim@x", &msg(id)).await.unwrap();
                println!("ACK {id}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_child", "--nocapture", "--test-threads=1"])
        .env("NATTER_KILL9_DB", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 2000 {
        let line = lines.next().expect("child output").unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.parse::<usize>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let store = open(&path).await;
    let stored: std::collections::HashSet<String> = store
        .offline_fetch("victim@x", 0, usize::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, m)| m.stanza_id)
        .collect();
    for id in acked {
        assert!(stored.contains(&format!("m{id}")), "acked m{id} lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_handles_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Open both at once: concurrent migration of a fresh file.
    let (a, b) = tokio::join!(open(&path), open(&path));
    let mut tasks = Vec::new();
    for (n, s) in [(0, a.clone()), (1, b.clone())] {
        for t in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..100 {
                    s.create_account(&format!("h{n}t{t}u{i}@x"), b"c").await?;
                }
                Ok::<_, StoreError>(())
            }));
        }
    }
    // A bulk import from one handle while the other writes.
    let bulk: Vec<_> = (0..5000)
        .map(|i| (format!("bulk{i}@x"), b"c".to_vec()))
        .collect();
    assert_eq!(b.create_accounts(bulk).await.unwrap(), 5000);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Each sees the other's writes.
    assert!(a.account_exists("h1t3u99@x").await.unwrap());
    assert!(b.account_exists("h0t0u0@x").await.unwrap());
    assert_eq!(a.list_accounts().await.unwrap().len(), 800 + 5000);
    a.close().await.unwrap();
    b.create_account("after@x", b"c").await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_batches() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        fsync: true,
        ..StoreConfig::sqlite(dir.path().join("n.db"))
    };
    let store = Store::open(cfg).await.unwrap();
    let before = store.stats();
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.offline_push("alice@x", &msg(i)).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let after = store.stats();
    let writes = after.writes - before.writes;
    let commits = after.commits - before.commits;
    eprintln!("1000 concurrent writes: {commits} commits");
    assert_eq!(writes, 1000);
    assert!(
        commits < writes / 2,
        "{commits} commits for {writes} writes"
    );
    assert_eq!(store.offline_count("alice@x").await.unwrap(), 1000);
}

#[tokio::test]
async fn migrations_are_recorded_and_newer_schema_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    open(&path).await.close().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(v >= 1);
    // Reopening an up-to-date database is fine.
    open(&path).await.close().await.unwrap();
    conn.execute_batch("PRAGMA user_version = 9999").unwrap();
    drop(conn);
    match Store::open(StoreConfig::sqlite(&path)).await {
        Err(StoreError::SchemaTooNew { found: 9999, .. }) => {}
        other => panic!("expected SchemaTooNew, got {:?}", other.map(|_| ())),
    }
}
