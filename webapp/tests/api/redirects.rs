//! `callbackUrl` is honoured only within the web app's own origin.

use testkit::{Browser, Stack, sign_in_form};

use crate::helpers::follow_until_callback;

const ATTEMPTS: &[&str] = &[
    "//evil.example",
    "//evil.example/path",
    "https://evil.example",
    "https://evil.example/",
    "/\\evil.example",
    "\\\\evil.example",
    "/%2F%2Fevil.example",
    "/%2fevil.example",
    "%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%255C%255Cevil.example",
    "https:evil.example",
    "http:/\\evil.example",
    "/\t/evil.example",
    "javascript:alert(document.cookie)",
];

#[tokio::test]
async fn sign_in_page_drops_foreign_callback_urls() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    for attempt in ATTEMPTS {
        let mut url = url::Url::parse(&stack.webapp.url("/api/auth/signin")).unwrap();
        url.query_pairs_mut().append_pair("callbackUrl", attempt);
        let page = browser.get(url.as_str()).await.unwrap();
        assert_eq!(page.status, 200);
        let form = sign_in_form(&page).unwrap();
        assert_eq!(form.get("callbackUrl"), Some("/"), "{attempt:?}");
    }
    // Our own origin is kept, reduced to a path.
    let mut url = url::Url::parse(&stack.webapp.url("/api/auth/signin")).unwrap();
    url.query_pairs_mut()
        .append_pair("callbackUrl", &stack.webapp.url("/reports?y=1"));
    let page = browser.get(url.as_str()).await.unwrap();
    let form = sign_in_form(&page).unwrap();
    assert_eq!(form.get("callbackUrl"), Some("/reports?y=1"));
}

#[tokio::test]
async fn forged_callback_urls_in_the_sign_in_form_land_at_home() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    // Sign in once, so that later sign-ins pass the provider without any page.
    stack.sign_in(&browser).await.unwrap();

    for attempt in ATTEMPTS {
        let page = browser
            .get(stack.webapp.url("/api/auth/signin"))
            .await
            .unwrap();
        let mut form = sign_in_form(&page).unwrap();
        form.set("callbackUrl", attempt);
        let started = browser.submit_once(&form).await.unwrap();
        assert_eq!(started.status, 303, "{attempt:?}: {}", started.body);
        let callback = follow_until_callback(&browser, started, &stack.webapp)
            .await
            .unwrap()
            .expect("signed in at the provider: straight back to the callback");
        let landed = browser.get(callback.as_str()).await.unwrap();
        assert_eq!(landed.status, 302, "{attempt:?}: {}", landed.body);
        let location = landed.header("location").unwrap();
        assert_eq!(location, "/", "{attempt:?} must not leave the web app");
    }
}

#[tokio::test]
async fn a_request_for_a_double_slash_path_does_not_become_a_foreign_callback() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    // The gate sends an anonymous request for `//evil.example` to sign in with callbackUrl
    // `http://<app>//evil.example`, whose path alone would be protocol-relative.
    let gated = browser
        .get(format!("{}/evil.example/x", stack.webapp.url("/")))
        .await
        .unwrap();
    assert_eq!(gated.status, 302);
    let location = gated.location().unwrap().unwrap();
    let asked = testkit::query_param(&location, "callbackUrl").unwrap();
    assert!(asked.ends_with("//evil.example/x"), "{asked}");
    let signin = browser.follow(gated).await.unwrap();
    assert_eq!(signin.url.path(), "/api/auth/signin");
    let form = sign_in_form(&signin).unwrap();
    assert_eq!(form.get("callbackUrl"), Some("/"), "{}", signin.url);
}
