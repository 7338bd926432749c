//! Worker processes. The parent re-executes itself as
//! `natter-bench __worker INDEX COUNT <the same arguments>`; it talks to each
//! worker with one text command per line on the worker's stdin, and each
//! worker answers one JSON object per line on stdout (logs go to stderr).
//! Every answer carries `"cpu"`: the worker's CPU seconds so far.

use crate::conn::{insecure_tls, Target};
use crate::{procfs, Cmd, Common, Runtime};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

// ---- parent side ----------------------------------------------------------

struct Kid {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

pub struct Pool {
    kids: Vec<Kid>,
}

impl Pool {
    /// Starts `n` workers running `args` (the arguments after the program name).
    pub fn spawn(n: usize, args: &[String], max_secs: u64) -> Result<Pool> {
        let exe = std::env::current_exe().context("finding natter-bench itself")?;
        let mut kids = Vec::with_capacity(n);
        for i in 0..n {
            let mut child = Command::new(&exe)
                .arg("__worker")
                .arg(i.to_string())
                .arg(n.to_string())
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .context("starting a worker")?;
            let stdin = child.stdin.take().expect("piped");
            let stdout = BufReader::new(child.stdout.take().expect("piped"));
            kids.push(Kid {
                child,
                stdin,
                stdout,
            });
        }
        // Watchdog: exiting closes the workers' stdin, which ends them too.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(max_secs));
            eprintln!("natter-bench: --max-secs {max_secs} reached, giving up");
            std::process::exit(2);
        });
        Ok(Pool { kids })
    }

    pub fn len(&self) -> usize {
        self.kids.len()
    }

    /// Sends one command line to every worker.
    pub fn broadcast(&mut self, cmd: &str) -> Result<()> {
        for k in &mut self.kids {
            writeln!(k.stdin, "{cmd}")?;
            k.stdin.flush()?;
        }
        Ok(())
    }

    /// One answer from every worker, in worker order.
    pub fn collect(&mut self) -> Result<Vec<Value>> {
        let mut out = Vec::with_capacity(self.kids.len());
        for (i, k) in self.kids.iter_mut().enumerate() {
            let mut line = String::new();
            if k.stdout.read_line(&mut line)? == 0 {
                let status = k.child.wait()?;
                bail!("worker {i} ended ({status}) without answering");
            }
            let v: Value =
                serde_json::from_str(&line).with_context(|| format!("worker {i} said {line:?}"))?;
            if let Some(e) = v.get("error") {
                bail!("worker {i}: {}", e.as_str().unwrap_or("?"));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Sends `cmd` and collects the answers.
    pub fn ask(&mut self, cmd: &str) -> Result<Vec<Value>> {
        self.broadcast(cmd)?;
        self.collect()
    }

    /// Tells the workers to quit, collects their last answers and waits for them.
    pub fn finish(mut self) -> Result<Vec<Value>> {
        let last = self.ask("quit")?;
        for k in &mut self.kids {
            k.child.wait()?;
        }
        Ok(last)
    }
}

/// Sum of a numeric field over the answers.
pub fn sum(answers: &[Value], key: &str) -> f64 {
    answers.iter().filter_map(|a| a[key].as_f64()).sum()
}

// ---- worker side ----------------------------------------------------------

/// The worker's command channel: lines from stdin; a closed stdin (parent
/// gone) ends the process.
pub struct Ctl {
    rx: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Ctl {
    fn start() -> Ctl {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    return;
                }
            }
            // The parent is gone: nobody will read our results.
            std::process::exit(3);
        });
        Ctl { rx }
    }

    /// The next command from the parent.
    pub async fn recv(&mut self) -> Result<String> {
        self.rx.recv().await.ok_or_else(|| anyhow!("parent gone"))
    }

    /// Answers the parent; adds our CPU seconds as `"cpu"`.
    pub fn send(&self, mut v: Value) {
        v["cpu"] = procfs::self_cpu_secs().into();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
}

/// This worker's share of the indexes 0..n (every `count`-th from `index`).
pub fn share(n: usize, index: usize, count: usize) -> impl Iterator<Item = usize> {
    (index..n).step_by(count.max(1))
}

pub fn target(c: &Common) -> Result<Target> {
    let addr: SocketAddr = (c.host.as_str(), c.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", c.host))?
        .next()
        .ok_or_else(|| anyhow!("{} has no address", c.host))?;
    Ok(Target {
        addr,
        domain: c.domain.clone(),
        password: c.password.clone(),
        prefix: c.prefix.clone(),
        mech: c.mech,
        tls: c.tls.then(insecure_tls),
        sm: !c.no_sm,
        sources: c.source_addrs.clone(),
    })
}

/// Entry point of a worker process. Returns no line: answers go through [`Ctl`].
pub fn worker_main(cmd: &Cmd, index: usize, count: usize) -> Result<Option<String>> {
    let nofile = procfs::raise_nofile();
    let common = cmd.common();
    let rt = match common.runtime {
        Runtime::Current => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Runtime::Multi => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
    };
    let t = target(common)?;
    let ctl = Ctl::start();
    let w = crate::scenarios::Worker {
        index,
        count,
        nofile,
        concurrency: common.connect_concurrency,
        t: std::sync::Arc::new(t),
        ctl,
    };
    rt.block_on(crate::scenarios::worker(cmd, w))?;
    Ok(None)
}
