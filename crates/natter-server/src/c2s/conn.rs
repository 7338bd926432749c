//! One client connection's byte plumbing: the socket, the stream parser fed
//! from it, and writing stream headers, stanzas and stream errors.
//!
//! The framing is the transport's: over TCP the parser is fed the byte
//! stream as it comes; over WebSocket (RFC 7395) each text message is fed
//! to the same parser (`<open/>`/`<close/>` as the stream header and end
//! tag) and every element written goes out as a message of its own.

use super::framing::NS_FRAMING;
use super::transport::{Transport, WsStream};
use super::ws_codec;
use natter_xml::{Event, Limits, StreamParser, XmlError};
use std::io;
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Why a connection ends.
#[derive(Debug)]
pub enum ConnError {
    /// The socket closed or failed.
    Io(io::Error),
    /// The peer closed its stream.
    Closed,
    /// A stream error to send before closing: (condition, text).
    Stream(&'static str, Option<String>),
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

impl From<XmlError> for ConnError {
    fn from(e: XmlError) -> Self {
        ConnError::Stream(e.condition(), Some(e.to_string()))
    }
}

pub const READ_CHUNK: usize = 4096;

pub struct Conn {
    pub io: Transport,
    pub parser: StreamParser,
    pub peer: SocketAddr,
    limits: Limits,
    /// Stream header already sent on the current stream.
    pub header_sent: bool,
    /// XML declaration sent on this transport (only the first stream has one).
    decl_sent: bool,
}

impl Conn {
    pub fn new(io: Transport, peer: SocketAddr, limits: Limits) -> Self {
        Conn {
            io,
            parser: StreamParser::new(limits),
            peer,
            limits,
            header_sent: false,
            decl_sent: false,
        }
    }

    /// Moves the socket and parser out (to hand the connection to another
    /// session task), leaving this one detached.
    pub fn take(&mut self) -> Conn {
        Conn {
            io: std::mem::replace(&mut self.io, Transport::Detached),
            parser: std::mem::replace(&mut self.parser, StreamParser::new(self.limits)),
            peer: self.peer,
            limits: self.limits,
            header_sent: self.header_sent,
            decl_sent: self.decl_sent,
        }
    }

    /// A connection over an upgraded WebSocket; `early` are bytes the
    /// client sent right after its upgrade request.
    pub fn websocket(
        ws: WsStream,
        peer: SocketAddr,
        limits: Limits,
        early: &[u8],
    ) -> Result<Self, Box<(Self, ConnError)>> {
        let mut conn = Conn::new(Transport::WebSocket(Box::new(ws)), peer, limits);
        if let Transport::WebSocket(ws) = &mut conn.io {
            if !early.is_empty() {
                if let Err(e) = ws.ingest(early, &mut conn.parser) {
                    return Err(Box::new((conn, e)));
                }
            }
        }
        Ok(conn)
    }

    /// A new stream follows on the same transport (after SASL success):
    /// the parser expects a header again, and ours is due again.
    pub fn restart_stream(&mut self) {
        self.parser.restart();
        self.header_sent = false;
        if let Transport::WebSocket(ws) = &mut self.io {
            ws.restart();
        }
    }

    /// A brand-new parser (after STARTTLS nothing said before counts).
    pub fn reset_parser(&mut self) {
        self.parser = StreamParser::new(self.limits);
        self.decl_sent = false;
    }

    /// The next stream event, reading from the socket as needed.
    pub async fn next_event(&mut self) -> Result<Event, ConnError> {
        loop {
            if let Some(ev) = self.parser.next_event()? {
                return Ok(ev);
            }
            self.fill().await?;
        }
    }

    /// Reads once from the socket into the parser. The read buffer lives
    /// on the stack only while data is copied, never while the connection
    /// waits: an idle connection holds no read buffer.
    pub async fn fill(&mut self) -> Result<(), ConnError> {
        loop {
            match self.read_now()? {
                Some(0) => {
                    // The socket ended without a closing stream tag.
                    return Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into()));
                }
                Some(_) => return Ok(()),
                None => self.readable().await?,
            }
        }
    }

