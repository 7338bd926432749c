//! 1:1 message routing (RFC 6121 §8.5) with XEP-0359 stanza-ids, and the
//! offline store (XEP-0160) for accounts with no available resource.
//!
//! The routing path never builds an XML tree: it reads the envelope, checks
//! the direct children's names, and forwards the bytes with `from` stamped.

use super::carbons;
use crate::c2s::session::Session;
use crate::router::{Mailbox, Outbound};
use crate::{ns, util};
use natter_store::OfflineMessage;
use natter_xml::Stanza;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsgType {
    Normal,
    Chat,
    Groupchat,
    Headline,
    Error,
}

impl MsgType {
    fn parse(t: Option<&str>) -> MsgType {
        match t {
            Some("chat") => MsgType::Chat,
            Some("groupchat") => MsgType::Groupchat,
            Some("headline") => MsgType::Headline,
            Some("error") => MsgType::Error,
            _ => MsgType::Normal,
        }
    }
}

/// What a message from the client leads to. Plans are carried out in the
/// order the messages came, so a sender's messages keep their order even
/// while several queue commits are in flight (the session pipelines them).
pub enum Plan {
    /// Nothing more to do.
    Nothing,
    /// An error for the sender.
    Reply(Vec<u8>),
    /// Bytes for these sessions (not queued).
    Deliver(Vec<Mailbox>, Arc<[u8]>),
    /// A check and/or a queue commit is running; then deliver.
    Commit(Box<Pending>),
    /// An XEP-0198 `<r/>` from the client, answered in its turn: once the
    /// messages before it are carried out and these queue deletes (of the
    /// entries its earlier acks covered) are committed.
    AckRequest(Vec<Settling>),
}

