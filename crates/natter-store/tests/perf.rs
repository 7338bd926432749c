//! Throughput measurements (not assertions). Run with
//! `cargo test -p natter-store --test perf -- --ignored --nocapture`.

use std::time::Instant;

use natter_store::{OfflineMessage, Store, StoreConfig};

fn msg(i: usize) -> OfflineMessage {
    OfflineMessage {
        from: "bob@localhost/phone".into(),
        stanza_id: format!("id{i}"),
        msg_id: format!("m{i}"),
        stamp_unix_ms: 1_700_000_000_000,
        stanza: vec![b'x'; 300],
    }
}

async fn pushes(fsync: bool, tasks: usize, per_task: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        fsync,
        ..StoreConfig::sqlite(dir.path().join("perf.db"))
    };
    let store = Store::open(cfg).await.unwrap();
    let t = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|n| {
            let s = store.clone();
            tokio::spawn(async move {
                let owner = format!("user{n}@localhost");
                for i in 0..per_task {
                    s.offline_push(&owner, &msg(i)).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let n = tasks * per_task;
    let stats = store.stats();
    eprintln!(
        "fsync={fsync:5} tasks={tasks:3}: {n} pushes in {secs:.2}s = {:.0}/s ({} commits)",
        n as f64 / secs,
        stats.commits
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn offline_push_throughput() {
    pushes(false, 1, 2000).await;
    pushes(false, 64, 200).await;
    pushes(true, 1, 300).await;
    pushes(true, 64, 100).await;
}
