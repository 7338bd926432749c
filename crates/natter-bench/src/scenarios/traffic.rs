//! `pairs` and `rate`: senders (account 2i) message receivers (2i+1), which
//! answer every message with a XEP-0184 receipt. The body carries the step
//! number and the send time (ns since the worker's epoch; sender and
//! receiver of a pair live in the same worker), so latency is send→receive.
//!
//! Worker: logs in its pairs, answers `{"ready"}`, then serves
//! `step ID window W SECS` (each sender keeps W messages in flight: a new one
//! per receipt) and `step ID rate R SECS` (R messages/s over all pairs,
//! paced), each answered after a bounded drain, and `quit`.

use super::{cpu_between, generator_cpu, header, open_many, round, Worker};
use crate::conn::{Conn, Kind, Setup};
use crate::pool::{sum, Pool};
use crate::stats::Histogram;
use crate::{frame, procfs, Pairs, Rate, Traffic};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How long a step waits for messages still in flight after it ends.
const DRAIN: Duration = Duration::from_secs(3);

// ---- parent ---------------------------------------------------------------

struct StepResult {
    v: Value,
    in_window: f64,
    hist: Histogram,
}

fn step(pool: &mut Pool, pid: Option<u32>, id: u64, mode: &str, secs: f64) -> Result<StepResult> {
    let before = procfs::maybe_sample(pid);
    pool.broadcast(&format!("step {id} {mode} {secs}"))?;
    std::thread::sleep(Duration::from_secs_f64(secs));
    let after = procfs::maybe_sample(pid);
    let answers = pool.collect()?;
    let mut hist = Histogram::default();
    for a in &answers {
        hist.merge(&Histogram::from_json(&a["latency"]));
    }
    let in_window = sum(&answers, "in_window");
    let gen_cpu = sum(&answers, "cpu_window");
    let mut v = json!({
        "secs": secs,
        "sent": sum(&answers, "sent"),
        "received": sum(&answers, "received"),
        "missing": sum(&answers, "sent") - sum(&answers, "received"),
        "late": sum(&answers, "late"),
        "errors": sum(&answers, "errors"),
        "msgs_per_sec": round(in_window / secs, 1),
        "latency_us": hist.summary_us(),
        "generator_cpu_secs": round(gen_cpu, 3),
    });
    if let Some(cpu) = cpu_between(before, after) {
        v["server_cpu_secs"] = round(cpu, 3).into();
        v["msgs_per_server_cpu_sec"] = round(in_window / cpu.max(1e-9), 1).into();
        v["generator_cpu_per_server_cpu"] = round(gen_cpu / cpu.max(1e-9), 3).into();
    }
    Ok(StepResult { v, in_window, hist })
}

pub fn run_pairs(a: &Pairs, args: &[String]) -> Result<Value> {
    let c = &a.common;
    let mut pool = Pool::spawn(c.workers.max(1).min(a.pairs.max(1)), args, c.max_secs)?;
    let ready = pool.collect()?;
    eprintln!("natter-bench: pairs: {} pairs online", sum(&ready, "ready"));
    let mode = format!("window {}", a.window);
    if a.traffic.warmup_secs > 0.0 {
        step(&mut pool, None, 1, &mode, a.traffic.warmup_secs)?;
    }
    let r = step(&mut pool, c.server_pid, 2, &mode, a.duration)?;
    let mut v = header("pairs", c, pool.len());
    let last = pool.finish()?;
    v["pairs"] = a.pairs.into();
    v["window"] = a.window.into();
    v["duration"] = a.duration.into();
    v["body_bytes"] = a.traffic.body_bytes.into();
    for (k, x) in r.v.as_object().expect("object") {
        v[k] = x.clone();
    }
    v["delivered"] = r.in_window.into();
    v["total_generator_cpu_secs"] = round(generator_cpu(&last), 2).into();
    Ok(v)
}

