//! The database under load and across restarts.

use std::sync::Arc;

use diesel::prelude::*;
use oidc_core::unix_now;
use provider::storage::StorageError;
use provider::storage::schema::users;
use reqwest::StatusCode;

use crate::helpers::{
    ADMIN_PASSWORD, ADMIN_USERNAME, CLIENT_ID, CLIENT_SECRET, spawn_app, spawn_app_in,
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
                    .set(users::updated_at.eq(current.max(unix_now()) + i))
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
    let dir = Arc::new(tempfile::tempdir().expect("dir"));
    let path = dir.path().to_owned();
    let app = spawn_app_in(Arc::clone(&dir), |s| crate::helpers::use_sqlite(s, &path)).await;
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

    let path = dir.path().to_owned();
    let app = spawn_app_in(Arc::clone(&dir), |s| crate::helpers::use_sqlite(s, &path)).await;
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
    let same_session = admin.at(&app.address);
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
    assert!(!client.can_introspect);

    // PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT turns the client into a resource server; unset, the
    // stored flag is kept.
    let find = |app: &crate::helpers::TestApp| {
        let db = app.state.db.clone();
        async move {
            db.run(|conn| provider::storage::clients::find(conn, CLIENT_ID))
                .await
                .expect("query")
                .expect("client")
        }
    };
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |s| {
        if let Some(client) = s.bootstrap.client.as_mut() {
            client.can_introspect = Some(true);
        }
    })
    .await;
    assert!(find(&app).await.can_introspect);
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |_| {}).await;
    assert!(find(&app).await.can_introspect);
    let dir = app.stop().await;
    let app = spawn_app_in(dir, |s| {
        if let Some(client) = s.bootstrap.client.as_mut() {
            client.can_introspect = Some(false);
        }
    })
    .await;
    assert!(!find(&app).await.can_introspect);
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
    // On SQLite the cookie key is generated next to the database; PostgreSQL needs it given,
    // the same to both.
    let key = crate::helpers::on_postgres().then(provider::config::CookieSecret::generate);
    let (a, b) = tokio::join!(
        spawn_app_in(Arc::clone(&dir), |s| s.secret_key = key.clone()),
        spawn_app_in(Arc::clone(&dir), |s| s.secret_key = key.clone())
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
    let other = browser.at(&b.address);
    assert_eq!(other.get_html("/admin").await.0, StatusCode::OK);
}

#[tokio::test]
async fn sign_in_finds_the_account_whatever_the_case_or_unicode_form_typed() {
    let app = spawn_app().await;
    for typed in [
        "alice",
        "ALICE",
        "Alice",
        " alice ",
        "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
    ] {
        let response = app
            .new_browser()
            .login(typed, crate::helpers::USER_PASSWORD)
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{typed:?}");
    }
    // The username is kept as it was typed at creation for display.
    let alice = app
        .state
        .db
        .run(|conn| provider::storage::users::find_by_username(conn, "ALICE"))
        .await
        .expect("query")
        .expect("found");
    assert_eq!(alice.username, crate::helpers::USER_USERNAME);
}

/// A database at the schema before the normalized user keys, with `rows` of
/// (username, email) in it, in `dir`.
fn database_before_user_keys(dir: &std::path::Path, rows: &[(&str, &str)]) {
    use diesel::connection::SimpleConnection as _;
    use diesel_migrations::MigrationHarness as _;
    let url = dir.join("provider.db").to_string_lossy().into_owned();
    let mut conn = diesel::SqliteConnection::establish(&url).expect("open");
    // Every migration up to (not including) the one that adds the keys.
    for migration in conn
        .pending_migrations(provider::storage::MIGRATIONS)
        .expect("migrations")
        .iter()
        .take_while(|m| !m.name().to_string().ends_with("_user_keys"))
    {
        conn.run_migration(migration).expect("old migration");
    }
    for (i, (username, email)) in rows.iter().enumerate() {
        conn.batch_execute(&format!(
            "INSERT INTO users (id, subject, username, email, password_hash, created_at, updated_at)
             VALUES ('id{i}', 'sub{i}', '{username}', '{email}', '{hash}', 0, 0)",
            hash = bcrypt::hash("old-password-123", 4).expect("hash"),
        ))
        .expect("insert");
    }
}

#[tokio::test]
async fn an_old_database_with_colliding_usernames_or_emails_refuses_to_start_naming_them() {
    let dir = tempfile::tempdir().expect("dir");
    database_before_user_keys(
        dir.path(),
        &[
            ("carol", "carol@example.com"),
            ("CAROL", "c2@example.com"),
            ("dan", "Dan@Example.com"),
            ("daniel", "dan@example.com"),
            ("erin", ""),
            ("frank", ""),
        ],
    );
    let mut settings = crate::helpers::test_settings(dir.path());
    crate::helpers::use_sqlite(&mut settings, dir.path());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let error = provider::startup::Application::from_listener(settings, listener)
        .await
        .err()
        .expect("refused");
    let message = format!("{error:#}");
    for named in ["carol", "CAROL", "Dan@Example.com", "dan@example.com"] {
        assert!(message.contains(named), "{named} not in: {message}");
    }
    assert!(!message.contains("UNIQUE constraint"), "{message}");
    // Two empty e-mail addresses are not a collision.
    assert!(!message.contains("erin"), "{message}");
}

#[tokio::test]
async fn an_old_database_without_collisions_is_migrated_and_keeps_its_users() {
    let dir = Arc::new(tempfile::tempdir().expect("dir"));
    database_before_user_keys(
        dir.path(),
        &[
            ("Carol", "Carol@Example.com"),
            ("\u{c9}mile", "\u{c9}MILE@example.com"),
        ],
    );
    let path = dir.path().to_owned();
    let app = spawn_app_in(Arc::clone(&dir), |s| crate::helpers::use_sqlite(s, &path)).await;
    for typed in ["carol", "CAROL", "\u{e9}MILE"] {
        let response = app.new_browser().login(typed, "old-password-123").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{typed:?}");
    }
    // Keys of existing rows follow the same rules as new ones, beyond ASCII too.
    let admin = app.admin_browser().await;
    let response = admin
        .submit(
            "/admin/users/new",
            "/admin/users",
            &[
                ("username", "emile2"),
                ("password", "emile-password-123"),
                ("email", "\u{e9}mile@EXAMPLE.com"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
