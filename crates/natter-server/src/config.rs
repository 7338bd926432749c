//! The one TOML configuration file. Every key is optional and defaulted;
//! unknown keys and bad values are refused with a message naming the key.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration of a natterd node.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The XMPP domain served (the part after `@` in every account's JID).
    pub domain: String,
    /// Where the embedded store and the generated certificate live.
    pub data_dir: PathBuf,
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
    pub log_level: String,
    pub listen: Listen,
    pub c2s: C2s,
    pub tls: Tls,
    pub store: StoreSection,
    pub http: Http,
    pub admin: Admin,
    pub limits: Limits,
    pub archive: ArchiveSection,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Client-to-server with STARTTLS (RFC 6120).
    pub c2s: SocketAddr,
    /// Client-to-server with direct TLS (XEP-0368).
    pub c2s_tls: SocketAddr,
    /// HTTP: XMPP over WebSocket (RFC 7395) and host-meta (XEP-0156).
    pub http: SocketAddr,
    /// The same over HTTPS; served only when `[tls] cert` is configured.
    pub https: SocketAddr,
    /// Operators: `/metrics`, `/health` and the admin API.
    pub admin: SocketAddr,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// The WebSocket URL announced by host-meta; default: built from the
    /// request's Host header (`ws://HOST/xmpp-websocket`, `wss://` on https).
    pub websocket_url: Option<String>,
    /// A reverse proxy on a trusted path terminates TLS in front of the http
    /// listener: WebSocket clients there may authenticate with `require_tls`.
    pub behind_tls_proxy: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// The admin API's bearer token; default: the contents of
    /// `<data_dir>/admin.token` if that file exists. With neither, every
    /// admin API request is refused.
    pub token: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Client connections open at once (TCP, TLS and WebSocket together);
    /// one more is refused with `resource-constraint` (HTTP 503).
    pub max_connections: usize,
    /// New client connections one IP address may open per minute; more are
    /// refused with `policy-violation` (HTTP 429). 0: no limit.
    pub connections_per_ip_per_minute: u32,
    /// Apply the per-IP rate to loopback addresses too (off: local proxies
    /// and benchmarks are not limited).
    pub limit_loopback: bool,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct C2s {
    /// Refuse authentication before TLS. When false, SASL PLAIN and SCRAM are
    /// also offered on plain TCP (for loopback tests and benchmarks).
    pub require_tls: bool,
    /// Largest stanza accepted, in bytes; a larger one ends the stream with `policy-violation`.
    pub max_stanza_bytes: usize,
    /// Deepest element nesting accepted inside a stanza.
    pub max_depth: usize,
    /// Seconds a connection may take to authenticate and bind before it is closed.
    pub negotiation_timeout_secs: u64,
    /// Stanzas that may wait in one session's outbound mailbox.
    pub mailbox_size: usize,
    /// Seconds a session with stream management (XEP-0198) waits for its
    /// client to resume after the connection drops.
    pub resume_timeout_secs: u64,
    /// Stanzas a client may leave unacknowledged before it is disconnected
    /// as too slow (its queued messages stay in the store).
    pub max_unacked: usize,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain; default: `<data_dir>/tls/cert.pem`, generated self-signed on first start.
    pub cert: Option<PathBuf>,
    /// PEM private key; default: `<data_dir>/tls/key.pem`, generated with the certificate.
    pub key: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// fsync every commit (power-loss durability, group-committed). Off: a
    /// commit survives a crash of natterd (data is handed to the OS).
    pub fsync: bool,
    /// How long a message already handed to an online recipient waits for
    /// that recipient's acknowledgement before it is written to the queue.
    /// Acknowledged in time, it is never written. 0: written at once.
    pub ack_wait_ms: u64,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            fsync: false,
            ack_wait_ms: 100,
        }
    }
}

/// The message archive (XEP-0313).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ArchiveSection {
    /// Keep every 1:1 message in the sender's and the recipient's archive.
    /// Off: nothing is archived, messages leave the server once delivered.
    pub enabled: bool,
    /// Archived messages older than this many days are deleted in the
    /// background. 0: kept until the account is deleted.
    pub retention_days: u32,
}

impl Default for ArchiveSection {
    fn default() -> Self {
        ArchiveSection {
            enabled: true,
            retention_days: 30,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain: "localhost".into(),
            data_dir: PathBuf::from("./data"),
            log_level: "info".into(),
            listen: Listen::default(),
            c2s: C2s::default(),
            tls: Tls::default(),
            store: StoreSection::default(),
            http: Http::default(),
            admin: Admin::default(),
            limits: Limits::default(),
            archive: ArchiveSection::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            connections_per_ip_per_minute: 300,
            limit_loopback: false,
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            c2s: SocketAddr::from(([127, 0, 0, 1], 5222)),
            c2s_tls: SocketAddr::from(([127, 0, 0, 1], 5223)),
            http: SocketAddr::from(([127, 0, 0, 1], 5280)),
            https: SocketAddr::from(([127, 0, 0, 1], 5443)),
            admin: SocketAddr::from(([127, 0, 0, 1], 5281)),
        }
    }
}

impl Default for C2s {
    fn default() -> Self {
        C2s {
            require_tls: true,
            max_stanza_bytes: 262_144,
            max_depth: 64,
            negotiation_timeout_secs: 60,
            mailbox_size: 1024,
            resume_timeout_secs: 300,
            max_unacked: 1000,
        }
    }
}

