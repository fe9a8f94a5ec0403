//! The "Tokens and keys" table: every forged or wrong token is refused with its own reason.

use std::net::TcpListener;

use josekit::jws::JwsSigner as _;
use oidc_core::claims::Audience;
use oidc_core::jose::{
    Algorithm, IdTokenVerifier, MAX_TOKEN_LEN, SigningKey, VerifyError, at_hash,
};
use oidc_core::types::{AccessToken, ClientId, IssuerUrl, Nonce};
use serde_json::json;

use crate::common::*;

fn verify(key: &SigningKey, claims: &oidc_core::claims::IdTokenClaims) -> Result<(), VerifyError> {
    let token = key.sign_id_token(claims).unwrap();
    verifier(&[key])
        .verify(&token, Some(&nonce()), None)
        .map(|_| ())
}

#[test]
fn valid_tokens_of_both_algorithms_verify() {
    for key in [rsa_key(), ec_key()] {
        let access_token = AccessToken::generate();
        let mut c = claims();
        c.at_hash = Some(at_hash(&access_token, key.algorithm()));
        let token = key.sign_id_token(&c).unwrap();
        let verified = verifier(&[rsa_key(), ec_key()])
            .verify(&token, Some(&nonce()), Some(&access_token))
            .unwrap();
        assert_eq!(verified, c);
    }
}

#[test]
fn alg_none_is_rejected() {
    for alg in ["none", "None", "NONE", "nOnE"] {
        let token = forge(&json!({"alg": alg, "typ": "JWT"}), &claims(), |_| {
            Vec::new()
        });
        // Also the variant with a trailing dot and no signature at all.
        let err = verifier(&[rsa_key()])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err();
        assert_eq!(err, VerifyError::UnsupportedAlgorithm(alg.into()));
    }
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    // The classic key-confusion attack: the public key used as an HMAC secret, in both the
    // forms an attacker would try (PEM text and the JWK's modulus).
    let key = rsa_key();
    let public_pem = josekit::jwk::alg::rsa::RsaKeyPair::from_pem(key.to_pem())
        .unwrap()
        .to_pem_public_key_for_test();
    let secrets: Vec<Vec<u8>> = vec![public_pem, serde_json::to_vec(&key.public_jwk()).unwrap()];
    for secret in secrets {
        let signer = josekit::jws::HS256.signer_from_bytes(&secret).unwrap();
        let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.kid()});
        let token = forge(&header, &claims(), |m| signer.sign(m).unwrap());
        let err = verifier(&[key])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err();
        assert_eq!(err, VerifyError::UnsupportedAlgorithm("HS256".into()));
    }
}

/// Exposes the public PEM of a josekit key pair (the trait method, named for readability).
trait PublicPem {
    fn to_pem_public_key_for_test(&self) -> Vec<u8>;
}

impl PublicPem for josekit::jwk::alg::rsa::RsaKeyPair {
    fn to_pem_public_key_for_test(&self) -> Vec<u8> {
        use josekit::jwk::KeyPair as _;
        self.to_pem_public_key()
    }
}

#[test]
fn unknown_or_unlisted_alg_is_rejected() {
    let key = rsa_key();
    for alg in [
        "RS512", "PS256", "ES384", "EdDSA", "HS512", "rs256", "", "RSA-OAEP",
    ] {
        let header = json!({"alg": alg, "kid": key.kid()});
        let token = forge_with_key(key, &header, &claims());
        let err = verifier(&[key])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err();
        assert_eq!(err, VerifyError::UnsupportedAlgorithm(alg.into()), "{alg}");
    }
    // A header without alg is malformed.
    let token = forge_with_key(key, &json!({"kid": key.kid()}), &claims());
    assert!(matches!(
        verifier(&[key]).verify(&token, None, None),
        Err(VerifyError::Malformed(_))
    ));
}

#[test]
fn algorithm_outside_the_configured_list_is_rejected() {
    let token = ec_key().sign_id_token(&claims()).unwrap();
    let only_rs256 = verifier(&[rsa_key(), ec_key()]).allowed_algorithms(&[Algorithm::RS256]);
    assert_eq!(
        only_rs256.verify(&token, Some(&nonce()), None).unwrap_err(),
        VerifyError::UnsupportedAlgorithm("ES256".into())
    );
}

