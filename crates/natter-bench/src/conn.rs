//! One client connection: TCP (optionally STARTTLS), SASL, bind, stream
//! management. Per-connection state is two byte buffers and a JID; an idle
//! plain-TCP connection keeps no read buffer (it reads into the stack).

use crate::frame::{self, Scan};
use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// How long one login may take, end to end.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest element we buffer before calling the stream broken.
const MAX_PENDING: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mech {
    Plain,
    #[value(name = "scram-sha-1")]
    ScramSha1,
    #[value(name = "scram-sha-256")]
    ScramSha256,
}

impl Mech {
    pub fn name(self) -> &'static str {
        match self {
            Mech::Plain => "plain",
            Mech::ScramSha1 => "scram-sha-1",
            Mech::ScramSha256 => "scram-sha-256",
        }
    }
}

/// Where and how to log in; shared by all connections of a worker.
pub struct Target {
    pub addr: SocketAddr,
    pub domain: String,
    pub password: String,
    pub prefix: String,
    pub mech: Mech,
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub sm: bool,
    pub sources: Vec<IpAddr>,
}

impl Target {
    pub fn user(&self, n: usize) -> String {
        format!("{}{n}", self.prefix)
    }
    pub fn bare(&self, n: usize) -> String {
        format!("{}{n}@{}", self.prefix, self.domain)
    }
}

/// What a login sets up after bind.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Send `<enable/>` (if the target has SM on).
    pub sm: bool,
    /// Send initial presence.
    pub presence: bool,
    /// Wait for `<enabled/>` and our own presence before returning.
    pub wait: bool,
}

pub enum Io {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Only while the TCP stream is inside the TLS handshake.
    Gone,
}

/// Kinds of top-level items the scenarios care about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Open,
    Close,
    Message,
    Presence,
    Iq,
    /// SM `<r/>` (already answered into `out`).
    AckRequest,
    /// SM `<a h/>` (`Conn::acked` updated).
    Ack,
    /// SM `<enabled/>`.
    Enabled,
    Other,
}

pub struct Frame {
    pub kind: Kind,
    pub range: Range<usize>,
}

pub struct Conn {
    io: Io,
    inb: Vec<u8>,
    start: usize,
    /// Bytes to write at the next [`Conn::flush`].
    pub out: Vec<u8>,
    /// Our full JID once bound.
    pub jid: String,
    /// SM is on: inbound stanzas are counted and `<r/>` answered.
    pub sm_on: bool,
    /// Inbound stanzas handled since `<enabled/>` (our `h`).
    pub handled: u32,
    /// Outbound stanzas since `<enable/>` (what the server's `h` counts).
    pub sent: u32,
    /// The server's last `h`.
    pub acked: u32,
}

fn header(domain: &str) -> String {
    format!("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>")
}

