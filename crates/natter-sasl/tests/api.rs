//! Credentials storage, mechanism names, error conditions, helpers.

use natter_sasl::*;

#[test]
fn stored_credentials_round_trip_and_verify() {
    let creds = StoredCredentials::new("s3cret").unwrap();
    assert_eq!(creds.sha1.iterations, DEFAULT_ITERATIONS);
    assert_eq!(creds.sha256.iterations, DEFAULT_ITERATIONS);
    assert_eq!(creds.sha1.salt.len(), SALT_LEN);
    assert_eq!(creds.sha256.salt.len(), SALT_LEN);
    assert_ne!(creds.sha1.salt, creds.sha256.salt);
    assert!(creds.verify_password("s3cret"));
    assert!(!creds.verify_password("s3cret "));
    assert!(!creds.verify_password(""));

    let bytes = creds.to_bytes();
    assert_eq!(bytes[0], 1);
    let back = StoredCredentials::from_bytes(&bytes).unwrap();
    assert_eq!(back, creds);
    assert!(back.verify_password("s3cret"));
}

#[test]
fn fresh_salt_per_user() {
    let a = StoredCredentials::with_iterations("same", 16).unwrap();
    let b = StoredCredentials::with_iterations("same", 16).unwrap();
    assert_ne!(a.sha256.salt, b.sha256.salt);
    assert_ne!(a.sha256.stored_key, b.sha256.stored_key);
    assert_eq!(a.sha256.iterations, 16);
}

#[test]
fn from_bytes_rejects_garbage() {
    let good = StoredCredentials::with_iterations("pw", 16)
        .unwrap()
        .to_bytes();
    let err = |b: &[u8]| match StoredCredentials::from_bytes(b) {
        Err(e @ SaslError::InvalidCredentials(_)) => e.condition(),
        other => panic!("{other:?}"),
    };
    assert_eq!(err(&[]), "temporary-auth-failure");
    let mut v = good.clone();
    v[0] = 2;
    err(&v);
    err(&good[..good.len() - 1]);
    let mut v = good.clone();
    v.push(0);
    err(&v);
    let mut v = good.clone();
    v[1..5].copy_from_slice(&0u32.to_be_bytes());
    err(&v);
}

#[test]
fn derive_rejects_bad_parameters() {
    assert!(ScramKeys::derive(Hash::Sha256, "pw", b"salt", 0).is_err());
    assert!(ScramKeys::derive(Hash::Sha256, "pw", b"", 1).is_err());
    assert_eq!(
        StoredCredentials::new("bad\u{0000}"),
        Err(SaslError::InvalidPassword)
    );
}

#[test]
fn derive_is_saslprep_equivalent() {
    let a = ScramKeys::derive(Hash::Sha1, "a\u{00A0}b", b"salt", 8).unwrap();
    let b = ScramKeys::derive(Hash::Sha1, "a b", b"salt", 8).unwrap();
    assert_eq!(a, b);
}

#[test]
fn mechanism_names() {
    for m in Mechanism::ALL {
        assert_eq!(Mechanism::from_name(m.name()), Some(m));
        assert_eq!(m.to_string(), m.name());
    }
    assert_eq!(
        Mechanism::from_name("SCRAM-SHA-256-PLUS"),
        Some(Mechanism::ScramSha256Plus)
    );
    assert_eq!(Mechanism::from_name("scram-sha-1"), None);
    assert_eq!(Mechanism::from_name("DIGEST-MD5"), None);
    assert_eq!(Mechanism::ScramSha1Plus.hash(), Some(Hash::Sha1));
    assert_eq!(Mechanism::ScramSha256.hash(), Some(Hash::Sha256));
    assert_eq!(Mechanism::Plain.hash(), None);
    assert!(Mechanism::ScramSha256Plus.is_plus());
    assert!(!Mechanism::ScramSha256.is_plus());
    assert!(!Mechanism::Plain.is_plus());
}

#[test]
fn advertised_mechanisms() {
    let none = ChannelBindings::default();
    assert_eq!(
        Mechanism::advertised(&none, false),
        vec![Mechanism::ScramSha256, Mechanism::ScramSha1]
    );
    let cb = ChannelBindings {
        tls_exporter: Some(vec![1]),
        tls_server_end_point: None,
    };
    assert_eq!(Mechanism::advertised(&cb, true), Mechanism::ALL.to_vec());
}

#[test]
fn channel_binding_names() {
    let mut cb = ChannelBindings::default();
    assert!(!cb.any());
    assert!(cb.names().is_empty());
    cb.tls_server_end_point = Some(vec![1]);
    assert!(cb.any());
    assert_eq!(cb.names(), vec!["tls-server-end-point"]);
    cb.tls_exporter = Some(vec![2]);
    assert_eq!(cb.names(), vec!["tls-exporter", "tls-server-end-point"]);
    assert_eq!(cb.get("tls-exporter"), Some(&[2u8][..]));
    assert_eq!(cb.get("tls-unique"), None);
}

#[test]
fn error_conditions() {
    assert_eq!(SaslError::NotAuthorized.condition(), "not-authorized");
    assert_eq!(
        SaslError::MalformedRequest("x".into()).condition(),
        "malformed-request"
    );
    assert_eq!(SaslError::InvalidMechanism.condition(), "invalid-mechanism");
    assert_eq!(
        SaslError::IncorrectEncoding.condition(),
        "incorrect-encoding"
    );
    assert_eq!(SaslError::InvalidAuthzid.condition(), "invalid-authzid");
    assert_eq!(
        SaslError::EncryptionRequired.condition(),
        "encryption-required"
    );
    assert_eq!(SaslError::Aborted.condition(), "aborted");
    assert_eq!(SaslError::AccountDisabled.condition(), "account-disabled");
    assert_eq!(
        SaslError::CredentialsExpired.condition(),
        "credentials-expired"
    );
    assert_eq!(
        SaslError::MechanismTooWeak.condition(),
        "mechanism-too-weak"
    );
    assert_eq!(
        SaslError::TemporaryAuthFailure.condition(),
        "temporary-auth-failure"
    );
}

#[test]
fn plain_initial_response_format() {
    assert_eq!(
        plain_initial_response(None, "tim", "tanstaaftanstaaf"),
        b"\0tim\0tanstaaftanstaaf"
    );
    assert_eq!(
        plain_initial_response(Some("Ursel"), "Kurt", "xipj3plmq"),
        b"Ursel\0Kurt\0xipj3plmq"
    );
}

#[test]
fn xmpp_base64() {
    assert_eq!(decode_xmpp_base64("").unwrap(), b"");
    assert_eq!(decode_xmpp_base64("=").unwrap(), b"");
    assert_eq!(decode_xmpp_base64("biws").unwrap(), b"n,,");
    assert_eq!(
        decode_xmpp_base64("bi ws"),
        Err(SaslError::IncorrectEncoding)
    );
    assert_eq!(decode_xmpp_base64("b"), Err(SaslError::IncorrectEncoding));
    assert_eq!(encode_xmpp_base64(b""), "=");
    assert_eq!(encode_xmpp_base64(b"n,,"), "biws");
}