pub fn run_rate(a: &Rate, args: &[String]) -> Result<Value> {
    let c = &a.common;
    let mut pool = Pool::spawn(c.workers.max(1).min(a.pairs.max(1)), args, c.max_secs)?;
    let ready = pool.collect()?;
    eprintln!("natter-bench: rate: {} pairs online", sum(&ready, "ready"));
    let mut rates = a.rates.clone();
    rates.sort_unstable();
    if a.traffic.warmup_secs > 0.0 {
        let first = format!("rate {}", rates.first().copied().unwrap_or(1000));
        step(&mut pool, None, 1, &first, a.traffic.warmup_secs)?;
    }
    let limit_us = a.p99_limit_ms * 1000.0;
    let mut steps = Vec::new();
    let mut best: Option<u64> = None;
    let mut stopped_early = false;
    for (i, &rate) in rates.iter().enumerate() {
        let r = step(
            &mut pool,
            c.server_pid,
            2 + i as u64,
            &format!("rate {rate}"),
            a.step_secs,
        )?;
        let target = rate as f64 * a.step_secs;
        let p99 = r.hist.quantile(0.99) as f64 / 1000.0;
        let kept_up = r.in_window >= 0.95 * target;
        let mut sv = r.v;
        sv["rate"] = rate.into();
        sv["kept_up"] = kept_up.into();
        eprintln!(
            "natter-bench: rate {rate}/s: delivered {}/s, p99 {p99:.0} µs",
            sv["msgs_per_sec"]
        );
        steps.push(sv);
        if kept_up && p99 < limit_us {
            best = Some(rate);
        }
        if r.in_window < 0.5 * target {
            stopped_early = i + 1 < rates.len();
            break;
        }
    }
    let mut v = header("rate", c, pool.len());
    let last = pool.finish()?;
    v["pairs"] = a.pairs.into();
    v["step_secs"] = a.step_secs.into();
    v["p99_limit_ms"] = a.p99_limit_ms.into();
    v["steps"] = steps.into();
    v["best_rate"] = best.into();
    v["stopped_early"] = stopped_early.into();
    v["total_generator_cpu_secs"] = round(generator_cpu(&last), 2).into();
    Ok(v)
}

// ---- worker ---------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Messages in flight per sender.
    Window(usize),
    /// Messages per second per sender.
    Rate(f64),
}

#[derive(Clone, Copy, Debug)]
enum StepCmd {
    Idle,
    Run {
        id: u64,
        mode: Mode,
        start: Instant,
        until: Instant,
    },
    Quit,
}

/// Counters of the current step, shared by the worker's tasks.
struct Shared {
    epoch: Instant,
    step: AtomicU64,
    until_ns: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    in_window: AtomicU64,
    late: AtomicU64,
    errors: AtomicU64,
    dropped: AtomicU64,
    hist: Mutex<Histogram>,
    pad: usize,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

pub async fn worker(tr: &Traffic, pairs: usize, mut w: Worker) -> Result<()> {
    let mine: Vec<usize> = crate::pool::share(pairs, w.index, w.count).collect();
    if (mine.len() * 2) as u64 + 64 > w.nofile {
        bail!(
            "{} connections exceed the open-file limit: use more --workers",
            mine.len() * 2
        );
    }
    let who: Vec<(usize, usize)> = mine
        .iter()
        .flat_map(|&p| [(2 * p, 2 * p), (2 * p + 1, 2 * p + 1)])
        .collect();
    let setup = Setup {
        sm: true,
        presence: true,
        wait: true,
    };
    let conns = open_many(&w.t, who, setup, w.concurrency).await;
    let failed = conns.iter().filter(|c| c.is_none()).count();
    if failed > 0 {
        bail!("{failed} of {} logins failed", conns.len());
    }
    let sh = Arc::new(Shared {
        epoch: Instant::now(),
        step: AtomicU64::new(0),
        until_ns: AtomicU64::new(0),
        sent: AtomicU64::new(0),
        received: AtomicU64::new(0),
        in_window: AtomicU64::new(0),
        late: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        hist: Mutex::new(Histogram::default()),
        pad: tr.body_bytes,
    });
    let (tx, rx) = watch::channel(StepCmd::Idle);
    let mut tasks = Vec::new();
    let mut it = conns.into_iter().flatten();
    for &p in &mine {
        let (s, r) = (it.next().expect("sender"), it.next().expect("receiver"));
        let peer = w.t.bare(2 * p + 1);
        // Pair p sends a 1/pairs share of a period later than pair 0, so
        // the aggregate rate is evenly spaced, not bursts of every sender
        // at once.
        let phase = p as f64 / pairs.max(1) as f64;
        tasks.push(tokio::spawn(sender(s, peer, phase, rx.clone(), sh.clone())));
        tasks.push(tokio::spawn(receiver(r, rx.clone(), sh.clone())));
    }
    w.ctl.send(json!({"ready": mine.len()}));
    loop {
        let cmd = w.ctl.recv().await?;
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            ["step", id, kind, value, secs] => {
                let id: u64 = id.parse()?;
                let secs: f64 = secs.parse()?;
                let mode = match *kind {
                    "window" => Mode::Window(value.parse()?),
                    "rate" => Mode::Rate(value.parse::<f64>()? / pairs.max(1) as f64),
                    _ => bail!("unknown mode {kind}"),
                };
                let ans = run_step(&sh, &tx, id, mode, secs).await;
                w.ctl.send(ans);
            }
            ["quit"] => {
                let _ = tx.send(StepCmd::Quit);
                let join = async {
                    for t in tasks {
                        let _ = t.await;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), join).await;
                w.ctl.send(json!({}));
                return Ok(());
            }
            _ => bail!("unknown command {cmd:?}"),
        }
    }
}

