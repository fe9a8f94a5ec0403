//! The login throttle with several provider processes on one database, and across a restart:
//! its counters live in the database, so every process counts against the same limits.

use std::sync::Arc;

use provider::config::Settings;
use reqwest::StatusCode;

use crate::helpers::{
    ADMIN_PASSWORD, ADMIN_USERNAME, TestApp, USER_PASSWORD, USER_USERNAME, spawn_app_in,
    spawn_app_with,
};

const UNAUTHORIZED: StatusCode = StatusCode::UNAUTHORIZED;
const THROTTLED: StatusCode = StatusCode::TOO_MANY_REQUESTS;

fn limits(account: u32, address: u32) -> impl Fn(&mut Settings) + Copy {
    move |s: &mut Settings| {
        s.login_throttle.max_failures_per_account = account;
        s.login_throttle.max_failures_per_address = address;
    }
}

/// Two providers serving one database, as replicas behind a load balancer do.
async fn two_replicas(account: u32, address: u32) -> (TestApp, TestApp) {
    let first = spawn_app_with(limits(account, address)).await;
    let second = spawn_app_in(Arc::clone(&first.dir), limits(account, address)).await;
    (first, second)
}

#[tokio::test]
async fn wrong_passwords_alternated_between_two_replicas_are_throttled_after_the_limit_in_total() {
    let (a, b) = two_replicas(3, 100).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        let response = app.new_browser().login(USER_USERNAME, "guess").await;
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            UNAUTHORIZED,
            UNAUTHORIZED,
            UNAUTHORIZED,
            THROTTLED,
            THROTTLED,
            THROTTLED
        ]
    );
    // The right password is refused at both while the account is throttled.
    for app in [&a, &b] {
        let right = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
        assert_eq!(right.status(), THROTTLED);
        assert!(right.headers().contains_key("retry-after"));
    }
    // Another account from the same address signs in at both.
    for app in [&a, &b] {
        let other = app
            .new_browser()
            .login(ADMIN_USERNAME, ADMIN_PASSWORD)
            .await;
        assert_eq!(other.status(), StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn guesses_from_one_address_alternated_between_two_replicas_share_the_address_limit() {
    let (a, b) = two_replicas(100, 4).await;
    for i in 0..4 {
        let app = if i % 2 == 0 { &a } else { &b };
        let response = app.new_browser().login(&format!("user{i}"), "guess").await;
        assert_eq!(response.status(), UNAUTHORIZED, "guess {i}");
    }
    for app in [&a, &b] {
        let response = app.new_browser().login("someone-else", "guess").await;
        assert_eq!(response.status(), THROTTLED);
    }
}

#[tokio::test]
async fn concurrent_wrong_passwords_at_two_replicas_reach_the_password_check_at_most_limit_times() {
    let (a, b) = two_replicas(5, 1000).await;
    let browsers = [a.new_browser(), b.new_browser()];
    let mut tokens = Vec::new();
    for browser in &browsers {
        tokens.push(browser.csrf_token("/login").await);
    }
    let posts = (0..40).map(|i| {
        let browser = browsers[i % 2].clone();
        let token = tokens[i % 2].clone();
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
    let checked = statuses.iter().filter(|s| **s == UNAUTHORIZED).count();
    let throttled = statuses.iter().filter(|s| **s == THROTTLED).count();
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    assert_eq!(checked + throttled, 40, "{statuses:?}");
}

#[tokio::test]
async fn a_success_at_one_replica_resets_the_account_at_the_other() {
    let (a, b) = two_replicas(3, 100).await;
    for _ in 0..2 {
        let response = a.new_browser().login(USER_USERNAME, "guess").await;
        assert_eq!(response.status(), UNAUTHORIZED);
    }
    b.user_browser().await;
    for _ in 0..3 {
        let response = a.new_browser().login(USER_USERNAME, "guess").await;
        assert_eq!(response.status(), UNAUTHORIZED);
    }
    let response = b.new_browser().login(USER_USERNAME, "guess").await;
    assert_eq!(response.status(), THROTTLED);
}

#[tokio::test]
async fn throttle_counts_survive_a_restart() {
    let app = spawn_app_with(limits(3, 100)).await;
    for _ in 0..3 {
        let response = app.new_browser().login(USER_USERNAME, "guess").await;
        assert_eq!(response.status(), UNAUTHORIZED);
    }
    let dir = app.stop().await;
    let app = spawn_app_in(dir, limits(3, 100)).await;
    let right = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(right.status(), THROTTLED);
    let retry_after: u64 = right.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("seconds");
    assert!((1..=300).contains(&retry_after), "{retry_after}");
}