/// A store write a session waits for before it answers an `<r/>`.
pub type Settling = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// Polls each of `writes` and forgets the finished ones; ready when none is
/// left.
pub fn poll_settling(writes: &mut Vec<Settling>, cx: &mut Context<'_>) -> Poll<()> {
    writes.retain_mut(|w| w.as_mut().poll(cx).is_pending());
    if writes.is_empty() {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// The outcome of a message's queue commit or existence check: its seq in
/// the recipient's queue (None: not queued), or an error condition for the
/// sender.
pub type Outcome = Result<Option<u64>, &'static str>;

/// The wait for a message's queue commit (or existence check). The commit
/// itself is already queued in the store's writer: this is only the wait
/// for its answer, polled by the session itself (no task of its own, so the
/// writer wakes the session directly, once per session and not per message).
pub struct Commit {
    fut: Pin<Box<dyn Future<Output = Outcome> + Send + Sync>>,
    done: Option<Outcome>,
}

impl Commit {
    fn new(fut: impl Future<Output = Outcome> + Send + Sync + 'static) -> Self {
        Commit {
            fut: Box::pin(fut),
            done: None,
        }
    }

    /// Polls the commit with the waiting task's waker; ready once the
    /// outcome is in (kept for `wait`).
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.is_none() {
            match self.fut.as_mut().poll(cx) {
                Poll::Ready(r) => self.done = Some(r),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }

    /// Whether the outcome is in, without waiting.
    pub fn is_finished(&mut self) -> bool {
        if self.done.is_none() {
            // A no-op waker: whoever waits for this commit polls it again
            // with its own waker (`wait`), which replaces this one.
            let mut cx = Context::from_waker(Waker::noop());
            if let Poll::Ready(r) = self.fut.as_mut().poll(&mut cx) {
                self.done = Some(r);
            }
        }
        self.done.is_some()
    }

    /// The outcome, waiting for it if needed.
    pub async fn wait(&mut self) -> Outcome {
        if let Some(r) = self.done.take() {
            return r;
        }
        let r = self.fut.as_mut().await;
        // Never polled again after completing: keep the outcome in case the
        // caller asks twice.
        self.done = Some(r);
        r
    }
}

/// A message waiting for its existence check or queue commit.
pub struct Pending {
    pub task: Commit,
    /// Already handed to the recipient's sessions (before its commit).
    delivered: bool,
    /// Its queue entry, while the write may still wait for an ack.
    held: Option<u64>,
    /// The sessions it was handed to then, and the router's count of
    /// changes before they were looked up.
    early: Vec<Mailbox>,
    seen: u64,
    st: Stanza,
    ty: MsgType,
    to: String,
    bare: String,
    resource: Option<String>,
    bytes: Arc<[u8]>,
}

impl Plan {
    /// Whether carrying it out would wait.
    pub fn is_ready(&mut self) -> bool {
        match self {
            Plan::Commit(p) => p.task.is_finished(),
            Plan::AckRequest(writes) => {
                let mut cx = Context::from_waker(Waker::noop());
                poll_settling(writes, &mut cx).is_ready()
            }
            _ => true,
        }
    }
}

impl Pending {
    /// Has its queue write done without waiting any longer for the
    /// recipient's ack (someone waits for the commit).
    pub fn hurry(&mut self, s: &Session) {
        if let Some(seq) = self.held.take() {
            s.shared.store.offline_hurry(&self.bare, &[seq]);
        }
    }

    /// Completes the message once its task finished: hands a committed entry
    /// to the recipient's sessions; an error for the sender, if any.
    pub fn complete(self: Box<Self>, s: &Session, result: Outcome) -> Option<Vec<u8>> {
        match result {
            // No session came or became available since: all have it.
            Ok(Some(_)) if self.delivered && s.shared.router.changes() == self.seen => None,
            Ok(Some(seq)) => {
                let direct = self
                    .resource
                    .as_deref()
                    .and_then(|r| s.shared.router.session(&self.bare, r));
                let targets = match direct {
                    Some(e) => vec![e.mailbox],
                    None => s.shared.router.message_targets(&self.bare),
                };
                // Sessions that came since it was handed on get it now:
                // their offline flush may have run before the commit.
                for t in targets {
                    if self.early.iter().any(|e| e.same(&t)) {
                        continue;
                    }
                    t.deliver(Outbound::Queued {
                        seq,
                        bytes: self.bytes.clone(),
                    });
                }
                None
            }
            Ok(None) => None,
            Err(cond) if self.ty != MsgType::Error => Some(util::bounce(
                &self.st, &s.full, &self.to, "cancel", cond, None,
            )),
            Err(_) => None,
        }
    }
}

/// Plans the routing of a message from the client (RFC 6121 §8.5). Chat and
/// normal messages with content go into the recipient's durable queue (the
/// sender's acknowledgement waits for the commit: it means the message is
/// safe) and to the available sessions, which remove it from the queue
/// once their client has it. Sessions online now get it at once, before
/// the commit; otherwise whoever is online when it lands.
pub fn plan(s: &mut Session, st: Stanza) -> Plan {
    let ty = MsgType::parse(st.stanza_type().as_deref());
    let to = match st.to() {
        None => s.bare.clone(),
        Some(t) => t.into_owned(),
    };
    let Some(target) = s.local_target(&st, &to) else {
        return Plan::Nothing; // the sender got jid-malformed / remote-server-not-found
    };
    let bounce = |cond: &str| Plan::Reply(util::bounce(&st, &s.full, &to, "cancel", cond, None));
    if carbons::is_forged(&st) {
        // Carbons come from the server only (XEP-0280 §11).
        return match ty {
            MsgType::Error => Plan::Nothing,
            _ => Plan::Reply(util::bounce(
                &st,
                &s.full,
                &to,
                "cancel",
                "not-allowed",
                Some("only the server sends carbon copies (XEP-0280)"),
            )),
        };
    }
    if target.node().is_none() {
        // Messages to the server itself: nothing here consumes them.
        return if matches!(ty, MsgType::Error | MsgType::Headline) {
            Plan::Nothing
        } else {
            bounce("service-unavailable")
        };
    }
    let bare = target.to_bare().as_str().to_owned();
    if let Some(refused) = super::blocking::refuse_message(s, &st, target.as_str(), &bare) {
        return refused;
    }
    let resource = target.resource().map(|r| r.as_str().to_owned());
    let shared = &s.shared;
    let (bytes, stanza_id) = stamp(&st, &s.full, &bare);
    let queued = matches!(ty, MsgType::Normal | MsgType::Chat) && storable(&st);
    let seen = shared.router.changes();
    // Full JID of a connected resource: that resource (RFC 6121 §8.5.3.1);
    // and the carbons-enabled sessions that do not get it (XEP-0280).
    let copied = shared.router.any_carbons() && carbons::eligible(&st);
    let route = shared
        .router
        .message_route(&bare, resource.as_deref(), copied, s.conn_id);
    let to_resource = route.direct;
    let targets = route.targets;
    match ty {
        // Errors to a missing resource are dropped (RFC 6121 §8.5.3.2.2).
        MsgType::Error if resource.is_some() && !to_resource => return Plan::Nothing,
        MsgType::Error => return Plan::Deliver(targets, bytes),
        // Groupchat only to a connected full JID (§8.5.2.1.2, §8.5.3.2.1).
        MsgType::Groupchat if !to_resource => return bounce("service-unavailable"),
        _ => {}
    }
    if copied {
        carbons::copy(
            s,
            &bare,
            &route.copies,
            st.stanza_type().as_deref(),
            &bytes,
            &stanza_id,
        );
    }
    let shared = &s.shared;
    // Handing a message on before the ones ahead of it in the pipeline
    // would reorder them: only when every one of those is already out.
    let in_order = s
        .pipeline
        .iter()
        .all(|p| matches!(p, Plan::AckRequest(_)) || matches!(p, Plan::Commit(c) if c.delivered));
    if !queued && !targets.is_empty() {
        // Headlines, chat states, no-store messages: live or not at all.
        if in_order {
            for t in &targets {
                t.stanza(&bytes);
            }
            return Plan::Nothing;
        }
        return Plan::Deliver(targets, bytes);
    }
    let mut delivered = false;
    let mut held = None;
    let mut early_to = Vec::new();
    let task = if queued {
        // Archiving (XEP-0313) is decided here and queued after the insert.
        let archiving = super::mam::prepare(s, &st, &bytes, &stanza_id, &bare, resource.as_deref());
        let msg = OfflineMessage {
            from: s.full.clone(),
            stanza_id,
            stamp_unix_ms: util::now_unix_ms(),
            stanza: bytes.to_vec(),
            msg_id: st.id().map(|i| i.into_owned()).unwrap_or_default(),
        };
        // Queued in the writer now, so this sender's messages commit in the
        // order they came; only the wait for the commit runs apart.
        let early = in_order && !targets.is_empty();
        // Handed on now, the write may wait for the recipient's ack (which
        // then withdraws it: it never touches the disk).
        let ack_wait = if early {
            std::time::Duration::from_millis(shared.config.store.ack_wait_ms)
        } else {
            std::time::Duration::ZERO
        };
        let (seq, commit) = shared.store.offline_push_if_account(&bare, msg, ack_wait);
        // Only when the archive lags far behind: see mam::MAX_BACKLOG.
        let archive_wait = archiving.and_then(|a| a.submit(&shared.store));
        if early {
            // Online recipients get it now, as queue entry `seq`: their ack
            // withdraws the insert if it comes within `ack_wait`, or removes
            // the entry after it (the writer keeps the order). The sender's
            // ack waits for one or the other.
            for t in &targets {
                t.deliver(Outbound::Queued {
                    seq,
                    bytes: bytes.clone(),
                });
            }
            delivered = true;
            held = Some(seq);
            early_to = targets;
        }
        Commit::new(async move {
            let outcome = match commit.await {
                Ok(Some(seq)) => Ok(Some(seq)),
                Ok(None) => Err("service-unavailable"),
                Err(e) => {
                    tracing::error!(error = %e, "queueing a message failed");
                    Err("internal-server-error")
                }
            };
            if let Some(wait) = archive_wait {
                wait.await;
            }
            outcome
        })
    } else if shared.router.is_online(&bare) {
        // Not kept, and no session of the account takes it: dropped.
        return Plan::Nothing;
    } else {
        // Nobody online: an error unless the account exists.
        let store = shared.store.clone();
        let owner = bare.clone();
        // A task of its own: the read starts now, whatever waits before it.
        let check = tokio::spawn(async move {
            if !store.account_exists(&owner).await.unwrap_or(false) {
                return if ty == MsgType::Headline {
                    Ok(None)
                } else {
                    Err("service-unavailable")
                };
            }
            Ok(None)
        });
        Commit::new(async move { check.await.unwrap_or(Err("internal-server-error")) })
    };
    Plan::Commit(Box::new(Pending {
        task,
        delivered,
        held,
        early: early_to,
        seen,
        st,
        ty,
        to,
        bare,
        resource,
        bytes,
    }))
}

/// The bytes to forward: `from` stamped, a server stanza-id added for
/// chat and normal messages, and any stanza-id claiming to be ours removed.
fn stamp(st: &Stanza, from: &str, bare: &str) -> (Arc<[u8]>, String) {
    let ty = MsgType::parse(st.stanza_type().as_deref());
    let spoofed: Vec<usize> = st
        .children()
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            c.name == "stanza-id" && c.ns == ns::SID && c.attr(st, "by").as_deref() == Some(bare)
        })
        .map(|(i, _)| i)
        .chain(carbons::private_children(st))
        .collect();
    let mut extra = Vec::new();
    let mut id = String::new();
    if matches!(ty, MsgType::Normal | MsgType::Chat) {
        id = super::mam::stanza_id();
        extra.extend_from_slice(b"<stanza-id xmlns='urn:xmpp:sid:0' id='");
        extra.extend_from_slice(id.as_bytes());
        extra.extend_from_slice(b"' by='");
        natter_xml::escape_attr(bare, &mut extra);
        extra.extend_from_slice(b"'/>");
    }
    (st.rewrite(Some(from), None, &spoofed, &extra).into(), id)
}

/// Whether a message is kept for an offline recipient: chat states alone and
/// `no-store` hints are not (XEP-0160, XEP-0085, XEP-0334).
fn storable(st: &Stanza) -> bool {
    let children = st.children();
    if children
        .iter()
        .any(|c| c.ns == ns::HINTS && (c.name == "no-store" || c.name == "no-permanent-store"))
    {
        return false;
    }
    if children
        .iter()
        .any(|c| c.ns == ns::HINTS && c.name == "store")
    {
        return true;
    }
    children.iter().any(|c| {
        !(c.ns == ns::CHATSTATES
            || c.name == "thread"
            || (c.ns == ns::SID && c.name == "origin-id"))
    })
}
