//! The login and logout pages: CSRF, the same answer for unknown users and wrong passwords,
//! throttling, safe `next` redirects, session renewal.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{
    ADMIN_PASSWORD, ADMIN_USERNAME, USER_PASSWORD, USER_USERNAME, csrf_token, input_value,
    location, spawn_app, spawn_app_with, without_csrf,
};

#[tokio::test]
async fn login_succeeds_and_redirects_to_next() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let response = browser
        .login_next(
            USER_USERNAME,
            USER_PASSWORD,
            Some("/oauth/authorize?client_id=x"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/oauth/authorize?client_id=x");
    let (_, home) = browser.get_html("/").await;
    assert!(home.contains("Alice Example"), "{home}");
}

#[tokio::test]
async fn next_to_another_origin_is_ignored() {
    let app = spawn_app().await;
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let browser = app.new_browser();
        let response = browser
            .login_next(USER_USERNAME, USER_PASSWORD, Some(next))
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), "/", "{next}");
    }
}

#[tokio::test]
async fn login_form_is_shown_even_when_signed_in() {
    let app = spawn_app().await;
    let browser = app.user_browser().await;
    let (status, html) = browser.get_html("/login").await;
    assert_eq!(status, 200);
    assert!(html.contains("name=\"password\""));
}

async fn timed_login(
    browser: &crate::helpers::Browser,
    username: &str,
) -> (StatusCode, String, Duration) {
    let token = browser.csrf_token("/login").await;
    let started = Instant::now();
    let response = browser
        .post_form(
            "/login",
            &[
                ("username", username),
                ("password", "not-the-password"),
                ("csrf_token", &token),
            ],
        )
        .await;
    let elapsed = started.elapsed();
    let status = response.status();
    let body = without_csrf(&response.text().await.expect("body"));
    (status, body.replace(username, "NAME"), elapsed)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    // A cost where one bcrypt check clearly outweighs the rest of the request, so skipping the
    // check for unknown users would show.
    let app = spawn_app_with(|s| s.bcrypt_cost = 8).await;
    let browser = app.new_browser();
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let (status_a, body_a, time_a) = timed_login(&browser, USER_USERNAME).await;
        let (status_b, body_b, time_b) = timed_login(&browser, "nobody-here").await;
        assert_eq!(status_a, StatusCode::UNAUTHORIZED);
        assert_eq!(status_a, status_b);
        assert!(body_a.contains("Incorrect username or password."));
        // The pages differ only in the username typed back into the form.
        assert_eq!(body_a, body_b);
        known.push(time_a);
        unknown.push(time_b);
    }
    let (known, unknown) = (median(known), median(unknown));
    assert!(
        unknown * 2 > known && known * 2 > unknown,
        "wrong password {known:?} vs unknown user {unknown:?}"
    );
}

