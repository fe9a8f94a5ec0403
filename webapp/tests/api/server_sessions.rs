//! Sessions that can be ended: a copy of the session cookie taken before sign-out is worth
//! nothing after it (also after a restart), and sign-out revokes the refresh token.

use testkit::{Browser, Stack, TestProvider, TestWebapp};
use webapp::config::BackchannelUrl;

use crate::helpers::{BackchannelProxy, SESSION_COOKIE, assert_signed_out, session_json, url};

/// Signs out through the confirmation form.
async fn sign_out(browser: &Browser, webapp: &TestWebapp) {
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
    let provider = TestProvider::start().await.unwrap();
    let proxy = BackchannelProxy::start(provider.port).await;
    let backchannel = BackchannelUrl::parse(&proxy.url()).unwrap();
    let webapp = TestWebapp::start_with(&provider, |settings| {
        settings.backchannel_url = Some(backchannel);
    })
    .await
    .unwrap();
    let stack = Stack { webapp, provider };
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let refresh_token = proxy.seen_refresh_token().expect("a refresh token");

    sign_out(&browser, &stack.webapp).await;

    // The provider no longer honours it.
    let http = reqwest::Client::new();
    let answer = http
        .post(stack.provider.url("/oauth/token"))
        .basic_auth(
            &stack.provider.client_id,
            Some(&stack.provider.client_secret),
        )
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}
