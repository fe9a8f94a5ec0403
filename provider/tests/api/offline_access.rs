//! `PROVIDER_OFFLINE_ACCESS=false`: the provider offers no `offline_access` (as a provider that
//! does not know the scope): discovery does not list it, a request for it is refused like any
//! unknown scope, and no refresh token is issued.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Consent, Pkce, TestApp, USER_PASSWORD, USER_USERNAME, spawn_app, spawn_app_with,
};

async fn scopes_supported(app: &TestApp) -> Vec<Value> {
    let discovery: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    discovery["scopes_supported"].as_array().unwrap().clone()
}

#[tokio::test]
async fn offline_access_is_offered_by_default() {
    let app = spawn_app().await;
    assert!(app.state.settings.offline_access);
    assert!(
        scopes_supported(&app)
            .await
            .contains(&"offline_access".into())
    );
    let tokens = app.tokens_for_alice().await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
}

#[tokio::test]
async fn without_offline_access_there_is_no_such_scope_and_no_refresh_token() {
    let app = spawn_app_with(|settings| settings.offline_access = false).await;
    let scopes = scopes_supported(&app).await;
    assert!(!scopes.contains(&"offline_access".into()), "{scopes:?}");
    for scope in ["openid", "profile", "email"] {
        assert!(scopes.contains(&scope.into()), "{scope}");
    }

    // Asked for anyway: refused like any scope the provider does not know.
    let browser = app.new_browser();
    let pkce = Pkce::new();
    let refused = browser
        .drive(
            &app.authorize_url(&pkce, &[]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    assert_eq!(refused.param("error").as_deref(), Some("invalid_scope"));

    // Without it the sign-in works: an access token and an ID token, no refresh token.
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", "openid profile email")]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let response = app.exchange(&outcome.code(), &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens["id_token"].is_string(), "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}
