//! Passkeys over HTTP with a software authenticator: registration on `/account/passkeys`,
//! passwordless sign-in, CSRF on every POST, another user's credential and unverified users;
//! the ceremonies' own rules are in `ceremonies`, the second factor in `second_factor`.

mod ceremonies;
mod second_factor;

use diesel::prelude::*;
use provider::config::CookieSecret;
use provider::identity::session::COOKIE_NAME;
use provider::storage::schema::{audit_events, passkeys, sessions, users};
use reqwest::StatusCode;
use reqwest::cookie::CookieStore as _;
use serde_json::{Value, json};

use crate::helpers::{
    Browser, SoftAuthenticator, TestApp, USER_USERNAME, location, spawn_app_with,
};

/// A provider whose issuer is `http://localhost:{port}` (WebAuthn needs a domain name), with a
/// cookie key the test knows.
pub(super) async fn spawn() -> TestApp {
    spawn_passkey_app(|_| {}).await
}

pub(super) async fn spawn_passkey_app(
    customize: impl FnOnce(&mut provider::config::Settings),
) -> TestApp {
    spawn_app_with(|s| {
        s.issuer = s.issuer.replace("127.0.0.1", "localhost");
        s.secret_key = Some(CookieSecret::generate());
        customize(s);
    })
    .await
}

pub(super) async fn token(browser: &Browser) -> String {
    browser.csrf_token("/login").await
}

