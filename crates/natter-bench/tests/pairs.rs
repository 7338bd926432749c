//! Boots natterd in-process on port 0 and runs the `pairs` scenario of the
//! real binary against it for about a second.

use natter_sasl::StoredCredentials;
use natter_server::{Config, Server};
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_delivers_messages_to_natterd() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    cfg.listen.c2s = "127.0.0.1:0".parse().unwrap();
    cfg.listen.c2s_tls = "127.0.0.1:0".parse().unwrap();
    cfg.c2s.require_tls = false;
    let server = Server::bind(cfg).await.unwrap();
    let port = server.c2s_addr().port();
    let store = server.store();
    let creds = StoredCredentials::new("pw").unwrap().to_bytes();
    for i in 0..4 {
        store
            .create_account(&format!("user{i}@localhost"), &creds)
            .await
            .unwrap();
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_natter-bench"))
            .args(["pairs", "--port", &port.to_string(), "--password", "pw"])
            .args(["--pairs", "2", "--window", "4", "--duration", "1"])
            .args([
                "--warmup-secs",
                "0",
                "--label",
                "natterd-test",
                "--max-secs",
                "60",
            ])
            .args(["--mech", "scram-sha-256"])
            .args(["--server-pid", &std::process::id().to_string()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "natter-bench failed: {stderr}");
    let line = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
    eprintln!("{v}");
    assert_eq!(v["scenario"], "pairs");
    assert_eq!(v["server"], "natterd-test");
    assert!(v["delivered"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["msgs_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["missing"].as_f64().unwrap(), 0.0, "{v}");
    assert_eq!(v["errors"].as_f64().unwrap(), 0.0, "{v}");
    assert!(v["latency_us"]["p99"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["server_cpu_secs"].as_f64().is_some(), "{v}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("server stops")
        .unwrap()
        .unwrap();
}
