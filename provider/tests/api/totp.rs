//! TOTP as a second factor: enrolment on `/account/security`, the factor prompt after the
//! password, single use of codes and recovery codes, throttling, CSRF and the audit log.

use diesel::prelude::*;
use provider::storage::schema::{passkeys, sessions};
use reqwest::StatusCode;

use crate::helpers::factors::{
    add_confirmed_totp, audit_rows, code_at, enrol, has_audit, password_step, recovery_codes_shown,
    session_count, settled_step, shown_secret, start_enrolment, submit_factor, user_id,
};
use crate::helpers::{
    Browser, TestApp, USER_PASSWORD, USER_USERNAME, csrf_token, element_text, location, spawn_app,
    spawn_app_with,
};

/// Whether `browser` is signed in (the security page answers instead of sending it to login).
async fn signed_in(browser: &Browser) -> bool {
    browser.get("/account/security").await.status() == StatusCode::OK
}

fn amr_of_sessions(app: &TestApp, username: &str) -> Vec<String> {
    sessions::table
        .filter(sessions::user_id.eq(user_id(app, username)))
        .select(sessions::amr)
        .load(&mut *app.state.db.conn().unwrap())
        .unwrap()
}

#[tokio::test]
async fn the_security_page_needs_a_signed_in_user() {
    let app = spawn_app().await;
    let response = app.new_browser().get("/account/security").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Faccount%2Fsecurity");
    let browser = app.user_browser().await;
    let response = browser.get("/account/security").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let html = response.text().await.unwrap();
    assert_eq!(element_text(&html, "#totp-state").as_deref(), Some("Off"));
}