#[test]
fn key_whose_type_does_not_match_alg_is_refused() {
    // Header says ES256 but names the RSA key: never try an RSA key for ES256.
    let header = json!({"alg": "ES256", "kid": rsa_key().kid()});
    let token = forge_with_key(ec_key(), &header, &claims());
    let err = verifier(&[rsa_key(), ec_key()])
        .verify(&token, None, None)
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::KeyAlgorithmMismatch {
            kid: rsa_key().kid().into(),
            alg: Algorithm::ES256
        }
    );
}

#[test]
fn signature_by_another_key_is_rejected() {
    // Signed by the EC key but claiming the kid of another EC key in the set.
    let other = SigningKey::generate(Algorithm::ES256).unwrap();
    let header = json!({"alg": "ES256", "kid": other.kid()});
    let token = forge_with_key(ec_key(), &header, &claims());
    let err = verifier(&[&other]).verify(&token, None, None).unwrap_err();
    assert_eq!(err, VerifyError::BadSignature);
}

#[test]
fn tampered_payload_is_rejected() {
    let token = rsa_key().sign_id_token(&claims()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = claims();
    evil.sub = oidc_core::types::Subject::new("admin");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(serde_json::to_vec(&evil).unwrap()),
        parts[2]
    );
    let err = verifier(&[rsa_key()])
        .verify(&forged, Some(&nonce()), None)
        .unwrap_err();
    assert_eq!(err, VerifyError::BadSignature);
}

#[test]
fn wrong_issuer_is_rejected() {
    for iss in [
        "https://evil.example.com",
        "https://id.example.com/",
        "http://id.example.com",
    ] {
        let mut c = claims();
        c.iss = IssuerUrl::parse(iss).unwrap();
        assert_eq!(
            verify(rsa_key(), &c).unwrap_err(),
            VerifyError::WrongIssuer { found: iss.into() }
        );
    }
}

#[test]
fn audience_without_our_client_is_rejected() {
    let mut c = claims();
    c.aud = Audience::Single(ClientId::new("other-app"));
    assert_eq!(
        verify(rsa_key(), &c).unwrap_err(),
        VerifyError::WrongAudience
    );
    c.aud = Audience::Multiple(vec![ClientId::new("a"), ClientId::new("b")]);
    assert_eq!(
        verify(rsa_key(), &c).unwrap_err(),
        VerifyError::WrongAudience
    );
    c.aud = Audience::Multiple(vec![]);
    assert_eq!(
        verify(rsa_key(), &c).unwrap_err(),
        VerifyError::WrongAudience
    );
}

#[test]
fn audience_array_and_azp_rules() {
    let mut c = claims();
    // Array with only us: fine.
    c.aud = Audience::Multiple(vec![client()]);
    verify(rsa_key(), &c).unwrap();
    // Several audiences need azp.
    c.aud = Audience::Multiple(vec![client(), ClientId::new("api")]);
    assert_eq!(
        verify(rsa_key(), &c).unwrap_err(),
        VerifyError::MissingAuthorizedParty
    );
    c.azp = Some(client());
    verify(rsa_key(), &c).unwrap();
    // azp naming another client is refused, even with one audience.
    c.azp = Some(ClientId::new("api"));
    assert_eq!(
        verify(rsa_key(), &c).unwrap_err(),
        VerifyError::WrongAuthorizedParty {
            found: "api".into()
        }
    );
    c.aud = Audience::Single(client());
    assert!(matches!(
        verify(rsa_key(), &c),
        Err(VerifyError::WrongAuthorizedParty { .. })
    ));
}

#[test]
fn expired_token_is_rejected_after_the_leeway() {
    let now = now();
    let mut c = claims();
    c.iat = now - 7200;
    c.exp = now - 61;
    assert!(matches!(
        verify(rsa_key(), &c),
        Err(VerifyError::Expired { .. })
    ));
    // Within the default 60 s leeway it still passes...
    c.exp = now - 30;
    verify(rsa_key(), &c).unwrap();
    // ...but not with no leeway.
    let token = rsa_key().sign_id_token(&c).unwrap();
    let strict = verifier(&[rsa_key()]).leeway(0);
    assert!(matches!(
        strict.verify(&token, Some(&nonce()), None),
        Err(VerifyError::Expired { .. })
    ));
    // exp is exclusive: a token is expired at exp itself (RFC 7519 §4.1.4).
    let at_exp = strict.verify_at(&token, Some(&nonce()), None, c.exp);
    assert!(matches!(at_exp, Err(VerifyError::Expired { .. })));
    strict
        .verify_at(&token, Some(&nonce()), None, c.exp - 1)
        .unwrap();
    // Hints may be old: accept_expired lifts only the expiry check.
    let hints = verifier(&[rsa_key()]).accept_expired(true);
    hints
        .verify_at(&token, Some(&nonce()), None, c.exp + 86_400)
        .unwrap();
    assert_eq!(
        hints
            .verify_at(&token, Some(&Nonce::new("x")), None, c.exp + 86_400)
            .unwrap_err(),
        VerifyError::NonceMismatch
    );
}

