//! Writes raced against each other on PostgreSQL, whatever `PROVIDER_TEST_DATABASE` says: there
//! transactions run concurrently (at READ COMMITTED, from several replicas), where SQLite's
//! single writer ran them one after the other.

use std::sync::Arc;

use diesel::prelude::*;
use oidc_core::jose::{Algorithm, SigningKey};
use provider::storage::logout_deliveries::{self, Delivery, PENDING};
use provider::storage::schema::{grants, logout_deliveries as deliveries_table, signing_keys};
use provider::storage::{Db, StorageError, signing_keys as keys};
use reqwest::StatusCode;
use tokio::task::JoinSet;

use crate::helpers::{CLIENT_ID, CLIENT_SECRET, TestApp, postgres, spawn_app_with};

/// A provider on a fresh PostgreSQL database of the test process's throwaway cluster.
async fn spawn_postgres_app() -> TestApp {
    let url = postgres::fresh_database()
        .await
        .expect("a PostgreSQL database");
    spawn_app_with(move |s| {
        s.database_url = url;
        s.secret_key = Some(provider::config::CookieSecret::generate());
    })
    .await
}

async fn statuses(
    mut requests: JoinSet<(StatusCode, serde_json::Value)>,
) -> Vec<(StatusCode, serde_json::Value)> {
    let mut out = Vec::new();
    while let Some(done) = requests.join_next().await {
        out.push(done.expect("request task"));
    }
    out
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> StatusCode {
    app.http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_code_redeemed_twenty_times_at_once_succeeds_once_and_the_replays_revoke_it() {
    let app = Arc::new(spawn_postgres_app().await);
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let (app, code, verifier) = (Arc::clone(&app), code.clone(), pkce.verifier.clone());
        requests.spawn(async move {
            let response = app.exchange(&code, &verifier).await;
            (response.status(), response.json().await.expect("JSON"))
        });
    }
    let answers = statuses(requests).await;
    let won: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!(*status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_grant");
    }
    // Every replay came after the winner committed, or waited for it: its tokens are revoked.
    let access = won[0].1["access_token"].as_str().expect("access token");
    assert_eq!(
        userinfo_status(&app, access).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refresh_token_rotated_ten_times_at_once_rotates_once_and_ends_the_grant() {
    let app = Arc::new(spawn_postgres_app().await);
    let tokens = app.tokens_for_alice().await;
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let mut requests = JoinSet::new();
    for _ in 0..10 {
        let (app, refresh) = (Arc::clone(&app), refresh.clone());
        requests.spawn(async move {
            let response = app
                .token_request(
                    (CLIENT_ID, CLIENT_SECRET),
                    &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                )
                .await;
            (response.status(), response.json().await.expect("JSON"))
        });
    }
    let answers = statuses(requests).await;
    let won: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(s, _)| *s != StatusCode::OK)
            .all(|(s, b)| *s == StatusCode::BAD_REQUEST && b["error"] == "invalid_grant"),
        "{answers:?}"
    );
    // The reuse revoked the grant, with the tokens the winner got.
    let revoked: i64 = grants::table
        .filter(grants::revoked_at.is_not_null())
        .count()
        .get_result(&mut *app.state.db.conn().expect("conn"))
        .expect("count");
    assert_eq!(revoked, 1);
    let rotated = won[0].1["refresh_token"]
        .as_str()
        .expect("new refresh token");
    let again = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", rotated)],
        )
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let access = won[0].1["access_token"].as_str().expect("access token");
    assert_eq!(
        userinfo_status(&app, access).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_due_logout_delivery_claimed_by_two_replicas_at_once_goes_to_one() {
    let app = spawn_postgres_app().await;
    // A second process on the same database: a pool of its own.
    let other = Db::open(&app.settings.database_url, 4).expect("second pool");
    // Due in the future, so the app's own worker leaves it to the claims below.
    let at = oidc_core::unix_now() + 3600;
    let delivery = Delivery {
        id: "d1".to_owned(),
        client_id: CLIENT_ID.to_owned(),
        uri: "http://127.0.0.1:9/logout".to_owned(),
        subject: "sub".to_owned(),
        sid: None,
        token: None,
        attempts: 0,
        next_attempt_at: at,
        last_error: None,
        status: PENDING.to_owned(),
        created_at: at,
        updated_at: at,
    };
    diesel::insert_into(deliveries_table::table)
        .values(&delivery)
        .execute(&mut *app.state.db.conn().expect("conn"))
        .expect("insert");
    let mut claims = JoinSet::new();
    for i in 0..20 {
        let db = if i % 2 == 0 {
            app.state.db.clone()
        } else {
            other.clone()
        };
        claims.spawn(async move {
            // Each read the queue first, as the worker does, then claims what it saw.
            let due = db
                .run(move |conn| logout_deliveries::due(conn, at, 10).map_err(StorageError::from))
                .await
                .expect("due");
            let Some(seen) = due.into_iter().next() else {
                return false;
            };
            db.write(move |conn| {
                logout_deliveries::claim(conn, &seen, at + 30).map_err(StorageError::from)
            })
            .await
            .expect("claim")
        });
    }
    let mut won = 0;
    while let Some(claimed) = claims.join_next().await {
        won += usize::from(claimed.expect("claim task"));
    }
    assert_eq!(won, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_key_rotations_leave_one_active_key_per_algorithm() {
    let app = spawn_postgres_app().await;
    let mut rotations = JoinSet::new();
    for _ in 0..6 {
        let db = app.state.db.clone();
        rotations.spawn(async move {
            let key = SigningKey::generate(Algorithm::ES256).expect("key");
            db.run(move |conn| keys::rotate(conn, &key)).await
        });
    }
    while let Some(done) = rotations.join_next().await {
        done.expect("task").expect("rotation");
    }
    let active: i64 = signing_keys::table
        .filter(signing_keys::alg.eq("ES256"))
        .filter(signing_keys::status.eq("active"))
        .count()
        .get_result(&mut *app.state.db.conn().expect("conn"))
        .expect("count");
    assert_eq!(active, 1);
    // The six rotated keys and the first are all still published.
    let published: i64 = signing_keys::table
        .filter(signing_keys::alg.eq("ES256"))
        .count()
        .get_result(&mut *app.state.db.conn().expect("conn"))
        .expect("count");
    assert_eq!(published, 7);
}

#[tokio::test]
async fn several_processes_migrate_one_fresh_database_at_once() {
    let url = postgres::fresh_database()
        .await
        .expect("a PostgreSQL database");
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || -> Result<(), StorageError> {
                let db = Db::open(&url, 2)?;
                db.migrate()
            })
        })
        .collect();
    for start in starts {
        start.join().expect("thread").expect("open and migrate");
    }
    let db = Db::open(&url, 1).expect("open");
    assert!(db.is_postgres());
    db.migrate().expect("nothing left to apply");
    let users: i64 = provider::storage::users::count(&mut db.conn().expect("conn")).expect("count");
    assert_eq!(users, 0);
}
