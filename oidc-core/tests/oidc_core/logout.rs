//! Logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4, §2.6): a good token validates,
//! and each broken rule is refused with its own error, answered 400 `invalid_request`.

use oidc_core::claims::{Audience, BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims};
use oidc_core::error::ErrorCode;
use oidc_core::jose::{
    Algorithm, LOGOUT_TOKEN_TYPE, LogoutTokenError, LogoutTokenVerifier, SignError, SigningKey,
};
use oidc_core::types::{ClientId, Subject};
use serde_json::{Value, json};

use crate::common::*;

fn logout_verifier(keys: &[&SigningKey]) -> LogoutTokenVerifier {
    let json = serde_json::to_string(&jwks(keys)).unwrap();
    LogoutTokenVerifier::new(issuer(), client(), serde_json::from_str(&json).unwrap())
}

/// The claims of a good logout token issued now, as JSON so tests can break any of them.
fn good_payload() -> Value {
    let now = now();
    serde_json::to_value(LogoutTokenClaims::new(
        issuer(),
        Audience::Single(client()),
        Some(Subject::new("user-1")),
        Some("session-1".into()),
        now,
        now + 120,
    ))
    .unwrap()
}

fn header(key: &SigningKey) -> Value {
    json!({"alg": key.algorithm().as_str(), "typ": LOGOUT_TOKEN_TYPE, "kid": key.kid()})
}

/// Validates `payload` signed by the RSA key with the logout header.
fn check_payload(payload: &Value) -> Result<(), LogoutTokenError> {
    let token = forge_with_key(rsa_key(), &header(rsa_key()), payload);
    logout_verifier(&[rsa_key()]).verify(&token).map(|_| ())
}

fn with(mut payload: Value, name: &str, value: Value) -> Value {
    payload[name] = value;
    payload
}

fn without(mut payload: Value, name: &str) -> Value {
    payload.as_object_mut().unwrap().remove(name);
    payload
}

fn assert_400(err: &LogoutTokenError) {
    assert_eq!(err.http_status(), 400);
    let body = err.error_response();
    assert_eq!(body.error, ErrorCode::InvalidRequest);
    assert!(body.error_description.is_some());
}

#[test]
fn good_logout_tokens_of_both_algorithms_validate() {
    for key in [rsa_key(), ec_key()] {
        let now = now();
        let claims = LogoutTokenClaims::new(
            issuer(),
            Audience::Multiple(vec![ClientId::new("other"), client()]),
            Some(Subject::new("user-1")),
            Some("session-1".into()),
            now,
            now + 120,
        );
        let token = key.sign_logout_token(&claims).unwrap();
        let verified = logout_verifier(&[rsa_key(), ec_key()])
            .verify(&token)
            .unwrap();
        assert_eq!(verified.claims, claims);
        assert_eq!(verified.alg, key.algorithm());
        // The jti is kept until the token would be refused by the clock checks: exp + leeway.
        assert_eq!(verified.keep_jti_until, now + 120 + 60);
        assert!(verified.claims.has_logout_event());
        assert_eq!(verified.claims.jti.len(), 22);
    }
}

