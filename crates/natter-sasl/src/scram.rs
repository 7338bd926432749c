//! SCRAM (RFC 5802 / RFC 7677) message syntax and the server side of the
//! exchange. The client side lives in `client.rs` and reuses the helpers here.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::credentials::{StoredCredentials, DEFAULT_ITERATIONS, SALT_LEN};
use crate::crypto::{self, Hash};
use crate::mechanism::{ChannelBindings, Mechanism};
use crate::server::Step;
use crate::SaslError;

/// Upper bound on the size of any SCRAM message we accept.
pub(crate) const MAX_MESSAGE_LEN: usize = 8192;

/// Length of the random part of a nonce before base64 encoding.
const NONCE_BYTES: usize = 24;

pub(crate) fn random_nonce() -> String {
    B64.encode(crypto::random_bytes(NONCE_BYTES))
}

/// RFC 5802 `printable`: `%x21-2B / %x2D-7E` (no comma).
pub(crate) fn valid_nonce(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Escape a `saslname`: `,` → `=2C`, `=` → `=3D`.
pub(crate) fn escape_saslname(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
    out
}

/// Unescape a non-empty `saslname`; any `=` not starting `=2C`/`=3D`, and
/// NUL, are malformed.
pub(crate) fn unescape_saslname(s: &str) -> Result<String, SaslError> {
    if s.is_empty() {
        return Err(SaslError::malformed("empty saslname"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find(['=', '\0']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let escape = tail.get(..3).map(|e| e.to_ascii_uppercase());
        match escape.as_deref() {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(SaslError::malformed("invalid escape in saslname")),
        }
        rest = &tail[3..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) fn utf8(msg: &[u8]) -> Result<&str, SaslError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(SaslError::malformed("SCRAM message too long"));
    }
    std::str::from_utf8(msg).map_err(|_| SaslError::malformed("SCRAM message is not UTF-8"))
}

/// The value of attribute `name` in `part` (`name=value`).
pub(crate) fn attr_value(part: &str, name: char) -> Result<&str, SaslError> {
    let mut chars = part.chars();
    if chars.next() == Some(name) && chars.next() == Some('=') {
        Ok(&part[2..])
    } else {
        Err(SaslError::malformed(format!(
            "expected attribute '{name}='"
        )))
    }
}

/// Check optional trailing extensions: each `ALPHA=value`, never `m=`.
pub(crate) fn check_extensions<'a>(parts: impl Iterator<Item = &'a str>) -> Result<(), SaslError> {
    for part in parts {
        let b = part.as_bytes();
        if b.len() < 2 || !b[0].is_ascii_alphabetic() || b[1] != b'=' {
            return Err(SaslError::malformed("invalid attribute"));
        }
        if b[0] == b'm' {
            return Err(SaslError::malformed("unsupported mandatory extension"));
        }
    }
    Ok(())
}

pub(crate) fn decode_b64(s: &str, what: &str) -> Result<Vec<u8>, SaslError> {
    B64.decode(s)
        .map_err(|_| SaslError::malformed(format!("invalid base64 in {what}")))
}

/// The GS2 channel-binding flag of a client-first message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CbFlag {
    /// `n`: the client does not support channel binding.
    NotSupported,
    /// `y`: the client supports it but thinks the server does not.
    SupportedNotUsed,
    /// `p=name`: the client uses channel binding of type `name`.
    Used(String),
}

/// A parsed client-first message.
#[derive(Clone, Debug)]
pub(crate) struct ClientFirst {
    pub gs2_header: String,
    pub cb_flag: CbFlag,
    pub authzid: Option<String>,
    /// Unescaped and SASLprep'd.
    pub username: String,
    pub client_nonce: String,
    pub bare: String,
}

fn valid_cb_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

pub(crate) fn parse_client_first(msg: &[u8]) -> Result<ClientFirst, SaslError> {
    let msg = utf8(msg)?;
    let (flag, rest) = msg
        .split_once(',')
        .ok_or_else(|| SaslError::malformed("missing GS2 header"))?;
    let (authzid, bare) = rest
        .split_once(',')
        .ok_or_else(|| SaslError::malformed("missing GS2 header"))?;
    let gs2_header = msg[..msg.len() - bare.len()].to_owned();

    let cb_flag = match flag {
        "n" => CbFlag::NotSupported,
        "y" => CbFlag::SupportedNotUsed,
        _ => match flag.strip_prefix("p=") {
            Some(name) if valid_cb_name(name) => CbFlag::Used(name.to_owned()),
            _ => return Err(SaslError::malformed("invalid GS2 channel binding flag")),
        },
    };
    let authzid = if authzid.is_empty() {
        None
    } else {
        Some(unescape_saslname(attr_value(authzid, 'a')?)?)
    };

    let mut parts = bare.split(',');
    let first = parts.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(SaslError::malformed("unsupported mandatory extension"));
    }
    let raw_user = unescape_saslname(attr_value(first, 'n')?)?;
    let username = stringprep::saslprep(&raw_user)
        .map_err(|_| SaslError::malformed("username fails SASLprep"))?
        .into_owned();
    if username.is_empty() {
        return Err(SaslError::malformed("empty username"));
    }
    let client_nonce = attr_value(parts.next().unwrap_or_default(), 'r')?;
    if !valid_nonce(client_nonce) {
        return Err(SaslError::malformed("invalid client nonce"));
    }
    check_extensions(parts)?;

    Ok(ClientFirst {
        gs2_header,
        cb_flag,
        authzid,
        username,
        client_nonce: client_nonce.to_owned(),
        bare: bare.to_owned(),
    })
}

/// A parsed client-final message.
pub(crate) struct ClientFinal<'a> {
    pub channel_binding: Vec<u8>,
    pub nonce: &'a str,
    pub proof: Vec<u8>,
    pub without_proof: &'a str,
}

