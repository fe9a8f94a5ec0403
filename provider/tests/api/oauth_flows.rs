//! Whole flows: an independent relying party (the `openidconnect` crate) over HTTP with a
//! cookie-keeping user agent submitting the real forms, prompt and max_age, remembered and
//! revoked consent, skip-authorization, refresh rotation, and logout.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::helpers::{
    Browser, CLIENT_ID, CLIENT_SECRET, ClientSpec, Consent, POST_LOGOUT_REDIRECT_URI, Pkce,
    REDIRECT_URI, TestApp, USER_PASSWORD, USER_USERNAME, jwt_claims, spawn_app,
};

#[tokio::test]
async fn openidconnect_relying_party_completes_the_flow_over_http() {
    let app = spawn_app().await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.issuer().to_owned()).unwrap(),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(CLIENT_ID.to_owned()),
        Some(ClientSecret::new(CLIENT_SECRET.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = app.new_browser();
    let outcome = browser
        .drive(
            url.as_str(),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    assert!(outcome.saw_login && outcome.saw_consent);
    assert_eq!(
        outcome.param("state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(outcome.param("iss").as_deref(), Some(app.issuer()));

    let tokens = client
        .exchange_code(AuthorizationCode::new(outcome.code()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("a valid ID token");
    assert_eq!(claims.preferred_username().unwrap().as_str(), USER_USERNAME);
    assert_eq!(claims.email().unwrap().as_str(), "alice@example.com");
    assert!(claims.auth_time().is_some());
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&client.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);

    let info: CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.email().unwrap().as_str(), "alice@example.com");

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    // The rotated one is now dead, and so is the grant.
    assert!(
        client
            .exchange_refresh_token(tokens.refresh_token().unwrap())
            .unwrap()
            .request_async(&http)
            .await
            .is_err()
    );
    let after_reuse: Result<CoreUserInfoClaims, _> = client
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await;
    assert!(after_reuse.is_err());
}

async fn id_token_claims_after(
    app: &TestApp,
    browser: &Browser,
    extra: &[(&str, &str)],
) -> (serde_json::Value, bool) {
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, extra),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let saw_login = outcome.saw_login;
    let tokens: serde_json::Value = app
        .exchange(&outcome.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    (jwt_claims(tokens["id_token"].as_str().unwrap()), saw_login)
}

#[tokio::test]
async fn prompt_login_forces_login_again_and_auth_time_moves() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (first, saw_login) = id_token_claims_after(&app, &browser, &[]).await;
    assert!(saw_login);
    let (again, saw_login) = id_token_claims_after(&app, &browser, &[]).await;
    assert!(!saw_login, "signed in already");
    assert_eq!(again["auth_time"], first["auth_time"]);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (forced, saw_login) = id_token_claims_after(&app, &browser, &[("prompt", "login")]).await;
    assert!(saw_login, "prompt=login shows the login form");
    assert!(forced["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap());
}

#[tokio::test]
async fn prompt_login_without_logging_in_again_does_not_issue_a_code() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("prompt", "login")]),
            None,
            Consent::Authorize,
        )
        .await;
    assert!(outcome.redirect.is_none());
    assert!(
        outcome.body.contains("action=\"/login\""),
        "stops at the login form"
    );
}

#[tokio::test]
async fn max_age_exceeded_forces_login_and_auth_time_is_present() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (first, _) = id_token_claims_after(&app, &browser, &[]).await;
    let (young, saw_login) = id_token_claims_after(&app, &browser, &[("max_age", "3600")]).await;
    assert!(!saw_login);
    assert_eq!(young["auth_time"], first["auth_time"]);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (old, saw_login) = id_token_claims_after(&app, &browser, &[("max_age", "1")]).await;
    assert!(saw_login, "max_age=1 after 2 s shows the login form");
    assert!(old["auth_time"].as_i64().unwrap() > first["auth_time"].as_i64().unwrap());
    // max_age=0 behaves like prompt=login, and does not loop.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (zero, saw_login) = id_token_claims_after(&app, &browser, &[("max_age", "0")]).await;
    assert!(saw_login);
    assert!(zero["auth_time"].as_i64().unwrap() > old["auth_time"].as_i64().unwrap());
    // Malformed max_age is an error at the client.
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("max_age", "-1")]),
            None,
            Consent::Unexpected,
        )
        .await;
    assert_eq!(outcome.param("error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn consent_is_remembered_per_user_client_and_scopes_and_can_be_revoked() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let first = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", "openid email")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    assert!(first.saw_consent);
    let tokens: serde_json::Value = app
        .exchange(&first.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    // Same or fewer scopes: no consent page.
    for scope in ["openid email", "openid"] {
        let outcome = browser
            .drive(
                &app.authorize_url(&Pkce::new(), &[("scope", scope)]),
                None,
                Consent::Unexpected,
            )
            .await;
        assert!(outcome.param("code").is_some(), "{scope}: {outcome:?}");
    }
    // More scopes: asked again; then remembered too.
    let more = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("scope", "openid profile")]),
            None,
            Consent::Authorize,
        )
        .await;
    assert!(more.saw_consent && more.param("code").is_some());
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("scope", "openid email profile")]),
            None,
            Consent::Unexpected,
        )
        .await;
    assert!(outcome.param("code").is_some());
    // prompt=consent asks even though consent exists.
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("scope", "openid"), ("prompt", "consent")]),
            None,
            Consent::Authorize,
        )
        .await;
    assert!(outcome.saw_consent);

    // Revoked (as the admin does): asked again, and the tokens already issued stop working.
    let user_id = {
        use diesel::prelude::*;
        use provider::storage::schema::users;
        let mut conn = app.state.db.conn().unwrap();
        users::table
            .filter(users::username.eq(USER_USERNAME))
            .select(users::id)
            .first::<String>(&mut *conn)
            .unwrap()
    };
    {
        let mut conn = app.state.db.conn().unwrap();
        let consents =
            provider::storage::grants::list_consents_for_user(&mut conn, &user_id).unwrap();
        assert_eq!(consents.len(), 1);
        assert_eq!(consents[0].client_id, CLIENT_ID);
        assert!(provider::storage::grants::delete_consent(&mut conn, &user_id, CLIENT_ID).unwrap());
        assert!(
            provider::storage::grants::list_consents_for_user(&mut conn, &user_id)
                .unwrap()
                .is_empty()
        );
    }
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[("scope", "openid"), ("prompt", "none")]),
            None,
            Consent::Unexpected,
        )
        .await;
    assert_eq!(outcome.param("error").as_deref(), Some("consent_required"));
    let response = app
        .http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn consent_of_one_user_does_not_cover_another() {
    let app = spawn_app().await;
    app.add_user("bob", "bob-password-123");
    let alice = app.new_browser();
    app.code_for_alice(&alice).await;
    let bob = app.new_browser();
    let outcome = bob
        .drive(
            &app.authorize_url(&Pkce::new(), &[]),
            Some(("bob", "bob-password-123")),
            Consent::Authorize,
        )
        .await;
    assert!(outcome.saw_consent);
}

