//! Wire shapes: what each type reads and writes, and how bad values are refused.

use oidc_core::claims::{Audience, IdTokenClaims, StandardClaims, UserInfo};
use oidc_core::discovery::ProviderMetadata;
use oidc_core::error::{AuthorizationError, AuthorizationResponse, ErrorCode, ErrorResponse};
use oidc_core::jwk::JwkSet;
use oidc_core::pkce::{CodeChallenge, CodeChallengeMethod, CodeVerifier, PkceError};
use oidc_core::token::{TokenRequest, TokenRequestError, TokenResponse, TokenType};
use oidc_core::types::*;
use serde_json::json;

use crate::common::*;

#[test]
fn absent_claims_are_left_out_never_null() {
    let c = IdTokenClaims::new(issuer(), Subject::new("s"), client().into(), 1, 2);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(
        json,
        json!({"iss": ISSUER, "sub": "s", "aud": CLIENT, "exp": 2, "iat": 1})
    );
    let info = UserInfo {
        sub: Subject::new("s"),
        claims: StandardClaims {
            email: Some("a@b.c".into()),
            ..Default::default()
        },
    };
    assert_eq!(
        serde_json::to_value(&info).unwrap(),
        json!({"sub": "s", "email": "a@b.c"})
    );
    let full = serde_json::to_string(&claims()).unwrap();
    assert!(!full.contains("null"));
    // null from another implementation reads as absent.
    let read: IdTokenClaims = serde_json::from_value(json!({
        "iss": ISSUER, "sub": "s", "aud": CLIENT, "exp": 2, "iat": 1,
        "nonce": null, "email": null, "auth_time": null, "extra": {"x": 1}
    }))
    .unwrap();
    assert_eq!(read, c);
}

#[test]
fn audience_reads_string_or_array() {
    let one: Audience = serde_json::from_value(json!("a")).unwrap();
    let many: Audience = serde_json::from_value(json!(["a", "b"])).unwrap();
    assert_eq!(one, Audience::Single(ClientId::new("a")));
    assert!(many.contains(&ClientId::new("b")) && !many.contains(&ClientId::new("c")));
    assert_eq!(many.len(), 2);
    assert!(serde_json::from_value::<Audience>(json!(7)).is_err());
    assert!(serde_json::from_value::<Audience>(json!([""])).is_err());
}

