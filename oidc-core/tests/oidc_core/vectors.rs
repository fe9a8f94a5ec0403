//! Published test vectors: RFC 7636 Appendix B, RFC 7638 §3.1, OpenID Connect Core 1.0 A.4.

use oidc_core::jose::{Algorithm, at_hash};
use oidc_core::jwk::{Jwk, JwkParams, JwkSet};
use oidc_core::pkce::{CodeChallenge, CodeVerifier};
use oidc_core::types::AccessToken;

const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

#[test]
fn pkce_rfc7636_appendix_b_vector() {
    let verifier =
        CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into()).unwrap();
    let challenge = CodeChallenge::from_verifier(&verifier);
    assert_eq!(
        challenge.as_str(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let received = CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
    assert!(received.verify(&verifier));
    let other = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK".into()).unwrap();
    assert!(!received.verify(&other));
}

#[test]
fn jwk_thumbprint_rfc7638_example_key() {
    // RFC 7638 §3.1: the example RSA key (with members that do not enter the thumbprint).
    let json =
        format!(r#"{{"kty":"RSA","n":"{RFC7638_N}","e":"AQAB","alg":"RS256","kid":"2011-04-29"}}"#);
    let jwk: Jwk = serde_json::from_str(&json).unwrap();
    assert_eq!(
        jwk.thumbprint(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    assert_eq!(jwk.kid.as_deref(), Some("2011-04-29"));
    let with_kid = jwk.with_thumbprint_kid();
    assert_eq!(
        with_kid.kid.as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
}

#[test]
fn jwk_thumbprint_ignores_member_order_and_optional_members() {
    let a = Jwk::new(JwkParams::Rsa {
        n: RFC7638_N.into(),
        e: "AQAB".into(),
    });
    let json =
        format!(r#"{{"e":"AQAB","use":"sig","n":"{RFC7638_N}","kty":"RSA","x5u":"https://x"}}"#);
    let b: Jwk = serde_json::from_str(&json).unwrap();
    assert_eq!(a.thumbprint(), b.thumbprint());
}

#[test]
fn signing_key_kid_is_its_rfc7638_thumbprint() {
    for key in [crate::common::rsa_key(), crate::common::ec_key()] {
        let jwk = key.public_jwk();
        assert_eq!(key.kid(), jwk.thumbprint());
        assert_eq!(jwk.kid.as_deref(), Some(key.kid()));
        assert_eq!(jwk.alg.as_deref(), Some(key.algorithm().as_str()));
        assert_eq!(jwk.key_use.as_deref(), Some("sig"));
    }
}

#[test]
fn rfc7517_appendix_a1_public_keys_parse() {
    // RFC 7517 Appendix A.1: one EC and one RSA public key.
    let json = format!(
        r#"{{"keys":[
          {{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
            "y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","use":"enc","kid":"1"}},
          {{"kty":"RSA","n":"{RFC7638_N}","e":"AQAB","alg":"RS256","kid":"2011-04-29"}}
        ]}}"#
    );
    let set: JwkSet = serde_json::from_str(&json).unwrap();
    assert_eq!(set.keys.len(), 2);
    assert_eq!(set.find("1").unwrap().key_type(), "EC");
    assert!(!set.find("1").unwrap().is_for_signing());
    assert_eq!(set.find("2011-04-29").unwrap().key_type(), "RSA");
}

#[test]
fn at_hash_openid_connect_core_example() {
    // OpenID Connect Core 1.0 Appendix A.4 (RS256).
    let token = AccessToken::new("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y");
    assert_eq!(at_hash(&token, Algorithm::RS256), "77QmUPtjPfzWtF2AnpK9RQ");
    assert_eq!(at_hash(&token, Algorithm::ES256), "77QmUPtjPfzWtF2AnpK9RQ");
}
