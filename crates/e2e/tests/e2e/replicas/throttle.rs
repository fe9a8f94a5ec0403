//! Password guesses spread over both replicas count against one limit.

use reqwest::StatusCode;
use testkit::Browser;
use testkit::replicas::Backend;

use super::{login_page_at, on_each_backend, two_replicas};
use testkit::login_form;

/// Failed logins an account may have within the window, in these tests.
const LIMIT: usize = 4;

/// One login attempt at `base` as the seeded user with `password`; the answer's status.
async fn attempt(browser: &Browser, base: &str, username: &str, password: &str) -> StatusCode {
    let page = login_page_at(browser, base).await;
    let mut form = login_form(&page).expect("login form");
    form.set("username", username).set("password", password);
    let answer = browser.submit_once(&form).await.expect("login answer");
    assert!(
        answer.url.as_str().starts_with(base),
        "the guess went to {base}, not {}",
        answer.url
    );
    answer.status
}

on_each_backend!(password_guesses_spread_over_both_replicas_are_throttled_as_one);
async fn password_guesses_spread_over_both_replicas_are_throttled_as_one(backend: Backend) {
    let limit = LIMIT.to_string();
    let replicas = two_replicas(
        backend,
        &[
            ("PROVIDER_LOGIN_MAX_FAILURES_PER_ACCOUNT", &limit),
            // Every request comes from 127.0.0.1: only the account's limit is under test.
            ("PROVIDER_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000"),
        ],
    )
    .await;
    let (a, b) = (&replicas.processes[0].url, &replicas.processes[1].url);
    let username = &replicas.user.username;

    // LIMIT wrong guesses, alternately at A and at B: each replica alone saw half of them.
    let browser = Browser::new();
    for i in 0..LIMIT {
        let base = if i % 2 == 0 { a } else { b };
        let status = attempt(&browser, base, username, &format!("guess-{i}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "guess {i} at {base}");
    }

    // Now the account is throttled at both replicas and through the balancer, even for the
    // right password.
    for base in [a, b, &replicas.issuer] {
        let status = attempt(&Browser::new(), base, username, &replicas.user.password).await;
        assert_eq!(
            status,
            StatusCode::TOO_MANY_REQUESTS,
            "after {LIMIT} failures spread over both replicas, a login at {base} is throttled"
        );
    }
}
