//! A bound session: its mailbox, its loop, stream management (XEP-0198)
//! with resumption, and what happens when it ends.
//!
//! A session is attached (it has a connection) or detached (the connection
//! dropped and the client may resume within `resume_timeout_secs`). While
//! detached it keeps collecting stanzas as unacknowledged, to retransmit.

use super::conn::{Conn, ConnError};
use super::negotiate::Bound;
use super::pipeline::{advance, carry_out, finish_one, flush_pipeline, front_commit};
use super::sm::{self, StreamMgmt};
use super::sm_session::{handle_sm, resume};
use crate::modules;
use crate::modules::message::Plan;
use crate::ns;
use crate::router::{Entry, Mailbox, Outbound};
use crate::server::Shared;
use natter_xml::{Event, Stanza};
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// Mailbox messages taken in one go before writing.
const BATCH: usize = 64;
/// Messages from one client whose queue commits may be in flight at once.
const PIPELINE: usize = 64;

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
    written: Vec<u64>,
    /// The highest queue entry the offline flush has looked at.
    pub flushed_upto: u64,
    /// Messages from the client in order, some waiting for their queue
    /// commit: carried out (and counted for XEP-0198) strictly in order.
    pub pipeline: VecDeque<Plan>,
}

impl Session {
    /// Queues a stanza for this session's client.
    pub fn send(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        if let Some(sm) = &mut self.sm {
            sm.sent(Arc::from(bytes), None);
        }
    }

    /// Queues a shared stanza (from the mailbox) for this session's client.
    pub fn send_shared(&mut self, bytes: &Arc<[u8]>) {
        self.out.extend_from_slice(bytes);
        if let Some(sm) = &mut self.sm {
            sm.sent(bytes.clone(), None);
        }
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
        self.out.extend_from_slice(bytes);
        match &mut self.sm {
            Some(sm) => sm.sent(bytes.clone(), Some(seq)),
            None => self.written.push(seq),
        }
        true
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

    /// Removes delivered entries from the durable queue.
    pub(super) async fn dequeue(&mut self, seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        for seq in &seqs {
            self.queued.remove(seq);
        }
        if let Err(e) = self.shared.store.offline_delete(&self.bare, &seqs).await {
            tracing::error!(error = %e, "could not remove delivered messages from the queue");
        }
    }
}

/// Runs a bound session until it ends.
pub async fn run(shared: Arc<Shared>, conn: Conn, bound: Bound) {
    let (tx, mut rx) = mpsc::channel(shared.config.c2s.mailbox_size);
    let overflow = Arc::new(Notify::new());
    let conn_id = shared.router.next_conn_id();
    let full = format!("{}/{}", bound.bare, bound.resource);
    let entry = Entry {
        resource: bound.resource.clone(),
        conn_id,
        mailbox: Mailbox {
            tx,
            overflow: overflow.clone(),
        },
        available: false,
        priority: 0,
        presence: None,
    };
    if let Some(old) = shared.router.bind(&bound.bare, entry) {
        // If its mailbox is full it still learns when the router drops it.
        old.mailbox.deliver(Outbound::Conflict);
    }
    let mut s = Session {
        shared: shared.clone(),
        bare: bound.bare,
        resource: bound.resource,
        full,
        conn_id,
        available: false,
        was_available: false,
        priority: 0,
        directed: HashSet::new(),
        out: Vec::new(),
        sm: None,
        queued: HashSet::new(),
        written: Vec::new(),
        flushed_upto: 0,
        pipeline: VecDeque::new(),
    };
    tracing::info!(jid = %s.full, peer = %conn.peer, "session bound");
    let mut reply = b"<iq type='result' id='".to_vec();
    natter_xml::escape_attr(&bound.bind_iq_id, &mut reply);
    reply.extend_from_slice(b"'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>");
    natter_xml::escape_text(&s.full, &mut reply);
    reply.extend_from_slice(b"</jid></bind></iq>");
    s.send_raw(&reply);
    let mut io = Io {
        rx: &mut rx,
        resume_rx: None,
        overflow: &overflow,
    };
    let ended = Box::pin(session_loop(&mut s, conn, &mut io)).await;
    shared
        .resumable
        .lock()
        .expect("resumable lock")
        .remove(s.sm.as_ref().map(|sm| sm.id.as_str()).unwrap_or(""));
    Box::pin(end(&mut s)).await;
    // Requests that will never be answered: unacknowledged (XEP-0198 §5)
    // or still in the mailbox. Their senders get an error instead of silence.
    rx.close();
    let mut lost: Vec<Arc<[u8]>> =
        s.sm.as_mut()
            .map(|sm| sm.take_unacked().into_iter().map(|u| u.bytes).collect())
            .unwrap_or_default();
    while let Ok(m) = rx.try_recv() {
        if let Outbound::Stanza(b) = m {
            lost.push(b);
        }
    }
    bounce_requests(&s, &lost);
    if let Some((conn, e)) = ended {
        Box::pin(close(&mut s, conn, e)).await;
    }
    tracing::info!(jid = %s.full, "session ended");
}

/// Ends the connection of an ended session: anything it still had for its
/// client goes out first, then the stream error or close.
async fn close(s: &mut Session, mut conn: Conn, e: ConnError) {
    if !matches!(e, ConnError::Io(_)) && !s.out.is_empty() {
        let out = std::mem::take(&mut s.out);
        if conn.send(&out).await.is_ok() {
            let written = std::mem::take(&mut s.written);
            s.dequeue(written).await;
        }
    }
    super::finish(&s.shared, &mut conn, e).await;
}

/// The channels a session listens on besides its socket.
pub(super) struct Io<'a> {
    pub(super) rx: &'a mut mpsc::Receiver<Outbound>,
    /// Where resumptions arrive, once the client enabled them (made then,
    /// so sessions without resumption pay nothing for it).
    pub(super) resume_rx: Option<mpsc::Receiver<ResumeRequest>>,
    pub(super) overflow: &'a Notify,
}

