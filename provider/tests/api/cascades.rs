//! Ending a user's access: a password reset, deactivation or deletion (admin page or command
//! line) ends every session and revokes every grant and token; reactivation restores nothing.

use diesel::prelude::*;
use provider::storage::schema::{sessions, users};
use reqwest::StatusCode;
use reqwest::header::LOCATION;

use crate::helpers::{
    Browser, CLIENT_ID, CLIENT_SECRET, Pkce, TestApp, USER_PASSWORD, USER_USERNAME, hidden_fields,
    spawn_app,
};

const ADMIN: &str = "root";
const ADMIN_PASSWORD: &str = "root-password-123";

/// What alice holds: a signed-in browser and tokens issued in its session.
struct Held {
    browser: Browser,
    access_token: String,
    refresh_token: String,
}

async fn alice_holds(app: &TestApp) -> Held {
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let response = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    Held {
        browser,
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

pub async fn active(app: &TestApp, token: &str) -> bool {
    let response = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    body["active"].as_bool().unwrap()
}

fn alice_id(app: &TestApp) -> Option<String> {
    users::table
        .filter(users::username.eq(USER_USERNAME))
        .select(users::id)
        .get_result(&mut *app.state.db.conn().unwrap())
        .optional()
        .unwrap()
}

fn alice_sessions(app: &TestApp, id: &str) -> i64 {
    sessions::table
        .filter(sessions::user_id.eq(id))
        .count()
        .get_result(&mut *app.state.db.conn().unwrap())
        .unwrap()
}

/// Whether what `held` holds still works anywhere.
async fn assert_all_ended(app: &TestApp, held: &Held, id: &str) {
    assert!(!active(app, &held.access_token).await, "access token");
    assert!(!active(app, &held.refresh_token).await, "refresh token");
    let refreshed = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &held.refresh_token),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refreshed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(alice_sessions(app, id), 0);
    let response = held
        .browser
        .get(&app.authorize_url(&Pkce::new(), &[("prompt", "none")]))
        .await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.contains("error=login_required"), "{location}");
}

/// A provider with alice holding tokens, and a signed-in administrator.
async fn setup() -> (TestApp, Held, String, Browser) {
    let app = spawn_app().await;
    app.add_user(ADMIN, ADMIN_PASSWORD);
    diesel::update(users::table.filter(users::username.eq(ADMIN)))
        .set(users::is_admin.eq(true))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
    let held = alice_holds(&app).await;
    let id = alice_id(&app).unwrap();
    assert!(active(&app, &held.access_token).await);
    assert_eq!(alice_sessions(&app, &id), 1);
    let admin = app.new_browser();
    admin.log_in(ADMIN, ADMIN_PASSWORD).await;
    (app, held, id, admin)
}

/// Posts `fields` with the CSRF token of the page at `page`.
async fn admin_post(
    app: &TestApp,
    admin: &Browser,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = admin.get(&app.url(page)).await.text().await.unwrap();
    let mut form: Vec<(String, String)> = hidden_fields(&html)
        .into_iter()
        .filter(|(k, _)| k == "csrf_token")
        .take(1)
        .collect();
    assert_eq!(form.len(), 1, "a CSRF token on {page}");
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    admin.post_form(&app.url(path), &form).await
}

