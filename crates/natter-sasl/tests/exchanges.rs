//! Client ↔ server exchanges for every mechanism, and the failure cases.

use natter_sasl::*;

const ITER: u32 = 256;

fn creds(password: &str) -> StoredCredentials {
    StoredCredentials::with_iterations(password, ITER).unwrap()
}

fn bindings() -> ChannelBindings {
    ChannelBindings {
        tls_exporter: Some(vec![0xE1; 32]),
        tls_server_end_point: Some(vec![0x5E; 32]),
    }
}

fn challenge(step: Step) -> Vec<u8> {
    match step {
        Step::Challenge(c) => c,
        other => panic!("expected challenge, got {other:?}"),
    }
}

/// Run a full SCRAM exchange; on success the client verifies server-final.
fn scram(
    mut server: ServerExchange,
    mut client: ScramClient,
    account: Option<&StoredCredentials>,
) -> Result<Step, SaslError> {
    let step = server.start(&client.client_first())?;
    assert!(matches!(step, Step::NeedCredentials { .. }), "{step:?}");
    let server_first = challenge(server.credentials(account)?);
    let client_final = client.handle_server_first(&server_first)?;
    let step = server.response(&client_final)?;
    if let Step::Success {
        additional_data: Some(v),
        ..
    } = &step
    {
        client.verify_server_final(v).unwrap();
    } else {
        panic!("SCRAM success without v=: {step:?}");
    }
    Ok(step)
}

fn success(username: &str) -> impl Fn(&Step) -> bool + '_ {
    move |s| matches!(s, Step::Success { username: u, authzid: None, .. } if u == username)
}

#[test]
fn scram_sha1_full_exchange() {
    let server = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default(), false);
    let client = ScramClient::new(Hash::Sha1, "juliet", "r0m30", None);
    let step = scram(server, client, Some(&creds("r0m30"))).unwrap();
    assert!(success("juliet")(&step));
}

#[test]
fn scram_sha256_full_exchange() {
    let server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", None);
    let step = scram(server, client, Some(&creds("r0m30"))).unwrap();
    assert!(success("juliet")(&step));
}

#[test]
fn scram_sha1_plus_tls_exporter_full_exchange() {
    let server = ServerExchange::new(Mechanism::ScramSha1Plus, bindings(), true);
    let client = ScramClient::new(
        Hash::Sha1,
        "juliet",
        "r0m30",
        Some((CB_TLS_EXPORTER, vec![0xE1; 32])),
    );
    let step = scram(server, client, Some(&creds("r0m30"))).unwrap();
    assert!(success("juliet")(&step));
}

#[test]
fn scram_sha256_plus_tls_exporter_full_exchange() {
    let server = ServerExchange::new(Mechanism::ScramSha256Plus, bindings(), true);
    let client = ScramClient::new(
        Hash::Sha256,
        "juliet",
        "r0m30",
        Some((CB_TLS_EXPORTER, vec![0xE1; 32])),
    );
    let step = scram(server, client, Some(&creds("r0m30"))).unwrap();
    assert!(success("juliet")(&step));
}

#[test]
fn scram_sha256_plus_tls_server_end_point_full_exchange() {
    let server = ServerExchange::new(Mechanism::ScramSha256Plus, bindings(), true);
    let client = ScramClient::new(
        Hash::Sha256,
        "juliet",
        "r0m30",
        Some((CB_TLS_SERVER_END_POINT, vec![0x5E; 32])),
    );
    let step = scram(server, client, Some(&creds("r0m30"))).unwrap();
    assert!(success("juliet")(&step));
}

#[test]
fn plain_full_exchange() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    let step = server
        .start(&plain_initial_response(None, "juliet", "r0m30"))
        .unwrap();
    assert_eq!(
        step,
        Step::NeedCredentials {
            username: "juliet".into()
        }
    );
    let step = server.credentials(Some(&creds("r0m30"))).unwrap();
    assert_eq!(
        step,
        Step::Success {
            username: "juliet".into(),
            authzid: None,
            additional_data: None
        }
    );
}

#[test]
fn plain_returns_authzid() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    server
        .start(&plain_initial_response(
            Some("juliet@example.com"),
            "juliet",
            "r0m30",
        ))
        .unwrap();
    let step = server.credentials(Some(&creds("r0m30"))).unwrap();
    assert!(matches!(
        step,
        Step::Success { authzid: Some(a), .. } if a == "juliet@example.com"
    ));
}

