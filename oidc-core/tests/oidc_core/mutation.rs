//! Property tests on mutated valid inputs: tokens with flipped bytes, cut short, with swapped
//! segments or re-encoded headers; logout-token claims broken one field at a time against a
//! model of the §2.6 rules; key sets, token responses, error responses, discovery documents and
//! PKCE values with members removed or replaced. Each must give its documented error, never a
//! panic.

use oidc_core::claims::{Audience, BACKCHANNEL_LOGOUT_EVENT, LogoutTokenClaims};
use oidc_core::discovery::ProviderMetadata;
use oidc_core::error::{ErrorCode, ErrorResponse};
use oidc_core::jose::{
    IdTokenVerifier, LOGOUT_TOKEN_TYPE, LogoutTokenError, LogoutTokenVerifier, SigningKey,
    VerifyError,
};
use oidc_core::jwk::JwkSet;
use oidc_core::pkce::{CodeChallenge, CodeVerifier, PkceError};
use oidc_core::token::TokenResponse;
use oidc_core::types::{AccessToken, Scopes, Subject};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::*;

/// The clock of the logout-token model: tokens are checked at this fixed time.
const NOW: i64 = 1_800_000_000;

fn logout_verifier() -> LogoutTokenVerifier {
    LogoutTokenVerifier::new(issuer(), client(), jwks(&[rsa_key(), ec_key()]))
}

fn id_verifier() -> IdTokenVerifier {
    IdTokenVerifier::new(issuer(), client(), jwks(&[rsa_key(), ec_key()])).accept_expired(true)
}

fn key(ec: bool) -> &'static SigningKey {
    if ec { ec_key() } else { rsa_key() }
}

fn valid_logout_token(ec: bool) -> String {
    let claims = LogoutTokenClaims::new(
        issuer(),
        Audience::Single(client()),
        Some(Subject::new("user-1")),
        Some("session-1".into()),
        now(),
        now() + 120,
    );
    key(ec).sign_logout_token(&claims).unwrap()
}

fn valid_id_token(ec: bool) -> String {
    key(ec).sign_id_token(&claims()).unwrap()
}

/// The errors a token gets when it was changed after signing: every one comes from the JWS
/// checks, none from the claims, because no change survives the signature check.
fn is_jws_error(e: &VerifyError) -> bool {
    matches!(
        e,
        VerifyError::Malformed(_)
            | VerifyError::UnsupportedAlgorithm(_)
            | VerifyError::UnsupportedCriticalHeader
            | VerifyError::UnknownKid(_)
            | VerifyError::KeyAlgorithmMismatch { .. }
            | VerifyError::BadSignature
    )
}

fn is_logout_jws_error(e: &LogoutTokenError) -> bool {
    matches!(
        e,
        LogoutTokenError::Malformed(_)
            | LogoutTokenError::UnsupportedAlgorithm(_)
            | LogoutTokenError::UnsupportedCriticalHeader
            | LogoutTokenError::UnknownKid(_)
            | LogoutTokenError::KeyAlgorithmMismatch { .. }
            | LogoutTokenError::BadSignature
    )
}

/// A change to a compact JWS.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte of the text with a non-zero mask.
    FlipByte(prop::sample::Index, u8),
    /// Keep only the first bytes.
    Truncate(prop::sample::Index),
    /// Exchange two of the three segments.
    Swap(usize, usize),
    /// Drop one segment, or repeat one (two or four segments).
    Drop(usize),
    Repeat(usize),
    /// Replace the header with another one, keeping payload and signature.
    Header(Value),
    /// Insert a character.
    Insert(prop::sample::Index, char),
}

