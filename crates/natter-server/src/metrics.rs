//! Process-wide counters, gauges and histograms, rendered as Prometheus
//! text at `/metrics` on the admin listener.
//!
//! Plain atomics in one static: incrementing one is a single relaxed
//! atomic add where the thing happens, with no registry lookup and nothing
//! per session. (Several servers in one process, as in tests, share them.)

use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Client transports, as labels (`http`: an HTTP connection not upgraded
/// to a WebSocket; it never holds a session).
pub const TRANSPORTS: [&str; 4] = ["tcp", "tls", "websocket", "http"];
/// Index of the `http` transport.
pub const HTTP: usize = 3;
/// Index of the `websocket` transport.
pub const WEBSOCKET: usize = 2;
/// Stanza kinds, as labels.
pub const KINDS: [&str; 4] = ["message", "presence", "iq", "other"];
/// Store operations timed, as labels.
pub const STORE_OPS: [&str; 7] = [
    "credentials",
    "roster",
    "offline_fetch",
    "queue_find",
    "vcard",
    "accounts",
    "archive_query",
];

/// Histogram bucket upper bounds, in seconds.
const BOUNDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A latency histogram with fixed buckets.
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1],
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BOUNDS.iter().position(|&b| s <= b).unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cum = 0;
        for (i, b) in BOUNDS.iter().enumerate() {
            cum += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {cum}");
        }
        cum += self.buckets[BOUNDS.len()].load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cum}");
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cum}");
    }
}

/// Every metric of the process.
pub struct Metrics {
    pub connections: [AtomicI64; 4],
    pub sessions: [AtomicI64; 4],
    pub logins: AtomicU64,
    pub auth_failures: AtomicU64,
    /// Connections refused: [max_connections, per-IP rate].
    pub refused: [AtomicU64; 2],
    pub stanzas_in: [AtomicU64; 4],
    pub stanzas_out: [AtomicU64; 4],
    pub ws_closed_bad_frames: AtomicU64,
    /// Accepted (handed to the recipient's mailbox) → taken to be written.
    pub delivery: Histogram,
    pub store: [Histogram; STORE_OPS.len()],
}

pub static METRICS: Metrics = Metrics {
    connections: [const { AtomicI64::new(0) }; 4],
    sessions: [const { AtomicI64::new(0) }; 4],
    logins: AtomicU64::new(0),
    auth_failures: AtomicU64::new(0),
    refused: [const { AtomicU64::new(0) }; 2],
    stanzas_in: [const { AtomicU64::new(0) }; 4],
    stanzas_out: [const { AtomicU64::new(0) }; 4],
    ws_closed_bad_frames: AtomicU64::new(0),
    delivery: Histogram::new(),
    store: [const { Histogram::new() }; STORE_OPS.len()],
};

/// The index of a transport label.
pub fn transport_index(kind: &str) -> usize {
    TRANSPORTS.iter().position(|&t| t == kind).unwrap_or(0)
}

/// The kind of a serialised stanza, from its first bytes.
pub fn kind_of(bytes: &[u8]) -> usize {
    if bytes.starts_with(b"<message") {
        0
    } else if bytes.starts_with(b"<presence") {
        1
    } else if bytes.starts_with(b"<iq") {
        2
    } else {
        3
    }
}

/// Counts a stanza written to a client (routed or the server's own).
pub fn stanza_out(bytes: &[u8]) {
    METRICS.stanzas_out[kind_of(bytes)].fetch_add(1, Relaxed);
}

/// Counts a stanza read from a client.
pub fn stanza_in(ev: &natter_xml::Event) {
    if let natter_xml::Event::Stanza(st) = ev {
        let i = match st.name() {
            "message" => 0,
            "presence" => 1,
            "iq" => 2,
            _ => 3,
        };
        METRICS.stanzas_in[i].fetch_add(1, Relaxed);
    }
}

/// Nanoseconds since the first call (a cheap, comparable stamp).
pub fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Runs a store operation, timing it as `op` (an index into `STORE_OPS`).
pub async fn store_op<T>(op: usize, fut: impl Future<Output = T>) -> T {
    let t = Instant::now();
    let r = fut.await;
    METRICS.store[op].observe(t.elapsed());
    r
}

/// A bound session, counted by transport while it lives.
pub struct SessionGauge(u8);

impl SessionGauge {
    pub fn new(transport: usize) -> Self {
        METRICS.sessions[transport].fetch_add(1, Relaxed);
        SessionGauge(transport as u8)
    }
}

impl Drop for SessionGauge {
    fn drop(&mut self) {
        METRICS.sessions[self.0 as usize].fetch_sub(1, Relaxed);
    }
}

