//! XEP-0198 stream management state of one session, with no I/O: counts of
//! handled stanzas both ways (modulo 2^32) and the stanzas sent but not yet
//! acknowledged by the client.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const NS: &str = "urn:xmpp:sm:3";

/// The least time between two `<r/>` of one session. A session writing
/// less often than this asks at the end of each write (the client's answer
/// usually rides on its own next write); one writing more often asks every
/// few writes instead of after each one (each answer costs the client a
/// write and the server a read). A request of its own, with nothing else
/// to write, goes out only when no write came for this long, well within
/// `[store] ack_wait_ms`.
pub const ACK_DELAY: Duration = Duration::from_millis(10);
/// This many uncovered stanzas are asked for at once, however recent the
/// last request.
pub const ACK_BATCH: usize = 32;

/// A stanza sent to the client and not yet acknowledged.
#[derive(Clone, Debug)]
pub struct Unacked {
    pub bytes: Arc<[u8]>,
    /// Its entry in the recipient's durable queue, if it has one.
    pub seq: Option<u64>,
}

/// The client acknowledged more than was sent (XEP-0198 §4).
#[derive(Debug, PartialEq, Eq)]
pub struct TooHigh {
    pub h: u32,
    pub sent: u32,
}

#[derive(Debug)]
pub struct StreamMgmt {
    /// Resumption id (also when resumption is off, for logs).
    pub id: String,
    pub resumable: bool,
    /// Stanzas received from the client and handled.
    inbound: u32,
    /// Stanzas sent to the client.
    sent: u32,
    /// The client's last acknowledged count.
    acked: u32,
    unacked: VecDeque<Unacked>,
    /// An `<r/>` is out and not yet answered.
    requested: bool,
    /// `sent` when the last `<r/>` went out: stanzas after it are not
    /// covered by a request yet.
    covered: u32,
    /// The last write that left stanzas uncovered.
    last_write: Option<Instant>,
    /// When the request out (or the last one) was written.
    requested_at: Option<Instant>,
}

impl StreamMgmt {
    pub fn new(id: String, resumable: bool) -> Self {
        StreamMgmt {
            id,
            resumable,
            inbound: 0,
            sent: 0,
            acked: 0,
            unacked: VecDeque::new(),
            requested: false,
            covered: 0,
            last_write: None,
            requested_at: None,
        }
    }

    /// One more stanza from the client was handled.
    pub fn handled(&mut self) {
        self.inbound = self.inbound.wrapping_add(1);
    }

    /// The `h` to report to the client.
    pub fn inbound(&self) -> u32 {
        self.inbound
    }

    /// Records a stanza sent to the client.
    pub fn sent(&mut self, bytes: Arc<[u8]>, seq: Option<u64>) {
        self.sent = self.sent.wrapping_add(1);
        self.unacked.push_back(Unacked { bytes, seq });
    }

    /// Applies the client's `<a h='…'/>` (or a resumption's h): returns the
    /// stanzas it newly acknowledges.
    pub fn ack(&mut self, h: u32) -> Result<Vec<Unacked>, TooHigh> {
        let newly = h.wrapping_sub(self.acked) as usize;
        if newly > self.unacked.len() {
            return Err(TooHigh { h, sent: self.sent });
        }
        self.acked = h;
        let acked = self.unacked.drain(..newly).collect();
        if newly > 0 {
            self.requested = false;
            // Stanzas the request covered but this answer does not (the
            // client acked on its own, or short) are asked for again.
            let short = self.covered.wrapping_sub(h) as usize;
            if short > 0 && short <= self.unacked.len() {
                self.covered = h;
            }
        }
        Ok(acked)
    }

    /// Unacknowledged stanzas that no `<r/>` covers yet.
    fn uncovered(&self) -> usize {
        (self.sent.wrapping_sub(self.covered) as usize).min(self.unacked.len())
    }

    /// Whether an `<r/>` goes at the end of a write about to happen at
    /// `now` (it is then counted as out).
    pub fn request_on_write(&mut self, now: Instant) -> bool {
        let uncovered = self.uncovered();
        if uncovered == 0 {
            return false;
        }
        let recent = self.requested_at.is_some_and(|at| now < at + ACK_DELAY);
        if !self.requested && (!recent || uncovered >= ACK_BATCH) {
            self.request(now);
            return true;
        }
        self.last_write = Some(now);
        false
    }

    /// When an `<r/>` of its own is due: stanzas are uncovered and no
    /// write carried a request for them.
    pub fn request_due(&self) -> Option<Instant> {
        if self.requested || self.uncovered() == 0 {
            return None;
        }
        let last = self.requested_at.max(self.last_write)?;
        Some(last + ACK_DELAY)
    }

    /// Whether an `<r/>` of its own is to be written now (it is then
    /// counted as out).
    pub fn request_now(&mut self, now: Instant) -> bool {
        if self.request_due().is_some_and(|due| due <= now) {
            self.request(now);
            return true;
        }
        false
    }

    fn request(&mut self, now: Instant) {
        self.requested = true;
        self.requested_at = Some(now);
        self.covered = self.sent;
        self.last_write = None;
    }

    /// A new connection took over (resumption) and the unacknowledged
    /// stanzas are written to it at `now`: a request on the old one is
    /// lost, so they are all uncovered again, asked for by the next write
    /// or after `ACK_DELAY`.
    pub fn new_connection(&mut self, now: Instant) {
        self.requested = false;
        self.requested_at = None;
        self.covered = self.sent.wrapping_sub(self.unacked.len() as u32);
        self.last_write = (!self.unacked.is_empty()).then_some(now);
    }

