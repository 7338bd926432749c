//! Hash primitives (H, HMAC, Hi) over the two SCRAM hash functions.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The hash function underlying a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, core::hash::Hash)]
pub enum Hash {
    /// SHA-1 (SCRAM-SHA-1, RFC 5802).
    Sha1,
    /// SHA-256 (SCRAM-SHA-256, RFC 7677).
    Sha256,
}

impl Hash {
    /// Output length in bytes (20 or 32).
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
        }
    }

    /// The hash name as used in SCRAM mechanism names ("SHA-1", "SHA-256").
    pub fn name(self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha256 => "SHA-256",
        }
    }
}

/// `H(data)`.
pub(crate) fn digest(hash: Hash, data: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha1 => Sha1::digest(data).to_vec(),
        Hash::Sha256 => Sha256::digest(data).to_vec(),
    }
}

/// `HMAC(key, data)`.
pub(crate) fn hmac(hash: Hash, key: &[u8], data: &[u8]) -> Vec<u8> {
    const ANY_KEY: &str = "HMAC accepts keys of any length";
    match hash {
        Hash::Sha1 => {
            let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key).expect(ANY_KEY);
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Hash::Sha256 => {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect(ANY_KEY);
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// `Hi(password, salt, iterations)`, i.e. PBKDF2 with HMAC.
pub(crate) fn hi(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    match hash {
        Hash::Sha1 => crate::pbkdf2_fast::hi_sha1(password, salt, iterations),
        Hash::Sha256 => crate::pbkdf2_fast::hi_sha256(password, salt, iterations),
    }
}

pub(crate) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Constant-time equality (false for different lengths).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub(crate) fn random_bytes(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    OsRng.fill_bytes(&mut out);
    out
}

/// A random secret generated once per process (used for fake salts).
pub(crate) fn process_secret() -> &'static [u8] {
    static SECRET: OnceLock<Vec<u8>> = OnceLock::new();
    SECRET.get_or_init(|| random_bytes(32))
}