#[tokio::test]
async fn deactivated_user_cannot_log_in() {
    let app = spawn_app().await;
    let user = app
        .state
        .db
        .run(|conn| provider::storage::users::find_by_username(conn, USER_USERNAME))
        .await
        .expect("query")
        .expect("alice");
    app.state
        .db
        .run(move |conn| provider::storage::users::set_active(conn, &user.id, false))
        .await
        .expect("deactivate");
    let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_without_or_with_a_wrong_csrf_token_is_refused() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let _ = browser.csrf_token("/login").await;
    let missing = browser
        .post_form(
            "/login",
            &[("username", USER_USERNAME), ("password", USER_PASSWORD)],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = browser
        .post_form(
            "/login",
            &[
                ("username", USER_USERNAME),
                ("password", USER_PASSWORD),
                ("csrf_token", "forged"),
            ],
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // A token from another session does not count either.
    let other = app.new_browser().csrf_token("/login").await;
    let foreign = browser
        .post_form(
            "/login",
            &[
                ("username", USER_USERNAME),
                ("password", USER_PASSWORD),
                ("csrf_token", &other),
            ],
        )
        .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    // Nothing changed: still signed out.
    let (_, home) = browser.get_html("/").await;
    assert!(!home.contains("signed in as"), "{home}");
}

#[tokio::test]
async fn session_is_renewed_at_login() {
    let app = spawn_app().await;
    let browser = app.new_browser();
    let before = browser.csrf_token("/login").await;
    let response = browser.login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let after = browser.csrf_token("/logout").await;
    assert_ne!(
        before, after,
        "the pre-login session state must not survive the login"
    );
}

#[tokio::test]
async fn logout_needs_csrf_and_ends_the_session() {
    let app = spawn_app().await;
    let browser = app.user_browser().await;
    let refused = browser.post_form("/logout", &[] as &[(&str, &str)]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, home) = browser.get_html("/").await;
    assert!(home.contains("signed in as"));

    let response = browser.submit("/logout", "/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, home) = browser.get_html("/").await;
    assert!(!home.contains("signed in as"), "{home}");
}

#[tokio::test]
async fn throttling_engages_per_account_and_spares_other_users() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 3;
        s.login_throttle.max_failures_per_address = 100;
    })
    .await;
    let attacker = app.new_browser();
    for _ in 0..3 {
        let r = attacker.login(USER_USERNAME, "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = attacker.login(USER_USERNAME, "guess").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
    // Even the right password is refused while the account is throttled.
    let right = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another user from the same address still logs in.
    let other = app
        .new_browser()
        .login(ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn throttling_engages_per_address() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 100;
        s.login_throttle.max_failures_per_address = 4;
    })
    .await;
    let browser = app.new_browser();
    for i in 0..4 {
        let r = browser.login(&format!("user{i}"), "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let throttled = browser.login("someone-else", "guess").await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let html = throttled.text().await.expect("body");
    assert!(csrf_token(&html).is_some(), "the form stays usable");
}

#[tokio::test]
async fn login_hint_and_next_are_carried_by_the_form() {
    let app = spawn_app().await;
    let (status, html) = app
        .browser
        .get_html(
            "/login?login_hint=alice&next=%2Foauth%2Fauthorize%3Fclient_id%3Dx%26state%3D%22%3E",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(input_value(&html, "username").as_deref(), Some("alice"));
    assert_eq!(
        input_value(&html, "next").as_deref(),
        Some("/oauth/authorize?client_id=x&state=\">")
    );
    assert!(!html.contains("state=\">"), "escaped in the page");
}

#[tokio::test]
async fn behind_a_trusted_proxy_addresses_come_from_x_forwarded_for() {
    let app = spawn_app_with(|s| {
        s.trust_forwarded_for = true;
        s.login_throttle.max_failures_per_account = 100;
        s.login_throttle.max_failures_per_address = 2;
    })
    .await;
    let browser = app.new_browser();
    let attempt = |forwarded: &'static str, username: &'static str| {
        let browser = browser.clone();
        async move {
            let token = browser.csrf_token("/login").await;
            browser
                .client
                .post(format!("{}/login", browser.base))
                .header("X-Forwarded-For", forwarded)
                .form(&[
                    ("username", username),
                    ("password", "guess"),
                    ("csrf_token", token.as_str()),
                ])
                .send()
                .await
                .expect("POST")
                .status()
        }
    };
    // The proxy appended the real address last; the first entry is the client's claim.
    assert_eq!(
        attempt("1.1.1.1, 10.0.0.1", "a").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("2.2.2.2, 10.0.0.1", "b").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("3.3.3.3, 10.0.0.1", "c").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Someone else behind the same proxy is not affected.
    assert_eq!(attempt("10.0.0.2", "d").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn throttled_address_spares_legitimate_users_at_other_addresses() {
    let app = spawn_app_with(|s| {
        s.trust_forwarded_for = true;
        s.login_throttle.max_failures_per_account = 100;
        s.login_throttle.max_failures_per_address = 3;
    })
    .await;
    let attempt = |forwarded: &'static str, username: &'static str, password: &'static str| {
        let browser = app.new_browser();
        async move {
            let token = browser.csrf_token("/login").await;
            browser
                .client
                .post(format!("{}/login", browser.base))
                .header("X-Forwarded-For", forwarded)
                .form(&[
                    ("username", username),
                    ("password", password),
                    ("csrf_token", token.as_str()),
                ])
                .send()
                .await
                .expect("POST")
                .status()
        }
    };
    for username in ["a", "b", USER_USERNAME] {
        assert_eq!(
            attempt("192.0.2.1", username, "guess").await,
            StatusCode::UNAUTHORIZED
        );
    }
    // The guessing address is throttled, even with the right password.
    assert_eq!(
        attempt("192.0.2.1", ADMIN_USERNAME, ADMIN_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The same accounts from other addresses log in.
    assert_eq!(
        attempt("198.51.100.7", USER_USERNAME, USER_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        attempt("198.51.100.8", ADMIN_USERNAME, ADMIN_PASSWORD).await,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn concurrent_wrong_passwords_reach_the_password_check_at_most_limit_times() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 5;
        s.login_throttle.max_failures_per_address = 1000;
    })
    .await;
    // One browser session, one CSRF token, 40 posts at once.
    let browser = app.new_browser();
    let token = browser.csrf_token("/login").await;
    let posts = (0..40).map(|_| {
        let browser = browser.clone();
        let token = token.clone();
        tokio::spawn(async move {
            browser
                .post_form(
                    "/login",
                    &[
                        ("username", USER_USERNAME),
                        ("password", "guess"),
                        ("csrf_token", token.as_str()),
                    ],
                )
                .await
                .status()
        })
    });
    let mut statuses = Vec::new();
    for post in posts.collect::<Vec<_>>() {
        statuses.push(post.await.expect("task"));
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    assert_eq!(checked + throttled, 40, "{statuses:?}");
    // The account stays throttled afterwards, even for the right password.
    let right = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn concurrent_wrong_passwords_from_one_address_are_bounded_by_the_address_limit() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 1000;
        s.login_throttle.max_failures_per_address = 4;
    })
    .await;
    let browser = app.new_browser();
    let token = browser.csrf_token("/login").await;
    let posts = (0..30).map(|i| {
        let browser = browser.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let username = format!("user{i}");
            browser
                .post_form(
                    "/login",
                    &[
                        ("username", username.as_str()),
                        ("password", "guess"),
                        ("csrf_token", token.as_str()),
                    ],
                )
                .await
                .status()
        })
    });
    let mut checked = 0;
    for post in posts.collect::<Vec<_>>() {
        let status = post.await.expect("task");
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        checked += usize::from(status == StatusCode::UNAUTHORIZED);
    }
    assert!(checked <= 4, "{checked} passwords checked");
}

#[tokio::test]
async fn a_successful_login_gives_its_address_slot_back() {
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 100;
        s.login_throttle.max_failures_per_address = 2;
    })
    .await;
    // Successful logins do not use up the address's allowance.
    for _ in 0..4 {
        app.user_browser().await;
    }
    let browser = app.new_browser();
    for username in ["a", "b"] {
        let r = browser.login(username, "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = browser.login("c", "guess").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect()
}

/// The provider's `Set-Cookie` header after a login. The cookie is carried by hand: a user agent
/// keeps a `Secure` cookie away from plain HTTP, which is all a test server speaks.
async fn session_cookie_after_login(app: &crate::helpers::TestApp) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{}", app.port);
    let form = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("GET /login");
    let cookie = set_cookies(&form)
        .into_iter()
        .next()
        .expect("a session cookie");
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let token = csrf_token(&form.text().await.expect("body")).expect("csrf token");
    let response = client
        .post(format!("{base}/login"))
        .header("cookie", pair)
        .form(&[
            ("username", USER_USERNAME),
            ("password", USER_PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .expect("POST /login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    cookies.into_iter().next().expect("a session cookie")
}

#[tokio::test]
async fn https_issuer_gets_a_host_prefixed_secure_session_cookie() {
    let app = spawn_app_with(|s| s.issuer = "https://login.example.test".to_owned()).await;
    let cookie = session_cookie_after_login(&app).await;
    let attributes: Vec<String> = cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(cookie.starts_with("__Host-"), "{cookie}");
    for expected in ["secure", "httponly", "samesite=lax", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == expected),
            "{expected}: {cookie}"
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{cookie}"
    );
}

#[tokio::test]
async fn http_issuer_keeps_a_plain_session_cookie_name() {
    let app = spawn_app().await;
    let cookie = session_cookie_after_login(&app).await;
    assert!(cookie.starts_with("provider_session="), "{cookie}");
    assert!(!cookie.to_ascii_lowercase().contains("secure"), "{cookie}");
}
