//! The real natterd process: `natterd status` and `natterd kick` through the
//! admin API, and SIGHUP reloading the log level and TLS certificate
//! without dropping a session.

#[path = "../../natter-server/tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "crash_sm/process.rs"]
mod process;

use common::Client;
use process::{free_port, natterd};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "cli-test-token-abcdefghijklmnop";

struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(config: &Path) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_natterd"))
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let r = Running { child, log };
        r.wait_log("natterd serving");
        r
    }

    fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no log line with {needle:?}:\n{}",
            self.log.lock().unwrap().join("\n")
        );
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

fn write_cert(dir: &Path) -> Vec<u8> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    ck.cert.der().to_vec()
}

/// The certificate natterd presents on its direct-TLS port.
async fn presented_cert(addr: SocketAddr) -> Vec<u8> {
    #[derive(Debug)]
    struct Any;
    impl rustls::client::danger::ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn config(dir: &Path, ports: (u16, u16, u16), token: Option<&str>, level: &str) -> String {
    let token = token
        .map(|t| format!("[admin]\ntoken = \"{t}\"\n"))
        .unwrap_or_default();
    format!(
        "data_dir = \"{}\"\nlog_level = \"{level}\"\n[listen]\nc2s = \"127.0.0.1:{}\"\nc2s_tls = \"127.0.0.1:{}\"\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:{}\"\n[c2s]\nrequire_tls = false\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n{token}",
        dir.join("data").display(),
        ports.0,
        ports.1,
        ports.2,
        dir.join("cert.pem").display(),
        dir.join("key.pem").display(),
    )
}

fn out(o: &std::process::Output) -> (bool, String, String) {
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_kick_and_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let first_cert = write_cert(dir.path());
    let cfg = dir.path().join("natterd.toml");
    std::fs::write(&cfg, config(dir.path(), ports, Some(TOKEN), "info")).unwrap();
    assert!(natterd(&cfg, &["user", "add", "alice", "--password", "pw"])
        .status
        .success());
    let srv = Running::start(&cfg);
    let c2s: SocketAddr = format!("127.0.0.1:{}", ports.0).parse().unwrap();
    let c2s_tls: SocketAddr = format!("127.0.0.1:{}", ports.1).parse().unwrap();
    let mut alice = Client::online(c2s, "alice", "pw", "phone").await;

    let (ok, stdout, stderr) = out(&natterd(&cfg, &["status"]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("domain: localhost"), "{stdout}");
    assert!(
        stdout.contains("sessions: 1 (tcp 1, tls 0, websocket 0)"),
        "{stdout}"
    );
    assert!(stdout.contains("accounts: 1"), "{stdout}");

    // A wrong token, and none at all, are refused with a clear message.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        config(dir.path(), ports, Some("not-the-token-at-all-0000"), "info"),
    )
    .unwrap();
    let (ok, _, stderr) = out(&natterd(&other, &["status"]));
    assert!(!ok);
    assert!(
        stderr.contains("the server refused the admin token: wrong admin token"),
        "{stderr}"
    );
    std::fs::write(&other, config(dir.path(), ports, None, "info")).unwrap();
    let (ok, _, stderr) = out(&natterd(&other, &["kick", "alice"]));
    assert!(!ok);
    assert!(stderr.contains("no admin token"), "{stderr}");
    assert!(stderr.contains("admin.token"), "{stderr}");

    // SIGHUP: a new certificate and log level, the session stays.
    assert_eq!(presented_cert(c2s_tls).await, first_cert);
    let second_cert = write_cert(dir.path());
    std::fs::write(&cfg, config(dir.path(), ports, Some(TOKEN), "debug")).unwrap();
    srv.signal("-HUP");
    srv.wait_log("TLS certificate reloaded");
    srv.wait_log("log level reloaded");
    assert_eq!(presented_cert(c2s_tls).await, second_cert);
    let pong = alice
        .iq(
            "p1",
            "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert_eq!(pong.stanza_type().as_deref(), Some("result"));
    // A broken certificate on the next SIGHUP changes nothing.
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    srv.signal("-HUP");
    srv.wait_log("TLS certificate not reloaded");
    assert_eq!(presented_cert(c2s_tls).await, second_cert);

    // Kick: the session ends; kicking again finds nobody.
    let (ok, stdout, stderr) = out(&natterd(&cfg, &["kick", "alice"]));
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "kicked 1 session(s) of alice@localhost");
    assert_eq!(
        alice.stream_error().await.as_deref(),
        Some("policy-violation")
    );
    let (ok, _, stderr) = out(&natterd(&cfg, &["kick", "alice@localhost"]));
    assert!(!ok);
    assert!(
        stderr.contains("alice@localhost has no session"),
        "{stderr}"
    );
    srv.signal("-TERM");
    drop(srv);

    // With no server running the CLI says where it looked.
    let (ok, _, stderr) = out(&natterd(&cfg, &["status"]));
    assert!(!ok);
    assert!(
        stderr.contains("cannot reach the admin listener"),
        "{stderr}"
    );
}
