//! Sign-out: POST with CSRF, then RP-initiated logout at the provider (unless turned off).

use testkit::{Browser, Stack, login_form, query_param, start_sign_in};

use crate::helpers::{assert_signed_out, session_json};

#[tokio::test]
async fn sign_out_ends_both_sessions() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();

    // The confirmation page and its form.
    let confirm = browser
        .get(stack.webapp.url("/api/auth/signout"))
        .await
        .unwrap();
    assert_eq!(confirm.status, 200);
    let form = confirm.form_with_button("Sign out").unwrap();
    assert!(form.get("csrfToken").is_some());

    // Without (or with a wrong) CSRF token: refused, still signed in.
    for forged in [None, Some("forged")] {
        let mut bad = form.clone();
        match forged {
            Some(value) => bad.set("csrfToken", value),
            None => bad.remove("csrfToken"),
        };
        let refused = browser.submit_once(&bad).await.unwrap();
        assert_eq!(refused.status, 403, "{forged:?}");
        assert_eq!(
            session_json(&browser, &stack.webapp).await["user"]["name"],
            "Alice Example"
        );
    }

    // With it: signed out here, then at the provider.
    let signed_out = browser.submit_once(&form).await.unwrap();
    assert_eq!(signed_out.status, 303);
    let logout = signed_out.location().unwrap().unwrap();
    let discovery: serde_json::Value = browser
        .get(stack.provider.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        logout.as_str().split('?').next(),
        discovery["end_session_endpoint"].as_str()
    );
    assert!(query_param(&logout, "id_token_hint").is_some());
    assert_eq!(
        query_param(&logout, "post_logout_redirect_uri").as_deref(),
        Some(stack.webapp.url("/api/auth/signin").as_str())
    );
    let back = browser.follow(signed_out).await.unwrap();
    assert_eq!(back.url.as_str(), stack.webapp.url("/api/auth/signin"));
    assert_signed_out(&browser, &stack.webapp).await;

    // The provider asks for the password again.
    let provider_page = start_sign_in(&browser, &stack.webapp, "/").await.unwrap();
    assert!(
        login_form(&provider_page).is_ok(),
        "provider session ended: {}",
        provider_page.text()
    );
}

#[tokio::test]
async fn provider_logout_can_be_turned_off() {
    let stack = Stack::start_with(|_| {}, |webapp| webapp.provider_logout = false)
        .await
        .unwrap();
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let confirm = browser
        .get(stack.webapp.url("/api/auth/signout"))
        .await
        .unwrap();
    let form = confirm.form_with_button("Sign out").unwrap();
    let signed_out = browser.submit_once(&form).await.unwrap();
    assert_eq!(signed_out.status, 303);
    assert_eq!(signed_out.header("location"), Some("/api/auth/signin"));
    assert_signed_out(&browser, &stack.webapp).await;

    // The provider session remains: signing in again needs no password.
    let started = start_sign_in(&browser, &stack.webapp, "/").await.unwrap();
    assert_eq!(
        started.url.as_str(),
        stack.webapp.url("/"),
        "{}",
        started.text()
    );
    assert!(started.contains(&stack.provider.user.email));
}

#[tokio::test]
async fn sign_out_with_another_browsers_csrf_token_is_refused() {
    let stack = Stack::start().await.unwrap();
    let victim = Browser::new();
    stack.sign_in(&victim).await.unwrap();
    // An attacker's own, valid token does not sign the victim out.
    let attacker = Browser::new();
    let attackers_page = attacker
        .get(stack.webapp.url("/api/auth/signout"))
        .await
        .unwrap();
    let attackers_form = attackers_page.form_with_button("Sign out").unwrap();
    let attackers_token = attackers_form.get("csrfToken").unwrap().to_owned();
    let page = victim
        .get(stack.webapp.url("/api/auth/signout"))
        .await
        .unwrap();
    let mut form = page.form_with_button("Sign out").unwrap();
    assert_ne!(form.get("csrfToken"), Some(attackers_token.as_str()));
    form.set("csrfToken", &attackers_token);
    let refused = victim.submit_once(&form).await.unwrap();
    assert_eq!(refused.status, 403);
    assert_eq!(
        session_json(&victim, &stack.webapp).await["user"]["name"],
        "Alice Example"
    );
}
