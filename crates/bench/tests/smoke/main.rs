//! Smoke test: every scenario, a handful of operations each, against the real provider started
//! in-process with bcrypt cost 4, so the load generator keeps compiling and working.

use std::rc::Rc;
use std::time::Duration;

use bench::flows::{Ctx, Target};
use bench::limits;
use bench::report::{self, Limits, Machine, ProviderFigures, Report};
use bench::runner::Scenario;
use bench::suite::{Options, run_scenarios};
use clap::Parser;
use testkit::TestProvider;

mod replicas;
mod soak;

#[tokio::test]
async fn every_scenario_completes_without_errors() -> anyhow::Result<()> {
    let provider = TestProvider::start().await?;
    let target = Target {
        addr: ([127, 0, 0, 1], provider.port).into(),
        issuer: provider.issuer.clone(),
        client_id: provider.client_id.clone(),
        client_secret: provider.client_secret.clone(),
        redirect_uri: provider.redirect_uri.clone(),
        username: provider.user.username.clone(),
        password: provider.user.password.clone(),
        scope: "openid profile email offline_access".into(),
    };
    let ctx = Rc::new(Ctx::discover(target).await?);
    let options = Options::parse_from([
        "bench",
        "--concurrency",
        "1,3",
        "--seconds",
        "0.2",
        "--login-seconds",
        "0.2",
        "--max-ops",
        "6",
    ]);
    let pid = std::process::id();
    let runs = run_scenarios(&ctx, &Scenario::ALL, &options, &[pid]).await?;

    assert_eq!(runs.len(), Scenario::ALL.len() * 2);
    for run in &runs {
        assert_eq!(
            run.errors, 0,
            "{} c={}: {:?}",
            run.name, run.concurrency, run.error_samples
        );
        assert!(
            run.operations > 0,
            "{} c={} did nothing",
            run.name,
            run.concurrency
        );
        assert!(run.operations <= 6, "{} ignored the count bound", run.name);
        assert!(run.per_sec > 0.0 && run.latency.p99_ms >= run.latency.p50_ms);
        assert!(run.provider_rss_max_kib > 0);
    }
    let login = runs
        .iter()
        .find(|r| r.scenario == Scenario::Login)
        .expect("login run");
    assert_eq!(
        login.login_pages, login.operations,
        "each login flow shows the login page"
    );
    assert_eq!(
        login.consent_pages, login.operations,
        "each login flow shows the consent page"
    );
    let signed_in = runs
        .iter()
        .find(|r| r.scenario == Scenario::SignedIn)
        .expect("signed-in run");
    assert_eq!(
        signed_in.login_pages + signed_in.consent_pages,
        0,
        "signed-in flows go straight to the code"
    );
    let steps: Vec<&str> = login.steps.iter().map(|s| s.request.as_str()).collect();
    for expected in [
        "GET /oauth/authorize",
        "POST /login",
        "POST /oauth/token",
        "GET /oauth/userinfo",
    ] {
        assert!(
            steps.contains(&expected),
            "{expected} missing from {steps:?}"
        );
    }

    // Both HTTP clients reach the provider.
    let local = tokio::task::LocalSet::new();
    let costs = local
        .run_until(bench::clientcost::compare(
            ctx.target.addr,
            &ctx.endpoints.discovery,
            2,
            Duration::from_millis(100),
        ))
        .await?;
    assert_eq!(costs.len(), 2);
    for cost in &costs {
        assert!(cost.requests > 0 && cost.errors == 0, "{cost:?}");
    }

    // The report renders with every target listed.
    let limits = Limits {
        bcrypt_cost: 4,
        bcrypt: limits::bcrypt_rate(4, 1, Duration::from_millis(10))?,
        rs256: limits::rs256_rate(1, Duration::from_millis(10))?,
    };
    let provider_figures = ProviderFigures {
        first_start_ready_ms: 1.0,
        ready_ms: vec![1.0],
        ready_ms_median: Some(1.0),
        ready_ms_max: Some(1.0),
        idle_rss_kib: Some(1024),
        idle_rss_after_bootstrap_kib: None,
        idle_rss_after_load_kib: None,
        peak_rss_kib: Some(2048),
    };
    let targets = report::check_targets(&runs, &limits, &provider_figures, None);
    let report = Report {
        deployment: "SQLite ×1".into(),
        command: "scripts/bench".into(),
        machine: Machine {
            cores: 2,
            cpu_model: "test".into(),
            load_average_before: None,
            load_average_after: None,
        },
        fractions: report::fractions(&runs, &limits),
        client_comparison: Vec::new(),
        limits,
        runs,
        provider: provider_figures,
        webapp: None,
        targets,
        soak: None,
    };
    let markdown = report.markdown();
    assert!(markdown.contains("| Signed-in flows/s at concurrency 64 |"));
    assert!(markdown.contains("| login flow | 3 |"));
    assert!(report.human().contains("refresh grant"));
    serde_json::to_string(&report)?;
    Ok(())
}
