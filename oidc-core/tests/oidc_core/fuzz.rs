//! Property tests: every parser answers arbitrary and malformed input with a value or an error,
//! never a panic; a modified token never verifies.

use oidc_core::claims::{IdTokenClaims, LogoutTokenClaims, UserInfo};
use oidc_core::discovery::ProviderMetadata;
use oidc_core::error::{ErrorCode, ErrorResponse};
use oidc_core::jose::{Algorithm, IdTokenVerifier, LogoutTokenVerifier, VerifyError};
use oidc_core::jwk::{Jwk, JwkSet};
use oidc_core::pkce::{CodeChallenge, CodeChallengeMethod, CodeVerifier};
use oidc_core::token::{TokenRequest, TokenResponse};
use oidc_core::types::{ClientId, IssuerUrl, Nonce, RedirectUri, Scope, Scopes, State};
use proptest::prelude::*;
use serde_json::Value;

use crate::common::*;

/// Keys that make the generated JSON look like the documents the parsers expect.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "nonce",
            "azp",
            "at_hash",
            "amr",
            "email",
            "email_verified",
            "updated_at",
            "alg",
            "kid",
            "crit",
            "typ",
            "jku",
            "kty",
            "n",
            "e",
            "crv",
            "x",
            "y",
            "use",
            "keys",
            "issuer",
            "jwks_uri",
            "authorization_endpoint",
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "error",
        ])
        .prop_map(String::from),
        "[a-z_]{1,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        Just(Value::from(ISSUER)),
        Just(Value::from(CLIENT)),
        Just(Value::from("RS256")),
    ];
    leaf.prop_recursive(5, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Deeply nested arrays or objects, deeper than serde_json's recursion limit.
fn nested_json() -> impl Strategy<Value = String> {
    (1usize..5000, any::<bool>()).prop_map(|(depth, arrays)| {
        if arrays {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth))
        } else {
            format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
        }
    })
}

fn all_keys_verifier() -> IdTokenVerifier {
    verifier(&[rsa_key(), ec_key()])
}

