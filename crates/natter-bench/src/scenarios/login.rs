//! `login`: full logins (connect, SASL, bind, close) per second.
//!
//! Commands: `go` (run this worker's share; answer counts and the login-time
//! histogram), `quit`.

use super::{cpu_between, generator_cpu, header, round, Worker};
use crate::conn::{Conn, Setup};
use crate::pool::Pool;
use crate::stats::Histogram;
use crate::{procfs, Login};
use anyhow::Result;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn run(a: &Login, args: &[String]) -> Result<Value> {
    let c = &a.common;
    let mut pool = Pool::spawn(c.workers.max(1), args, c.max_secs)?;
    let before = procfs::maybe_sample(c.server_pid);
    let t0 = Instant::now();
    let answers = pool.ask("go")?;
    let secs = t0.elapsed().as_secs_f64();
    let after = procfs::maybe_sample(c.server_pid);
    let ok = crate::pool::sum(&answers, "ok");
    let failed = crate::pool::sum(&answers, "failed");
    let mut hist = Histogram::default();
    for a in &answers {
        hist.merge(&Histogram::from_json(&a["latency"]));
    }
    let mut v = header("login", c, pool.len());
    let last = pool.finish()?;
    v["count"] = a.count.into();
    v["concurrency"] = a.concurrency.into();
    v["ok"] = ok.into();
    v["failed"] = failed.into();
    v["secs"] = round(secs, 3).into();
    v["logins_per_sec"] = round(ok / secs, 1).into();
    v["login_latency_us"] = hist.summary_us();
    if let Some(cpu) = cpu_between(before, after) {
        v["server_cpu_secs"] = round(cpu, 2).into();
        v["server_cpu_ms_per_login"] = round(cpu * 1000.0 / ok.max(1.0), 3).into();
    }
    v["generator_cpu_secs"] = round(generator_cpu(&last), 2).into();
    Ok(v)
}

pub async fn worker(a: &Login, mut w: Worker) -> Result<()> {
    let users = a.users.unwrap_or(a.count.min(1000)).max(1);
    let mine: Vec<usize> = crate::pool::share(a.count, w.index, w.count).collect();
    let conc = a.concurrency.div_ceil(w.count).max(1);
    loop {
        match w.ctl.recv().await?.as_str() {
            "go" => {
                let next = Arc::new(AtomicUsize::new(0));
                let mine = Arc::new(mine.clone());
                let hist = Arc::new(Mutex::new(Histogram::default()));
                let failed = Arc::new(AtomicUsize::new(0));
                let mut set = tokio::task::JoinSet::new();
                for _ in 0..conc {
                    let (t, next, mine, hist, failed) = (
                        w.t.clone(),
                        next.clone(),
                        mine.clone(),
                        hist.clone(),
                        failed.clone(),
                    );
                    set.spawn(async move {
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&i) = mine.get(k) else { return };
                            let t0 = Instant::now();
                            let setup = Setup {
                                sm: false,
                                presence: false,
                                wait: false,
                            };
                            match Conn::login(&t, i, i % users, setup).await {
                                Ok(c) => {
                                    let ns = t0.elapsed().as_nanos() as u64;
                                    hist.lock().unwrap().record(ns);
                                    c.close(Duration::from_secs(5)).await;
                                }
                                Err(e) => {
                                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                                        eprintln!("natter-bench: {e:#}");
                                    }
                                }
                            }
                        }
                    });
                }
                while set.join_next().await.is_some() {}
                let h = hist.lock().unwrap();
                w.ctl.send(json!({
                    "ok": h.count(),
                    "failed": failed.load(Ordering::Relaxed),
                    "latency": h.to_json(),
                }));
            }
            _ => {
                w.ctl.send(json!({}));
                return Ok(());
            }
        }
    }
}
