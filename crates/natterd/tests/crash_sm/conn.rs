//! A tiny XMPP client over plain TCP whose every failure is a value.
use super::*;
use base64::Engine;
use natter_xml::{Event, Limits, Stanza, StreamParser};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// A tiny XMPP client over plain TCP whose every failure is a value: the
// server dies under it on purpose.

/// Why a connection is unusable.
pub type Lost = String;

pub struct Conn {
    pub tcp: TcpStream,
    pub parser: StreamParser,
    /// Stanzas (message, presence, iq) received since `<enabled/>`: the XEP-0198 h.
    pub received: u32,
}

pub const SM: &str = "urn:xmpp:sm:3";

pub fn text(s: &Stanza) -> String {
    String::from_utf8_lossy(s.bytes()).into_owned()
}

pub fn is_stanza(s: &Stanza) -> bool {
    s.ns() == "jabber:client" && matches!(s.name(), "message" | "presence" | "iq")
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Result<Conn, Lost> {
        let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        Ok(Conn {
            tcp,
            parser: StreamParser::new(Limits::default()),
            received: 0,
        })
    }

    pub async fn send(&mut self, data: &str) -> Result<(), Lost> {
        tokio::time::timeout(IO_TIMEOUT, self.tcp.write_all(data.as_bytes()))
            .await
            .map_err(|_| "write timed out".to_string())?
            .map_err(|e| format!("write: {e}"))
    }

    /// The next stream event. Cancel-safe: the only await is the socket read.
    pub async fn event(&mut self) -> Result<Event, Lost> {
        loop {
            match self.parser.next_event() {
                Ok(Some(ev)) => return Ok(ev),
                Ok(None) => {}
                Err(e) => return Err(format!("BUG: the server sent bad XML: {e}")),
            }
            let mut buf = [0u8; 16384];
            let n = self
                .tcp
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed".into());
            }
            self.parser.feed(&buf[..n]);
        }
    }

    /// The next top-level element (cancel-safe); counts stanzas for XEP-0198.
    pub async fn element(&mut self) -> Result<Stanza, Lost> {
        match self.event().await? {
            Event::Stanza(s)
                if s.ns() == "http://etherx.jabber.org/streams" && s.name() == "error" =>
            {
                Err(format!("stream error: {}", text(&s)))
            }
            Event::Stanza(s) => {
                if is_stanza(&s) {
                    self.received = self.received.wrapping_add(1);
                }
                Ok(s)
            }
            Event::StreamClose => Err("stream closed by the server".into()),
            Event::StreamOpen(_) => Err("BUG: unexpected stream header".into()),
        }
    }

    /// `element` with the I/O timeout (not for use inside `select!`).
    pub async fn next(&mut self) -> Result<Stanza, Lost> {
        tokio::time::timeout(IO_TIMEOUT, self.element())
            .await
            .map_err(|_| "timed out waiting for the server".to_string())?
    }

    pub async fn open(&mut self) -> Result<(), Lost> {
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>").await?;
        match tokio::time::timeout(IO_TIMEOUT, self.event()).await {
            Ok(Ok(Event::StreamOpen(_))) => Ok(()),
            Ok(Ok(_)) => Err("BUG: expected a stream header".into()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("timed out waiting for the stream header".into()),
        }
    }

    /// Connects, authenticates with PLAIN, binds `resource` and enables
    /// stream management (no resumption: the server forgets it on restart).
    pub async fn login(addr: SocketAddr, user: &str, resource: &str) -> Result<Conn, Lost> {
        let mut c = Conn::connect(addr).await?;
        c.open().await?;
        let f = c.next().await?;
        if f.name() != "features" {
            return Err(format!("BUG: expected features, got {}", text(&f)));
        }
        let ir = natter_sasl::plain_initial_response(None, user, PASSWORD);
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
            base64::engine::general_purpose::STANDARD.encode(ir)
        ))
        .await?;
        let r = c.next().await?;
        if r.name() != "success" {
            return Err(format!("BUG: login of {user} refused: {}", text(&r)));
        }
        c.parser.restart();
        c.open().await?;
        c.next().await?; // features
        c.send(&format!("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>")).await?;
        loop {
            let s = c.next().await?;
            if s.name() == "iq" && s.id().as_deref() == Some("bind1") {
                if s.stanza_type().as_deref() != Some("result") {
                    return Err(format!("BUG: bind failed: {}", text(&s)));
                }
                break;
            }
        }
        c.send("<enable xmlns='urn:xmpp:sm:3'/>").await?;
        loop {
            let s = c.next().await?;
            if s.ns() == SM && s.name() == "enabled" {
                c.received = 0;
                return Ok(c);
            }
            if s.ns() == SM && s.name() == "failed" {
                return Err(format!("BUG: <enable/> failed: {}", text(&s)));
            }
        }
    }

    /// `login`, retried while the server is down (up to `RECONNECT_FOR`).
    pub async fn login_retrying(addr: SocketAddr, user: &str, resource: &str, bugs: &Bugs) -> Conn {
        let deadline = Instant::now() + RECONNECT_FOR;
        loop {
            match Conn::login(addr, user, resource).await {
                Ok(c) => return c,
                Err(e) => {
                    bugs.check(user, &e);
                    assert!(
                        Instant::now() < deadline,
                        "{user} could not log in again within {RECONNECT_FOR:?}: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}