#[test]
fn scram_returns_escaped_authzid() {
    let server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let client =
        ScramClient::new(Hash::Sha256, "juliet", "r0m30", None).with_authzid("odd,jid=@example");
    let step = scram(server, client, Some(&creds("r0m30"))).unwrap();
    assert!(matches!(
        step,
        Step::Success { authzid: Some(a), .. } if a == "odd,jid=@example"
    ));
}

#[test]
fn scram_username_escaping() {
    let mut client = ScramClient::new(Hash::Sha256, "a,b=c", "pw", None);
    let first = client.client_first();
    assert!(String::from_utf8(first.clone())
        .unwrap()
        .starts_with("n,,n=a=2Cb=3Dc,r="));
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    assert_eq!(
        server.start(&first).unwrap(),
        Step::NeedCredentials {
            username: "a,b=c".into()
        }
    );
}

#[test]
fn scram_wrong_password() {
    for (mech, hash) in [
        (Mechanism::ScramSha1, Hash::Sha1),
        (Mechanism::ScramSha256, Hash::Sha256),
    ] {
        let server = ServerExchange::new(mech, ChannelBindings::default(), false);
        let client = ScramClient::new(hash, "juliet", "wrong", None);
        assert_eq!(
            scram(server, client, Some(&creds("r0m30"))),
            Err(SaslError::NotAuthorized)
        );
    }
}

#[test]
fn plain_wrong_password() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    server
        .start(&plain_initial_response(None, "juliet", "wrong"))
        .unwrap();
    assert_eq!(
        server.credentials(Some(&creds("r0m30"))),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn plain_unknown_user() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    server
        .start(&plain_initial_response(None, "nobody", "x"))
        .unwrap();
    assert_eq!(server.credentials(None), Err(SaslError::NotAuthorized));
}

#[test]
fn scram_unknown_user_fails_after_full_exchange() {
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let mut client = ScramClient::new(Hash::Sha256, "nobody", "whatever", None);
    server.start(&client.client_first()).unwrap();
    let server_first = challenge(server.credentials(None).unwrap());
    let text = String::from_utf8(server_first.clone()).unwrap();
    assert!(
        text.ends_with(&format!(",i={DEFAULT_ITERATIONS}")),
        "{text}"
    );
    let client_final = client.handle_server_first(&server_first).unwrap();
    assert_eq!(
        server.response(&client_final),
        Err(SaslError::NotAuthorized)
    );
}

fn salt_of(server_first: &[u8]) -> String {
    let text = String::from_utf8(server_first.to_vec()).unwrap();
    text.split(',')
        .find_map(|p| p.strip_prefix("s="))
        .unwrap()
        .to_owned()
}

#[test]
fn scram_unknown_user_fake_salt_is_stable_and_looks_real() {
    let fake_salt = |user: &str| {
        let mut server =
            ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
        let mut client = ScramClient::new(Hash::Sha256, user, "x", None);
        server.start(&client.client_first()).unwrap();
        salt_of(&challenge(server.credentials(None).unwrap()))
    };
    assert_eq!(fake_salt("nobody"), fake_salt("nobody"));
    assert_ne!(fake_salt("nobody"), fake_salt("someone"));
    // Same length as a real salt.
    let real = creds("x");
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let mut client = ScramClient::new(Hash::Sha256, "x", "x", None);
    server.start(&client.client_first()).unwrap();
    let real_salt = salt_of(&challenge(server.credentials(Some(&real)).unwrap()));
    assert_eq!(real_salt.len(), fake_salt("nobody").len());
}

