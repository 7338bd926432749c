//! The worked examples of RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3
//! (SCRAM-SHA-256), reproduced byte for byte on both sides.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use natter_sasl::*;

struct Vector {
    mechanism: Mechanism,
    hash: Hash,
    client_nonce: &'static str,
    server_nonce: &'static str,
    salt_b64: &'static str,
    client_first: &'static str,
    server_first: &'static str,
    client_final: &'static str,
    server_final: &'static str,
}

const RFC5802: Vector = Vector {
    mechanism: Mechanism::ScramSha1,
    hash: Hash::Sha1,
    client_nonce: "fyko+d2lbbFgONRv9qkxdawL",
    server_nonce: "3rfcNHYJY1ZVvWVs7j",
    salt_b64: "QSXCR+Q6sek8bf92",
    client_first: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    server_first: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    client_final:
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    server_final: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

const RFC7677: Vector = Vector {
    mechanism: Mechanism::ScramSha256,
    hash: Hash::Sha256,
    client_nonce: "rOprNGfwEbeRWgbNEkqO",
    server_nonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    salt_b64: "W22ZaJ0SNY7soEsUEjb6gQ==",
    client_first: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    client_final: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    server_final: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

fn credentials(v: &Vector) -> StoredCredentials {
    let salt = B64.decode(v.salt_b64).unwrap();
    let keys = ScramKeys::derive(v.hash, "pencil", &salt, 4096).unwrap();
    // The other hash's keys are irrelevant here; reuse a derivation.
    let other = match v.hash {
        Hash::Sha1 => ScramKeys::derive(Hash::Sha256, "pencil", &salt, 4096).unwrap(),
        Hash::Sha256 => ScramKeys::derive(Hash::Sha1, "pencil", &salt, 4096).unwrap(),
    };
    match v.hash {
        Hash::Sha1 => StoredCredentials {
            sha1: keys,
            sha256: other,
        },
        Hash::Sha256 => StoredCredentials {
            sha1: other,
            sha256: keys,
        },
    }
}

fn check_server(v: &Vector) {
    let creds = credentials(v);
    let mut server = ServerExchange::new(v.mechanism, ChannelBindings::default(), false);
    server.set_test_server_nonce(v.server_nonce);
    assert_eq!(
        server.start(v.client_first.as_bytes()).unwrap(),
        Step::NeedCredentials {
            username: "user".into()
        }
    );
    assert_eq!(
        server.credentials(Some(&creds)).unwrap(),
        Step::Challenge(v.server_first.as_bytes().to_vec())
    );
    assert_eq!(
        server.response(v.client_final.as_bytes()).unwrap(),
        Step::Success {
            username: "user".into(),
            authzid: None,
            additional_data: Some(v.server_final.as_bytes().to_vec()),
        }
    );
}

fn check_client(v: &Vector) {
    let mut client = ScramClient::new(v.hash, "user", "pencil", None);
    client.set_test_client_nonce(v.client_nonce);
    assert_eq!(client.client_first(), v.client_first.as_bytes());
    assert_eq!(
        client
            .handle_server_first(v.server_first.as_bytes())
            .unwrap(),
        v.client_final.as_bytes()
    );
    client
        .verify_server_final(v.server_final.as_bytes())
        .unwrap();
    assert_eq!(
        client.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err(SaslError::NotAuthorized)
    );
}

#[test]
fn rfc5802_scram_sha1_server() {
    check_server(&RFC5802);
}

#[test]
fn rfc5802_scram_sha1_client() {
    check_client(&RFC5802);
}

#[test]
fn rfc7677_scram_sha256_server() {
    check_server(&RFC7677);
}

#[test]
fn rfc7677_scram_sha256_client() {
    check_client(&RFC7677);
}

#[test]
fn rfc5802_salt_is_used_by_derive() {
    let creds = credentials(&RFC5802);
    assert_eq!(B64.encode(&creds.sha1.salt), RFC5802.salt_b64);
    assert_eq!(creds.sha1.iterations, 4096);
    assert_eq!(creds.sha1.stored_key.len(), 20);
    assert_eq!(creds.sha256.stored_key.len(), 32);
}
