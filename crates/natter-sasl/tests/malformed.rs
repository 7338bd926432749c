//! Malformed client messages, one test each.

use natter_sasl::*;

fn start(msg: &[u8]) -> Result<Step, SaslError> {
    ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false).start(msg)
}

fn start_plain(msg: &[u8]) -> Result<Step, SaslError> {
    ServerExchange::new(Mechanism::Plain, ChannelBindings::default(), false).start(msg)
}

fn is_malformed<T: std::fmt::Debug>(r: Result<T, SaslError>) -> bool {
    match r {
        Err(e @ SaslError::MalformedRequest(_)) => e.condition() == "malformed-request",
        other => panic!("expected malformed-request, got {other:?}"),
    }
}

/// Server after a good client-first and server-first; returns the
/// server and the combined nonce.
fn after_server_first() -> (ServerExchange, String) {
    let mut server = ServerExchange::new(Mechanism::ScramSha256, ChannelBindings::default(), false);
    server.set_test_server_nonce("SERVER");
    server.start(b"n,,n=juliet,r=CLIENT").unwrap();
    let creds = StoredCredentials::with_iterations("pw", 64).unwrap();
    server.credentials(Some(&creds)).unwrap();
    (server, "CLIENTSERVER".to_owned())
}

const PROOF: &str = "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

#[test]
fn client_first_without_gs2_header() {
    assert!(is_malformed(start(b"n=juliet,r=abc")));
}

#[test]
fn client_first_bad_gs2_flag() {
    assert!(is_malformed(start(b"x,,n=juliet,r=abc")));
}

#[test]
fn client_first_bad_cb_name() {
    assert!(is_malformed(
        ServerExchange::new(
            Mechanism::ScramSha256Plus,
            ChannelBindings {
                tls_exporter: Some(vec![1]),
                tls_server_end_point: None
            },
            true
        )
        .start(b"p=tls_exporter!,,n=juliet,r=abc")
    ));
}

#[test]
fn client_first_bad_authzid_attribute() {
    assert!(is_malformed(start(b"n,z=foo,n=juliet,r=abc")));
}

#[test]
fn client_first_empty_authzid() {
    assert!(is_malformed(start(b"n,a=,n=juliet,r=abc")));
}

#[test]
fn client_first_invalid_username_escape() {
    assert!(is_malformed(start(b"n,,n=jul=2Aiet,r=abc")));
}

#[test]
fn client_first_truncated_username_escape() {
    assert!(is_malformed(start(b"n,,n=juliet=2,r=abc")));
}

#[test]
fn client_first_invalid_authzid_escape() {
    assert!(is_malformed(start(b"n,a=x=,n=juliet,r=abc")));
}

#[test]
fn client_first_empty_username() {
    assert!(is_malformed(start(b"n,,n=,r=abc")));
}

#[test]
fn client_first_username_fails_saslprep() {
    assert!(is_malformed(start("n,,n=jul\u{0007}iet,r=abc".as_bytes())));
}

#[test]
fn client_first_mandatory_extension() {
    assert!(is_malformed(start(b"n,,m=ext,n=juliet,r=abc")));
}

#[test]
fn client_first_missing_nonce() {
    assert!(is_malformed(start(b"n,,n=juliet")));
}

#[test]
fn client_first_empty_nonce() {
    assert!(is_malformed(start(b"n,,n=juliet,r=")));
}

#[test]
fn client_first_nonce_with_non_printable() {
    assert!(is_malformed(start("n,,n=juliet,r=ab c".as_bytes())));
    assert!(is_malformed(start("n,,n=juliet,r=ab\u{e9}".as_bytes())));
}

#[test]
fn client_first_attributes_out_of_order() {
    assert!(is_malformed(start(b"n,,r=abc,n=juliet")));
}

#[test]
fn client_first_bad_extension() {
    assert!(is_malformed(start(b"n,,n=juliet,r=abc,garbage")));
}

#[test]
fn client_first_not_utf8() {
    assert!(is_malformed(start(b"n,,n=jul\xffiet,r=abc")));
}

#[test]
fn client_first_too_long() {
    let mut msg = b"n,,n=juliet,r=".to_vec();
    msg.extend(std::iter::repeat_n(b'a', 10_000));
    assert!(is_malformed(start(&msg)));
}