#[test]
fn signed_logout_tokens_carry_the_explicit_type_and_the_wire_claims() {
    let claims = LogoutTokenClaims::new(
        issuer(),
        Audience::Single(client()),
        None,
        Some("session-1".into()),
        1_700_000_000,
        1_700_000_120,
    );
    let token = ec_key().sign_logout_token(&claims).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |p: &str| -> Value {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(
        decode(parts[0]),
        json!({"alg": "ES256", "typ": "logout+jwt", "kid": ec_key().kid()})
    );
    let payload = decode(parts[1]);
    assert_eq!(payload["events"], json!({BACKCHANNEL_LOGOUT_EVENT: {}}));
    assert_eq!(payload["sid"], "session-1");
    assert_eq!(payload["aud"], CLIENT);
    assert!(payload.get("sub").is_none());
    assert!(payload.get("nonce").is_none());
}

#[test]
fn a_token_without_typ_or_with_the_long_media_type_validates() {
    for h in [
        json!({"alg": "RS256", "kid": rsa_key().kid()}),
        json!({"alg": "RS256", "kid": rsa_key().kid(), "typ": "application/logout+jwt"}),
        json!({"alg": "RS256", "kid": rsa_key().kid(), "typ": "Logout+JWT"}),
    ] {
        let token = forge_with_key(rsa_key(), &h, &good_payload());
        assert!(logout_verifier(&[rsa_key()]).verify(&token).is_ok(), "{h}");
    }
}

#[test]
fn the_signer_refuses_claims_no_relying_party_accepts() {
    let now = now();
    let mut claims = LogoutTokenClaims::new(
        issuer(),
        Audience::Single(client()),
        None,
        None,
        now,
        now + 60,
    );
    assert!(matches!(
        rsa_key().sign_logout_token(&claims),
        Err(SignError::InvalidClaims(_))
    ));
    claims.sid = Some(String::new());
    assert!(matches!(
        rsa_key().sign_logout_token(&claims),
        Err(SignError::InvalidClaims(_))
    ));
    claims.sub = Some(Subject::new(""));
    claims.sid = Some("s".into());
    assert!(matches!(
        rsa_key().sign_logout_token(&claims),
        Err(SignError::InvalidClaims(_))
    ));
    claims.sub = None;
    claims.jti.clear();
    assert!(matches!(
        rsa_key().sign_logout_token(&claims),
        Err(SignError::InvalidClaims(_))
    ));
    claims.jti = "j".into();
    claims.events.clear();
    assert!(matches!(
        rsa_key().sign_logout_token(&claims),
        Err(SignError::InvalidClaims(_))
    ));
}

#[test]
fn a_bad_signature_is_refused() {
    // Header names the trusted key; the signature is made with another key.
    let token = forge_with_key(rsa_key2(), &header(rsa_key()), &good_payload());
    let err = logout_verifier(&[rsa_key()]).verify(&token).unwrap_err();
    assert_eq!(err, LogoutTokenError::BadSignature);
    assert_400(&err);

    // A valid token with one claim changed after signing.
    let token = rsa_key()
        .sign_logout_token(&serde_json::from_value(good_payload()).unwrap())
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = with(good_payload(), "sid", json!("session-2"));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(serde_json::to_vec(&tampered).unwrap()),
        parts[2]
    );
    assert_eq!(
        logout_verifier(&[rsa_key()]).verify(&forged).unwrap_err(),
        LogoutTokenError::BadSignature
    );
}

#[test]
fn an_unknown_kid_is_refused_and_a_refetched_set_resolves_it() {
    let token = forge_with_key(rsa_key2(), &header(rsa_key2()), &good_payload());
    let mut verifier = logout_verifier(&[rsa_key()]);
    let err = verifier.verify(&token).unwrap_err();
    assert_eq!(
        err,
        LogoutTokenError::UnknownKid(Some(rsa_key2().kid().into()))
    );
    assert!(err.is_unknown_key());
    assert_400(&err);
    verifier.set_jwks(&jwks(&[rsa_key(), rsa_key2()]));
    assert!(verifier.verify(&token).is_ok());
}

#[test]
fn alg_none_and_hs256_are_refused() {
    for alg in ["none", "HS256", "RS384"] {
        let h = json!({"alg": alg, "typ": LOGOUT_TOKEN_TYPE, "kid": rsa_key().kid()});
        let token = forge(&h, &good_payload(), |_| b"sig".to_vec());
        let err = logout_verifier(&[rsa_key()]).verify(&token).unwrap_err();
        assert_eq!(err, LogoutTokenError::UnsupportedAlgorithm(alg.into()));
        assert_400(&err);
    }
    // HS256 really signed with the RSA public JWK as the secret: refused all the same.
    let secret = serde_json::to_vec(&rsa_key().public_jwk()).unwrap();
    let signer = josekit::jws::HS256.signer_from_bytes(&secret).unwrap();
    let token = forge(
        &json!({"alg": "HS256", "typ": LOGOUT_TOKEN_TYPE}),
        &good_payload(),
        |m| josekit::jws::JwsSigner::sign(&signer, m).unwrap(),
    );
    assert_eq!(
        logout_verifier(&[rsa_key()]).verify(&token).unwrap_err(),
        LogoutTokenError::UnsupportedAlgorithm("HS256".into())
    );
    // An algorithm left out of the verifier's list is refused as well.
    let token = rsa_key()
        .sign_logout_token(&serde_json::from_value(good_payload()).unwrap())
        .unwrap();
    let narrowed = logout_verifier(&[rsa_key()]).allowed_algorithms(&[Algorithm::ES256]);
    assert_eq!(
        narrowed.verify(&token).unwrap_err(),
        LogoutTokenError::UnsupportedAlgorithm("RS256".into())
    );
}

