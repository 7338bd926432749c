//! Durable delivery throughput with `[store] fsync` off and on, in one run
//! (the ratio is what counts; absolute numbers depend on the machine).
//! Not a pass/fail test: run it by hand, in release, and record the output
//! in BENCHMARKS.md:
//!
//!     cargo test --release -p natter-server --test throughput -- --ignored --nocapture

mod common;
use common::*;
use std::time::Instant;

const PAIRS: usize = 8;
const PER_SENDER: usize = 2000;
const WINDOW: usize = 100;
const SM: &str = "urn:xmpp:sm:3";

async fn run(fsync: bool) -> (f64, natter_store::StoreStats) {
    let srv = TestServer::start_with(|c| c.store.fsync = fsync).await;
    for i in 0..PAIRS {
        srv.add_user(&format!("s{i}"), "pw").await;
        srv.add_user(&format!("r{i}"), "pw").await;
    }
    let mut receivers = Vec::new();
    for i in 0..PAIRS {
        let mut r = Client::online(srv.addr, &format!("r{i}"), "pw", "r").await;
        r.send(format!("<enable xmlns='{SM}'/>")).await;
        r.expect("enabled", |s| s.name() == "enabled").await;
        r.handled = 0;
        receivers.push(tokio::spawn(async move {
            let mut got = 0;
            while got < PER_SENDER {
                let s = r.stanza().await;
                match s.name() {
                    "message" => got += 1,
                    "r" => r.send(format!("<a xmlns='{SM}' h='{}'/>", r.handled)).await,
                    _ => {}
                }
            }
            r.send(format!("<a xmlns='{SM}' h='{}'/>", r.handled)).await;
            r
        }));
    }
    let mut senders = Vec::new();
    for i in 0..PAIRS {
        let mut s = Client::online(srv.addr, &format!("s{i}"), "pw", "s").await;
        s.send(format!("<enable xmlns='{SM}'/>")).await;
        s.expect("enabled", |s| s.name() == "enabled").await;
        senders.push(s);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, mut s) in senders.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            while sent < PER_SENDER {
                let mut burst = String::new();
                for n in sent..sent + WINDOW {
                    burst.push_str(&format!("<message to='r{i}@localhost' type='chat' id='{n}'><body>message {n}</body></message>"));
                }
                burst.push_str(&format!("<r xmlns='{SM}'/>"));
                s.send(burst).await;
                sent += WINDOW;
                let want = sent.to_string();
                s.expect("ack", |st| st.name() == "a" && st.attr("h").as_deref() == Some(want.as_str())).await;
            }
            s
        }));
    }
    let mut keep = Vec::new();
    for t in tasks {
        keep.push(t.await.unwrap());
    }
    let mut keep_r = Vec::new();
    for r in receivers {
        keep_r.push(r.await.unwrap());
    }
    let secs = start.elapsed().as_secs_f64();
    let stats = srv.store.stats();
    drop((keep, keep_r));
    srv.stop().await;
    ((PAIRS * PER_SENDER) as f64 / secs, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn durable_delivery_fsync_off_and_on() {
    for fsync in [false, true, false, true] {
        let (rate, stats) = run(fsync).await;
        println!(
            "fsync={fsync}: {rate:.0} messages/s delivered and acked ({} store writes in {} commits, {:.1} writes/commit)",
            stats.writes,
            stats.commits,
            stats.writes as f64 / stats.commits.max(1) as f64
        );
    }
}
