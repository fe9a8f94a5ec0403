//! Sweeping expired codes, tokens and grants: what goes, what must stay for replays to be
//! recognised, the background sweeper and the `cleanup` command.

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use oidc_core::unix_now as now;
use provider::storage::Db;
use provider::storage::schema::{
    access_tokens, authorization_codes, consents, grants, refresh_tokens,
};
use provider::storage::sweep::{self, EXPIRY_MARGIN_SECS, Swept};
use reqwest::StatusCode;

use crate::helpers::{CLIENT_ID, CLIENT_SECRET, TestApp, spawn_app, spawn_app_with};

/// Rows of every kind the sweeper looks at, and the consents it must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct Rows {
    codes: i64,
    access: i64,
    refresh: i64,
    grants: i64,
    consents: i64,
}

fn rows(db: &Db) -> Rows {
    let conn = &mut *db.conn().expect("connection");
    Rows {
        codes: authorization_codes::table.count().get_result(conn).unwrap(),
        access: access_tokens::table.count().get_result(conn).unwrap(),
        refresh: refresh_tokens::table.count().get_result(conn).unwrap(),
        grants: grants::table.count().get_result(conn).unwrap(),
        consents: consents::table.count().get_result(conn).unwrap(),
    }
}

/// Moves every expiry into the past, as if the lifetimes had run out long ago.
fn expire_everything(db: &Db) {
    let conn = &mut *db.conn().expect("connection");
    let past = now() - EXPIRY_MARGIN_SECS - 3600;
    diesel::update(authorization_codes::table)
        .set(authorization_codes::expires_at.eq(past))
        .execute(conn)
        .unwrap();
    diesel::update(access_tokens::table)
        .set(access_tokens::expires_at.eq(past))
        .execute(conn)
        .unwrap();
    diesel::update(refresh_tokens::table)
        .set(refresh_tokens::expires_at.eq(past))
        .execute(conn)
        .unwrap();
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.token_request(
        (CLIENT_ID, CLIENT_SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

async fn error_code(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    body["error"].as_str().expect("error member").to_owned()
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> StatusCode {
    app.http
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

fn text(value: &serde_json::Value, name: &str) -> String {
    value[name].as_str().expect(name).to_owned()
}

#[tokio::test]
async fn a_sweep_keeps_used_codes_and_rotated_refresh_tokens_so_replays_still_revoke() {
    let app = spawn_app().await;
    // Grant one: a refresh token rotated once.
    let first = app.tokens_for_alice().await;
    let rotated = refresh(&app, &text(&first, "refresh_token")).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: serde_json::Value = rotated.json().await.unwrap();
    // Grant two: a code redeemed once.
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    let redeemed = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(redeemed.status(), StatusCode::OK);
    let redeemed: serde_json::Value = redeemed.json().await.unwrap();
    let before = rows(&app.state.db);
    assert_eq!(
        (before.codes, before.access, before.refresh, before.grants),
        (2, 3, 3, 2)
    );

    let swept = sweep::sweep(&app.state.db, now(), 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept, Swept::default(), "nothing has expired yet");
    assert_eq!(rows(&app.state.db), before);

    // The rotated refresh token presented again ends grant one, newest tokens included.
    let reuse = refresh(&app, &text(&first, "refresh_token")).await;
    assert_eq!(error_code(reuse).await, "invalid_grant");
    assert_eq!(
        userinfo_status(&app, &text(&rotated, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
    let newest = refresh(&app, &text(&rotated, "refresh_token")).await;
    assert_eq!(error_code(newest).await, "invalid_grant");
    // The redeemed code presented again ends grant two.
    assert_eq!(
        userinfo_status(&app, &text(&redeemed, "access_token")).await,
        StatusCode::OK
    );
    let replay = app.exchange(&code, &pkce.verifier).await;
    assert_eq!(error_code(replay).await, "invalid_grant");
    assert_eq!(
        userinfo_status(&app, &text(&redeemed, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_rotated_refresh_token_outlives_the_sweep_of_its_grants_codes_and_access_tokens() {
    let app = spawn_app_with(|s| {
        s.access_token_ttl_secs = 120;
        s.refresh_token_ttl_secs = 3600;
    })
    .await;
    let first = app.tokens_for_alice().await;
    let rotated = refresh(&app, &text(&first, "refresh_token")).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: serde_json::Value = rotated.json().await.unwrap();

    // Later: the code and both access tokens have expired, the refresh tokens have not.
    let later = now() + 120 + EXPIRY_MARGIN_SECS + 5;
    let swept = sweep::sweep(&app.state.db, later, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        swept,
        Swept {
            authorization_codes: 1,
            access_tokens: 2,
            refresh_tokens: 0,
            grants: 0,
            sessions: 0,
            // The login's address window is still open.
            login_throttle: 0,
            audit_events: 0,
        }
    );
    let after = rows(&app.state.db);
    assert_eq!(
        (after.codes, after.access, after.refresh, after.grants),
        (0, 0, 2, 1)
    );

    // Reuse of the rotated token is still detected and still ends the grant.
    let reuse = refresh(&app, &text(&first, "refresh_token")).await;
    assert_eq!(error_code(reuse).await, "invalid_grant");
    let newest = refresh(&app, &text(&rotated, "refresh_token")).await;
    assert_eq!(error_code(newest).await, "invalid_grant");
    let conn = &mut *app.state.db.conn().unwrap();
    let revoked: Option<i64> = grants::table
        .select(grants::revoked_at)
        .get_result(conn)
        .unwrap();
    assert!(revoked.is_some(), "the grant was revoked by the reuse");
}

#[tokio::test]
async fn expired_codes_tokens_and_grants_are_swept_and_consents_kept() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    assert_eq!(
        refresh(&app, &text(&tokens, "refresh_token"))
            .await
            .status(),
        StatusCode::OK
    );
    // A code never redeemed, and a grant revoked by a replay.
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let (code, pkce) = app.code_for_alice(&browser).await;
    assert_eq!(
        app.exchange(&code, &pkce.verifier).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        error_code(app.exchange(&code, &pkce.verifier).await).await,
        "invalid_grant"
    );
    let before = rows(&app.state.db);
    assert_eq!(
        before,
        Rows {
            codes: 3,
            access: 3,
            refresh: 3,
            grants: 3,
            consents: 1
        }
    );

    let past_every_expiry =
        now() + app.state.settings.refresh_token_ttl_secs + EXPIRY_MARGIN_SECS + 1;
    let swept = sweep::sweep(&app.state.db, past_every_expiry, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        swept,
        Swept {
            authorization_codes: 3,
            access_tokens: 3,
            refresh_tokens: 3,
            grants: 3,
            // The two browsers' sessions, past their absolute lifetime by then.
            sessions: 2,
            // Their logins' address window (both from 127.0.0.1), ended by then.
            login_throttle: 1,
            audit_events: 0,
        }
    );
    assert_eq!(
        rows(&app.state.db),
        Rows {
            codes: 0,
            access: 0,
            refresh: 0,
            grants: 0,
            consents: 1
        }
    );
    // The remembered consent still skips the consent page.
    let browser = app.new_browser();
    let (code, pkce) = app.code_for_alice(&browser).await;
    assert_eq!(
        app.exchange(&code, &pkce.verifier).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_server_sweeps_expired_rows_in_the_background() {
    let app = spawn_app_with(|s| s.sweep_interval_secs = 1).await;
    let tokens = app.tokens_for_alice().await;
    let live = app.tokens_for_alice().await;
    // Only the first grant's rows expire.
    {
        let conn = &mut *app.state.db.conn().unwrap();
        let first_grant: String =
            access_tokens::table
                .filter(access_tokens::token_hash.eq(
                    oidc_core::types::TokenHash::of(&text(&tokens, "access_token")).into_string(),
                ))
                .select(access_tokens::grant_id)
                .get_result(conn)
                .unwrap();
        let past = now() - EXPIRY_MARGIN_SECS - 10;
        diesel::update(
            authorization_codes::table.filter(authorization_codes::grant_id.eq(&first_grant)),
        )
        .set(authorization_codes::expires_at.eq(past))
        .execute(conn)
        .unwrap();
        diesel::update(access_tokens::table.filter(access_tokens::grant_id.eq(&first_grant)))
            .set(access_tokens::expires_at.eq(past))
            .execute(conn)
            .unwrap();
        diesel::update(refresh_tokens::table.filter(refresh_tokens::grant_id.eq(&first_grant)))
            .set(refresh_tokens::expires_at.eq(past))
            .execute(conn)
            .unwrap();
    }
    let expected = Rows {
        codes: 1,
        access: 1,
        refresh: 1,
        grants: 1,
        consents: 1,
    };
    let started = Instant::now();
    while rows(&app.state.db) != expected {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not swept: {:?}",
            rows(&app.state.db)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        userinfo_status(&app, &text(&live, "access_token")).await,
        StatusCode::OK
    );
    assert_eq!(
        userinfo_status(&app, &text(&tokens, "access_token")).await,
        StatusCode::UNAUTHORIZED
    );
}

fn provider_command(
    db: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provider"));
    command
        .args(args)
        .env_clear()
        .env("PROVIDER_DATABASE_URL", db)
        .env("PROVIDER_LOG", "off")
        .current_dir(db.parent().expect("folder"));
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run the provider binary")
}

#[tokio::test]
async fn cleanup_removes_expired_rows_and_prints_how_many_of_each() {
    let app = spawn_app().await;
    let tokens = app.tokens_for_alice().await;
    assert_eq!(
        refresh(&app, &text(&tokens, "refresh_token"))
            .await
            .status(),
        StatusCode::OK
    );
    expire_everything(&app.state.db);
    // Two audit events past a retention of 30 days, one within it.
    for age_days in [31, 400, 29] {
        let event = provider::storage::audit::Event::new(
            provider::storage::audit::Kind::KeyRotated,
            provider::storage::audit::Outcome::Succeeded,
        );
        crate::audit::seed(&app, &event, now() - age_days * 86_400);
    }
    let db = app.dir.path().join("provider.db");
    let mut database = crate::helpers::database_env(&app.state.settings);
    database.push(("PROVIDER_AUDIT_RETENTION_DAYS", "30".to_owned()));

    // Next to the running server, on the same database.
    let output = {
        let db = db.clone();
        let database = database.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = database.iter().map(|(k, v)| (*k, v.as_str())).collect();
            provider_command(&db, &["cleanup"], &env)
        })
        .await
        .unwrap()
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "authorization codes: 1\naccess tokens: 2\nrefresh tokens: 2\ngrants: 1\naudit events: 2\n"
    );
    assert_eq!(
        rows(&app.state.db),
        Rows {
            codes: 0,
            access: 0,
            refresh: 0,
            grants: 0,
            consents: 1
        }
    );

    // Nothing left: it says so, and still succeeds.
    let env: Vec<(&str, &str)> = database.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let output = provider_command(&db, &["cleanup"], &env);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "authorization codes: 0\naccess tokens: 0\nrefresh tokens: 0\ngrants: 0\naudit events: 0\n"
    );
}

#[test]
fn a_sweep_interval_out_of_range_refuses_to_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("provider.db");
    for value in ["0", "86401", "soon"] {
        let output = provider_command(
            &db,
            &["cleanup"],
            &[("PROVIDER_SWEEP_INTERVAL_SECS", value)],
        );
        assert!(!output.status.success(), "{value} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("PROVIDER_SWEEP_INTERVAL_SECS"),
            "{value}: {stderr}"
        );
    }
}