    /// Reads once without waiting: false when nothing was there.
    pub fn try_fill(&mut self) -> Result<bool, ConnError> {
        match self.read_now()? {
            // The socket ended without a closing stream tag.
            Some(0) => Err(ConnError::Io(io::ErrorKind::UnexpectedEof.into())),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    /// Ready when the socket may have something to read (or failed); the
    /// task of `cx` is woken then. Call after `try_fill` returned false.
    pub fn poll_readable(
        &self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match &self.io {
            Transport::Plain(tcp) => tcp.poll_read_ready(cx),
            Transport::Tls(tls) => tls.get_ref().0.poll_read_ready(cx),
            Transport::WebSocket(ws) if ws.eof() => std::task::Poll::Ready(Ok(())),
            Transport::WebSocket(ws) => match &ws.inner {
                Transport::Plain(tcp) => tcp.poll_read_ready(cx),
                Transport::Tls(tls) => tls.get_ref().0.poll_read_ready(cx),
                _ => std::task::Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
            },
            Transport::Detached => std::task::Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }

    /// Reads what is available without waiting; None when nothing is.
    fn read_now(&mut self) -> Result<Option<usize>, ConnError> {
        let mut buf = [0u8; READ_CHUNK];
        match &mut self.io {
            Transport::WebSocket(ws) => {
                if ws.eof() {
                    return Ok(Some(0));
                }
                let n = match read_raw(&mut ws.inner, &mut buf)? {
                    Some(n) if n > 0 => n,
                    other => return Ok(other),
                };
                ws.ingest(&buf[..n], &mut self.parser)?;
                ws.flush_now();
                Ok(Some(n))
            }
            io => {
                let n = read_raw(io, &mut buf)?;
                if let Some(n) = n {
                    self.parser.feed(&buf[..n]);
                }
                Ok(n)
            }
        }
    }

    /// Waits until the socket has something to read.
    async fn readable(&self) -> io::Result<()> {
        match &self.io {
            Transport::Plain(tcp) => tcp.readable().await,
            Transport::Tls(tls) => tls.get_ref().0.readable().await,
            Transport::WebSocket(ws) if ws.eof() => Ok(()),
            Transport::WebSocket(ws) => match &ws.inner {
                Transport::Plain(tcp) => tcp.readable().await,
                Transport::Tls(tls) => tls.get_ref().0.readable().await,
                _ => Err(io::ErrorKind::NotConnected.into()),
            },
            Transport::Detached => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes complete top-level elements (one WebSocket message each over
    /// WebSocket).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Transport::WebSocket(ws) = &mut self.io {
            return ws.send_elements(bytes).await;
        }
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Writes our stream header (once per stream).
    pub async fn send_header(&mut self, domain: &str, id: &str) -> io::Result<()> {
        if self.io.is_websocket() {
            self.header_sent = true;
            return self.send(&ws_open(domain, id)).await;
        }
        let mut h = Vec::with_capacity(200);
        if !self.decl_sent {
            h.extend_from_slice(b"<?xml version='1.0'?>");
            self.decl_sent = true;
        }
        h.extend_from_slice(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' from='");
        natter_xml::escape_attr(domain, &mut h);
        h.extend_from_slice(b"' id='");
        natter_xml::escape_attr(id, &mut h);
        h.extend_from_slice(b"'>");
        self.header_sent = true;
        self.send(&h).await
    }

    /// Sends a stream error and closes the stream (RFC 6120 §4.9).
    pub async fn stream_error(&mut self, domain: &str, condition: &str, text: Option<&str>) {
        let mut out = Vec::new();
        let ws = self.io.is_websocket();
        if ws && !self.header_sent {
            out.extend_from_slice(&ws_open(domain, &crate::util::random_id()));
        } else if !self.header_sent {
            out.extend_from_slice(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='");
            natter_xml::escape_attr(domain, &mut out);
            out.extend_from_slice(b"'>");
        }
        out.extend_from_slice(b"<stream:error><");
        out.extend_from_slice(condition.as_bytes());
        out.extend_from_slice(b" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
        if let Some(t) = text {
            out.extend_from_slice(b"<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>");
            natter_xml::escape_text(t, &mut out);
            out.extend_from_slice(b"</text>");
        }
        out.extend_from_slice(b"</stream:error>");
        if let Transport::WebSocket(w) = &mut self.io {
            out.extend_from_slice(WS_CLOSE);
            let _ = w.send_elements(&out).await;
            let code = w.close_code.unwrap_or(ws_codec::CLOSE_NORMAL);
            w.close(code, text.unwrap_or(condition)).await;
            return;
        }
        debug_assert!(!ws);
        out.extend_from_slice(b"</stream:stream>");
        let _ = self.send(&out).await;
        let _ = self.io.shutdown().await;
    }

    /// Closes our side of the stream.
    pub async fn close(&mut self) {
        if let Transport::WebSocket(w) = &mut self.io {
            let _ = w.send_elements(WS_CLOSE).await;
            w.close(ws_codec::CLOSE_NORMAL, "").await;
            return;
        }
        let _ = self.send(b"</stream:stream>").await;
        let _ = self.io.shutdown().await;
    }
}

/// RFC 7395 `<close/>`.
const WS_CLOSE: &[u8] = b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";

/// RFC 7395 `<open/>`: the server's stream header over WebSocket.
fn ws_open(domain: &str, id: &str) -> Vec<u8> {
    let mut h = Vec::with_capacity(160);
    h.extend_from_slice(b"<open xmlns='");
    h.extend_from_slice(NS_FRAMING.as_bytes());
    h.extend_from_slice(b"' version='1.0' xml:lang='en' from='");
    natter_xml::escape_attr(domain, &mut h);
    h.extend_from_slice(b"' id='");
    natter_xml::escape_attr(id, &mut h);
    h.extend_from_slice(b"'/>");
    h
}

/// Reads from a plain or TLS socket without waiting; None when nothing is
/// there.
fn read_raw(io: &mut Transport, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // Polled once without a real waker (`readable` and `poll_readable` do
    // the waiting). TLS may hold decrypted bytes already; on plain TCP,
    // tokio's `poll_read` takes a short read as proof that the socket is
    // drained, so the next try costs no `recvfrom` that would only say
    // EAGAIN (`try_read` would make that call).
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut rb = tokio::io::ReadBuf::new(buf);
    match std::pin::Pin::new(io).poll_read(&mut cx, &mut rb) {
        std::task::Poll::Ready(Ok(())) => Ok(Some(rb.filled().len())),
        std::task::Poll::Ready(Err(e)) => Err(e),
        std::task::Poll::Pending => Ok(None),
    }
}