#[test]
fn secrets_redact_debug_hash_and_compare() {
    let code = AuthorizationCode::generate();
    assert_eq!(code.secret().len(), 43);
    assert!(
        code.secret()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    assert_ne!(code, AuthorizationCode::generate());
    assert_eq!(format!("{code:?}"), "AuthorizationCode([redacted])");
    let token = AccessToken::new("sekrit-value");
    assert!(!format!("{token:?}").contains("sekrit"));
    assert!(!format!("{:?}", ClientSecret::new("sekrit")).contains("sekrit"));
    assert!(!format!("{:?}", RefreshToken::new("sekrit")).contains("sekrit"));
    assert!(!format!("{:?}", CodeVerifier::generate()).contains('-'));
    assert_eq!(AccessToken::new("x"), AccessToken::new("x"));
    assert_ne!(AccessToken::new("x"), AccessToken::new("y"));
    // SHA-256("abc"), base64url without padding.
    let hash = RefreshToken::new("abc").hash();
    assert_eq!(hash.as_str(), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
    assert!(RefreshToken::new("abc").matches_hash(&TokenHash::from_stored(hash.as_str())));
    assert!(!RefreshToken::new("abd").matches_hash(&hash));
    assert_eq!(ClientSecret::new("abc").hash(), hash);
    // Parsing checks length and characters.
    assert!(AccessToken::parse("").is_err());
    assert!(AccessToken::parse("a\u{7f}").is_err());
    assert!(AccessToken::parse(&"a".repeat(MAX_SECRET_LEN + 1)).is_err());
    AccessToken::parse(&"a".repeat(MAX_SECRET_LEN)).unwrap();
}

#[test]
fn state_and_nonce_generate_and_compare() {
    let s = State::generate();
    assert_eq!(s.as_str().len(), 43);
    assert!(s.ct_eq(&State::new(s.as_str())));
    assert!(!s.ct_eq(&State::generate()));
    assert!(Nonce::parse("").is_err());
    assert!(Nonce::parse("ok value").is_ok());
    assert!(Nonce::parse("caf\u{e9}").is_err());
    assert!(serde_json::from_value::<Nonce>(json!("")).is_err());
}

#[test]
fn redirect_uris_compare_byte_for_byte_and_refuse_fragments() {
    let a = RedirectUri::parse("https://app.example.com/cb").unwrap();
    for other in [
        "https://APP.example.com/cb",
        "https://app.example.com:443/cb",
        "https://app.example.com/cb/",
        "https://app.example.com/cb?x=1",
        "https://user@app.example.com/cb",
        "https://app.example.com/x/../cb",
    ] {
        let b = RedirectUri::parse(other).unwrap();
        assert_ne!(a, b, "{other}");
    }
    assert_eq!(a, RedirectUri::parse("https://app.example.com/cb").unwrap());
    assert_eq!(a.url().host_str(), Some("app.example.com"));
    assert!(matches!(
        RedirectUri::parse("https://app.example.com/cb#frag"),
        Err(ParseError::ForbiddenUrlPart { .. })
    ));
    assert!(matches!(
        RedirectUri::parse("/cb"),
        Err(ParseError::InvalidUrl { .. })
    ));
    assert!(RedirectUri::parse("").is_err());
    // A custom scheme of a native app is a URI too.
    RedirectUri::parse("com.example.app:/callback").unwrap();
}

#[test]
fn issuer_urls_join_paths_and_refuse_queries() {
    for raw in ["https://id.example.com", "https://id.example.com/"] {
        let i = IssuerUrl::parse(raw).unwrap();
        assert_eq!(i.as_str(), raw);
        assert_eq!(
            i.join_path("oauth/token").unwrap().as_str(),
            "https://id.example.com/oauth/token"
        );
        assert_eq!(
            i.join_path("/oauth/token").unwrap().as_str(),
            "https://id.example.com/oauth/token"
        );
    }
    let tenant = IssuerUrl::parse("https://id.example.com/tenant").unwrap();
    assert_eq!(
        ProviderMetadata::well_known_url(&tenant).unwrap().as_str(),
        "https://id.example.com/tenant/.well-known/openid-configuration"
    );
    assert_ne!(
        IssuerUrl::parse("https://id.example.com").unwrap(),
        IssuerUrl::parse("https://id.example.com/").unwrap()
    );
    for bad in [
        "https://id.example.com?x=1",
        "https://id.example.com#f",
        "ftp://id.example.com",
        "https://u:p@id.example.com",
        "id.example.com",
    ] {
        assert!(IssuerUrl::parse(bad).is_err(), "{bad}");
    }
    IssuerUrl::parse("http://127.0.0.1:8000").unwrap();
}

#[test]
fn scopes_parse_display_and_compare() {
    let s = Scopes::parse("openid  profile email openid").unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.to_string(), "email openid profile");
    assert!(s.contains("openid") && !s.contains("offline_access"));
    assert!(Scopes::parse("openid email").unwrap().is_subset(&s));
    assert!(!Scopes::parse("openid admin").unwrap().is_subset(&s));
    assert!(Scopes::parse("").unwrap().is_empty());
    for bad in ["open\"id", "a\\b", "caf\u{e9}", "tab\there"] {
        assert!(
            matches!(Scopes::parse(bad), Err(ParseError::InvalidScope(_))),
            "{bad}"
        );
    }
    let many = (0..65)
        .map(|i| format!("s{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(Scopes::parse(&many).is_err());
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!("email openid profile")
    );
    let back: Scopes = serde_json::from_value(json!("email openid profile")).unwrap();
    assert_eq!(back, s);
    let i = s.intersection(&Scopes::parse("email admin").unwrap());
    assert_eq!(i.to_string(), "email");
}

#[test]
fn pkce_rules() {
    assert_eq!(
        CodeVerifier::parse("a".repeat(42)).unwrap_err(),
        PkceError::MalformedVerifier
    );
    CodeVerifier::parse("a".repeat(43)).unwrap();
    CodeVerifier::parse("a".repeat(128)).unwrap();
    assert!(CodeVerifier::parse("a".repeat(129)).is_err());
    assert!(CodeVerifier::parse(format!("{}+", "a".repeat(50))).is_err());
    let v = CodeVerifier::generate();
    assert_eq!(v.secret().len(), 43);
    assert!(CodeVerifier::parse(v.secret().to_owned()).is_ok());
    assert!(CodeChallenge::from_verifier(&v).verify(&v));
    assert_eq!(
        CodeChallengeMethod::parse("S256"),
        Ok(CodeChallengeMethod::S256)
    );
    assert_eq!(
        CodeChallengeMethod::parse("plain"),
        Err(PkceError::PlainNotSupported)
    );
    assert_eq!(
        CodeChallengeMethod::parse("s256"),
        Err(PkceError::UnknownMethod)
    );
    assert!(CodeChallenge::parse(&"a".repeat(42)).is_err());
    assert!(CodeChallenge::parse(&"a".repeat(44)).is_err());
    assert!(CodeChallenge::parse(&format!("{}=", "a".repeat(42))).is_err());
}

#[test]
fn token_request_reads_authorization_code_form() {
    let v = CodeVerifier::generate();
    let body = format!(
        "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&code_verifier={}&client_id=webapp&client_secret=s3cr%2Bt&unknown=1",
        v.secret()
    );
    match TokenRequest::from_form(body.as_bytes()).unwrap() {
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
            client_id,
            client_secret,
        } => {
            assert_eq!(code.secret(), "abc");
            assert_eq!(redirect_uri.unwrap().as_str(), "https://app.example.com/cb");
            assert_eq!(code_verifier.unwrap().secret(), v.secret());
            assert_eq!(client_id, Some(ClientId::new("webapp")));
            assert_eq!(client_secret.unwrap().secret(), "s3cr+t");
        }
        other => panic!("{other:?}"),
    }
    // Empty values count as absent.
    let r = TokenRequest::from_form(
        b"grant_type=authorization_code&code=abc&code_verifier=&client_id=",
    )
    .unwrap();
    assert_eq!(r.client_id(), None);
    assert!(matches!(
        r,
        TokenRequest::AuthorizationCode {
            code_verifier: None,
            ..
        }
    ));
}

#[test]
fn token_request_reads_refresh_form() {
    let r =
        TokenRequest::from_form(b"grant_type=refresh_token&refresh_token=rt&scope=openid+email")
            .unwrap();
    assert_eq!(r.grant_type(), "refresh_token");
    match r {
        TokenRequest::RefreshToken {
            refresh_token,
            scope,
            ..
        } => {
            assert_eq!(refresh_token.secret(), "rt");
            assert_eq!(scope.unwrap().to_string(), "email openid");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn token_request_errors_name_the_problem_and_their_code() {
    let cases: &[(&[u8], TokenRequestError, ErrorCode)] = &[
        (
            b"code=abc",
            TokenRequestError::MissingGrantType,
            ErrorCode::InvalidRequest,
        ),
        (
            b"grant_type=password&username=a",
            TokenRequestError::UnsupportedGrantType("password".into()),
            ErrorCode::UnsupportedGrantType,
        ),
        (
            b"grant_type=client_credentials",
            TokenRequestError::UnsupportedGrantType("client_credentials".into()),
            ErrorCode::UnsupportedGrantType,
        ),
        (
            b"grant_type=authorization_code",
            TokenRequestError::MissingParameter("code"),
            ErrorCode::InvalidRequest,
        ),
        (
            b"grant_type=refresh_token",
            TokenRequestError::MissingParameter("refresh_token"),
            ErrorCode::InvalidRequest,
        ),
        (
            b"grant_type=authorization_code&code=a&code=b",
            TokenRequestError::RepeatedParameter("code".into()),
            ErrorCode::InvalidRequest,
        ),
        (
            b"grant_type=authorization_code&code=a\xff",
            TokenRequestError::MalformedBody,
            ErrorCode::InvalidRequest,
        ),
        (
            b"grant_type=authorization_code&code=a%FF",
            TokenRequestError::MalformedBody,
            ErrorCode::InvalidRequest,
        ),
    ];
    for (body, err, code) in cases {
        let got = TokenRequest::from_form(body).unwrap_err();
        assert_eq!(&got, err, "{}", String::from_utf8_lossy(body));
        assert_eq!(got.error_code(), *code);
    }
    let bad_verifier =
        TokenRequest::from_form(b"grant_type=authorization_code&code=a&code_verifier=short")
            .unwrap_err();
    assert!(matches!(
        bad_verifier,
        TokenRequestError::InvalidParameter {
            name: "code_verifier",
            ..
        }
    ));
    let bad_scope =
        TokenRequest::from_form(b"grant_type=refresh_token&refresh_token=r&scope=a%22b")
            .unwrap_err();
    assert_eq!(bad_scope.error_code(), ErrorCode::InvalidScope);
    let bad_uri =
        TokenRequest::from_form(b"grant_type=authorization_code&code=a&redirect_uri=nope")
            .unwrap_err();
    assert!(matches!(
        bad_uri,
        TokenRequestError::InvalidParameter {
            name: "redirect_uri",
            ..
        }
    ));
    let huge = vec![b'a'; oidc_core::token::MAX_FORM_LEN + 1];
    assert_eq!(
        TokenRequest::from_form(&huge).unwrap_err(),
        TokenRequestError::MalformedBody
    );
}

#[test]
fn token_request_serializes_tagged_by_grant_type() {
    let r = TokenRequest::RefreshToken {
        refresh_token: RefreshToken::new("rt"),
        scope: None,
        client_id: Some(client()),
        client_secret: None,
    };
    let value = serde_json::to_value(&r).unwrap();
    assert_eq!(
        value,
        json!({"grant_type": "refresh_token", "refresh_token": "rt", "client_id": CLIENT})
    );
    let back: TokenRequest = serde_json::from_value(value).unwrap();
    assert_eq!(back, r);
}

#[test]
fn token_response_shape() {
    let mut r = TokenResponse::bearer(AccessToken::new("at"));
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"access_token": "at", "token_type": "Bearer"})
    );
    r.expires_in = Some(60);
    r.scope = Some(Scopes::parse("openid").unwrap());
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        json!({"access_token": "at", "token_type": "Bearer", "expires_in": 60, "scope": "openid"})
    );
    let lower: TokenResponse =
        serde_json::from_value(json!({"access_token": "at", "token_type": "bearer"})).unwrap();
    assert_eq!(lower.token_type, TokenType::Bearer);
    assert!(
        serde_json::from_value::<TokenResponse>(json!({"access_token": "at", "token_type": "mac"}))
            .is_err()
    );
}