#[test]
fn scram_tampered_nonce() {
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", None);
    server.start(&client.client_first()).unwrap();
    let server_first = challenge(server.credentials(Some(&creds("r0m30"))).unwrap());
    // The attacker rewrites the nonce in server-first as seen by the client.
    let tampered = String::from_utf8(server_first)
        .unwrap()
        .replacen(",s=", "X,s=", 1);
    let client_final = client.handle_server_first(tampered.as_bytes()).unwrap();
    assert_eq!(
        server.response(&client_final),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn scram_client_rejects_server_nonce_not_extending_its_own() {
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", None);
    client.set_test_client_nonce("abc");
    client.client_first();
    assert_eq!(
        client.handle_server_first(b"r=abd123,s=QSXCR+Q6sek8bf92,i=4096"),
        Err(SaslError::NotAuthorized)
    );
    assert_eq!(
        client.handle_server_first(b"r=abc,s=QSXCR+Q6sek8bf92,i=4096"),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn scram_wrong_channel_binding_data() {
    let server = ServerExchange::new(Mechanism::ScramSha256Plus, bindings(), true);
    let client = ScramClient::new(
        Hash::Sha256,
        "juliet",
        "r0m30",
        Some((CB_TLS_EXPORTER, vec![0x00; 32])),
    );
    assert_eq!(
        scram(server, client, Some(&creds("r0m30"))),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn scram_unsupported_channel_binding_type() {
    let only_endpoint = ChannelBindings {
        tls_exporter: None,
        tls_server_end_point: Some(vec![1; 32]),
    };
    let mut server = ServerExchange::new(Mechanism::ScramSha256Plus, only_endpoint, true);
    let mut client = ScramClient::new(
        Hash::Sha256,
        "juliet",
        "r0m30",
        Some((CB_TLS_EXPORTER, vec![1; 32])),
    );
    assert_eq!(
        server.start(&client.client_first()),
        Err(SaslError::UnsupportedChannelBinding("tls-exporter".into()))
    );
    let mut server = ServerExchange::new(Mechanism::ScramSha256Plus, bindings(), true);
    assert_eq!(
        server.start(b"p=tls-unique,,n=juliet,r=abcdef"),
        Err(SaslError::UnsupportedChannelBinding("tls-unique".into()))
    );
}

#[test]
fn plus_mechanism_without_any_binding_is_invalid() {
    let mut server =
        ServerExchange::new(Mechanism::ScramSha1Plus, ChannelBindings::default(), false);
    assert_eq!(
        server.start(b"p=tls-exporter,,n=juliet,r=abcdef"),
        Err(SaslError::InvalidMechanism)
    );
}

#[test]
fn plus_mechanism_with_n_flag_is_malformed() {
    let mut server = ServerExchange::new(Mechanism::ScramSha256Plus, bindings(), true);
    assert!(matches!(
        server.start(b"n,,n=juliet,r=abcdef"),
        Err(SaslError::MalformedRequest(_))
    ));
}

#[test]
fn non_plus_mechanism_with_p_flag_is_malformed() {
    let mut server = ServerExchange::new(Mechanism::ScramSha256, bindings(), true);
    assert!(matches!(
        server.start(b"p=tls-exporter,,n=juliet,r=abcdef"),
        Err(SaslError::MalformedRequest(_))
    ));
}

#[test]
fn gs2_y_downgrade_when_plus_advertised() {
    let server = ServerExchange::new(Mechanism::ScramSha256, bindings(), true);
    let client =
        ScramClient::new(Hash::Sha256, "juliet", "r0m30", None).with_binding_supported_but_unused();
    assert_eq!(
        scram(server, client, Some(&creds("r0m30"))),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn gs2_y_accepted_when_plus_not_advertised() {
    let server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let client =
        ScramClient::new(Hash::Sha256, "juliet", "r0m30", None).with_binding_supported_but_unused();
    let step = scram(server, client, Some(&creds("r0m30"))).unwrap();
    assert!(success("juliet")(&step));
}

#[test]
fn gs2_header_mismatch_between_first_and_final() {
    // Client-first says "y", client-final's c= claims "n": must fail.
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", None);
    let first = String::from_utf8(client.client_first()).unwrap();
    server
        .start(format!("y{}", &first[1..]).as_bytes())
        .unwrap();
    let server_first = challenge(server.credentials(Some(&creds("r0m30"))).unwrap());
    let client_final = client.handle_server_first(&server_first).unwrap();
    assert_eq!(
        server.response(&client_final),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn empty_initial_response_scram() {
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "r0m30", None);
    assert_eq!(server.start(b"").unwrap(), Step::Challenge(Vec::new()));
    assert_eq!(
        server.response(&client.client_first()).unwrap(),
        Step::NeedCredentials {
            username: "juliet".into()
        }
    );
    let server_first = challenge(server.credentials(Some(&creds("r0m30"))).unwrap());
    let client_final = client.handle_server_first(&server_first).unwrap();
    assert!(success("juliet")(&server.response(&client_final).unwrap()));
}

#[test]
fn empty_initial_response_plain() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    assert_eq!(server.start(b"").unwrap(), Step::Challenge(Vec::new()));
    server
        .response(&plain_initial_response(None, "juliet", "r0m30"))
        .unwrap();
    assert!(success("juliet")(
        &server.credentials(Some(&creds("r0m30"))).unwrap()
    ));
}

#[test]
fn empty_response_after_empty_challenge_is_malformed() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    server.start(b"").unwrap();
    assert!(matches!(
        server.response(b""),
        Err(SaslError::MalformedRequest(_))
    ));
}

#[test]
fn exchange_is_dead_after_failure() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    assert!(server.start(b"no-nuls").is_err());
    assert!(server
        .start(&plain_initial_response(None, "juliet", "r0m30"))
        .is_err());
    assert!(server.response(b"x").is_err());
    assert!(server.credentials(None).is_err());
}

#[test]
fn exchange_is_dead_after_success() {
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    server
        .start(&plain_initial_response(None, "juliet", "r0m30"))
        .unwrap();
    server.credentials(Some(&creds("r0m30"))).unwrap();
    assert!(server.response(b"x").is_err());
}

#[test]
fn out_of_order_calls_fail() {
    let mut server = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default(), false);
    assert!(matches!(
        server.credentials(None),
        Err(SaslError::MalformedRequest(_))
    ));
    let mut server = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default(), false);
    assert!(matches!(
        server.response(b"c=biws,r=x,p=AAAA"),
        Err(SaslError::MalformedRequest(_))
    ));
}

// SASLprep equivalence.

#[test]
fn saslprep_password_non_ascii_space() {
    // U+00A0 NO-BREAK SPACE maps to U+0020 SPACE under SASLprep.
    let stored = creds("correct horse");
    let server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    let client = ScramClient::new(Hash::Sha256, "juliet", "correct\u{00A0}horse", None);
    assert!(scram(server, client, Some(&stored)).is_ok());
    assert!(stored.verify_password("correct\u{2003}horse"));

    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    server
        .start(&plain_initial_response(
            None,
            "juliet",
            "correct\u{3000}horse",
        ))
        .unwrap();
    assert!(server.credentials(Some(&stored)).is_ok());
}

#[test]
fn saslprep_soft_hyphen_mapped_to_nothing() {
    // RFC 4013 §3: "I<U+00AD>X" → "IX".
    let stored = creds("IX");
    assert!(stored.verify_password("I\u{00AD}X"));
    let mut server = ServerExchange::new(Mechanism::ScramSha1, ChannelBindings::default(), false);
    let mut client = ScramClient::new(Hash::Sha1, "user", "I\u{00AD}X", None);
    let step = server.start(&client.client_first()).unwrap();
    assert_eq!(
        step,
        Step::NeedCredentials {
            username: "user".into()
        }
    );
    let sf = challenge(server.credentials(Some(&stored)).unwrap());
    let cf = client.handle_server_first(&sf).unwrap();
    assert!(server.response(&cf).is_ok());
}

#[test]
fn saslprep_username_normalised() {
    // Full-width letters NFKC-normalise to ASCII.
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    assert_eq!(
        server
            .start("n,,n=\u{FF4A}uliet,r=abcdef".as_bytes())
            .unwrap(),
        Step::NeedCredentials {
            username: "juliet".into()
        }
    );
    let mut server = ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false);
    assert_eq!(
        server
            .start(&plain_initial_response(None, "jul\u{00AD}iet", "pw"))
            .unwrap(),
        Step::NeedCredentials {
            username: "juliet".into()
        }
    );
}

#[test]
fn saslprep_prohibited_password_never_verifies() {
    let stored = creds("pw");
    assert!(!stored.verify_password("pw\u{0007}"));
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw\u{0007}", None);
    client.set_test_client_nonce("abc");
    client.client_first();
    assert_eq!(
        client.handle_server_first(b"r=abcdef,s=QSXCR+Q6sek8bf92,i=4096"),
        Err(SaslError::InvalidPassword)
    );
}
