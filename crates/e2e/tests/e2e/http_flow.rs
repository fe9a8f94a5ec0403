//! The whole sign-in flow across both services over HTTP, as a browser without JavaScript
//! does it: redirects followed, the real forms (with their CSRF tokens) submitted.

use std::time::Duration;

use serde_json::Value;
use testkit::{Browser, Page, Stack};
use url::Url;

/// A gated page with a query, so arriving back exactly there proves `callbackUrl` survived.
const GATED_PAGE: &str = "/?view=e2e";

fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

fn same_origin(url: &Url, base: &str) -> bool {
    url.origin() == Url::parse(base).expect("test base URLs parse").origin()
}

/// The JSON shown in the `<pre id="{id}">` block of a web app page.
fn pre_json(page: &Page, id: &str) -> Value {
    let text = page
        .select_text(&format!("pre#{id}"))
        .expect("static selector")
        .unwrap_or_else(|| panic!("no <pre id={id:?}> on {}:\n{}", page.url, page.body));
    serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "<pre id={id:?}> on {} is not JSON ({error}): {text}",
            page.url
        )
    })
}

async fn session_json(stack: &Stack, browser: &Browser) -> Value {
    let page = browser
        .visit(stack.webapp.url("/api/auth/session"))
        .await
        .expect("session endpoint answers");
    assert_eq!(page.status, 200, "session endpoint: {}", page.body);
    page.json().expect("session endpoint answers JSON")
}

fn assert_signed_in_home(stack: &Stack, page: &Page) {
    let user = &stack.provider.user;
    assert_eq!(page.status, 200, "home page: {}", page.body);
    assert!(
        same_origin(&page.url, &stack.webapp.url),
        "ended at {}",
        page.url
    );
    // What `useSession()` returns: `{ data: { user, expires }, status }`.
    let session = pre_json(page, "session");
    assert_eq!(session["status"], "authenticated", "{session}");
    assert_eq!(session["data"]["user"]["name"], user.name(), "{session}");
    assert_eq!(
        session["data"]["user"]["email"],
        user.email.as_str(),
        "{session}"
    );
    assert!(session["data"]["expires"].is_string(), "{session}");
    let api = pre_json(page, "api");
    assert!(
        api.to_string().contains(&user.email),
        "the protected API's data names the user: {api}"
    );
    assert!(
        !page.contains("id=\"api-error\""),
        "the API call failed: {}",
        page.body
    );
}

