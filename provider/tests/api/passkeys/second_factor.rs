//! A passkey as the second factor: `identity::passkeys::second_factor` driven by a small
//! service standing where the factor prompt will call it (the prompt holds the pending login;
//! here the path names its user), with the real session cookie and database.

use actix_session::Session;
use actix_web::cookie::Cookie;
use actix_web::{App, HttpResponse, test, web};
use diesel::prelude::*;
use provider::identity::passkeys::sign_in::FinishBody;
use provider::identity::passkeys::{PasskeyError, parse_json, second_factor};
use provider::state::AppState;
use provider::storage::schema::{passkeys, users};
use serde_json::{Value, json};

use crate::helpers::{Browser, SoftAuthenticator, TestApp, spawn_app_with};

async fn options(
    state: web::Data<AppState>,
    session: Session,
    user: web::Path<String>,
) -> Result<HttpResponse, PasskeyError> {
    let options = second_factor::start_for_user(&state, &session, &user).await?;
    Ok(HttpResponse::Ok().json(options))
}

async fn finish(
    state: web::Data<AppState>,
    session: Session,
    user: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PasskeyError> {
    let body: FinishBody = parse_json(&body)?;
    let amr =
        second_factor::finish_for_user(&state, &session, &user, &user, "127.0.0.1", &body).await?;
    Ok(HttpResponse::Ok().json(amr))
}

async fn spawn() -> TestApp {
    spawn_app_with(|s| {
        s.issuer = s.issuer.replace("127.0.0.1", "localhost");
        s.secret_key = Some(provider::config::CookieSecret::generate());
    })
    .await
}

fn user_id(app: &TestApp, username: &str) -> String {
    let mut conn = app.state.db.conn().expect("conn");
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .get_result(&mut *conn)
        .expect("user")
}

/// Registers a passkey through the real pages for the user signed in to `browser`.
async fn register(browser: &Browser, authenticator: &mut SoftAuthenticator) {
    let csrf = browser.csrf_token("/login").await;
    let post = |path: &str, body: String| {
        browser
            .client
            .post(format!("{}{path}", browser.base))
            .header("x-csrf-token", csrf.clone())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let options: Value = post("/account/passkeys/register/options", "{}".into())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let credential = authenticator.register(&options);
    let body = json!({ "name": "key", "credential": credential }).to_string();
    let response = post("/account/passkeys/register/finish", body)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

fn finish_body(credential: &Value, attachment: Option<&str>) -> String {
    json!({ "credential": credential, "authenticator_attachment": attachment }).to_string()
}

#[tokio::test]
async fn a_second_factor_is_one_of_the_pending_users_passkeys_used_once() {
    let app = spawn().await;
    let alice = user_id(&app, "alice");
    let mut alices_key = SoftAuthenticator::new(app.issuer());
    register(&app.user_browser().await, &mut alices_key).await;
    app.add_user("mallory", "mallory-password-123");
    let mallory_browser = app.new_browser();
    mallory_browser
        .log_in("mallory", "mallory-password-123")
        .await;
    let mut mallorys_key = SoftAuthenticator::new(app.issuer());
    register(&mallory_browser, &mut mallorys_key).await;
    let alices_id: String = {
        let mut conn = app.state.db.conn().unwrap();
        passkeys::table
            .filter(passkeys::user_id.eq(&alice))
            .select(passkeys::id)
            .get_result(&mut *conn)
            .unwrap()
    };
    // The ceremonies below are issued a second after the registrations.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let secret = app.settings.secret_key.clone().expect("key");
    let service = test::init_service(
        App::new()
            .wrap(provider::identity::session::middleware(&secret, false))
            .app_data(web::Data::new(app.state.clone()))
            .route("/options/{user}", web::post().to(options))
            .route("/finish/{user}", web::post().to(finish)),
    )
    .await;
    let start = |user: &str| test::TestRequest::post().uri(&format!("/options/{user}"));

    // Only alice's credential is offered.
    let response = test::call_service(&service, start(&alice).to_request()).await;
    assert_eq!(response.status(), 200);
    let cookie: Cookie<'static> = response.response().cookies().next().unwrap().into_owned();
    let options: Value = test::read_body_json(response).await;
    let allowed: Vec<&str> = options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(allowed, vec![alices_id.as_str()]);
    assert_eq!(options["publicKey"]["userVerification"], "required");

    // Mallory's passkey does not answer for alice.
    let finish_as = |user: &str, cookie: &Cookie<'static>, body: String| {
        test::TestRequest::post()
            .uri(&format!("/finish/{user}"))
            .cookie(cookie.clone())
            .insert_header(("content-type", "application/json"))
            .set_payload(body)
            .to_request()
    };
    let mallorys = finish_body(&mallorys_key.assert(&options, 0), None);
    let response = test::call_service(&service, finish_as(&alice, &cookie, mallorys)).await;
    assert_eq!(response.status(), 401);

    // Alice's does, once: hwk for a security key.
    let alices = finish_body(&alices_key.assert(&options, 0), Some("cross-platform"));
    let response = test::call_service(&service, finish_as(&alice, &cookie, alices.clone())).await;
    assert_eq!(response.status(), 200);
    let amr: Vec<String> = test::read_body_json(response).await;
    assert_eq!(amr, ["hwk", "mfa"]);
    let response = test::call_service(&service, finish_as(&alice, &cookie, alices)).await;
    assert_eq!(response.status(), 401, "a replay is refused");

    // A ceremony for alice does not finish mallory's second factor.
    let response = test::call_service(&service, start(&alice).to_request()).await;
    let cookie: Cookie<'static> = response.response().cookies().next().unwrap().into_owned();
    let options: Value = test::read_body_json(response).await;
    let mallory = user_id(&app, "mallory");
    let body = finish_body(&mallorys_key.assert(&options, 0), None);
    let response = test::call_service(&service, finish_as(&mallory, &cookie, body)).await;
    assert_eq!(response.status(), 400);

    // Without user verification: refused.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = test::call_service(&service, start(&alice).to_request()).await;
    let cookie: Cookie<'static> = response.response().cookies().next().unwrap().into_owned();
    let options: Value = test::read_body_json(response).await;
    alices_key.user_verified = false;
    let body = finish_body(&alices_key.assert(&options, 0), None);
    let response = test::call_service(&service, finish_as(&alice, &cookie, body)).await;
    assert_eq!(response.status(), 401);

    // A user without passkeys gets no options.
    let bob = {
        app.add_user("bob", "bob-password-12345");
        user_id(&app, "bob")
    };
    let response = test::call_service(&service, start(&bob).to_request()).await;
    let options: Value = test::read_body_json(response).await;
    assert_eq!(options, Value::Null);
}

#[tokio::test]
async fn without_a_pending_login_the_factor_mode_is_refused() {
    let app = spawn().await;
    let browser = app.user_browser().await;
    let csrf = browser.csrf_token("/login").await;
    let response = browser
        .client
        .post(format!(
            "{}/login/passkey/options?mode=factor",
            browser.base
        ))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let page = browser.get("/login/passkey?mode=factor").await;
    assert_eq!(page.status(), 303);
    let response = browser
        .client
        .post(format!("{}/login/passkey/options?mode=other", browser.base))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_password_then_a_passkey_signs_in_with_both() {
    let app = spawn().await;
    let mut key = SoftAuthenticator::new(app.issuer());
    register(&app.user_browser().await, &mut key).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let browser = app.new_browser();
    let response = browser
        .login_next("alice", "alice-password-123", Some("/done"))
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(crate::helpers::location(&response), "/login/factor");
    let (status, html) = browser.get_html("/login/passkey?mode=factor").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-passkey=\"factor\""), "{html}");
    let csrf = browser.csrf_token("/login").await;
    let post = |path: &str, body: String| {
        browser
            .client
            .post(format!("{}{path}", browser.base))
            .header("x-csrf-token", csrf.clone())
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let options: Value = post("/login/passkey/options?mode=factor", String::new())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body = finish_body(&key.assert(&options, 0), Some("cross-platform"));
    let response = post("/login/passkey/finish?mode=factor", body)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let done: Value = response.json().await.unwrap();
    assert_eq!(done["redirect"], "/done");
    let alice = user_id(&app, "alice");
    let mut conn = app.state.db.conn().unwrap();
    let amrs: Vec<String> = provider::storage::schema::sessions::table
        .filter(provider::storage::schema::sessions::user_id.eq(&alice))
        .select(provider::storage::schema::sessions::amr)
        .load(&mut *conn)
        .unwrap();
    assert!(amrs.contains(&"pwd hwk mfa".to_owned()), "{amrs:?}");
}

#[tokio::test]
async fn second_factor_guessing_is_throttled() {
    let app = spawn_app_with(|s| {
        s.issuer = s.issuer.replace("127.0.0.1", "localhost");
        s.secret_key = Some(provider::config::CookieSecret::generate());
        s.login_throttle.max_failures_per_account = 2;
    })
    .await;
    let alice = user_id(&app, "alice");
    let mut key = SoftAuthenticator::new(app.issuer());
    register(&app.user_browser().await, &mut key).await;
    key.user_verified = false;
    let secret = app.settings.secret_key.clone().expect("key");
    let service = test::init_service(
        App::new()
            .wrap(provider::identity::session::middleware(&secret, false))
            .app_data(web::Data::new(app.state.clone()))
            .route("/options/{user}", web::post().to(options))
            .route("/finish/{user}", web::post().to(finish)),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let start = test::TestRequest::post().uri(&format!("/options/{alice}"));
        let response = test::call_service(&service, start.to_request()).await;
        let cookie: Cookie<'static> = response.response().cookies().next().unwrap().into_owned();
        let options: Value = test::read_body_json(response).await;
        let request = test::TestRequest::post()
            .uri(&format!("/finish/{alice}"))
            .cookie(cookie)
            .set_payload(finish_body(&key.assert(&options, 0), None))
            .to_request();
        statuses.push(
            test::call_service(&service, request)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 429]);
}
