//! The account center at `/account`: pages for the signed-in user only, CSRF on every form, the
//! profile, the sessions and the security events.

use diesel::prelude::*;
use provider::storage::schema::{audit_events, consents, sessions, users};
use reqwest::StatusCode;

use crate::helpers::{
    Browser, CLIENT_ID, TestApp, USER_PASSWORD, USER_USERNAME, csrf_token, location, page_text,
    spawn_app,
};

/// The audit kinds the account center records.
pub const ACCOUNT_KINDS: [&str; 4] = [
    "profile_changed",
    "password_changed",
    "session_ended",
    "consent_revoked",
];

/// The row id of the user named `username`.
pub fn user_id(app: &TestApp, username: &str) -> String {
    users::table
        .filter(users::username.eq(username))
        .select(users::id)
        .get_result(&mut *app.state.db.conn().unwrap())
        .unwrap()
}

/// The public ids of the sessions of the user named `username`.
pub fn session_ids(app: &TestApp, username: &str) -> Vec<String> {
    let id = user_id(app, username);
    sessions::table
        .filter(sessions::user_id.eq(id))
        .select(sessions::public_id)
        .load(&mut *app.state.db.conn().unwrap())
        .unwrap()
}

/// The audit events of the user named `username`: kind, outcome, detail, oldest first.
pub fn audit_rows(app: &TestApp, username: &str) -> Vec<(String, String, String)> {
    let id = user_id(app, username);
    audit_events::table
        .filter(audit_events::user_id.eq(id))
        .order(audit_events::id.asc())
        .select((
            audit_events::kind,
            audit_events::outcome,
            audit_events::detail,
        ))
        .load(&mut *app.state.db.conn().unwrap())
        .unwrap()
}

/// How many audit events of `kind` the user named `username` has.
pub fn audit_count(app: &TestApp, username: &str, kind: &str) -> usize {
    audit_rows(app, username)
        .iter()
        .filter(|(k, _, _)| k == kind)
        .count()
}

/// A user agent with its own cookie jar that sends `user_agent`.
pub fn browser_with_agent(app: &TestApp, user_agent: &str) -> Browser {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .unwrap();
    Browser {
        base: app.address.clone(),
        client,
        jar,
    }
}

/// Whether `browser` is signed in (the account page answers rather than redirecting).
pub async fn signed_in(browser: &Browser) -> bool {
    let response = browser.get("/account").await;
    match response.status() {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => false,
        other => panic!("GET /account: {other}"),
    }
}

/// Every account route with its placeholders filled in by `fill`.
fn account_routes(fill: impl Fn(&str) -> String) -> Vec<(actix_web::http::Method, String)> {
    let routes = provider::account::routes();
    assert!(routes.len() >= 10, "{routes:?}");
    routes
        .into_iter()
        .map(|(method, path)| {
            let path = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        fill(segment)
                    } else {
                        segment.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            (method, path)
        })
        .collect()
}

fn assert_page_headers(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert!(
        header("content-security-policy").contains("frame-ancestors 'none'"),
        "{what}"
    );
}

#[tokio::test]
async fn every_account_page_renders_for_the_signed_in_user_and_redirects_when_signed_out() {
    let app = spawn_app().await;
    let anonymous = app.new_browser();
    let alice = app.user_browser().await;
    let gets: Vec<String> = account_routes(|_| "x".to_owned())
        .into_iter()
        .filter(|(method, _)| method == actix_web::http::Method::GET)
        .map(|(_, path)| path)
        .collect();
    assert!(gets.len() >= 5, "{gets:?}");
    for path in &gets {
        let response = anonymous.get(path).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let expected = format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", path)]).unwrap()
        );
        assert_eq!(location(&response), expected, "{path}");
        assert_page_headers(&response, path);

        let response = alice.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_page_headers(&response, path);
        let html = response.text().await.unwrap();
        if ["/account", "/account/password", "/account/sessions"].contains(&path.as_str()) {
            assert!(csrf_token(&html).is_some(), "{path}");
        }
        // Every page links to the sections of the account, the other engineers' ones too.
        for link in [
            "/account/security",
            "/account/passkeys",
            "/account/sessions",
        ] {
            assert!(html.contains(&format!("href=\"{link}\"")), "{path}: {link}");
        }
    }
    let response = anonymous.get("/account").await;
    assert_eq!(location(&response), "/login?next=%2Faccount");

    // Signing in through that redirect comes back to the account page.
    let response = anonymous
        .login_next(USER_USERNAME, USER_PASSWORD, Some("/account"))
        .await;
    assert_eq!(location(&response), "/account");

    // The home page links to the account for a signed-in user only.
    let (_, html) = alice.get_html("/").await;
    assert!(html.contains("href=\"/account\""));
    let (_, html) = app.new_browser().get_html("/").await;
    assert!(!html.contains("href=\"/account\""));
    let (_, html) = alice.get_html("/account").await;
    assert!(page_text(&html).contains(USER_USERNAME));
}

