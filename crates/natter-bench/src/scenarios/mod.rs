//! The scenarios. Each has a parent half (`run`: drives the workers, samples
//! the server, builds the JSON line) and a worker half (`worker`: holds the
//! connections).

mod idle;
mod login;
mod mam;
mod offline;
mod traffic;

use crate::conn::{Conn, Setup, Target};
use crate::pool::Ctl;
use crate::procfs::{self, Sample};
use crate::{Cmd, Common};
use anyhow::Result;
use serde_json::{json, Value};
use std::sync::Arc;

/// A worker process's view.
pub struct Worker {
    pub index: usize,
    pub count: usize,
    pub nofile: u64,
    /// Logins in progress at once while sessions are set up.
    pub concurrency: usize,
    pub t: Arc<Target>,
    pub ctl: Ctl,
}

/// Parent: runs the scenario and returns its JSON line.
pub fn run(cmd: &Cmd, args: &[String]) -> Result<Option<String>> {
    let v = match cmd {
        Cmd::Idle(a) => idle::run(a, args)?,
        Cmd::Login(a) => login::run(a, args)?,
        Cmd::Pairs(a) => traffic::run_pairs(a, args)?,
        Cmd::Rate(a) => traffic::run_rate(a, args)?,
        Cmd::Offline(a) => offline::run(a, args)?,
        Cmd::Mam(a) => mam::run(a, args)?,
    };
    Ok(Some(v.to_string()))
}

/// Worker: serves the parent's commands until "quit".
pub async fn worker(cmd: &Cmd, w: Worker) -> Result<()> {
    match cmd {
        Cmd::Idle(a) => idle::worker(a, w).await,
        Cmd::Login(a) => login::worker(a, w).await,
        Cmd::Pairs(a) => traffic::worker(&a.traffic, a.pairs, w).await,
        Cmd::Rate(a) => traffic::worker(&a.traffic, a.pairs, w).await,
        Cmd::Offline(a) => offline::worker(a, w).await,
        Cmd::Mam(a) => mam::worker(a, w).await,
    }
}

/// The fields every result line starts with.
pub fn header(scenario: &str, c: &Common, workers: usize) -> Value {
    json!({
        "scenario": scenario,
        "server": c.label,
        "host": c.host,
        "port": c.port,
        "mech": c.mech.name(),
        "tls": c.tls,
        "sm": !c.no_sm,
        "workers": workers,
        "runtime": format!("{:?}", c.runtime).to_lowercase(),
    })
}

/// Server CPU seconds between two samples (None without --server-pid).
pub fn cpu_between(a: Option<Sample>, b: Option<Sample>) -> Option<f64> {
    Some(b?.cpu_secs - a?.cpu_secs)
}

/// Generator CPU seconds: this process plus every worker's answer `"cpu"`.
pub fn generator_cpu(answers: &[Value]) -> f64 {
    procfs::self_cpu_secs() + crate::pool::sum(answers, "cpu")
}

pub fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

/// Logs in the accounts `(connection index, account number)` with at most
/// `concurrency` logins in progress; returns the sessions in input order
/// (`None` for failures, the first errors are logged).
pub async fn open_many(
    t: &Arc<Target>,
    who: Vec<(usize, usize)>,
    setup: Setup,
    concurrency: usize,
) -> Vec<Option<Conn>> {
    let mut out: Vec<Option<Conn>> = (0..who.len()).map(|_| None).collect();
    let mut set = tokio::task::JoinSet::new();
    let mut failed = 0usize;
    let mut it = who.into_iter().enumerate();
    loop {
        while set.len() < concurrency.max(1) {
            let Some((slot, (idx, n))) = it.next() else {
                break;
            };
            let t = t.clone();
            set.spawn(async move { (slot, Conn::login(&t, idx, n, setup).await) });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        match done {
            Ok((slot, Ok(c))) => out[slot] = Some(c),
            Ok((_, Err(e))) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("natter-bench: {e:#}");
                }
            }
            Err(e) => eprintln!("natter-bench: login task: {e}"),
        }
    }
    if failed > 3 {
        eprintln!("natter-bench: … {failed} logins failed in all");
    }
    out
}
