//! A session's mailbox: what other sessions and the server hand it, plus the
//! signals that end or move it (shutdown, overflow, resumption).
//!
//! One small allocation per session: a bounded queue and the waker of the
//! session task, under one uncontended lock. An idle session's mailbox
//! holds no buffer (an empty `VecDeque` allocates nothing), unlike a
//! channel that keeps a block of slots for its whole life.

use crate::c2s::session::ResumeRequest;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// What can be put in a session's mailbox.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// Serialised stanza to write as it is.
    Stanza(Arc<[u8]>),
    /// A message that is also in the recipient's durable queue as `seq`: it
    /// leaves the queue once this session's client has it.
    Queued { seq: u64, bytes: Arc<[u8]> },
    /// Another session bound the same resource: end with `conflict`.
    Conflict,
    /// The account was removed (XEP-0077): end with `not-authorized`.
    AccountRemoved,
    /// The capabilities (XEP-0115) the session waits for were answered by
    /// another session, or that query failed: look again.
    Caps(Arc<crate::modules::caps::Key>),
}

/// Something that ends or moves a session, taken before its stanzas.
pub enum Signal {
    /// The server is stopping.
    Shutdown,
    /// An administrator ended the session.
    Kick,
    /// More stanzas arrived than the mailbox holds: the client is too slow.
    Overflow,
    /// A new connection resumes this session (XEP-0198).
    Resume(ResumeRequest),
}

/// The way to reach one session. Clones share the mailbox.
#[derive(Clone)]
pub struct Mailbox {
    inner: Arc<Inner>,
}

struct Inner {
    cap: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// With the time each was put in (`metrics::now_ns`), for the delivery
    /// latency histogram.
    items: VecDeque<(Outbound, u64)>,
    waker: Option<Waker>,
    closed: bool,
    shutdown: bool,
    kicked: bool,
    overflowed: bool,
    resume: Option<ResumeRequest>,
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("cap", &self.inner.cap)
            .finish_non_exhaustive()
    }
}