    pub fn unacked(&self) -> impl Iterator<Item = &Unacked> {
        self.unacked.iter()
    }

    pub fn unacked_len(&self) -> usize {
        self.unacked.len()
    }

    /// Frees the unacknowledged queue's buffer once it is empty.
    pub fn trim(&mut self) {
        if self.unacked.is_empty() && self.unacked.capacity() > 0 {
            self.unacked = VecDeque::new();
        }
    }

    /// Forgets every unacknowledged stanza (returned, for their queue entries).
    pub fn take_unacked(&mut self) -> Vec<Unacked> {
        self.unacked.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Arc<[u8]> {
        Arc::from(s.as_bytes())
    }

    #[test]
    fn acks_release_in_order() {
        let mut sm = StreamMgmt::new("x".into(), true);
        for i in 0..5 {
            sm.sent(bytes("<message/>"), Some(i));
        }
        let a = sm.ack(2).unwrap();
        assert_eq!(
            a.iter().map(|u| u.seq).collect::<Vec<_>>(),
            vec![Some(0), Some(1)]
        );
        assert_eq!(sm.unacked_len(), 3);
        assert!(
            sm.ack(2).unwrap().is_empty(),
            "a repeated ack releases nothing"
        );
        assert_eq!(sm.ack(5).unwrap().len(), 3);
        assert_eq!(sm.ack(6).unwrap_err(), TooHigh { h: 6, sent: 5 });
    }

    #[test]
    fn counters_wrap_at_2_pow_32() {
        let mut sm = StreamMgmt::new("x".into(), true);
        sm.inbound = u32::MAX;
        sm.handled();
        assert_eq!(sm.inbound(), 0);
        sm.sent = u32::MAX - 1;
        sm.acked = u32::MAX - 1;
        for _ in 0..3 {
            sm.sent(bytes("<iq/>"), None);
        }
        assert_eq!(sm.sent, 1);
        assert_eq!(sm.ack(u32::MAX).unwrap().len(), 1);
        assert_eq!(sm.ack(1).unwrap().len(), 2);
        assert_eq!(sm.unacked_len(), 0);
    }

    #[test]
    fn too_high_is_refused_without_change() {
        let mut sm = StreamMgmt::new("x".into(), false);
        sm.sent(bytes("<presence/>"), None);
        assert!(sm.ack(2).is_err());
        assert_eq!(sm.unacked_len(), 1);
        assert_eq!(sm.ack(1).unwrap().len(), 1);
    }

    #[test]
    fn requests_ride_on_writes_at_most_once_per_delay() {
        let mut sm = StreamMgmt::new("x".into(), true);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        sm.sent(bytes("<message/>"), None);
        assert!(sm.request_on_write(t0), "a quiet session asks at once");
        assert_eq!(sm.request_due(), None, "one request out at a time");
        sm.sent(bytes("<message/>"), None);
        assert!(!sm.request_on_write(ms(1)), "a request is still out");
        assert_eq!(sm.ack(1).unwrap().len(), 1);
        // The answer covered the first; the second waits its turn.
        assert_eq!(sm.request_due(), Some(ms(11)));
        sm.sent(bytes("<message/>"), None);
        assert!(!sm.request_on_write(ms(4)), "asked less than 10 ms ago");
        assert_eq!(
            sm.request_due(),
            Some(ms(14)),
            "writes push a request of its own back"
        );
        sm.sent(bytes("<message/>"), None);
        assert!(sm.request_on_write(ms(10)), "the last request is 10 ms old");
        assert_eq!(sm.ack(4).unwrap().len(), 3);
        assert_eq!(sm.request_due(), None, "nothing left to ask for");
        sm.sent(bytes("<message/>"), None);
        assert!(!sm.request_on_write(ms(12)));
        assert!(!sm.request_now(ms(21)));
        assert!(sm.request_now(ms(22)), "no write came for 10 ms");
        assert_eq!(sm.request_due(), None);
    }

    #[test]
    fn a_short_answer_is_asked_again() {
        let mut sm = StreamMgmt::new("x".into(), true);
        let t0 = Instant::now();
        for _ in 0..3 {
            sm.sent(bytes("<message/>"), None);
        }
        assert!(sm.request_on_write(t0));
        // The client acks only the first (on its own, or short).
        assert_eq!(sm.ack(1).unwrap().len(), 1);
        assert_eq!(sm.request_due(), Some(t0 + ACK_DELAY));
        assert!(sm.request_on_write(t0 + ACK_DELAY));
        assert_eq!(sm.ack(3).unwrap().len(), 2);
        assert_eq!(sm.request_due(), None);
    }

    #[test]
    fn many_uncovered_stanzas_are_asked_for_at_once() {
        let mut sm = StreamMgmt::new("x".into(), true);
        let now = Instant::now();
        sm.sent(bytes("<message/>"), None);
        assert!(sm.request_on_write(now));
        sm.ack(1).unwrap();
        for _ in 0..ACK_BATCH {
            sm.sent(bytes("<message/>"), None);
        }
        assert!(sm.request_on_write(now), "32 at once, however recent");
    }

    #[test]
    fn a_new_connection_asks_again_for_what_the_old_one_did() {
        let mut sm = StreamMgmt::new("x".into(), true);
        let t0 = Instant::now();
        sm.sent(bytes("<message/>"), None);
        assert!(sm.request_on_write(t0));
        assert_eq!(sm.request_due(), None);
        let t1 = t0 + Duration::from_secs(1);
        sm.new_connection(t1);
        assert_eq!(sm.request_due(), Some(t1 + ACK_DELAY));
        assert!(sm.request_on_write(t1), "or with the next write");
    }
}