#[tokio::test]
async fn admin_lists_and_revokes_grants() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    let mut conn = app.state.db.conn().unwrap();
    let user_id = provider::storage::users::find_by_username(&mut conn, USER_USERNAME)
        .unwrap()
        .unwrap()
        .id;
    let grants = provider::storage::grants::list_grants_for_user(&mut conn, &user_id).unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].client_id, CLIENT_ID);
    assert!(grants[0].revoked_at.is_none());
    assert!(provider::storage::grants::revoke_grant(&mut conn, &grants[0].id).unwrap());
    assert!(!provider::storage::grants::revoke_grant(&mut conn, &grants[0].id).unwrap());
    drop(conn);
    let response = app
        .http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let refresh = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(refresh.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn skip_authorization_client_goes_straight_through() {
    let app = spawn_app().await;
    let secret = app
        .add_client(ClientSpec {
            skip_authorization: true,
            ..ClientSpec::confidential("trusted")
        })
        .unwrap();
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("client_id", "trusted")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Unexpected,
        )
        .await;
    assert!(outcome.saw_login && !outcome.saw_consent);
    let response = app
        .token_request(
            ("trusted", &secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &outcome.code()),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", &pkce.verifier),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    // prompt=none works right away too.
    let outcome = browser
        .drive(
            &app.authorize_url(
                &Pkce::new(),
                &[("client_id", "trusted"), ("prompt", "none")],
            ),
            None,
            Consent::Unexpected,
        )
        .await;
    assert!(outcome.param("code").is_some());
}

#[tokio::test]
async fn id_token_hint_for_another_user_forces_login() {
    let app = spawn_app().await;
    app.add_user("bob", "bob-password-123");
    let bob = app.new_browser();
    let pkce = Pkce::new();
    let outcome = bob
        .drive(
            &app.authorize_url(&pkce, &[]),
            Some(("bob", "bob-password-123")),
            Consent::Authorize,
        )
        .await;
    let bob_tokens: serde_json::Value = app
        .exchange(&outcome.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let hint = bob_tokens["id_token"].as_str().unwrap();
    // Alice is signed in, the application expects bob.
    let alice = app.new_browser();
    app.code_for_alice(&alice).await;
    let outcome = alice
        .drive(
            &app.authorize_url(&Pkce::new(), &[("id_token_hint", hint), ("prompt", "none")]),
            None,
            Consent::Unexpected,
        )
        .await;
    assert_eq!(outcome.param("error").as_deref(), Some("login_required"));
    // A matching hint passes silently.
    let outcome = bob
        .drive(
            &app.authorize_url(&Pkce::new(), &[("id_token_hint", hint), ("prompt", "none")]),
            None,
            Consent::Unexpected,
        )
        .await;
    assert!(outcome.param("code").is_some());
    // A forged hint is refused.
    let outcome = bob
        .drive(
            &app.authorize_url(&Pkce::new(), &[("id_token_hint", "a.b.c")]),
            None,
            Consent::Unexpected,
        )
        .await;
    assert_eq!(outcome.param("error").as_deref(), Some("invalid_request"));
}

async fn is_signed_in(app: &TestApp, browser: &Browser) -> bool {
    let response = browser
        .get(&app.authorize_url(&Pkce::new(), &[("prompt", "none")]))
        .await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    !location.contains("error=login_required")
}

#[tokio::test]
async fn logout_with_valid_id_token_hint_ends_the_session_and_redirects_with_state() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let tokens: serde_json::Value = app
        .exchange(&code, &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    assert!(is_signed_in(&app, &browser).await);
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI)
        .append_pair("state", "bye-1");
    let response = browser.get(url.as_str()).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()[LOCATION].to_str().unwrap(),
        format!("{POST_LOGOUT_REDIRECT_URI}?state=bye-1")
    );
    assert!(!is_signed_in(&app, &browser).await);
}

