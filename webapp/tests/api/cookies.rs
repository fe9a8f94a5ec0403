//! Session cookies the web app did not issue count as signed out.

use testkit::{Browser, Stack};

use crate::helpers::{SESSION_COOKIE, assert_signed_out, session_json, url};

/// Flips one character in the middle of `value`, keeping it base64-looking.
fn tamper(value: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    let middle = chars.len() / 2;
    chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test]
async fn tampered_session_cookie_is_treated_as_signed_out() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let base = url(&stack.webapp.url("/"));
    let cookie = browser.cookie(&base, SESSION_COOKIE).unwrap();
    assert_eq!(
        session_json(&browser, &stack.webapp).await["user"]["name"],
        "Alice Example"
    );

    for forged in [
        tamper(&cookie),
        format!("{cookie}A"),
        String::from("garbage"),
        String::new(),
    ] {
        let attacker = Browser::new();
        attacker.set_cookie(&base, &format!("{SESSION_COOKIE}={forged}; Path=/"));
        assert_signed_out(&attacker, &stack.webapp).await;
    }
    // The genuine cookie still works.
    assert_eq!(
        session_json(&browser, &stack.webapp).await["user"]["name"],
        "Alice Example"
    );
}

#[tokio::test]
async fn session_cookie_of_another_web_app_is_treated_as_signed_out() {
    let (ours, theirs) = tokio::join!(Stack::start(), Stack::start());
    let (ours, theirs) = (ours.unwrap(), theirs.unwrap());
    assert_ne!(ours.webapp.session_secret, theirs.webapp.session_secret);
    let browser = Browser::new();
    theirs.sign_in(&browser).await.unwrap();
    let foreign = browser
        .cookie(&url(&theirs.webapp.url("/")), SESSION_COOKIE)
        .unwrap();

    let attacker = Browser::new();
    attacker.set_cookie(
        &url(&ours.webapp.url("/")),
        &format!("{SESSION_COOKIE}={foreign}; Path=/"),
    );
    assert_signed_out(&attacker, &ours.webapp).await;
}

#[tokio::test]
async fn an_error_named_in_the_query_is_not_a_server_failure() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    for code in [
        "Configuration",
        "AccessDenied",
        "OAuthSignin",
        "OAuthCallback",
        "SessionRequired",
        "Verification",
        "",
    ] {
        let page = browser
            .get(format!(
                "{}?error={code}",
                stack.webapp.url("/api/auth/error")
            ))
            .await
            .unwrap();
        assert!(
            page.status.is_client_error() || page.status.is_success(),
            "{code}: {}",
            page.status
        );
        assert!(page.header("retry-after").is_none(), "{code}");
    }
}
