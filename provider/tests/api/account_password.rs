//! Changing one's password at `/account/password`: the current password is required and
//! throttled like a login, the new one follows the usual rule, and on success every other
//! session and what it holds ends while this session goes on.

use provider::config::Settings;
use reqwest::StatusCode;

use crate::account::{account_post, audit_rows, browser_with_agent, signed_in};
use crate::cascades::active;
use crate::helpers::{
    Browser, CLIENT_ID, CLIENT_SECRET, Consent, Pkce, TestApp, USER_PASSWORD, USER_USERNAME,
    page_text, spawn_app, spawn_app_with,
};

const NEW_PASSWORD: &str = "alice-new-password-456";

async fn change(browser: &Browser, current: &str, new: &str, confirm: &str) -> reqwest::Response {
    account_post(
        browser,
        "/account/password",
        "/account/password",
        &[
            ("current_password", current),
            ("new_password", new),
            ("confirm_password", confirm),
        ],
    )
    .await
}

/// Whether `password` signs alice in (from a fresh browser).
async fn password_works(app: &TestApp, password: &str) -> bool {
    let response = app.new_browser().login(USER_USERNAME, password).await;
    response.status() == StatusCode::SEE_OTHER
}

/// Tokens issued to `webapp` in the session of `browser`: access and refresh token.
async fn tokens_in(app: &TestApp, browser: &Browser, scope: &str) -> (String, String) {
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[("scope", scope)]),
            Some((USER_USERNAME, USER_PASSWORD)),
            Consent::Authorize,
        )
        .await;
    let response = app.exchange(&outcome.code(), &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn refresh(app: &TestApp, refresh_token: &str) -> StatusCode {
    app.token_request(
        (CLIENT_ID, CLIENT_SECRET),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
    .status()
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_their_tokens_and_keeps_this_one() {
    let app = spawn_app().await;
    let here = browser_with_agent(&app, "Here");
    here.log_in(USER_USERNAME, USER_PASSWORD).await;
    let elsewhere = browser_with_agent(&app, "Elsewhere");
    elsewhere.log_in(USER_USERNAME, USER_PASSWORD).await;
    // Elsewhere holds tokens bound to its session and offline ones meant to outlive it: whoever
    // knew the old password must keep neither.
    let (elsewhere_access, elsewhere_refresh) =
        tokens_in(&app, &elsewhere, "openid profile offline_access").await;
    let (session_access, _) = tokens_in(&app, &elsewhere, "openid profile").await;
    let (here_access, here_refresh) = tokens_in(&app, &here, "openid offline_access").await;
    for token in [
        &elsewhere_access,
        &elsewhere_refresh,
        &session_access,
        &here_access,
    ] {
        assert!(active(&app, token).await);
    }

    let response = change(&here, USER_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = here.get_html(&crate::helpers::location(&response)).await;
    assert!(page_text(&html).contains("Password changed."));
    assert!(signed_in(&here).await, "this session stays");
    assert!(
        !signed_in(&elsewhere).await,
        "the other browser is signed out"
    );
    let prompt_none = elsewhere
        .get(&app.authorize_url(&Pkce::new(), &[("prompt", "none")]))
        .await;
    assert!(
        crate::helpers::location(&prompt_none).contains("error=login_required"),
        "the other browser's cookie no longer signs in"
    );
    for token in [&elsewhere_access, &elsewhere_refresh, &session_access] {
        assert!(!active(&app, token).await, "revoked");
    }
    assert_eq!(
        refresh(&app, &elsewhere_refresh).await,
        StatusCode::BAD_REQUEST
    );
    // What this session's applications hold goes on.
    assert!(active(&app, &here_access).await);
    assert_eq!(refresh(&app, &here_refresh).await, StatusCode::OK);

    assert!(!password_works(&app, USER_PASSWORD).await);
    assert!(password_works(&app, NEW_PASSWORD).await);
    let rows = audit_rows(&app, USER_USERNAME);
    assert!(
        rows.iter().any(|(k, o, d)| k == "password_changed"
            && o == "succeeded"
            && d == "other sessions ended: 1"),
        "{rows:?}"
    );
    // The events page lists it.
    let (_, html) = here.get_html("/account/events").await;
    assert!(page_text(&html).contains("Password change"));
}

#[tokio::test]
async fn a_weak_or_unconfirmed_new_password_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let alice = app.user_browser().await;
    let other = app.user_browser().await;
    for (new, confirm, message) in [
        ("short", "short", "8 to 256 characters"),
        ("", "", "8 to 256 characters"),
        (
            &"x".repeat(257) as &str,
            &"x".repeat(257) as &str,
            "8 to 256 characters",
        ),
        ("long-enough-1", "long-enough-2", "confirmation differ"),
    ] {
        let response = change(&alice, USER_PASSWORD, new, confirm).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{new}");
        let text = page_text(&response.text().await.unwrap());
        assert!(text.contains(message), "{text}");
    }
    assert!(password_works(&app, USER_PASSWORD).await);
    assert!(signed_in(&other).await, "no session ended");
    assert!(
        audit_rows(&app, USER_USERNAME)
            .iter()
            .all(|(k, _, _)| k != "password_changed")
    );
}

fn account_limit(limit: u32) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.login_throttle.max_failures_per_account = limit;
        s.login_throttle.max_failures_per_address = 100;
    }
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_throttled_like_a_login() {
    let app = spawn_app_with(account_limit(3)).await;
    let alice = app.user_browser().await;
    let other = app.user_browser().await;
    for _ in 0..3 {
        let response = change(&alice, "a-wrong-guess", NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let text = page_text(&response.text().await.unwrap());
        assert!(text.contains("current password is not correct"), "{text}");
    }
    // Past the limit even the right password is not checked, here and at the login page.
    let response = change(&alice, USER_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let login = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        signed_in(&alice).await,
        "the guesser's session is not ended by it"
    );
    assert!(signed_in(&other).await);
    let failed = audit_rows(&app, USER_USERNAME)
        .into_iter()
        .filter(|(k, o, _)| k == "password_changed" && o == "failed")
        .count();
    assert_eq!(failed, 3);
    // Nothing changed.
    app.state
        .db
        .run(|conn| provider::storage::users::find_by_username(conn, USER_USERNAME))
        .await
        .unwrap()
        .map(|u| assert!(bcrypt::verify(USER_PASSWORD, &u.password_hash).unwrap()))
        .unwrap();
}

#[tokio::test]
async fn wrong_guesses_at_the_login_page_count_against_the_password_form_too() {
    let app = spawn_app_with(account_limit(2)).await;
    let alice = app.user_browser().await;
    for _ in 0..2 {
        let response = app.new_browser().login(USER_USERNAME, "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = change(&alice, USER_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_successful_change_gives_the_attempt_back() {
    let app = spawn_app_with(account_limit(2)).await;
    let alice = app.user_browser().await;
    let response = change(&alice, "a-wrong-guess", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = change(&alice, USER_PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The account's count was reset: two more failures are allowed before the throttle.
    for _ in 0..2 {
        let response = app.new_browser().login(USER_USERNAME, "guess").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert!(signed_in(&alice).await);
}

/// Posts a change with a token read before.
async fn post_change(browser: &Browser, token: &str, new: &str) -> reqwest::Response {
    browser
        .post_form(
            "/account/password",
            &[
                ("csrf_token", token),
                ("current_password", USER_PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await
}

#[tokio::test]
async fn of_two_password_changes_at_once_one_wins() {
    let app = spawn_app().await;
    let first = app.user_browser().await;
    let second = app.user_browser().await;
    // Both forms are loaded before either is sent.
    let forms = [
        (
            &first,
            first.csrf_token("/account/password").await,
            "first-new-password",
        ),
        (
            &second,
            second.csrf_token("/account/password").await,
            "second-new-password",
        ),
    ];
    let (a, b) = tokio::join!(
        post_change(forms[0].0, &forms[0].1, forms[0].2),
        post_change(forms[1].0, &forms[1].1, forms[1].2),
    );
    let responses = [a, b];
    let won: Vec<bool> = responses
        .iter()
        .map(|r| {
            r.status() == StatusCode::SEE_OTHER
                && crate::helpers::location(r) == "/account/password"
        })
        .collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{responses:?}");
    for (response, won) in responses.iter().zip(&won) {
        if !won {
            // Refused as changed meanwhile, as no longer the current password (the winner
            // committed between the reads of the session and of the user), or signed out by
            // the winner before it was read.
            let status = response.status();
            let refused = [StatusCode::CONFLICT, StatusCode::BAD_REQUEST].contains(&status)
                || (status == StatusCode::SEE_OTHER
                    && crate::helpers::location(response).starts_with("/login"));
            assert!(refused, "{status}");
        }
    }
    let winner = if won[0] { 0 } else { 1 };
    assert!(password_works(&app, forms[winner].2).await);
    assert!(!password_works(&app, forms[1 - winner].2).await);
    assert!(!password_works(&app, USER_PASSWORD).await);
    assert!(signed_in(forms[winner].0).await);
    assert!(!signed_in(forms[1 - winner].0).await);
}