/// Runs until the session ends; returns the connection still open (if any)
/// and why it ends.
async fn session_loop(s: &mut Session, conn: Conn, io: &mut Io<'_>) -> Option<(Conn, ConnError)> {
    let mut shutdown = s.shared.shutdown.clone();
    let mut conn = Some(conn);
    let mut detached_until: Option<Instant> = None;
    loop {
        let Some(c) = conn.as_mut() else {
            // Detached: wait for a resumption, the timeout or shutdown.
            let deadline = detached_until.expect("detached has a deadline");
            tokio::select! {
                biased;
                _ = shutdown.changed() => return None,
                r = next_resume(&mut io.resume_rx) => {
                    if let Some(req) = r {
                        match Box::pin(resume(s, req)).await {
                            Ok(c) => {
                                conn = Some(c);
                                detached_until = None;
                            }
                            Err(ended) => return ended,
                        }
                    }
                }
                m = io.rx.recv() => {
                    let m = m?;
                    if handle_outbound(s, m).await.is_err() || over_limit(s) {
                        return None;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::info!(jid = %s.full, "resumption timed out");
                    return None;
                }
            }
            continue;
        };
        let step = attached_step(s, c, io, &mut shutdown).await;
        if !s.pipeline.is_empty() {
            // Whatever happens next, messages already read are carried out
            // (their commits are under way) and counted before it.
            Box::pin(flush_pipeline(s)).await;
        }
        match step {
            Ok(Some(req)) => {
                // A new connection took over: the old one is dropped.
                match Box::pin(resume(s, req)).await {
                    Ok(c) => conn = Some(c),
                    Err(ended) => return ended,
                }
            }
            Ok(None) => {}
            Err(e) => {
                let resumable = s.sm.as_ref().is_some_and(|sm| sm.resumable);
                if resumable && matches!(e, ConnError::Io(_)) {
                    tracing::info!(jid = %s.full, error = ?e, "connection lost; session kept for resumption");
                    conn = None;
                    s.out.clear();
                    let secs = s.shared.config.c2s.resume_timeout_secs;
                    detached_until = Some(Instant::now() + Duration::from_secs(secs));
                } else {
                    return conn.take().map(|c| (c, e));
                }
            }
        }
    }
}

/// One round of an attached session: write what is pending, then wait for
/// the next thing to do. `Ok(Some(req))`: a resumption arrived.
async fn attached_step(
    s: &mut Session,
    conn: &mut Conn,
    io: &mut Io<'_>,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<Option<ResumeRequest>, ConnError> {
    // Stanzas pipelined behind a bind or resume request are already buffered.
    drain_parser(s, conn, io).await?;
    write_out(s, conn).await?;
    tokio::select! {
        biased;
        _ = shutdown.changed() => Err(ConnError::Stream("system-shutdown", None)),
        _ = io.overflow.notified() => Err(too_slow()),
        r = next_resume(&mut io.resume_rx) => Ok(r),
        r = front_commit(&mut s.pipeline), if matches!(s.pipeline.front(), Some(Plan::Commit(_))) => {
            if let Some(Plan::Commit(p)) = s.pipeline.pop_front() {
                carry_out(s, p, r);
            }
            advance(s).await;
            Ok(None)
        }
        m = io.rx.recv() => {
            let Some(m) = m else {
                // The router dropped us: another session took the resource.
                return Err(ConnError::Stream("conflict", Some("replaced by a new session".into())));
            };
            handle_outbound(s, m).await?;
            for _ in 1..BATCH {
                match io.rx.try_recv() {
                    Ok(m) => handle_outbound(s, m).await?,
                    Err(_) => break,
                }
            }
            if over_limit(s) {
                return Err(too_slow());
            }
            Ok(None)
        }
        r = conn.fill() => {
            r?;
            drain_parser(s, conn, io).await?;
            Ok(None)
        }
    }
}

/// The next resumption request; never, when resumption is not enabled.
async fn next_resume(rx: &mut Option<mpsc::Receiver<ResumeRequest>>) -> Option<ResumeRequest> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn too_slow() -> ConnError {
    ConnError::Stream(
        "policy-violation",
        Some(
            "too many stanzas waiting for this client; they stay queued for the next login".into(),
        ),
    )
}

/// More unacknowledged stanzas than `[c2s] max_unacked`.
fn over_limit(s: &Session) -> bool {
    s.sm.as_ref()
        .is_some_and(|sm| sm.unacked_len() > s.shared.config.c2s.max_unacked)
}

/// Writes what the session has for its client, asking for an
/// acknowledgement when stream management is on.
async fn write_out(s: &mut Session, conn: &mut Conn) -> Result<(), ConnError> {
    if s.out.is_empty() {
        return Ok(());
    }
    if let Some(sm) = &mut s.sm {
        if sm.unacked_len() > 0 && !sm.requested {
            sm.requested = true;
            s.out.extend_from_slice(b"<r xmlns='urn:xmpp:sm:3'/>");
        }
    }
    conn.send(&s.out).await?;
    // Released, not cleared: an idle session keeps no write buffer.
    s.out = Vec::new();
    let written = std::mem::take(&mut s.written);
    if !written.is_empty() {
        Box::pin(s.dequeue(written)).await;
    }
    Ok(())
}

/// Handles every complete stanza the parser holds.
async fn drain_parser(s: &mut Session, conn: &mut Conn, io: &mut Io<'_>) -> Result<(), ConnError> {
    while let Some(ev) = conn.parser.next_event()? {
        match ev {
            Event::Stanza(st) if st.ns() == sm::NS => {
                // An <r/> is answered for everything sent before it: the
                // messages in flight are committed first.
                Box::pin(flush_pipeline(s)).await;
                Box::pin(handle_sm(s, &st, io)).await?
            }
            Event::Stanza(st) if st.name() == "message" && st.ns() == ns::CLIENT => {
                check_from(s, &st)?;
                let plan = modules::message::plan(s, st);
                s.pipeline.push_back(plan);
                advance(s).await;
                if s.pipeline.len() >= PIPELINE {
                    Box::pin(finish_one(s)).await;
                }
            }
            Event::Stanza(st) => {
                // Everything else is handled after the messages before it.
                Box::pin(flush_pipeline(s)).await;
                // Boxed: the handlers' state exists only while one runs, so
                // an idle session's future stays small.
                Box::pin(handle_stanza(s, st)).await?;
                if let Some(sm) = &mut s.sm {
                    sm.handled();
                }
            }
            Event::StreamClose => return Err(ConnError::Closed),
            Event::StreamOpen(_) => {
                return Err(ConnError::Stream(
                    "not-well-formed",
                    Some("stream restarted".into()),
                ))
            }
        }
    }
    Ok(())
}

async fn handle_outbound(s: &mut Session, m: Outbound) -> Result<(), ConnError> {
    match m {
        Outbound::Stanza(bytes) => s.send_shared(&bytes),
        Outbound::Queued { seq, bytes } => {
            s.send_queued(seq, &bytes);
        }
        Outbound::Conflict => {
            return Err(ConnError::Stream(
                "conflict",
                Some("replaced by a new session".into()),
            ))
        }
    }
    Ok(())
}

/// Dispatches one stanza from the client.
async fn handle_stanza(s: &mut Session, st: Stanza) -> Result<(), ConnError> {
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
fn check_from(s: &Session, st: &Stanza) -> Result<(), ConnError> {
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
fn bounce_requests(s: &Session, stanzas: &[Arc<[u8]>]) {
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
async fn end(s: &mut Session) {
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
}
