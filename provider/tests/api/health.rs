//! Liveness and the security headers every response carries.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let (status, body) = app.browser.get_html("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn every_response_has_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/login", "/healthz", "/no-such-page", "/logout", "/"] {
        let response = app.browser.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
}

#[tokio::test]
async fn unknown_pages_are_html_404() {
    let app = spawn_app().await;
    let response = app.browser.get("/no-such-page").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.expect("body").contains("Not found"));
}
