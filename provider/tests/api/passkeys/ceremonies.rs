//! The ceremonies' rules: single use (replayed registrations and sign-ins, also from a copy of
//! the cookie), five minutes of life, malformed bodies, throttled failures.

use std::collections::HashMap;

use actix_web::cookie::{Cookie, CookieJar, Key};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{
    alice_id, amrs_of, browser_with_cookie, finish_body, json_ok, passkey_rows, post_json,
    register, session_cookie, sign_in_options, spawn, spawn_passkey_app, token,
};
use crate::helpers::{SoftAuthenticator, TestApp, USER_USERNAME, spawn_app_with};

#[tokio::test]
async fn a_replayed_registration_stores_nothing_twice() {
    let app = spawn().await;
    let alice = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    let csrf = token(&alice).await;
    let options = json_ok(
        post_json(
            &alice,
            "/account/passkeys/register/options",
            Some(&csrf),
            "{}",
        )
        .await,
    )
    .await;
    let copied = session_cookie(&app, &alice);
    let credential = authenticator.register(&options);
    let body = json!({ "name": "key", "credential": credential }).to_string();
    json_ok(
        post_json(
            &alice,
            "/account/passkeys/register/finish",
            Some(&csrf),
            &body,
        )
        .await,
    )
    .await;
    // Again in the same browser: the ceremony is gone.
    let again = post_json(
        &alice,
        "/account/passkeys/register/finish",
        Some(&csrf),
        &body,
    )
    .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    // From a copy of the cookie that still holds it: the credential is registered already.
    let replayer = browser_with_cookie(&app, &copied);
    let replayed = post_json(
        &replayer,
        "/account/passkeys/register/finish",
        Some(&csrf),
        &body,
    )
    .await;
    assert_eq!(replayed.status(), StatusCode::CONFLICT);
    assert_eq!(passkey_rows(&app).len(), 1);
}

#[tokio::test]
async fn a_replayed_sign_in_is_refused() {
    let app = spawn().await;
    let alice = alice_id(&app);
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;
    // The ceremony is issued a second after registration, so its use is the first since.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let stranger = app.new_browser();
    let (csrf, options) = sign_in_options(&stranger).await;
    let copied = session_cookie(&app, &stranger);
    let body = finish_body(&authenticator.assert(&options, 0), None);
    json_ok(post_json(&stranger, "/login/passkey/finish", Some(&csrf), &body).await).await;
    let sessions_after_first = amrs_of(&app, &alice).len();

    // The same browser (with its new session's token): the ceremony was taken out of it.
    let csrf_now = token(&stranger).await;
    assert_ne!(csrf_now, csrf, "the session was renewed at login");
    let again = post_json(&stranger, "/login/passkey/finish", Some(&csrf_now), &body).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);

    // A copy of the cookie from before the finish still holds the ceremony: the passkey's
    // record of its last use refuses it.
    let replayer = browser_with_cookie(&app, &copied);
    let replayed = post_json(&replayer, "/login/passkey/finish", Some(&csrf), &body).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let (_, home) = replayer.get_html("/").await;
    assert!(
        !home.contains("Alice Example"),
        "the replay signed nobody in"
    );
    assert_eq!(amrs_of(&app, &alice).len(), sessions_after_first);
}

/// Rewrites the ceremony in the encrypted session cookie as if issued `secs` earlier.
fn age_ceremony(app: &TestApp, cookie: &str, secs: i64) -> String {
    let key = Key::from(app.settings.secret_key.as_ref().expect("key").as_bytes());
    // The cookie's value is percent-encoded on the wire.
    let parsed = Cookie::parse_encoded(cookie.to_owned()).expect("cookie");
    let name = parsed.name().to_owned();
    let name = name.as_str();
    let mut jar = CookieJar::new();
    jar.add_original(parsed);
    let plain = jar
        .private(&key)
        .get(name)
        .expect("decrypts")
        .value()
        .to_owned();
    let mut state: HashMap<String, String> = serde_json::from_str(&plain).expect("state");
    let mut ceremony: Value = serde_json::from_str(&state["passkey_ceremony"]).expect("ceremony");
    ceremony["issued_at"] = json!(ceremony["issued_at"].as_i64().unwrap() - secs);
    state.insert("passkey_ceremony".into(), ceremony.to_string());
    let mut jar = CookieJar::new();
    jar.private_mut(&key).add(Cookie::new(
        name.to_owned(),
        serde_json::to_string(&state).unwrap(),
    ));
    jar.get(name).expect("cookie").encoded().to_string()
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;

    let stranger = app.new_browser();
    let (csrf, options) = sign_in_options(&stranger).await;
    let cookie = session_cookie(&app, &stranger);
    let body = finish_body(&authenticator.assert(&options, 0), None);
    let late = browser_with_cookie(&app, &age_ceremony(&app, &cookie, 301));
    let response = post_json(&late, "/login/passkey/finish", Some(&csrf), &body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("expired"),
        "{error}"
    );
    // Within five minutes it still works (and proves the rewritten cookie is well formed).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let in_time = browser_with_cookie(&app, &age_ceremony(&app, &cookie, 200));
    json_ok(post_json(&in_time, "/login/passkey/finish", Some(&csrf), &body).await).await;
}

#[tokio::test]
async fn malformed_json_is_a_client_error() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let csrf = token(&browser).await;
    // A ceremony in flight, so the body is what is wrong.
    json_ok(
        post_json(
            &browser,
            "/account/passkeys/register/options",
            Some(&csrf),
            "",
        )
        .await,
    )
    .await;
    for body in [
        "",
        "{",
        "[]",
        "{\"credential\": 5}",
        "\u{0}",
        "{\"name\": \"x\"}",
    ] {
        for path in ["/account/passkeys/register/finish", "/login/passkey/finish"] {
            let response = post_json(&browser, path, Some(&csrf), body).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{path} {body:?}"
            );
        }
    }
    let response = post_json(
        &app.new_browser(),
        "/account/passkeys/register/options",
        None,
        "",
    )
    .await;
    assert!(response.status().is_client_error());
}

#[tokio::test]
async fn failed_passkey_sign_ins_are_throttled() {
    let app = spawn_passkey_app(|s| s.login_throttle.max_failures_per_account = 2).await;
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;
    authenticator.user_verified = false;
    let stranger = app.new_browser();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (csrf, options) = sign_in_options(&stranger).await;
        let body = finish_body(&authenticator.assert(&options, 0), None);
        let response = post_json(&stranger, "/login/passkey/finish", Some(&csrf), &body).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // The account's password logins count against the same limit.
    let response = app
        .new_browser()
        .login(USER_USERNAME, "alice-password-123")
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn passkeys_need_an_issuer_with_a_domain_name() {
    let app = spawn_app_with(|_| {}).await;
    let browser = app.user_browser().await;
    let csrf = token(&browser).await;
    let response = post_json(
        &browser,
        "/account/passkeys/register/options",
        Some(&csrf),
        "",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