/// A configuration that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// The complete, commented default configuration (`natterd config example`).
pub const EXAMPLE: &str = include_str!("config_example.toml");

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        match jid::BareJid::new(&self.domain) {
            Ok(j) if j.node().is_none() && j.as_str() == self.domain => {}
            _ => return invalid("domain", "must be a valid, lowercase domain name"),
        }
        if self.data_dir.as_os_str().is_empty() {
            return invalid("data_dir", "must not be empty");
        }
        if self.c2s.max_stanza_bytes < 10_000 {
            return invalid(
                "c2s.max_stanza_bytes",
                "must be at least 10000 (RFC 6120 §13.12)",
            );
        }
        if !(4..=1000).contains(&self.c2s.max_depth) {
            return invalid("c2s.max_depth", "must be between 4 and 1000");
        }
        if self.c2s.mailbox_size == 0 {
            return invalid("c2s.mailbox_size", "must be at least 1");
        }
        if self.c2s.max_unacked == 0 {
            return invalid("c2s.max_unacked", "must be at least 1");
        }
        if self.c2s.negotiation_timeout_secs == 0 {
            return invalid("c2s.negotiation_timeout_secs", "must be at least 1");
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return invalid("tls.cert", "tls.cert and tls.key must be given together");
        }
        if self.limits.max_connections == 0 {
            return invalid("limits.max_connections", "must be at least 1");
        }
        if let Some(url) = &self.http.websocket_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return invalid("http.websocket_url", "must start with ws:// or wss://");
            }
        }
        if let Some(t) = &self.admin.token {
            if t.trim().len() < 16 {
                return invalid("admin.token", "must be at least 16 characters");
            }
        }
        if self.archive.retention_days > 36_500 {
            return invalid(
                "archive.retention_days",
                "must be at most 36500 (0 keeps messages forever)",
            );
        }
        if let Err(e) = tracing_filter_ok(&self.log_level) {
            return invalid("log_level", &e);
        }
        Ok(())
    }

    /// The file the admin token is read from when `[admin] token` is unset.
    pub fn admin_token_path(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }

    /// The admin API token: `[admin] token`, else `<data_dir>/admin.token`
    /// (trimmed); None when neither gives one (the API then refuses all).
    pub fn admin_token(&self) -> Option<String> {
        if let Some(t) = &self.admin.token {
            return Some(t.trim().to_owned());
        }
        let t = std::fs::read_to_string(self.admin_token_path()).ok()?;
        let t = t.trim();
        (t.len() >= 16).then(|| t.to_owned())
    }

    /// The path of the embedded database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("natter.sqlite3")
    }
}

fn tracing_filter_ok(level: &str) -> Result<(), String> {
    // Accept the plain levels and simple `target=level` lists.
    let ok = level.split(',').all(|part| {
        let lvl = part.rsplit('=').next().unwrap_or("").trim();
        matches!(lvl, "trace" | "debug" | "info" | "warn" | "error" | "off")
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{level}` is not a log level (trace, debug, info, warn, error, off)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_is_the_default() {
        assert_eq!(Config::parse(EXAMPLE).unwrap(), Config::default());
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[c2s]\nrequire_tsl = false\n").unwrap_err();
        assert!(e.to_string().contains("require_tsl"), "{e}");
        let e = Config::parse("domian = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("domian"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = Config::parse("[listen]\nc2s = \"nowhere\"\n").unwrap_err();
        assert!(e.to_string().contains("c2s"), "{e}");
        let e = Config::parse("[c2s]\nrequire_tls = \"yes\"\n").unwrap_err();
        assert!(e.to_string().contains("require_tls"), "{e}");
        let e = Config::parse("domain = \"Bad Domain\"\n").unwrap_err();
        assert!(e.to_string().contains("domain"), "{e}");
        let e = Config::parse("[c2s]\nmax_stanza_bytes = 10\n").unwrap_err();
        assert!(e.to_string().contains("max_stanza_bytes"), "{e}");
        let e = Config::parse("[tls]\ncert = \"/x.pem\"\n").unwrap_err();
        assert!(e.to_string().contains("tls.cert"), "{e}");
        let e = Config::parse("[admin]\ntoken = \"short\"\n").unwrap_err();
        assert!(e.to_string().contains("admin.token"), "{e}");
        let e = Config::parse("[http]\nwebsocket_url = \"http://x/\"\n").unwrap_err();
        assert!(e.to_string().contains("http.websocket_url"), "{e}");
        let e = Config::parse("[limits]\nmax_connections = 0\n").unwrap_err();
        assert!(e.to_string().contains("limits.max_connections"), "{e}");
        let e = Config::parse("[listen]\nadmin = \"nowhere\"\n").unwrap_err();
        assert!(e.to_string().contains("admin"), "{e}");
        let e = Config::parse("[archive]\nretention_days = 100000\n").unwrap_err();
        assert!(e.to_string().contains("archive.retention_days"), "{e}");
        let e = Config::parse("[archive]\nenabled = 1\n").unwrap_err();
        assert!(e.to_string().contains("enabled"), "{e}");
        let e = Config::parse("log_level = \"loud\"\n").unwrap_err();
        assert!(e.to_string().contains("log_level"), "{e}");
    }
}
