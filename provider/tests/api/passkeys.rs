//! Passkeys over HTTP with a software authenticator: registration on `/account/passkeys`,
//! passwordless sign-in, CSRF on every POST, another user's credential, replayed and expired
//! ceremonies, malformed JSON, unverified users and throttling.

use std::collections::HashMap;

use actix_web::cookie::{Cookie, CookieJar, Key};
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
async fn spawn() -> TestApp {
    spawn_passkey_app(|_| {}).await
}

async fn spawn_passkey_app(customize: impl FnOnce(&mut provider::config::Settings)) -> TestApp {
    spawn_app_with(|s| {
        s.issuer = s.issuer.replace("127.0.0.1", "localhost");
        s.secret_key = Some(CookieSecret::generate());
        customize(s);
    })
    .await
}

async fn token(browser: &Browser) -> String {
    browser.csrf_token("/login").await
}

/// POSTs JSON to `path` with the CSRF header `csrf` (none when `None`).
async fn post_json(
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

async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// Registers a passkey named `name` for the browser's user; returns the finish response.
async fn register(
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
async fn sign_in_options(browser: &Browser) -> (String, Value) {
    let csrf = token(browser).await;
    let options =
        json_ok(post_json(browser, "/login/passkey/options", Some(&csrf), "{}").await).await;
    (csrf, options)
}

fn finish_body(credential: &Value, attachment: Option<&str>) -> String {
    json!({
        "credential": credential,
        "authenticator_attachment": attachment,
        "next": "/oauth/authorize?client_id=x",
    })
    .to_string()
}

fn alice_id(app: &TestApp) -> String {
    let mut conn = app.state.db.conn().expect("conn");
    users::table
        .filter(users::username.eq(USER_USERNAME))
        .select(users::id)
        .get_result(&mut *conn)
        .expect("alice")
}

fn amrs_of(app: &TestApp, user_id: &str) -> Vec<String> {
    let mut conn = app.state.db.conn().expect("conn");
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .select(sessions::amr)
        .load(&mut *conn)
        .expect("sessions")
}

fn passkey_rows(app: &TestApp) -> Vec<(String, String, String, Option<i64>)> {
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

fn audit_kinds(app: &TestApp, user_id: &str) -> Vec<String> {
    let mut conn = app.state.db.conn().expect("conn");
    audit_events::table
        .filter(audit_events::user_id.eq(user_id))
        .order(audit_events::id.asc())
        .select(audit_events::kind)
        .load(&mut *conn)
        .expect("audit events")
}

/// The session cookie of `browser` as `name=value`.
fn session_cookie(app: &TestApp, browser: &Browser) -> String {
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
fn browser_with_cookie(app: &TestApp, cookie: &str) -> Browser {
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
    assert_eq!(
        kinds.iter().filter(|k| *k == "sign_in").count(),
        2,
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

#[tokio::test]
async fn a_replayed_registration_stores_nothing_twice() {
    let app = spawn().await;
    let alice = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    let csrf = token(&alice).await;
    let options = json_ok(
        post_json(
            &alice,
            "/account/passkeys/register/options",
            Some(&csrf),
            "{}",
        )
        .await,
    )
    .await;
    let copied = session_cookie(&app, &alice);
    let credential = authenticator.register(&options);
    let body = json!({ "name": "key", "credential": credential }).to_string();
    json_ok(
        post_json(
            &alice,
            "/account/passkeys/register/finish",
            Some(&csrf),
            &body,
        )
        .await,
    )
    .await;
    // Again in the same browser: the ceremony is gone.
    let again = post_json(
        &alice,
        "/account/passkeys/register/finish",
        Some(&csrf),
        &body,
    )
    .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    // From a copy of the cookie that still holds it: the credential is registered already.
    let replayer = browser_with_cookie(&app, &copied);
    let replayed = post_json(
        &replayer,
        "/account/passkeys/register/finish",
        Some(&csrf),
        &body,
    )
    .await;
    assert_eq!(replayed.status(), StatusCode::CONFLICT);
    assert_eq!(passkey_rows(&app).len(), 1);
}

#[tokio::test]
async fn a_replayed_sign_in_is_refused() {
    let app = spawn().await;
    let alice = alice_id(&app);
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;
    // The ceremony is issued a second after registration, so its use is the first since.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let stranger = app.new_browser();
    let (csrf, options) = sign_in_options(&stranger).await;
    let copied = session_cookie(&app, &stranger);
    let body = finish_body(&authenticator.assert(&options, 0), None);
    json_ok(post_json(&stranger, "/login/passkey/finish", Some(&csrf), &body).await).await;
    let sessions_after_first = amrs_of(&app, &alice).len();

    // The same browser (with its new session's token): the ceremony was taken out of it.
    let csrf_now = token(&stranger).await;
    assert_ne!(csrf_now, csrf, "the session was renewed at login");
    let again = post_json(&stranger, "/login/passkey/finish", Some(&csrf_now), &body).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);

    // A copy of the cookie from before the finish still holds the ceremony: the passkey's
    // record of its last use refuses it.
    let replayer = browser_with_cookie(&app, &copied);
    let replayed = post_json(&replayer, "/login/passkey/finish", Some(&csrf), &body).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let (_, home) = replayer.get_html("/").await;
    assert!(
        !home.contains("Alice Example"),
        "the replay signed nobody in"
    );
    assert_eq!(amrs_of(&app, &alice).len(), sessions_after_first);
}

/// Rewrites the ceremony in the encrypted session cookie as if issued `secs` earlier.
fn age_ceremony(app: &TestApp, cookie: &str, secs: i64) -> String {
    let key = Key::from(app.settings.secret_key.as_ref().expect("key").as_bytes());
    // The cookie's value is percent-encoded on the wire.
    let parsed = Cookie::parse_encoded(cookie.to_owned()).expect("cookie");
    let name = parsed.name().to_owned();
    let name = name.as_str();
    let mut jar = CookieJar::new();
    jar.add_original(parsed);
    let plain = jar
        .private(&key)
        .get(name)
        .expect("decrypts")
        .value()
        .to_owned();
    let mut state: HashMap<String, String> = serde_json::from_str(&plain).expect("state");
    let mut ceremony: Value = serde_json::from_str(&state["passkey_ceremony"]).expect("ceremony");
    ceremony["issued_at"] = json!(ceremony["issued_at"].as_i64().unwrap() - secs);
    state.insert("passkey_ceremony".into(), ceremony.to_string());
    let mut jar = CookieJar::new();
    jar.private_mut(&key).add(Cookie::new(
        name.to_owned(),
        serde_json::to_string(&state).unwrap(),
    ));
    jar.get(name).expect("cookie").encoded().to_string()
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;

    let stranger = app.new_browser();
    let (csrf, options) = sign_in_options(&stranger).await;
    let cookie = session_cookie(&app, &stranger);
    let body = finish_body(&authenticator.assert(&options, 0), None);
    let late = browser_with_cookie(&app, &age_ceremony(&app, &cookie, 301));
    let response = post_json(&late, "/login/passkey/finish", Some(&csrf), &body).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("expired"),
        "{error}"
    );
    // Within five minutes it still works (and proves the rewritten cookie is well formed).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let in_time = browser_with_cookie(&app, &age_ceremony(&app, &cookie, 200));
    json_ok(post_json(&in_time, "/login/passkey/finish", Some(&csrf), &body).await).await;
}

#[tokio::test]
async fn malformed_json_is_a_client_error() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let csrf = token(&browser).await;
    // A ceremony in flight, so the body is what is wrong.
    json_ok(
        post_json(
            &browser,
            "/account/passkeys/register/options",
            Some(&csrf),
            "",
        )
        .await,
    )
    .await;
    for body in [
        "",
        "{",
        "[]",
        "{\"credential\": 5}",
        "\u{0}",
        "{\"name\": \"x\"}",
    ] {
        for path in ["/account/passkeys/register/finish", "/login/passkey/finish"] {
            let response = post_json(&browser, path, Some(&csrf), body).await;
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{path} {body:?}"
            );
        }
    }
    let response = post_json(
        &app.new_browser(),
        "/account/passkeys/register/options",
        None,
        "",
    )
    .await;
    assert!(response.status().is_client_error());
}

#[tokio::test]
async fn failed_passkey_sign_ins_are_throttled() {
    let app = spawn_passkey_app(|s| s.login_throttle.max_failures_per_account = 2).await;
    let browser = app.user_browser().await;
    let mut authenticator = SoftAuthenticator::new(app.issuer());
    json_ok(register(&browser, &mut authenticator, "key").await).await;
    authenticator.user_verified = false;
    let stranger = app.new_browser();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (csrf, options) = sign_in_options(&stranger).await;
        let body = finish_body(&authenticator.assert(&options, 0), None);
        let response = post_json(&stranger, "/login/passkey/finish", Some(&csrf), &body).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // The account's password logins count against the same limit.
    let response = app
        .new_browser()
        .login(USER_USERNAME, "alice-password-123")
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn passkeys_need_an_issuer_with_a_domain_name() {
    let app = spawn_app_with(|_| {}).await;
    let browser = app.user_browser().await;
    let csrf = token(&browser).await;
    let response = post_json(
        &browser,
        "/account/passkeys/register/options",
        Some(&csrf),
        "",
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
