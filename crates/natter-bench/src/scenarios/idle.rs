//! `idle`: hold N available sessions and report the server's memory per session.
//!
//! Commands: `target N` (grow to this worker's share of N sessions; answer
//! `{"sessions","failed","dropped"}`), `quit`.

use super::{cpu_between, generator_cpu, header, open_many, round, Worker};
use crate::conn::{Conn, Setup};
use crate::pool::{share, Pool};
use crate::{procfs, Idle};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn run(a: &Idle, args: &[String]) -> Result<Value> {
    let c = &a.common;
    let mut sessions = a.sessions.clone();
    sessions.sort_unstable();
    let base = procfs::maybe_sample(c.server_pid);
    let mut pool = Pool::spawn(c.workers.max(1), args, c.max_secs)?;
    let mut steps = Vec::new();
    let mut last = Vec::new();
    for &n in &sessions {
        let t0 = std::time::Instant::now();
        let answers = pool.ask(&format!("target {n}"))?;
        let setup_secs = t0.elapsed().as_secs_f64();
        let held = crate::pool::sum(&answers, "sessions") as u64;
        let failed = crate::pool::sum(&answers, "failed") as u64;
        eprintln!("natter-bench: idle: {held} sessions ({failed} failed) in {setup_secs:.1} s");
        std::thread::sleep(Duration::from_secs_f64(a.settle_secs));
        let s = procfs::maybe_sample(c.server_pid);
        let answers2 = pool.ask("status")?;
        let dropped = crate::pool::sum(&answers2, "dropped") as u64;
        let mut step = json!({
            "sessions": held,
            "requested": n,
            "failed": failed,
            "dropped": dropped,
            "setup_secs": round(setup_secs, 2),
        });
        if let (Some(b), Some(s)) = (base, s) {
            let per =
                |now: u64, then: u64| round((now as f64 - then as f64) / (held.max(1)) as f64, 2);
            step["rss_kib"] = s.rss_kib.into();
            step["pss_kib"] = s.pss_kib.into();
            step["per_session_kib"] = per(s.rss_kib, b.rss_kib).into();
            step["per_session_pss_kib"] = per(s.pss_kib, b.pss_kib).into();
            step["server_cpu_secs"] = round(cpu_between(Some(b), Some(s)).unwrap_or(0.0), 2).into();
        }
        steps.push(step);
        last = answers2;
    }
    let mut v = header("idle", c, pool.len());
    let fin = pool.finish()?;
    if !fin.is_empty() {
        last = fin;
    }
    if let Some(b) = base {
        v["baseline_rss_kib"] = b.rss_kib.into();
        v["baseline_pss_kib"] = b.pss_kib.into();
    }
    v["steps"] = steps.into();
    v["generator_cpu_secs"] = round(generator_cpu(&last), 2).into();
    Ok(v)
}

pub async fn worker(_a: &Idle, mut w: Worker) -> Result<()> {
    let dropped = Arc::new(AtomicU64::new(0));
    let (quit_tx, quit_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    let mut have = 0usize; // accounts 0..have (all workers) are covered
    let mut failed = 0u64;
    let setup = Setup {
        sm: true,
        presence: true,
        wait: true,
    };
    loop {
        let cmd = w.ctl.recv().await?;
        let mut words = cmd.split_whitespace();
        match words.next() {
            Some("target") => {
                let n: usize = words.next().unwrap_or("0").parse()?;
                let who: Vec<(usize, usize)> = share(n, w.index, w.count)
                    .filter(|&i| i >= have)
                    .map(|i| (i, i))
                    .collect();
                have = have.max(n);
                let mine = tasks.len() + who.len();
                if mine as u64 + 64 > w.nofile {
                    bail!(
                        "{mine} sessions in one worker exceed the open-file limit {}: use more --workers",
                        w.nofile
                    );
                }
                for c in open_many(&w.t, who, setup, w.concurrency).await {
                    match c {
                        Some(c) => {
                            tasks.push(tokio::spawn(hold(c, quit_rx.clone(), dropped.clone())))
                        }
                        None => failed += 1,
                    }
                }
                w.ctl
                    .send(json!({"sessions": tasks.len(), "failed": failed}));
            }
            Some("status") => {
                w.ctl
                    .send(json!({"dropped": dropped.load(Ordering::Relaxed)}));
            }
            Some("quit") | None => {
                let _ = quit_tx.send(true);
                let all = futures_join(tasks);
                let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
                w.ctl.send(json!({"sessions": 0}));
                return Ok(());
            }
            Some(other) => bail!("unknown command {other}"),
        }
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// Keeps one session alive: answers `<r/>`, ignores the rest, closes on quit.
async fn hold(mut c: Conn, mut quit: tokio::sync::watch::Receiver<bool>, dropped: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            _ = quit.changed() => {
                c.close(Duration::from_secs(5)).await;
                return;
            }
            r = c.fill() => {
                let ok = matches!(r, Ok(n) if n > 0) && async {
                    while let Some(f) = c.next()? {
                        if f.kind == crate::conn::Kind::Close {
                            anyhow::bail!("closed");
                        }
                    }
                    c.flush().await
                }.await.is_ok();
                if !ok {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}
