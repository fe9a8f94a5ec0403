//! The whole sign-in as a user goes through it, and what the web app shows afterwards.

use testkit::{Browser, Stack, USER_EMAIL};

use crate::helpers::{SESSION_COOKIE, session_json, url};

#[tokio::test]
async fn full_flow_signs_in_and_shows_session_and_protected_api() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();

    // Gated: an anonymous visitor is sent to the sign-in page, remembering where they went.
    let gated = browser.get(stack.webapp.url("/")).await.unwrap();
    assert_eq!(gated.status, 302);
    let location = gated.location().unwrap().unwrap();
    assert_eq!(location.path(), "/api/auth/signin");
    assert_eq!(
        testkit::query_param(&location, "callbackUrl").as_deref(),
        Some(stack.webapp.url("/").as_str())
    );

    let home = stack.sign_in(&browser).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.body);
    assert_eq!(home.url.as_str(), stack.webapp.url("/"));

    // The session as useSession() gives it.
    let shown: serde_json::Value =
        serde_json::from_str(&home.select_text("#session").unwrap().unwrap()).unwrap();
    assert_eq!(shown["status"], "authenticated");
    assert_eq!(shown["data"]["user"]["name"], "Alice Example");
    assert_eq!(shown["data"]["user"]["email"], USER_EMAIL);
    let expires = shown["data"]["expires"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
    let days = (expires.timestamp() - chrono::Utc::now().timestamp()) / 86_400;
    assert!((29..=30).contains(&days), "expires in {days} days");

    // The protected API's answer for the access token.
    let api: serde_json::Value =
        serde_json::from_str(&home.select_text("#api").unwrap().unwrap()).unwrap();
    assert_eq!(api["email"], USER_EMAIL);
    assert_eq!(api["username"], "alice");
    assert_eq!(api["client_id"], stack.provider.client_id.as_str());
    assert!(home.select_text("#api-error").unwrap().is_none());

    // The layout says who is signed in and offers sign-out.
    assert_eq!(
        home.select_text("#signed-in-as").unwrap().as_deref(),
        Some("Alice Example")
    );
    assert!(home.form_with_button("Sign out").is_ok());

    // The JSON endpoint agrees, and holds no tokens.
    let session = session_json(&browser, &stack.webapp).await;
    assert_eq!(session["user"]["email"], USER_EMAIL);
    assert_eq!(session["user"]["name"], "Alice Example");
    assert_eq!(session["expires"], shown["data"]["expires"]);
    assert!(session.get("accessToken").is_none() && session.get("access_token").is_none());
}

#[tokio::test]
async fn sign_in_returns_to_the_page_first_asked_for() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let landed = stack
        .sign_in_at(&browser, "/reports/2026?view=full")
        .await
        .unwrap();
    assert_eq!(
        landed.url.as_str(),
        stack.webapp.url("/reports/2026?view=full")
    );
    // The page itself does not exist: a friendly 404 for a signed-in user.
    assert_eq!(landed.status, 404);
    assert!(landed.contains("Page not found"));
    assert_eq!(
        landed.select_text("#signed-in-as").unwrap().as_deref(),
        Some("Alice Example")
    );
}

#[tokio::test]
async fn cookies_are_http_only_and_lax_and_pages_carry_security_headers() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let csrf = browser
        .get(stack.webapp.url("/api/auth/csrf"))
        .await
        .unwrap();
    assert_eq!(csrf.status, 200);
    let token: serde_json::Value = csrf.json().unwrap();
    assert!(token["csrfToken"].as_str().unwrap().len() >= 32);
    let set_cookie = csrf.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with(&format!("{SESSION_COOKIE}=")),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    // WEBAPP_URL is http here, so the cookie cannot be Secure.
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    // The cookie is encrypted: the token is not readable in it.
    let cookie = browser
        .cookie(&url(&stack.webapp.url("/")), SESSION_COOKIE)
        .unwrap();
    assert!(!cookie.contains(token["csrfToken"].as_str().unwrap()));

    let signin = browser
        .get(stack.webapp.url("/api/auth/signin"))
        .await
        .unwrap();
    assert_eq!(signin.header("x-frame-options"), Some("DENY"));
    assert!(
        signin
            .header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(signin.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn sign_in_start_requires_the_csrf_token() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let signin = browser
        .visit(stack.webapp.url("/api/auth/signin"))
        .await
        .unwrap();
    let mut form = testkit::sign_in_form(&signin).unwrap();
    form.set("csrfToken", "forged");
    let refused = browser.submit_once(&form).await.unwrap();
    assert_eq!(refused.status, 403);
    assert!(!refused.is_redirect());

    form.remove("csrfToken");
    let refused = browser.submit_once(&form).await.unwrap();
    assert_eq!(refused.status, 403);

    // Another browser's token does not work either.
    let other = Browser::new();
    let other_page = other
        .visit(stack.webapp.url("/api/auth/signin"))
        .await
        .unwrap();
    let other_form = testkit::sign_in_form(&other_page).unwrap();
    let mut form = testkit::sign_in_form(&signin).unwrap();
    form.set("csrfToken", other_form.get("csrfToken").unwrap());
    assert_eq!(browser.submit_once(&form).await.unwrap().status, 403);
}

#[tokio::test]
async fn public_routes_answer_without_a_session() {
    let stack = Stack::start().await.unwrap();
    let browser = Browser::new();
    let health = browser.get(stack.webapp.url("/healthz")).await.unwrap();
    assert_eq!((health.status.as_u16(), health.body.as_str()), (200, "ok"));

    let providers: serde_json::Value = browser
        .get(stack.webapp.url("/api/auth/providers"))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        providers["provider"]["name"],
        stack.webapp.provider_name.as_str()
    );
    assert_eq!(
        providers["provider"]["callbackUrl"],
        stack.webapp.redirect_uri().as_str()
    );

    for (code, status, text) in [
        ("Configuration", 400, "Sign-in is unavailable"),
        ("AccessDenied", 403, "Access denied"),
        ("OAuthSignin", 400, "Sign-in could not start"),
        ("OAuthCallback", 400, "Sign-in could not be completed"),
        ("SessionRequired", 401, "Please sign in"),
        ("<script>alert(1)</script>", 400, "Something went wrong"),
    ] {
        let page = browser
            .get(format!(
                "{}?error={}",
                stack.webapp.url("/api/auth/error"),
                url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
            ))
            .await
            .unwrap();
        assert_eq!(page.status, status, "{code}");
        assert!(page.contains(text), "{code}: {}", page.body);
        assert!(!page.contains("<script>alert"), "{code}");
    }

    let unknown = browser
        .get(stack.webapp.url("/api/auth/nothing-here"))
        .await
        .unwrap();
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn https_web_app_sets_secure_prefixed_cookies() {
    let provider = testkit::TestProvider::start().await.unwrap();
    let webapp = testkit::TestWebapp::start_with(&provider, |settings| {
        settings.url = webapp::config::AppUrl::parse("https://app.example").unwrap();
    })
    .await
    .unwrap();
    let browser = Browser::new();
    let csrf = browser.get(webapp.url("/api/auth/csrf")).await.unwrap();
    let set_cookie = csrf.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with("__Host-webapp.session="),
        "{set_cookie}"
    );
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/"), "{set_cookie}");

    // The gate names the public URL in callbackUrl.
    let gated = browser.get(webapp.url("/x?y=1")).await.unwrap();
    let location = gated.location().unwrap().unwrap();
    assert_eq!(
        testkit::query_param(&location, "callbackUrl").as_deref(),
        Some("https://app.example/x?y=1")
    );
}
