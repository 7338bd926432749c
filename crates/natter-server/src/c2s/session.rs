//! A bound session's state and what modules do with it: sending to its
//! client, the durable queue entries it holds, checks on what the client
//! sends, and clean-up when it ends. Its task's loop is `session_loop`.

use super::conn::{Conn, ConnError};
use super::sm::StreamMgmt;
use crate::modules;
use crate::modules::message::{poll_settling, Plan, Settling};
use crate::ns;
use crate::router::{Mailbox, Outbound};
use crate::server::Shared;
use natter_xml::Stanza;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::task::Context;

/// A new connection asking to take over a detached (or dying) session.
pub struct ResumeRequest {
    /// Boxed: the resumption channel's slots stay small.
    pub conn: Box<Conn>,
    /// The client's count of stanzas it received (XEP-0198 `h`).
    pub h: u32,
}

/// The state of one bound session, handed to every module.
pub struct Session {
    pub shared: Arc<Shared>,
    pub bare: String,
    pub resource: String,
    pub full: String,
    pub conn_id: u64,
    /// Where other sessions and the server reach this one.
    pub mailbox: Mailbox,
    /// Sent initial presence and not unavailable since.
    pub available: bool,
    /// Has ever been available (offline messages and probes are done once).
    pub was_available: bool,
    pub priority: i8,
    /// Full JIDs this session sent directed presence to.
    pub directed: HashSet<String>,
    /// Bytes for this session's own client, written after each batch.
    pub out: Vec<u8>,
    /// Stream management, once the client enabled it.
    pub sm: Option<StreamMgmt>,
    /// Queue entries given to this session and still in the store.
    pub queued: HashSet<u64>,
    /// Queue entries put in `out` since the last write (without stream
    /// management they leave the store once written).
    pub(super) written: Vec<u64>,
    /// The highest queue entry the offline flush has looked at.
    pub flushed_upto: u64,
    /// Messages from the client in order, some waiting for their queue
    /// commit: carried out (and counted for XEP-0198) strictly in order.
    pub pipeline: VecDeque<Plan>,
    /// Deletes of acknowledged queue entries not yet known to be committed.
    pub(super) deletes: Vec<Settling>,
    /// The sender's other carbons-enabled sessions (XEP-0280), cached.
    pub carbons: modules::carbons::Siblings,
    /// While the client says it is inactive (XEP-0352): what waits for it.
    pub csi: Option<Box<modules::csi::Held>>,
    /// Its entity capabilities (XEP-0115), once its client sent `<c/>`.
    pub caps: Option<Box<modules::caps::SessionCaps>>,
}

impl Session {
    /// Queues a stanza for this session's client.
    pub fn send(&mut self, bytes: &[u8]) {
        modules::csi::release(self);
        self.write(&Arc::from(bytes), None);
    }

    /// Queues a shared stanza (from the mailbox) for this session's client.
    pub fn send_shared(&mut self, bytes: &Arc<[u8]>) {
        modules::csi::release(self);
        self.write(bytes, None);
    }

    /// Queues a shared stanza as it is, ahead of anything held back for an
    /// inactive client (XEP-0352): `send_shared` releases those first.
    pub(crate) fn write_shared(&mut self, bytes: &Arc<[u8]>) {
        self.write(bytes, None);
    }

    /// Queues a message that is entry `seq` of this account's durable queue;
    /// false if this session already had it.
    pub fn send_queued(&mut self, seq: u64, bytes: &Arc<[u8]>) -> bool {
        // The offline flush saw every entry up to `flushed_upto` (entries are
        // committed in seq order) and gave each to this client; one no longer
        // in `queued` was acknowledged since: a late live copy must not
        // deliver it again.
        if seq <= self.flushed_upto && !self.queued.contains(&seq) {
            return false;
        }
        if !self.queued.insert(seq) {
            return false;
        }
        modules::csi::release(self);
        self.write(bytes, Some(seq));
        true
    }

    /// Appends a stanza to the output and records it: with stream
    /// management as unacknowledged, without it (a queue entry) as written.
    fn write(&mut self, bytes: &Arc<[u8]>, seq: Option<u64>) {
        crate::metrics::stanza_out(bytes);
        self.out.extend_from_slice(bytes);
        match (&mut self.sm, seq) {
            (Some(sm), _) => sm.sent(bytes.clone(), seq),
            (None, Some(seq)) => self.written.push(seq),
            (None, None) => {}
        }
    }

    /// Queues stream-level bytes (not a stanza: not counted by XEP-0198).
    pub(super) fn send_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Parses the `to` of a stanza from the client as a JID of this domain.
    /// On failure the client gets `jid-malformed` or `remote-server-not-found`
    /// (unless the stanza is itself an error, RFC 6120 §8.3.1) and None is returned.
    pub fn local_target(&mut self, st: &Stanza, to: &str) -> Option<jid::Jid> {
        let is_error = st.stanza_type().as_deref() == Some("error");
        let condition = match jid::Jid::new(to) {
            Ok(j) if j.domain().as_str() == self.shared.config.domain => return Some(j),
            Ok(_) => "remote-server-not-found",
            Err(_) => "jid-malformed",
        };
        if !is_error {
            let kind = if condition == "jid-malformed" {
                "modify"
            } else {
                "cancel"
            };
            let e = crate::util::bounce(st, &self.full, to, kind, condition, None);
            self.send(&e);
        }
        None
    }