/// POSTs JSON to `path` with the CSRF header `csrf` (none when `None`).
pub(super) async fn post_json(
    browser: &Browser,
    path: &str,
    csrf: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = browser
        .client
        .post(format!("{}{path}", browser.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    request.send().await.expect("POST request")
}

pub(super) async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Registers a passkey named `name` for the browser's user; returns the finish response.
pub(super) async fn register(
    browser: &Browser,
    authenticator: &mut SoftAuthenticator,
    name: &str,
) -> reqwest::Response {
    let csrf = token(browser).await;
    let options = json_ok(
        post_json(
            browser,
            "/account/passkeys/register/options",
            Some(&csrf),
            "{}",
        )
        .await,
    )
    .await;
    let credential = authenticator.register(&options);
    let body = json!({ "name": name, "credential": credential }).to_string();
    post_json(
        browser,
        "/account/passkeys/register/finish",
        Some(&csrf),
        &body,
    )
    .await
}

/// Starts a passwordless sign-in in `browser`: its CSRF token and the request options.
pub(super) async fn sign_in_options(browser: &Browser) -> (String, Value) {
    let csrf = token(browser).await;
    let options =
        json_ok(post_json(browser, "/login/passkey/options", Some(&csrf), "{}").await).await;
    (csrf, options)
}

pub(super) fn finish_body(credential: &Value, attachment: Option<&str>) -> String {
    json!({
        "credential": credential,
        "authenticator_attachment": attachment,
        "next": "/oauth/authorize?client_id=x",
    })
    .to_string()
}

pub(super) fn alice_id(app: &TestApp) -> String {
    let mut conn = app.state.db.conn().expect("conn");
    users::table
        .filter(users::username.eq(USER_USERNAME))
        .select(users::id)
        .get_result(&mut *conn)
        .expect("alice")
}

pub(super) fn amrs_of(app: &TestApp, user_id: &str) -> Vec<String> {
    let mut conn = app.state.db.conn().expect("conn");
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .select(sessions::amr)
        .load(&mut *conn)
        .expect("sessions")
}

pub(super) fn passkey_rows(app: &TestApp) -> Vec<(String, String, String, Option<i64>)> {
    let mut conn = app.state.db.conn().expect("conn");
    passkeys::table
        .order(passkeys::created_at.asc())
        .select((
            passkeys::id,
            passkeys::user_id,
            passkeys::name,
            passkeys::last_used_at,
        ))
        .load(&mut *conn)
        .expect("passkeys")
}

pub(super) fn audit_kinds(app: &TestApp, user_id: &str) -> Vec<String> {
    let mut conn = app.state.db.conn().expect("conn");
    audit_events::table
        .filter(audit_events::user_id.eq(user_id))
        .order(audit_events::id.asc())
        .select(audit_events::kind)
        .load(&mut *conn)
        .expect("audit events")
}

/// The session cookie of `browser` as `name=value`.
pub(super) fn session_cookie(app: &TestApp, browser: &Browser) -> String {
    let url = url::Url::parse(&app.address).expect("URL");
    let header = browser.jar.cookies(&url).expect("cookies");
    header
        .to_str()
        .expect("cookie header")
        .split("; ")
        .find(|c| c.starts_with(&format!("{COOKIE_NAME}=")))
        .expect("session cookie")
        .to_owned()
}

/// A new user agent holding a copy of `cookie`.
pub(super) fn browser_with_cookie(app: &TestApp, cookie: &str) -> Browser {
    let browser = app.new_browser();
    let url = url::Url::parse(&app.address).expect("URL");
    browser
        .jar
        .add_cookie_str(&format!("{cookie}; Path=/"), &url);
    browser
}

#[tokio::test]
async fn the_passkeys_page_needs_a_signed_in_user() {
    let app = spawn().await;
    let response = app.new_browser().get("/account/passkeys").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Faccount%2Fpasskeys");
    let signed_in = app.user_browser().await;
    let (status, html) = signed_in.get_html("/account/passkeys").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("You have no passkeys yet."), "{html}");
    assert!(
        html.contains("<script src=\"/static/passkeys.js\""),
        "{html}"
    );
}

#[tokio::test]
async fn the_script_is_served_from_this_origin_and_allowed_by_the_policy() {
    let app = spawn().await;
    let response = app
        .http
        .get(app.url("/static/passkeys.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let login = app.http.get(app.url("/login")).send().await.unwrap();
    let policy = login.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-inline'; script") && !policy.contains("unsafe-eval"));
    let html = login.text().await.unwrap();
    assert!(html.contains("Sign in with a passkey"), "{html}");
    assert!(!html.contains("<script>"), "no inline script");
}

#[tokio::test]
async fn a_registered_passkey_signs_in_without_a_password() {
    let app = spawn().await;
    let alice = alice_id(&app);
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    let response = register(&browser, &mut authenticator, "  My\u{7}  laptop ").await;
    let done = json_ok(response).await;
    assert_eq!(done["redirect"], "/account/passkeys?done=added");
    let rows = passkey_rows(&app);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str()),
        (alice.as_str(), "My  laptop")
    );
    assert_eq!(rows[0].3, None);
    let (_, html) = browser.get_html("/account/passkeys?done=added").await;
    assert!(html.contains("Your passkey was added.") && html.contains("My  laptop"));

    // A security key: hwk.
    let stranger = app.new_browser();
    let (csrf, options) = sign_in_options(&stranger).await;
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options.get("mediation").is_none(), "{options}");
    let credential = authenticator.assert(&options, 0);
    let body = finish_body(&credential, Some("cross-platform"));
    let done =
        json_ok(post_json(&stranger, "/login/passkey/finish", Some(&csrf), &body).await).await;
    assert_eq!(done["redirect"], "/oauth/authorize?client_id=x");
    let (_, home) = stranger.get_html("/").await;
    assert!(home.contains("Alice Example"), "{home}");
    assert!(amrs_of(&app, &alice).contains(&"hwk mfa".to_owned()));
    assert!(passkey_rows(&app)[0].3.is_some(), "last use recorded");

    // The device's own authenticator: swk. A ceremony issued in the second of the last use
    // counts as issued before it, so the next one starts a second later.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let other = app.new_browser();
    let (csrf, options) = sign_in_options(&other).await;
    let body = finish_body(&authenticator.assert(&options, 0), Some("platform"));
    json_ok(post_json(&other, "/login/passkey/finish", Some(&csrf), &body).await).await;
    assert!(amrs_of(&app, &alice).contains(&"swk mfa".to_owned()));

    let kinds = audit_kinds(&app, &alice);
    assert_eq!(
        kinds.iter().filter(|k| *k == "factor_enrolled").count(),
        1,
        "{kinds:?}"
    );
    // One for the password login before the registration, one per passkey sign-in.
    assert_eq!(
        kinds.iter().filter(|k| *k == "sign_in").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "factor_used").count(),
        2,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn registration_requires_user_verification_and_excludes_registered_credentials() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "first").await).await;
    let csrf = token(&browser).await;
    let options = json_ok(
        post_json(
            &browser,
            "/account/passkeys/register/options",
            Some(&csrf),
            "",
        )
        .await,
    )
    .await;
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert_eq!(selection["residentKey"], "required", "{options}");
    let excluded: Vec<&str> = options["publicKey"]["excludeCredentials"]
        .as_array()
        .expect("excludeCredentials")
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(excluded, vec![passkey_rows(&app)[0].0.as_str()]);
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");

    // An authenticator that did not verify the user is refused.
    authenticator.user_verified = false;
    let credential = authenticator.register(&options);
    let body = json!({ "name": "x", "credential": credential }).to_string();
    let response = post_json(
        &browser,
        "/account/passkeys/register/finish",
        Some(&csrf),
        &body,
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(passkey_rows(&app).len(), 1);
}

