//! Server-side sessions: the cookie names a row, and the row decides who is signed in. Logout
//! deletes it, so a copy of the cookie taken before is worth nothing after; idle and absolute
//! lifetimes end it; the `sid` of ID tokens names it.

use diesel::prelude::*;
use reqwest::StatusCode;
use reqwest::cookie::CookieStore as _;
use reqwest::header::LOCATION;

use crate::helpers::{
    Browser, CLIENT_ID, Consent, Pkce, TestApp, USER_PASSWORD, USER_USERNAME, hidden_fields,
    jwt_claims, spawn_app, spawn_app_with,
};

/// A second user agent holding a copy of `browser`'s cookies for the provider.
fn copy_cookies(app: &TestApp, browser: &Browser) -> Browser {
    let url = url::Url::parse(app.issuer()).unwrap();
    let copy = app.new_browser();
    let header = browser.jar.cookies(&url).expect("the browser has a cookie");
    for pair in header.to_str().unwrap().split("; ") {
        copy.jar.add_cookie_str(pair, &url);
    }
    copy
}

/// Where a `prompt=none` request of `browser` ends: the `error` or `code` parameter.
pub async fn prompt_none(app: &TestApp, browser: &Browser) -> (Option<String>, Option<String>) {
    let response = browser
        .get(&app.authorize_url(&Pkce::new(), &[("prompt", "none")]))
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    (param("error"), param("code"))
}

/// Whether an authorization request of `browser` (without `prompt`) is sent to the login page.
async fn sent_to_login(app: &TestApp, browser: &Browser) -> bool {
    let response = browser.get(&app.authorize_url(&Pkce::new(), &[])).await;
    response.status().is_redirection()
        && response.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login?")
}

