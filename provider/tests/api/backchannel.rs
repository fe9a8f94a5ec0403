//! Back-channel logout: when a session ends, every application with a grant in it gets a signed
//! logout token, posted off the request path, retried and given up on when it cannot be reached.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use oidc_core::jose::LogoutTokenVerifier;
use oidc_core::types::{ClientId, IssuerUrl};
use provider::storage::schema::{clients, logout_deliveries, sessions, users};
use reqwest::StatusCode;

use crate::helpers::{
    Browser, CLIENT_ID, ClientSpec, TestApp, USER_USERNAME, hidden_fields, spawn_app,
    spawn_app_with,
};

/// A loopback receiver that records the `logout_token` of every post.
struct Receiver {
    url: String,
    tokens: Arc<Mutex<Vec<String>>>,
}

fn receiver() -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/backchannel",
        listener.local_addr().unwrap().port()
    );
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let recorded = tokens.clone();
    let server = HttpServer::new(move || {
        let recorded = recorded.clone();
        App::new().route(
            "/backchannel",
            web::post().to(move |form: web::Form<Vec<(String, String)>>| {
                let recorded = recorded.clone();
                async move {
                    for (name, value) in form.into_inner() {
                        if name == "logout_token" {
                            recorded.lock().unwrap().push(value);
                        }
                    }
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Receiver { url, tokens }
}

/// An address nothing listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/backchannel")
}

async fn log_out(app: &TestApp, browser: &Browser) -> Duration {
    let page = browser.get(&app.url("/logout")).await.text().await.unwrap();
    let started = std::time::Instant::now();
    let response = browser
        .post_form(&app.url("/logout"), &hidden_fields(&page))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    started.elapsed()
}

fn set_backchannel(app: &TestApp, client_id: &str, uri: &str) {
    diesel::update(clients::table.find(client_id))
        .set(clients::backchannel_logout_uri.eq(uri))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
}

async fn wait_for(mut done: impl FnMut() -> bool, secs: u64) -> bool {
    for _ in 0..secs * 10 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}

#[tokio::test]
async fn logout_posts_a_verifiable_logout_token_with_the_sid_and_sub() {
    let rx = receiver();
    let app = spawn_app().await;
    set_backchannel(&app, CLIENT_ID, &rx.url);
    // Another application, registered for back-channel logout, without a grant in the session.
    app.add_client(ClientSpec::confidential("other"));
    let other = receiver();
    set_backchannel(&app, "other", &other.url);

    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let sid: String = sessions::table
        .select(sessions::public_id)
        .first(&mut *app.state.db.conn().unwrap())
        .unwrap();
    let sub: String = users::table
        .filter(users::username.eq(USER_USERNAME))
        .select(users::subject)
        .first(&mut *app.state.db.conn().unwrap())
        .unwrap();

    log_out(&app, &browser).await;
    let tokens = rx.tokens.clone();
    assert!(
        wait_for(|| !tokens.lock().unwrap().is_empty(), 10).await,
        "no logout token arrived"
    );
    let token = rx.tokens.lock().unwrap()[0].clone();
    let jwks: serde_json::Value = app.published_keys().await;
    let verifier = LogoutTokenVerifier::new(
        IssuerUrl::parse(app.issuer()).unwrap(),
        ClientId::new(CLIENT_ID),
        serde_json::from_value(jwks).unwrap(),
    );
    let verified = verifier.verify(&token).expect("a valid logout token");
    assert_eq!(verified.claims.sid.as_deref(), Some(sid.as_str()));
    assert_eq!(
        verified.claims.sub.as_ref().map(|s| s.as_str()),
        Some(sub.as_str())
    );
    // Delivered rows are deleted; the application without a grant got nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(other.tokens.lock().unwrap().is_empty());
    assert_eq!(rx.tokens.lock().unwrap().len(), 1, "one token, once");
    let left: i64 = logout_deliveries::table
        .count()
        .get_result(&mut *app.state.db.conn().unwrap())
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn an_unreachable_application_is_retried_then_given_up_while_logout_answers_at_once() {
    let app = spawn_app_with(|s| s.backchannel_max_attempts = 2).await;
    set_backchannel(&app, CLIENT_ID, &dead_url());
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let took = log_out(&app, &browser).await;
    assert!(took < Duration::from_secs(2), "logout waited: {took:?}");

    let db = app.state.db.clone();
    let state = move || -> Option<(i32, String)> {
        logout_deliveries::table
            .select((logout_deliveries::attempts, logout_deliveries::status))
            .first(&mut *db.conn().unwrap())
            .optional()
            .unwrap()
    };
    let given_up = wait_for(|| state().is_some_and(|(_, status)| status == "failed"), 15).await;
    assert!(given_up, "still {:?}", state());
    assert_eq!(state().unwrap().0, 2, "tried exactly the configured times");

    // Administrators see it.
    let admin = app.new_browser();
    app.add_user("root", "root-password-123");
    diesel::update(users::table.filter(users::username.eq("root")))
        .set(users::is_admin.eq(true))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
    admin.log_in("root", "root-password-123").await;
    let page = admin.get(&app.url("/admin/logout-deliveries")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(CLIENT_ID));
}

#[tokio::test]
async fn a_password_reset_tells_every_application_of_the_user() {
    let rx = receiver();
    let app = spawn_app().await;
    set_backchannel(&app, CLIENT_ID, &rx.url);
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let id: String = users::table
        .filter(users::username.eq(USER_USERNAME))
        .select(users::id)
        .first(&mut *app.state.db.conn().unwrap())
        .unwrap();
    app.state
        .db
        .write(move |conn| provider::storage::users::reset_password(conn, &id, "x"))
        .await
        .unwrap();
    let tokens = rx.tokens.clone();
    assert!(wait_for(|| tokens.lock().unwrap().len() == 1, 10).await);
}

#[tokio::test]
async fn back_channel_uris_are_checked_at_registration() {
    let app = spawn_app().await;
    for bad in [
        "ftp://127.0.0.1/bc",
        "http://apps.example.com/bc",
        "https://apps.example.com/bc#frag",
        "/relative",
    ] {
        let out = crate::cascades::cli(
            &app,
            &[
                "client",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                "https://apps.example.com/cb",
                "--backchannel-logout-uri",
                bad,
            ],
            None,
        )
        .await;
        assert!(!out.status.success(), "{bad} was accepted");
    }
    let out = crate::cascades::cli(
        &app,
        &[
            "client",
            "create",
            "--client-id",
            "good",
            "--name",
            "Good",
            "--redirect-uri",
            "https://apps.example.com/cb",
            "--backchannel-logout-uri",
            "https://apps.example.com/bc",
            "--backchannel-logout-session-required",
        ],
        None,
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    let stored: (Option<String>, bool) = clients::table
        .find("good")
        .select((
            clients::backchannel_logout_uri,
            clients::backchannel_logout_session_required,
        ))
        .first(&mut *app.state.db.conn().unwrap())
        .unwrap();
    assert_eq!(
        stored,
        (Some("https://apps.example.com/bc".to_owned()), true)
    );
}

#[tokio::test]
async fn discovery_advertises_back_channel_logout() {
    let app = spawn_app().await;
    let m: serde_json::Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["backchannel_logout_supported"], true);
    assert_eq!(m["backchannel_logout_session_supported"], true);
}
