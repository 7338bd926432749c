//! natterd killed with SIGKILL again and again while XEP-0198 clients send
//! and receive (DESIGN.md principle 4, "Delivery is a contract"):
//!
//! * every message a sender got an `<a h/>` for reaches the recipient;
//! * a message the recipient acknowledged (and whose acknowledgement the
//!   server confirmed, see below) never comes back;
//! * within one recipient connection each sender's messages arrive in order;
//! * a redelivered message keeps its XEP-0359 stanza-id and has a XEP-0203 delay.
//!
//! The recipient knows its `<a h/>` was processed when the answer to the
//! `<r/>` it sends right behind it arrives: the server handles a stream in
//! order and removes acknowledged entries from the queue (commit included)
//! before it reads on. An `<a h/>` still on the wire when the server dies is
//! not processed, so that message legitimately comes back; those are counted
//! apart (`redelivered_after_unconfirmed_ack`).
//!
//! A sender resends after a reconnection what it has no `<a h/>` for, with the
//! same id; the server queues such a resend as a new message (a new
//! stanza-id), so the recipient may see an id twice with two stanza-ids
//! (`resent_copies`, allowed). A stanza-id seen twice is a redelivery of one
//! queue entry.
//!
//! The seed of the kill timings is printed; `CRASH_SM_SEED=<n>` replays it.

mod clients;
mod conn;
mod ledger;
mod process;

use clients::*;
use conn::*;
use ledger::*;
use process::*;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "pw";
pub const SENDERS: usize = 3;
/// Messages sent in one go, followed by an `<r/>`.
pub const BURST: usize = 20;
/// Bursts a sender may have sent and not yet seen answered.
pub const MAX_OUTSTANDING: usize = 3;
/// Pause between a sender's bursts.
pub const PACE: Duration = Duration::from_millis(30);
/// New messages per sender at most (it also stops when the kills are done).
pub const MAX_PER_SENDER: u32 = 5000;
/// The recipient acknowledges by itself after this many stanzas.
pub const RCPT_ACK_EVERY: usize = 10;
pub const KILL_ROUNDS: usize = 6;
/// Any single read or write of a client.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client keeps trying to log in again after losing its connection.
pub const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How long the recipient may take to get every acknowledged message at the end.
pub const CATCH_UP: Duration = Duration::from_secs(60);
/// The whole test.
pub const OVERALL: Duration = Duration::from_secs(240);

