//! A session's pipeline of messages from its client: each is queued in the
//! store at once and carried out when its commit lands, strictly in order,
//! counting for XEP-0198 only then. An `<r/>` takes its place in the same
//! line, so the session goes on reading while it waits its turn.

use super::session::Session;
use super::sm_session::answer_ack_request;
use crate::modules;
use crate::modules::message::{poll_settling, Outcome, Plan};
use std::collections::VecDeque;
use std::task::{Context, Poll};

/// Carries out the plan at the front of the pipeline (waiting for its
/// commit if needed); it then counts as handled for XEP-0198.
pub(super) async fn finish_one(s: &mut Session) {
    let Some(plan) = s.pipeline.pop_front() else {
        return;
    };
    match plan {
        Plan::Commit(mut p) => {
            let r = p.task.wait().await;
            carry_out(s, p, r);
            return;
        }
        Plan::AckRequest(writes) => {
            for w in writes {
                w.await;
            }
            answer_ack_request(s);
            return; // not a stanza: not counted
        }
        Plan::Nothing => {}
        Plan::Reply(bytes) => s.send(&bytes),
        Plan::Deliver(targets, bytes) => {
            for t in targets {
                t.stanza(&bytes);
            }
        }
    }
    if let Some(sm) = &mut s.sm {
        sm.handled();
    }
}

/// Completes a message whose commit finished.
fn carry_out(s: &mut Session, p: Box<modules::message::Pending>, r: Outcome) {
    if let Some(err) = p.complete(s, r) {
        s.send(&err);
    }
    if let Some(sm) = &mut s.sm {
        sm.handled();
    }
}

/// Carries out the plans at the front that need no waiting.
pub(super) async fn advance(s: &mut Session) {
    while s.pipeline.front_mut().is_some_and(Plan::is_ready) {
        finish_one(s).await;
    }
}

/// Has every queue write in the pipeline done now, without waiting any
/// longer for the recipients' acks: the session is about to wait for them.
pub(super) fn hurry_pipeline(s: &mut Session) {
    let mut pipeline = std::mem::take(&mut s.pipeline);
    for p in pipeline.iter_mut() {
        if let Plan::Commit(c) = p {
            c.hurry(s);
        }
    }
    s.pipeline = pipeline;
}

/// Carries out every plan, waiting for the commits.
pub(super) async fn flush_pipeline(s: &mut Session) {
    hurry_pipeline(s);
    while !s.pipeline.is_empty() {
        finish_one(s).await;
    }
}

/// Polls the commit at the front of the pipeline, if there is one: ready
/// once it finished (its result is kept until it is carried out).
pub(super) fn poll_front(pipeline: &mut VecDeque<Plan>, cx: &mut Context<'_>) -> Poll<()> {
    match pipeline.front_mut() {
        Some(Plan::Commit(p)) => p.task.poll_ready(cx),
        Some(Plan::AckRequest(writes)) => poll_settling(writes, cx),
        _ => Poll::Pending,
    }
}
