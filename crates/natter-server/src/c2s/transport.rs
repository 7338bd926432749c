//! A client socket: plain TCP, TLS over TCP (after STARTTLS or direct), or
//! a WebSocket (RFC 7395) over either, upgraded from an HTTP request.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

pub use super::websocket::WsStream;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// XMPP over WebSocket; boxed, so TCP connections pay nothing for it.
    WebSocket(Box<WsStream>),
    /// Momentarily, while the TCP socket is handed to the TLS acceptor.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket detached")
}

impl Transport {
    /// TLS directly on this socket (STARTTLS or direct TLS).
    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Whether authentication may happen on it with `[c2s] require_tls`:
    /// TLS, or a WebSocket over https (or behind a TLS-terminating proxy).
    pub fn is_secure(&self) -> bool {
        match self {
            Transport::Tls(_) => true,
            Transport::WebSocket(ws) => ws.secure,
            _ => false,
        }
    }

    /// Plain TCP, where STARTTLS may be offered.
    pub fn can_starttls(&self) -> bool {
        matches!(self, Transport::Plain(_))
    }

    pub fn is_websocket(&self) -> bool {
        matches!(self, Transport::WebSocket(_))
    }

    /// The transport's name in metrics and the admin API.
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Plain(_) => "tcp",
            Transport::Tls(_) => "tls",
            Transport::WebSocket(_) => "websocket",
            Transport::Detached => "detached",
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::WebSocket(s) => Pin::new(&mut s.inner).poll_read(cx, buf),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::WebSocket(s) => Pin::new(&mut s.inner).poll_write(cx, buf),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::WebSocket(s) => Pin::new(&mut s.inner).poll_flush(cx),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::WebSocket(s) => Pin::new(&mut s.inner).poll_shutdown(cx),
            Transport::Detached => Poll::Ready(Err(detached())),
        }
    }
}
