//! Mechanism names and channel-binding data.

use std::fmt;

use crate::crypto::Hash;

/// Channel binding type name of RFC 9266 (TLS 1.3 exporter).
pub const CB_TLS_EXPORTER: &str = "tls-exporter";
/// Channel binding type name of RFC 5929 (hash of the server certificate).
pub const CB_TLS_SERVER_END_POINT: &str = "tls-server-end-point";

/// A SASL mechanism supported by this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, core::hash::Hash)]
pub enum Mechanism {
    /// `SCRAM-SHA-1` (RFC 5802).
    ScramSha1,
    /// `SCRAM-SHA-1-PLUS` (RFC 5802 with channel binding).
    ScramSha1Plus,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-256-PLUS` (RFC 7677 with channel binding).
    ScramSha256Plus,
    /// `PLAIN` (RFC 4616).
    Plain,
}

impl Mechanism {
    /// Every mechanism, strongest first (a sensible advertisement order).
    pub const ALL: [Mechanism; 5] = [
        Mechanism::ScramSha256Plus,
        Mechanism::ScramSha1Plus,
        Mechanism::ScramSha256,
        Mechanism::ScramSha1,
        Mechanism::Plain,
    ];

    /// The IANA-registered mechanism name, e.g. `"SCRAM-SHA-256-PLUS"`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha1Plus => "SCRAM-SHA-1-PLUS",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha256Plus => "SCRAM-SHA-256-PLUS",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// Parse a mechanism name (exact, case-sensitive match).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The SCRAM hash, or `None` for PLAIN.
    pub fn hash(self) -> Option<Hash> {
        match self {
            Mechanism::ScramSha1 | Mechanism::ScramSha1Plus => Some(Hash::Sha1),
            Mechanism::ScramSha256 | Mechanism::ScramSha256Plus => Some(Hash::Sha256),
            Mechanism::Plain => None,
        }
    }

    /// Whether this is a channel-binding (`-PLUS`) mechanism.
    pub fn is_plus(self) -> bool {
        matches!(self, Mechanism::ScramSha1Plus | Mechanism::ScramSha256Plus)
    }

    /// The mechanisms to advertise on a stream with these bindings, strongest
    /// first: `-PLUS` variants only when some binding is available, PLAIN
    /// only when `allow_plain` (typically: the stream is encrypted).
    pub fn advertised(bindings: &ChannelBindings, allow_plain: bool) -> Vec<Mechanism> {
        Self::ALL
            .into_iter()
            .filter(|m| !m.is_plus() || bindings.any())
            .filter(|m| *m != Mechanism::Plain || allow_plain)
            .collect()
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the TLS layer can bind to (None when the stream is not TLS).
#[derive(Clone, Debug, Default)]
pub struct ChannelBindings {
    /// RFC 9266 `tls-exporter` data (32 bytes of exported keying material
    /// with label "EXPORTER-Channel-Binding" and empty context).
    pub tls_exporter: Option<Vec<u8>>,
    /// RFC 5929 `tls-server-end-point` data (hash of the server certificate).
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl ChannelBindings {
    /// Whether any channel binding type is available.
    pub fn any(&self) -> bool {
        self.tls_exporter.is_some() || self.tls_server_end_point.is_some()
    }

    /// Available binding type names, preferred first, for the XEP-0440
    /// `<sasl-channel-binding>` advertisement.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.tls_exporter.is_some() {
            names.push(CB_TLS_EXPORTER);
        }
        if self.tls_server_end_point.is_some() {
            names.push(CB_TLS_SERVER_END_POINT);
        }
        names
    }

    /// The binding data for the type called `name`, if available.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match name {
            CB_TLS_EXPORTER => self.tls_exporter.as_deref(),
            CB_TLS_SERVER_END_POINT => self.tls_server_end_point.as_deref(),
            _ => None,
        }
    }
}
