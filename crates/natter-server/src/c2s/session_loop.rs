//! A session's task: it waits holding one small box of state (the
//! session and its connection) and nothing else; each round of work runs in
//! a future boxed for that round only.
//!
//! A session is attached (it has a connection) or detached (the connection
//! dropped and the client may resume within `resume_timeout_secs`). While
//! detached it keeps collecting stanzas as unacknowledged, to retransmit.

use super::conn::{Conn, ConnError};
use super::negotiate::Bound;
use super::pipeline::{advance, finish_one, flush_pipeline, hurry_pipeline, poll_front};
use super::session::{bounce_requests, check_from, end, handle_outbound, handle_stanza, Session};
use super::sm;
use super::sm_session::{self, handle_sm, resume};
use crate::mailbox::{Mailbox, Signal};
use crate::modules;
use crate::modules::message::Plan;
use crate::ns;
use crate::router::{Entry, Outbound};
use crate::server::Shared;
use natter_xml::Event;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Mailbox messages taken in one go before writing.
const BATCH: usize = 64;
/// Messages from one client whose queue commits may be in flight at once.
const PIPELINE: usize = 64;
/// Socket reads in one round before the session lets other tasks run.
const READ_ROUNDS: usize = 4;

/// Everything a session task owns, in one box: while the session waits,
/// its task holds this box and nothing else (the work between waits runs
/// in futures boxed for just that long).
pub struct State {
    s: Session,
    /// None while detached, waiting for a resumption.
    conn: Option<Conn>,
    /// While detached: when resumption stops being possible.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// While attached with stanzas no `<r/>` covers: when a request of
    /// its own is due (none while idle).
    ack_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// What a session does after a round of work (small: the task holds it
/// while it waits).
enum Next {
    /// Wait for the socket, the mailbox, a commit or the deadline.
    Wait,
    /// More work is ready now (a round stops early to stay fair).
    Again,
    /// The session ends, with the connection still open (if any) and why.
    End(Option<Box<(Conn, ConnError)>>),
}

/// Runs a bound session until it ends.
pub async fn run(mut st: Box<State>) {
    let ended = loop {
        match Box::pin(step(&mut st)).await {
            Next::Wait => std::future::poll_fn(|cx| st.poll_wake(cx)).await,
            Next::Again => tokio::task::yield_now().await,
            Next::End(ended) => break ended.map(|b| *b),
        }
    };
    Box::pin(finish(st, ended)).await;
}

/// Binds the session in the router and queues the bind result.
pub fn start(shared: Arc<Shared>, conn: Conn, bound: Bound) -> Box<State> {
    let mailbox = Mailbox::new(shared.config.c2s.mailbox_size);
    let conn_id = shared.router.next_conn_id();
    let full = format!("{}/{}", bound.bare, bound.resource);
    let entry = Entry {
        resource: bound.resource.clone(),
        conn_id,
        mailbox: mailbox.clone(),
        available: false,
        priority: 0,
        presence: None,
        carbons: false,
        caps: None,
    };
    if let Some(old) = shared.router.bind(&bound.bare, entry) {
        old.mailbox.deliver(Outbound::Conflict);
    }
    if *shared.shutdown.borrow() {
        // Bound while the server was telling every session to stop.
        mailbox.shutdown();
    }
    let mut s = Session {
        shared,
        bare: bound.bare,
        resource: bound.resource,
        full,
        conn_id,
        mailbox,
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
        deletes: Vec::new(),
        carbons: Default::default(),
        csi: None,
        caps: None,
    };
    tracing::info!(jid = %s.full, peer = %conn.peer, "session bound");
    let mut reply = b"<iq type='result' id='".to_vec();
    natter_xml::escape_attr(&bound.bind_iq_id, &mut reply);
    reply.extend_from_slice(b"'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>");
    natter_xml::escape_text(&s.full, &mut reply);
    reply.extend_from_slice(b"</jid></bind></iq>");
    s.send_raw(&reply);
    Box::new(State {
        s,
        conn: Some(conn),
        deadline: None,
        ack_timer: None,
    })
}

impl State {
    /// Ready when the session has something to do. Registers the task's
    /// waker with the mailbox, the commit at the front of the pipeline, and
    /// the socket or (detached) the resumption deadline.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.s.mailbox.poll_ready(cx).is_ready()
            || poll_front(&mut self.s.pipeline, cx).is_ready()
        {
            return Poll::Ready(());
        }
        if let Some(t) = &mut self.ack_timer {
            if t.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        match (&self.conn, &mut self.deadline) {
            // A socket error is ready too: the next read reports it.
            (Some(c), _) => c.poll_readable(cx).map(|_| ()),
            (None, Some(d)) => d.as_mut().poll(cx),
            (None, None) => Poll::Ready(()),
        }
    }
}

/// One round of work, until the session would have to wait.
async fn step(st: &mut State) -> Next {
    match st.s.mailbox.signal() {
        Some(Signal::Shutdown) => {
            return end_attached(st, ConnError::Stream("system-shutdown", None)).await
        }
        Some(Signal::Kick) => {
            let text = "ended by an administrator".to_owned();
            return end_attached(st, ConnError::Stream("policy-violation", Some(text))).await;
        }
        Some(Signal::Overflow) => return end_attached(st, too_slow()).await,
        Some(Signal::Resume(req)) => {
            // A new connection takes over; the old one (if any) is dropped.
            if !st.s.pipeline.is_empty() {
                flush_pipeline(&mut st.s).await;
            }
            modules::csi::reset(&mut st.s);
            match resume(&mut st.s, req).await {
                Ok(c) => {
                    st.conn = Some(c);
                    st.deadline = None;
                }
                Err(ended) => return Next::End(ended.map(Box::new)),
            }
        }
        None => {}
    }
    let State {
        s,
        conn,
        deadline,
        ack_timer,
    } = st;
    let Some(c) = conn.as_mut() else {
        *ack_timer = None;
        // Detached: collect stanzas to retransmit on resumption.
        let mut n = 0;
        while let Some(m) = s.mailbox.pop() {
            if handle_outbound(s, m).await.is_err() || over_limit(s) {
                return Next::End(None);
            }
            n += 1;
            if n == BATCH {
                return Next::Again;
            }
        }
        s.out.clear();
        if deadline.as_ref().is_none_or(|d| d.is_elapsed()) {
            tracing::info!(jid = %s.full, "resumption timed out");
            return Next::End(None);
        }
        s.mailbox.trim();
        return Next::Wait;
    };
    match attached_round(s, c).await {
        Ok(next) => {
            set_ack_timer(s, ack_timer);
            next
        }
        Err(e) => {
            let resumable = s.sm.as_ref().is_some_and(|sm| sm.resumable);
            if resumable && matches!(e, ConnError::Io(_)) {
                tracing::info!(jid = %s.full, error = ?e, "connection lost; session kept for resumption");
                s.hurry_queued();
                if !s.pipeline.is_empty() {
                    flush_pipeline(s).await;
                }
                modules::csi::reset(s);
                *conn = None;
                s.out.clear();
                let secs = s.shared.config.c2s.resume_timeout_secs;
                *deadline = Some(Box::pin(tokio::time::sleep(Duration::from_secs(secs))));
                Next::Again
            } else {
                end_attached(st, e).await
            }
        }
    }
}

/// Ends the session for `e`: messages already read are carried out first
/// (their commits are under way) and counted.
async fn end_attached(st: &mut State, e: ConnError) -> Next {
    if !st.s.pipeline.is_empty() {
        flush_pipeline(&mut st.s).await;
    }
    Next::End(st.conn.take().map(|c| Box::new((c, e))))
}

/// Reads from the client, handles what it sent and what the mailbox holds,
/// and writes the result.
async fn attached_round(s: &mut Session, conn: &mut Conn) -> Result<Next, ConnError> {
    // Commits that landed, in order.
    advance(s).await;
    // Stanzas pipelined behind a bind or resume request are already buffered.
    drain_parser(s, conn).await?;
    let mut again = false;
    for round in 0..READ_ROUNDS {
        if !conn.try_fill()? {
            break;
        }
        drain_parser(s, conn).await?;
        again = round + 1 == READ_ROUNDS;
    }
    let mut n = 0;
    while let Some(m) = s.mailbox.pop() {
        handle_outbound(s, m).await?;
        n += 1;
        if n == BATCH {
            again = true;
            break;
        }
    }
    // A reader too slow for what others send it is cut. (The offline flush
    // at login may leave more than the limit unacknowledged by itself: it
    // does not count until more arrives.)
    if n > 0 && over_limit(s) {
        return Err(too_slow());
    }
    if let Some(sm) = &mut s.sm {
        if sm.request_now(std::time::Instant::now()) {
            s.out.extend_from_slice(REQUEST);
        }
    }
    write_out(s, conn).await?;
    if again {
        return Ok(Next::Again);
    }
    s.mailbox.trim();
    s.prune_deletes();
    conn.parser.trim();
    if let Some(sm) = &mut s.sm {
        sm.trim();
    }
    Ok(Next::Wait)
}

/// After the loop: leaves the router, answers requests that will never be
/// answered, and closes the connection.
async fn finish(mut st: Box<State>, ended: Option<(Conn, ConnError)>) {
    let s = &mut st.s;
    s.shared
        .resumable
        .lock()
        .expect("resumable lock")
        .remove(s.sm.as_ref().map(|sm| sm.id.as_str()).unwrap_or(""));
    s.hurry_queued();
    end(s).await;
    s.settle_deletes().await;
    // Requests that will never be answered: unacknowledged (XEP-0198 §5)
    // or still in the mailbox. Their senders get an error instead of silence.
    let (left, late_resume) = s.mailbox.close();
    let mut lost: Vec<Arc<[u8]>> =
        s.sm.as_mut()
            .map(|sm| sm.take_unacked().into_iter().map(|u| u.bytes).collect())
            .unwrap_or_default();
    for m in left {
        if let Outbound::Stanza(b) = m {
            lost.push(b);
        }
    }
    bounce_requests(s, &lost);
    if let Some(req) = late_resume {
        let mut conn = *req.conn;
        conn.send(&sm_session::failed_bytes("item-not-found"))
            .await
            .ok();
        conn.close().await;
    }
    if let Some((conn, e)) = ended {
        close(s, conn, e).await;
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
            s.dequeue(written);
        }
    }
    super::finish(&s.shared, &mut conn, e).await;
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

const REQUEST: &[u8] = b"<r xmlns='urn:xmpp:sm:3'/>";

/// Arms (or re-arms, or drops) the timer of the next `<r/>` of its own.
fn set_ack_timer(s: &Session, timer: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    let due = s.sm.as_ref().and_then(|sm| sm.request_due());
    match (due, timer.as_mut()) {
        (None, _) => *timer = None,
        (Some(due), Some(t)) => {
            let due = tokio::time::Instant::from_std(due);
            if t.deadline() != due {
                t.as_mut().reset(due);
            }
        }
        (Some(due), None) => {
            let due = tokio::time::Instant::from_std(due);
            *timer = Some(Box::pin(tokio::time::sleep_until(due)));
        }
    }
}

/// Writes what the session has for its client, asking for an
/// acknowledgement when stream management is on and one is due
/// (`sm::ACK_DELAY`).
async fn write_out(s: &mut Session, conn: &mut Conn) -> Result<(), ConnError> {
    if s.out.is_empty() {
        return Ok(());
    }
    if let Some(sm) = &mut s.sm {
        if sm.request_on_write(std::time::Instant::now()) {
            s.out.extend_from_slice(REQUEST);
        }
    }
    conn.send(&s.out).await?;
    // Released, not cleared: an idle session keeps no write buffer.
    s.out = Vec::new();
    let written = std::mem::take(&mut s.written);
    s.dequeue(written);
    Ok(())
}

/// Handles every complete stanza the parser holds.
async fn drain_parser(s: &mut Session, conn: &mut Conn) -> Result<(), ConnError> {
    while let Some(ev) = conn.parser.next_event()? {
        crate::metrics::stanza_in(&ev);
        match ev {
            Event::Stanza(st) if st.ns() == sm::NS && st.name() == "r" && s.sm.is_some() => {
                // Answered for everything before it, the deletes its acks
                // asked for included, in its turn: reading goes on.
                let writes = std::mem::take(&mut s.deletes);
                s.pipeline.push_back(Plan::AckRequest(writes));
                advance(s).await;
            }
            Event::Stanza(st) if st.ns() == sm::NS && st.name() == "a" => {
                // About what this session wrote, not what it read: no need
                // to wait for the pipeline. Its deletes may withdraw queue
                // inserts still waiting for this very ack.
                handle_sm(s, &st).await?
            }
            Event::Stanza(st) if st.ns() == sm::NS => {
                flush_pipeline(s).await;
                handle_sm(s, &st).await?
            }
            Event::Stanza(st) if st.ns() == modules::csi::NS => {
                // A nonza: not counted by XEP-0198.
                modules::csi::from_client(s, &st)?
            }
            Event::Stanza(st) if st.name() == "message" && st.ns() == ns::CLIENT => {
                check_from(s, &st)?;
                // Loads blocklists the check needs (none in the steady state).
                modules::blocking::prepare(s, &st).await;
                let plan = modules::message::plan(s, st);
                s.pipeline.push_back(plan);
                advance(s).await;
                if s.pipeline.len() >= PIPELINE {
                    // Full: no more waiting for acks, reading stops until
                    // the front is carried out.
                    hurry_pipeline(s);
                    finish_one(s).await;
                }
            }
            Event::Stanza(st) => {
                // Everything else is handled after the messages before it.
                flush_pipeline(s).await;
                // Boxed: the handlers' state exists only while one runs.
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
