//! What the clients sent, what was acknowledged, what arrived.
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Mutex;

/// Anomalies seen by the clients (anything marked BUG, stanza errors).
#[derive(Default)]
pub struct Bugs(pub Mutex<Vec<String>>);

impl Bugs {
    pub fn check(&self, who: &str, e: &str) {
        if e.contains("BUG") {
            self.add(format!("{who}: {e}"));
        }
    }
    pub fn add(&self, e: String) {
        eprintln!("!! {e}");
        self.0.lock().unwrap().push(e);
    }
}

// ---------------------------------------------------------------------------
// Shared bookkeeping.

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct MsgId {
    pub sender: usize,
    pub n: u32,
}

impl MsgId {
    pub fn parse(id: &str) -> Option<MsgId> {
        let rest = id.strip_prefix('s')?;
        let (k, n) = rest.split_once('-')?;
        Some(MsgId {
            sender: k.parse().ok()?,
            n: n.parse().ok()?,
        })
    }
}

/// What a received copy is, decided when it arrives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CopyKind {
    /// The first copy of this queue entry (stanza-id).
    First,
    /// Again, and the recipient had not acknowledged it.
    RedeliveredUnacked,
    /// Again, after an `<a h/>` the server had not confirmed processing.
    AfterUnconfirmedAck,
    /// Again, after an `<a h/>` the server confirmed processing.
    DuplicatedAfterAck,
}

pub struct Reception {
    /// The recipient connection it arrived on (1-based).
    pub epoch: u32,
    pub id: MsgId,
    /// The server's XEP-0359 stanza-id.
    pub sid: String,
    pub delayed: bool,
    pub copy: CopyKind,
    /// The stanza-id was already received on this same connection.
    pub same_conn: bool,
}

#[derive(Default)]
pub struct Ledger {
    /// Ids a sender got an `<a h/>` for.
    pub sender_acked: HashSet<MsgId>,
    /// How often each id was written to the server (first send plus resends).
    pub sends: HashMap<MsgId, u32>,
    /// Message errors the senders got back.
    pub bounced: Vec<String>,
    pub receptions: Vec<Reception>,
    /// Ids the recipient has (some copy of).
    pub received_ids: HashSet<MsgId>,
    /// Stanza-ids the recipient sent an `<a h/>` for.
    pub rcpt_acked: HashSet<String>,
    /// Stanza-ids whose `<a h/>` the server confirmed processing.
    pub rcpt_confirmed: HashSet<String>,
    /// Stanza-ids received, with the connection of the last copy.
    pub sid_seen: HashMap<String, u32>,
    /// Details of queue entries that arrived twice on one connection.
    pub same_conn_details: Vec<String>,
}

pub struct Shared {
    pub addr: SocketAddr,
    pub ledger: Mutex<Ledger>,
    pub bugs: Bugs,
    /// No new messages (senders), then: take your final ack and leave (recipient).
    pub stop_senders: AtomicBool,
    pub stop_recipient: AtomicBool,
    /// Successful logins per client (senders 0..SENDERS, then the recipient).
    pub logins: Vec<AtomicU32>,
    /// Clients that are finished (they log in no more).
    pub finished: Vec<AtomicBool>,
}