#[test]
fn token_issued_in_the_future_is_rejected() {
    let now = now();
    let mut c = claims();
    c.iat = now + 120;
    c.exp = now + 3600;
    assert!(matches!(
        verify(rsa_key(), &c),
        Err(VerifyError::IssuedInFuture { iat, .. }) if iat == now + 120
    ));
    c.iat = now + 30;
    verify(rsa_key(), &c).unwrap();
}

#[test]
fn wrong_or_missing_nonce_is_rejected() {
    let token = rsa_key().sign_id_token(&claims()).unwrap();
    let v = verifier(&[rsa_key()]);
    assert_eq!(
        v.verify(&token, Some(&Nonce::new("other")), None)
            .unwrap_err(),
        VerifyError::NonceMismatch
    );
    let mut c = claims();
    c.nonce = None;
    let token = rsa_key().sign_id_token(&c).unwrap();
    assert_eq!(
        v.verify(&token, Some(&nonce()), None).unwrap_err(),
        VerifyError::NonceMismatch
    );
    // No nonce sent, none expected: fine (code flow without nonce).
    v.verify(&token, None, None).unwrap();
}

#[test]
fn bad_at_hash_is_rejected() {
    let access_token = AccessToken::generate();
    let mut c = claims();
    c.at_hash = Some(at_hash(&AccessToken::generate(), Algorithm::RS256));
    let token = rsa_key().sign_id_token(&c).unwrap();
    let v = verifier(&[rsa_key()]);
    assert_eq!(
        v.verify(&token, Some(&nonce()), Some(&access_token))
            .unwrap_err(),
        VerifyError::AtHashMismatch
    );
    c.at_hash = Some(at_hash(&access_token, Algorithm::RS256));
    let token = rsa_key().sign_id_token(&c).unwrap();
    v.verify(&token, Some(&nonce()), Some(&access_token))
        .unwrap();
}

#[test]
fn unknown_kid_is_a_distinct_error_and_a_refetched_set_resolves_it() {
    // The relying party knows only the old key; the provider signs with a new one.
    let mut v = verifier(&[rsa_key()]);
    let token = rsa_key2().sign_id_token(&claims()).unwrap();
    let err = v.verify(&token, Some(&nonce()), None).unwrap_err();
    assert_eq!(err, VerifyError::UnknownKid(Some(rsa_key2().kid().into())));
    assert!(err.is_unknown_key());
    // The caller fetches the JWK Set once more and retries.
    v.set_jwks(&jwks(&[rsa_key(), rsa_key2()]));
    v.verify(&token, Some(&nonce()), None).unwrap();
    // A kid that is still unknown after the refetch stays an error.
    let header = json!({"alg": "RS256", "kid": "no-such-key"});
    let token = forge_with_key(rsa_key(), &header, &claims());
    assert_eq!(
        v.verify(&token, Some(&nonce()), None).unwrap_err(),
        VerifyError::UnknownKid(Some("no-such-key".into()))
    );
    // Other errors do not ask for a refetch.
    assert!(!VerifyError::BadSignature.is_unknown_key());
}

#[test]
fn token_without_kid_is_checked_against_keys_of_its_algorithm() {
    let header = json!({"alg": "RS256"});
    let token = forge_with_key(rsa_key2(), &header, &claims());
    verifier(&[rsa_key(), rsa_key2(), ec_key()])
        .verify(&token, Some(&nonce()), None)
        .unwrap();
    assert_eq!(
        verifier(&[ec_key()])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err(),
        VerifyError::UnknownKid(None)
    );
    assert_eq!(
        verifier(&[rsa_key()])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err(),
        VerifyError::BadSignature
    );
}

