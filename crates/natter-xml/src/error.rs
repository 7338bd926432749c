//! The error type and its mapping to RFC 6120 stream error conditions.

/// Why a stream or stanza was rejected.
///
/// Every variant maps to one RFC 6120 §4.9.3 stream error condition via
/// [`XmlError::condition`]; the `&'static str` payload is a short human
/// readable reason (suitable for logs, not for the peer).
#[non_exhaustive]
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum XmlError {
    /// The input is not well-formed XML (or violates Namespaces in XML).
    #[error("not well-formed: {0}")]
    NotWellFormed(&'static str),
    /// The input uses XML features that RFC 6120 §11.1 forbids
    /// (comments, processing instructions, DTDs, non-predefined entities).
    #[error("restricted XML: {0}")]
    RestrictedXml(&'static str),
    /// The stream header is not `stream` in `http://etherx.jabber.org/streams`.
    #[error("invalid namespace: {0}")]
    InvalidNamespace(&'static str),
    /// A configured limit (size, depth, attribute count) was exceeded.
    #[error("policy violation: {0}")]
    PolicyViolation(&'static str),
    /// The input is not UTF-8 (or declares another encoding).
    #[error("unsupported encoding: {0}")]
    UnsupportedEncoding(&'static str),
    /// Well-formed XML that cannot be processed (e.g. an incomplete element
    /// handed to [`crate::Stanza::parse`]).
    #[error("bad format: {0}")]
    BadFormat(&'static str),
}

impl XmlError {
    /// The RFC 6120 §4.9.3 stream error condition element name for this error.
    pub fn condition(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(_) => "not-well-formed",
            XmlError::RestrictedXml(_) => "restricted-xml",
            XmlError::InvalidNamespace(_) => "invalid-namespace",
            XmlError::PolicyViolation(_) => "policy-violation",
            XmlError::UnsupportedEncoding(_) => "unsupported-encoding",
            XmlError::BadFormat(_) => "bad-format",
        }
    }

    /// The human readable reason.
    pub fn reason(&self) -> &'static str {
        match self {
            XmlError::NotWellFormed(r)
            | XmlError::RestrictedXml(r)
            | XmlError::InvalidNamespace(r)
            | XmlError::PolicyViolation(r)
            | XmlError::UnsupportedEncoding(r)
            | XmlError::BadFormat(r) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        assert_eq!(XmlError::NotWellFormed("x").condition(), "not-well-formed");
        assert_eq!(XmlError::RestrictedXml("x").condition(), "restricted-xml");
        assert_eq!(
            XmlError::InvalidNamespace("x").condition(),
            "invalid-namespace"
        );
        assert_eq!(
            XmlError::PolicyViolation("x").condition(),
            "policy-violation"
        );
        assert_eq!(
            XmlError::UnsupportedEncoding("x").condition(),
            "unsupported-encoding"
        );
        assert_eq!(XmlError::BadFormat("x").condition(), "bad-format");
        assert_eq!(XmlError::BadFormat("why").reason(), "why");
    }
}