/// A rustls client that accepts any certificate: this tool only measures.
pub fn insecure_tls() -> tokio_rustls::TlsConnector {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    struct AcceptAll(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for AcceptAll {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAll(provider)))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

impl Conn {
    /// Opens TCP from source address `idx % sources`.
    pub async fn connect(t: &Target, idx: usize) -> Result<Conn> {
        let sock = if t.addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if !t.sources.is_empty() {
            let src = t.sources[idx % t.sources.len()];
            sock.bind(SocketAddr::new(src, 0))
                .with_context(|| format!("bind {src}"))?;
        }
        let tcp = sock
            .connect(t.addr)
            .await
            .with_context(|| format!("connect {}", t.addr))?;
        tcp.set_nodelay(true)?;
        Ok(Conn {
            io: Io::Tcp(tcp),
            inb: Vec::new(),
            start: 0,
            out: Vec::new(),
            jid: String::new(),
            sm_on: false,
            handled: 0,
            sent: 0,
            acked: 0,
        })
    }

    /// Connect, (STARTTLS,) authenticate as account `n`, bind, then `setup`.
    pub async fn login(t: &Target, idx: usize, n: usize, setup: Setup) -> Result<Conn> {
        let deadline = Instant::now() + LOGIN_TIMEOUT;
        let mut c = tokio::time::timeout_at(deadline, Conn::connect(t, idx))
            .await
            .map_err(|_| anyhow!("connect timed out"))??;
        c.negotiate(t, n, setup, deadline)
            .await
            .with_context(|| format!("login of {}", t.bare(n)))?;
        Ok(c)
    }

    async fn open_stream(&mut self, t: &Target, deadline: Instant) -> Result<()> {
        self.out.extend_from_slice(header(&t.domain).as_bytes());
        let f = self.expect(deadline).await?;
        if f.kind != Kind::Open {
            bail!("expected a stream header, got {}", self.text(&f));
        }
        let f = self.expect(deadline).await?;
        if frame::local_name(self.bytes(&f)) != b"features" {
            bail!("expected stream features, got {}", self.text(&f));
        }
        Ok(())
    }

    async fn negotiate(&mut self, t: &Target, n: usize, setup: Setup, dl: Instant) -> Result<()> {
        self.open_stream(t, dl).await?;
        if let Some(tls) = &t.tls {
            self.out
                .extend_from_slice(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            let f = self.expect(dl).await?;
            if frame::local_name(self.bytes(&f)) != b"proceed" {
                bail!("STARTTLS refused: {}", self.text(&f));
            }
            let Io::Tcp(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
                bail!("TLS twice");
            };
            let name = rustls::pki_types::ServerName::try_from(t.domain.clone())?;
            let s = tokio::time::timeout_at(dl, tls.connect(name, tcp))
                .await
                .map_err(|_| anyhow!("TLS handshake timed out"))??;
            self.io = Io::Tls(Box::new(s));
            self.inb.clear();
            self.start = 0;
            self.open_stream(t, dl).await?;
        }
        self.authenticate(t, n, dl).await?;
        self.open_stream(t, dl).await?;
        self.out.extend_from_slice(
            b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>",
        );
        let f = self.expect(dl).await?;
        let el = self.bytes(&f);
        if frame::attr(el, b"type") != Some(b"result") {
            bail!("bind failed: {}", self.text(&f));
        }
        self.jid = String::from_utf8_lossy(
            frame::inner_text(el, b"<jid>", b"</jid>").ok_or_else(|| anyhow!("no JID bound"))?,
        )
        .into_owned();
        let sm = setup.sm && t.sm;
        if sm {
            self.out
                .extend_from_slice(b"<enable xmlns='urn:xmpp:sm:3'/>");
        }
        if setup.presence {
            self.send_stanza(b"<presence/>");
        }
        if !setup.wait {
            return self.flush().await;
        }
        let (mut enabled, mut online) = (!sm, !setup.presence);
        while !(enabled && online) {
            let f = self.expect(dl).await?;
            match f.kind {
                Kind::Enabled => enabled = true,
                Kind::Presence => {
                    let from = frame::attr(self.bytes(&f), b"from");
                    online |= from == Some(self.jid.as_bytes());
                }
                Kind::Close => bail!("stream closed"),
                _ => {}
            }
        }
        Ok(())
    }

    async fn authenticate(&mut self, t: &Target, n: usize, dl: Instant) -> Result<()> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let user = t.user(n);
        let (hash, name) = match t.mech {
            Mech::Plain => {
                let ir = natter_sasl::plain_initial_response(None, &user, &t.password);
                write!(
                    self.out,
                    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{}</auth>",
                    b64.encode(ir)
                )?;
                let f = self.expect(dl).await?;
                if frame::local_name(self.bytes(&f)) != b"success" {
                    bail!("authentication failed: {}", self.text(&f));
                }
                self.restart();
                return Ok(());
            }
            Mech::ScramSha1 => (natter_sasl::Hash::Sha1, "SCRAM-SHA-1"),
            Mech::ScramSha256 => (natter_sasl::Hash::Sha256, "SCRAM-SHA-256"),
        };
        let mut c = natter_sasl::ScramClient::new(hash, &user, &t.password, None);
        write!(
            self.out,
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{name}'>{}</auth>",
            b64.encode(c.client_first())
        )?;
        let f = self.expect(dl).await?;
        let el = self.bytes(&f);
        if frame::local_name(el) != b"challenge" {
            bail!("authentication failed: {}", self.text(&f));
        }
        let data = b64.decode(sasl_text(el))?;
        let fin = c
            .handle_server_first(&data)
            .map_err(|e| anyhow!("SCRAM: {e}"))?;
        write!(
            self.out,
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            b64.encode(fin)
        )?;
        let f = self.expect(dl).await?;
        let el = self.bytes(&f);
        if frame::local_name(el) != b"success" {
            bail!("authentication failed: {}", self.text(&f));
        }
        let data = b64.decode(sasl_text(el))?;
        c.verify_server_final(&data)
            .map_err(|e| anyhow!("SCRAM server signature: {e}"))?;
        self.restart();
        Ok(())
    }

    /// After SASL success: the server starts a new stream.
    fn restart(&mut self) {
        self.inb.drain(..self.start);
        self.start = 0;
    }

    /// Queues a stanza that the server's SM `h` counts.
    pub fn send_stanza(&mut self, s: &[u8]) {
        self.out.extend_from_slice(s);
        self.sent = self.sent.wrapping_add(1);
    }

    /// Writes everything queued in `out`.
    pub async fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        match &mut self.io {
            Io::Tcp(s) => s.write_all(&self.out).await?,
            Io::Tls(s) => {
                s.write_all(&self.out).await?;
                s.flush().await?;
            }
            Io::Gone => bail!("no connection"),
        }
        self.out.clear();
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Reads more bytes; 0 means the server closed. Cancel-safe.
    pub async fn fill(&mut self) -> Result<usize> {
        if self.start > 0 {
            self.inb.drain(..self.start);
            self.start = 0;
        }
        if self.inb.is_empty() && self.inb.capacity() > 64 * 1024 {
            self.inb = Vec::new();
        }
        if self.inb.len() > MAX_PENDING {
            bail!("element larger than {MAX_PENDING} bytes");
        }
        match &mut self.io {
            Io::Tcp(s) => loop {
                s.readable().await?;
                let mut tmp = [0u8; 16 * 1024];
                match s.try_read(&mut tmp) {
                    Ok(n) => {
                        self.inb.extend_from_slice(&tmp[..n]);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e.into()),
                }
            },
            Io::Tls(s) => {
                self.inb.reserve(8192);
                Ok(s.read_buf(&mut self.inb).await?)
            }
            Io::Gone => bail!("no connection"),
        }
    }

    /// The next complete item already buffered, with SM bookkeeping done:
    /// `<r/>` is answered into `out`, stanzas are counted.
    pub fn next(&mut self) -> Result<Option<Frame>> {
        loop {
            let b = &self.inb[self.start..];
            let (kind, n) = match frame::scan(b) {
                Scan::Incomplete => return Ok(None),
                Scan::Skip(n) => {
                    self.start += n;
                    continue;
                }
                Scan::Open(n) => (Kind::Open, n),
                Scan::Close(n) => (Kind::Close, n),
                Scan::Element(n) => {
                    let el = &b[..n];
                    let kind = match frame::local_name(el) {
                        b"message" => Kind::Message,
                        b"presence" => Kind::Presence,
                        b"iq" => Kind::Iq,
                        b"r" => Kind::AckRequest,
                        b"a" => Kind::Ack,
                        b"enabled" => Kind::Enabled,
                        _ => Kind::Other,
                    };
                    match kind {
                        Kind::Message | Kind::Presence | Kind::Iq => {
                            self.handled = self.handled.wrapping_add(1)
                        }
                        Kind::AckRequest if self.sm_on => {
                            write!(self.out, "<a xmlns='urn:xmpp:sm:3' h='{}'/>", self.handled)?;
                        }
                        Kind::Ack => {
                            let h = frame::attr(el, b"h")
                                .and_then(|h| std::str::from_utf8(h).ok()?.parse().ok());
                            self.acked = h.ok_or_else(|| anyhow!("<a/> without h"))?;
                        }
                        Kind::Enabled => {
                            self.sm_on = true;
                            self.handled = 0;
                        }
                        _ => {}
                    }
                    (kind, n)
                }
            };
            let range = self.start..self.start + n;
            self.start += n;
            return Ok(Some(Frame { kind, range }));
        }
    }

    /// The next item, flushing `out` and reading as needed, until `deadline`.
    pub async fn expect(&mut self, deadline: Instant) -> Result<Frame> {
        loop {
            if let Some(f) = self.next()? {
                return Ok(f);
            }
            self.flush().await?;
            let n = tokio::time::timeout_at(deadline, self.fill())
                .await
                .map_err(|_| anyhow!("timed out waiting for the server"))??;
            if n == 0 {
                bail!("server closed the connection");
            }
        }
    }

    pub fn bytes(&self, f: &Frame) -> &[u8] {
        &self.inb[f.range.clone()]
    }

    /// The frame's bytes and the output buffer, borrowed together.
    pub fn split(&mut self, f: &Frame) -> (&[u8], &mut Vec<u8>) {
        (&self.inb[f.range.clone()], &mut self.out)
    }

    pub fn text(&self, f: &Frame) -> String {
        String::from_utf8_lossy(self.bytes(f))
            .chars()
            .take(300)
            .collect()
    }

    /// Acks what we handled, closes the stream and waits (bounded) for the server to close.
    pub async fn close(mut self, wait: Duration) {
        if self.sm_on {
            let _ = write!(self.out, "<a xmlns='urn:xmpp:sm:3' h='{}'/>", self.handled);
        }
        self.out.extend_from_slice(b"</stream:stream>");
        let _ = tokio::time::timeout(wait, async {
            self.flush().await?;
            loop {
                while let Some(f) = self.next()? {
                    if f.kind == Kind::Close {
                        return Ok(());
                    }
                }
                if self.fill().await? == 0 {
                    return Ok::<(), anyhow::Error>(());
                }
            }
        })
        .await;
    }
}

/// The text of a SASL element (`<success>…</success>`, `=` or empty).
fn sasl_text(el: &[u8]) -> &[u8] {
    let Some(gt) = memchr::memchr(b'>', el) else {
        return &[];
    };
    if el[gt - 1] == b'/' {
        return &[];
    }
    let inner = &el[gt + 1..memchr::memrchr(b'<', el).unwrap_or(el.len()).max(gt + 1)];
    let inner = inner.trim_ascii();
    if inner == b"=" {
        &[]
    } else {
        inner
    }
}