#[tokio::test]
async fn logout_without_hint_asks_for_confirmation_with_csrf() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("post_logout_redirect_uri", POST_LOGOUT_REDIRECT_URI)
        .append_pair("state", "s1");
    let response = browser.get(url.as_str()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains("action=\"/oauth/logout/confirm\""));
    assert!(
        is_signed_in(&app, &browser).await,
        "nothing happens before confirming"
    );
    let fields = crate::helpers::hidden_fields(&body);
    let without_csrf: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf_token")
        .cloned()
        .collect();
    let response = browser
        .post_form(&app.url("/oauth/logout/confirm"), &without_csrf)
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(is_signed_in(&app, &browser).await);
    let response = browser
        .post_form(&app.url("/oauth/logout/confirm"), &fields)
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()[LOCATION].to_str().unwrap(),
        format!("{POST_LOGOUT_REDIRECT_URI}?state=s1")
    );
    assert!(!is_signed_in(&app, &browser).await);
}

#[tokio::test]
async fn logout_refuses_unregistered_post_logout_redirect_uri() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    for (client_id, uri) in [
        (Some(CLIENT_ID), "https://evil.example/"),
        (Some(CLIENT_ID), "http://127.0.0.1:3000/api/auth/signin/"),
        (None, POST_LOGOUT_REDIRECT_URI),
        (Some("nobody"), POST_LOGOUT_REDIRECT_URI),
    ] {
        let mut url = url::Url::parse(&app.url("/oauth/logout")).unwrap();
        if let Some(id) = client_id {
            url.query_pairs_mut().append_pair("client_id", id);
        }
        url.query_pairs_mut()
            .append_pair("post_logout_redirect_uri", uri);
        let response = browser.get(url.as_str()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(response.headers().get(LOCATION).is_none());
    }
    // A forged hint too.
    let response = browser
        .get(&app.url("/oauth/logout?id_token_hint=eyJhbGciOiJub25lIn0.e30."))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(is_signed_in(&app, &browser).await);
}