fn header_value() -> impl Strategy<Value = Value> {
    let alg = prop::sample::select(vec![
        "RS256", "ES256", "none", "None", "HS256", "HS512", "RS384", "PS256", "EdDSA", "",
    ]);
    let typ = prop::sample::select(vec![
        None,
        Some("JWT"),
        Some("logout+jwt"),
        Some("application/logout+jwt"),
        Some("at+jwt"),
    ]);
    // 0: the RSA key's id, 1: the EC key's id, 2: an unknown id, 3: none.
    (alg, typ, 0u8..4, any::<bool>()).prop_map(|(alg, typ, kid, crit)| {
        let mut h = json!({ "alg": alg });
        if let Some(typ) = typ {
            h["typ"] = json!(typ);
        }
        match kid {
            0 => h["kid"] = json!(rsa_key().kid()),
            1 => h["kid"] = json!(ec_key().kid()),
            2 => h["kid"] = json!("no-such-key"),
            _ => {}
        }
        if crit {
            h["crit"] = json!(["exp"]);
        }
        h
    })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::FlipByte(i, m)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (0usize..3, 0usize..3)
            .prop_filter("two different segments", |(a, b)| a != b)
            .prop_map(|(a, b)| Mutation::Swap(a, b)),
        (0usize..3).prop_map(Mutation::Drop),
        (0usize..3).prop_map(Mutation::Repeat),
        header_value().prop_map(Mutation::Header),
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(i, c)| Mutation::Insert(i, c)),
    ]
}

/// Applies `m` to `token`; the result may not be UTF-8 after a byte flip, then it is read
/// lossily, as a server reading a form field would.
fn apply(token: &str, m: &Mutation) -> String {
    let segments: Vec<&str> = token.split('.').collect();
    match m {
        Mutation::FlipByte(i, mask) => {
            let mut bytes = token.as_bytes().to_vec();
            let i = i.index(bytes.len());
            bytes[i] ^= mask;
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Truncate(i) => token[..i.index(token.len())].to_owned(),
        Mutation::Swap(a, b) => {
            let mut s = segments.clone();
            s.swap(*a, *b);
            s.join(".")
        }
        Mutation::Drop(i) => {
            let mut s = segments.clone();
            s.remove(*i);
            s.join(".")
        }
        Mutation::Repeat(i) => {
            let mut s = segments.clone();
            s.insert(*i, segments[*i]);
            s.join(".")
        }
        Mutation::Header(h) => format!("{}.{}.{}", b64(h.to_string()), segments[1], segments[2]),
        Mutation::Insert(i, c) => {
            let mut s = token.to_owned();
            let mut i = i.index(s.len() + 1);
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            s.insert(i, *c);
            s
        }
    }
}

/// One field of a logout-token payload and what the §2.6 rules make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// As in a good token.
    Good,
    /// The field alone makes the payload fail to parse (wrong type, missing required claim).
    Unparsable,
    /// The field breaks the rule checked for it.
    Broken,
    /// The field is absent or empty where that is allowed (`sub`, `sid`, `nonce`).
    Empty,
}

type Choice = (Option<Value>, Field);

/// One of `options`, the first (an accepted value) four times out of five, so that whole valid
/// tokens come up often enough next to every broken field.
fn choices(options: Vec<Choice>) -> impl Strategy<Value = Choice> {
    prop_oneof![
        4 => Just(options[0].clone()),
        1 => prop::sample::select(options),
    ]
}

