//! A raw WebSocket (RFC 6455) XMPP client for the tests: handshake, masked
//! frames written by hand (so tests can also send broken ones), and the
//! server's messages read one by one.

use super::TIMEOUT;
use natter_xml::Stanza;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct WsClient {
    pub tcp: TcpStream,
    buf: Vec<u8>,
    pub jid: String,
}

/// What the server sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Close(u16, String),
    Pong(Vec<u8>),
    /// The connection ended without a close frame.
    Eof,
}

/// The opening handshake request for `/xmpp-websocket`.
pub fn upgrade_request(extra: &str) -> String {
    format!(
        "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

/// A masked client frame.
pub fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![b0];
    let n = payload.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else if n <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

impl WsClient {
    /// Connects and completes the handshake with subprotocol `xmpp`.
    pub async fn connect(addr: SocketAddr) -> WsClient {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(upgrade_request("Sec-WebSocket-Protocol: xmpp\r\n").as_bytes())
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(TIMEOUT, tcp.read(&mut b))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(n, 1, "connection closed during the handshake");
            head.push(b[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
            "{head}"
        );
        assert!(lower.contains("sec-websocket-protocol: xmpp"), "{head}");
        WsClient {
            tcp,
            buf: Vec::new(),
            jid: String::new(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.unwrap();
    }

    /// Sends one text message.
    pub async fn send(&mut self, text: &str) {
        self.send_raw(&frame(0x81, text.as_bytes())).await;
    }

    /// The next frame from the server (server frames are unmasked).
    pub async fn frame(&mut self) -> Frame {
        loop {
            if self.buf.len() >= 2 {
                let (len, at) = match self.buf[1] & 0x7F {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => (
                        u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize,
                        10,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    l => (l as usize, 2),
                };
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
                if len != usize::MAX && self.buf.len() >= at + len {
                    let op = self.buf[0] & 0x0F;
                    assert_eq!(self.buf[0] & 0x80, 0x80, "server frames are not fragmented");
                    let payload: Vec<u8> = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return match op {
                        1 => Frame::Text(String::from_utf8(payload).unwrap()),
                        8 => {
                            let code = u16::from_be_bytes([payload[0], payload[1]]);
                            Frame::Close(code, String::from_utf8_lossy(&payload[2..]).into())
                        }
                        10 => Frame::Pong(payload),
                        op => panic!("unexpected opcode {op}"),
                    };
                }
            }
            let mut b = [0u8; 8192];
            let n = tokio::time::timeout(TIMEOUT, self.tcp.read(&mut b))
                .await
                .expect("timed out waiting for the server")
                .unwrap_or(0);
            if n == 0 {
                return Frame::Eof;
            }
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    /// The next text message, parsed as a standalone element.
    pub async fn element(&mut self) -> Stanza {
        match self.frame().await {
            Frame::Text(t) => Stanza::parse(t.as_bytes(), "")
                .unwrap_or_else(|e| panic!("not one standalone element: {t}: {e}")),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Reads until an element satisfies `pred`.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Stanza) -> bool) -> Stanza {
        loop {
            let s = self.element().await;
            if pred(&s) {
                return s;
            }
            eprintln!(
                "[ws] skipping while waiting for {what}: {}",
                String::from_utf8_lossy(s.bytes())
            );
        }
    }

    /// `<open/>`, answered by `<open/>` and the features.
    pub async fn open(&mut self) -> Stanza {
        self.send(
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>",
        )
        .await;
        let open = self.element().await;
        assert_eq!(
            (open.name(), open.ns()),
            ("open", "urn:ietf:params:xml:ns:xmpp-framing")
        );
        assert_eq!(open.attr("from").as_deref(), Some("localhost"));
        let f = self.element().await;
        assert_eq!(
            (f.name(), f.ns()),
            ("features", "http://etherx.jabber.org/streams")
        );
        f
    }

    /// Full login with SCRAM-SHA-256 and a bound resource.
    pub async fn login(addr: SocketAddr, user: &str, password: &str, resource: &str) -> WsClient {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut c = WsClient::connect(addr).await;
        let f = c.open().await;
        assert!(
            f.has_child("mechanisms", "urn:ietf:params:xml:ns:xmpp-sasl"),
            "{}",
            String::from_utf8_lossy(f.bytes())
        );
        let mut scram =
            natter_sasl::ScramClient::new(natter_sasl::Hash::Sha256, user, password, None);
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>{}</auth>",
            b64.encode(scram.client_first())
        ))
        .await;
        let ch = c.element().await;
        assert_eq!(
            ch.name(),
            "challenge",
            "{}",
            String::from_utf8_lossy(ch.bytes())
        );
        let fin = scram
            .handle_server_first(&b64.decode(ch.element().unwrap().text()).unwrap())
            .unwrap();
        c.send(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            b64.encode(fin)
        ))
        .await;
        let ok = c.element().await;
        assert_eq!(ok.name(), "success");
        let f = c.open().await;
        assert!(f.has_child("bind", "urn:ietf:params:xml:ns:xmpp-bind"));
        c.send(&format!("<iq xmlns='jabber:client' type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>")).await;
        let r = c
            .expect("bind result", |s| s.id().as_deref() == Some("bind1"))
            .await;
        assert_eq!(r.ns(), "jabber:client");
        assert_eq!(r.stanza_type().as_deref(), Some("result"));
        c.jid = r
            .element()
            .unwrap()
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .get_child("jid", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .text();
        c
    }

    /// Reads until the server closes: the stream error condition and text
    /// it sent (if any), whether `<close/>` came, and the close frame.
    pub async fn until_closed(&mut self) -> (Option<(String, String)>, bool, Frame) {
        let mut error = None;
        let mut close_el = false;
        loop {
            match self.frame().await {
                Frame::Text(t) => {
                    let s = Stanza::parse(t.as_bytes(), "").unwrap();
                    if s.name() == "error" && s.ns() == "http://etherx.jabber.org/streams" {
                        let el = s.element().unwrap();
                        let cond = s.children().first().map(|c| c.name.clone()).unwrap();
                        let text = el
                            .get_child("text", "urn:ietf:params:xml:ns:xmpp-streams")
                            .map(|t| t.text())
                            .unwrap_or_default();
                        error = Some((cond, text));
                    } else if s.name() == "close" {
                        close_el = true;
                    }
                }
                f @ (Frame::Close(..) | Frame::Eof) => return (error, close_el, f),
                Frame::Pong(_) => {}
            }
        }
    }
}
