//! Slows down repeated authentication failures from one address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before delays start.
const FREE_FAILURES: u32 = 2;
/// The longest delay before a failure is reported.
const MAX_DELAY: Duration = Duration::from_secs(15);
/// Failures older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Addresses tracked at most (the oldest are forgotten first).
const MAX_TRACKED: usize = 100_000;

#[derive(Default)]
pub struct AuthLimiter {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

/// The delay before reporting failure number `n` (1-based) from one address.
pub fn delay_for(n: u32) -> Duration {
    if n <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let exp = (n - FREE_FAILURES - 1).min(16);
    (Duration::from_millis(250) * 2u32.pow(exp)).min(MAX_DELAY)
}

impl AuthLimiter {
    /// Records a failure and returns how long to wait before answering it.
    pub fn failure(&self, ip: IpAddr) -> Duration {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("auth limiter lock");
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, t)| now.duration_since(*t) < FORGET_AFTER);
        }
        let e = map.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= FORGET_AFTER {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = now;
        delay_for(e.0)
    }

    /// A success forgets the address's failures.
    pub fn success(&self, ip: IpAddr) {
        self.failures.lock().expect("auth limiter lock").remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay_for(1), Duration::ZERO);
        assert_eq!(delay_for(2), Duration::ZERO);
        assert_eq!(delay_for(3), Duration::from_millis(250));
        assert_eq!(delay_for(4), Duration::from_millis(500));
        assert_eq!(delay_for(100), MAX_DELAY);
    }

    #[test]
    fn per_address_and_reset_on_success() {
        let l = AuthLimiter::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        for _ in 0..3 {
            l.failure(a);
        }
        assert_eq!(l.failure(a), Duration::from_millis(500));
        assert_eq!(l.failure(b), Duration::ZERO);
        l.success(a);
        assert_eq!(l.failure(a), Duration::ZERO);
    }
}
