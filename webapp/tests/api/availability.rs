//! The provider down when the web app starts, and going down in the middle of a flow: friendly
//! pages, no crash, and everything works again once it is back.

use testkit::{Browser, Stack, TestProvider, TestWebapp, start_sign_in};
use webapp::config::BackchannelUrl;

use crate::helpers::{Relay, assert_signed_out, run_until_callback, sign_in};

/// A stack whose web app reaches the provider through `relay` (up or down).
async fn stack_behind_relay(up: bool) -> (Stack, Relay) {
    let provider = TestProvider::start().await.unwrap();
    let relay = Relay::start(provider.port, up).await;
    let backchannel = BackchannelUrl::parse(&relay.url()).unwrap();
    let webapp = TestWebapp::start_with(&provider, |settings| {
        settings.backchannel_url = Some(backchannel);
    })
    .await
    .unwrap();
    (Stack { webapp, provider }, relay)
}

fn assert_friendly_unavailable(page: &testkit::Page) {
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.contains("Sign-in is unavailable"), "{}", page.body);
    assert!(page.header("retry-after").is_some());
    for internal in ["127.0.0.1", "error", "reqwest", "Connection"] {
        assert!(
            !page.text().contains(internal),
            "leaks {internal:?}: {}",
            page.text()
        );
    }
}

#[tokio::test]
async fn provider_down_at_start_then_up() {
    let (stack, relay) = stack_behind_relay(false).await;
    let browser = Browser::new();

    // The web app started anyway and serves its pages.
    let health = browser.get(stack.webapp.url("/healthz")).await.unwrap();
    assert_eq!(health.status, 200);
    let signin = browser.visit(stack.webapp.url("/")).await.unwrap();
    assert_eq!(signin.url.path(), "/api/auth/signin");
    assert_eq!(signin.status, 200);

    // Signing in cannot start yet: a friendly page, not a crash or a hang.
    let page = start_sign_in(&browser, &stack.webapp, "/").await.unwrap();
    assert_friendly_unavailable(&page);
    assert_signed_out(&browser, &stack.webapp).await;

    // The provider comes up: the next attempt discovers it and signs in.
    relay.set_up(true);
    let home = stack.sign_in(&browser).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.contains(&stack.provider.user.email));
    assert!(
        relay.connections() > 0,
        "server-side calls used the back-channel"
    );
}

#[tokio::test]
async fn provider_down_during_a_flow_and_a_session() {
    let (stack, relay) = stack_behind_relay(true).await;
    let browser = Browser::new();

    // The user is at the provider when it goes away (for the web app).
    let callback = run_until_callback(&browser, &stack).await.unwrap();
    relay.set_up(false);
    let page = browser.get(callback.as_str()).await.unwrap();
    assert_friendly_unavailable(&page);
    assert_signed_out(&browser, &stack.webapp).await;

    // Back up: a new sign-in works.
    relay.set_up(true);
    let home = sign_in(&browser, &stack).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.select_text("#api").unwrap().is_some());

    // Down while signed in: the home page still renders, with a friendly note for the API.
    relay.set_up(false);
    let home = browser.get(stack.webapp.url("/")).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.select_text("#session").unwrap().is_some());
    assert!(home.select_text("#api-error").unwrap().is_some());
    assert!(!home.text().contains("127.0.0.1"));

    relay.set_up(true);
    let home = browser.get(stack.webapp.url("/")).await.unwrap();
    assert!(home.select_text("#api").unwrap().is_some());
    assert!(home.select_text("#api-error").unwrap().is_none());
}
