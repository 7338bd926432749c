//! Error type shared by every part of the crate.

/// Why a SASL exchange (or a credential operation) failed.
///
/// [`SaslError::condition`] maps each variant to the RFC 6120 §6.5 failure
/// condition to put inside `<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`.
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SaslError {
    /// Wrong credentials, unknown user, tampered nonce, channel binding
    /// mismatch or downgrade attempt.
    #[error("not authorized")]
    NotAuthorized,
    /// The client's message does not follow the mechanism's syntax.
    #[error("malformed request: {0}")]
    MalformedRequest(String),
    /// The mechanism is unknown or not offered on this stream.
    #[error("invalid mechanism")]
    InvalidMechanism,
    /// The base64 wrapping of an XMPP SASL element is invalid.
    #[error("incorrect base64 encoding")]
    IncorrectEncoding,
    /// The authorization identity is not acceptable.
    #[error("invalid authorization identity")]
    InvalidAuthzid,
    /// The mechanism may only be used over an encrypted stream.
    #[error("encryption required")]
    EncryptionRequired,
    /// The client aborted the exchange.
    #[error("authentication aborted")]
    Aborted,
    /// The account exists but is disabled.
    #[error("account disabled")]
    AccountDisabled,
    /// The account's credentials have expired.
    #[error("credentials expired")]
    CredentialsExpired,
    /// The mechanism is weaker than server policy allows.
    #[error("mechanism too weak")]
    MechanismTooWeak,
    /// A temporary server-side problem.
    #[error("temporary authentication failure")]
    TemporaryAuthFailure,
    /// The client asked for a channel binding type this stream cannot provide.
    #[error("unsupported channel binding type: {0}")]
    UnsupportedChannelBinding(String),
    /// A password was rejected by SASLprep (RFC 4013), e.g. it contains a
    /// prohibited character.
    #[error("password is not valid under SASLprep")]
    InvalidPassword,
    /// Stored credentials could not be parsed or have invalid parameters.
    #[error("invalid stored credentials: {0}")]
    InvalidCredentials(String),
}

impl SaslError {
    /// The RFC 6120 §6.5 defined-condition element name for this error.
    pub fn condition(&self) -> &'static str {
        match self {
            SaslError::NotAuthorized | SaslError::InvalidPassword => "not-authorized",
            SaslError::MalformedRequest(_) | SaslError::UnsupportedChannelBinding(_) => {
                "malformed-request"
            }
            SaslError::InvalidMechanism => "invalid-mechanism",
            SaslError::IncorrectEncoding => "incorrect-encoding",
            SaslError::InvalidAuthzid => "invalid-authzid",
            SaslError::EncryptionRequired => "encryption-required",
            SaslError::Aborted => "aborted",
            SaslError::AccountDisabled => "account-disabled",
            SaslError::CredentialsExpired => "credentials-expired",
            SaslError::MechanismTooWeak => "mechanism-too-weak",
            SaslError::TemporaryAuthFailure | SaslError::InvalidCredentials(_) => {
                "temporary-auth-failure"
            }
        }
    }

    pub(crate) fn malformed(msg: impl Into<String>) -> Self {
        SaslError::MalformedRequest(msg.into())
    }
}
