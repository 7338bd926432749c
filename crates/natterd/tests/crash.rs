//! natterd as a real process: kill -9 loses nothing committed, and account
//! administration works while the server runs.

#[path = "../../natter-server/tests/common/mod.rs"]
mod common;
// The process helpers of the SIGKILL test with stream management (this test
// uses only some of them).
#[allow(dead_code)]
#[path = "crash_sm/process.rs"]
mod process;
use process::{free_port, natterd, start};

use common::Client;
use std::net::SocketAddr;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn kill9(child: &mut Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_committed_data_and_cli_works_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("natterd.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[listen]\nc2s = \"127.0.0.1:{port}\"\nc2s_tls = \"127.0.0.1:{}\"\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[c2s]\nrequire_tls = false\n",
            dir.path().join("data").display(),
            free_port()
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for u in ["alice", "bob"] {
        assert!(natterd(&config, &["user", "add", u, "--password", "pw"])
            .status
            .success());
    }
    let mut server = start(&config, 0);
    // Accounts added while the server runs can log in at once.
    assert!(
        natterd(&config, &["user", "add", "carol", "--password", "pw"])
            .status
            .success()
    );
    let _carol = Client::online(addr, "carol", "pw", "c").await;

    // Alice sends to offline Bob; the ping reply comes after every message
    // before it was committed to Bob's offline queue.
    let n = 300;
    let mut a = Client::online(addr, "alice", "pw", "a").await;
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(&format!(
            "<message to='bob@localhost' type='chat' id='c{i}'><body>{i}</body></message>"
        ));
    }
    a.send(batch).await;
    a.iq(
        "p",
        "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    a.send("<presence to='bob@localhost' type='subscribe'/>")
        .await;
    a.iq(
        "p2",
        "<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>",
    )
    .await;
    let started = Instant::now();
    kill9(&mut server);
    eprintln!("killed after {:?}", started.elapsed());
    drop(a);

    let mut server = start(&config, 0);
    let mut b = Client::online(addr, "bob", "pw", "b").await;
    let mut got = 0;
    let mut subscribe = false;
    while got < n || !subscribe {
        let s = b.stanza().await;
        match s.name() {
            "message" => {
                assert_eq!(
                    s.id().as_deref(),
                    Some(format!("c{got}").as_str()),
                    "in order"
                );
                assert!(s.has_child("delay", "urn:xmpp:delay"));
                got += 1;
            }
            "presence" if s.stanza_type().as_deref() == Some("subscribe") => subscribe = true,
            _ => {}
        }
    }
    println!(
        "committed {n}, delivered after kill -9: {got}, subscription request kept: {subscribe}"
    );
    // A clean stop after that exits 0.
    Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "natterd did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