#[tokio::test]
async fn every_account_post_is_refused_without_a_csrf_token() {
    let app = spawn_app().await;
    let alice = app.user_browser().await;
    let other = app.user_browser().await;
    let (code, pkce) = app.code_for_alice(&app.new_browser()).await;
    assert_eq!(app.exchange(&code, &pkce.verifier).await.status(), 200);
    let other_session = session_ids(&app, USER_USERNAME).into_iter().next().unwrap();
    let before = (
        session_ids(&app, USER_USERNAME).len(),
        consents::table
            .count()
            .get_result::<i64>(&mut *app.state.db.conn().unwrap())
            .unwrap(),
    );
    let posts: Vec<String> = account_routes(|segment| match segment {
        "{client_id}" => CLIENT_ID.to_owned(),
        _ => other_session.clone(),
    })
    .into_iter()
    .filter(|(method, _)| method == actix_web::http::Method::POST)
    .map(|(_, path)| path)
    .collect();
    assert!(posts.len() >= 5, "{posts:?}");
    // A token from another browser's session is as wrong as none.
    let foreign = other.csrf_token("/account").await;
    for path in &posts {
        let fields = [
            ("given_name", "Mallory"),
            ("email", "mallory@example.com"),
            ("current_password", USER_PASSWORD),
            ("new_password", "mallory-password-1"),
            ("confirm_password", "mallory-password-1"),
        ];
        for token in [None, Some("wrong"), Some(foreign.as_str())] {
            let mut form = fields.to_vec();
            if let Some(token) = token {
                form.push(("csrf_token", token));
            }
            let response = alice.post_form(path, &form).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {token:?}");
        }
        // Signed out, a post goes to the login page and changes nothing.
        let response = app.new_browser().post_form(path, &fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&response), "/login?next=%2Faccount", "{path}");
    }
    let after = (
        session_ids(&app, USER_USERNAME).len(),
        consents::table
            .count()
            .get_result::<i64>(&mut *app.state.db.conn().unwrap())
            .unwrap(),
    );
    assert_eq!(before, after, "no session ended, no consent forgotten");
    let user = app
        .state
        .db
        .run(|conn| provider::storage::users::find_by_username(conn, USER_USERNAME))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.given_name, "Alice");
    assert!(bcrypt::verify(USER_PASSWORD, &user.password_hash).unwrap());
    for kind in ACCOUNT_KINDS {
        assert_eq!(audit_count(&app, USER_USERNAME, kind), 0, "{kind}");
    }
}

/// Posts `fields` to `path` with the CSRF token of the page at `page`.
pub async fn account_post(
    browser: &Browser,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    browser.submit(page, path, fields).await
}

