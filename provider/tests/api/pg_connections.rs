//! What only PostgreSQL has, whatever `PROVIDER_TEST_DATABASE` says: connections the server
//! closed are replaced, not handed out broken; an old database is upgraded as SQLite's are.

use diesel::prelude::*;
use reqwest::StatusCode;

use crate::helpers::{USER_PASSWORD, USER_USERNAME, postgres, spawn_app_with};

#[derive(QueryableByName)]
struct Ended {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn connections_the_server_closed_are_replaced_and_requests_go_on() {
    let url = postgres::fresh_database()
        .await
        .expect("a PostgreSQL database");
    let app = spawn_app_with({
        let url = url.clone();
        move |s| {
            s.database_url = url;
            s.secret_key = Some(provider::config::CookieSecret::generate());
        }
    })
    .await;
    // Every pooled connection in use once, so the pool holds several.
    for _ in 0..3 {
        let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    // What a restart of the server (or a failover) does to the open connections.
    let mut admin = diesel::PgConnection::establish(&url).expect("connect");
    let ended = diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid))::bigint AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .get_result::<Ended>(&mut admin)
    .expect("terminate");
    assert!(ended.n >= 1, "the provider had connections open");
    for _ in 0..3 {
        let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
}

/// A PostgreSQL database at the schema before the normalized user keys, with `rows` of
/// (username, email) in it.
async fn postgres_before_user_keys(rows: &[(&str, &str)]) -> String {
    use diesel::connection::SimpleConnection as _;
    use diesel_migrations::MigrationHarness as _;
    let url = postgres::fresh_database()
        .await
        .expect("a PostgreSQL database");
    let mut conn = diesel::PgConnection::establish(&url).expect("connect");
    for migration in conn
        .pending_migrations(provider::storage::postgres::MIGRATIONS)
        .expect("migrations")
        .iter()
        .take_while(|m| !m.name().to_string().ends_with("_user_keys"))
    {
        conn.run_migration(migration).expect("old migration");
    }
    for (i, (username, email)) in rows.iter().enumerate() {
        conn.batch_execute(&format!(
            "INSERT INTO users (id, subject, username, email, password_hash, created_at, updated_at)
             VALUES ('id{i}', 'sub{i}', '{username}', '{email}', 'x', 0, 0)"
        ))
        .expect("insert");
    }
    url
}

#[tokio::test]
async fn an_old_postgres_database_is_checked_then_keyed_like_a_sqlite_one() {
    let colliding = postgres_before_user_keys(&[
        ("carol", "carol@example.com"),
        ("CAROL", "c2@example.com"),
        ("erin", ""),
        ("frank", ""),
    ])
    .await;
    let db = provider::storage::Db::open(&colliding, 1).expect("open");
    let message = db.migrate().expect_err("collisions refused").to_string();
    assert!(message.contains("\"carol\" and \"CAROL\""), "{message}");
    assert!(!message.contains("erin"), "{message}");
    // Refused as a whole: nothing of the migration was applied.
    db.migrate().expect_err("still refused");

    let fine = postgres_before_user_keys(&[("\u{c9}mile", "\u{c9}MILE@example.com")]).await;
    let db = provider::storage::Db::open(&fine, 1).expect("open");
    db.migrate().expect("migrated");
    let user =
        provider::storage::users::find_by_username(&mut db.conn().expect("conn"), "\u{e9}mile")
            .expect("query")
            .expect("found by the key computed after the migration");
    assert_eq!(user.email, "\u{c9}MILE@example.com");
}