/// Values computed at scrape time by the server.
pub struct Snapshot {
    pub bound_sessions: usize,
    pub offline_queue_depth: Option<u64>,
    pub store_commits: u64,
    pub store_writes: u64,
    pub store_withdrawn: u64,
    pub uptime: Duration,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The Prometheus text exposition of every metric.
pub fn render(snap: &Snapshot) -> String {
    let m = &METRICS;
    let mut o = String::with_capacity(8192);
    header(
        &mut o,
        "natter_connections",
        "gauge",
        "Client connections open, by transport.",
    );
    for (i, t) in TRANSPORTS.iter().enumerate() {
        let _ = writeln!(
            o,
            "natter_connections{{transport=\"{t}\"}} {}",
            m.connections[i].load(Relaxed)
        );
    }
    header(
        &mut o,
        "natter_sessions",
        "gauge",
        "Bound sessions, by the transport they were bound over.",
    );
    for (i, t) in TRANSPORTS[..3].iter().enumerate() {
        let _ = writeln!(
            o,
            "natter_sessions{{transport=\"{t}\"}} {}",
            m.sessions[i].load(Relaxed)
        );
    }
    header(
        &mut o,
        "natter_router_sessions",
        "gauge",
        "Sessions in the router (bound resources).",
    );
    let _ = writeln!(o, "natter_router_sessions {}", snap.bound_sessions);
    for (name, help, v) in [
        (
            "natter_logins_total",
            "Successful SASL authentications.",
            &m.logins,
        ),
        (
            "natter_auth_failures_total",
            "Failed SASL authentications.",
            &m.auth_failures,
        ),
        (
            "natter_websocket_bad_frames_total",
            "WebSocket connections closed for an oversize or malformed frame.",
            &m.ws_closed_bad_frames,
        ),
    ] {
        header(&mut o, name, "counter", help);
        let _ = writeln!(o, "{name} {}", v.load(Relaxed));
    }
    header(
        &mut o,
        "natter_connections_refused_total",
        "counter",
        "Client connections refused, by limit.",
    );
    for (i, r) in ["max_connections", "ip_rate"].iter().enumerate() {
        let _ = writeln!(
            o,
            "natter_connections_refused_total{{reason=\"{r}\"}} {}",
            m.refused[i].load(Relaxed)
        );
    }
    for (name, help, arr) in [
        (
            "natter_stanzas_in_total",
            "Stanzas received from bound clients, by kind.",
            &m.stanzas_in,
        ),
        (
            "natter_stanzas_out_total",
            "Stanzas routed to sessions and taken by them to write, by kind.",
            &m.stanzas_out,
        ),
    ] {
        header(&mut o, name, "counter", help);
        for (i, k) in KINDS.iter().enumerate() {
            let _ = writeln!(o, "{name}{{kind=\"{k}\"}} {}", arr[i].load(Relaxed));
        }
    }
    header(
        &mut o,
        "natter_delivery_latency_seconds",
        "histogram",
        "Messages: from being accepted and handed to the recipient's session until that session takes it to write to its client.",
    );
    m.delivery
        .render(&mut o, "natter_delivery_latency_seconds", "");
    header(
        &mut o,
        "natter_store_operation_seconds",
        "histogram",
        "Latency of store operations, by operation.",
    );
    for (i, op) in STORE_OPS.iter().enumerate() {
        m.store[i].render(
            &mut o,
            "natter_store_operation_seconds",
            &format!("op=\"{op}\""),
        );
    }
    header(
        &mut o,
        "natter_store_commits_total",
        "counter",
        "Store write transactions committed (group commits).",
    );
    let _ = writeln!(o, "natter_store_commits_total {}", snap.store_commits);
    header(
        &mut o,
        "natter_store_writes_total",
        "counter",
        "Store write operations.",
    );
    let _ = writeln!(o, "natter_store_writes_total {}", snap.store_writes);
    header(
        &mut o,
        "natter_queue_inserts_withdrawn_total",
        "counter",
        "Messages acknowledged by their online recipient within [store] ack_wait_ms, never written.",
    );
    let _ = writeln!(
        o,
        "natter_queue_inserts_withdrawn_total {}",
        snap.store_withdrawn
    );
    if let Some(d) = snap.offline_queue_depth {
        header(
            &mut o,
            "natter_offline_queue_depth",
            "gauge",
            "Messages in the durable queues, waiting for a recipient's acknowledgement.",
        );
        let _ = writeln!(o, "natter_offline_queue_depth {d}");
    }
    if let Some((rss, virt)) = process_memory() {
        header(
            &mut o,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        let _ = writeln!(o, "process_resident_memory_bytes {rss}");
        header(
            &mut o,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
        );
        let _ = writeln!(o, "process_virtual_memory_bytes {virt}");
    }
    header(
        &mut o,
        "process_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(o, "process_uptime_seconds {}", snap.uptime.as_secs());
    o
}

/// (resident, virtual) bytes from /proc/self/status.
pub fn process_memory() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmSize:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x", "op=\"a\"");
        assert!(
            out.contains("x_bucket{op=\"a\",le=\"0.0001\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{op=\"a\",le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{op=\"a\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{op=\"a\"} 3\n"), "{out}");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn memory_is_read() {
        let (rss, virt) = process_memory().unwrap();
        assert!(rss > 0 && virt >= rss);
    }
}