fn assert_is_sign_in_page(stack: &Stack, page: &Page) {
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        same_origin(&page.url, &stack.webapp.url),
        "expected the web app's sign-in page, got {}",
        page.url
    );
    assert_eq!(page.url.path(), "/api/auth/signin", "{}", page.url);
    assert!(
        page.contains(&format!("Sign in with {}", stack.webapp.provider_name)),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn gated_page_leads_to_the_sign_in_page_keeping_the_page_asked_for() {
    let stack = Stack::start().await.expect("stack starts");
    let browser = Browser::new();

    let first = browser.get(stack.webapp.url(GATED_PAGE)).await.unwrap();
    assert!(first.is_redirect(), "a gated page redirects: {first:?}");
    let page = browser.follow(first).await.unwrap();
    assert_is_sign_in_page(&stack, &page);
    let form = testkit::sign_in_form(&page).unwrap();
    let callback = form
        .get("callbackUrl")
        .expect("the form carries callbackUrl");
    assert!(
        callback.ends_with(GATED_PAGE),
        "callbackUrl {callback:?} names the page asked for"
    );
    assert!(
        form.get("csrfToken").is_some_and(|token| !token.is_empty()),
        "the sign-in form carries a CSRF token: {form:?}"
    );

    let session = session_json(&stack, &browser).await;
    assert!(
        session.get("user").is_none(),
        "nobody is signed in yet: {session}"
    );
}

#[tokio::test]
async fn sign_in_with_login_and_consent_shows_the_session_and_api_data() {
    let stack = Stack::start().await.expect("stack starts");
    let browser = Browser::new();

    let login = testkit::start_sign_in(&browser, &stack.webapp, GATED_PAGE)
        .await
        .unwrap();
    assert!(
        same_origin(&login.url, &stack.provider.issuer),
        "the provider asks for the password: {}",
        login.url
    );
    assert_eq!(login.url.path(), "/login");
    let authorize = login
        .redirects
        .iter()
        .find(|url| url.path() == "/oauth/authorize")
        .expect("the web app sent the browser to the authorization endpoint");
    for parameter in ["state", "nonce", "code_challenge"] {
        assert!(
            testkit::query_param(authorize, parameter).is_some(),
            "{parameter} in {authorize}"
        );
    }
    assert_eq!(
        testkit::query_param(authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        testkit::query_param(authorize, "redirect_uri").as_deref(),
        Some(stack.webapp.redirect_uri().as_str())
    );

    let user = &stack.provider.user;
    let consent = testkit::log_in(&browser, &login, &user.username, &user.password)
        .await
        .unwrap();
    assert!(
        testkit::is_consent_page(&consent),
        "the provider asks for consent: {}",
        consent.body
    );
    assert!(consent.contains("Cancel"), "{}", consent.body);

    let home = testkit::decide_consent(&browser, &consent, "Authorize")
        .await
        .unwrap();
    assert_eq!(
        path_and_query(&home.url),
        GATED_PAGE,
        "back on the page first asked for, through {:?}",
        home.redirects
    );
    assert!(
        home.redirects.iter().any(|url| {
            same_origin(url, &stack.webapp.url)
                && url.path() == format!("/api/auth/callback/{}", stack.webapp.provider_id)
                && testkit::query_param(url, "code").is_some()
                && testkit::query_param(url, "iss").as_deref()
                    == Some(stack.provider.issuer.as_str())
        }),
        "the provider answered the callback with a code and iss: {:?}",
        home.redirects
    );
    assert_signed_in_home(&stack, &home);

    let session = session_json(&stack, &browser).await;
    assert_eq!(session["user"]["name"], user.name());
    assert_eq!(session["user"]["email"], user.email.as_str());
}

#[tokio::test]
async fn expired_access_token_is_refreshed_before_the_api_call() {
    let stack = Stack::start_with(|provider| provider.access_token_ttl_secs = 2, |_| {})
        .await
        .expect("stack starts");
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_signed_in_home(&stack, &home);

    // Past the access token's lifetime the provider's API refuses it: the page shows data
    // only if the web app used its refresh token for a new one.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let again = browser.visit(stack.webapp.url("/")).await.unwrap();
    assert_signed_in_home(&stack, &again);
    let later = browser.visit(stack.webapp.url("/")).await.unwrap();
    assert_signed_in_home(&stack, &later);
}

#[tokio::test]
async fn when_the_refresh_token_has_expired_too_no_api_data_is_shown() {
    // The control for the test above: with nothing valid left to refresh with, the page
    // cannot show API data, so data shown there came from a refresh, not from a cache or an
    // expiry the provider does not enforce.
    let stack = Stack::start_with(
        |provider| {
            provider.access_token_ttl_secs = 2;
            provider.refresh_token_ttl_secs = 2;
        },
        |_| {},
    )
    .await
    .expect("stack starts");
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_signed_in_home(&stack, &home);

    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let again = browser.visit(stack.webapp.url("/")).await.unwrap();
    let api_failed = again.contains("id=\"api-error\"");
    let signed_out = again.url.path() == "/api/auth/signin";
    assert!(
        api_failed || signed_out,
        "expired access and refresh tokens cannot get API data: {}",
        again.body
    );
}

#[tokio::test]
async fn sign_in_works_with_a_provider_that_does_not_offer_offline_access() {
    // A provider that does not know `offline_access` refuses requests for it (invalid_scope),
    // and issues no refresh token.
    let stack = Stack::start_with(
        |provider| {
            provider.offline_access = false;
            provider.access_token_ttl_secs = 2;
        },
        |_| {},
    )
    .await
    .expect("stack starts");
    let browser = Browser::new();
    let discovery: Value = browser
        .visit(format!(
            "{}/.well-known/openid-configuration",
            stack.provider.issuer
        ))
        .await
        .unwrap()
        .json()
        .unwrap();
    let supported = discovery["scopes_supported"].as_array().unwrap();
    assert!(!supported.contains(&"offline_access".into()), "{discovery}");

    let login = testkit::start_sign_in(&browser, &stack.webapp, GATED_PAGE)
        .await
        .unwrap();
    let authorize = login
        .redirects
        .iter()
        .find(|url| url.path() == "/oauth/authorize")
        .expect("the web app sent the browser to the authorization endpoint");
    assert_eq!(
        testkit::query_param(authorize, "scope").as_deref(),
        Some("openid profile email"),
        "only the scopes the provider offers are asked for"
    );
    let user = &stack.provider.user;
    let consent = testkit::log_in(&browser, &login, &user.username, &user.password)
        .await
        .unwrap();
    let home = testkit::decide_consent(&browser, &consent, "Authorize")
        .await
        .unwrap();
    assert_eq!(path_and_query(&home.url), GATED_PAGE);
    assert_signed_in_home(&stack, &home);

    // With no refresh token, the session's API access ends with the access token: the user is
    // asked to sign in again, as after a refused refresh.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let again = browser.get(stack.webapp.url("/")).await.unwrap();
    assert_eq!(again.status, 302, "{}", again.body);
    let location = again.location().unwrap().unwrap();
    assert_eq!(location.path(), "/api/auth/signin");
    assert_eq!(
        testkit::query_param(&location, "error").as_deref(),
        Some("RefreshAccessTokenError")
    );
}

/// Signs out from the web app's header form, confirming at the provider if it asks; returns
/// the page the browser ends on.
async fn sign_out(stack: &Stack, browser: &Browser, home: &Page) -> Page {
    let form = home
        .form("form[action='/api/auth/signout']")
        .expect("the home page has a sign-out form")
        .click("Sign out")
        .unwrap();
    let mut page = browser.submit(&form).await.unwrap();
    // The provider may ask whether to log out too (RP-initiated logout confirmation).
    for _ in 0..3 {
        if same_origin(&page.url, &stack.webapp.url) {
            break;
        }
        let confirm = ["Log out", "Sign out", "Yes", "Logout"]
            .iter()
            .find_map(|label| page.form_with_button(label).ok().map(|f| (f, *label)));
        let Some((form, label)) = confirm else {
            break;
        };
        page = browser.submit(&form.click(label).unwrap()).await.unwrap();
    }
    page
}

#[tokio::test]
async fn sign_out_ends_the_session_at_the_web_app_and_at_the_provider() {
    let stack = Stack::start().await.expect("stack starts");
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_signed_in_home(&stack, &home);

    let after = sign_out(&stack, &browser, &home).await;
    assert_is_sign_in_page(&stack, &after);
    assert!(
        after
            .redirects
            .iter()
            .any(|url| same_origin(url, &stack.provider.issuer)),
        "sign-out went through the provider: {:?}",
        after.redirects
    );

    let session = session_json(&stack, &browser).await;
    assert!(session.get("user").is_none(), "signed out: {session}");
    let gated = browser.visit(stack.webapp.url("/")).await.unwrap();
    assert_is_sign_in_page(&stack, &gated);

    // The provider's session ended too: signing in again asks for the password.
    let login = testkit::start_sign_in(&browser, &stack.webapp, "/")
        .await
        .unwrap();
    assert!(
        same_origin(&login.url, &stack.provider.issuer) && login.url.path() == "/login",
        "the provider asks for the password again, got {}",
        login.url
    );
    testkit::login_form(&login).expect("a login form");

    // Consent was remembered: after the password the browser goes straight back.
    let user = &stack.provider.user;
    let back = testkit::log_in(&browser, &login, &user.username, &user.password)
        .await
        .unwrap();
    assert!(
        !testkit::is_consent_page(&back),
        "consent given before is not asked again"
    );
    assert_signed_in_home(&stack, &back);
}

#[tokio::test]
async fn cancel_on_consent_returns_to_the_sign_in_page_with_access_denied() {
    let stack = Stack::start().await.expect("stack starts");
    let browser = Browser::new();
    let login = testkit::start_sign_in(&browser, &stack.webapp, "/")
        .await
        .unwrap();
    let user = &stack.provider.user;
    let consent = testkit::log_in(&browser, &login, &user.username, &user.password)
        .await
        .unwrap();

    let page = testkit::decide_consent(&browser, &consent, "Cancel")
        .await
        .unwrap();
    assert!(
        page.redirects.iter().any(|url| {
            testkit::query_param(url, "error").as_deref() == Some("access_denied")
                && testkit::query_param(url, "state").is_some()
        }),
        "the provider answered access_denied with the state: {:?}",
        page.redirects
    );
    assert_is_sign_in_page(&stack, &page);
    assert!(
        page.contains("id=\"signin-error\""),
        "the sign-in page shows an error: {}",
        page.body
    );
    let message = page
        .select_text("#signin-error")
        .unwrap()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        ["denied", "refused", "cancelled"]
            .iter()
            .any(|word| message.contains(word)),
        "the message says access was denied: {message}"
    );
    let session = session_json(&stack, &browser).await;
    assert!(session.get("user").is_none(), "no session: {session}");
}

#[tokio::test]
async fn wrong_password_shows_an_error_on_the_login_page() {
    let stack = Stack::start().await.expect("stack starts");
    let browser = Browser::new();
    let login = testkit::start_sign_in(&browser, &stack.webapp, "/")
        .await
        .unwrap();
    let user = &stack.provider.user;
    let page = testkit::log_in(&browser, &login, &user.username, "not-the-password")
        .await
        .unwrap();
    assert!(
        same_origin(&page.url, &stack.provider.issuer) && page.url.path() == "/login",
        "still at the provider's login page: {}",
        page.url
    );
    assert!(
        page.status.is_client_error() || page.status == 200,
        "{}",
        page.status
    );
    testkit::login_form(&page).expect("the form is shown again");
    let text = page.text().to_lowercase();
    assert!(
        text.contains("invalid") || text.contains("incorrect") || text.contains("wrong"),
        "the login page says the credentials were wrong: {text}"
    );
    assert!(!text.contains(&user.password), "the password is not echoed");
    let session = session_json(&stack, &browser).await;
    assert!(session.get("user").is_none(), "no session: {session}");
}

#[tokio::test]
async fn sign_in_works_after_the_provider_rotates_its_signing_key() {
    let stack = Stack::start().await.expect("stack starts");
    // A first sign-in makes the web app fetch and cache the provider's keys.
    let first = Browser::new();
    let home = stack.sign_in(&first).await.unwrap();
    assert_signed_in_home(&stack, &home);

    let kid = stack
        .provider
        .state()
        .keys
        .rotate(oidc_core::jose::Algorithm::RS256)
        .await
        .expect("the provider rotates its RS256 key");
    let jwks: Value = reqwest::get(stack.provider.url("/oauth/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("a JWKS has keys")
        .iter()
        .filter_map(|key| key["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&kid.as_str()),
        "the new key is published: {jwks}"
    );

    // The next ID token carries a kid the web app has not seen: it must fetch the keys again.
    let second = Browser::new();
    let home = stack.sign_in(&second).await.unwrap();
    assert_signed_in_home(&stack, &home);
    // The first session is unaffected.
    let again = first.visit(stack.webapp.url("/")).await.unwrap();
    assert_signed_in_home(&stack, &again);
}

/// Polls the web app's session until it is signed out (the back-channel delivery runs in the
/// background at the provider); panics after ten seconds.
async fn wait_until_signed_out(stack: &Stack, browser: &Browser) {
    for _ in 0..100 {
        if session_json(stack, browser).await.get("user").is_none() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the web app still shows the user signed in ten seconds after the provider logout");
}

#[tokio::test]
async fn logging_out_on_the_providers_own_page_ends_the_web_app_session() {
    let stack = Stack::start().await.expect("stack starts");
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_signed_in_home(&stack, &home);
    // A second browser of the same user keeps its own session at both ends.
    let other = Browser::new();
    assert_signed_in_home(&stack, &stack.sign_in(&other).await.unwrap());

    // The provider's own logout page, not the web app's sign-out.
    let logout = browser.visit(stack.provider.url("/logout")).await.unwrap();
    let form = logout
        .form("form[action='/logout']")
        .expect("the provider's logout page has a form");
    let button = ["Log out", "Sign out"]
        .iter()
        .find_map(|label| form.click(label).ok())
        .expect("a logout button");
    browser.submit(&button).await.unwrap();

    // Back-channel logout: the web app learns of it without the browser coming back.
    wait_until_signed_out(&stack, &browser).await;
    let gated = browser.visit(stack.webapp.url("/")).await.unwrap();
    assert!(
        !same_origin(&gated.url, &stack.webapp.url) || gated.url.path() != "/",
        "the home page is gated again, got {}",
        gated.url
    );
    // Only the session that logged out ended.
    let session = session_json(&stack, &other).await;
    assert!(
        session.get("user").is_some(),
        "the other browser stays signed in: {session}"
    );
}
