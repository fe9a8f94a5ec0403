//! Operator commands and the audit log: `provider audit list`, `provider user reset-factors`,
//! and operators' actions recorded with the actor `cli`. Run against the test server's own
//! database, so on either backend.

use std::process::Output;

use provider::storage::audit::{Event, Kind, Outcome};
use reqwest::StatusCode;

use crate::admin_audit::{enrol_factors, events, factor_rows, user_id};
use crate::audit::seed;
use crate::cli::{one_line_error, provider_with_env, stdout};
use crate::helpers::{TestApp, USER_USERNAME, spawn_app};

/// Runs `provider args` on the database of `app`, with `stdin`.
async fn run(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let db = app.dir.path().join("provider.db");
    let env = crate::helpers::database_env(&app.settings);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        provider_with_env(&db, &args, stdin.as_deref(), &env)
    })
    .await
    .expect("command thread")
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test]
async fn audit_list_prints_json_lines_that_parse_and_filter_and_a_table_without_json() {
    let app = spawn_app().await;
    let t = oidc_core::unix_now();
    seed(
        &app,
        &Event::new(Kind::SignIn, Outcome::Succeeded)
            .with_user("carol-id", "carol")
            .with_client("webapp"),
        t - 3 * 86_400,
    );
    seed(
        &app,
        &Event::new(Kind::SignIn, Outcome::Failed).with_username("carol"),
        t - 100,
    );
    seed(
        &app,
        &Event::new(Kind::ClientDeleted, Outcome::Succeeded)
            .with_client("gone")
            .with_actor("admin"),
        t - 50,
    );

    let all = json_lines(&run(&app, &["audit", "list", "--json", "--user", "carol"], None).await);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["outcome"], "failed", "newest first: {all:?}");
    assert_eq!(all[1]["client_id"], "webapp");
    assert_eq!(all[1]["at"], t - 3 * 86_400);
    assert!(all[0]["id"].as_i64().unwrap() > all[1]["id"].as_i64().unwrap());

    let failed = json_lines(
        &run(
            &app,
            &[
                "audit",
                "list",
                "--json",
                "--kind",
                "sign_in",
                "--outcome",
                "failed",
                "--user",
                "carol",
            ],
            None,
        )
        .await,
    );
    assert_eq!(failed.len(), 1);
    let by_client =
        json_lines(&run(&app, &["audit", "list", "--json", "--client", "gone"], None).await);
    assert_eq!(by_client.len(), 1);
    assert_eq!(by_client[0]["actor"], "admin");
    assert_eq!(by_client[0]["kind"], "client_deleted");
    let recent = json_lines(
        &run(
            &app,
            &["audit", "list", "--json", "--user", "carol", "--days", "1"],
            None,
        )
        .await,
    );
    assert_eq!(recent.len(), 1);
    let since = (t - 200).to_string();
    let since = json_lines(&run(&app, &["audit", "list", "--json", "--since", &since], None).await);
    assert!(since.iter().all(|e| e["at"].as_i64().unwrap() >= t - 200));
    assert!(since.iter().any(|e| e["kind"] == "client_deleted"));
    let limited = json_lines(&run(&app, &["audit", "list", "--json", "--limit", "1"], None).await);
    assert_eq!(limited.len(), 1);

    let table = stdout(&run(&app, &["audit", "list", "--user", "carol"], None).await);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("KIND"),
        "{table}"
    );
    assert!(
        lines[1].contains("sign_in") && lines[1].contains("failed"),
        "{table}"
    );

    for bad in [
        &["audit", "list", "--kind", "nope"][..],
        &["audit", "list", "--outcome", "maybe"],
        &["audit", "list", "--limit", "0"],
        &["audit", "list", "--since", "1", "--days", "2"],
        &["audit", "list", "--days", "-1"],
    ] {
        let out = run(&app, bad, None).await;
        assert!(!out.status.success(), "{bad:?}");
    }
}

#[tokio::test]
async fn operator_commands_are_recorded_with_the_actor_cli() {
    let app = spawn_app().await;
    stdout(
        &run(
            &app,
            &[
                "user",
                "create",
                "--username",
                "erin",
                "--email",
                "erin@example.com",
                "--password-stdin",
            ],
            Some("erin-password-123\n"),
        )
        .await,
    );
    stdout(
        &run(
            &app,
            &["user", "set-password", "erin", "--password-stdin"],
            Some("erin-password-456\n"),
        )
        .await,
    );
    stdout(&run(&app, &["user", "deactivate", "erin"], None).await);
    stdout(&run(&app, &["user", "delete", "erin"], None).await);
    stdout(
        &run(
            &app,
            &[
                "client",
                "create",
                "--name",
                "CLI app",
                "--client-id",
                "cli-app",
                "--redirect-uri",
                "https://app.example/cb",
            ],
            None,
        )
        .await,
    );
    stdout(&run(&app, &["keys", "rotate", "--algorithm", "ES256"], None).await);
    for (kind, detail) in [
        (Kind::UserCreated, ""),
        (Kind::PasswordReset, ""),
        (Kind::UserUpdated, "deactivated"),
        (Kind::UserDeleted, ""),
        (Kind::ClientCreated, ""),
    ] {
        let recorded = events(&app, kind);
        assert_eq!(recorded.len(), 1, "{kind:?}");
        assert_eq!(recorded[0].actor.as_deref(), Some("cli"), "{kind:?}");
        assert_eq!(recorded[0].detail, detail, "{kind:?}");
    }
    assert_eq!(events(&app, Kind::UserCreated)[0].username, "erin");
    assert_eq!(
        events(&app, Kind::ClientCreated)[0].client_id.as_deref(),
        Some("cli-app")
    );
    let rotated = events(&app, Kind::KeyRotated);
    assert_eq!(rotated.len(), 1);
    assert_eq!(rotated[0].actor.as_deref(), Some("cli"));
    assert!(rotated[0].detail.starts_with("ES256 "), "{:?}", rotated[0]);
}

#[tokio::test]
async fn reset_factors_from_the_cli_deletes_them_ends_sessions_and_records_it() {
    let app = spawn_app().await;
    let alice = user_id(&app, USER_USERNAME);
    enrol_factors(&app, &alice);
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;

    let out = run(&app, &["user", "reset-factors", USER_USERNAME], None).await;
    let message = stdout(&out);
    assert!(
        message.contains("Second factors of alice removed"),
        "{message}"
    );
    assert_eq!(factor_rows(&app, &alice), (0, 0, 0));
    let (error, _) = crate::sessions::prompt_none(&app, &browser).await;
    assert_eq!(error.as_deref(), Some("login_required"));
    let recorded = events(&app, Kind::FactorsReset);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].actor.as_deref(), Some("cli"));
    assert_eq!(recorded[0].user_id.as_deref(), Some(alice.as_str()));

    // Again, with nothing left: still fine, and recorded as such.
    stdout(&run(&app, &["user", "reset-factors", USER_USERNAME], None).await);
    assert_eq!(
        events(&app, Kind::FactorsReset)[0].detail,
        "totp=0 recovery_codes=0 passkeys=0"
    );

    let err = one_line_error(&run(&app, &["user", "reset-factors", "nobody"], None).await);
    assert!(err.contains("no user named \"nobody\""), "{err}");
    assert_eq!(events(&app, Kind::FactorsReset).len(), 2);
    // The server still answers for everyone else.
    assert_eq!(
        app.new_browser().get("/login").await.status(),
        StatusCode::OK
    );
}
