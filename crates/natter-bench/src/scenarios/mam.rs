//! `mam`: the latency of a XEP-0313 archive query for the newest `--max`
//! messages of one conversation (`with` = account 1, an empty RSM
//! `<before/>`), asked by account 0 `--queries` times in a row, each
//! waiting for its IQ result. Fill the archive first (a million messages:
//! `cargo run --release -p natter-store --example archive_fill`).
//!
//! Runs in one worker with one connection; every answer must hold `--max`
//! results, or the run fails.

use super::{cpu_between, generator_cpu, header, round, Worker};
use crate::conn::{Conn, Kind, Setup};
use crate::pool::Pool;
use crate::stats::Histogram;
use crate::{frame, procfs, Mam};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use tokio::time::Instant;

pub fn run(a: &Mam, args: &[String]) -> Result<Value> {
    let c = &a.common;
    let mut pool = Pool::spawn(1, args, c.max_secs)?;
    let s0 = procfs::maybe_sample(c.server_pid);
    let answer = pool.ask("query")?.remove(0);
    let s1 = procfs::maybe_sample(c.server_pid);
    let last = pool.finish()?;
    if let Some(e) = answer["error"].as_str() {
        bail!("{e}");
    }
    let mut v = header("mam", c, 1);
    v["queries"] = a.queries.into();
    v["max"] = a.max.into();
    v["results_per_query"] = answer["results"].clone();
    v["latency_us"] = Histogram::from_json(&answer["hist"]).summary_us();
    if let Some(cpu) = cpu_between(s0, s1) {
        v["server_cpu_secs"] = round(cpu, 3).into();
        v["server_cpu_ms_per_query"] = round(cpu * 1000.0 / a.queries.max(1) as f64, 3).into();
    }
    v["generator_cpu_secs"] = round(generator_cpu(&last), 2).into();
    Ok(v)
}

pub async fn worker(a: &Mam, mut w: Worker) -> Result<()> {
    let setup = Setup {
        sm: false,
        presence: false,
        wait: true,
    };
    loop {
        match w.ctl.recv().await?.as_str() {
            "query" => {
                let mut s = Conn::login(&w.t, 0, 0, setup).await?;
                let with = w.t.bare(1);
                let mut hist = Histogram::default();
                let mut per_query = 0usize;
                for i in 0..a.queries + a.warmup {
                    write!(
                        s.out,
                        "<iq type='set' id='mq{i}'><query xmlns='urn:xmpp:mam:2' queryid='mq{i}'>\
                         <x xmlns='jabber:x:data' type='submit'>\
                         <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
                         <field var='with'><value>{with}</value></field></x>\
                         <set xmlns='http://jabber.org/protocol/rsm'><max>{}</max><before/></set>\
                         </query></iq>",
                        a.max
                    )?;
                    let t0 = Instant::now();
                    s.flush().await?;
                    let end = t0 + Duration::from_secs(30);
                    let mut results = 0usize;
                    loop {
                        let f = s.expect(end).await?;
                        match f.kind {
                            Kind::Message => results += 1,
                            Kind::Iq => {
                                let el = s.bytes(&f);
                                if frame::attr(el, b"type") != Some(b"result") {
                                    bail!("query failed: {}", s.text(&f));
                                }
                                break;
                            }
                            _ => {}
                        }
                    }
                    if results != a.max {
                        bail!(
                            "a query returned {results} results, not {}: is the archive filled?",
                            a.max
                        );
                    }
                    if i >= a.warmup {
                        hist.record(t0.elapsed().as_nanos() as u64);
                    }
                    per_query = results;
                }
                s.close(Duration::from_secs(5)).await;
                w.ctl
                    .send(json!({"hist": hist.to_json(), "results": per_query}));
            }
            _ => {
                w.ctl.send(json!({}));
                return Ok(());
            }
        }
    }
}
