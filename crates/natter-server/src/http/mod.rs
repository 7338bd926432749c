//! The HTTP side: the public listeners (`[listen] http`, `[listen] https`)
//! serve XMPP over WebSocket and XEP-0156 discovery; the admin listener
//! (`[listen] admin`) serves `/metrics`, `/health` and the admin API.
//!
//! - `public`: `/xmpp-websocket` (the upgrade) and `/.well-known/host-meta(.json)`
//! - `admin`: metrics, health, and the token-protected JSON API
//!
//! HTTP/1.1 with hyper. Each connection is a task; at shutdown, idle
//! keep-alive connections are closed and `run` waits for the rest.

mod admin;
mod public;

use crate::limits::ConnSlot;
use crate::server::Shared;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Which listener a connection came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Http,
    Https,
    Admin,
}

pub type Body = Full<Bytes>;

/// What a request handler knows of its connection.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub listener: Listener,
    /// The connection's place under the limits (public listeners), handed
    /// to the session when the connection becomes a WebSocket.
    pub slot: Mutex<Option<ConnSlot>>,
}

/// Accepts connections on `listener` until the server shuts down.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, kind: Listener) {
    let mut shutdown = shared.shutdown.clone();
    loop {
        tokio::select! {
            r = shutdown.changed() => if r.is_err() || *shutdown.borrow() { break },
            r = listener.accept() => match r {
                Ok((tcp, peer)) => {
                    tokio::spawn(connection(shared.clone(), tcp, peer, kind));
                }
                Err(e) => tracing::warn!(error = %e, "http accept failed"),
            },
        }
    }
}

async fn connection(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr, kind: Listener) {
    let _ = tcp.set_nodelay(true);
    let slot = match kind {
        Listener::Admin => None,
        _ => match ConnSlot::admit(&shared, peer.ip(), crate::metrics::HTTP) {
            Ok(s) => Some(s),
            Err(r) => {
                tracing::info!(%peer, reason = %r.text(), "HTTP connection refused");
                let status = StatusCode::from_u16(r.http_status())
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                refuse(&shared, tcp, kind, status, &r.text()).await;
                return;
            }
        },
    };
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        peer,
        listener: kind,
        slot: Mutex::new(slot),
    });
    if kind == Listener::Https {
        let Some(setup) = &shared.tls else { return };
        match tokio::time::timeout(Duration::from_secs(30), setup.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => http1(ctx, tls).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "https: TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "https: TLS handshake timed out"),
        }
    } else {
        http1(ctx, tcp).await;
    }
}

/// Serves HTTP/1.1 on one connection (with upgrades), closing it gracefully
/// when the server shuts down.
async fn http1<I>(ctx: Arc<Ctx>, io: I)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut shutdown = ctx.shared.shutdown.clone();
    let stopping = async move {
        // The guard `wait_for` returns must not live across an await.
        let _ = shutdown.wait_for(|stop| *stop).await.map(|_| ());
    };
    let svc_ctx = ctx.clone();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let ctx = svc_ctx.clone();
        async move { Ok::<_, Infallible>(route(ctx, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => if let Err(e) = r {
            tracing::debug!(peer = %ctx.peer, error = %e, "http connection ended");
        },
        _ = stopping => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

async fn route(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    match ctx.listener {
        Listener::Admin => admin::route(&ctx, req).await,
        _ => public::route(&ctx, req),
    }
}

/// Answers a refused connection with `status` and `text`, then closes it.
async fn refuse(shared: &Shared, tcp: TcpStream, kind: Listener, status: StatusCode, text: &str) {
    let resp = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nRetry-After: 60\r\nConnection: close\r\n\r\n{text}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        text.len() + 1
    );
    let write = async {
        if kind == Listener::Https {
            let Some(setup) = &shared.tls else { return };
            if let Ok(mut tls) = setup.acceptor.accept(tcp).await {
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        } else {
            let mut tcp = tcp;
            let _ = tcp.write_all(resp.as_bytes()).await;
            let _ = tcp.shutdown().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

/// A response with a body and content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("valid response")
}

/// A plain-text response (a line).
pub(crate) fn text(status: StatusCode, msg: &str) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", format!("{msg}\n"))
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    respond(status, "application/json", v.to_string())
}