// ---------------------------------------------------------------------------
// natterd as a child process (same approach as crash.rs).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_stream_management_loses_and_duplicates_nothing_acked() {
    let started = Instant::now();
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
    for u in ["sender0", "sender1", "sender2", "rcpt"] {
        let out = natterd(&config, &["user", "add", u, "--password", PASSWORD]);
        assert!(out.status.success(), "user add {u}: {out:?}");
    }
    let server = Arc::new(Natterd::start(config.clone()));
    let seed = std::env::var("CRASH_SM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("seed {seed} (CRASH_SM_SEED={seed} replays the kill timings)");

    let sh = Arc::new(Shared {
        addr,
        ledger: Mutex::new(Ledger::default()),
        bugs: Bugs::default(),
        stop_senders: AtomicBool::new(false),
        stop_recipient: AtomicBool::new(false),
        logins: (0..=SENDERS).map(|_| AtomicU32::new(0)).collect(),
        finished: (0..=SENDERS).map(|_| AtomicBool::new(false)).collect(),
    });

    let body = {
        let sh = sh.clone();
        let server = server.clone();
        async move {
            let rcpt = tokio::spawn(recipient(sh.clone()));
            let senders: Vec<_> = (0..SENDERS)
                .map(|k| tokio::spawn(sender(k, sh.clone())))
                .collect();
            let mut rng = Rng(seed);
            for round in 1..=KILL_ROUNDS {
                // Everyone still at work is (back) online before the next kill.
                let pause = Duration::from_millis(rng.between(200, 1500));
                tokio::time::sleep(pause).await;
                let (sent, delivered) = {
                    let l = sh.ledger.lock().unwrap();
                    (l.sender_acked.len(), l.receptions.len())
                };
                let logins: Vec<u32> = sh.logins.iter().map(|l| l.load(Ordering::SeqCst)).collect();
                {
                    let server = server.clone();
                    tokio::task::spawn_blocking(move || {
                        server.kill9();
                        server.restart();
                    })
                    .await
                    .unwrap();
                }
                eprintln!(
                    "kill round {round}: SIGKILL after {pause:?} (acked so far {sent}, received {delivered}); restarted"
                );
                // Wait until every client still at work has logged in again.
                let deadline = Instant::now() + RECONNECT_FOR;
                loop {
                    let all_back = (0..=SENDERS).all(|i| {
                        sh.finished[i].load(Ordering::SeqCst)
                            || sh.logins[i].load(Ordering::SeqCst) > logins[i]
                    });
                    if all_back {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "clients did not come back after round {round}"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            sh.stop_senders.store(true, Ordering::SeqCst);
            let mut resent = 0;
            for s in senders {
                resent += s.await.expect("sender task");
            }
            // The recipient catches up with everything the senders had acked.
            let deadline = Instant::now() + CATCH_UP;
            loop {
                let missing = {
                    let l = sh.ledger.lock().unwrap();
                    l.sender_acked
                        .iter()
                        .filter(|id| !l.received_ids.contains(id))
                        .count()
                };
                if missing == 0 {
                    break;
                }
                if Instant::now() > deadline {
                    eprintln!("{missing} acked messages still missing after {CATCH_UP:?}");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            sh.stop_recipient.store(true, Ordering::SeqCst);
            rcpt.await.expect("recipient task");
            let left = leftovers(sh.addr, &sh.bugs).await;
            (resent, left)
        }
    };
    let (resent, left) = match tokio::time::timeout(OVERALL, body).await {
        Ok(r) => r,
        Err(_) => panic!("the test did not finish within {OVERALL:?} (seed {seed})"),
    };
    let status = tokio::task::spawn_blocking({
        let server = server.clone();
        move || server.terminate()
    })
    .await
    .unwrap();
    assert!(
        status.success(),
        "natterd exit status after SIGTERM: {status}"
    );

    // ---- The verdict.
    let l = sh.ledger.lock().unwrap();
    let mut lost: Vec<MsgId> = l
        .sender_acked
        .iter()
        .filter(|id| !l.received_ids.contains(id))
        .copied()
        .collect();
    lost.sort();
    let mut sids_of: HashMap<MsgId, HashSet<&str>> = HashMap::new();
    let mut first_seen: HashSet<MsgId> = HashSet::new();
    // (epoch, sender) -> last first-time n.
    let mut last_n: HashMap<(u32, usize), u32> = HashMap::new();
    let (mut duplicated_after_ack, mut redelivered_unacked, mut redelivered_unconfirmed) =
        (0, 0, 0);
    let (mut out_of_order, mut resent_copies, mut undelayed_redelivery, mut same_conn_dup) =
        (Vec::new(), 0, 0, 0);
    for r in &l.receptions {
        match r.copy {
            CopyKind::First => {}
            CopyKind::RedeliveredUnacked => redelivered_unacked += 1,
            CopyKind::AfterUnconfirmedAck => redelivered_unconfirmed += 1,
            CopyKind::DuplicatedAfterAck => duplicated_after_ack += 1,
        }
        if r.same_conn {
            same_conn_dup += 1;
        } else if r.copy != CopyKind::First && !r.delayed {
            undelayed_redelivery += 1;
        }
        let copies = sids_of.entry(r.id).or_default();
        if copies.insert(r.sid.as_str()) && copies.len() > 1 {
            resent_copies += 1;
        }
        if first_seen.insert(r.id) {
            if let Some(&prev) = last_n.get(&(r.epoch, r.id.sender)) {
                if r.id.n <= prev {
                    out_of_order.push(format!(
                        "connection {}: s{}-{} after s{}-{}",
                        r.epoch, r.id.sender, r.id.n, r.id.sender, prev
                    ));
                }
            }
            last_n.insert((r.epoch, r.id.sender), r.id.n);
        }
    }
    let more_copies_than_sends: Vec<String> = sids_of
        .iter()
        .filter(|(id, sids)| sids.len() as u32 > l.sends.get(id).copied().unwrap_or(0))
        .map(|(id, sids)| format!("s{}-{}: {} stanza-ids", id.sender, id.n, sids.len()))
        .collect();
    println!(
        "acked={} delivered={} lost={} duplicated_after_ack={} redelivered_unacked={} \
         redelivered_after_unconfirmed_ack={} same_connection_dups={same_conn_dup} resent_copies={} sender_resends={} bounced={} \
         leftover_in_queue={} kill_rounds={KILL_ROUNDS} elapsed={:?}",
        l.sender_acked.len(),
        l.receptions.len(),
        lost.len(),
        duplicated_after_ack,
        redelivered_unacked,
        redelivered_unconfirmed,
        resent_copies,
        resent,
        l.bounced.len(),
        left.len(),
        started.elapsed(),
    );
    let bugs = sh.bugs.0.lock().unwrap();
    assert!(bugs.is_empty(), "protocol anomalies: {bugs:#?}");
    assert!(
        lost.is_empty(),
        "{} acked messages never arrived (seed {seed}), e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    assert_eq!(
        duplicated_after_ack, 0,
        "confirmed-acked messages came back (seed {seed}); same connection: {:#?}",
        l.same_conn_details
    );
    assert_eq!(
        same_conn_dup, 0,
        "a queue entry arrived twice on one connection (seed {seed}): {:#?}",
        l.same_conn_details
    );
    assert!(
        out_of_order.is_empty(),
        "out of order (seed {seed}): {:?}",
        &out_of_order[..out_of_order.len().min(20)]
    );
    assert_eq!(
        undelayed_redelivery, 0,
        "redelivered without a XEP-0203 delay (seed {seed})"
    );
    assert!(
        more_copies_than_sends.is_empty(),
        "more copies than sends (seed {seed}): {more_copies_than_sends:?}"
    );
    assert!(l.bounced.is_empty(), "messages bounced: {:?}", l.bounced);
    assert!(
        left.is_empty(),
        "still queued after the final ack: {left:?}"
    );
    assert!(
        l.sender_acked.len() > 100,
        "too little traffic to mean anything"
    );
}
