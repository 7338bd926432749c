//! Connection limits: how many client connections may be open at once, and
//! how many new ones one IP address may open per minute.

use crate::config::Limits;
use crate::server::Shared;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Past this many addresses tracked, expired windows are swept.
const SWEEP_AT: usize = 4096;

/// Why a connection was refused; each names the limit in its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `[limits] max_connections` connections are open.
    Full(usize),
    /// This address opened `[limits] connections_per_ip_per_minute` already.
    Rate(u32),
}

impl Refusal {
    /// The RFC 6120 stream error condition.
    pub fn condition(&self) -> &'static str {
        match self {
            Refusal::Full(_) => "resource-constraint",
            Refusal::Rate(_) => "policy-violation",
        }
    }

    /// The HTTP status for the same refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::Full(_) => 503,
            Refusal::Rate(_) => 429,
        }
    }

    pub fn text(&self) -> String {
        match self {
            Refusal::Full(n) => format!(
                "the server is at its connection limit ({n} open connections); try again later"
            ),
            Refusal::Rate(n) => format!(
                "too many new connections from your address: at most {n} per minute; try again later"
            ),
        }
    }
}

/// Counts open connections and recent ones per address.
pub struct ConnLimiter {
    cfg: Limits,
    open: AtomicUsize,
    recent: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl ConnLimiter {
    pub fn new(cfg: Limits) -> Self {
        ConnLimiter {
            cfg,
            open: AtomicUsize::new(0),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Client connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits a new connection from `ip`, or says why not.
    fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        let per_min = self.cfg.connections_per_ip_per_minute;
        if per_min > 0 && (self.cfg.limit_loopback || !ip.is_loopback()) {
            let now = Instant::now();
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() >= SWEEP_AT {
                recent.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            }
            let e = recent.entry(ip).or_insert((now, 0));
            if now.duration_since(e.0) >= WINDOW {
                *e = (now, 0);
            }
            if e.1 >= per_min {
                return Err(Refusal::Rate(per_min));
            }
            e.1 += 1;
        }
        let max = self.cfg.max_connections;
        let prev = self.open.fetch_add(1, Ordering::Relaxed);
        if prev >= max {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Full(max));
        }
        Ok(())
    }
}

/// One admitted client connection: holds the server (so `run` waits for it)
/// and gives its place back when dropped.
pub struct ConnSlot {
    shared: Arc<Shared>,
    transport: u8,
}

impl ConnSlot {
    /// Admits a connection of `transport` (a `metrics::TRANSPORTS` index)
    /// from `ip`, counting refusals.
    pub fn admit(shared: &Arc<Shared>, ip: IpAddr, transport: usize) -> Result<Self, Refusal> {
        let m = &crate::metrics::METRICS;
        match shared.limiter.admit(ip) {
            Ok(()) => {
                m.connections[transport].fetch_add(1, Ordering::Relaxed);
                Ok(ConnSlot {
                    shared: shared.clone(),
                    transport: transport as u8,
                })
            }
            Err(r) => {
                let i = matches!(r, Refusal::Rate(_)) as usize;
                m.refused[i].fetch_add(1, Ordering::Relaxed);
                Err(r)
            }
        }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The connection turned out to be another transport (an HTTP
    /// connection upgraded to a WebSocket).
    pub fn set_transport(&mut self, transport: usize) {
        let m = &crate::metrics::METRICS;
        m.connections[self.transport as usize].fetch_sub(1, Ordering::Relaxed);
        m.connections[transport].fetch_add(1, Ordering::Relaxed);
        self.transport = transport as u8;
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.shared.limiter.open.fetch_sub(1, Ordering::Relaxed);
        crate::metrics::METRICS.connections[self.transport as usize]
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_total_limits() {
        let l = ConnLimiter::new(Limits {
            max_connections: 3,
            connections_per_ip_per_minute: 2,
            limit_loopback: false,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(l.admit(a), Ok(()));
        assert_eq!(l.admit(a), Ok(()));
        assert_eq!(l.admit(a), Err(Refusal::Rate(2)));
        assert_eq!(l.admit(b), Ok(()));
        assert_eq!(l.admit(lo), Err(Refusal::Full(3)));
        assert_eq!(l.open(), 3);
        l.open.fetch_sub(1, Ordering::Relaxed);
        // Loopback is not rate limited by default.
        assert_eq!(l.admit(lo), Ok(()));
        assert!(Refusal::Rate(2).text().contains("2 per minute"));
        assert!(Refusal::Full(3).text().contains("3 open connections"));
    }
}