#[test]
fn error_codes_know_their_status_and_name() {
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
    assert_eq!(ErrorCode::InvalidClient.http_status(), 401);
    assert_eq!(ErrorCode::InvalidToken.http_status(), 401);
    assert_eq!(ErrorCode::InsufficientScope.http_status(), 403);
    assert_eq!(ErrorCode::InvalidGrant.http_status(), 400);
    assert_eq!(ErrorCode::InvalidRequest.http_status(), 400);
    assert_eq!(ErrorCode::UnsupportedGrantType.http_status(), 400);
    assert_eq!(ErrorCode::ServerError.http_status(), 500);
    assert_eq!(ErrorCode::TemporarilyUnavailable.http_status(), 503);
    assert_eq!(ErrorCode::parse("nope"), None);
}

#[test]
fn error_response_shape_and_bearer_challenge() {
    let e = ErrorResponse::new(ErrorCode::InvalidGrant);
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"error": "invalid_grant"})
    );
    let e =
        ErrorResponse::new(ErrorCode::InvalidToken).with_description("the \"token\" is\nexpired\\");
    assert_eq!(
        e.error_description.as_deref(),
        Some("the 'token' is expired/")
    );
    assert_eq!(e.http_status(), 401);
    assert_eq!(
        e.bearer_challenge(),
        "Bearer error=\"invalid_token\", error_description=\"the 'token' is expired/\""
    );
    assert_eq!(e.to_string(), "invalid_token: the 'token' is expired/");
}

