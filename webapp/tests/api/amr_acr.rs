//! `amr` and `acr` of the ID token in the session, and `OIDC_ACR_VALUES`: sent as `acr_values`,
//! and a sign-in whose ID token's `acr` is not among them refused. The provider's ID tokens get
//! the claims through a proxy that signs them again with the provider's own key.

use std::sync::Arc;

use oidc_core::jose::{Algorithm, SigningKey};
use serde_json::json;
use testkit::{Browser, Stack, TestProvider, TestWebapp, sign_in_form};
use webapp::config::{AcrValues, BackchannelUrl};

use crate::helpers::{BackchannelProxy, assert_signed_out, run_until_callback, session_json};

/// A stack whose web app reaches the provider through a proxy, with `customize` applied to the
/// web app's settings.
async fn stack_with(
    customize: impl FnOnce(&mut webapp::config::Settings),
) -> (Stack, BackchannelProxy) {
    let provider = TestProvider::start().await.unwrap();
    let proxy = BackchannelProxy::start(provider.port).await;
    let backchannel = BackchannelUrl::parse(&proxy.url()).unwrap();
    let webapp = TestWebapp::start_with(&provider, |settings| {
        settings.backchannel_url = Some(backchannel);
        customize(settings);
    })
    .await
    .unwrap();
    (Stack { webapp, provider }, proxy)
}

/// The provider's active signing key for the client's algorithm (that of its genuine tokens).
fn provider_key(stack: &Stack) -> Arc<SigningKey> {
    stack
        .provider
        .state()
        .keys
        .active(Algorithm::RS256)
        .expect("an active RS256 key")
}

#[tokio::test]
async fn the_session_json_and_home_page_show_the_id_tokens_amr_and_acr() {
    let (stack, proxy) = stack_with(|_| {}).await;
    let claims = json!({ "amr": ["pwd", "otp"], "acr": "urn:example:mfa" });
    proxy.add_id_token_claims(Some((claims, provider_key(&stack))));
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    let session = session_json(&browser, &stack.webapp).await;
    assert_eq!(session["amr"], json!(["pwd", "otp"]), "{session}");
    assert_eq!(session["acr"], "urn:example:mfa");
    // Beside NextAuth's own fields, which keep their shape.
    assert_eq!(session["user"]["email"], stack.provider.user.email.as_str());
    assert!(session["expires"].is_string());
    assert!(
        home.contains("urn:example:mfa") && home.contains("otp"),
        "{}",
        home.text()
    );
}

#[tokio::test]
async fn acr_values_are_sent_and_an_id_token_with_another_or_no_acr_is_refused() {
    let (stack, proxy) = stack_with(|settings| {
        settings.acr_values = AcrValues::parse("urn:example:mfa urn:example:phr").unwrap();
    })
    .await;
    let key = provider_key(&stack);

    // Sent in the authorization request.
    let browser = Browser::new();
    let signin = browser.visit(stack.webapp.url("/")).await.unwrap();
    let started = browser
        .submit_once(&sign_in_form(&signin).unwrap())
        .await
        .unwrap();
    assert_eq!(
        started.location_param("acr_values").unwrap().as_deref(),
        Some("urn:example:mfa urn:example:phr")
    );

    // Another class, or none at all: the error page, no session.
    for claims in [json!({ "acr": "urn:example:pwd" }), json!({ "acr": null })] {
        proxy.add_id_token_claims(Some((claims.clone(), key.clone())));
        let browser = Browser::new();
        let callback = run_until_callback(&browser, &stack).await.unwrap();
        let page = browser.get(callback.as_str()).await.unwrap();
        assert_eq!(page.status, 400, "{claims}: {}", page.body);
        assert!(
            page.contains("Sign-in could not be completed"),
            "{}",
            page.body
        );
        assert_signed_out(&browser, &stack.webapp).await;
    }

    // One of the requested classes: signed in, and the session says which.
    proxy.add_id_token_claims(Some((json!({ "acr": "urn:example:phr" }), key)));
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    assert_eq!(
        session_json(&browser, &stack.webapp).await["acr"],
        "urn:example:phr"
    );
}

#[tokio::test]
async fn without_acr_values_no_acr_values_parameter_is_sent() {
    let (stack, _proxy) = stack_with(|_| {}).await;
    let browser = Browser::new();
    let signin = browser.visit(stack.webapp.url("/")).await.unwrap();
    let started = browser
        .submit_once(&sign_in_form(&signin).unwrap())
        .await
        .unwrap();
    assert!(started.location().unwrap().is_some());
    assert_eq!(started.location_param("acr_values").unwrap(), None);
}