#[test]
fn jku_x5u_and_jwk_headers_are_ignored_and_never_fetched() {
    // A listener the headers point at: if anything tried to fetch a key, it would connect here.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!(
        "http://127.0.0.1:{}/jwks.json",
        listener.local_addr().unwrap().port()
    );

    // An attacker's key embedded in the header and offered by URL: refused, the kid is unknown.
    let attacker = SigningKey::generate(Algorithm::ES256).unwrap();
    let header = json!({
        "alg": "ES256", "kid": attacker.kid(),
        "jwk": attacker.public_jwk(), "jku": url, "x5u": url,
    });
    let token = forge_with_key(&attacker, &header, &claims());
    assert_eq!(
        verifier(&[rsa_key(), ec_key()])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err(),
        VerifyError::UnknownKid(Some(attacker.kid().into()))
    );
    // Without kid, the embedded key is not used either: only the configured keys are tried.
    let header = json!({"alg": "ES256", "jwk": attacker.public_jwk(), "jku": url});
    let token = forge_with_key(&attacker, &header, &claims());
    assert_eq!(
        verifier(&[ec_key()])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err(),
        VerifyError::BadSignature
    );
    // A genuine token carrying those headers verifies with the configured key, unaffected.
    let header = json!({"alg": "RS256", "kid": rsa_key().kid(), "jku": url, "x5u": url,
                        "jwk": attacker.public_jwk()});
    let token = forge_with_key(rsa_key(), &header, &claims());
    verifier(&[rsa_key()])
        .verify(&token, Some(&nonce()), None)
        .unwrap();

    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("something connected to the jku/x5u URL: {other:?}"),
    }
}

#[test]
fn critical_header_extensions_are_refused() {
    let header = json!({"alg": "RS256", "kid": rsa_key().kid(), "crit": ["exp"], "exp": 1});
    let token = forge_with_key(rsa_key(), &header, &claims());
    assert_eq!(
        verifier(&[rsa_key()])
            .verify(&token, Some(&nonce()), None)
            .unwrap_err(),
        VerifyError::UnsupportedCriticalHeader
    );
}

#[test]
fn key_rotation_old_key_verifies_while_published() {
    // Old key signed yesterday's tokens; the new key signs from now on; both are published.
    let old_token = rsa_key().sign_id_token(&claims()).unwrap();
    let new_token = rsa_key2().sign_id_token(&claims()).unwrap();
    assert_ne!(rsa_key().kid(), rsa_key2().kid());
    let both = verifier(&[rsa_key2(), rsa_key()]);
    both.verify(&old_token, Some(&nonce()), None).unwrap();
    both.verify(&new_token, Some(&nonce()), None).unwrap();
    // Once the old key is retired (no longer published) its tokens are refused.
    let new_only = verifier(&[rsa_key2()]);
    new_only.verify(&new_token, Some(&nonce()), None).unwrap();
    assert!(
        new_only
            .verify(&old_token, Some(&nonce()), None)
            .unwrap_err()
            .is_unknown_key()
    );
    // A key read back from its PEM is the same key (same kid, its old tokens verify).
    let reloaded = SigningKey::from_pem(Algorithm::RS256, &rsa_key().to_pem()).unwrap();
    assert_eq!(reloaded.kid(), rsa_key().kid());
    verifier(&[&reloaded])
        .verify(&old_token, Some(&nonce()), None)
        .unwrap();
}