fn logout_fields() -> impl Strategy<Value = Vec<Choice>> {
    use Field::*;
    let event = json!({ BACKCHANNEL_LOGOUT_EVENT: {} });
    (
        (
            choices(vec![
                (Some(json!(ISSUER)), Good),
                (None, Unparsable),
                (Some(Value::Null), Unparsable),
                (Some(json!(1)), Unparsable),
                (Some(json!("https://id.example.com/")), Broken),
                (Some(json!("https://evil.example.com")), Broken),
            ]),
            choices(vec![
                (Some(json!(CLIENT)), Good),
                (Some(json!(["other", CLIENT])), Good),
                (None, Unparsable),
                (Some(json!(7)), Unparsable),
                (Some(json!(["other"])), Broken),
                (Some(json!([])), Broken),
            ]),
            // iat: Broken is split below into future and too old.
            choices(vec![
                (Some(json!(NOW - 10)), Good),
                (Some(json!(NOW + 30)), Good),
                (None, Unparsable),
                (Some(json!("now")), Unparsable),
                (Some(json!(1.5)), Unparsable),
                (Some(json!(NOW + 3600)), Broken),
                (Some(json!(NOW - 3600)), Broken),
            ]),
            choices(vec![
                (Some(json!(NOW + 120)), Good),
                (None, Empty),
                (Some(Value::Null), Empty),
                (Some(json!("later")), Unparsable),
                (Some(json!(NOW - 120)), Broken),
            ]),
        ),
        (
            choices(vec![
                (Some(json!("user-1")), Good),
                (None, Empty),
                (Some(Value::Null), Empty),
                (Some(json!("")), Unparsable),
                (Some(json!(5)), Unparsable),
            ]),
            choices(vec![
                (Some(json!("session-1")), Good),
                (None, Empty),
                (Some(Value::Null), Empty),
                (Some(json!("")), Empty),
                (Some(json!(["s"])), Unparsable),
            ]),
            choices(vec![
                (Some(event), Good),
                (
                    Some(json!({ BACKCHANNEL_LOGOUT_EVENT: {"a": 1}, "urn:x": 2 })),
                    Good,
                ),
                (None, Empty),
                (Some(Value::Null), Empty),
                (Some(json!({})), Empty),
                (Some(json!([BACKCHANNEL_LOGOUT_EVENT])), Empty),
                (Some(json!({ BACKCHANNEL_LOGOUT_EVENT: [] })), Broken),
                (Some(json!({ BACKCHANNEL_LOGOUT_EVENT: "" })), Broken),
                (Some(json!({ BACKCHANNEL_LOGOUT_EVENT: null })), Broken),
            ]),
            choices(vec![
                (None, Empty),
                (Some(Value::Null), Empty),
                (Some(json!(NONCE)), Broken),
                (Some(json!({})), Broken),
            ]),
            choices(vec![
                (Some(json!("jti-1")), Good),
                (None, Empty),
                (Some(Value::Null), Empty),
                (Some(json!("")), Empty),
                (Some(json!(3)), Unparsable),
            ]),
        ),
    )
        .prop_map(|((iss, aud, iat, exp), (sub, sid, events, nonce, jti))| {
            vec![iss, aud, iat, exp, sub, sid, events, nonce, jti]
        })
}

const FIELD_NAMES: [&str; 9] = [
    "iss", "aud", "iat", "exp", "sub", "sid", "events", "nonce", "jti",
];

/// The model: the error §2.6 gives for these fields, checked in the verifier's order.
fn expected_logout_error(fields: &[Choice]) -> Option<LogoutTokenError> {
    use Field::*;
    let [iss, aud, iat, exp, sub, sid, events, nonce, jti] =
        fields.iter().map(|(v, f)| (v, *f)).collect::<Vec<_>>()[..]
    else {
        unreachable!()
    };
    if fields.iter().any(|(_, f)| *f == Unparsable) {
        return Some(LogoutTokenError::InvalidClaims(String::new()));
    }
    if iss.1 == Broken {
        return Some(LogoutTokenError::WrongIssuer {
            found: iss.0.as_ref().unwrap().as_str().unwrap().into(),
        });
    }
    if aud.1 == Broken {
        return Some(LogoutTokenError::WrongAudience);
    }
    let iat_value = iat.0.as_ref().unwrap().as_i64().unwrap();
    if iat.1 == Broken {
        return Some(if iat_value > NOW {
            LogoutTokenError::IssuedInFuture {
                iat: iat_value,
                now: NOW,
            }
        } else {
            LogoutTokenError::IssuedTooLongAgo {
                iat: iat_value,
                now: NOW,
            }
        });
    }
    match exp.1 {
        Empty => return Some(LogoutTokenError::MissingExpiry),
        Broken => {
            return Some(LogoutTokenError::Expired {
                exp: NOW - 120,
                now: NOW,
            });
        }
        _ => {}
    }
    if sub.1 == Empty && sid.1 == Empty {
        return Some(LogoutTokenError::MissingSubjectAndSession);
    }
    match events.1 {
        Empty => return Some(LogoutTokenError::MissingLogoutEvent),
        Broken => return Some(LogoutTokenError::LogoutEventNotObject),
        _ => {}
    }
    if nonce.1 == Broken {
        return Some(LogoutTokenError::NoncePresent);
    }
    if jti.1 == Empty {
        return Some(LogoutTokenError::MissingJti);
    }
    None
}

/// A JSON document with one member removed or replaced by `replacement`.
fn mutate_member(doc: &Value, index: prop::sample::Index, replacement: Option<Value>) -> Value {
    let mut doc = doc.clone();
    let map = doc.as_object_mut().unwrap();
    let name = map.keys().nth(index.index(map.len())).unwrap().clone();
    match replacement {
        Some(v) => map.insert(name, v),
        None => map.remove(&name),
    };
    doc
}