#[tokio::test]
async fn enrolment_shows_a_qr_code_and_the_secret_in_text() {
    let app = spawn_app().await;
    let browser = app.user_browser().await;
    let html = start_enrolment(&browser).await;
    let secret = shown_secret(&html);
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    );
    assert!(html.contains("<svg"), "QR code drawn as SVG");
    assert!(
        html.contains("<path") || html.contains("<rect"),
        "QR modules drawn"
    );
    let uri = element_text(&html, "#otpauth-uri").unwrap();
    assert!(uri.starts_with("otpauth://totp/127.0.0.1:alice?"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=127.0.0.1"), "{uri}");
    assert!(
        uri.contains("period=30") && uri.contains("digits=6"),
        "{uri}"
    );
    // Starting again replaces the unconfirmed secret.
    let again = shown_secret(&start_enrolment(&browser).await);
    assert_ne!(again, secret);
    // An unconfirmed secret is no factor: sign-in needs only the password.
    let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn confirming_needs_a_right_code_and_shows_ten_recovery_codes_once() {
    let app = spawn_app().await;
    let browser = app.user_browser().await;
    let html = start_enrolment(&browser).await;
    let secret = shown_secret(&html);
    let token = csrf_token(&html).unwrap();
    let step = settled_step().await;
    let wrong = code_at(&secret, step + 5);
    let response = browser
        .post_form(
            "/account/security/totp/confirm",
            &[("code", wrong.as_str()), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert_eq!(
        shown_secret(&html),
        secret,
        "the same secret is shown again"
    );
    let (_, page) = browser.get_html("/account/security").await;
    assert_eq!(element_text(&page, "#totp-state").as_deref(), Some("Off"));

    let right = code_at(&secret, step);
    let response = browser
        .post_form(
            "/account/security/totp/confirm",
            &[("code", right.as_str()), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let codes = recovery_codes_shown(&response.text().await.unwrap());
    assert_eq!(codes.len(), 10);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'),
        "{codes:?}"
    );
    let (_, page) = browser.get_html("/account/security").await;
    assert_eq!(element_text(&page, "#totp-state").as_deref(), Some("On"));
    assert_eq!(element_text(&page, "#recovery-left").as_deref(), Some("10"));
    for code in &codes {
        assert!(!page.contains(code.as_str()), "codes are shown once");
    }
    // Confirming again (a replayed form) changes nothing.
    let response = browser
        .post_form(
            "/account/security/totp/confirm",
            &[("code", right.as_str()), ("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_enrolled",
        "succeeded",
        "totp"
    ));
}

#[tokio::test]
async fn signing_in_asks_for_the_factor_and_starts_no_session_before_it() {
    let app = spawn_app().await;
    let enrolled = enrol(&app.user_browser().await).await;
    let sessions_before = session_count(&app, USER_USERNAME);

    let browser = app.new_browser();
    let response = browser
        .login_next(USER_USERNAME, USER_PASSWORD, Some("/account/security"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login/factor");
    assert!(!signed_in(&browser).await, "no session before the factor");
    assert_eq!(session_count(&app, USER_USERNAME), sessions_before);
    let response = browser.get("/login/factor").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    assert!(html.contains("name=\"code\""));
    assert!(
        !html.contains("/login/passkey"),
        "no passkey, no passkey button"
    );

    let step = settled_step().await;
    assert!(step > enrolled.confirmed_step);
    let response = submit_factor(&browser, &code_at(&enrolled.secret, step)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account/security");
    assert!(signed_in(&browser).await);
    assert_eq!(session_count(&app, USER_USERNAME), sessions_before + 1);
    assert!(amr_of_sessions(&app, USER_USERNAME).contains(&"pwd otp mfa".to_owned()));
    // The pending login was used up.
    assert_eq!(location(&browser.get("/login/factor").await), "/login");
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_used",
        "succeeded",
        "totp"
    ));
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "sign_in",
        "succeeded",
        "pwd+totp"
    ));
}

#[tokio::test]
async fn the_factor_page_without_a_pending_login_sends_to_the_login_page() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    assert_eq!(location(&browser.get("/login/factor").await), "/login");
    // A signed-in user without a pending login is not let through either.
    let browser = app.user_browser().await;
    let token = browser.csrf_token("/login").await;
    let response = browser
        .post_form(
            "/login/factor",
            &[("code", "123456"), ("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(location(&response), "/login");
}

#[tokio::test]
async fn a_replayed_code_is_refused() {
    let app = spawn_app().await;
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let step = settled_step().await;
    let code = code_at(&secret, step);
    let first = app.new_browser();
    password_step(&first, USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(
        submit_factor(&first, &code).await.status(),
        StatusCode::SEE_OTHER
    );

    let second = app.new_browser();
    password_step(&second, USER_USERNAME, USER_PASSWORD).await;
    let response = submit_factor(&second, &code).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!signed_in(&second).await);
    // An older code than the one used is refused too, even within the skew.
    let response = submit_factor(&second, &code_at(&secret, step - 1)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_used",
        "failed",
        "totp"
    ));
    // The next step's code is fine.
    let response = submit_factor(&second, &code_at(&secret, step + 1)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_code_of_the_previous_step_is_accepted_and_of_two_steps_ago_refused() {
    let app = spawn_app().await;
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let browser = app.new_browser();
    password_step(&browser, USER_USERNAME, USER_PASSWORD).await;
    let step = settled_step().await;
    let response = submit_factor(&browser, &code_at(&secret, step - 2)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = submit_factor(&browser, &code_at(&secret, step + 2)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = submit_factor(&browser, &code_at(&secret, step - 1)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn concurrent_submissions_of_one_code_succeed_once() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 100;
        s.login_throttle.max_failures_per_address = 1000;
    })
    .await;
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let mut browsers = Vec::new();
    for _ in 0..6 {
        let browser = app.new_browser();
        password_step(&browser, USER_USERNAME, USER_PASSWORD).await;
        let token = browser.csrf_token("/login/factor").await;
        browsers.push((browser, token));
    }
    let step = settled_step().await;
    let code = code_at(&secret, step);
    let handles: Vec<_> = browsers
        .into_iter()
        .map(|(browser, token)| {
            let code = code.clone();
            tokio::spawn(async move {
                browser
                    .post_form("/login/factor", &[("code", code), ("csrf_token", token)])
                    .await
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.expect("request task"));
    }
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((accepted, refused), (1, 5), "{statuses:?}");
}

#[tokio::test]
async fn recovery_codes_sign_in_once_each() {
    let app = spawn_app().await;
    let enrolled = enrol(&app.user_browser().await).await;
    let browser = app.new_browser();
    password_step(&browser, USER_USERNAME, USER_PASSWORD).await;
    let first = &enrolled.recovery_codes[0];
    assert_eq!(
        submit_factor(&browser, first).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(amr_of_sessions(&app, USER_USERNAME).contains(&"pwd mfa otp".to_owned()));

    let again = app.new_browser();
    password_step(&again, USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(
        submit_factor(&again, first).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(!signed_in(&again).await);
    // Typed loosely: upper case, a space instead of the dash.
    let second = enrolled.recovery_codes[1].to_uppercase().replace('-', " ");
    assert_eq!(
        submit_factor(&again, &second).await.status(),
        StatusCode::SEE_OTHER
    );
    let (_, page) = again.get_html("/account/security").await;
    assert_eq!(element_text(&page, "#recovery-left").as_deref(), Some("8"));
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_used",
        "succeeded",
        "recovery_code"
    ));
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_used",
        "failed",
        "recovery_code"
    ));
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "sign_in",
        "succeeded",
        "pwd+recovery_code"
    ));
}

#[tokio::test]
async fn removing_the_authenticator_needs_the_password() {
    let app = spawn_app().await;
    let browser = app.user_browser().await;
    enrol(&browser).await;
    let response = browser
        .submit(
            "/account/security",
            "/account/security/totp/disable",
            &[("password", "not-the-password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (_, page) = browser.get_html("/account/security").await;
    assert_eq!(element_text(&page, "#totp-state").as_deref(), Some("On"));

    let response = browser
        .submit(
            "/account/security",
            "/account/security/totp/disable",
            &[("password", USER_PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = browser.get_html(&location(&response)).await;
    assert_eq!(element_text(&page, "#totp-state").as_deref(), Some("Off"));
    assert!(page.contains("was removed"));
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_removed",
        "succeeded",
        "totp"
    ));
    // Sign-in needs only the password again.
    let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn new_recovery_codes_need_the_password_and_replace_the_old_ones() {
    let app = spawn_app().await;
    let browser = app.user_browser().await;
    let enrolled = enrol(&browser).await;
    let response = browser
        .submit(
            "/account/security",
            "/account/security/recovery-codes",
            &[("password", "not-the-password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = browser
        .submit(
            "/account/security",
            "/account/security/recovery-codes",
            &[("password", USER_PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let fresh = recovery_codes_shown(&response.text().await.unwrap());
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !enrolled.recovery_codes.contains(c)));
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_enrolled",
        "succeeded",
        "recovery_codes"
    ));

    let login = app.new_browser();
    password_step(&login, USER_USERNAME, USER_PASSWORD).await;
    let old = &enrolled.recovery_codes[0];
    assert_eq!(
        submit_factor(&login, old).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        submit_factor(&login, &fresh[0]).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn wrong_codes_count_against_the_password_throttle() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 4;
        s.login_throttle.max_failures_per_address = 1000;
    })
    .await;
    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let step = settled_step().await;
    // A right code resets the count, as a right password does.
    let browser = app.new_browser();
    password_step(&browser, USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(
        submit_factor(&browser, "000000").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let code = code_at(&secret, step);
    assert_eq!(
        submit_factor(&browser, &code).await.status(),
        StatusCode::SEE_OTHER
    );

    let guesser = app.new_browser();
    password_step(&guesser, USER_USERNAME, USER_PASSWORD).await;
    let mut statuses = Vec::new();
    for guess in ["000001", "000002", "000003", "000004"] {
        statuses.push(submit_factor(&guesser, guess).await.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Even the right code is refused now, and so is the password elsewhere.
    let response = submit_factor(&guesser, &code_at(&secret, step + 1)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(has_audit(
        &app,
        USER_USERNAME,
        "factor_used",
        "throttled",
        ""
    ));
    assert!(has_audit(&app, USER_USERNAME, "sign_in", "throttled", ""));
}

#[tokio::test]
async fn every_factor_form_is_refused_without_its_csrf_token() {
    let app = spawn_app().await;
    let browser = app.user_browser().await;
    let paths = [
        "/account/security/totp/start",
        "/account/security/totp/confirm",
        "/account/security/totp/disable",
        "/account/security/recovery-codes",
    ];
    for path in paths {
        for token in [None, Some("wrong")] {
            let mut form = vec![("password", USER_PASSWORD), ("code", "123456")];
            if let Some(token) = token {
                form.push(("csrf_token", token));
            }
            let response = browser.post_form(path, &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {token:?}");
        }
    }
    let (_, page) = browser.get_html("/account/security").await;
    assert_eq!(element_text(&page, "#totp-state").as_deref(), Some("Off"));

    let secret = add_confirmed_totp(&app, USER_USERNAME);
    let login = app.new_browser();
    password_step(&login, USER_USERNAME, USER_PASSWORD).await;
    let code = code_at(&secret, settled_step().await);
    let response = login
        .post_form("/login/factor", &[("code", code.as_str())])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(!signed_in(&login).await);
    // The code was not used up by the refused form.
    assert_eq!(
        submit_factor(&login, &code).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn the_factor_page_offers_a_passkey_only_to_users_with_one() {
    let app = spawn_app().await;
    add_confirmed_totp(&app, USER_USERNAME);
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::id.eq("credential-1"),
            passkeys::user_id.eq(user_id(&app, USER_USERNAME)),
            passkeys::name.eq("Laptop"),
            passkeys::passkey.eq("{}"),
            passkeys::created_at.eq(oidc_core::unix_now()),
        ))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
    let browser = app.new_browser();
    password_step(&browser, USER_USERNAME, USER_PASSWORD).await;
    let (_, html) = browser.get_html("/login/factor").await;
    assert!(
        html.contains("href=\"/login/passkey?mode=factor\""),
        "{html}"
    );
    assert!(html.contains("name=\"code\""));

    // A user with only a passkey is asked for the factor too, and offered only the passkey.
    app.add_user("bob", "bob-password-123");
    diesel::insert_into(passkeys::table)
        .values((
            passkeys::id.eq("credential-2"),
            passkeys::user_id.eq(user_id(&app, "bob")),
            passkeys::name.eq("Phone"),
            passkeys::passkey.eq("{}"),
            passkeys::created_at.eq(oidc_core::unix_now()),
        ))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
    let bob = app.new_browser();
    password_step(&bob, "bob", "bob-password-123").await;
    let (_, html) = bob.get_html("/login/factor").await;
    assert!(html.contains("/login/passkey?mode=factor"));
    assert!(!html.contains("name=\"code\""));
    assert!(!signed_in(&bob).await);
}

#[tokio::test]
async fn failed_and_successful_password_sign_ins_are_audited() {
    let app = spawn_app().await;
    app.new_browser()
        .login(USER_USERNAME, "not-the-password")
        .await;
    app.new_browser().login("nobody", "not-the-password").await;
    app.user_browser().await;
    let rows = audit_rows(&app, USER_USERNAME);
    assert!(
        rows.contains(&("sign_in".into(), "failed".into(), "pwd".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("sign_in".into(), "succeeded".into(), "pwd".into())),
        "{rows:?}"
    );
    assert!(has_audit(&app, "nobody", "sign_in", "failed", "pwd"));
}

#[tokio::test]
async fn throttled_refusals_are_recorded_once_per_window_not_once_per_request() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 2;
        s.login_throttle.max_failures_per_address = 1000;
    })
    .await;
    for _ in 0..8 {
        app.new_browser().login(USER_USERNAME, "guess").await;
    }
    let rows = audit_rows(&app, USER_USERNAME);
    let count = |outcome: &str| {
        rows.iter()
            .filter(|(k, o, _)| k == "sign_in" && o == outcome)
            .count()
    };
    assert_eq!(count("failed"), 2, "{rows:?}");
    assert_eq!(count("throttled"), 1, "{rows:?}");
}