#[test]
fn authorization_redirects_carry_state_and_iss() {
    let redirect = RedirectUri::parse("https://app.example.com/cb?tenant=1").unwrap();
    let code = AuthorizationCode::new("the-code");
    let state = State::new("st ate&=");
    let ok = AuthorizationResponse {
        code: &code,
        state: Some(&state),
        iss: &issuer(),
    }
    .redirect_url(&redirect);
    let pairs: Vec<(String, String)> = ok.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("tenant", "1"),
            ("code", "the-code"),
            ("state", "st ate&="),
            ("iss", ISSUER)
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let err = AuthorizationError::new(ErrorCode::AccessDenied, Some(state.clone()), issuer())
        .with_description("user said no")
        .redirect_url(&redirect);
    let pairs: Vec<(String, String)> = err.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("tenant", "1"),
            ("error", "access_denied"),
            ("error_description", "user said no"),
            ("state", "st ate&="),
            ("iss", ISSUER)
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let no_state = AuthorizationError::new(ErrorCode::LoginRequired, None, issuer())
        .redirect_url(&RedirectUri::parse("http://127.0.0.1:3000/cb").unwrap());
    assert_eq!(
        no_state.as_str(),
        "http://127.0.0.1:3000/cb?error=login_required&iss=https%3A%2F%2Fid.example.com"
    );
}

