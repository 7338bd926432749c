//! natter-bench: a load generator for any XMPP server (see README, "Benchmarks").
//!
//! The parent process parses the command line, forks `--workers` copies of
//! itself (`natter-bench __worker I K <same arguments>`), drives them with
//! one-line commands on their stdin, merges the JSON lines they answer on
//! stdout, samples the server from /proc, and prints one JSON result line.

mod conn;
mod frame;
mod pool;
mod procfs;
mod scenarios;
mod stats;

use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;

#[derive(Parser, Debug)]
#[command(
    name = "natter-bench",
    version,
    about = "Load generator for any XMPP server: prints one JSON line of results per run"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Cmd {
    /// Hold N available sessions (bound, SM on) and report server memory per session.
    Idle(Idle),
    /// Full logins (connect, SASL, bind, close) per second and server CPU per login.
    Login(Login),
    /// P sender→receiver pairs with W messages in flight each; receipts; throughput and latency.
    Pairs(Pairs),
    /// Paced aggregate message rates in steps; latency per step; best rate with p99 under a limit.
    Rate(Rate),
    /// K messages to an offline account, then the drain time when it logs in.
    Offline(Offline),
    /// Archive (XEP-0313) query latency: the newest --max of one conversation, --queries times.
    Mam(Mam),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Server address (IP or name).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 5222)]
    pub port: u16,
    /// XMPP domain: accounts are {prefix}{N}@{domain}.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// The password of every account.
    #[arg(long)]
    pub password: String,
    /// Account name prefix; N counts from 0.
    #[arg(long, default_value = "user")]
    pub prefix: String,
    #[arg(long, value_enum, default_value = "plain")]
    pub mech: conn::Mech,
    /// STARTTLS (any certificate accepted).
    #[arg(long)]
    pub tls: bool,
    /// Do not enable stream management (XEP-0198).
    #[arg(long)]
    pub no_sm: bool,
    /// Worker processes (each has its own open-file limit).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Local source addresses to spread connections over, e.g. 127.0.0.2,127.0.0.3.
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    /// The server's process id: enables its RSS/PSS/CPU numbers.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Echoed as "server" in the JSON.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Tokio runtime of each worker: one thread, or one per core.
    #[arg(long, value_enum, default_value = "current")]
    pub runtime: Runtime,
    /// Logins in progress at once per worker while sessions are being set up.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,
    /// Watchdog: the whole run is killed after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub max_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    Current,
    Multi,
}

#[derive(Args, Debug, Clone)]
pub struct Idle {
    #[command(flatten)]
    pub common: Common,
    /// Session counts to step through, ascending.
    #[arg(long, value_delimiter = ',', required = true)]
    pub sessions: Vec<usize>,
    /// Seconds to wait at each step before sampling memory.
    #[arg(long, default_value_t = 2.0)]
    pub settle_secs: f64,
}

#[derive(Args, Debug, Clone)]
pub struct Login {
    #[command(flatten)]
    pub common: Common,
    /// Logins in total.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Logins in progress at once (over all workers).
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Accounts to cycle through (default: min(count, 1000)).
    #[arg(long)]
    pub users: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct Traffic {
    /// Body size in bytes (timestamp plus padding).
    #[arg(long, default_value_t = 32)]
    pub body_bytes: usize,
    /// Unmeasured warm-up seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_secs: f64,
}

#[derive(Args, Debug, Clone)]
pub struct Pairs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub traffic: Traffic,
    /// Pairs: account 2i sends to 2i+1.
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Messages in flight per pair.
    #[arg(long, default_value_t = 10)]
    pub window: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
}

#[derive(Args, Debug, Clone)]
pub struct Rate {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub traffic: Traffic,
    /// Aggregate messages/s of each step.
    #[arg(long, value_delimiter = ',', required = true)]
    pub rates: Vec<u64>,
    #[arg(long, default_value_t = 5.0)]
    pub step_secs: f64,
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// The latency limit of "best_rate": highest rate with p99 below it.
    #[arg(long, default_value_t = 2.0)]
    pub p99_limit_ms: f64,
}

#[derive(Args, Debug, Clone)]
pub struct Offline {
    #[command(flatten)]
    pub common: Common,
    /// Messages sent to the offline account.
    #[arg(long, default_value_t = 10000)]
    pub count: usize,
    #[arg(long, default_value_t = 32)]
    pub body_bytes: usize,
}

#[derive(Args, Debug, Clone)]
pub struct Mam {
    #[command(flatten)]
    pub common: Common,
    /// Measured queries (one after the other).
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Unmeasured queries first.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Results per query (RSM max): the newest this many.
    #[arg(long, default_value_t = 50)]
    pub max: usize,
}

impl Cmd {
    pub fn common(&self) -> &Common {
        match self {
            Cmd::Idle(a) => &a.common,
            Cmd::Login(a) => &a.common,
            Cmd::Pairs(a) => &a.common,
            Cmd::Rate(a) => &a.common,
            Cmd::Offline(a) => &a.common,
            Cmd::Mam(a) => &a.common,
        }
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    // Hidden worker mode: natter-bench __worker INDEX COUNT <args…>
    let worker = if args.get(1).map(String::as_str) == Some("__worker") && args.len() > 3 {
        let index: usize = args[2].parse().expect("worker index");
        let count: usize = args[3].parse().expect("worker count");
        args.drain(1..4);
        Some((index, count))
    } else {
        None
    };
    let cli = Cli::parse_from(&args);
    let result = match worker {
        Some((index, count)) => pool::worker_main(&cli.cmd, index, count),
        None => scenarios::run(&cli.cmd, &args[1..]),
    };
    match result {
        Ok(line) => {
            if let Some(line) = line {
                println!("{line}");
            }
        }
        Err(e) => {
            eprintln!("natter-bench: {e:#}");
            if worker.is_some() {
                println!("{}", serde_json::json!({"error": format!("{e:#}")}));
            }
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