#[test]
fn crit_headers_and_malformed_tokens_are_refused() {
    let h = json!({"alg": "RS256", "kid": rsa_key().kid(), "crit": ["exp"]});
    let token = forge_with_key(rsa_key(), &h, &good_payload());
    assert_eq!(
        logout_verifier(&[rsa_key()]).verify(&token).unwrap_err(),
        LogoutTokenError::UnsupportedCriticalHeader
    );
    for bad in ["", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30"] {
        let err = logout_verifier(&[rsa_key()]).verify(bad).unwrap_err();
        assert!(
            matches!(err, LogoutTokenError::Malformed(_)),
            "{bad}: {err:?}"
        );
        assert_400(&err);
    }
}

#[test]
fn a_wrong_typ_is_refused() {
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("logout+jwt2"),
        json!(5),
    ] {
        let h = json!({"alg": "RS256", "kid": rsa_key().kid(), "typ": typ});
        let token = forge_with_key(rsa_key(), &h, &good_payload());
        let err = logout_verifier(&[rsa_key()]).verify(&token).unwrap_err();
        assert!(
            matches!(err, LogoutTokenError::WrongType(_)),
            "{typ}: {err:?}"
        );
        assert_400(&err);
    }
}

#[test]
fn an_id_token_is_not_a_logout_token() {
    // As signed by the provider: typ JWT.
    let id_token = rsa_key().sign_id_token(&claims()).unwrap();
    assert_eq!(
        logout_verifier(&[rsa_key()]).verify(&id_token).unwrap_err(),
        LogoutTokenError::WrongType("JWT".into())
    );
    // Without typ, the missing event gives it away.
    let h = json!({"alg": "RS256", "kid": rsa_key().kid()});
    let id_token = forge_with_key(rsa_key(), &h, &claims());
    assert_eq!(
        logout_verifier(&[rsa_key()]).verify(&id_token).unwrap_err(),
        LogoutTokenError::MissingLogoutEvent
    );
    // And with the event added, its nonce does.
    let mut payload = serde_json::to_value(claims()).unwrap();
    payload["events"] = json!({BACKCHANNEL_LOGOUT_EVENT: {}});
    payload["jti"] = json!("j-1");
    assert_eq!(check_payload(&payload), Err(LogoutTokenError::NoncePresent));
}

#[test]
fn a_wrong_issuer_is_refused() {
    for iss in [
        "https://evil.example.com",
        "https://id.example.com/",
        "https://ID.example.com",
        "http://id.example.com",
        "not a url",
    ] {
        let err = check_payload(&with(good_payload(), "iss", json!(iss))).unwrap_err();
        assert_eq!(err, LogoutTokenError::WrongIssuer { found: iss.into() });
        assert_400(&err);
    }
}

#[test]
fn a_wrong_audience_is_refused() {
    for aud in [json!("other"), json!(["other", "webapp2"]), json!([])] {
        let err = check_payload(&with(good_payload(), "aud", aud.clone())).unwrap_err();
        assert_eq!(err, LogoutTokenError::WrongAudience, "{aud}");
        assert_400(&err);
    }
}

#[test]
fn missing_required_claims_are_invalid_claims() {
    for name in ["iss", "aud", "iat"] {
        let err = check_payload(&without(good_payload(), name)).unwrap_err();
        assert!(
            matches!(err, LogoutTokenError::InvalidClaims(_)),
            "{name}: {err:?}"
        );
        assert_400(&err);
    }
    let err = check_payload(&with(good_payload(), "iat", json!("now"))).unwrap_err();
    assert!(matches!(err, LogoutTokenError::InvalidClaims(_)));
    let err = check_payload(&json!([1, 2])).unwrap_err();
    assert!(matches!(err, LogoutTokenError::InvalidClaims(_)));
}

#[test]
fn iat_far_in_the_future_or_too_old_is_refused() {
    let now = now();
    let err = check_payload(&with(good_payload(), "iat", json!(now + 600))).unwrap_err();
    assert!(matches!(err, LogoutTokenError::IssuedInFuture { iat, .. } if iat == now + 600));
    assert_400(&err);

    let old = with(
        with(good_payload(), "iat", json!(now - 3600)),
        "exp",
        json!(now + 60),
    );
    let err = check_payload(&old).unwrap_err();
    assert!(matches!(err, LogoutTokenError::IssuedTooLongAgo { iat, .. } if iat == now - 3600));
    assert_400(&err);

    // Within the leeway and the maximum age: accepted; a shorter maximum age refuses it.
    let slightly_old = with(good_payload(), "iat", json!(now - 200));
    assert_eq!(check_payload(&slightly_old), Ok(()));
    let token = forge_with_key(rsa_key(), &header(rsa_key()), &slightly_old);
    let strict = logout_verifier(&[rsa_key()]).max_age(60).leeway(0);
    assert!(matches!(
        strict.verify(&token),
        Err(LogoutTokenError::IssuedTooLongAgo { .. })
    ));
    assert_eq!(
        check_payload(&with(good_payload(), "iat", json!(now + 30))),
        Ok(())
    );
}