#[test]
fn discovery_metadata_leaves_out_absent_fields() {
    let i = issuer();
    let m = ProviderMetadata::new(
        i.clone(),
        i.join_path("a").unwrap(),
        i.join_path("j").unwrap(),
    );
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://id.example.com/a",
            "jwks_uri": "https://id.example.com/j",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    );
}

#[test]
fn jwk_sets_skip_unknown_keys_and_never_write_private_members() {
    let mut private = serde_json::to_value(rsa_key().public_jwk()).unwrap();
    private["d"] = json!("private-exponent");
    let set: JwkSet = serde_json::from_value(json!({"keys": [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
        {"kty": "RSA", "n": 5},
        private,
    ]}))
    .unwrap();
    assert_eq!(set.keys, vec![rsa_key().public_jwk()]);
    assert!(
        !serde_json::to_string(&set)
            .unwrap()
            .contains("private-exponent")
    );
    assert!(serde_json::from_value::<JwkSet>(json!({"keys": 1})).is_err());
    assert!(serde_json::from_value::<JwkSet>(json!([])).is_err());
    assert_eq!(set.find(rsa_key().kid()).unwrap().key_type(), "RSA");
    assert!(set.find("nope").is_none());
}

#[test]
fn token_request_works_with_serde_urlencoded_both_ways() {
    // What a framework's form extractor does with the derived Deserialize.
    let v = CodeVerifier::generate();
    let body = format!(
        "grant_type=authorization_code&code=c0de&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcb&code_verifier={}&extra=ignored",
        v.secret()
    );
    let parsed: TokenRequest = serde_urlencoded::from_str(&body).unwrap();
    assert_eq!(parsed, TokenRequest::from_form(body.as_bytes()).unwrap());
    // What a client sends, read back by the strict parser.
    let request = TokenRequest::RefreshToken {
        refresh_token: RefreshToken::new("r t+&"),
        scope: Some(Scopes::parse("openid email").unwrap()),
        client_id: Some(client()),
        client_secret: Some(ClientSecret::new("s3cret")),
    };
    let form = serde_urlencoded::to_string(&request).unwrap();
    assert_eq!(
        form,
        "grant_type=refresh_token&refresh_token=r+t%2B%26&scope=email+openid&client_id=webapp&client_secret=s3cret"
    );
    assert_eq!(TokenRequest::from_form(form.as_bytes()).unwrap(), request);
    assert!(serde_urlencoded::from_str::<TokenRequest>("grant_type=password").is_err());
}