    /// Removes delivered entries from the durable queue. The delete is
    /// queued in the store now and not waited for here: `settle_deletes`
    /// waits (before an `<r/>` is answered, and when the session ends).
    pub(super) fn dequeue(&mut self, seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        for seq in &seqs {
            self.queued.remove(seq);
        }
        self.prune_deletes();
        let bare = self.bare.clone();
        let done = self.shared.store.offline_delete(&self.bare, &seqs);
        self.deletes.push(Box::pin(async move {
            if let Err(e) = done.await {
                tracing::error!(jid = %bare, error = %e, "could not remove delivered messages from the queue");
            }
        }));
    }

    /// Has the queue inserts of the entries this session holds
    /// unacknowledged written without waiting for its ack any longer (the
    /// connection is gone).
    pub(super) fn hurry_queued(&self) {
        if self.queued.is_empty() {
            return;
        }
        let seqs: Vec<u64> = self.queued.iter().copied().collect();
        self.shared.store.offline_hurry(&self.bare, &seqs);
    }

    /// Forgets the deletes already committed (polled without waiting).
    pub(super) fn prune_deletes(&mut self) {
        if self.deletes.is_empty() {
            return;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if poll_settling(&mut self.deletes, &mut cx).is_ready() {
            self.deletes = Vec::new();
        }
    }

    /// Waits until every delete asked for so far is committed.
    pub(super) async fn settle_deletes(&mut self) {
        for d in std::mem::take(&mut self.deletes) {
            d.await;
        }
    }
}

pub(super) async fn handle_outbound(s: &mut Session, m: Outbound) -> Result<(), ConnError> {
    match m {
        Outbound::Stanza(bytes) => {
            if !modules::csi::hold(s, &bytes) {
                s.send_shared(&bytes)
            }
        }
        Outbound::Queued { seq, bytes } => {
            s.send_queued(seq, &bytes);
        }
        Outbound::Conflict => {
            return Err(ConnError::Stream(
                "conflict",
                Some("replaced by a new session".into()),
            ))
        }
        Outbound::Caps(key) => modules::caps::look_again(s, &key).await,
        Outbound::AccountRemoved => {
            modules::account::session_removed(s);
            return Err(ConnError::Stream(
                "not-authorized",
                Some("the account was removed".into()),
            ));
        }
    }
    Ok(())
}

/// Dispatches one stanza from the client.
pub(super) async fn handle_stanza(s: &mut Session, st: Stanza) -> Result<(), ConnError> {
    if st.ns() != ns::CLIENT {
        return Err(ConnError::Stream(
            "unsupported-stanza-type",
            Some(format!("<{}/> in {} is not supported", st.name(), st.ns())),
        ));
    }
    check_from(s, &st)?;
    match st.name() {
        "presence" => modules::presence::from_client(s, &st).await,
        "iq" => modules::iq::from_client(s, &st).await,
        other => {
            return Err(ConnError::Stream(
                "unsupported-stanza-type",
                Some(format!("<{other}/> is not a stanza")),
            ))
        }
    }
    Ok(())
}

/// A client may only send as itself (RFC 6120 §8.1.2.1).
pub(super) fn check_from(s: &Session, st: &Stanza) -> Result<(), ConnError> {
    match st.from() {
        Some(from) if !from_is_ours(s, &from) => Err(ConnError::Stream(
            "invalid-from",
            Some(format!("you are {}", s.full)),
        )),
        _ => Ok(()),
    }
}

fn from_is_ours(s: &Session, from: &str) -> bool {
    if from == s.full || from == s.bare {
        return true;
    }
    match jid::Jid::new(from) {
        Ok(j) => j.as_str() == s.full || j.as_str() == s.bare,
        Err(_) => false,
    }
}

/// Answers IQ requests among `stanzas` (never delivered to this session's
/// client) with `service-unavailable` to their senders.
pub(super) fn bounce_requests(s: &Session, stanzas: &[Arc<[u8]>]) {
    for bytes in stanzas {
        let Ok(st) = Stanza::parse(bytes, ns::CLIENT) else {
            continue;
        };
        let is_request = matches!(st.stanza_type().as_deref(), Some("get") | Some("set"));
        if st.name() != "iq" || !is_request {
            continue;
        }
        let Some(sender) = st.from().and_then(|f| jid::Jid::new(&f).ok()) else {
            continue;
        };
        let (Some(_), Some(resource)) = (sender.node(), sender.resource()) else {
            continue;
        };
        let bare = sender.to_bare();
        if let Some(e) = s.shared.router.session(bare.as_str(), resource.as_str()) {
            let err = crate::util::bounce(
                &st,
                sender.as_str(),
                &s.full,
                "cancel",
                "service-unavailable",
                None,
            );
            e.mailbox.stanza(&Arc::from(err));
        }
    }
}

/// Cleans up when the session ends for any reason. Queue entries it had
/// but that were not acknowledged stay in the store for the next login.
pub(super) async fn end(s: &mut Session) {
    s.shared.router.unbind(&s.bare, s.conn_id);
    if s.available {
        if s.shared.router.is_bound(&s.bare, &s.resource) {
            // Replaced by a new session of the same full JID: it speaks for
            // that JID now, so contacts must not hear "unavailable" from it.
            s.available = false;
            s.directed.clear();
        } else {
            modules::presence::went_unavailable(s, None).await;
        }
    }
    modules::caps::forget(s);
}
