//! TLS set-up: the configured certificate, or a self-signed one made on first
//! start and kept in `data_dir/tls/`; and channel-binding data for SCRAM-PLUS.

use crate::config::Config;
use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// A loaded server certificate with what channel binding needs of it. The
/// certificate can be replaced while the server runs (`reload`): new
/// handshakes use the new one, established connections keep theirs.
#[derive(Clone)]
pub struct TlsSetup {
    pub acceptor: tokio_rustls::TlsAcceptor,
    current: Arc<CertSwap>,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup").finish_non_exhaustive()
    }
}

/// The certificate in use, and its RFC 5929 `tls-server-end-point` data
/// (the SHA-256 of the leaf certificate).
#[derive(Debug)]
struct CertSwap(RwLock<(Arc<CertifiedKey>, Vec<u8>)>);

impl ResolvesServerCert for CertSwap {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).0.clone())
    }
}

impl TlsSetup {
    /// The `tls-server-end-point` channel-binding data of the certificate
    /// new connections get.
    pub fn server_end_point(&self) -> Vec<u8> {
        self.current
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// Reads the certificate and key again (SIGHUP). On error the old one
    /// stays in use.
    pub fn reload(&self, cfg: &Config) -> Result<()> {
        let loaded = read_pair(cfg)?;
        *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        tracing::info!("TLS certificate reloaded");
        Ok(())
    }
}

/// The certificate and key files to use (generating the default pair once).
fn paths(cfg: &Config) -> Result<(PathBuf, PathBuf)> {
    Ok(match (&cfg.tls.cert, &cfg.tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let dir = cfg.data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                generate(&cfg.domain, &c, &k)?;
            }
            (c, k)
        }
    })
}

fn read_pair(cfg: &Config) -> Result<(Arc<CertifiedKey>, Vec<u8>)> {
    let (cert_path, key_path) = paths(cfg)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| format!("tls.cert: cannot read {}", cert_path.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("tls.cert: bad PEM in {}", cert_path.display()))?;
    let leaf = certs
        .first()
        .with_context(|| format!("tls.cert: no certificate in {}", cert_path.display()))?;
    let server_end_point = Sha256::digest(leaf.as_ref()).to_vec();
    let key = PrivateKeyDer::from_pem_file(&key_path).with_context(|| {
        format!(
            "tls.key: cannot read a private key from {}",
            key_path.display()
        )
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .context("tls.key: unsupported private key type")?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match()
        .context("tls.cert / tls.key do not form a usable pair")?;
    Ok((Arc::new(ck), server_end_point))
}

/// Loads (or, for the default paths, generates once) the certificate.
pub fn load(cfg: &Config) -> Result<TlsSetup> {
    let current = Arc::new(CertSwap(RwLock::new(read_pair(cfg)?)));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(current.clone());
    Ok(TlsSetup {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        current,
    })
}

fn generate(domain: &str, cert: &Path, key: &Path) -> Result<()> {
    let dir: PathBuf = cert.parent().map(Path::to_owned).unwrap_or_default();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let ck = rcgen::generate_simple_self_signed(vec![domain.to_owned()])
        .context("generating a self-signed certificate")?;
    write_private(key, ck.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, ck.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed certificate for {domain}");
    Ok(())
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

/// RFC 9266 `tls-exporter` channel-binding data of an established TLS 1.3 session.
pub fn exporter(conn: &rustls::ServerConnection) -> Option<Vec<u8>> {
    if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    conn.export_keying_material(vec![0u8; 32], b"EXPORTER-Channel-Binding", None)
        .ok()
}
