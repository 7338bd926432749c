//! Test harness: boots the real server in-process on port 0 and speaks raw
//! XMPP to it with the project's own codec.
#![allow(dead_code)]

use natter_sasl::{Hash, ScramClient, StoredCredentials};
use natter_server::{Config, Server};
use natter_store::Store;
use natter_xml::{Event, Limits, Stanza, StreamParser};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub mod http;
pub mod mam;
pub mod ws;

pub struct TestServer {
    pub addr: SocketAddr,
    pub tls_addr: SocketAddr,
    /// The HTTP (WebSocket, host-meta) listener.
    pub http_addr: SocketAddr,
    /// The HTTPS listener, when a certificate is configured.
    pub https_addr: Option<SocketAddr>,
    /// The admin listener (metrics, health, admin API).
    pub admin_addr: SocketAddr,
    pub store: Store,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        cfg.listen.c2s = "127.0.0.1:0".parse().unwrap();
        cfg.listen.c2s_tls = "127.0.0.1:0".parse().unwrap();
        cfg.listen.http = "127.0.0.1:0".parse().unwrap();
        cfg.listen.https = "127.0.0.1:0".parse().unwrap();
        cfg.listen.admin = "127.0.0.1:0".parse().unwrap();
        cfg.c2s.require_tls = false;
        f(&mut cfg);
        let server = Server::bind(cfg).await.unwrap();
        let (addr, tls_addr, store) = (server.c2s_addr(), server.c2s_tls_addr(), server.store());
        let (http_addr, https_addr, admin_addr) =
            (server.http_addr(), server.https_addr(), server.admin_addr());
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            tls_addr,
            http_addr,
            https_addr,
            admin_addr,
            store,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn add_user(&self, user: &str, password: &str) {
        let creds = StoredCredentials::new(password).unwrap();
        self.store
            .create_account(&format!("{user}@localhost"), &creds.to_bytes())
            .await
            .unwrap();
    }

    /// Stops the server and waits for `run` to return.
    pub async fn stop(self) {
        self.stop_keep_dir().await;
    }

    /// Stops the server; the returned value keeps the data directory alive.
    pub async fn stop_keep_dir(mut self) -> TestServer {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(TIMEOUT, self.task.take().unwrap())
            .await
            .expect("server stops in time")
            .unwrap()
            .unwrap();
        self
    }
}

/// The client's socket: plain TCP or TLS (STARTTLS or direct).
pub enum ClientIo {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl ClientIo {
    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            ClientIo::Tcp(s) => s.write_all(b).await,
            ClientIo::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
        }
    }
    async fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ClientIo::Tcp(s) => s.read(b).await,
            ClientIo::Tls(s) => s.read(b).await,
        }
    }
}

/// A TLS connector trusting the server's generated certificate.
pub fn tls_connector(srv: &TestServer) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let cert =
        rustls::pki_types::CertificateDer::from_pem_file(srv.dir.path().join("tls/cert.pem"))
            .unwrap();
    tls_connector_trusting(cert)
}

/// A TLS connector trusting `cert` alone.
pub fn tls_connector_trusting(
    cert: rustls::pki_types::CertificateDer<'static>,
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
}

