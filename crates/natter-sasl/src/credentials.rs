//! SCRAM credential derivation and the storage format for passwords.
//!
//! Passwords are never stored: only the SCRAM `StoredKey`/`ServerKey` pair
//! (RFC 5802 §3) for each hash, each with its own random salt.

use crate::crypto::{self, Hash};
use crate::SaslError;

/// Default PBKDF2 iteration count for new credentials (RFC 7677 minimum).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Length of freshly generated salts, in bytes.
pub const SALT_LEN: usize = 16;

/// Current version byte of [`StoredCredentials::to_bytes`].
const FORMAT_VERSION: u8 = 1;

/// SCRAM keys for one hash function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramKeys {
    /// PBKDF2 iteration count.
    pub iterations: u32,
    /// Per-user random salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

/// Apply SASLprep (RFC 4013) to a password.
pub(crate) fn prep_password(password: &str) -> Result<String, SaslError> {
    stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .map_err(|_| SaslError::InvalidPassword)
}

/// `SaltedPassword = Hi(Normalize(password), salt, i)`.
pub(crate) fn salted_password(
    hash: Hash,
    password: &str,
    salt: &[u8],
    iterations: u32,
) -> Result<Vec<u8>, SaslError> {
    if iterations == 0 {
        return Err(SaslError::InvalidCredentials(
            "iteration count is zero".into(),
        ));
    }
    let prepped = prep_password(password)?;
    Ok(crypto::hi(hash, prepped.as_bytes(), salt, iterations))
}

impl ScramKeys {
    /// Derive the keys for `password` (SASLprep'd first) with the given salt
    /// and iteration count.
    pub fn derive(
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<ScramKeys, SaslError> {
        if salt.is_empty() {
            return Err(SaslError::InvalidCredentials("empty salt".into()));
        }
        let salted = salted_password(hash, password, salt, iterations)?;
        Ok(Self::from_salted_password(hash, &salted, salt, iterations))
    }

    pub(crate) fn from_salted_password(
        hash: Hash,
        salted: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> ScramKeys {
        let client_key = crypto::hmac(hash, salted, b"Client Key");
        ScramKeys {
            iterations,
            salt: salt.to_vec(),
            stored_key: crypto::digest(hash, &client_key),
            server_key: crypto::hmac(hash, salted, b"Server Key"),
        }
    }

    fn validate(&self, hash: Hash) -> Result<(), SaslError> {
        let bad = |m: &str| {
            Err(SaslError::InvalidCredentials(format!(
                "{}: {m}",
                hash.name()
            )))
        };
        if self.iterations == 0 {
            return bad("iteration count is zero");
        }
        if self.salt.is_empty() || self.salt.len() > usize::from(u8::MAX) {
            return bad("bad salt length");
        }
        if self.stored_key.len() != hash.output_len() || self.server_key.len() != hash.output_len()
        {
            return bad("bad key length");
        }
        Ok(())
    }
}

/// What the account store keeps for a password: SCRAM keys for both hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCredentials {
    /// Keys for SCRAM-SHA-1(-PLUS).
    pub sha1: ScramKeys,
    /// Keys for SCRAM-SHA-256(-PLUS); also used by PLAIN.
    pub sha256: ScramKeys,
}

impl StoredCredentials {
    /// Derive credentials with fresh random salts and [`DEFAULT_ITERATIONS`].
    pub fn new(password: &str) -> Result<Self, SaslError> {
        Self::with_iterations(password, DEFAULT_ITERATIONS)
    }

    /// Derive credentials with fresh random salts and the given iteration count.
    pub fn with_iterations(password: &str, iterations: u32) -> Result<Self, SaslError> {
        Ok(StoredCredentials {
            sha1: ScramKeys::derive(
                Hash::Sha1,
                password,
                &crypto::random_bytes(SALT_LEN),
                iterations,
            )?,
            sha256: ScramKeys::derive(
                Hash::Sha256,
                password,
                &crypto::random_bytes(SALT_LEN),
                iterations,
            )?,
        })
    }

    /// The keys for `hash`.
    pub fn keys(&self, hash: Hash) -> &ScramKeys {
        match hash {
            Hash::Sha1 => &self.sha1,
            Hash::Sha256 => &self.sha256,
        }
    }

    /// Check a plaintext password against the SHA-256 keys (constant-time
    /// comparison). A password rejected by SASLprep never matches.
    pub fn verify_password(&self, password: &str) -> bool {
        let k = &self.sha256;
        match ScramKeys::derive(Hash::Sha256, password, &k.salt, k.iterations) {
            Ok(derived) => crypto::ct_eq(&derived.stored_key, &k.stored_key),
            Err(_) => false,
        }
    }

    /// Compact serialisation for the store.
    ///
    /// Format version 1: `0x01`, then for SHA-1 and then SHA-256:
    /// iterations (u32 big-endian), salt length (u8), salt, stored key,
    /// server key (keys have the hash's output length).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        for keys in [&self.sha1, &self.sha256] {
            out.extend_from_slice(&keys.iterations.to_be_bytes());
            // Salts longer than 255 bytes cannot be produced by this crate;
            // clamp defensively (from_bytes then rejects the mismatch).
            let salt = &keys.salt[..keys.salt.len().min(usize::from(u8::MAX))];
            out.push(salt.len() as u8);
            out.extend_from_slice(salt);
            out.extend_from_slice(&keys.stored_key);
            out.extend_from_slice(&keys.server_key);
        }
        out
    }

    /// Parse the output of [`StoredCredentials::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Result<Self, SaslError> {
        let mut r = Reader(b);
        match r.take(1)?[0] {
            FORMAT_VERSION => {}
            v => {
                return Err(SaslError::InvalidCredentials(format!(
                    "unknown format version {v}"
                )))
            }
        }
        let sha1 = read_keys(&mut r, Hash::Sha1)?;
        let sha256 = read_keys(&mut r, Hash::Sha256)?;
        if !r.0.is_empty() {
            return Err(SaslError::InvalidCredentials("trailing bytes".into()));
        }
        Ok(StoredCredentials { sha1, sha256 })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SaslError> {
        if self.0.len() < n {
            return Err(SaslError::InvalidCredentials("truncated".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
}

fn read_keys(r: &mut Reader<'_>, hash: Hash) -> Result<ScramKeys, SaslError> {
    let it = r.take(4)?;
    let iterations = u32::from_be_bytes([it[0], it[1], it[2], it[3]]);
    let salt_len = usize::from(r.take(1)?[0]);
    let salt = r.take(salt_len)?.to_vec();
    let stored_key = r.take(hash.output_len())?.to_vec();
    let server_key = r.take(hash.output_len())?.to_vec();
    let keys = ScramKeys {
        iterations,
        salt,
        stored_key,
        server_key,
    };
    keys.validate(hash)?;
    Ok(keys)
}