/// Runs every JSON document parser on `text`; only panics would fail.
fn parse_everything(text: &str) {
    let _ = serde_json::from_str::<IdTokenClaims>(text);
    let _ = serde_json::from_str::<LogoutTokenClaims>(text);
    let _ = serde_json::from_str::<UserInfo>(text);
    let _ = serde_json::from_str::<ProviderMetadata>(text);
    let _ = serde_json::from_str::<TokenResponse>(text);
    let _ = serde_json::from_str::<TokenRequest>(text);
    let _ = serde_json::from_str::<ErrorResponse>(text);
    let _ = serde_json::from_str::<Jwk>(text);
    if let Ok(set) = serde_json::from_str::<JwkSet>(text) {
        // Whatever the set holds, building a verifier from it must not panic.
        let v = IdTokenVerifier::new(issuer(), client(), set.clone());
        let _ = v.verify(&rsa_key().sign_id_token(&claims()).unwrap(), None, None);
        let _ = LogoutTokenVerifier::new(issuer(), client(), set).verify("e30.e30.AA");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn verify_never_panics_on_arbitrary_text(token in ".{0,300}") {
        prop_assert!(all_keys_verifier().verify(&token, None, None).is_err());
    }

    #[test]
    fn verify_never_panics_on_dotted_base64ish_text(
        token in "[A-Za-z0-9_=+/-]{0,80}\\.[A-Za-z0-9_=+/-]{0,80}\\.[A-Za-z0-9_=+/-]{0,400}(\\.[a-z]{0,3})?"
    ) {
        prop_assert!(all_keys_verifier().verify(&token, None, None).is_err());
    }

    #[test]
    fn verify_refuses_arbitrary_headers_and_payloads(
        header in json_value(), payload in json_value(), sig in prop::collection::vec(any::<u8>(), 0..300)
    ) {
        let token = forge(&header, &payload, |_| sig);
        prop_assert!(all_keys_verifier().verify(&token, None, None).is_err());
    }

    #[test]
    fn verify_refuses_correctly_signed_arbitrary_payloads(payload in json_value()) {
        // Signed by a trusted key, but the payload is not valid claims for us.
        let header = serde_json::json!({"alg": "RS256", "kid": rsa_key().kid()});
        let token = forge_with_key(rsa_key(), &header, &payload);
        let result = all_keys_verifier().verify(&token, None, None);
        prop_assert!(result.is_err(), "{payload}");
    }

    #[test]
    fn logout_verify_refuses_correctly_signed_arbitrary_payloads(payload in json_value()) {
        let header = serde_json::json!({"alg": "ES256", "kid": ec_key().kid(), "typ": "logout+jwt"});
        let token = forge_with_key(ec_key(), &header, &payload);
        let result = LogoutTokenVerifier::new(issuer(), client(), jwks(&[ec_key()])).verify(&token);
        prop_assert!(result.is_err(), "{payload}");
    }

    #[test]
    fn verify_refuses_nested_json(nested in nested_json(), in_header in any::<bool>()) {
        let token = if in_header {
            format!("{}.e30.AA", b64(&nested))
        } else {
            let header = serde_json::json!({"alg": "ES256", "kid": ec_key().kid()});
            let message = format!("{}.{}", b64(header.to_string()), b64(&nested));
            let sig = raw_sign(ec_key(), message.as_bytes());
            format!("{message}.{}", b64(sig))
        };
        let result = all_keys_verifier().verify(&token, None, None);
        prop_assert!(
            matches!(result, Err(VerifyError::Malformed(_)) | Err(VerifyError::InvalidClaims(_))),
            "{result:?}"
        );
    }

    #[test]
    fn any_change_to_a_valid_token_is_refused(
        index in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=".chars().collect::<Vec<_>>()
        ),
        ec in any::<bool>(),
    ) {
        let key = if ec { ec_key() } else { rsa_key() };
        let token = key.sign_id_token(&claims()).unwrap();
        let v = all_keys_verifier();
        prop_assert!(v.verify(&token, Some(&nonce()), None).is_ok());
        let i = index.index(token.len());
        let mut mutated: Vec<char> = token.chars().collect();
        prop_assume!(mutated[i] != replacement);
        mutated[i] = replacement;
        let mutated: String = mutated.into_iter().collect();
        prop_assert!(v.verify(&mutated, Some(&nonce()), None).is_err());
    }

    #[test]
    fn truncated_valid_tokens_are_refused(cut in 0usize..2000, ec in any::<bool>()) {
        let key = if ec { ec_key() } else { rsa_key() };
        let token = key.sign_id_token(&claims()).unwrap();
        let cut = cut % token.len();
        prop_assert!(all_keys_verifier().verify(&token[..cut], Some(&nonce()), None).is_err());
    }

    #[test]
    fn json_parsers_never_panic_on_arbitrary_json(value in json_value()) {
        parse_everything(&value.to_string());
    }

    #[test]
    fn json_parsers_never_panic_on_arbitrary_text(text in ".{0,200}") {
        parse_everything(&text);
    }

    #[test]
    fn json_parsers_never_panic_on_nested_json(nested in nested_json()) {
        parse_everything(&nested);
    }

    #[test]
    fn token_request_form_parser_never_panics(body in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = TokenRequest::from_form(&body);
    }

    #[test]
    fn token_request_form_parser_handles_form_like_input(
        body in "((grant_type|code|redirect_uri|code_verifier|client_id|client_secret|refresh_token|scope|x)=[a-zA-Z0-9%+_.~:/ -]{0,50}&?){0,8}"
    ) {
        if let Ok(request) = TokenRequest::from_form(body.as_bytes()) {
            prop_assert!(body.contains("grant_type="));
            prop_assert!(matches!(request.grant_type(), "authorization_code" | "refresh_token"));
        }
    }

    #[test]
    fn string_parsers_never_panic(text in ".{0,300}") {
        let _ = RedirectUri::parse(&text);
        let _ = IssuerUrl::parse(&text).map(|i| i.join_path(&text));
        let _ = Scopes::parse(&text);
        let _ = Scope::parse(&text);
        let _ = CodeVerifier::parse(text.clone());
        let _ = CodeChallenge::parse(&text);
        let _ = CodeChallengeMethod::parse(&text);
        let _ = Algorithm::parse(&text);
        let _ = ErrorCode::parse(&text);
        let _ = ClientId::parse(&text);
        let _ = State::parse(&text);
        let _ = Nonce::parse(&text);
    }

    #[test]
    fn url_types_keep_their_exact_string(text in "https?://[a-zA-Z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%-]{0,10}){0,3}") {
        if let Ok(uri) = RedirectUri::parse(&text) {
            prop_assert_eq!(uri.as_str(), text.as_str());
            let back: RedirectUri = serde_json::from_value(serde_json::to_value(&uri).unwrap()).unwrap();
            prop_assert_eq!(back, uri);
        }
    }

    #[test]
    fn valid_code_verifiers_parse_and_round_trip(verifier in "[A-Za-z0-9._~-]{43,128}") {
        let parsed = CodeVerifier::parse(verifier.clone()).unwrap();
        prop_assert_eq!(parsed.secret(), verifier.as_str());
        let challenge = CodeChallenge::from_verifier(&parsed);
        prop_assert!(CodeChallenge::parse(challenge.as_str()).unwrap().verify(&parsed));
    }

    #[test]
    fn out_of_range_code_verifiers_are_refused(
        short in "[A-Za-z0-9._~-]{0,42}", long in "[A-Za-z0-9._~-]{129,200}", bad in "[A-Za-z0-9]{20}[^A-Za-z0-9._~-][A-Za-z0-9]{30}"
    ) {
        prop_assert!(CodeVerifier::parse(short).is_err());
        prop_assert!(CodeVerifier::parse(long).is_err());
        prop_assert!(CodeVerifier::parse(bad).is_err());
    }

    #[test]
    fn scopes_round_trip_through_their_wire_form(tokens in prop::collection::vec("[!#-\\[\\]-~]{1,12}", 0..10)) {
        let text = tokens.join(" ");
        let scopes = Scopes::parse(&text).unwrap();
        let again = Scopes::parse(&scopes.to_string()).unwrap();
        prop_assert_eq!(&again, &scopes);
        for t in &tokens {
            prop_assert!(scopes.contains(t));
        }
        prop_assert!(scopes.is_subset(&again));
    }
}
