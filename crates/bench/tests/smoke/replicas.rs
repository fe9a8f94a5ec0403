//! The scenarios against two `provider serve` processes on one database behind haproxy, as
//! `--replicas 2` runs them, for a handful of operations.

use std::rc::Rc;
use std::time::Duration;

use bench::deployment::{Database, Deployment, Layout, Seed, Setup};
use bench::flows::{Ctx, Target, random_token};
use bench::procfs;
use bench::runner::Scenario;
use bench::suite::{Options, run_scenarios};
use clap::Parser;

/// Starts `layout`, runs the flows that sign in, refresh and call userinfo at concurrency 3,
/// and checks that every operation succeeded and every process did part of the work.
async fn scenarios_complete_on(layout: Layout) -> anyhow::Result<()> {
    let binary = tokio::task::spawn_blocking(testkit::provider_binary).await??;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out)?;
    let seed = Seed {
        username: "alice".into(),
        password: random_token(18),
        client_id: "bench-client".into(),
        client_secret: random_token(32),
    };
    let webapp_url = "http://127.0.0.1:9";
    let redirect_uri = format!("{webapp_url}/api/auth/callback/provider");
    let database_url = layout.database.fresh(dir.path()).await?;
    let secret_key = random_token(64);
    let setup = Setup {
        bcrypt_cost: 4,
        database_url: &database_url,
        secret_key: &secret_key,
        seed: &seed,
        redirect_uri: &redirect_uri,
        webapp_url,
    };
    let deployment = Deployment::start(
        &layout,
        &setup,
        &binary,
        dir.path(),
        &out,
        Duration::from_secs(60),
    )
    .await?;
    assert_eq!(deployment.pids().len(), layout.replicas);
    assert_eq!(deployment.balancer.is_some(), layout.balanced);
    let target = Target {
        addr: deployment.addr,
        issuer: deployment.issuer.clone(),
        client_id: seed.client_id.clone(),
        client_secret: seed.client_secret.clone(),
        redirect_uri: redirect_uri.clone(),
        username: seed.username.clone(),
        password: seed.password.clone(),
        scope: "openid profile email offline_access".into(),
    };
    let ctx = Rc::new(Ctx::discover(target).await?);
    let options = Options::parse_from([
        "bench",
        "--concurrency",
        "3",
        "--seconds",
        "0.3",
        "--login-seconds",
        "0.3",
        "--max-ops",
        "12",
    ]);
    let cpu = |pids: &[u32]| -> Vec<f64> {
        pids.iter()
            .map(|&pid| procfs::cpu_seconds(pid).unwrap_or(0.0))
            .collect()
    };
    let pids = deployment.pids();
    let before = cpu(&pids);
    let scenarios = [
        Scenario::Login,
        Scenario::SignedIn,
        Scenario::Refresh,
        Scenario::Userinfo,
    ];
    let runs = run_scenarios(&ctx, &scenarios, &options, &pids).await?;
    let after = cpu(&pids);
    assert_eq!(runs.len(), scenarios.len());
    for run in &runs {
        assert_eq!(run.errors, 0, "{}: {:?}", run.name, run.error_samples);
        assert!(run.operations > 0, "{} did nothing", run.name);
        assert!(run.provider_rss_max_kib > 0, "{}", run.name);
    }
    for (i, (before, after)) in before.iter().zip(&after).enumerate() {
        assert!(after > before, "provider process {i} did no work");
    }
    deployment.stop()
}

#[tokio::test]
async fn scenarios_complete_against_two_replicas_on_sqlite_behind_haproxy() -> anyhow::Result<()> {
    scenarios_complete_on(Layout {
        database: Database::Sqlite,
        replicas: 2,
        balanced: true,
    })
    .await
}

#[tokio::test]
async fn scenarios_complete_against_two_replicas_on_postgres_behind_haproxy() -> anyhow::Result<()>
{
    scenarios_complete_on(Layout {
        database: Database::Postgres,
        replicas: 2,
        balanced: true,
    })
    .await
}

#[tokio::test]
async fn scenarios_complete_against_one_process_on_postgres() -> anyhow::Result<()> {
    scenarios_complete_on(Layout {
        database: Database::Postgres,
        replicas: 1,
        balanced: false,
    })
    .await
}
