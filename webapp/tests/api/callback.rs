//! The callback refuses everything but the answer to the sign-in this browser started.

use testkit::{Browser, Stack, query_param};
use url::Url;

use crate::helpers::{FLOW_COOKIE, assert_signed_out, run_until_callback, run_until_callback_with};

/// The callback URL with `param` replaced (or removed when `value` is `None`).
fn with_param(callback: &Url, param: &str, value: Option<&str>) -> Url {
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .filter(|(name, _)| name != param)
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let mut url = callback.clone();
    {
        let mut query = url.query_pairs_mut();
        query.clear().extend_pairs(pairs);
        if let Some(value) = value {
            query.append_pair(param, value);
        }
    }
    url
}

#[tokio::test]
async fn access_denied_returns_to_the_sign_in_page_with_a_message() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let callback = run_until_callback_with(&browser, &stack, "Cancel")
        .await
        .unwrap();
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("access_denied")
    );
    let page = browser.visit(callback.as_str()).await.unwrap();
    assert_eq!(page.url.path(), "/api/auth/signin");
    assert_eq!(
        query_param(&page.url, "error").as_deref(),
        Some("AccessDenied")
    );
    assert!(
        page.select_text("#signin-error").unwrap().is_some(),
        "{}",
        page.body
    );
    // The page offers to try again.
    assert!(testkit::sign_in_form(&page).is_ok());
    assert_signed_out(&browser, &stack.webapp).await;
}

#[tokio::test]
async fn missing_or_wrong_state_is_refused_without_a_session() {
    let stack = Stack::start().await.unwrap();
    for tamper in [None, Some("wrong-state"), Some("")] {
        let browser = Browser::new();
        let callback = run_until_callback(&browser, &stack).await.unwrap();
        let tampered = with_param(&callback, "state", tamper);
        let page = browser.get(tampered.as_str()).await.unwrap();
        assert_eq!(page.status, 400, "state {tamper:?}: {}", page.body);
        assert!(page.contains("Sign-in could not be completed"));
        assert_signed_out(&browser, &stack.webapp).await;
        // The flow cookie was spent: the genuine answer no longer works either.
        let genuine = browser.get(callback.as_str()).await.unwrap();
        assert_eq!(genuine.status, 400);
        assert_signed_out(&browser, &stack.webapp).await;
    }
}

#[tokio::test]
async fn replayed_callback_is_refused_even_with_a_copied_flow_cookie() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    let flow_cookie = browser
        .cookie(&callback, FLOW_COOKIE)
        .expect("flow cookie set");

    let home = browser.visit(callback.as_str()).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.body);

    // The same browser again: the flow cookie is gone.
    let again = browser.get(callback.as_str()).await.unwrap();
    assert_eq!(again.status, 400);
    assert!(browser.cookie(&callback, FLOW_COOKIE).is_none());

    // An attacker with a copy of the flow cookie: the state was already used.
    let attacker = Browser::new();
    attacker.set_cookie(
        &callback,
        &format!("{FLOW_COOKIE}={flow_cookie}; Path=/api/auth/callback"),
    );
    let replay = attacker.get(callback.as_str()).await.unwrap();
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_signed_out(&attacker, &stack.webapp).await;
}

#[tokio::test]
async fn callback_without_a_started_sign_in_is_refused() {
    let stack = Stack::start().await.unwrap();
    let victim = Browser::new();
    let callback = run_until_callback(&victim, &stack).await.unwrap();
    // Login CSRF: someone else's browser is made to visit a genuine callback URL.
    let other = Browser::new();
    let page = other.get(callback.as_str()).await.unwrap();
    assert_eq!(page.status, 400);
    assert_signed_out(&other, &stack.webapp).await;
}