async fn run_step(
    sh: &Shared,
    tx: &watch::Sender<StepCmd>,
    id: u64,
    mode: Mode,
    secs: f64,
) -> Value {
    for c in [&sh.sent, &sh.received, &sh.in_window, &sh.late, &sh.errors] {
        c.store(0, Relaxed);
    }
    *sh.hist.lock().unwrap() = Histogram::default();
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    sh.until_ns
        .store((until - sh.epoch).as_nanos() as u64, Relaxed);
    sh.step.store(id, Relaxed);
    let cpu0 = procfs::self_cpu_secs();
    let _ = tx.send(StepCmd::Run {
        id,
        mode,
        start,
        until,
    });
    tokio::time::sleep_until(until).await;
    let cpu1 = procfs::self_cpu_secs();
    let drain_end = until + DRAIN;
    while sh.received.load(Relaxed) < sh.sent.load(Relaxed) && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = tx.send(StepCmd::Idle);
    let hist = std::mem::take(&mut *sh.hist.lock().unwrap());
    json!({
        "sent": sh.sent.load(Relaxed),
        "received": sh.received.load(Relaxed),
        "in_window": sh.in_window.load(Relaxed),
        "late": sh.late.load(Relaxed),
        "errors": sh.errors.load(Relaxed),
        "dropped": sh.dropped.load(Relaxed),
        "latency": hist.to_json(),
        "cpu_window": cpu1 - cpu0,
    })
}

fn push_message(c: &mut Conn, peer: &str, id: u64, n: u64, sh: &Shared) {
    let ts = sh.now_ns();
    let _ = write!(
        c.out,
        "<message to='{peer}' id='{id}.{n}' type='chat'><body>{id} {ts} "
    );
    let used = 4 + 20;
    c.out
        .extend(std::iter::repeat_n(b'x', sh.pad.saturating_sub(used)));
    c.out
        .extend_from_slice(b"</body><request xmlns='urn:xmpp:receipts'/></message>");
    c.sent = c.sent.wrapping_add(1);
    sh.sent.fetch_add(1, Relaxed);
}

/// The step number of a receipt (`<received id='STEP.N'/>`).
fn receipt_step(el: &[u8]) -> Option<u64> {
    let p = memchr::memmem::find(el, b"<received")?;
    let id = frame::attr(&el[p..], b"id")?;
    let dot = memchr::memchr(b'.', id)?;
    std::str::from_utf8(&id[..dot]).ok()?.parse().ok()
}