#[test]
fn a_passed_or_missing_exp_is_refused() {
    let now = now();
    let err = check_payload(&with(good_payload(), "exp", json!(now - 120))).unwrap_err();
    assert_eq!(
        err,
        LogoutTokenError::Expired {
            exp: now - 120,
            now: err_now(&err)
        }
    );
    assert_400(&err);
    let err = check_payload(&without(good_payload(), "exp")).unwrap_err();
    assert_eq!(err, LogoutTokenError::MissingExpiry);
    assert_400(&err);
    assert_eq!(
        check_payload(&with(good_payload(), "exp", Value::Null)),
        Err(LogoutTokenError::MissingExpiry)
    );
}

/// The `now` an `Expired` error reports (the test clock may have moved by a second).
fn err_now(err: &LogoutTokenError) -> i64 {
    match err {
        LogoutTokenError::Expired { now, .. } => *now,
        _ => i64::MIN,
    }
}

#[test]
fn missing_or_wrong_events_are_refused() {
    let err = check_payload(&without(good_payload(), "events")).unwrap_err();
    assert_eq!(err, LogoutTokenError::MissingLogoutEvent);
    assert_400(&err);
    for events in [
        json!({}),
        json!({"http://schemas.openid.net/event/other": {}}),
        json!([BACKCHANNEL_LOGOUT_EVENT]),
        json!(BACKCHANNEL_LOGOUT_EVENT),
        Value::Null,
    ] {
        assert_eq!(
            check_payload(&with(good_payload(), "events", events.clone())),
            Err(LogoutTokenError::MissingLogoutEvent),
            "{events}"
        );
    }
}

#[test]
fn a_logout_event_that_is_not_an_object_is_refused() {
    for value in [json!(""), json!([]), json!(true), json!(1), Value::Null] {
        let events = json!({BACKCHANNEL_LOGOUT_EVENT: value});
        let err = check_payload(&with(good_payload(), "events", events)).unwrap_err();
        assert_eq!(err, LogoutTokenError::LogoutEventNotObject, "{value}");
        assert_400(&err);
    }
    // A non-empty object is allowed (SHOULD be {}, MUST be an object), as are other events.
    let events = json!({BACKCHANNEL_LOGOUT_EVENT: {"reason": "x"}, "urn:other": 1});
    assert_eq!(
        check_payload(&with(good_payload(), "events", events)),
        Ok(())
    );
}

#[test]
fn a_nonce_is_refused() {
    for nonce in [json!(NONCE), json!(""), json!(1)] {
        let err = check_payload(&with(good_payload(), "nonce", nonce)).unwrap_err();
        assert_eq!(err, LogoutTokenError::NoncePresent);
        assert_400(&err);
    }
}

#[test]
fn a_missing_jti_is_refused() {
    let err = check_payload(&without(good_payload(), "jti")).unwrap_err();
    assert_eq!(err, LogoutTokenError::MissingJti);
    assert_400(&err);
    assert_eq!(
        check_payload(&with(good_payload(), "jti", json!(""))),
        Err(LogoutTokenError::MissingJti)
    );
}

#[test]
fn neither_sub_nor_sid_is_refused() {
    let neither = without(without(good_payload(), "sub"), "sid");
    let err = check_payload(&neither).unwrap_err();
    assert_eq!(err, LogoutTokenError::MissingSubjectAndSession);
    assert_400(&err);
    let empty_sid = with(without(good_payload(), "sub"), "sid", json!(""));
    assert_eq!(
        check_payload(&empty_sid),
        Err(LogoutTokenError::MissingSubjectAndSession)
    );
    // Either one alone is enough.
    assert_eq!(check_payload(&without(good_payload(), "sub")), Ok(()));
    assert_eq!(check_payload(&without(good_payload(), "sid")), Ok(()));
}