pub(crate) fn parse_client_final(msg: &[u8]) -> Result<ClientFinal<'_>, SaslError> {
    let msg = utf8(msg)?;
    let (without_proof, proof) = msg
        .rsplit_once(',')
        .ok_or_else(|| SaslError::malformed("client-final too short"))?;
    let proof = decode_b64(attr_value(proof, 'p')?, "proof")?;
    let mut parts = without_proof.split(',');
    let channel_binding = decode_b64(
        attr_value(parts.next().unwrap_or_default(), 'c')?,
        "channel binding",
    )?;
    let nonce = attr_value(parts.next().unwrap_or_default(), 'r')?;
    check_extensions(parts)?;
    Ok(ClientFinal {
        channel_binding,
        nonce,
        proof,
        without_proof,
    })
}

/// A parsed server-first message (client side).
pub(crate) struct ServerFirst {
    pub nonce: String,
    pub salt: Vec<u8>,
    pub iterations: u32,
}

pub(crate) fn parse_server_first(msg: &[u8]) -> Result<ServerFirst, SaslError> {
    let msg = utf8(msg)?;
    let mut parts = msg.split(',');
    let first = parts.next().unwrap_or_default();
    if first.starts_with("m=") {
        return Err(SaslError::malformed("unsupported mandatory extension"));
    }
    if first.starts_with("e=") {
        return Err(SaslError::NotAuthorized);
    }
    let nonce = attr_value(first, 'r')?;
    if !valid_nonce(nonce) {
        return Err(SaslError::malformed("invalid nonce"));
    }
    let salt = decode_b64(attr_value(parts.next().unwrap_or_default(), 's')?, "salt")?;
    if salt.is_empty() {
        return Err(SaslError::malformed("empty salt"));
    }
    let iterations = attr_value(parts.next().unwrap_or_default(), 'i')?;
    let iterations: u32 = match iterations.parse() {
        Ok(i) if i > 0 && !iterations.starts_with('+') => i,
        _ => return Err(SaslError::malformed("invalid iteration count")),
    };
    check_extensions(parts)?;
    Ok(ServerFirst {
        nonce: nonce.to_owned(),
        salt,
        iterations,
    })
}

/// Fake salt for an unknown user: deterministic per (hash, username) within
/// this process, unpredictable to clients.
fn fake_salt(hash: Hash, username: &str) -> Vec<u8> {
    let mut data = b"natter-sasl fake salt\0".to_vec();
    data.extend_from_slice(hash.name().as_bytes());
    data.push(0);
    data.extend_from_slice(username.as_bytes());
    let mut salt = crypto::hmac(Hash::Sha256, crypto::process_secret(), &data);
    salt.truncate(SALT_LEN);
    salt
}

/// Server state after client-first, waiting for the account lookup.
pub(crate) struct AwaitingCredentials {
    hash: Hash,
    first: ClientFirst,
    /// The exact bytes `c=` must decode to: GS2 header + binding data.
    expected_cb: Vec<u8>,
}

impl AwaitingCredentials {
    pub(crate) fn username(&self) -> &str {
        &self.first.username
    }