#[tokio::test]
async fn logout_without_return_address_shows_signed_out_page() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let tokens: serde_json::Value = app
        .exchange(&code, &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let url = format!(
        "{}?id_token_hint={}",
        app.url("/oauth/logout"),
        tokens["id_token"].as_str().unwrap()
    );
    let response = browser.get(&url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("signed out"));
    assert!(!is_signed_in(&app, &browser).await);
    // Signed out already: POST works the same and just shows the page.
    let response = browser
        .client
        .post(app.url("/oauth/logout"))
        .form(&[("client_id", CLIENT_ID)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_with_hint_of_another_user_asks_for_confirmation() {
    let app = spawn_app().await;
    app.add_user("bob", "bob-password-123");
    let bob = app.new_browser();
    let pkce = Pkce::new();
    let outcome = bob
        .drive(
            &app.authorize_url(&pkce, &[]),
            Some(("bob", "bob-password-123")),
            Consent::Authorize,
        )
        .await;
    let bob_tokens: serde_json::Value = app
        .exchange(&outcome.code(), &pkce.verifier)
        .await
        .json()
        .await
        .unwrap();
    let alice = app.new_browser();
    app.code_for_alice(&alice).await;
    let url = format!(
        "{}?id_token_hint={}",
        app.url("/oauth/logout"),
        bob_tokens["id_token"].as_str().unwrap()
    );
    let response = alice.get(&url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("/oauth/logout/confirm")
    );
    assert!(is_signed_in(&app, &alice).await);
}

#[tokio::test]
async fn concurrent_signed_in_flows_complete_without_server_errors() {
    let app = std::sync::Arc::new(spawn_app().await);
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let mut flows = tokio::task::JoinSet::new();
    for _ in 0..48 {
        let app = app.clone();
        let browser = browser.clone();
        flows.spawn(async move {
            let pkce = Pkce::new();
            let response = browser
                .get(&app.authorize_url(&pkce, &[("prompt", "none")]))
                .await;
            assert_eq!(response.status(), StatusCode::FOUND);
            let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
            let code = location
                .query_pairs()
                .find(|(k, _)| k == "code")
                .expect("a code")
                .1
                .into_owned();
            let tokens = app.exchange(&code, &pkce.verifier).await;
            assert_eq!(tokens.status(), StatusCode::OK);
            let tokens: serde_json::Value = tokens.json().await.unwrap();
            let refreshed = app
                .token_request(
                    (CLIENT_ID, CLIENT_SECRET),
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                    ],
                )
                .await;
            assert_eq!(refreshed.status(), StatusCode::OK);
            let refreshed: serde_json::Value = refreshed.json().await.unwrap();
            let info = app
                .http
                .get(app.url("/oauth/userinfo"))
                .bearer_auth(refreshed["access_token"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(info.status(), StatusCode::OK);
        });
    }
    while let Some(result) = flows.join_next().await {
        result.expect("a flow failed");
    }
}

#[tokio::test]
async fn concurrent_redemptions_of_one_code_issue_tokens_at_most_once() {
    let app = std::sync::Arc::new(spawn_app().await);
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let verifier = std::sync::Arc::new(pkce.verifier);
    let code = std::sync::Arc::new(code);
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (app, code, verifier) = (app.clone(), code.clone(), verifier.clone());
        attempts.spawn(async move { app.exchange(&code, &verifier).await.status() });
    }
    let mut ok = 0;
    while let Some(status) = attempts.join_next().await {
        let status = status.unwrap();
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{status}"
        );
        ok += usize::from(status == StatusCode::OK);
    }
    assert!(ok <= 1, "{ok} redemptions succeeded");
}