async fn log_out(app: &TestApp, browser: &Browser) {
    let page = browser.get(&app.url("/logout")).await.text().await.unwrap();
    let response = browser
        .post_form(&app.url("/logout"), &hidden_fields(&page))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

fn sessions(app: &TestApp) -> i64 {
    diesel::sql_query("SELECT COUNT(*) AS n FROM sessions")
        .get_result::<Count>(&mut *app.state.db.conn().unwrap())
        .unwrap()
        .n
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

fn sql(app: &TestApp, statement: &str) {
    diesel::sql_query(statement)
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
}

fn text(app: &TestApp, query: &str) -> Vec<String> {
    diesel::sql_query(query)
        .load::<Text>(&mut *app.state.db.conn().unwrap())
        .unwrap()
        .into_iter()
        .map(|t| t.value)
        .collect()
}

#[tokio::test]
async fn a_cookie_copied_before_logout_gets_nothing_after_logout() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let copy = copy_cookies(&app, &browser);
    let (error, code) = prompt_none(&app, &copy).await;
    assert!(error.is_none() && code.is_some(), "the copy works before");

    log_out(&app, &browser).await;

    let (error, code) = prompt_none(&app, &copy).await;
    assert_eq!(error.as_deref(), Some("login_required"));
    assert!(code.is_none());
    assert!(sent_to_login(&app, &copy).await);
    assert_eq!(sessions(&app), 0, "logout deletes the row");
}

#[tokio::test]
async fn a_forged_session_cookie_is_not_a_login() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let url = url::Url::parse(app.issuer()).unwrap();
    browser
        .jar
        .add_cookie_str("provider_session=forged-value", &url);
    let (error, _) = prompt_none(&app, &browser).await;
    assert_eq!(error.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn an_idle_session_ends() {
    let app = spawn_app_with(|s| s.session_idle_secs = 600).await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let now = oidc_core::unix_now();
    // Seen 10 minutes ago and a second: idle too long.
    sql(
        &app,
        &format!("UPDATE sessions SET last_seen_at = {}", now - 601),
    );
    let (error, _) = prompt_none(&app, &browser).await;
    assert_eq!(error.as_deref(), Some("login_required"));
    assert!(sent_to_login(&app, &browser).await);
}

#[tokio::test]
async fn an_active_session_is_kept_alive_and_its_last_seen_moves_on() {
    let app = spawn_app_with(|s| s.session_idle_secs = 600).await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let now = oidc_core::unix_now();
    sql(
        &app,
        &format!("UPDATE sessions SET last_seen_at = {}", now - 590),
    );
    let (_, code) = prompt_none(&app, &browser).await;
    assert!(code.is_some(), "still within the idle time");
    let seen: i64 = text(
        &app,
        "SELECT CAST(last_seen_at AS TEXT) AS value FROM sessions",
    )[0]
    .parse()
    .unwrap();
    assert!(seen >= now, "last seen updated: {seen} < {now}");
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_active() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let now = oidc_core::unix_now();
    sql(
        &app,
        &format!("UPDATE sessions SET expires_at = {}", now - 1),
    );
    let (error, _) = prompt_none(&app, &browser).await;
    assert_eq!(error.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn a_session_of_a_deactivated_user_is_no_login() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    sql(&app, "UPDATE users SET is_active = FALSE");
    let (error, _) = prompt_none(&app, &browser).await;
    assert_eq!(error.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn the_sid_of_id_tokens_names_the_session_and_grants_record_it() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let response = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    let claims = jwt_claims(body["id_token"].as_str().unwrap());
    let public_ids = text(&app, "SELECT public_id AS value FROM sessions");
    assert_eq!(public_ids.len(), 1);
    assert_eq!(claims["sid"].as_str(), Some(public_ids[0].as_str()));
    let granted = text(
        &app,
        &format!("SELECT session_id AS value FROM grants WHERE client_id = '{CLIENT_ID}'"),
    );
    assert_eq!(granted, public_ids);
    // The cookie does not carry the public id (nor anything derived from it in the clear).
    let url = url::Url::parse(app.issuer()).unwrap();
    let cookie = browser.jar.cookies(&url).unwrap();
    assert!(!cookie.to_str().unwrap().contains(&public_ids[0]));

    // The refresh grant keeps the session's sid.
    let refreshed = app
        .token_request(
            (CLIENT_ID, crate::helpers::CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    let refreshed: serde_json::Value = refreshed.json().await.unwrap();
    let id_token = refreshed["id_token"]
        .as_str()
        .expect("an ID token on refresh");
    assert_eq!(
        jwt_claims(id_token)["sid"].as_str(),
        Some(public_ids[0].as_str())
    );
}

#[tokio::test]
async fn a_new_login_replaces_the_previous_session_row() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let outcome = browser
        .drive(
            &app.authorize_url(&Pkce::new(), &[]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    assert!(outcome.redirect.is_some());
    browser.log_in(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(sessions(&app), 1);
}

#[tokio::test]
async fn the_sweeper_deletes_ended_sessions_only() {
    let app = spawn_app().await;
    let (first, second) = (app.new_browser(), app.new_browser());
    first.log_in(USER_USERNAME, USER_PASSWORD).await;
    second.log_in(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(sessions(&app), 2);
    let now = oidc_core::unix_now();
    sql(
        &app,
        &format!(
            "UPDATE sessions SET idle_expires_at = {} WHERE id_hash = (SELECT MIN(id_hash) FROM sessions)",
            now - 3600
        ),
    );
    let swept = provider::storage::sweep::sweep(&app.state.db, now, 0, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.sessions, 1);
    assert_eq!(sessions(&app), 1);
}

#[tokio::test]
async fn logging_in_again_and_again_keeps_a_bounded_number_of_sessions() {
    let app = spawn_app().await;
    let max = provider::config::Settings::default().sessions_per_user;
    let first = app.new_browser();
    first.log_in(USER_USERNAME, USER_PASSWORD).await;
    sql(
        &app,
        &format!(
            "UPDATE sessions SET last_seen_at = {}",
            oidc_core::unix_now() - 120
        ),
    );
    for _ in 0..max {
        app.new_browser().log_in(USER_USERNAME, USER_PASSWORD).await;
    }
    assert_eq!(sessions(&app), max);
    // The least recently used one went.
    let (error, _) = prompt_none(&app, &first).await;
    assert_eq!(error.as_deref(), Some("login_required"));
}

#[tokio::test]
async fn an_rp_initiated_logout_ends_the_session_for_every_copy_of_the_cookie() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let copy = copy_cookies(&app, &browser);
    let page = browser
        .get(&app.url(&format!("/oauth/logout?client_id={CLIENT_ID}")))
        .await
        .text()
        .await
        .unwrap();
    let response = browser
        .post_form(&app.url("/oauth/logout/confirm"), &hidden_fields(&page))
        .await;
    assert!(
        response.status().is_success() || response.status().is_redirection(),
        "{}",
        response.status()
    );
    let (error, _) = prompt_none(&app, &copy).await;
    assert_eq!(error.as_deref(), Some("login_required"));
    assert_eq!(sessions(&app), 0);
}

/// Tokens of alice for the bootstrap client, issued in `browser`'s session with `scope`
/// (the browser is already signed in and has consented).
async fn tokens_in_session(app: &TestApp, browser: &Browser, scope: &str) -> (String, String) {
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", scope)]),
            None,
            Consent::Authorize,
        )
        .await;
    let response = app.exchange(&outcome.code(), &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// Back-Channel Logout §2.7: the tokens of a session that ends are revoked, except those of a
/// grant with `offline_access`, which by definition outlives the login.
async fn assert_online_grants_revoked_and_offline_kept(
    app: &TestApp,
    online: &(String, String),
    offline: &(String, String),
) {
    use crate::cascades::active;
    assert!(!active(app, &online.0).await, "online access token");
    assert!(!active(app, &online.1).await, "online refresh token");
    assert!(active(app, &offline.0).await, "offline access token");
    assert!(active(app, &offline.1).await, "offline refresh token");
}

#[tokio::test]
async fn logout_revokes_the_sessions_grants_but_not_offline_access() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let online = tokens_in_session(&app, &browser, "openid profile email").await;
    let offline = tokens_in_session(&app, &browser, "openid offline_access").await;
    let elsewhere = app.new_browser();
    app.code_for_alice(&elsewhere).await;
    let other_session = tokens_in_session(&app, &elsewhere, "openid email").await;

    log_out(&app, &browser).await;

    assert_online_grants_revoked_and_offline_kept(&app, &online, &offline).await;
    let refreshed = app
        .token_request(
            (CLIENT_ID, crate::helpers::CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &online.1),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
    assert!(
        crate::cascades::active(&app, &other_session.1).await,
        "another session's grants stay"
    );
}

#[tokio::test]
async fn a_session_swept_at_its_end_revokes_its_grants_but_not_offline_access() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let online = tokens_in_session(&app, &browser, "openid profile").await;
    let offline = tokens_in_session(&app, &browser, "openid offline_access").await;
    let now = oidc_core::unix_now();
    sql(
        &app,
        &format!("UPDATE sessions SET idle_expires_at = {}", now - 3600),
    );
    let swept = provider::storage::sweep::sweep(&app.state.db, now, 0, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.sessions, 1);
    assert_online_grants_revoked_and_offline_kept(&app, &online, &offline).await;
}