#[tokio::test]
async fn wrong_issuer_parameter_and_provider_errors_are_refused() {
    let stack = Stack::start().await.unwrap();

    let browser = Browser::new();
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(stack.provider.issuer.as_str())
    );
    let forged = with_param(&callback, "iss", Some("http://127.0.0.1:1"));
    let page = browser.get(forged.as_str()).await.unwrap();
    assert_eq!(page.status, 400);
    assert_signed_out(&browser, &stack.webapp).await;

    // The provider promises `iss` (RFC 9207), so an answer without it is refused too.
    let browser = Browser::new();
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    let page = browser
        .get(with_param(&callback, "iss", None).as_str())
        .await
        .unwrap();
    assert_eq!(page.status, 400);
    assert_signed_out(&browser, &stack.webapp).await;

    // Any other error from the provider: a friendly page, nothing internal.
    let browser = Browser::new();
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    let errored = with_param(
        &with_param(&callback, "code", None),
        "error",
        Some("server_error"),
    );
    let page = browser.get(errored.as_str()).await.unwrap();
    assert_eq!(page.status, 400);
    assert!(page.contains("Sign-in could not be completed"));
    assert!(!page.contains("server_error"));
    assert_signed_out(&browser, &stack.webapp).await;

    // A code that the provider did not issue.
    let browser = Browser::new();
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    let page = browser
        .get(with_param(&callback, "code", Some("forged-code")).as_str())
        .await
        .unwrap();
    assert_eq!(page.status, 400);
    assert!(!page.contains("invalid_grant"));
    assert_signed_out(&browser, &stack.webapp).await;
}

#[tokio::test]
async fn callback_for_another_provider_id_is_not_found() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    let mut other = callback.clone();
    other.set_path("/api/auth/callback/someone-else");
    let page = browser.get(other.as_str()).await.unwrap();
    assert_eq!(page.status, 404);
    assert_signed_out(&browser, &stack.webapp).await;
}

/// Whether `page` deletes the flow cookie.
fn removes_the_flow_cookie(page: &testkit::Page) -> bool {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.starts_with(&format!("{FLOW_COOKIE}=;")) && value.contains("Max-Age=0"))
}

#[tokio::test]
async fn every_callback_answer_removes_the_flow_cookie() {
    let stack = Stack::start().await.unwrap();
    type Tamper = fn(&Url) -> Url;
    let tampers: [(&str, Tamper); 4] = [
        ("genuine", |callback| callback.clone()),
        ("wrong state", |callback| {
            with_param(callback, "state", Some("wrong"))
        }),
        ("wrong iss", |callback| {
            with_param(callback, "iss", Some("http://127.0.0.1:1"))
        }),
        ("forged code", |callback| {
            with_param(callback, "code", Some("forged"))
        }),
    ];
    for (name, tamper) in tampers {
        let browser = Browser::new();
        let callback = run_until_callback(&browser, &stack).await.unwrap();
        let page = browser.get(tamper(&callback).as_str()).await.unwrap();
        assert!(removes_the_flow_cookie(&page), "{name}: {:?}", page.headers);
        assert!(browser.cookie(&callback, FLOW_COOKIE).is_none(), "{name}");
    }
}

#[tokio::test]
async fn a_copied_flow_cookie_is_refused_after_any_outcome_of_its_first_use() {
    let stack = Stack::start().await.unwrap();
    // The first use fails its `iss` check; the copy with the genuine answer must still fail.
    let browser = Browser::new();
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    let flow_cookie = browser.cookie(&callback, FLOW_COOKIE).unwrap();
    let forged = with_param(&callback, "iss", Some("http://127.0.0.1:1"));
    assert_eq!(browser.get(forged.as_str()).await.unwrap().status, 400);

    let copy = Browser::new();
    copy.set_cookie(
        &callback,
        &format!("{FLOW_COOKIE}={flow_cookie}; Path=/api/auth/callback"),
    );
    let replay = copy.get(callback.as_str()).await.unwrap();
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert_signed_out(&copy, &stack.webapp).await;
}
