//! PLAIN (RFC 4616): `[authzid] NUL authcid NUL passwd`.

use crate::credentials::{ScramKeys, DEFAULT_ITERATIONS};
use crate::crypto::Hash;
use crate::server::Step;
use crate::{SaslError, StoredCredentials};

/// Upper bound on the size of a PLAIN message we accept.
const MAX_MESSAGE_LEN: usize = 4096;

/// A parsed PLAIN message, waiting for the account lookup.
pub(crate) struct PlainPending {
    authzid: Option<String>,
    /// SASLprep'd authentication identity.
    authcid: String,
    password: String,
}

impl PlainPending {
    pub(crate) fn parse(data: &[u8]) -> Result<Self, SaslError> {
        if data.len() > MAX_MESSAGE_LEN {
            return Err(SaslError::malformed("PLAIN message too long"));
        }
        let s = std::str::from_utf8(data)
            .map_err(|_| SaslError::malformed("PLAIN message is not UTF-8"))?;
        let mut fields = s.split('\0');
        let (authzid, authcid, password) =
            match (fields.next(), fields.next(), fields.next(), fields.next()) {
                (Some(z), Some(c), Some(p), None) => (z, c, p),
                _ => {
                    return Err(SaslError::malformed(
                        "PLAIN message must be authzid NUL authcid NUL passwd",
                    ))
                }
            };
        if authcid.is_empty() {
            return Err(SaslError::malformed("empty authcid"));
        }
        if password.is_empty() {
            return Err(SaslError::malformed("empty password"));
        }
        let authcid = stringprep::saslprep(authcid)
            .map_err(|_| SaslError::malformed("authcid fails SASLprep"))?
            .into_owned();
        if authcid.is_empty() {
            return Err(SaslError::malformed("empty authcid"));
        }
        Ok(PlainPending {
            authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
            authcid,
            password: password.to_owned(),
        })
    }

    pub(crate) fn username(&self) -> &str {
        &self.authcid
    }

    pub(crate) fn verify(self, creds: Option<&StoredCredentials>) -> Result<Step, SaslError> {
        match creds {
            Some(c) if c.verify_password(&self.password) => Ok(Step::Success {
                username: self.authcid,
                authzid: self.authzid,
                additional_data: None,
            }),
            Some(_) => Err(SaslError::NotAuthorized),
            None => {
                // Spend the same effort as for a real account so that
                // unknown users are not revealed by timing.
                let _ = ScramKeys::derive(
                    Hash::Sha256,
                    &self.password,
                    b"natter-sasl dummy salt",
                    DEFAULT_ITERATIONS,
                );
                Err(SaslError::NotAuthorized)
            }
        }
    }
}

/// Build a PLAIN initial response: `authzid NUL username NUL password`.
pub fn plain_initial_response(authzid: Option<&str>, username: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(username.len() + password.len() + 2);
    out.extend_from_slice(authzid.unwrap_or_default().as_bytes());
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}
