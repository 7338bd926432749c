//! Client-to-server connections: one task per connection.
//!
//! - `transport`: plain, TLS or WebSocket socket
//! - `conn`: socket + stream parser + writing stream-level elements, with
//!   the transport's framing (byte stream, or one element per WebSocket
//!   message)
//! - `websocket`: a WebSocket's socket, frame decoder and control frames
//! - `ws_codec`: RFC 6455 frames, no I/O
//! - `framing`: RFC 7395 (`<open/>`, `<close/>`, one element per message), no I/O
//! - `negotiate`: stream headers, STARTTLS, SASL, bind
//! - `session`: a bound session's state, what modules do with it, its end
//! - `session_loop`: the session's task: waiting small, rounds of work,
//!   detaching and resumption
//! - `pipeline`: a session's in-order pipeline of messages and queue commits
//! - `sm`: stream management (XEP-0198) counters and unacknowledged stanzas
//! - `sm_session`: XEP-0198 elements and resumption on a session

pub mod conn;
pub mod framing;
pub mod negotiate;
mod pipeline;
pub mod session;
mod session_loop;
pub mod sm;
mod sm_session;
pub mod transport;
pub mod websocket;
pub mod ws_codec;

use crate::limits::{ConnSlot, Refusal};
use crate::metrics::SessionGauge;
use crate::server::Shared;
use conn::{Conn, ConnError};
use natter_xml::Limits;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use transport::Transport;

/// Serves one accepted connection until it ends.
///
/// Spawned as the connection's task as it is: the task's size is this
/// future's, held for the connection's whole life. Everything before the
/// session (TLS handshake, negotiation) runs in a box freed when it is
/// done, and the session keeps its state in one box of its own.
///
/// `slot` is the connection's place under the connection limits; it also
/// holds the server, so `Server::run` waits for this task at shutdown.
pub async fn serve(slot: ConnSlot, tcp: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let shared = slot.shared().clone();
    let Some(state) = Box::pin(connect(shared, tcp, peer, direct_tls)).await else {
        return;
    };
    let _bound = SessionGauge::new(if direct_tls { 1 } else { 0 });
    session_loop::run(state).await;
    drop(slot);
}

/// Serves an XMPP stream over a WebSocket upgraded from HTTP: the same
/// negotiation and session as `serve`, with WebSocket framing.
pub async fn serve_websocket(
    slot: ConnSlot,
    ws: transport::WsStream,
    peer: SocketAddr,
    early: bytes::Bytes,
) {
    let shared = slot.shared().clone();
    let started = Box::pin(async {
        let conn = match Conn::websocket(ws, peer, limits(&shared), &early) {
            Ok(c) => c,
            Err(failed) => {
                let (mut conn, e) = *failed;
                finish(&shared, &mut conn, e).await;
                return None;
            }
        };
        let (conn, bound) = negotiate_phase(&shared, conn).await?;
        Some(session_loop::start(shared.clone(), conn, bound))
    })
    .await;
    let Some(state) = started else {
        return;
    };
    let _bound = SessionGauge::new(2);
    session_loop::run(state).await;
    drop(slot);
}

/// Answers a connection refused by the limits with a stream error naming
/// the limit (after the TLS handshake on the direct-TLS port), and closes it.
pub async fn refuse(shared: Arc<Shared>, tcp: TcpStream, direct_tls: bool, refusal: Refusal) {
    let io = if direct_tls {
        let Some(setup) = shared.tls.as_ref() else {
            return;
        };
        match tokio::time::timeout(Duration::from_secs(5), setup.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Transport::Tls(Box::new(tls)),
            _ => return,
        }
    } else {
        Transport::Plain(tcp)
    };
    let peer = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut conn = Conn::new(io, peer, Limits::default());
    let text = refusal.text();
    let send = conn.stream_error(&shared.config.domain, refusal.condition(), Some(&text));
    let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
}

fn limits(shared: &Shared) -> Limits {
    Limits {
        max_stanza_bytes: shared.config.c2s.max_stanza_bytes,
        max_depth: shared.config.c2s.max_depth,
        ..Limits::default()
    }
}

/// TLS (on the direct-TLS port) and stream negotiation, up to a bound
/// session (None: the connection ended or went to a resumed session).
async fn connect(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    direct_tls: bool,
) -> Option<Box<session_loop::State>> {
    let io = if direct_tls {
        let setup = shared.tls.as_ref()?;
        let accept = setup.acceptor.accept(tcp);
        match tokio::time::timeout(Duration::from_secs(30), accept).await {
            Ok(Ok(tls)) => Transport::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return None;
            }
            Err(_) => return None,
        }
    } else {
        Transport::Plain(tcp)
    };
    let conn = Conn::new(io, peer, limits(&shared));
    let (conn, bound) = negotiate_phase(&shared, conn).await?;
    Some(session_loop::start(shared, conn, bound))
}

/// Negotiates the stream up to a bound session (None: the connection ended
/// or was handed to a resumed session).
async fn negotiate_phase(shared: &Shared, mut conn: Conn) -> Option<(Conn, negotiate::Bound)> {
    let mut shutdown = shared.shutdown.clone();
    let timeout = Duration::from_secs(shared.config.c2s.negotiation_timeout_secs);
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, negotiate::negotiate(shared, &mut conn)) => match r {
            Ok(r) => r,
            Err(_) => Err(ConnError::Stream("connection-timeout", Some("negotiation took too long".into()))),
        },
        _ = shutdown.changed() => Err(ConnError::Stream("system-shutdown", None)),
    };
    match result {
        Ok(negotiate::Negotiated::Bound(bound)) => Some((conn, bound)),
        Ok(negotiate::Negotiated::Resumed) => None, // the resumed session owns the socket now
        Err(e) => {
            finish(shared, &mut conn, e).await;
            None
        }
    }
}

/// Ends a connection for `e`, sending the stream error if there is one.
pub async fn finish(shared: &Shared, conn: &mut Conn, e: ConnError) {
    match e {
        ConnError::Stream(cond, text) => {
            tracing::debug!(peer = %conn.peer, condition = cond, text = text.as_deref().unwrap_or(""), "stream error");
            conn.stream_error(&shared.config.domain, cond, text.as_deref())
                .await;
        }
        ConnError::Closed => conn.close().await,
        ConnError::Io(e) => tracing::debug!(peer = %conn.peer, error = %e, "connection lost"),
    }
}