    pub(crate) fn start(
        mechanism: Mechanism,
        hash: Hash,
        bindings: &ChannelBindings,
        plus_advertised: bool,
        msg: &[u8],
    ) -> Result<Self, SaslError> {
        let first = parse_client_first(msg)?;
        let mut expected_cb = first.gs2_header.as_bytes().to_vec();
        match (&first.cb_flag, mechanism.is_plus()) {
            (CbFlag::Used(name), true) => {
                let data = bindings
                    .get(name)
                    .ok_or_else(|| SaslError::UnsupportedChannelBinding(name.clone()))?;
                expected_cb.extend_from_slice(data);
            }
            (CbFlag::Used(_), false) => {
                return Err(SaslError::malformed(
                    "channel binding requested with a non-PLUS mechanism",
                ))
            }
            (_, true) => {
                return Err(SaslError::malformed(
                    "-PLUS mechanism used without channel binding",
                ))
            }
            // Downgrade: the client supports channel binding and we offered
            // it, so someone removed the -PLUS mechanisms from our offer.
            (CbFlag::SupportedNotUsed, false) if plus_advertised => {
                return Err(SaslError::NotAuthorized)
            }
            (_, false) => {}
        }
        Ok(AwaitingCredentials {
            hash,
            first,
            expected_cb,
        })
    }

    /// Produce server-first. `None` credentials continue with fake keys.
    pub(crate) fn credentials(
        self,
        creds: Option<&StoredCredentials>,
        server_nonce: Option<String>,
    ) -> (AwaitingFinal, Vec<u8>) {
        let hash = self.hash;
        let (salt, iterations, stored_key, server_key, known) = match creds {
            Some(c) => {
                let k = c.keys(hash);
                (
                    k.salt.clone(),
                    k.iterations,
                    k.stored_key.clone(),
                    k.server_key.clone(),
                    true,
                )
            }
            None => (
                fake_salt(hash, &self.first.username),
                DEFAULT_ITERATIONS,
                crypto::random_bytes(hash.output_len()),
                crypto::random_bytes(hash.output_len()),
                false,
            ),
        };
        let nonce = format!(
            "{}{}",
            self.first.client_nonce,
            server_nonce.unwrap_or_else(random_nonce)
        );
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        let challenge = server_first.clone().into_bytes();
        (
            AwaitingFinal {
                hash,
                first: self.first,
                expected_cb: self.expected_cb,
                server_first,
                nonce,
                stored_key,
                server_key,
                known,
            },
            challenge,
        )
    }
}

/// Server state after server-first, waiting for client-final.
pub(crate) struct AwaitingFinal {
    hash: Hash,
    first: ClientFirst,
    expected_cb: Vec<u8>,
    server_first: String,
    nonce: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    known: bool,
}

impl AwaitingFinal {
    pub(crate) fn finish(self, msg: &[u8]) -> Result<Step, SaslError> {
        let fin = parse_client_final(msg)?;
        if fin.proof.len() != self.hash.output_len() {
            return Err(SaslError::malformed("client proof has the wrong length"));
        }
        if !crypto::ct_eq(&fin.channel_binding, &self.expected_cb) {
            return Err(SaslError::NotAuthorized);
        }
        if fin.nonce != self.nonce {
            return Err(SaslError::NotAuthorized);
        }
        let auth_message = format!(
            "{},{},{}",
            self.first.bare, self.server_first, fin.without_proof
        );
        let client_signature = crypto::hmac(self.hash, &self.stored_key, auth_message.as_bytes());
        let client_key = crypto::xor(&fin.proof, &client_signature);
        let proof_ok = crypto::ct_eq(&crypto::digest(self.hash, &client_key), &self.stored_key);
        if !(proof_ok && self.known) {
            return Err(SaslError::NotAuthorized);
        }
        let server_signature = crypto::hmac(self.hash, &self.server_key, auth_message.as_bytes());
        let additional = format!("v={}", B64.encode(server_signature)).into_bytes();
        Ok(Step::Success {
            username: self.first.username,
            authzid: self.first.authzid,
            additional_data: Some(additional),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_escaping_round_trips() {
        for s in ["plain", "a,b", "=", "=2C", ",,==", "é,ü"] {
            assert_eq!(unescape_saslname(&escape_saslname(s)).unwrap(), s);
        }
        assert_eq!(escape_saslname("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape_saslname("a=2cb=3dc").unwrap(), "a,b=c");
    }

    #[test]
    fn saslname_rejects_bad_escapes() {
        for bad in ["", "=", "=2", "=2D", "a=ZZ", "a\0b", "=\u{e9}9"] {
            assert!(unescape_saslname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nonce_validity() {
        assert!(valid_nonce(&random_nonce()));
        assert_eq!(random_nonce().len(), 32);
        assert!(!valid_nonce(""));
        assert!(!valid_nonce("a,b"));
        assert!(!valid_nonce("a b"));
        assert!(!valid_nonce("a\u{7f}"));
    }
}
