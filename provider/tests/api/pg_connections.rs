//! What only PostgreSQL has, whatever `PROVIDER_TEST_DATABASE` says: connections the server
//! closed are replaced, not handed out broken; an old database is upgraded as SQLite's are; a
//! database lost while running is answered 503 until it returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// Statuses seen by requests sent in a loop until `stop` is set.
async fn load(
    app: Arc<crate::helpers::TestApp>,
    access_token: String,
    stop: Arc<AtomicBool>,
) -> Vec<StatusCode> {
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let response = client
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(&access_token)
            .send()
            .await
            .expect("the provider answers");
        seen.push(response.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

fn assert_unavailable(response: &reqwest::Response, what: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "{what} while the database is down"
    );
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"5"[..]),
        "{what}: Retry-After"
    );
}

#[tokio::test]
async fn a_database_lost_under_load_is_answered_503_with_retry_after_until_it_returns() {
    let cluster = tokio::task::spawn_blocking(postgres::private_cluster)
        .await
        .unwrap()
        .expect("a PostgreSQL cluster of this test's own");
    let url = cluster.create_database().expect("a database");
    let app = Arc::new(
        spawn_app_with(move |s| {
            s.database_url = url;
            s.secret_key = Some(provider::config::CookieSecret::generate());
        })
        .await,
    );
    let tokens = app.tokens_for_alice().await;
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|_| tokio::spawn(load(app.clone(), access_token.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The outage, mid-load: `pg_ctl stop -m fast` ends every open connection.
    let stopped = std::thread::scope(|s| s.spawn(|| cluster.stop()).join().unwrap());
    stopped.expect("stop the server");
    let client = reqwest::Client::new();
    let response = client
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_unavailable(&response, "userinfo");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
    assert_unavailable(&response, "a login");
    let response = app.exchange(&"x".repeat(43), &"y".repeat(43)).await;
    assert_unavailable(&response, "the token endpoint");

    // The database returns: the same provider serves again, without a restart.
    let started = std::thread::scope(|s| s.spawn(|| cluster.start()).join().unwrap());
    started.expect("start the server again");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(&access_token)
            .send()
            .await
            .unwrap()
            .status();
        if status == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status} 30 s after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = Vec::new();
    for worker in workers {
        seen.extend(worker.await.expect("no panic in the load"));
    }
    assert!(seen.contains(&StatusCode::OK), "{seen:?}");
    assert!(
        seen.contains(&StatusCode::SERVICE_UNAVAILABLE),
        "the load met the outage: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|s| *s == StatusCode::OK || *s == StatusCode::SERVICE_UNAVAILABLE),
        "only 200 or 503 under the outage: {seen:?}"
    );
    // Writes work again: a whole new code flow, login to tokens.
    let again = app.tokens_for_alice().await;
    assert!(again["access_token"].is_string());
}
