//! Client side of SCRAM (used by integration tests and benchmark tools).

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::credentials::{salted_password, ScramKeys};
use crate::crypto::{self, Hash};
use crate::scram::{self, escape_saslname};
use crate::SaslError;

/// A SCRAM client exchange: [`client_first`](Self::client_first) →
/// [`handle_server_first`](Self::handle_server_first) →
/// [`verify_server_final`](Self::verify_server_final).
pub struct ScramClient {
    hash: Hash,
    username: String,
    password: String,
    binding: Option<(&'static str, Vec<u8>)>,
    authzid: Option<String>,
    flag_y: bool,
    nonce: String,
    gs2_header: String,
    client_first_bare: Option<String>,
    server_signature: Option<Vec<u8>>,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("username", &self.username)
            .field("binding", &self.binding.as_ref().map(|b| b.0))
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Create a client. `binding` is `(cb-name, cb-data)` for the -PLUS
    /// variants (GS2 flag `p=cb-name`), `None` for plain SCRAM (flag `n`).
    pub fn new(
        hash: Hash,
        username: &str,
        password: &str,
        binding: Option<(&'static str, Vec<u8>)>,
    ) -> Self {
        ScramClient {
            hash,
            username: username.to_owned(),
            password: password.to_owned(),
            binding,
            authzid: None,
            flag_y: false,
            nonce: scram::random_nonce(),
            gs2_header: String::new(),
            client_first_bare: None,
            server_signature: None,
        }
    }

    /// Request authorization as `authzid` (`a=` in the GS2 header).
    pub fn with_authzid(mut self, authzid: &str) -> Self {
        self.authzid = Some(authzid.to_owned());
        self
    }

    /// Without a binding, send GS2 flag `y` ("I support channel binding but
    /// think the server does not") instead of `n`.
    pub fn with_binding_supported_but_unused(mut self) -> Self {
        self.flag_y = true;
        self
    }

    /// Use a fixed client nonce (test vectors only).
    #[doc(hidden)]
    pub fn set_test_client_nonce(&mut self, nonce: &str) {
        self.nonce = nonce.to_owned();
    }

    /// The client-first message.
    pub fn client_first(&mut self) -> Vec<u8> {
        let flag = match &self.binding {
            Some((name, _)) => format!("p={name}"),
            None if self.flag_y => "y".to_owned(),
            None => "n".to_owned(),
        };
        let authzid = self
            .authzid
            .as_deref()
            .map(|a| format!("a={}", escape_saslname(a)))
            .unwrap_or_default();
        self.gs2_header = format!("{flag},{authzid},");
        let username = stringprep::saslprep(&self.username)
            .map(|u| u.into_owned())
            .unwrap_or_else(|_| self.username.clone());
        let bare = format!("n={},r={}", escape_saslname(&username), self.nonce);
        let msg = format!("{}{bare}", self.gs2_header);
        self.client_first_bare = Some(bare);
        msg.into_bytes()
    }

    /// Process server-first and produce client-final.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, SaslError> {
        let bare = self
            .client_first_bare
            .as_deref()
            .ok_or_else(|| SaslError::malformed("client_first was not sent"))?;
        let server_first = scram::utf8(msg)?;
        let parsed = scram::parse_server_first(msg)?;
        if parsed.nonce.len() <= self.nonce.len() || !parsed.nonce.starts_with(&self.nonce) {
            return Err(SaslError::NotAuthorized);
        }
        let salted = salted_password(self.hash, &self.password, &parsed.salt, parsed.iterations)?;
        let keys =
            ScramKeys::from_salted_password(self.hash, &salted, &parsed.salt, parsed.iterations);
        let client_key = crypto::hmac(self.hash, &salted, b"Client Key");

        let mut cb_input = self.gs2_header.as_bytes().to_vec();
        if let Some((_, data)) = &self.binding {
            cb_input.extend_from_slice(data);
        }
        let without_proof = format!("c={},r={}", B64.encode(&cb_input), parsed.nonce);
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let client_signature = crypto::hmac(self.hash, &keys.stored_key, auth_message.as_bytes());
        let proof = crypto::xor(&client_key, &client_signature);
        self.server_signature = Some(crypto::hmac(
            self.hash,
            &keys.server_key,
            auth_message.as_bytes(),
        ));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Check the server-final message (`v=…`); `e=…` or a wrong signature
    /// is [`SaslError::NotAuthorized`].
    pub fn verify_server_final(&self, msg: &[u8]) -> Result<(), SaslError> {
        let expected = self
            .server_signature
            .as_deref()
            .ok_or_else(|| SaslError::malformed("server-first was not handled"))?;
        let msg = scram::utf8(msg)?;
        let mut parts = msg.split(',');
        let first = parts.next().unwrap_or_default();
        if first.starts_with("e=") {
            return Err(SaslError::NotAuthorized);
        }
        let signature = scram::decode_b64(scram::attr_value(first, 'v')?, "verifier")?;
        scram::check_extensions(parts)?;
        if crypto::ct_eq(&signature, expected) {
            Ok(())
        } else {
            Err(SaslError::NotAuthorized)
        }
    }
}