pub struct Client {
    pub tcp: ClientIo,
    pub parser: StreamParser,
    pub jid: String,
    /// Stanzas (message, presence, iq) received: the XEP-0198 `h` once reset at `<enabled/>`.
    pub handled: u32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Client {
            tcp: ClientIo::Tcp(tcp),
            parser: StreamParser::new(Limits::default()),
            jid: String::new(),
            handled: 0,
        }
    }

    /// Connects to the direct-TLS port (XEP-0368).
    pub async fn connect_tls(srv: &TestServer) -> Client {
        let tcp = TcpStream::connect(srv.tls_addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls_connector(srv).connect(name, tcp).await.unwrap();
        Client {
            tcp: ClientIo::Tls(Box::new(tls)),
            parser: StreamParser::new(Limits::default()),
            jid: String::new(),
            handled: 0,
        }
    }

    /// Negotiates STARTTLS on a fresh plain connection (stream opened, features read).
    pub async fn starttls(&mut self, srv: &TestServer) {
        self.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            .await;
        let p = self.stanza().await;
        assert_eq!(p.name(), "proceed");
        let ClientIo::Tcp(tcp) = std::mem::replace(
            &mut self.tcp,
            ClientIo::Tcp(TcpStream::connect(srv.addr).await.unwrap()),
        ) else {
            panic!("TLS already on")
        };
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tls_connector(srv).connect(name, tcp).await.unwrap();
        self.tcp = ClientIo::Tls(Box::new(tls));
        self.parser = StreamParser::new(Limits::default());
    }

    /// tls-server-end-point channel-binding data of the server certificate.
    pub fn server_end_point(srv: &TestServer) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        use sha2::Digest;
        let cert =
            rustls::pki_types::CertificateDer::from_pem_file(srv.dir.path().join("tls/cert.pem"))
                .unwrap();
        sha2::Sha256::digest(cert.as_ref()).to_vec()
    }

    /// tls-exporter channel-binding data of this TLS 1.3 connection.
    pub fn exporter(&self) -> Vec<u8> {
        let ClientIo::Tls(t) = &self.tcp else {
            panic!("not TLS")
        };
        t.get_ref()
            .1
            .export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
            .unwrap()
    }

    pub async fn send(&mut self, data: impl AsRef<[u8]>) {
        self.tcp.write_all(data.as_ref()).await.unwrap();
    }

    pub async fn open(&mut self) {
        self.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>").await;
        match self.event().await {
            Some(Event::StreamOpen(_)) => {}
            _ => panic!("expected a stream header"),
        }
    }

    /// The next stream event; None when the connection closed.
    pub async fn event(&mut self) -> Option<Event> {
        loop {
            match self.parser.next_event() {
                Ok(Some(ev)) => {
                    if let Event::Stanza(s) = &ev {
                        if s.ns() == "jabber:client"
                            && matches!(s.name(), "message" | "presence" | "iq")
                        {
                            self.handled = self.handled.wrapping_add(1);
                        }
                    }
                    return Some(ev);
                }
                Ok(None) => {}
                Err(e) => panic!("server sent bad XML: {e}"),
            }
            let mut buf = [0u8; 8192];
            let n = tokio::time::timeout(TIMEOUT, self.tcp.read(&mut buf))
                .await
                .expect("timed out waiting for the server")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.parser.feed(&buf[..n]);
        }
    }

    /// The next stanza (panics on close).
    pub async fn stanza(&mut self) -> Stanza {
        match self.event().await {
            Some(Event::Stanza(s)) => s,
            Some(Event::StreamClose) => panic!("stream closed"),
            Some(Event::StreamOpen(_)) => panic!("unexpected stream header"),
            None => panic!("connection closed"),
        }
    }

    /// Reads until a stanza satisfies `pred`, skipping others.
    pub async fn expect(&mut self, what: &str, pred: impl Fn(&Stanza) -> bool) -> Stanza {
        loop {
            let s = self.stanza().await;
            if pred(&s) {
                return s;
            }
            eprintln!(
                "[{}] skipping while waiting for {what}: {}",
                self.jid,
                String::from_utf8_lossy(s.bytes())
            );
        }
    }

    /// Reads until the stream ends; returns the stream error condition, if any.
    pub async fn stream_error(&mut self) -> Option<String> {
        loop {
            match self.event().await {
                Some(Event::Stanza(s)) if s.name() == "error" => {
                    return s.children().first().map(|c| c.name.clone());
                }
                Some(Event::Stanza(_)) | Some(Event::StreamOpen(_)) => continue,
                Some(Event::StreamClose) | None => return None,
            }
        }
    }

    /// Opens the stream, authenticates with SCRAM-SHA-256 (or PLAIN) and
    /// returns whether it worked.
    pub async fn auth(&mut self, user: &str, password: &str, mech: &str) -> bool {
        self.open().await;
        let features = self.stanza().await;
        assert_eq!(features.name(), "features");
        self.auth_with(user, password, mech, None).await
    }

    /// SASL on an open stream whose features were read; `binding` for -PLUS.
    pub async fn auth_with(
        &mut self,
        user: &str,
        password: &str,
        mech: &str,
        binding: Option<(&'static str, Vec<u8>)>,
    ) -> bool {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let hash = match mech {
            "SCRAM-SHA-1" => Some(Hash::Sha1),
            "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => Some(Hash::Sha256),
            "SCRAM-SHA-1-PLUS" => Some(Hash::Sha1),
            _ => None,
        };
        match hash {
            None => {
                let ir = natter_sasl::plain_initial_response(None, user, password);
                self.send(format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
                    b64.encode(ir)
                ))
                .await;
                let r = self.stanza().await;
                self.parser.restart();
                r.name() == "success"
            }
            Some(h) => {
                let mut c = ScramClient::new(h, user, password, binding);
                let first = c.client_first();
                self.send(format!(
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mech}'>{}</auth>",
                    b64.encode(first)
                ))
                .await;
                let ch = self.stanza().await;
                if ch.name() != "challenge" {
                    return false;
                }
                let data = b64.decode(ch.element().unwrap().text()).unwrap();
                let fin = c.handle_server_first(&data).unwrap();
                self.send(format!(
                    "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
                    b64.encode(fin)
                ))
                .await;
                let r = self.stanza().await;
                if r.name() != "success" {
                    return false;
                }
                let data = b64.decode(r.element().unwrap().text()).unwrap();
                c.verify_server_final(&data).unwrap();
                self.parser.restart();
                true
            }
        }
    }

    /// Full login: auth, restart, bind `resource`; does not send presence.
    pub async fn login(addr: SocketAddr, user: &str, password: &str, resource: &str) -> Client {
        let mut c = Client::connect(addr).await;
        assert!(
            c.auth(user, password, "SCRAM-SHA-256").await,
            "login of {user} failed"
        );
        c.open().await;
        let f = c.stanza().await;
        assert!(f.has_child("bind", "urn:ietf:params:xml:ns:xmpp-bind"));
        c.send(format!("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>")).await;
        let r = c
            .expect("bind result", |s| s.id().as_deref() == Some("bind1"))
            .await;
        assert_eq!(r.stanza_type().as_deref(), Some("result"));
        let el = r.element().unwrap();
        c.jid = el
            .get_child("bind", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .get_child("jid", "urn:ietf:params:xml:ns:xmpp-bind")
            .unwrap()
            .text();
        c
    }

    /// Login plus initial presence, and waits for the presence echo.
    pub async fn online(addr: SocketAddr, user: &str, password: &str, resource: &str) -> Client {
        let mut c = Self::login(addr, user, password, resource).await;
        c.send("<presence/>").await;
        let me = c.jid.clone();
        c.expect("own presence", |s| {
            s.name() == "presence" && s.from().as_deref() == Some(me.as_str())
        })
        .await;
        c
    }

    /// An IQ round trip: sends `iq` (which must carry id `id`) and returns the reply.
    pub async fn iq(&mut self, id: &str, iq: &str) -> Stanza {
        self.send(iq).await;
        self.expect("iq reply", |s| {
            s.name() == "iq"
                && s.id().as_deref() == Some(id)
                && matches!(s.stanza_type().as_deref(), Some("result") | Some("error"))
        })
        .await
    }
}

pub fn text(s: &Stanza) -> String {
    String::from_utf8_lossy(s.bytes()).into_owned()
}