impl State {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl Mailbox {
    /// Whether both are the same session's mailbox.
    pub fn same(&self, other: &Mailbox) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A mailbox holding at most `cap` stanzas.
    pub fn new(cap: usize) -> Self {
        Mailbox {
            inner: Arc::new(Inner {
                cap,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding it; a poisoned lock still has a
        // consistent queue.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `m` in the mailbox. False when the session is gone or full; a
    /// full one is told to end (its queued messages stay in the store). A
    /// conflict always gets in: the session must learn it was replaced.
    pub fn deliver(&self, m: Outbound) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        if st.items.len() >= self.inner.cap
            && !matches!(m, Outbound::Conflict | Outbound::AccountRemoved)
        {
            st.overflowed = true;
            st.wake();
            return false;
        }
        st.items.push_back((m, crate::metrics::now_ns()));
        st.wake();
        true
    }

    /// Delivers a plain stanza.
    pub fn stanza(&self, bytes: &Arc<[u8]>) -> bool {
        self.deliver(Outbound::Stanza(bytes.clone()))
    }

    /// Tells the session the server is stopping.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.shutdown = true;
        st.wake();
    }

    /// Tells the session an administrator ends it.
    pub fn kick(&self) {
        let mut st = self.lock();
        st.kicked = true;
        st.wake();
    }

    /// Hands a resuming connection to the session; given back when the
    /// session has ended or another resumption is already waiting.
    pub fn resume(&self, req: ResumeRequest) -> Result<(), ResumeRequest> {
        let mut st = self.lock();
        if st.closed || st.resume.is_some() {
            return Err(req);
        }
        st.resume = Some(req);
        st.wake();
        Ok(())
    }

    /// Whether the session has something to take; otherwise the task of
    /// `cx` is woken when it has.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if !st.items.is_empty() || st.shutdown || st.kicked || st.overflowed || st.resume.is_some()
        {
            return Poll::Ready(());
        }
        match &st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The most urgent signal, if any (shutdown, then a kick, then
    /// overflow, then a resumption).
    pub fn signal(&self) -> Option<Signal> {
        let mut st = self.lock();
        if st.shutdown {
            st.shutdown = false;
            return Some(Signal::Shutdown);
        }
        if st.kicked {
            st.kicked = false;
            return Some(Signal::Kick);
        }
        if st.overflowed {
            st.overflowed = false;
            return Some(Signal::Overflow);
        }
        st.resume.take().map(Signal::Resume)
    }

    /// The next stanza, if any (the session takes it to write it).
    pub fn pop(&self) -> Option<Outbound> {
        let (m, since) = self.lock().items.pop_front()?;
        let bytes = match &m {
            Outbound::Stanza(b) | Outbound::Queued { bytes: b, .. } => b,
            Outbound::Conflict | Outbound::AccountRemoved | Outbound::Caps(_) => return Some(m),
        };
        let kind = crate::metrics::kind_of(bytes);
        let metrics = &crate::metrics::METRICS;
        if kind == 0 {
            let waited = crate::metrics::now_ns().saturating_sub(since);
            metrics
                .delivery
                .observe(std::time::Duration::from_nanos(waited));
        }
        Some(m)
    }

    /// Frees the queue's buffer when it is empty (a session going idle
    /// keeps none).
    pub fn trim(&self) {
        let mut st = self.lock();
        if st.items.is_empty() && st.items.capacity() > 0 {
            st.items = VecDeque::new();
        }
    }

    /// Closes the mailbox for good: later deliveries fail. Returns what was
    /// still in it, and a resumption that came too late.
    pub fn close(&self) -> (Vec<Outbound>, Option<ResumeRequest>) {
        let mut st = self.lock();
        st.closed = true;
        st.waker = None;
        let left = std::mem::take(&mut st.items)
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        (left, st.resume.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn stanza(b: &[u8]) -> Outbound {
        Outbound::Stanza(Arc::from(b))
    }

    #[test]
    fn delivers_in_order_and_wakes_the_waiting_task() {
        let m = Mailbox::new(4);
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(m.poll_ready(&mut cx).is_pending());
        assert!(m.deliver(stanza(b"a")));
        assert!(m.deliver(stanza(b"b")));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "woken once, then no waker"
        );
        assert!(m.poll_ready(&mut cx).is_ready());
        assert!(matches!(m.pop(), Some(Outbound::Stanza(b)) if &*b == b"a"));
        assert!(matches!(m.pop(), Some(Outbound::Stanza(b)) if &*b == b"b"));
        assert!(m.pop().is_none());
        assert!(m.poll_ready(&mut cx).is_pending());
    }

    #[test]
    fn a_full_mailbox_refuses_and_signals_overflow_but_takes_a_conflict() {
        let m = Mailbox::new(2);
        assert!(m.deliver(stanza(b"1")));
        assert!(m.deliver(stanza(b"2")));
        assert!(!m.deliver(stanza(b"3")));
        assert!(matches!(m.signal(), Some(Signal::Overflow)));
        assert!(m.signal().is_none());
        assert!(m.deliver(Outbound::Conflict));
        let (left, resume) = m.close();
        assert_eq!(left.len(), 3);
        assert!(resume.is_none());
    }

    #[test]
    fn a_closed_mailbox_refuses_everything() {
        let m = Mailbox::new(2);
        m.close();
        assert!(!m.deliver(stanza(b"x")));
        assert!(!m.deliver(Outbound::Conflict));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(m.poll_ready(&mut cx).is_pending());
    }

    #[test]
    fn shutdown_comes_before_overflow() {
        let m = Mailbox::new(1);
        assert!(m.deliver(stanza(b"1")));
        assert!(!m.deliver(stanza(b"2")));
        m.shutdown();
        assert!(matches!(m.signal(), Some(Signal::Shutdown)));
        assert!(matches!(m.signal(), Some(Signal::Overflow)));
        assert!(m.signal().is_none());
    }
}
