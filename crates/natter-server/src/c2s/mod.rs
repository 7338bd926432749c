//! Client-to-server connections: one task per connection.
//!
//! - `transport`: plain or TLS socket
//! - `conn`: socket + stream parser + writing stream-level elements
//! - `negotiate`: stream headers, STARTTLS, SASL, bind
//! - `session`: the bound session's loop, mailbox and resumption
//! - `pipeline`: a session's in-order pipeline of messages and queue commits
//! - `sm`: stream management (XEP-0198) counters and unacknowledged stanzas
//! - `sm_session`: XEP-0198 elements and resumption on a session

pub mod conn;
pub mod negotiate;
mod pipeline;
pub mod session;
pub mod sm;
mod sm_session;
pub mod transport;

use crate::server::Shared;
use conn::{Conn, ConnError};
use natter_xml::Limits;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use transport::Transport;

/// Serves one accepted connection until it ends.
pub async fn serve(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, direct_tls: bool) {
    let _alive = shared.alive.clone();
    let io = if direct_tls {
        let Some(setup) = &shared.tls else { return };
        let accept = Box::pin(setup.acceptor.accept(tcp)); // boxed: freed after the handshake
        match tokio::time::timeout(Duration::from_secs(30), accept).await {
            Ok(Ok(tls)) => Transport::Tls(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        }
    } else {
        Transport::Plain(tcp)
    };
    let limits = Limits {
        max_stanza_bytes: shared.config.c2s.max_stanza_bytes,
        max_depth: shared.config.c2s.max_depth,
        ..Limits::default()
    };
    let mut conn = Conn::new(io, peer, limits);
    let mut shutdown = shared.shutdown.clone();
    let timeout = Duration::from_secs(shared.config.c2s.negotiation_timeout_secs);
    let result = tokio::select! {
        // Boxed: the negotiation's state is freed once it is done.
        r = tokio::time::timeout(timeout, Box::pin(negotiate::negotiate(&shared, &mut conn))) => match r {
            Ok(r) => r,
            Err(_) => Err(ConnError::Stream("connection-timeout", Some("negotiation took too long".into()))),
        },
        _ = shutdown.changed() => Err(ConnError::Stream("system-shutdown", None)),
    };
    match result {
        Ok(negotiate::Negotiated::Bound(bound)) => {
            Box::pin(session::run(shared, conn, bound)).await
        }
        Ok(negotiate::Negotiated::Resumed) => {} // the resumed session owns the socket now
        Err(e) => Box::pin(finish(&shared, &mut conn, e)).await,
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
