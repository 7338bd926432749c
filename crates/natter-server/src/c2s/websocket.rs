//! The WebSocket side of a connection (RFC 6455 + RFC 7395): the socket a
//! WebSocket was upgraded on, its frame decoder, and server frames waiting
//! to be written (pongs, the close reply). `Conn` reads and writes through
//! it; the session code above sees the same stream events as over TCP.

use super::conn::ConnError;
use super::framing::{self, Incoming};
use super::transport::Transport;
use super::ws_codec::{self, WsDecoder, WsError, WsEvent};
use natter_xml::StreamParser;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncWrite, AsyncWriteExt};

pub struct WsStream {
    /// The upgraded socket: plain TCP or TLS (never another WebSocket).
    pub inner: Transport,
    /// Authentication may happen here with `[c2s] require_tls`.
    pub secure: bool,
    decoder: WsDecoder,
    /// Server frames to write before anything else (pongs, close reply).
    pending: Vec<u8>,
    /// The client sent a close frame: reads end.
    eof: bool,
    /// An `<open/>` was fed for the current stream.
    stream_open: bool,
    /// The close code naming why the connection ends, if it is our doing.
    pub(super) close_code: Option<u16>,
}

impl WsStream {
    pub fn new(inner: Transport, secure: bool, max_message: usize) -> Self {
        WsStream {
            inner,
            secure,
            decoder: WsDecoder::new(max_message),
            pending: Vec::new(),
            eof: false,
            stream_open: false,
            close_code: None,
        }
    }

    pub(super) fn eof(&self) -> bool {
        self.eof
    }

    /// A new stream follows (after SASL success): the next `<open/>` is due.
    pub(super) fn restart(&mut self) {
        self.stream_open = false;
    }

    /// Decodes bytes read from the socket and feeds what they carry to the
    /// stream parser.
    pub(super) fn ingest(
        &mut self,
        data: &[u8],
        parser: &mut StreamParser,
    ) -> Result<(), ConnError> {
        let WsStream {
            decoder,
            pending,
            eof,
            stream_open,
            close_code,
            ..
        } = self;
        let r = decoder.feed(data, &mut |ev| -> Result<(), Fail> {
            match ev {
                WsEvent::Text(msg) => match framing::classify(&msg) {
                    Ok(Incoming::Open(header)) => {
                        if *stream_open {
                            return Err(Fail::Xmpp(ConnError::Stream(
                                "not-well-formed",
                                Some("<open/> on a stream already open".into()),
                            )));
                        }
                        *stream_open = true;
                        parser.feed(&header);
                    }
                    Ok(Incoming::Close) => parser.feed(b"</stream:stream>"),
                    Ok(Incoming::Element) => parser.feed(&msg),
                    Err((condition, text)) => {
                        return Err(Fail::Xmpp(ConnError::Stream(condition, Some(text))));
                    }
                },
                WsEvent::Ping(payload) => {
                    ws_codec::encode_frame(ws_codec::OP_PONG, &payload, pending);
                }
                WsEvent::Close(code) => {
                    if !*eof {
                        *eof = true;
                        ws_codec::encode_close(code.unwrap_or(ws_codec::CLOSE_NORMAL), "", pending);
                    }
                }
            }
            Ok(())
        });
        decoder.trim();
        match r {
            Ok(()) => Ok(()),
            Err(Fail::Ws(e)) => {
                crate::metrics::METRICS
                    .ws_closed_bad_frames
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *close_code = Some(e.close_code());
                Err(e.into())
            }
            // The frames were fine, what they carried was not: the stream
            // error says why and the WebSocket closes normally.
            Err(Fail::Xmpp(e)) => Err(e),
        }
    }

    /// Writes pending control frames without waiting; what cannot be
    /// written now goes out before the next message.
    pub(super) fn flush_now(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        while !self.pending.is_empty() {
            match Pin::new(&mut self.inner).poll_write(&mut cx, &self.pending) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.pending.drain(..n);
                }
                _ => break,
            }
        }
        let _ = Pin::new(&mut self.inner).poll_flush(&mut cx);
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
    }

    /// Writes `data` (complete top-level elements) as one text message per
    /// element, after any pending control frames.
    pub(super) async fn send_elements(&mut self, data: &[u8]) -> io::Result<()> {
        let mut out = std::mem::take(&mut self.pending);
        framing::frame_elements(data, &mut out);
        self.inner.write_all(&out).await?;
        self.inner.flush().await
    }

    /// Sends a close frame with `code` (once), then shuts the socket.
    pub(super) async fn close(&mut self, code: u16, reason: &str) {
        let mut out = std::mem::take(&mut self.pending);
        if !self.eof {
            ws_codec::encode_close(code, reason, &mut out);
        }
        let _ = self.inner.write_all(&out).await;
        let _ = self.inner.flush().await;
        let _ = self.inner.shutdown().await;
    }
}

/// Why ingesting stopped: the frames, or the XMPP they carried.
enum Fail {
    Ws(WsError),
    Xmpp(ConnError),
}

impl From<WsError> for Fail {
    fn from(e: WsError) -> Self {
        Fail::Ws(e)
    }
}

impl From<WsError> for ConnError {
    fn from(e: WsError) -> Self {
        let condition = match e {
            WsError::TooBig { .. } => "policy-violation",
            WsError::BadUtf8 => "unsupported-encoding",
            WsError::Binary | WsError::Protocol(_) => "bad-format",
        };
        ConnError::Stream(condition, Some(e.to_string()))
    }
}
