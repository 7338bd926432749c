//! A bound session: its mailbox, its loop, and what happens when it ends.

use super::conn::{Conn, ConnError};
use super::negotiate::Bound;
use crate::modules;
use crate::ns;
use crate::router::{Entry, Outbound};
use crate::server::Shared;
use natter_xml::{Event, Stanza};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Mailbox messages taken in one go before writing.
const BATCH: usize = 64;

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
    /// Offline-queue entries put in `out`; deleted from the store once written.
    pub offline_sent: Vec<u64>,
}

impl Session {
    /// Queues bytes for this session's client.
    pub fn send(&mut self, bytes: &[u8]) {
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
}

/// Puts `bytes` in one mailbox; false when that session is gone or full.
pub fn deliver_one(tx: &mpsc::Sender<Outbound>, bytes: &Arc<[u8]>) -> bool {
    match tx.try_send(Outbound::Stanza(bytes.clone())) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!("a session's mailbox is full; stanza not delivered to it");
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Runs a bound session until it ends.
pub async fn run(shared: Arc<Shared>, mut conn: Conn, bound: Bound) {
    let (tx, mut rx) = mpsc::channel(shared.config.c2s.mailbox_size);
    let conn_id = shared.router.next_conn_id();
    let full = format!("{}/{}", bound.bare, bound.resource);
    let entry = Entry {
        resource: bound.resource.clone(),
        conn_id,
        tx: tx.clone(),
        available: false,
        priority: 0,
        presence: None,
    };
    if let Some(old) = shared.router.bind(&bound.bare, entry) {
        let _ = old.tx.try_send(Outbound::Conflict);
        // A full mailbox still learns of the conflict when the router drops it.
    }
    drop(tx);
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
        offline_sent: Vec::new(),
    };
    tracing::info!(jid = %s.full, peer = %conn.peer, "session bound");
    let mut reply = b"<iq type='result' id='".to_vec();
    natter_xml::escape_attr(&bound.bind_iq_id, &mut reply);
    reply.extend_from_slice(b"'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>");
    natter_xml::escape_text(&s.full, &mut reply);
    reply.extend_from_slice(b"</jid></bind></iq>");
    let result = match conn.send(&reply).await {
        Ok(()) => session_loop(&mut s, &mut conn, &mut rx).await,
        Err(e) => Err(e.into()),
    };
    end(&mut s).await;
    let result = match result {
        Err(ConnError::Io(e)) => Err(ConnError::Io(e)),
        other => {
            if !s.out.is_empty() {
                let out = std::mem::take(&mut s.out);
                if conn.send(&out).await.is_ok() {
                    written_offline(&mut s).await;
                }
            }
            other
        }
    };
    match result {
        Ok(()) => conn.close().await,
        Err(e) => super::finish(&shared, &mut conn, e).await,
    }
    tracing::info!(jid = %s.full, "session ended");
}

async fn session_loop(
    s: &mut Session,
    conn: &mut Conn,
    rx: &mut mpsc::Receiver<Outbound>,
) -> Result<(), ConnError> {
    let mut shutdown = s.shared.shutdown.clone();
    // Stanzas pipelined behind the bind request are already buffered.
    drain_parser(s, conn).await?;
    loop {
        write_out(s, conn).await?;
        // Biased: shutdown first, then deliveries already waiting, then reads.
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                return Err(ConnError::Stream("system-shutdown", None));
            }
            m = rx.recv() => {
                let Some(m) = m else {
                    // The router dropped us: another session took the resource.
                    return Err(ConnError::Stream("conflict", Some("replaced by a new session".into())));
                };
                handle_outbound(s, m).await?;
                for _ in 1..BATCH {
                    match rx.try_recv() {
                        Ok(m) => handle_outbound(s, m).await?,
                        Err(_) => break,
                    }
                }
            }
            r = conn.fill() => {
                r?;
                drain_parser(s, conn).await?;
            }
        }
    }
}

/// Writes what the session has for its client.
async fn write_out(s: &mut Session, conn: &mut Conn) -> Result<(), ConnError> {
    if s.out.is_empty() {
        return Ok(());
    }
    conn.send(&s.out).await?;
    s.out.clear();
    written_offline(s).await;
    if s.out.capacity() > 16 * 1024 {
        s.out = Vec::new();
    }
    Ok(())
}

/// Handles every complete stanza the parser holds.
async fn drain_parser(s: &mut Session, conn: &mut Conn) -> Result<(), ConnError> {
    while let Some(ev) = conn.parser.next_event()? {
        match ev {
            Event::Stanza(st) => handle_stanza(s, st).await?,
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
        Outbound::Stanza(bytes) => s.send(&bytes),
        Outbound::Conflict => {
            return Err(ConnError::Stream(
                "conflict",
                Some("replaced by a new session".into()),
            ))
        }
        Outbound::CheckOffline => {
            if s.available {
                modules::offline::flush(s).await;
            }
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
    if let Some(from) = st.from() {
        if !from_is_ours(s, &from) {
            return Err(ConnError::Stream(
                "invalid-from",
                Some(format!("you are {}", s.full)),
            ));
        }
    }
    match st.name() {
        "message" => modules::message::from_client(s, &st).await,
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

fn from_is_ours(s: &Session, from: &str) -> bool {
    if from == s.full || from == s.bare {
        return true;
    }
    match jid::Jid::new(from) {
        Ok(j) => j.as_str() == s.full || j.as_str() == s.bare,
        Err(_) => false,
    }
}

/// Offline messages now written to the socket leave the store.
async fn written_offline(s: &mut Session) {
    if s.offline_sent.is_empty() {
        return;
    }
    let seqs = std::mem::take(&mut s.offline_sent);
    if let Err(e) = s.shared.store.offline_delete(&s.bare, &seqs).await {
        tracing::error!(error = %e, "could not delete delivered offline messages");
    }
}

/// Cleans up when the session ends for any reason.
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