async fn alice_row(app: &TestApp) -> provider::storage::users::User {
    app.state
        .db
        .run(|conn| provider::storage::users::find_by_username(conn, USER_USERNAME))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn profile_change_saves_the_names_and_a_new_email_is_no_longer_verified() {
    let app = spawn_app().await;
    let alice = app.user_browser().await;
    diesel::update(users::table.filter(users::username.eq(USER_USERNAME)))
        .set(users::email_verified.eq(true))
        .execute(&mut *app.state.db.conn().unwrap())
        .unwrap();

    // Names only: the address stays verified.
    let response = account_post(
        &alice,
        "/account",
        "/account/profile",
        &[
            ("given_name", " Alicia "),
            ("family_name", "Exemplar"),
            ("email", "alice@example.com"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let user = alice_row(&app).await;
    assert_eq!(
        (user.given_name.as_str(), user.family_name.as_str()),
        ("Alicia", "Exemplar")
    );
    assert!(user.email_verified);
    let (_, html) = alice.get_html("/account").await;
    assert!(page_text(&html).contains("Profile saved."));

    // A new address is not verified; the username, admin flag and verification state the form
    // might carry are not the form's to set.
    let response = account_post(
        &alice,
        "/account",
        "/account/profile",
        &[
            ("given_name", "Alicia"),
            ("family_name", "Exemplar"),
            ("email", "alicia@example.org"),
            ("username", "mallory"),
            ("is_admin", "on"),
            ("email_verified", "on"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let user = alice_row(&app).await;
    assert_eq!(user.email, "alicia@example.org");
    assert!(!user.email_verified);
    assert_eq!(user.username, USER_USERNAME);
    assert!(!user.is_admin);
    let (_, html) = alice.get_html("/account").await;
    assert!(page_text(&html).contains("not verified"));

    // The change is what userinfo releases.
    let tokens = app.tokens_for_alice().await;
    let claims: serde_json::Value = app
        .http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims["email"], "alicia@example.org");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["given_name"], "Alicia");

    // One audit row per change, naming the fields; saving the same values records nothing.
    let response = account_post(
        &alice,
        "/account",
        "/account/profile",
        &[
            ("given_name", "Alicia"),
            ("family_name", "Exemplar"),
            ("email", "alicia@example.org"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let rows: Vec<_> = audit_rows(&app, USER_USERNAME)
        .into_iter()
        .filter(|(kind, _, _)| kind == "profile_changed")
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].1, "succeeded");
    assert_eq!(rows[0].2, "given name, family name");
    assert_eq!(rows[1].2, "email");

    // The events page says it in words.
    let (status, html) = alice.get_html("/account/events").await;
    assert_eq!(status, StatusCode::OK);
    let text = page_text(&html);
    assert!(text.contains("Profile change"), "{text}");
    assert!(!text.contains("profile_changed"), "{text}");
}

#[tokio::test]
async fn an_invalid_or_taken_email_or_too_long_name_is_refused_and_nothing_changes() {
    let app = spawn_app().await;
    app.add_user("bob", "bob-password-123");
    let alice = app.user_browser().await;
    let before = alice_row(&app).await;
    let long = "x".repeat(129);
    for (given_name, email, message) in [
        ("Alice", "not-an-address", "e-mail address must look like"),
        ("Alice", "alice@localhost", "e-mail address must look like"),
        (
            "Alice",
            "two words@example.com",
            "e-mail address must look like",
        ),
        ("Alice", "admin@example.com", "already exists"),
        // Taken whatever the case or Unicode form.
        ("Alice", "BOB@Example.COM", "already exists"),
        ("Alice", "\u{ff42}ob@example.com", "already exists"),
        (long.as_str(), "alice@example.com", "at most 128 characters"),
    ] {
        let response = account_post(
            &alice,
            "/account",
            "/account/profile",
            &[
                ("given_name", given_name),
                ("family_name", "Changed"),
                ("email", email),
            ],
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{email}");
        let html = response.text().await.unwrap();
        assert!(page_text(&html).contains(message), "{email}: {html}");
        // The form comes back with what was typed, to correct it.
        assert!(html.contains("Changed"), "{email}");
    }
    let after = alice_row(&app).await;
    assert_eq!(
        (
            after.email,
            after.family_name,
            after.email_verified,
            after.updated_at
        ),
        (
            before.email,
            before.family_name,
            before.email_verified,
            before.updated_at
        )
    );
    assert_eq!(audit_count(&app, USER_USERNAME, "profile_changed"), 0);

    // An unreadable form is a 400 too, never a 500.
    let token = alice.csrf_token("/account").await;
    let response = alice
        .client
        .post(app.url("/account/profile"))
        .header("content-type", "application/json")
        .body(format!("{{\"csrf_token\": \"{token}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(alice_row(&app).await.email, "alice@example.com");
}
