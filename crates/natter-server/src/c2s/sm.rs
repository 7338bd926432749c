//! XEP-0198 stream management state of one session, with no I/O: counts of
//! handled stanzas both ways (modulo 2^32) and the stanzas sent but not yet
//! acknowledged by the client.

use std::collections::VecDeque;
use std::sync::Arc;

pub const NS: &str = "urn:xmpp:sm:3";

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
    pub requested: bool,
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
        if newly > 0 {
            self.requested = false;
        }
        Ok(self.unacked.drain(..newly).collect())
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
}
