//! `OIDC_BACKCHANNEL_URL`: the web app's own requests go to the back-channel address while
//! browsers and the `iss` checks use the public issuer.

use oidc_core::types::IssuerUrl;
use testkit::{Browser, Stack, login_form, query_param};
use webapp::config::BackchannelUrl;

use crate::helpers::session_json;

/// The provider listens on 127.0.0.1 only, so its "public" address 127.0.0.2 reaches nothing:
/// any server-side request that used it would fail.
#[tokio::test]
async fn server_side_calls_use_the_backchannel_while_browsers_see_the_public_issuer() {
    let stack = Stack::start_with(
        |provider| provider.issuer = provider.issuer.replace("127.0.0.1", "127.0.0.2"),
        |webapp| {
            let reachable = webapp.issuer.as_str().to_owned();
            webapp.backchannel_url = Some(BackchannelUrl::parse(&reachable).unwrap());
            webapp.issuer = IssuerUrl::parse(&reachable.replace("127.0.0.1", "127.0.0.2")).unwrap();
        },
    )
    .await
    .unwrap();
    let public_issuer = format!("http://127.0.0.2:{}", stack.provider.port);
    assert!(
        std::net::TcpStream::connect(("127.0.0.2", stack.provider.port)).is_err(),
        "nothing may listen at the public address for this test to mean anything"
    );

    let browser = Browser::new();
    let signin = browser.visit(stack.webapp.url("/")).await.unwrap();
    let form = testkit::sign_in_form(&signin).unwrap();
    let started = browser.submit_once(&form).await.unwrap();
    assert_eq!(started.status, 303, "{}", started.text());
    let authorize = started.location().unwrap().unwrap();
    // The browser is sent to the public issuer.
    assert!(
        authorize.as_str().starts_with(&format!("{public_issuer}/")),
        "{authorize}"
    );

    // This "browser" reaches the public address at 127.0.0.1, as a host-mapped port would.
    let mut reachable = authorize.clone();
    reachable.set_host(Some("127.0.0.1")).unwrap();
    let login = browser.visit(reachable.as_str()).await.unwrap();
    let mut form = login_form(&login).unwrap();
    form.set("username", &stack.provider.user.username)
        .set("password", &stack.provider.user.password);
    let consent = browser.submit(&form).await.unwrap();
    let authorize_form = consent
        .form_with_button("Authorize")
        .unwrap()
        .click("Authorize")
        .unwrap();
    let back = browser.submit_once(&authorize_form).await.unwrap();
    let callback = back.location().unwrap().unwrap();
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(public_issuer.as_str())
    );

    // Token, userinfo, JWKS and API calls all went through the back-channel.
    let home = browser.follow(back).await.unwrap();
    assert_eq!(home.url.as_str(), stack.webapp.url("/"), "{}", home.text());
    assert!(
        home.select_text("#api-error").unwrap().is_none(),
        "{}",
        home.text()
    );
    let api: serde_json::Value =
        serde_json::from_str(&home.select_text("#api").unwrap().unwrap()).unwrap();
    assert_eq!(api["username"], "alice");
    assert_eq!(
        session_json(&browser, &stack.webapp).await["user"]["email"],
        stack.provider.user.email.as_str()
    );

    // Logout sends the browser to the public end_session_endpoint.
    let confirm = browser
        .get(stack.webapp.url("/api/auth/signout"))
        .await
        .unwrap();
    let form = confirm.form_with_button("Sign out").unwrap();
    let signed_out = browser.submit_once(&form).await.unwrap();
    let logout = signed_out.location().unwrap().unwrap();
    assert!(
        logout.as_str().starts_with(&format!("{public_issuer}/")),
        "{logout}"
    );
}

#[tokio::test]
async fn issuer_mismatch_is_not_accepted_through_the_backchannel() {
    // The provider announces 127.0.0.1, but the web app was told another issuer: discovery
    // must refuse it (strict issuer validation), and sign-in shows a friendly error.
    let stack = Stack::start_with(
        |_| {},
        |webapp| {
            let reachable = webapp.issuer.as_str().to_owned();
            webapp.backchannel_url = Some(BackchannelUrl::parse(&reachable).unwrap());
            webapp.issuer = IssuerUrl::parse(&reachable.replace("127.0.0.1", "localhost")).unwrap();
        },
    )
    .await
    .unwrap();
    let browser = Browser::new();
    let page = testkit::start_sign_in(&browser, &stack.webapp, "/")
        .await
        .unwrap();
    assert_eq!(page.status, 503, "{}", page.text());
    assert!(page.contains("Sign-in is unavailable"));
}