#[tokio::test]
async fn an_admin_password_reset_ends_every_session_grant_and_token() {
    let (app, held, id, admin) = setup().await;
    let page = format!("/admin/users/{id}");
    let response = admin_post(
        &app,
        &admin,
        &page,
        &format!("/admin/users/{id}/password"),
        &[("password", "a-brand-new-password")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_all_ended(&app, &held, &id).await;
}

#[tokio::test]
async fn deactivation_ends_everything_and_reactivation_restores_nothing() {
    let (app, held, id, admin) = setup().await;
    let page = format!("/admin/users/{id}");
    let path = format!("/admin/users/{id}/active");
    let response = admin_post(&app, &admin, &page, &path, &[("active", "false")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_all_ended(&app, &held, &id).await;
    let response = admin_post(&app, &admin, &page, &path, &[("active", "true")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_all_ended(&app, &held, &id).await;
}

#[tokio::test]
async fn deleting_a_user_asks_first_and_ends_everything() {
    let (app, held, id, admin) = setup().await;
    let confirm = admin
        .get(&app.url(&format!("/admin/users/{id}/delete")))
        .await;
    assert_eq!(confirm.status(), StatusCode::OK);
    assert!(confirm.text().await.unwrap().contains(USER_USERNAME));
    assert!(alice_id(&app).is_some(), "asking deletes nothing");
    let response = admin_post(
        &app,
        &admin,
        &format!("/admin/users/{id}/delete"),
        &format!("/admin/users/{id}/delete"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(alice_id(&app).is_none());
    assert_all_ended(&app, &held, &id).await;
}

#[tokio::test]
async fn an_admin_cannot_delete_themselves() {
    let (app, _held, _id, admin) = setup().await;
    let own: String = users::table
        .filter(users::username.eq(ADMIN))
        .select(users::id)
        .get_result(&mut *app.state.db.conn().unwrap())
        .unwrap();
    let page = format!("/admin/users/{own}");
    let response = admin_post(
        &app,
        &admin,
        &page,
        &format!("/admin/users/{own}/delete"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = admin_post(
        &app,
        &admin,
        &page,
        &format!("/admin/users/{own}/active"),
        &[("active", "false")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let still: i64 = users::table
        .filter(users::id.eq(&own))
        .filter(users::is_active.eq(true))
        .count()
        .get_result(&mut *app.state.db.conn().unwrap())
        .unwrap();
    assert_eq!(still, 1);
}

#[tokio::test]
async fn the_admin_page_lists_sessions_and_ends_one_or_all() {
    let (app, held, id, admin) = setup().await;
    let other = app.new_browser();
    other.log_in(USER_USERNAME, USER_PASSWORD).await;
    assert_eq!(alice_sessions(&app, &id), 2);
    let page = format!("/admin/users/{id}");
    let html = admin.get(&app.url(&page)).await.text().await.unwrap();
    assert!(html.contains("127.0.0.1"), "the address is listed");
    let public_id: String = sessions::table
        .filter(sessions::user_id.eq(&id))
        .order(sessions::created_at.asc())
        .select(sessions::public_id)
        .first(&mut *app.state.db.conn().unwrap())
        .unwrap();
    assert!(html.contains(&format!("/sessions/{public_id}/end")));
    let response = admin_post(
        &app,
        &admin,
        &page,
        &format!("/admin/users/{id}/sessions/{public_id}/end"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(alice_sessions(&app, &id), 1);
    let response = admin_post(
        &app,
        &admin,
        &page,
        &format!("/admin/users/{id}/sessions/end"),
        &[],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_all_ended(&app, &held, &id).await;
}

#[tokio::test]
async fn the_new_admin_posts_need_the_csrf_token() {
    let (app, held, id, admin) = setup().await;
    let public_id: String = sessions::table
        .filter(sessions::user_id.eq(&id))
        .select(sessions::public_id)
        .first(&mut *app.state.db.conn().unwrap())
        .unwrap();
    for path in [
        format!("/admin/users/{id}/delete"),
        format!("/admin/users/{id}/sessions/end"),
        format!("/admin/users/{id}/sessions/{public_id}/end"),
    ] {
        let response = admin
            .post_form(
                &app.url(&path),
                &[("csrf_token".to_owned(), "wrong".to_owned())],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert!(alice_id(&app).is_some());
    assert_eq!(alice_sessions(&app, &id), 1);
    assert!(active(&app, &held.access_token).await);
}

/// Runs the provider binary's command line on the app's database.
pub async fn cli(app: &TestApp, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use std::io::Write as _;
    let database = crate::helpers::database_env(&app.state.settings);
    let dir = app.dir.path().to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_provider"))
            .args(&args)
            .env_clear()
            .envs(database)
            .env("PROVIDER_BCRYPT_COST", "4")
            .env("PROVIDER_LOG", "off")
            .current_dir(dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_command_line_password_reset_deactivation_and_deletion_end_everything() {
    let app = spawn_app().await;
    let id = alice_id(&app).unwrap();

    let held = alice_holds(&app).await;
    let out = cli(
        &app,
        &["user", "set-password", USER_USERNAME, "--password-stdin"],
        Some("another-password-456\n"),
    )
    .await;
    assert!(out.status.success(), "{out:?}");
    assert_all_ended(&app, &held, &id).await;
    // The new password works, the old one does not.
    let fresh = app.new_browser();
    fresh.log_in(USER_USERNAME, "another-password-456").await;

    let held = alice_holds_with(&app, "another-password-456").await;
    let out = cli(&app, &["user", "deactivate", USER_USERNAME], None).await;
    assert!(out.status.success(), "{out:?}");
    assert_all_ended(&app, &held, &id).await;
    diesel::update(users::table.find(&id))
        .set(users::is_active.eq(true))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();
    assert_all_ended(&app, &held, &id).await;

    let held = alice_holds_with(&app, "another-password-456").await;
    let out = cli(&app, &["user", "delete", USER_USERNAME], None).await;
    assert!(out.status.success(), "{out:?}");
    assert!(alice_id(&app).is_none());
    assert_all_ended(&app, &held, &id).await;

    let out = cli(&app, &["user", "delete", "nobody"], None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody"));
}

async fn alice_holds_with(app: &TestApp, password: &str) -> Held {
    let browser = app.new_browser();
    browser.log_in(USER_USERNAME, password).await;
    let pkce = Pkce::new();
    let outcome = browser
        .drive(
            &app.authorize_url(&pkce, &[]),
            None,
            crate::helpers::Consent::Authorize,
        )
        .await;
    let response = app.exchange(&outcome.code(), &pkce.verifier).await;
    let body: serde_json::Value = response.json().await.unwrap();
    Held {
        browser,
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}
