//! Sessions that can be ended: a copy of the session cookie taken before sign-out is worth
//! nothing after it (also after a restart), and sign-out revokes the refresh token.

use testkit::{Browser, Stack, TestProvider, TestWebapp};
use webapp::config::BackchannelUrl;

use crate::helpers::{BackchannelProxy, SESSION_COOKIE, assert_signed_out, session_json, url};

/// Signs out through the confirmation form.
pub async fn sign_out(browser: &Browser, webapp: &TestWebapp) {
    let confirm = browser.get(webapp.url("/api/auth/signout")).await.unwrap();
    let form = confirm.form_with_button("Sign out").unwrap();
    let signed_out = browser.submit_once(&form).await.unwrap();
    assert_eq!(signed_out.status, 303, "{}", signed_out.text());
}

/// A browser holding only `cookie` (a copy of another browser's session cookie).
fn browser_with_cookie(webapp: &TestWebapp, cookie: &str) -> Browser {
    let browser = Browser::new();
    browser.set_cookie(
        &url(&webapp.url("/")),
        &format!("{SESSION_COOKIE}={cookie}; Path=/"),
    );
    browser
}

#[tokio::test]
async fn a_session_cookie_copied_before_sign_out_is_signed_out_also_after_a_restart() {
    let mut stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let copied = browser
        .cookie(&url(&stack.webapp.url("/")), SESSION_COOKIE)
        .expect("a session cookie");

    // The copy works while the session lives.
    let thief = browser_with_cookie(&stack.webapp, &copied);
    assert_eq!(
        session_json(&thief, &stack.webapp).await["user"]["name"],
        "Alice Example"
    );

    sign_out(&browser, &stack.webapp).await;
    assert_signed_out(&browser, &stack.webapp).await;
    let thief = browser_with_cookie(&stack.webapp, &copied);
    assert_signed_out(&thief, &stack.webapp).await;

    // Same database and secret after a restart: still signed out.
    stack.webapp = stack.webapp.restart(&stack.provider).await.unwrap();
    let thief = browser_with_cookie(&stack.webapp, &copied);
    assert_signed_out(&thief, &stack.webapp).await;
}

#[tokio::test]
async fn a_live_session_survives_a_restart() {
    let mut stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    stack.webapp = stack.webapp.restart(&stack.provider).await.unwrap();
    assert_eq!(
        session_json(&browser, &stack.webapp).await["user"]["name"],
        "Alice Example"
    );
}

#[tokio::test]
async fn sign_out_revokes_the_refresh_token_at_the_provider() {
    let (stack, proxy) = behind_proxy(None).await;
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let refresh_token = proxy.seen_refresh_token().expect("a refresh token");

    sign_out(&browser, &stack.webapp).await;

    assert_refused_by_the_provider(&stack, &refresh_token).await;
}

/// A stack whose web app reaches the provider through a [`BackchannelProxy`].
/// `access_token_ttl_secs`: the provider's access-token lifetime, when not its default.
async fn behind_proxy(access_token_ttl_secs: Option<i64>) -> (Stack, BackchannelProxy) {
    let provider = TestProvider::start_with(|provider| {
        if let Some(ttl) = access_token_ttl_secs {
            provider.access_token_ttl_secs = ttl;
        }
    })
    .await
    .unwrap();
    let proxy = BackchannelProxy::start(provider.port).await;
    let backchannel = BackchannelUrl::parse(&proxy.url()).unwrap();
    let webapp = TestWebapp::start_with(&provider, |settings| {
        settings.backchannel_url = Some(backchannel);
    })
    .await
    .unwrap();
    (Stack { webapp, provider }, proxy)
}

/// The provider no longer honours `refresh_token`.
async fn assert_refused_by_the_provider(stack: &Stack, refresh_token: &str) {
    let http = reqwest::Client::new();
    let answer = http
        .post(stack.provider.url("/oauth/token"))
        .basic_auth(
            &stack.provider.client_id,
            Some(&stack.provider.client_secret),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test]
async fn a_refresh_in_flight_when_the_session_ends_gives_its_tokens_to_nobody() {
    let (stack, proxy) = behind_proxy(Some(2)).await;
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let first_refresh_token = proxy.seen_refresh_token().expect("a refresh token");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;

    // The home page finds the access token expired and refreshes it; the provider's answer is
    // held on its way back while the same user signs out in another tab.
    proxy.hold_refreshes(true);
    let home = {
        let (browser, url) = (browser.clone(), stack.webapp.url("/"));
        tokio::spawn(async move { browser.get(url).await })
    };
    for _ in 0..500 {
        if proxy.held_refreshes() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(proxy.held_refreshes(), 1, "the refresh is in flight");
    let issued = proxy.seen_refresh_token().expect("the new refresh token");
    assert_ne!(issued, first_refresh_token);
    sign_out(&browser, &stack.webapp).await;
    proxy.hold_refreshes(false);

    // The request that refreshed shows nothing of the session, the browser stays signed out,
    // and the refresh token issued in flight is revoked at the provider.
    let home = home.await.unwrap().unwrap();
    assert!(
        !home.contains(&stack.provider.user.email),
        "{} {}",
        home.status,
        home.body
    );
    assert_signed_out(&browser, &stack.webapp).await;
    assert_refused_by_the_provider(&stack, &issued).await;
}