async fn sender(
    mut c: Conn,
    peer: String,
    phase: f64,
    mut rx: watch::Receiver<StepCmd>,
    sh: Arc<Shared>,
) {
    let mut cmd = StepCmd::Idle;
    let mut n: u64 = 0; // messages sent in this step
    let far = Instant::now() + Duration::from_secs(365 * 86400);
    loop {
        let mut wake = far;
        if let StepCmd::Run {
            id,
            mode: Mode::Rate(r),
            start,
            until,
        } = cmd
        {
            let now = Instant::now();
            if now < until {
                // Message n is due at (n + phase) / r after the start.
                let due = ((now - start).as_secs_f64() * r - phase).max(0.0).ceil() as u64;
                while n < due {
                    push_message(&mut c, &peer, id, n, &sh);
                    n += 1;
                }
                let next = (n as f64 + phase) / r;
                wake = (start + Duration::from_secs_f64(next)).min(until);
            }
        }
        if c.flush().await.is_err() {
            sh.dropped.fetch_add(1, Relaxed);
            return;
        }
        tokio::select! {
            ch = rx.changed() => {
                if ch.is_err() {
                    return;
                }
                cmd = *rx.borrow_and_update();
                n = 0;
                match cmd {
                    StepCmd::Quit => {
                        c.close(Duration::from_secs(5)).await;
                        return;
                    }
                    StepCmd::Run { id, mode: Mode::Window(w), .. } => {
                        for _ in 0..w {
                            push_message(&mut c, &peer, id, n, &sh);
                            n += 1;
                        }
                    }
                    _ => {}
                }
            }
            r = c.fill() => {
                if !matches!(r, Ok(k) if k > 0) {
                    sh.dropped.fetch_add(1, Relaxed);
                    return;
                }
                loop {
                    let f = match c.next() {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(_) => {
                            sh.dropped.fetch_add(1, Relaxed);
                            return;
                        }
                    };
                    if f.kind != Kind::Message {
                        continue;
                    }
                    let el = c.bytes(&f);
                    if frame::attr(el, b"type") == Some(b"error") {
                        if sh.errors.fetch_add(1, Relaxed) < 3 {
                            eprintln!("natter-bench: error: {}", c.text(&f));
                        }
                        continue;
                    }
                    let step = receipt_step(el);
                    if let StepCmd::Run { id, mode: Mode::Window(_), until, .. } = cmd {
                        if step == Some(id) && Instant::now() < until {
                            push_message(&mut c, &peer, id, n, &sh);
                            n += 1;
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(wake), if wake < far => {}
        }
    }
}

async fn receiver(mut c: Conn, mut rx: watch::Receiver<StepCmd>, sh: Arc<Shared>) {
    loop {
        if c.flush().await.is_err() {
            sh.dropped.fetch_add(1, Relaxed);
            return;
        }
        tokio::select! {
            ch = rx.changed() => {
                if ch.is_err() || matches!(*rx.borrow_and_update(), StepCmd::Quit) {
                    c.close(Duration::from_secs(5)).await;
                    return;
                }
            }
            r = c.fill() => {
                if !matches!(r, Ok(k) if k > 0) {
                    sh.dropped.fetch_add(1, Relaxed);
                    return;
                }
                if on_input(&mut c, &sh).is_err() {
                    sh.dropped.fetch_add(1, Relaxed);
                    return;
                }
            }
        }
    }
}

/// A receiver's buffered input: record each message's latency, queue its receipt.
fn on_input(c: &mut Conn, sh: &Shared) -> Result<()> {
    let mut receipts = 0u32;
    while let Some(f) = c.next()? {
        if f.kind != Kind::Message {
            continue;
        }
        let (el, out) = c.split(&f);
        let Some(body) = frame::body(el) else {
            continue;
        };
        let mut parts = body.split(|&b| b == b' ');
        let num = |p: Option<&[u8]>| -> Option<u64> { std::str::from_utf8(p?).ok()?.parse().ok() };
        let (Some(step), Some(ts)) = (num(parts.next()), num(parts.next())) else {
            continue; // not ours
        };
        let now = sh.now_ns();
        if step == sh.step.load(Relaxed) {
            sh.hist.lock().unwrap().record(now.saturating_sub(ts));
            sh.received.fetch_add(1, Relaxed);
            if now < sh.until_ns.load(Relaxed) {
                sh.in_window.fetch_add(1, Relaxed);
            }
        } else {
            sh.late.fetch_add(1, Relaxed);
        }
        if let (Some(from), Some(id)) = (frame::attr(el, b"from"), frame::attr(el, b"id")) {
            out.extend_from_slice(b"<message to='");
            out.extend_from_slice(from);
            out.extend_from_slice(b"' id='r");
            out.extend_from_slice(id);
            out.extend_from_slice(b"'><received xmlns='urn:xmpp:receipts' id='");
            out.extend_from_slice(id);
            out.extend_from_slice(b"'/></message>");
            receipts += 1;
        }
    }
    c.sent = c.sent.wrapping_add(receipts);
    Ok(())
}
