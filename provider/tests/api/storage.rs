//! The database under load and across restarts.

use std::sync::Arc;

use diesel::prelude::*;
use provider::storage::schema::users;
use provider::storage::{StorageError, now};
use reqwest::StatusCode;

use crate::helpers::{
    ADMIN_PASSWORD, ADMIN_USERNAME, Browser, CLIENT_ID, CLIENT_SECRET, spawn_app, spawn_app_in,
    spawn_app_with,
};

#[tokio::test]
async fn many_concurrent_writers_never_see_database_is_locked() {
    // 30 logins of one account at once: in-flight attempts count against the throttle.
    let app = spawn_app_with(|s| {
        s.login_throttle.max_failures_per_account = 100;
        s.login_throttle.max_failures_per_address = 100;
    })
    .await;
    // Read-then-write transactions are the classic trigger of SQLITE_BUSY with deferred
    // transactions; immediate ones queue on the busy timeout instead.
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let db = app.state.db.clone();
            tokio::spawn(async move {
                db.write(move |conn| -> Result<(), StorageError> {
                    let current: i64 = users::table
                        .filter(users::username.eq(crate::helpers::USER_USERNAME))
                        .select(users::updated_at)
                        .first(conn)?;
                    diesel::update(
                        users::table.filter(users::username.eq(crate::helpers::USER_USERNAME)),
                    )
                    .set(users::updated_at.eq(current.max(now()) + i))
                    .execute(conn)?;
                    Ok(())
                })
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task").expect("no database error");
    }

    // And over HTTP: concurrent logins (each writes last_login_at) and registrations.
    let admin = app.admin_browser().await;
    let logins = (0..30).map(|_| {
        let browser = app.new_browser();
        tokio::spawn(async move {
            browser
                .login(crate::helpers::USER_USERNAME, crate::helpers::USER_PASSWORD)
                .await
                .status()
        })
    });
    let registrations = (0..20).map(|i| {
        let admin = admin.clone();
        tokio::spawn(async move {
            let name = format!("App {i}");
            admin
                .submit(
                    "/admin/applications/new",
                    "/admin/applications",
                    &[
                        ("name", name.as_str()),
                        ("client_type", "confidential"),
                        ("redirect_uris", "https://app.example/cb"),
                        ("algorithm", "RS256"),
                    ],
                )
                .await
                .status()
        })
    });
    let logins: Vec<_> = logins.collect();
    let registrations: Vec<_> = registrations.collect();
    for task in logins {
        assert_eq!(task.await.expect("task"), StatusCode::SEE_OTHER);
    }
    for task in registrations {
        assert_eq!(task.await.expect("task"), StatusCode::SEE_OTHER);
    }
    let count = app
        .state
        .db
        .run(|conn| provider::storage::clients::list(conn).map(|l| l.len()))
        .await
        .expect("query");
    assert_eq!(count, 21);
}

#[tokio::test]
async fn restart_keeps_users_applications_keys_and_sessions() {
    // No cookie key configured: it is generated next to the database and must survive too.
    let app = spawn_app_with(|s| s.secret_key = None).await;
    assert!(app.dir.path().join("provider.secret_key").exists());
    let admin = app.admin_browser().await;
    let response = admin
        .submit(
            "/admin/users/new",
            "/admin/users",
            &[("username", "carol"), ("password", "carol-password-123")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let rs256 = app
        .state
        .keys
        .active(oidc_core::jose::Algorithm::RS256)
        .expect("key")
        .kid()
        .to_owned();
    let jwks = app.state.keys.jwks_json();
    let old_address = app.address.clone();
    let dir = app.stop().await;

    let app = spawn_app_in(Arc::clone(&dir), |s| s.secret_key = None).await;
    assert_ne!(app.address, old_address);
    assert_eq!(
        app.new_browser()
            .login("carol", "carol-password-123")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.state
            .keys
            .active(oidc_core::jose::Algorithm::RS256)
            .expect("key")
            .kid(),
        rs256
    );
    assert_eq!(app.state.keys.jwks_json(), jwks);
    let client = app
        .state
        .db
        .run(|conn| provider::storage::clients::find(conn, CLIENT_ID))
        .await
        .expect("query")
        .expect("client kept");
    assert!(client.verify_secret(CLIENT_SECRET));
    // The admin's session cookie is still valid: the cookie key was kept.
    let same_session = Browser {
        base: app.address.clone(),
        client: admin.client.clone(),
    };
    let (status, _) = same_session.get_html("/admin/users").await;
    assert_eq!(status, StatusCode::OK);
    let _ = (ADMIN_USERNAME, ADMIN_PASSWORD);
}

#[tokio::test]
async fn bootstrap_is_idempotent_and_updates_the_client_secret() {
    let app = spawn_app().await;
    let dir = app.stop().await;
    let new_secret = "another-secret-0123456789-0123456789-xyz";
    let app = spawn_app_in(dir, |s| {
        if let Some(client) = s.bootstrap.client.as_mut() {
            client.client_secret = new_secret.to_owned();
        }
    })
    .await;
    let (users, client) = app
        .state
        .db
        .run(|conn| -> Result<_, StorageError> {
            Ok((
                provider::storage::users::count(conn)?,
                provider::storage::clients::find(conn, CLIENT_ID)?,
            ))
        })
        .await
        .expect("query");
    assert_eq!(users, 2);
    let client = client.expect("client");
    assert!(client.verify_secret(new_secret));
    assert!(!client.verify_secret(CLIENT_SECRET));
}

#[tokio::test]
async fn invalid_settings_refuse_to_start_naming_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.issuer = "not a url".to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let error = provider::startup::Application::from_listener(settings, listener)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("PROVIDER_ISSUER"), "{error}");
}

#[tokio::test]
async fn two_providers_start_together_on_one_fresh_database() {
    let dir = Arc::new(tempfile::tempdir().expect("dir"));
    let (a, b) = tokio::join!(
        spawn_app_in(Arc::clone(&dir), |s| s.secret_key = None),
        spawn_app_in(Arc::clone(&dir), |s| s.secret_key = None)
    );
    // One set of keys, one cookie key, one copy of the bootstrap accounts.
    assert_eq!(a.state.keys.jwks_json(), b.state.keys.jwks_json());
    assert_eq!(a.state.keys.jwks().keys.len(), 2);
    let users = a
        .state
        .db
        .run(provider::storage::users::count)
        .await
        .expect("count");
    assert_eq!(users, 2);
    // A session made by one is honoured by the other.
    let browser = a.admin_browser().await;
    let other = Browser {
        base: b.address.clone(),
        client: browser.client.clone(),
    };
    assert_eq!(other.get_html("/admin").await.0, StatusCode::OK);
}
