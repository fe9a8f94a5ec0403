//! Expired access tokens are refreshed before the API call, once even under concurrency.

use std::time::Duration;

use testkit::{Browser, Page, Stack};

use crate::helpers::{SESSION_COOKIE, session_json, sign_in, url};

fn assert_api_answered(home: &Page) {
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(
        home.select_text("#api-error").unwrap().is_none(),
        "{}",
        home.text()
    );
    let api: serde_json::Value =
        serde_json::from_str(&home.select_text("#api").unwrap().unwrap()).unwrap();
    assert_eq!(api["username"], "alice");
}

#[tokio::test]
async fn expired_access_token_is_refreshed_once_for_concurrent_requests() {
    let stack = Stack::start_with(|provider| provider.access_token_ttl_secs = 3, |_| {})
        .await
        .unwrap();
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_api_answered(&home);

    // Expired: the provider's API would answer 401 to the old token.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let home = browser.get(stack.webapp.url("/")).await.unwrap();
    assert_api_answered(&home);

    // Expired again, and several requests at once carry the same refresh token. Spending it
    // twice would make the provider revoke the whole grant (refresh-token reuse detection).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let (browser, url) = (browser.clone(), stack.webapp.url("/"));
            tokio::spawn(async move { browser.get(url).await })
        })
        .collect();
    for request in requests {
        assert_api_answered(&request.await.unwrap().unwrap());
    }
    // The grant is intact: the next expiry refreshes fine.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let home = browser.get(stack.webapp.url("/")).await.unwrap();
    assert_api_answered(&home);
    assert!(
        session_json(&browser, &stack.webapp)
            .await
            .get("error")
            .is_none()
    );
}

#[tokio::test]
async fn refused_refresh_sends_the_user_to_sign_in_again() {
    let stack = Stack::start_with(
        |provider| {
            provider.access_token_ttl_secs = 2;
            provider.refresh_token_ttl_secs = 2;
        },
        |_| {},
    )
    .await
    .unwrap();
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_api_answered(&home);

    tokio::time::sleep(Duration::from_millis(3000)).await;
    let page = browser.get(stack.webapp.url("/")).await.unwrap();
    assert_eq!(page.status, 302);
    let location = page.location().unwrap().unwrap();
    assert_eq!(location.path(), "/api/auth/signin");
    assert_eq!(
        testkit::query_param(&location, "error").as_deref(),
        Some("RefreshAccessTokenError")
    );
    // The session says why, as NextAuth's does, and every page now asks to sign in.
    let session = session_json(&browser, &stack.webapp).await;
    assert_eq!(session["error"], "RefreshAccessTokenError");
    let signin = browser.visit(stack.webapp.url("/")).await.unwrap();
    assert_eq!(signin.url.path(), "/api/auth/signin");
    assert!(signin.select_text("#signin-error").unwrap().is_some());

    // Signing in again clears it.
    let home = sign_in(&browser, &stack).await.unwrap();
    assert_api_answered(&home);
    assert!(
        session_json(&browser, &stack.webapp)
            .await
            .get("error")
            .is_none()
    );
}

/// `page` sends the browser to sign in again because the refresh failed.
fn assert_sign_in_again(page: &Page) {
    assert_eq!(page.status, 302, "{}", page.body);
    let location = page.location().unwrap().unwrap();
    assert_eq!(location.path(), "/api/auth/signin");
    assert_eq!(
        testkit::query_param(&location, "error").as_deref(),
        Some("RefreshAccessTokenError")
    );
}

#[tokio::test]
async fn an_old_cookie_copy_after_a_finished_refresh_does_not_get_the_new_tokens() {
    let stack = Stack::start_with(|provider| provider.access_token_ttl_secs = 3, |_| {})
        .await
        .unwrap();
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_api_answered(&home);
    let site = url(&stack.webapp.url("/"));
    let old_copy = browser.cookie(&site, SESSION_COOKIE).unwrap();

    // The access token expires and the browser's next request refreshes it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_api_answered(&browser.get(stack.webapp.url("/")).await.unwrap());
    assert_ne!(browser.cookie(&site, SESSION_COOKIE).unwrap(), old_copy);

    // Someone holding the older copy of the cookie comes after the refresh finished: the old
    // refresh token goes to the provider, which sees it reused and refuses it.
    let thief = Browser::new();
    thief.set_cookie(&site, &format!("{SESSION_COOKIE}={old_copy}; Path=/"));
    let page = thief.get(stack.webapp.url("/")).await.unwrap();
    assert_sign_in_again(&page);
    assert!(!page.body.contains("alice"), "{}", page.body);

    // The reuse revoked the grant: the refreshed session cannot refresh again either.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_sign_in_again(&browser.get(stack.webapp.url("/")).await.unwrap());
}