fn replacement_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        any::<bool>().prop_map(|b| Some(json!(b))),
        any::<i64>().prop_map(|n| Some(json!(n))),
        Just(Some(json!(-1))),
        ".{0,20}".prop_map(|s| Some(json!(s))),
        Just(Some(json!([]))),
        Just(Some(json!({}))),
        Just(Some(json!("https://other.example.com/x"))),
    ]
}

fn metadata_document() -> Value {
    let issuer = issuer();
    let mut m = ProviderMetadata::new(
        issuer.clone(),
        issuer.join_path("authorize").unwrap(),
        issuer.join_path("jwks").unwrap(),
    );
    m.token_endpoint = Some(issuer.join_path("token").unwrap());
    m.end_session_endpoint = Some(issuer.join_path("logout").unwrap());
    m.code_challenge_methods_supported = Some(vec!["S256".into()]);
    m.backchannel_logout_supported = Some(true);
    m.backchannel_logout_session_supported = Some(true);
    m.authorization_response_iss_parameter_supported = Some(true);
    serde_json::to_value(m).unwrap()
}

fn token_response_document() -> Value {
    let mut r = TokenResponse::bearer(AccessToken::new("at-1"));
    r.expires_in = Some(3600);
    r.refresh_token = Some(oidc_core::types::RefreshToken::new("rt-1"));
    r.id_token = Some("a.b.c".into());
    r.scope = Some(Scopes::parse("openid profile").unwrap());
    serde_json::to_value(r).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_id_tokens_fail_the_jws_checks(m in mutation(), ec in any::<bool>()) {
        let token = valid_id_token(ec);
        let mutated = apply(&token, &m);
        prop_assume!(mutated != token);
        let err = id_verifier().verify(&mutated, None, None).unwrap_err();
        prop_assert!(is_jws_error(&err), "{m:?}: {err:?}");
        // The logout verifier refuses it just as early.
        let err = logout_verifier().verify(&mutated).unwrap_err();
        prop_assert!(is_logout_jws_error(&err), "{m:?}: {err:?}");
    }

    #[test]
    fn mutated_logout_tokens_fail_the_jws_checks(m in mutation(), ec in any::<bool>()) {
        let token = valid_logout_token(ec);
        prop_assert!(logout_verifier().verify(&token).is_ok());
        let mutated = apply(&token, &m);
        prop_assume!(mutated != token);
        let err = logout_verifier().verify(&mutated).unwrap_err();
        prop_assert!(is_logout_jws_error(&err), "{m:?}: {err:?}");
        let err = id_verifier().verify(&mutated, None, None).unwrap_err();
        prop_assert!(is_jws_error(&err), "{m:?}: {err:?}");
    }

    #[test]
    fn re_encoded_headers_get_the_error_of_their_first_failing_check(h in header_value(), ec in any::<bool>()) {
        let token = valid_logout_token(ec);
        let parts: Vec<&str> = token.split('.').collect();
        let mutated = format!("{}.{}.{}", b64(h.to_string()), parts[1], parts[2]);
        prop_assume!(mutated != token);
        let err = logout_verifier().verify(&mutated).unwrap_err();
        let alg = h["alg"].as_str().unwrap();
        let expected = match (alg, h["kid"].as_str()) {
            ("RS256" | "ES256", _) if h.get("crit").is_some() => {
                LogoutTokenError::UnsupportedCriticalHeader
            }
            ("RS256" | "ES256", Some("no-such-key")) => {
                LogoutTokenError::UnknownKid(Some("no-such-key".into()))
            }
            ("RS256", Some(kid)) if kid == ec_key().kid() => LogoutTokenError::KeyAlgorithmMismatch {
                kid: kid.into(),
                alg: oidc_core::jose::Algorithm::RS256,
            },
            ("ES256", Some(kid)) if kid == rsa_key().kid() => LogoutTokenError::KeyAlgorithmMismatch {
                kid: kid.into(),
                alg: oidc_core::jose::Algorithm::ES256,
            },
            ("RS256" | "ES256", _) => LogoutTokenError::BadSignature,
            (other, _) => LogoutTokenError::UnsupportedAlgorithm(other.into()),
        };
        prop_assert_eq!(err, expected);
    }

    #[test]
    fn re_signed_headers_are_judged_by_their_typ(h in header_value(), ec in any::<bool>()) {
        // The header is signed this time: only `typ` (and the header checks) decide.
        let key = key(ec);
        let mut h = h;
        h["alg"] = json!(key.algorithm().as_str());
        h["kid"] = json!(key.kid());
        h.as_object_mut().unwrap().remove("crit");
        // With `sub`, so that only the logout event keeps the ID-token verifier from accepting.
        let claims = LogoutTokenClaims::new(
            issuer(), Audience::Single(client()), Some(Subject::new("u")), Some("s".into()), now(), now() + 60,
        );
        let token = forge_with_key(key, &h, &claims);
        let result = logout_verifier().verify(&token);
        match h["typ"].as_str() {
            None | Some("logout+jwt" | "application/logout+jwt") => prop_assert!(result.is_ok()),
            Some(other) => prop_assert_eq!(result.unwrap_err(), LogoutTokenError::WrongType(other.into())),
        }
        // Never an ID token: refused by type, or by its logout event.
        let id_result = id_verifier().verify(&token, None, None);
        match h["typ"].as_str() {
            Some("logout+jwt" | "application/logout+jwt") => {
                prop_assert!(matches!(id_result, Err(VerifyError::WrongType(_))), "{id_result:?}")
            }
            _ => prop_assert!(matches!(id_result, Err(VerifyError::InvalidClaims(_))), "{id_result:?}"),
        }
    }

    #[test]
    fn logout_claims_get_the_error_the_rules_give(fields in logout_fields(), ec in any::<bool>()) {
        let mut payload = serde_json::Map::new();
        for (name, (value, _)) in FIELD_NAMES.iter().zip(&fields) {
            if let Some(v) = value {
                payload.insert((*name).to_owned(), v.clone());
            }
        }
        let key = key(ec);
        let header = json!({"alg": key.algorithm().as_str(), "typ": LOGOUT_TOKEN_TYPE, "kid": key.kid()});
        let token = forge_with_key(key, &header, &Value::Object(payload));
        let result = logout_verifier().verify_at(&token, NOW);
        match (expected_logout_error(&fields), result) {
            (None, Ok(verified)) => {
                prop_assert!(verified.claims.sub.is_some() || verified.claims.sid.is_some());
                prop_assert!(!verified.claims.jti.is_empty());
                prop_assert!(verified.keep_jti_until >= NOW);
            }
            (Some(LogoutTokenError::InvalidClaims(_)), Err(LogoutTokenError::InvalidClaims(_))) => {}
            (Some(expected), Err(err)) => {
                prop_assert_eq!(err.http_status(), 400);
                prop_assert_eq!(err, expected);
            }
            (expected, got) => prop_assert!(false, "expected {expected:?}, got {got:?}"),
        }
    }

    #[test]
    fn logout_verifier_never_panics_on_arbitrary_text(token in ".{0,300}") {
        let err = logout_verifier().verify(&token).unwrap_err();
        prop_assert!(matches!(err, LogoutTokenError::Malformed(_) | LogoutTokenError::UnsupportedAlgorithm(_)), "{err:?}");
    }

    #[test]
    fn mutated_key_sets_verify_or_give_a_key_error(
        index in any::<prop::sample::Index>(),
        member in any::<prop::sample::Index>(),
        replacement in replacement_value(),
        ec in any::<bool>(),
    ) {
        let set = serde_json::to_value(jwks(&[rsa_key(), ec_key()])).unwrap();
        let mut keys = set["keys"].as_array().unwrap().clone();
        let i = index.index(keys.len());
        keys[i] = mutate_member(&keys[i], member, replacement);
        let text = json!({"keys": keys}).to_string();
        let token = valid_id_token(ec);
        match serde_json::from_str::<JwkSet>(&text) {
            Ok(set) => {
                let result = IdTokenVerifier::new(issuer(), client(), set).verify(&token, Some(&nonce()), None);
                prop_assert!(matches!(
                    result,
                    Ok(_) | Err(VerifyError::UnknownKid(_) | VerifyError::KeyAlgorithmMismatch { .. } | VerifyError::BadSignature)
                ), "{text}: {result:?}");
            }
            Err(e) => prop_assert!(e.is_data() || e.is_syntax(), "{e}"),
        }
    }

    #[test]
    fn mutated_token_responses_parse_only_when_well_typed(
        member in any::<prop::sample::Index>(), replacement in replacement_value(),
    ) {
        let doc = mutate_member(&token_response_document(), member, replacement);
        match serde_json::from_value::<TokenResponse>(doc.clone()) {
            Ok(parsed) => {
                // What parses round-trips, and the required members are there.
                let again: TokenResponse = serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
                prop_assert_eq!(again, parsed);
                prop_assert!(doc.get("access_token").is_some() && doc.get("token_type").is_some());
            }
            Err(e) => prop_assert!(e.is_data(), "{e}"),
        }
    }

    #[test]
    fn mutated_error_responses_parse_only_with_a_known_code(
        code in prop_oneof![prop::sample::select(ErrorCode::ALL.to_vec()).prop_map(|c| json!(c.as_str())), replacement_value().prop_map(|v| v.unwrap_or(Value::Null))],
        description in replacement_value(),
    ) {
        let mut doc = json!({"error": code.clone()});
        if let Some(d) = description {
            doc["error_description"] = d;
        }
        match serde_json::from_value::<ErrorResponse>(doc.clone()) {
            Ok(parsed) => {
                prop_assert_eq!(Some(parsed.error), code.as_str().and_then(ErrorCode::parse));
                prop_assert!(parsed.http_status() >= 400);
            }
            Err(e) => {
                prop_assert!(e.is_data(), "{e}");
                let known = code.as_str().and_then(ErrorCode::parse).is_some();
                let description_ok = matches!(doc.get("error_description"), None | Some(Value::Null | Value::String(_)));
                prop_assert!(!(known && description_ok), "{doc}: {e}");
            }
        }
    }

    #[test]
    fn mutated_discovery_documents_parse_only_when_well_typed(
        member in any::<prop::sample::Index>(), replacement in replacement_value(),
    ) {
        let original = metadata_document();
        let doc = mutate_member(&original, member, replacement);
        match serde_json::from_value::<ProviderMetadata>(doc.clone()) {
            Ok(parsed) => {
                let again: ProviderMetadata = serde_json::from_value(serde_json::to_value(&parsed).unwrap()).unwrap();
                prop_assert_eq!(&again, &parsed);
                for required in ["issuer", "authorization_endpoint", "jwks_uri", "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported"] {
                    prop_assert!(doc.get(required).is_some_and(|v| !v.is_null()), "{required} missing but parsed");
                }
                if let Some(flag) = doc.get("backchannel_logout_supported") {
                    prop_assert_eq!(parsed.backchannel_logout_supported, flag.as_bool());
                }
            }
            Err(e) => prop_assert!(e.is_data(), "{e}"),
        }
    }

    #[test]
    fn mutated_pkce_values_give_their_documented_errors(
        verifier in "[A-Za-z0-9._~-]{43,128}",
        index in any::<prop::sample::Index>(),
        c in any::<char>(),
        on_challenge in any::<bool>(),
    ) {
        let verifier = CodeVerifier::parse(verifier).unwrap();
        let challenge = CodeChallenge::from_verifier(&verifier);
        let original = if on_challenge { challenge.as_str().to_owned() } else { verifier.secret().to_owned() };
        let mut chars: Vec<char> = original.chars().collect();
        let i = index.index(chars.len());
        prop_assume!(chars[i] != c);
        chars[i] = c;
        let mutated: String = chars.into_iter().collect();
        let allowed = |ch: char| ch.is_ascii_alphanumeric() || "-._~".contains(ch);
        if on_challenge {
            match CodeChallenge::parse(&mutated) {
                Ok(other) => {
                    prop_assert!(c.is_ascii_alphanumeric() || c == '-' || c == '_');
                    prop_assert!(!other.verify(&verifier));
                }
                Err(e) => prop_assert_eq!(e, PkceError::MalformedChallenge),
            }
        } else {
            match CodeVerifier::parse(mutated) {
                Ok(other) => {
                    prop_assert!(allowed(c));
                    prop_assert!(!challenge.verify(&other));
                }
                Err(e) => {
                    prop_assert!(!allowed(c));
                    prop_assert_eq!(e, PkceError::MalformedVerifier);
                }
            }
        }
    }
}
