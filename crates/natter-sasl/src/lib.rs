//! SASL for XMPP (RFC 6120 §6), free of I/O.
//!
//! * [`ServerExchange`] is a server-side state machine for SCRAM-SHA-1,
//!   SCRAM-SHA-256 (RFC 5802, RFC 7677), their `-PLUS` channel-binding
//!   variants (`tls-exporter`, RFC 9266; `tls-server-end-point`, RFC 5929)
//!   and PLAIN (RFC 4616). The caller moves bytes to and from the stream
//!   (base64 included) and looks up accounts when asked
//!   ([`Step::NeedCredentials`]).
//! * [`StoredCredentials`] is what the account store keeps: only SCRAM
//!   salted keys, with a random salt per user and hash, never the password.
//! * [`ScramClient`] and [`plain_initial_response`] are the client side,
//!   for tests and benchmark tools.
//!
//! ```
//! use natter_sasl::*;
//!
//! let creds = StoredCredentials::with_iterations("pencil", 4096).unwrap();
//! let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
//! let mut client = ScramClient::new(Hash::Sha256, "user", "pencil", None);
//!
//! let Step::NeedCredentials { username } = server.start(&client.client_first()).unwrap() else { panic!() };
//! assert_eq!(username, "user");
//! let Step::Challenge(server_first) = server.credentials(Some(&creds)).unwrap() else { panic!() };
//! let client_final = client.handle_server_first(&server_first).unwrap();
//! let Step::Success { additional_data: Some(v), .. } = server.response(&client_final).unwrap() else { panic!() };
//! client.verify_server_final(&v).unwrap();
//! ```

mod client;
mod credentials;
mod crypto;
mod error;
mod mechanism;
mod pbkdf2_fast;
mod plain;
mod scram;
mod server;

pub use client::ScramClient;
pub use credentials::{ScramKeys, StoredCredentials, DEFAULT_ITERATIONS, SALT_LEN};
pub use crypto::Hash;
pub use error::SaslError;
pub use mechanism::{ChannelBindings, Mechanism, CB_TLS_EXPORTER, CB_TLS_SERVER_END_POINT};
pub use plain::plain_initial_response;
pub use server::{ServerExchange, Step};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Decode the base64 text of an XMPP SASL element (`<auth>`, `<response>`,
/// …). Empty text and a lone `=` (RFC 6120 §6.4.2) both mean "empty".
/// Invalid base64 (including whitespace) is [`SaslError::IncorrectEncoding`].
pub fn decode_xmpp_base64(text: &str) -> Result<Vec<u8>, SaslError> {
    if text.is_empty() || text == "=" {
        return Ok(Vec::new());
    }
    B64.decode(text).map_err(|_| SaslError::IncorrectEncoding)
}

/// Encode data for an XMPP SASL element (`<challenge>`, `<success>`).
/// Empty data gives `"="`, the RFC 6120 §6.3.10 form for zero-length data.
/// (When there is no data at all, e.g. `additional_data: None`, send an
/// empty element instead of calling this.)
pub fn encode_xmpp_base64(data: &[u8]) -> String {
    if data.is_empty() {
        "=".to_owned()
    } else {
        B64.encode(data)
    }
}