#[test]
fn every_error_is_answered_with_400_invalid_request() {
    let errors = [
        LogoutTokenError::Malformed("x".into()),
        LogoutTokenError::UnsupportedAlgorithm("none".into()),
        LogoutTokenError::UnsupportedCriticalHeader,
        LogoutTokenError::UnknownKid(None),
        LogoutTokenError::KeyAlgorithmMismatch {
            kid: "k".into(),
            alg: Algorithm::RS256,
        },
        LogoutTokenError::BadSignature,
        LogoutTokenError::WrongType("JWT".into()),
        LogoutTokenError::InvalidClaims("x".into()),
        LogoutTokenError::WrongIssuer {
            found: "\"evil\"\n".into(),
        },
        LogoutTokenError::WrongAudience,
        LogoutTokenError::IssuedInFuture { iat: 2, now: 1 },
        LogoutTokenError::IssuedTooLongAgo { iat: 1, now: 2 },
        LogoutTokenError::MissingExpiry,
        LogoutTokenError::Expired { exp: 1, now: 2 },
        LogoutTokenError::MissingSubjectAndSession,
        LogoutTokenError::MissingLogoutEvent,
        LogoutTokenError::LogoutEventNotObject,
        LogoutTokenError::NoncePresent,
        LogoutTokenError::MissingJti,
    ];
    let mut messages = std::collections::HashSet::new();
    for err in &errors {
        assert_400(err);
        let body = serde_json::to_value(err.error_response()).unwrap();
        assert_eq!(body["error"], "invalid_request");
        let description = body["error_description"].as_str().unwrap();
        // Descriptions stay within the RFC 6749 §5.2 character set.
        assert!(
            description
                .chars()
                .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
            "{description}"
        );
        assert!(messages.insert(err.to_string()), "{err}");
    }
}

#[test]
fn a_logout_token_is_refused_by_a_verifier_of_another_client_or_issuer() {
    let token = rsa_key()
        .sign_logout_token(&serde_json::from_value(good_payload()).unwrap())
        .unwrap();
    let other_client =
        LogoutTokenVerifier::new(issuer(), ClientId::new("other"), jwks(&[rsa_key()]));
    assert_eq!(
        other_client.verify(&token).unwrap_err(),
        LogoutTokenError::WrongAudience
    );
    let other_issuer = LogoutTokenVerifier::new(
        oidc_core::types::IssuerUrl::parse("https://other.example.com").unwrap(),
        client(),
        jwks(&[rsa_key()]),
    );
    assert!(matches!(
        other_issuer.verify(&token).unwrap_err(),
        LogoutTokenError::WrongIssuer { .. }
    ));
}

#[test]
fn a_logout_token_is_not_accepted_as_an_id_token() {
    // Where no nonce is expected (an `id_token_hint`), the nonce rule cannot tell the two
    // apart; the explicit type and the logout event do.
    let token = rsa_key()
        .sign_logout_token(&serde_json::from_value(good_payload()).unwrap())
        .unwrap();
    let id_verifier = verifier(&[rsa_key()]).accept_expired(true);
    assert!(matches!(
        id_verifier.verify(&token, None, None),
        Err(oidc_core::jose::VerifyError::WrongType(_))
    ));
    let h = json!({"alg": "RS256", "kid": rsa_key().kid(), "typ": "JWT"});
    let untyped = forge_with_key(rsa_key(), &h, &good_payload());
    assert!(matches!(
        id_verifier.verify(&untyped, None, None),
        Err(oidc_core::jose::VerifyError::InvalidClaims(_))
    ));
}

#[test]
fn discovery_advertises_back_channel_logout_only_when_set() {
    let issuer = issuer();
    let mut metadata = oidc_core::discovery::ProviderMetadata::new(
        issuer.clone(),
        issuer.join_path("authorize").unwrap(),
        issuer.join_path("jwks").unwrap(),
    );
    let json = serde_json::to_value(&metadata).unwrap();
    assert!(json.get("backchannel_logout_supported").is_none());
    assert!(json.get("backchannel_logout_session_supported").is_none());

    metadata.backchannel_logout_supported = Some(true);
    metadata.backchannel_logout_session_supported = Some(false);
    let json = serde_json::to_value(&metadata).unwrap();
    assert_eq!(json["backchannel_logout_supported"], true);
    assert_eq!(json["backchannel_logout_session_supported"], false);
    let back: oidc_core::discovery::ProviderMetadata = serde_json::from_value(json).unwrap();
    assert_eq!(back, metadata);

    let mut wrong = serde_json::to_value(&metadata).unwrap();
    wrong["backchannel_logout_supported"] = json!("yes");
    assert!(serde_json::from_value::<oidc_core::discovery::ProviderMetadata>(wrong).is_err());
}