#[test]
fn truncated_non_base64_huge_and_nested_tokens_are_errors() {
    let v = verifier(&[rsa_key()]);
    let token = rsa_key().sign_id_token(&claims()).unwrap();
    // Every truncation.
    for end in 0..token.len() {
        assert!(
            v.verify(&token[..end], Some(&nonce()), None).is_err(),
            "prefix {end}"
        );
    }
    // Non-base64 characters, padding, extra parts.
    for bad in [
        token.replacen('.', ".!", 1),
        format!("{token}="),
        format!("{token}.extra"),
        token.replace('.', ".."),
        "a.b.c".into(),
        "...".into(),
        "".into(),
        "\u{1F600}.\u{1F600}.\u{1F600}".into(),
    ] {
        assert!(
            matches!(v.verify(&bad, None, None), Err(VerifyError::Malformed(_))),
            "{bad:?}"
        );
    }
    // Too long: refused before decoding.
    let huge = format!("{}.{}.{}", "a".repeat(MAX_TOKEN_LEN), "b", "c");
    assert!(matches!(
        v.verify(&huge, None, None),
        Err(VerifyError::Malformed(_))
    ));
    // Deeply nested header JSON: a parse error, not a stack overflow.
    let nested_header = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let token = format!("{}.e30.AA", b64(&nested_header));
    assert!(token.len() < MAX_TOKEN_LEN);
    assert!(matches!(
        v.verify(&token, None, None),
        Err(VerifyError::Malformed(_))
    ));
    let nested_header = format!("{{\"alg\":{}1{}}}", "[".repeat(3000), "]".repeat(3000));
    let token = format!("{}.e30.AA", b64(&nested_header));
    assert!(matches!(
        v.verify(&token, None, None),
        Err(VerifyError::Malformed(_))
    ));
    // Deeply nested claims, correctly signed: an invalid-claims error.
    let mut deep = json!(1);
    for _ in 0..1000 {
        deep = json!([deep]);
    }
    let mut payload = serde_json::to_value(claims()).unwrap();
    payload["deep"] = deep;
    let token = forge_with_key(
        rsa_key(),
        &json!({"alg": "RS256", "kid": rsa_key().kid()}),
        &payload,
    );
    assert!(matches!(
        v.verify(&token, Some(&nonce()), None),
        Err(VerifyError::InvalidClaims(_))
    ));
    // Signed payloads that are not ID-token claims.
    for payload in [
        json!(null),
        json!([]),
        json!("x"),
        json!({}),
        json!({"iss": ISSUER}),
    ] {
        let token = forge_with_key(rsa_key(), &json!({"alg": "RS256"}), &payload);
        assert!(matches!(
            v.verify(&token, None, None),
            Err(VerifyError::InvalidClaims(_))
        ));
    }
    // Header that is JSON but not an object, or has alg of the wrong type.
    for header in [
        json!([]),
        json!("RS256"),
        json!({"alg": 256}),
        json!({"alg": "RS256", "kid": 7}),
    ] {
        let token = forge_with_key(rsa_key(), &header, &claims());
        assert!(
            matches!(v.verify(&token, None, None), Err(VerifyError::Malformed(_))),
            "{header}"
        );
    }
}

#[test]
fn verifier_skips_keys_it_cannot_use() {
    // An HMAC key, an encryption key, a P-384 key and an RS512-only key give no verifier.
    let json = r#"{"keys":[
        {"kty":"oct","k":"c2VjcmV0","kid":"h"},
        {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty":"EC","crv":"P-384","x":"AA","y":"AA","kid":"p384"},
        {"kty":"RSA","n":"AQAB","e":"AQAB","kid":"tiny"}
    ]}"#;
    let set = serde_json::from_str(json).unwrap();
    let mut v = IdTokenVerifier::new(issuer(), client(), set);
    assert_eq!(v.key_count(), 0);
    let mut enc = rsa_key().public_jwk();
    enc.key_use = Some("enc".into());
    let mut other_alg = ec_key().public_jwk();
    other_alg.alg = Some("ES384".into());
    v.set_jwks(&oidc_core::jwk::JwkSet::new(vec![
        enc,
        other_alg,
        rsa_key2().public_jwk(),
    ]));
    assert_eq!(v.key_count(), 1);
}

#[test]
fn signing_key_rejects_bad_pem_and_wrong_algorithm() {
    assert!(SigningKey::from_pem(Algorithm::RS256, "not a key").is_err());
    assert!(SigningKey::from_pem(Algorithm::RS256, &ec_key().to_pem()).is_err());
    assert!(SigningKey::from_pem(Algorithm::ES256, &rsa_key().to_pem()).is_err());
    // RSA keys under 2048 bits are refused (RFC 7518 §3.3).
    let small = josekit::jwk::alg::rsa::RsaKeyPair::generate(1024).unwrap();
    let pem = String::from_utf8({
        use josekit::jwk::KeyPair as _;
        small.to_pem_private_key()
    })
    .unwrap();
    assert!(SigningKey::from_pem(Algorithm::RS256, &pem).is_err());
    // The traditional PKCS#1 / SEC1 forms are read too.
    let traditional = josekit::jwk::alg::rsa::RsaKeyPair::from_pem(rsa_key().to_pem())
        .unwrap()
        .to_traditional_pem_private_key();
    let key =
        SigningKey::from_pem(Algorithm::RS256, std::str::from_utf8(&traditional).unwrap()).unwrap();
    assert_eq!(key.kid(), rsa_key().kid());
    // Debug never shows the private key.
    let debug = format!("{:?}", rsa_key());
    assert!(debug.contains(rsa_key().kid()) && !debug.contains("PRIVATE"));
}

#[test]
fn signing_keys_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SigningKey>();
    assert_send_sync::<IdTokenVerifier>();
}