#[test]
fn client_final_missing_proof() {
    let (mut server, nonce) = after_server_first();
    assert!(is_malformed(
        server.response(format!("c=biws,r={nonce}").as_bytes())
    ));
}

#[test]
fn client_final_missing_channel_binding() {
    let (mut server, nonce) = after_server_first();
    assert!(is_malformed(
        server.response(format!("r={nonce},{PROOF}").as_bytes())
    ));
}

#[test]
fn client_final_bad_proof_base64() {
    let (mut server, nonce) = after_server_first();
    assert!(is_malformed(
        server.response(format!("c=biws,r={nonce},p=!!!!").as_bytes())
    ));
}

#[test]
fn client_final_proof_wrong_length() {
    let (mut server, nonce) = after_server_first();
    assert!(is_malformed(
        server.response(format!("c=biws,r={nonce},p=AAAA").as_bytes())
    ));
}

#[test]
fn client_final_bad_channel_binding_base64() {
    let (mut server, nonce) = after_server_first();
    assert!(is_malformed(
        server.response(format!("c=b!ws,r={nonce},{PROOF}").as_bytes())
    ));
}

#[test]
fn client_final_mandatory_extension() {
    let (mut server, nonce) = after_server_first();
    assert!(is_malformed(
        server.response(format!("c=biws,r={nonce},m=x,{PROOF}").as_bytes())
    ));
}

#[test]
fn client_final_proof_not_last() {
    let (mut server, nonce) = after_server_first();
    assert!(is_malformed(
        server.response(format!("c=biws,{PROOF},r={nonce}").as_bytes())
    ));
}

#[test]
fn client_final_wrong_nonce_is_not_authorized() {
    let (mut server, _) = after_server_first();
    assert_eq!(
        server.response(format!("c=biws,r=CLIENTOTHER,{PROOF}").as_bytes()),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn client_final_bad_proof_is_not_authorized() {
    let (mut server, nonce) = after_server_first();
    assert_eq!(
        server.response(format!("c=biws,r={nonce},{PROOF}").as_bytes()),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn plain_missing_separators() {
    assert!(is_malformed(start_plain(b"julietpassword")));
    assert!(is_malformed(start_plain(b"juliet\0password")));
}

#[test]
fn plain_too_many_fields() {
    assert!(is_malformed(start_plain(b"\0juliet\0pass\0word")));
}

#[test]
fn plain_empty_authcid() {
    assert!(is_malformed(start_plain(b"authz\0\0password")));
}

#[test]
fn plain_authcid_mapped_to_nothing() {
    assert!(is_malformed(start_plain("\0\u{00AD}\0password".as_bytes())));
}

#[test]
fn plain_empty_password() {
    assert!(is_malformed(start_plain(b"\0juliet\0")));
}

#[test]
fn plain_not_utf8() {
    assert!(is_malformed(start_plain(b"\0jul\xffiet\0password")));
}

#[test]
fn plain_authcid_fails_saslprep() {
    assert!(is_malformed(start_plain("\0jul\u{0007}iet\0pw".as_bytes())));
}

#[test]
fn client_rejects_malformed_server_first() {
    let mut client = ScramClient::new(Hash::Sha256, "juliet", "pw", None);
    client.set_test_client_nonce("abc");
    client.client_first();
    for bad in [
        &b"s=QSXCR+Q6sek8bf92,r=abcdef,i=4096"[..],
        b"m=x,r=abcdef,s=QSXCR+Q6sek8bf92,i=4096",
        b"r=abcdef,s=QSXCR+Q6sek8bf92,i=0",
        b"r=abcdef,s=QSXCR+Q6sek8bf92,i=+5",
        b"r=abcdef,s=QSXCR+Q6sek8bf92,i=x",
        b"r=abcdef,s=!!,i=4096",
        b"r=abcdef,s=,i=4096",
        b"r=abcdef,s=QSXCR+Q6sek8bf92",
    ] {
        assert!(is_malformed(client.handle_server_first(bad)));
    }
    assert_eq!(
        client.handle_server_first(b"e=unknown-user"),
        Err(SaslError::NotAuthorized)
    );
}
