//! `offline`: K messages to an offline account, then its drain time.
//!
//! Runs in one worker. `store`: the receiver (account 1) logs in once to
//! empty its queue of earlier runs' leftovers and leaves; the sender
//! (account 0) sends K messages and waits until the server acked them all
//! (XEP-0198 `<a h/>`, i.e. durably stored). `drain`: the receiver logs in
//! and counts this run's messages until all K arrived.

use super::{cpu_between, generator_cpu, header, round, Worker};
use crate::conn::{Conn, Kind, Setup};
use crate::pool::Pool;
use crate::{frame, procfs, Offline};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

pub fn run(a: &Offline, args: &[String]) -> Result<Value> {
    let c = &a.common;
    if c.no_sm {
        bail!("offline needs stream management to know the messages are stored");
    }
    let mut pool = Pool::spawn(1, args, c.max_secs)?;
    let s0 = procfs::maybe_sample(c.server_pid);
    let store = pool.ask("store")?.remove(0);
    let s1 = procfs::maybe_sample(c.server_pid);
    let drain = pool.ask("drain")?.remove(0);
    let s2 = procfs::maybe_sample(c.server_pid);
    let mut v = header("offline", c, 1);
    let last = pool.finish()?;
    let k = a.count as f64;
    let store_secs = store["store_secs"].as_f64().unwrap_or(0.0);
    let drain_secs = drain["drain_secs"].as_f64().unwrap_or(0.0);
    v["count"] = a.count.into();
    v["stale_drained"] = store["stale"].clone();
    v["store_secs"] = round(store_secs, 3).into();
    v["store_msgs_per_sec"] = round(k / store_secs.max(1e-9), 1).into();
    v["received"] = drain["received"].clone();
    v["login_secs"] = drain["login_secs"].clone();
    v["first_msg_secs"] = drain["first_msg_secs"].clone();
    v["drain_secs"] = round(drain_secs, 3).into();
    v["drain_msgs_per_sec"] = round(k / drain_secs.max(1e-9), 1).into();
    if let Some(cpu) = cpu_between(s0, s1) {
        v["store_server_cpu_secs"] = round(cpu, 3).into();
    }
    if let Some(cpu) = cpu_between(s1, s2) {
        v["drain_server_cpu_secs"] = round(cpu, 3).into();
    }
    v["generator_cpu_secs"] = round(generator_cpu(&last), 2).into();
    Ok(v)
}

const SETUP: Setup = Setup {
    sm: true,
    presence: true,
    wait: true,
};

pub async fn worker(a: &Offline, mut w: Worker) -> Result<()> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros();
    let tag = format!("off{nonce}");
    let k = a.count;
    let budget = Duration::from_secs(60) + Duration::from_millis(k as u64);
    loop {
        match w.ctl.recv().await?.as_str() {
            "store" => {
                // Leftovers of earlier runs would be counted as ours: drain them.
                let mut r = Conn::login(&w.t, 1, 1, SETUP).await?;
                let mut stale = 0u64;
                let end = Instant::now() + Duration::from_secs(30);
                while Instant::now() < end {
                    match tokio::time::timeout(Duration::from_millis(500), r.expect(end)).await {
                        Ok(Ok(f)) if f.kind == Kind::Message => stale += 1,
                        Ok(Ok(_)) => {}
                        _ => break,
                    }
                }
                r.close(Duration::from_secs(5)).await;

                let mut s = Conn::login(&w.t, 0, 0, SETUP).await?;
                let to = w.t.bare(1);
                let t0 = Instant::now();
                for i in 0..k {
                    write!(
                        s.out,
                        "<message to='{to}' id='o{i}' type='chat'><body>{tag} {i} "
                    )?;
                    s.out
                        .extend(std::iter::repeat_n(b'x', a.body_bytes.saturating_sub(24)));
                    s.out.extend_from_slice(b"</body></message>");
                    s.sent = s.sent.wrapping_add(1);
                    if s.out.len() > 32 * 1024 {
                        s.flush().await?;
                    }
                }
                s.out.extend_from_slice(b"<r xmlns='urn:xmpp:sm:3'/>");
                let end = t0 + budget;
                while s.acked != s.sent {
                    let f = s.expect(end).await?;
                    if f.kind == Kind::Ack && s.acked != s.sent {
                        s.out.extend_from_slice(b"<r xmlns='urn:xmpp:sm:3'/>");
                    }
                }
                let store_secs = t0.elapsed().as_secs_f64();
                s.close(Duration::from_secs(5)).await;
                eprintln!("natter-bench: offline: {k} messages stored in {store_secs:.2} s ({stale} stale drained)");
                w.ctl
                    .send(json!({"store_secs": store_secs, "stale": stale}));
            }
            "drain" => {
                let t0 = Instant::now();
                let mut r = Conn::login(
                    &w.t,
                    1,
                    1,
                    Setup {
                        wait: false,
                        ..SETUP
                    },
                )
                .await?;
                let t_login = Instant::now();
                let (mut got, mut first) = (0usize, None);
                let end = t_login + budget;
                while got < k {
                    let f = match r.expect(end).await {
                        Ok(f) => f,
                        Err(e) => {
                            eprintln!("natter-bench: offline: {got} of {k} arrived: {e:#}");
                            break;
                        }
                    };
                    if f.kind == Kind::Message
                        && frame::body(r.bytes(&f)).is_some_and(|b| b.starts_with(tag.as_bytes()))
                    {
                        got += 1;
                        first.get_or_insert_with(Instant::now);
                    }
                }
                let t_last = Instant::now();
                r.close(Duration::from_secs(5)).await;
                let secs = |t: Instant| (t - t_login).as_secs_f64();
                w.ctl.send(json!({
                    "received": got,
                    "login_secs": (t_login - t0).as_secs_f64(),
                    "first_msg_secs": first.map(secs),
                    "drain_secs": secs(t_last),
                }));
            }
            _ => {
                w.ctl.send(json!({}));
                return Ok(());
            }
        }
    }
}
