//! The token endpoint: every row of the token table of docs/security.md, and the ID token.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, WWW_AUTHENTICATE};

use crate::helpers::{
    CLIENT_ID, CLIENT_SECRET, ClientSpec, Consent, Pkce, REDIRECT_URI, TestApp, USER_PASSWORD,
    USER_USERNAME, jwt_claims, spawn_app, spawn_app_with,
};

/// Checks the RFC 6749 §5.2 shape and returns the error code.
async fn error_of(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "JSON body"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error_description"].is_string() || body.get("error_description").is_none());
    body["error"].as_str().expect("error member").to_owned()
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> StatusCode {
    app.http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn code_used_twice_is_invalid_grant_and_revokes_tokens_from_first_use() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let first = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: serde_json::Value = first.json().await.unwrap();
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, access).await, StatusCode::OK);

    let second = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(
        error_of(second, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    assert_eq!(
        userinfo_status(&app, access).await,
        StatusCode::UNAUTHORIZED
    );
    let refreshed = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        error_of(refreshed, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn expired_code_is_invalid_grant() {
    let app = spawn_app_with(|s| s.code_ttl_secs = 1).await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let response = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(
        error_of(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn code_lifetime_defaults_to_60_seconds() {
    let app = spawn_app().await;
    assert_eq!(app.state.settings.code_ttl_secs, 60);
    let browser = app.new_browser();
    let (code, _) = app.code_for_alice(&browser).await;
    let hash = oidc_core::types::TokenHash::of(&code).into_string();
    let row = {
        let mut conn = app.state.db.conn().unwrap();
        provider::storage::grants::find_code(&mut conn, &hash)
            .unwrap()
            .unwrap()
    };
    assert_eq!(row.expires_at - row.created_at, 60);
}

#[tokio::test]
async fn code_issued_to_client_a_redeemed_by_client_b_is_invalid_grant() {
    let app = spawn_app().await;
    let other_secret = app.add_client(ClientSpec::confidential("other")).unwrap();
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let response = app
        .token_request(
            ("other", &other_secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(
        error_of(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    // The rightful client can still redeem it.
    assert_eq!(
        app.exchange(&code, &pkce.verifier).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn redirect_uri_differing_from_the_authorization_request_is_invalid_grant() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    for redirect_uri in [
        crate::helpers::SECOND_REDIRECT_URI,
        "http://127.0.0.1:3000/api/auth/callback/provider/",
    ] {
        let (code, pkce) = app.code_for_alice(&browser).await;
        let response = app
            .token_request(
                (CLIENT_ID, CLIENT_SECRET),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", &pkce.verifier),
                ],
            )
            .await;
        assert_eq!(
            error_of(response, StatusCode::BAD_REQUEST).await,
            "invalid_grant"
        );
    }
    // Left out while two URIs are registered: also refused.
    let (code, pkce) = app.code_for_alice(&browser).await;
    let response = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(
        error_of(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn code_verifier_missing_wrong_or_malformed_is_rejected() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, _) = app.code_for_alice(&browser).await;
    let request = |verifier: Option<String>| {
        let code = code.clone();
        let app = &app;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", REDIRECT_URI.to_owned()),
            ];
            if let Some(v) = verifier {
                form.push(("code_verifier", v));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.token_request((CLIENT_ID, CLIENT_SECRET), &form).await
        }
    };
    assert_eq!(
        error_of(request(None).await, StatusCode::BAD_REQUEST).await,
        "invalid_request"
    );
    for malformed in [
        "short".to_owned(),
        "a".repeat(129),
        format!("{}!", "a".repeat(50)),
        "é".repeat(43),
    ] {
        assert_eq!(
            error_of(
                request(Some(malformed.clone())).await,
                StatusCode::BAD_REQUEST
            )
            .await,
            "invalid_request",
            "{malformed}"
        );
    }
    // Well formed but not the one: the code is burnt, as for any failed redemption.
    let wrong = Pkce::new().verifier;
    assert_eq!(
        error_of(request(Some(wrong)).await, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn code_verifier_sent_when_no_challenge_was_made_is_rejected() {
    // No code is ever issued without a challenge (S256 is required at the authorization
    // endpoint), so a downgrade has nothing to redeem: a verifier for a request without challenge
    // never produces tokens.
    let app = spawn_app().await;
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(
                &pkce,
                &[("code_challenge", ""), ("code_challenge_method", "")],
            ),
            None,
            Consent::Authorize,
        )
        .await;
    assert_eq!(outcome.param("error").as_deref(), Some("invalid_request"));
    assert!(outcome.param("code").is_none());
    // And a code made with one challenge does not accept a verifier made for no challenge.
    let (code, _) = app.code_for_alice(&browser).await;
    let response = app.exchange(&code, &"x".repeat(43)).await;
    assert_eq!(
        error_of(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn wrong_secret_unknown_client_or_both_auth_methods_is_401_invalid_client() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let check = |response: reqwest::Response| async move {
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(challenge.starts_with("Basic"), "{challenge}");
        assert_eq!(
            error_of(response, StatusCode::UNAUTHORIZED).await,
            "invalid_client"
        );
    };
    check(app.token_request((CLIENT_ID, "wrong-secret"), &form).await).await;
    check(app.token_request(("nobody", CLIENT_SECRET), &form).await).await;
    // Basic and post at once.
    let mut both = form.to_vec();
    both.push(("client_secret", CLIENT_SECRET));
    check(app.token_request((CLIENT_ID, CLIENT_SECRET), &both).await).await;
    // Post with a wrong secret, and no authentication at all.
    let mut post = form.to_vec();
    post.extend([("client_id", CLIENT_ID), ("client_secret", "nope")]);
    check(
        app.http
            .post(app.url("/oauth/token"))
            .form(&post)
            .send()
            .await
            .unwrap(),
    )
    .await;
    check(
        app.http
            .post(app.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A malformed Basic header.
    check(
        app.http
            .post(app.url("/oauth/token"))
            .header("authorization", "Basic !!!")
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // After all that, the code still works with client_secret_post.
    let mut ok = form.to_vec();
    ok.extend([("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]);
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .form(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn unsupported_grant_type_missing_parameters_non_utf8_or_huge_body_is_400_json() {
    let app = spawn_app().await;
    let post = |body: Vec<u8>, content_type: &'static str| {
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            b"grant_type=password&username=a&password=b".to_vec(),
            form,
            "unsupported_grant_type",
        ),
        (
            b"grant_type=client_credentials".to_vec(),
            form,
            "unsupported_grant_type",
        ),
        (b"code=abc".to_vec(), form, "invalid_request"),
        (
            b"grant_type=authorization_code".to_vec(),
            form,
            "invalid_request",
        ),
        (
            b"grant_type=refresh_token".to_vec(),
            form,
            "invalid_request",
        ),
        (
            b"grant_type=authorization_code&code=\xff\xfe&code_verifier=x".to_vec(),
            form,
            "invalid_request",
        ),
        (
            b"grant_type=authorization_code&code=%FF%FE".to_vec(),
            form,
            "invalid_request",
        ),
        (
            b"grant_type=refresh_token&grant_type=refresh_token".to_vec(),
            form,
            "invalid_request",
        ),
        (
            format!(
                "grant_type=refresh_token&refresh_token={}",
                "a".repeat(100_000)
            )
            .into_bytes(),
            form,
            "invalid_request",
        ),
        (
            b"{\"grant_type\":\"authorization_code\"}".to_vec(),
            "application/json",
            "invalid_request",
        ),
        (b"".to_vec(), form, "invalid_request"),
    ];
    for (body, content_type, expected) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let response = post(body, content_type).await.unwrap();
        assert_eq!(
            error_of(response, StatusCode::BAD_REQUEST).await,
            expected,
            "{shown}"
        );
    }
    // GET is not a token request.
    let response = app.http.get(app.url("/oauth/token")).send().await.unwrap();
    assert!(response.status().is_client_error());
}

#[tokio::test]
async fn refresh_token_of_client_a_used_by_client_b_is_invalid_grant() {
    let app = spawn_app().await;
    let other_secret = app.add_client(ClientSpec::confidential("other")).unwrap();
    let tokens = app.tokens_for_alice().await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let response = app
        .token_request(
            ("other", &other_secret),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(
        error_of(response, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    // Still good for its own client.
    let response = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn rotated_refresh_token_used_again_is_invalid_grant_and_revokes_the_grant() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    let refresh = |token: String| {
        let app = &app;
        async move {
            app.token_request(
                (CLIENT_ID, CLIENT_SECRET),
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let rotated = refresh(first_refresh.to_owned()).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    assert_eq!(rotated.headers()[CACHE_CONTROL], "no-store");
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    let second_refresh = rotated["refresh_token"].as_str().unwrap().to_owned();
    let second_access = rotated["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(userinfo_status(&app, &second_access).await, StatusCode::OK);

    let reuse = refresh(first_refresh.to_owned()).await;
    assert_eq!(
        error_of(reuse, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    // The whole grant is gone: the newest tokens too.
    assert_eq!(
        userinfo_status(&app, &second_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        error_of(refresh(second_refresh).await, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    assert_eq!(
        userinfo_status(&app, tokens["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn refresh_asking_for_more_scope_than_granted_is_invalid_scope() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", "openid email offline_access")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let tokens: serde_json::Value = app
        .exchange(&outcome.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let response = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("scope", "openid profile"),
            ],
        )
        .await;
    assert_eq!(
        error_of(response, StatusCode::BAD_REQUEST).await,
        "invalid_scope"
    );
    // Narrowing works, and the next refresh token keeps the full grant.
    let response = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("scope", "openid"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let narrowed: serde_json::Value = response.json().await.unwrap();
    assert_eq!(narrowed["scope"], "openid");
    let userinfo: serde_json::Value = app
        .http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(narrowed["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(userinfo.get("email").is_none(), "{userinfo}");
    let response = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", narrowed["refresh_token"].as_str().unwrap()),
                ("scope", "openid email"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_token_response_is_no_store_json_with_rfc6749_shape() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let response = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["scope"].as_str().unwrap().contains("openid"));
    for field in ["access_token", "refresh_token"] {
        // At least 256 bits of randomness: 43 base64url characters.
        let token = body[field].as_str().unwrap();
        assert!(token.len() >= 43, "{field}: {token}");
    }
    // Only hashes are stored.
    let mut conn = app.state.db.conn().unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert!(
        provider::storage::grants::find_access_token(&mut conn, access)
            .unwrap()
            .is_none()
    );
    assert!(
        provider::storage::grants::find_access_token(
            &mut conn,
            &oidc_core::types::TokenHash::of(access).into_string()
        )
        .unwrap()
        .is_some()
    );
    let error = app.exchange("nonsense", &pkce.verifier).await;
    assert_eq!(
        error_of(error, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}

#[tokio::test]
async fn id_token_carries_the_required_and_scoped_claims() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let claims = jwt_claims(id_token);
    assert_eq!(claims["iss"], app.issuer());
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["azp"], CLIENT_ID);
    assert_eq!(claims["nonce"], "nonce-456");
    assert!(claims["sub"].is_string());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    assert!(claims["auth_time"].as_i64().unwrap() <= iat);
    assert_eq!(claims["name"], "Alice Example");
    assert_eq!(claims["given_name"], "Alice");
    assert_eq!(claims["family_name"], "Example");
    assert_eq!(claims["preferred_username"], USER_USERNAME);
    assert_eq!(claims["email"], "alice@example.com");
    assert!(claims["email_verified"].is_boolean());
    // at_hash and the signature, checked with the published keys.
    let jwks: oidc_core::jwk::JwkSet = app.published_keys().await;
    let verifier = oidc_core::jose::IdTokenVerifier::new(
        oidc_core::types::IssuerUrl::parse(app.issuer()).unwrap(),
        oidc_core::types::ClientId::new(CLIENT_ID),
        jwks,
    );
    let access = oidc_core::types::AccessToken::new(tokens["access_token"].as_str().unwrap());
    verifier
        .verify(
            id_token,
            Some(&oidc_core::types::Nonce::new("nonce-456")),
            Some(&access),
        )
        .expect("a valid ID token");
    let header: serde_json::Value = {
        use base64::Engine as _;
        let part = id_token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "RS256");
    assert!(header["kid"].is_string());
}

#[tokio::test]
async fn id_token_without_profile_or_email_scope_has_no_such_claims() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", "openid")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let tokens: serde_json::Value = app
        .exchange(&outcome.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let claims = jwt_claims(tokens["id_token"].as_str().unwrap());
    for claim in ["name", "email", "preferred_username", "email_verified"] {
        assert!(claims.get(claim).is_none(), "{claim}: {claims}");
    }
    assert!(tokens.get("refresh_token").is_some());
}

#[tokio::test]
async fn id_token_uses_the_clients_algorithm() {
    let app = spawn_app().await;
    let secret = app
        .add_client(ClientSpec {
            alg: "ES256",
            skip_authorization: true,
            ..ClientSpec::confidential("es")
        })
        .unwrap();
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("client_id", "es")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Unexpected,
        )
        .await;
    let response = app
        .token_request(
            ("es", &secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &outcome.code()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    let tokens: serde_json::Value = response.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let header = {
        use base64::Engine as _;
        let part = id_token.split('.').next().unwrap();
        serde_json::from_slice::<serde_json::Value>(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "ES256");
}

#[tokio::test]
async fn public_client_authenticates_with_none_and_pkce() {
    let app = spawn_app().await;
    app.add_client(ClientSpec {
        public: true,
        ..ClientSpec::confidential("spa")
    });
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("client_id", "spa")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "spa"),
        ("code", &outcome.code()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", &pkce.verifier),
    ];
    // A secret from a public client is refused (it has none to present).
    let mut with_secret = form.to_vec();
    with_secret.push(("client_secret", "anything"));
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .form(&with_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .http
        .post(app.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn code_replayed_after_a_refresh_revokes_the_refreshed_tokens_too() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let first = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: serde_json::Value = first.json().await.unwrap();
    let refreshed = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: serde_json::Value = refreshed.json().await.unwrap();
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&app, access).await, StatusCode::OK);

    let replay = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(
        error_of(replay, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
    // Everything that descends from the first redemption is gone.
    assert_eq!(
        userinfo_status(&app, access).await,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    refreshed["refresh_token"].as_str().unwrap(),
                ),
            ],
        )
        .await;
    assert_eq!(
        error_of(again, StatusCode::BAD_REQUEST).await,
        "invalid_grant"
    );
}