#[tokio::test]
async fn a_sign_in_without_user_verification_is_refused() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;
    authenticator.user_verified = false;
    let stranger = app.new_browser();
    let (csrf, options) = sign_in_options(&stranger).await;
    let body = finish_body(&authenticator.assert(&options, 0), None);
    let response = post_json(&stranger, "/login/passkey/finish", Some(&csrf), &body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(amrs_of(&app, &alice_id(&app)).iter().all(|a| a == "pwd"));
}

#[tokio::test]
async fn every_passkey_post_needs_the_csrf_token() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;
    let id = passkey_rows(&app)[0].0.clone();
    for path in [
        "/account/passkeys/register/options",
        "/account/passkeys/register/finish",
        "/login/passkey/options",
        "/login/passkey/finish",
    ] {
        for csrf in [None, Some("wrong")] {
            let response = post_json(&browser, path, csrf, "{}").await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {csrf:?}");
            let body: Value = response.json().await.expect("JSON error");
            assert!(body["error"].is_string(), "{path}");
        }
    }
    for (path, extra) in [
        ("/account/passkeys/rename", ("name", "renamed")),
        ("/account/passkeys/remove", ("name", "")),
    ] {
        let form = [("id", id.as_str()), extra, ("csrf_token", "wrong")];
        let response = browser.post_form(path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let form = [("id", id.as_str()), extra];
        let response = browser.post_form(path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let rows = passkey_rows(&app);
    assert_eq!(
        (rows.len(), rows[0].2.as_str()),
        (1, "key"),
        "nothing changed"
    );
}

#[tokio::test]
async fn another_users_passkey_cannot_be_renamed_or_removed() {
    let app = spawn().await;
    let alice = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&alice, &mut authenticator, "alice's key").await).await;
    let id = passkey_rows(&app)[0].0.clone();

    app.add_user("mallory", "mallory-password-123");
    let mallory = app.new_browser();
    mallory.log_in("mallory", "mallory-password-123").await;
    let page = "/account/passkeys";
    let renamed = mallory
        .submit(
            "/login",
            "/account/passkeys/rename",
            &[("id", &id), ("name", "mine")],
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::NOT_FOUND);
    let removed = mallory
        .submit("/login", "/account/passkeys/remove", &[("id", &id)])
        .await;
    assert_eq!(removed.status(), StatusCode::NOT_FOUND);
    let (_, html) = mallory.get_html(page).await;
    assert!(
        !html.contains("alice&#x27;s key") && !html.contains(&id),
        "{html}"
    );
    let rows = passkey_rows(&app);
    assert_eq!((rows.len(), rows[0].2.as_str()), (1, "alice's key"));

    // Her own are hers to change.
    let renamed = alice
        .submit(
            "/login",
            "/account/passkeys/rename",
            &[("id", &id), ("name", "laptop")],
        )
        .await;
    assert_eq!(location(&renamed), "/account/passkeys?done=renamed");
    assert_eq!(passkey_rows(&app)[0].2, "laptop");
    let removed = alice
        .submit("/login", "/account/passkeys/remove", &[("id", &id)])
        .await;
    assert_eq!(location(&removed), "/account/passkeys?done=removed");
    assert!(passkey_rows(&app).is_empty());
    let kinds = audit_kinds(&app, &alice_id(&app));
    assert!(kinds.contains(&"factor_removed".to_owned()), "{kinds:?}");
}
