//! The whole benchmark: machine limits, the provider started on loopback with a fresh database,
//! every scenario at every concurrency, memory and start-up figures, and the web app's memory.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Context;

use crate::clientcost;
use crate::deployment::{Database, Deployment, Layout, Seed, Setup};
use crate::flows::{Ctx, Target, random_token};
use crate::limits;
use crate::process::{Service, free_port, sibling_binary};
use crate::procfs;
use crate::report::{self, Limits, Machine, ProviderFigures, Report, WebappFigures};
use crate::runner::{self, AgentPool, Bounds, RunResult, Scenario};
use crate::soak;

/// Command-line options of the benchmark.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "bench",
    about = "Measures the provider against this machine's limits"
)]
pub struct Options {
    /// The provider binary (default: `provider` next to this executable).
    #[arg(long)]
    pub provider_bin: Option<PathBuf>,
    /// The web app binary (default: `webapp` next to this executable).
    #[arg(long)]
    pub webapp_bin: Option<PathBuf>,
    /// Skip the web app's memory figure.
    #[arg(long)]
    pub no_webapp: bool,
    /// The provider's database: a SQLite file, or a PostgreSQL cluster started for the run.
    #[arg(long, value_enum, default_value_t = Database::Sqlite)]
    pub database: Database,
    /// Provider processes on the one database; more than one are put behind haproxy.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// Put haproxy in front even of a single provider process (to compare like with like).
    #[arg(long)]
    pub haproxy: bool,
    /// Where report.json, report.md and the services' logs go.
    #[arg(long, default_value = "target/bench")]
    pub out: PathBuf,
    /// bcrypt cost of the provider's password hashes (the login flow measures it).
    #[arg(long, default_value_t = 12)]
    pub bcrypt_cost: u32,
    /// Concurrency levels (virtual users).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 8, 64])]
    pub concurrency: Vec<usize>,
    /// Scenarios to run (default: all).
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,
    /// Seconds each run of a cheap scenario starts operations.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Seconds each run of login flows starts operations (each costs a bcrypt hash).
    #[arg(long, default_value_t = 6.0)]
    pub login_seconds: f64,
    /// At most this many operations per run.
    #[arg(long, default_value_t = 300_000)]
    pub max_ops: u64,
    /// Threads for the machine limits (the provider's share of the cores).
    #[arg(long, default_value_t = 2)]
    pub limit_threads: usize,
    /// Restarts on the existing database timed for the ready figure.
    #[arg(long, default_value_t = 5)]
    pub ready_runs: usize,
    /// Skip measuring the generator's CPU cost per request with reqwest and with hyper.
    #[arg(long)]
    pub no_client_comparison: bool,
    /// Seconds to let a process settle before reading its idle RSS.
    #[arg(long, default_value_t = 1.0)]
    pub settle_seconds: f64,
    /// Also run the soak (not part of the default run): signed-in flows for --soak-seconds
    /// against a provider of its own with short code and token lifetimes (one process on
    /// SQLite, whose row counts it reads).
    #[arg(long)]
    pub soak: bool,
    /// Run only the soak (implies --soak): no other scenario, client comparison or web app.
    #[arg(long)]
    pub soak_only: bool,
    /// Seconds of the soak.
    #[arg(long, default_value_t = 300.0)]
    pub soak_seconds: f64,
    /// Seconds between two samples of the soak.
    #[arg(long, default_value_t = 10.0)]
    pub soak_sample_seconds: f64,
    /// Virtual users of the soak.
    #[arg(long, default_value_t = 64)]
    pub soak_concurrency: usize,
}

impl Options {
    /// Rejects values that would make the run meaningless, naming the option.
    pub fn validate(&self) -> anyhow::Result<()> {
        let seconds = |name: &str, value: f64, allow_zero: bool| {
            let ok = value.is_finite()
                && (value > 0.0 || (allow_zero && value == 0.0))
                && value <= 3600.0;
            anyhow::ensure!(
                ok,
                "--{name} must be a number of seconds in (0, 3600], not {value}"
            );
            Ok(())
        };
        seconds("seconds", self.seconds, false)?;
        seconds("login-seconds", self.login_seconds, false)?;
        seconds("settle-seconds", self.settle_seconds, true)?;
        anyhow::ensure!(
            self.soak_seconds.is_finite()
                && self.soak_seconds > 0.0
                && self.soak_seconds <= 86_400.0,
            "--soak-seconds must be a number of seconds in (0, 86400], not {}",
            self.soak_seconds
        );
        anyhow::ensure!(
            self.soak_sample_seconds.is_finite()
                && self.soak_sample_seconds >= 0.1
                && self.soak_sample_seconds <= self.soak_seconds,
            "--soak-sample-seconds must be between 0.1 and --soak-seconds, not {}",
            self.soak_sample_seconds
        );
        anyhow::ensure!(
            (1..=4096).contains(&self.soak_concurrency),
            "--soak-concurrency must be between 1 and 4096"
        );
        anyhow::ensure!(
            !self.concurrency.is_empty()
                && self.concurrency.iter().all(|&c| (1..=4096).contains(&c)),
            "--concurrency must list levels between 1 and 4096"
        );
        anyhow::ensure!(self.max_ops >= 1, "--max-ops must be at least 1");
        anyhow::ensure!(
            (1..=16).contains(&self.replicas),
            "--replicas must be between 1 and 16"
        );
        anyhow::ensure!(
            !(self.soak || self.soak_only) || self.layout() == Layout::SQLITE,
            "--soak runs one provider on SQLite: leave out --database, --replicas and --haproxy"
        );
        anyhow::ensure!(
            (1..=64).contains(&self.limit_threads),
            "--limit-threads must be between 1 and 64"
        );
        anyhow::ensure!(
            (4..=31).contains(&self.bcrypt_cost),
            "--bcrypt-cost must be between 4 and 31 (bcrypt's range)"
        );
        Ok(())
    }
}

impl Options {
    /// The provider processes to measure.
    pub fn layout(&self) -> Layout {
        Layout {
            database: self.database,
            replicas: self.replicas,
            balanced: self.haproxy || self.replicas > 1,
        }
    }
}

/// Runs the benchmark and returns its report (nothing written).
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    options.validate()?;
    let provider_bin = match &options.provider_bin {
        Some(path) => path.clone(),
        None => sibling_binary("provider")?,
    };
    let webapp_bin = match (&options.webapp_bin, options.no_webapp || options.soak_only) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => Some(sibling_binary("webapp")?),
    };
    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let out = options.out.canonicalize()?;
    let scenarios = if options.soak_only {
        Vec::new()
    } else if options.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        Scenario::ALL
            .into_iter()
            .filter(|s| options.scenarios.contains(s))
            .collect()
    };

    let (cores, cpu_model) = procfs::machine();
    let load_average_before = procfs::load_average();
    eprintln!("machine: {cores} cores, {cpu_model}, load average {load_average_before:?}");

    eprintln!(
        "measuring limits: bcrypt cost {} and RS256 on {} threads",
        options.bcrypt_cost, options.limit_threads
    );
    let bcrypt_time = Duration::from_secs(2);
    let limits = tokio::task::spawn_blocking({
        let (cost, threads) = (options.bcrypt_cost, options.limit_threads);
        move || -> anyhow::Result<Limits> {
            Ok(Limits {
                bcrypt_cost: cost,
                bcrypt: limits::bcrypt_rate(cost, threads, bcrypt_time)?,
                rs256: limits::rs256_rate(threads, Duration::from_secs(1))?,
            })
        }
    })
    .await??;
    eprintln!(
        "  bcrypt {:.1}/s, RS256 {:.0}/s",
        limits.bcrypt.per_sec, limits.rs256.per_sec
    );

    let dir = tempfile::tempdir()?;
    let layout = options.layout();
    let webapp_port = free_port()?;
    let webapp_url = format!("http://127.0.0.1:{webapp_port}");
    let redirect_uri = format!("{webapp_url}/api/auth/callback/provider");
    let seed = Seed {
        username: "alice".into(),
        password: random_token(18),
        client_id: "bench-client".into(),
        client_secret: random_token(32),
    };
    let database_url = options.database.fresh(dir.path()).await?;
    let secret_key = random_token(64);
    let setup = Setup {
        bcrypt_cost: options.bcrypt_cost,
        database_url: &database_url,
        secret_key: &secret_key,
        seed: &seed,
        redirect_uri: &redirect_uri,
        webapp_url: &webapp_url,
    };
    let start_timeout = Duration::from_secs(60);
    let deployment = Deployment::start(
        &layout,
        &setup,
        &provider_bin,
        dir.path(),
        &out,
        start_timeout,
    )
    .await?;
    let issuer = deployment.issuer.clone();
    let provider_addr = deployment.addr;
    let first_start_ready_ms = ms(deployment.first_ready_after());
    eprintln!(
        "provider {} (pids {:?}) ready in {first_start_ready_ms:.0} ms (fresh database) on {issuer}",
        layout.describe(),
        deployment.pids()
    );
    settle(options).await;
    // The memory targets are per process: the largest of the replicas is reported.
    let rss = |pids: &[u32]| -> Option<u64> {
        pids.iter()
            .map(|&pid| procfs::memory(pid).map(|m| m.rss_kib))
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    };
    let idle_rss_after_bootstrap_kib = rss(&deployment.pids());

    let webapp = match &webapp_bin {
        Some(binary) => Some(
            webapp_idle(
                binary,
                dir.path(),
                &out,
                &issuer,
                &webapp_url,
                webapp_port,
                &seed,
                options,
            )
            .await?,
        ),
        None => None,
    };

    let target = Target {
        addr: provider_addr,
        issuer: issuer.clone(),
        client_id: seed.client_id.clone(),
        client_secret: seed.client_secret.clone(),
        redirect_uri: redirect_uri.clone(),
        username: seed.username.clone(),
        password: seed.password.clone(),
        scope: "openid profile email offline_access".into(),
    };
    let ctx = Rc::new(Ctx::discover(target).await?);
    let runs = run_scenarios(&ctx, &scenarios, options, &deployment.pids()).await?;
    let client_comparison = if options.no_client_comparison || options.soak_only {
        Vec::new()
    } else {
        eprintln!("comparing HTTP clients on {}", ctx.endpoints.discovery);
        let local = tokio::task::LocalSet::new();
        let costs = local
            .run_until(clientcost::compare(
                provider_addr,
                &ctx.endpoints.discovery,
                64,
                Duration::from_secs_f64(options.seconds),
            ))
            .await?;
        for cost in &costs {
            eprintln!(
                "  {:<8} {:>9.0}/s, generator {:.1} µs CPU per request ({:.2} cores)",
                cost.client, cost.per_sec, cost.generator_cpu_us_per_request, cost.generator_cpu
            );
        }
        costs
    };

    let peak_rss_kib = deployment
        .pids()
        .iter()
        .map(|&pid| procfs::memory(pid).map(|m| m.hwm_kib))
        .collect::<Option<Vec<_>>>()
        .and_then(|peaks| peaks.into_iter().max());
    settle(options).await;
    let idle_rss_after_load_kib = rss(&deployment.pids());
    let provider_env = deployment.first_env.clone();
    let provider_log = out.join("provider.log");
    let first_addr = deployment.providers[0].addr;
    deployment.stop()?;

    // The first process alone, on its own port, as it was started.
    eprintln!(
        "timing {} restarts on the existing database",
        options.ready_runs
    );
    let mut ready_ms = Vec::new();
    let mut idle_rss_kib = None;
    for i in 0..options.ready_runs {
        let restarted = Service::start(
            "provider",
            &provider_bin,
            dir.path(),
            &provider_env,
            first_addr,
            &provider_log,
            start_timeout,
        )
        .await?;
        ready_ms.push(ms(restarted.ready_after));
        if i + 1 == options.ready_runs {
            settle(options).await;
            idle_rss_kib = procfs::memory(restarted.pid()).map(|m| m.rss_kib);
        }
        restarted.stop()?;
    }
    let mut sorted = ready_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let provider_figures = ProviderFigures {
        first_start_ready_ms,
        ready_ms_median: sorted.get(sorted.len() / 2).copied(),
        ready_ms_max: sorted.last().copied(),
        ready_ms,
        idle_rss_kib,
        idle_rss_after_bootstrap_kib,
        idle_rss_after_load_kib,
        peak_rss_kib,
    };

    let soak = if options.soak || options.soak_only {
        Some(run_soak(options, &provider_bin, &out, &seed, &redirect_uri).await?)
    } else {
        None
    };
    let mut targets = report::check_targets(&runs, &limits, &provider_figures, webapp.as_ref());
    if let Some(soak) = &soak {
        targets.extend(soak.checks.iter().cloned());
    }
    let fractions = report::fractions(&runs, &limits);
    Ok(Report {
        deployment: layout.describe(),
        command: std::env::var("BENCH_COMMAND")
            .unwrap_or_else(|_| std::env::args().collect::<Vec<_>>().join(" ")),
        machine: Machine {
            cores,
            cpu_model,
            load_average_before,
            load_average_after: procfs::load_average(),
        },
        limits,
        runs,
        fractions,
        client_comparison,
        provider: provider_figures,
        webapp,
        targets,
        soak,
    })
}

/// The soak, against a provider of its own on a fresh database, started with the soak's short
/// lifetimes and sweep interval.
async fn run_soak(
    options: &Options,
    provider_bin: &std::path::Path,
    out: &std::path::Path,
    seed: &Seed,
    redirect_uri: &str,
) -> anyhow::Result<soak::SoakReport> {
    let settings = soak::SoakSettings::new(
        options.soak_seconds,
        options.soak_sample_seconds,
        options.soak_concurrency,
    );
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let issuer = format!("http://127.0.0.1:{port}");
    let webapp_url = redirect_uri
        .strip_suffix("/api/auth/callback/provider")
        .unwrap_or(redirect_uri);
    let database_url = Database::Sqlite.fresh(dir.path()).await?;
    let secret_key = random_token(64);
    let setup = Setup {
        bcrypt_cost: options.bcrypt_cost,
        database_url: &database_url,
        secret_key: &secret_key,
        seed,
        redirect_uri,
        webapp_url,
    };
    let mut env = setup.env(&issuer, port);
    env.extend(settings.provider_env());
    let log = out.join("provider-soak.log");
    let _ = std::fs::remove_file(&log);
    let addr = ([127, 0, 0, 1], port).into();
    let provider = Service::start(
        "provider",
        provider_bin,
        dir.path(),
        &env,
        addr,
        &log,
        Duration::from_secs(60),
    )
    .await?;
    eprintln!(
        "soak: {:.0} s of signed-in flows at concurrency {} against provider (pid {}) with lifetimes code {} s, access {} s, refresh {} s, sweep every {} s",
        settings.seconds,
        settings.concurrency,
        provider.pid(),
        settings.code_ttl_secs,
        settings.access_token_ttl_secs,
        settings.refresh_token_ttl_secs,
        settings.sweep_interval_secs
    );
    let target = Target {
        addr,
        issuer,
        client_id: seed.client_id.clone(),
        client_secret: seed.client_secret.clone(),
        redirect_uri: redirect_uri.to_owned(),
        username: seed.username.clone(),
        password: seed.password.clone(),
        scope: "openid profile email offline_access".into(),
    };
    let ctx = Rc::new(Ctx::discover(target).await?);
    let report = soak::run(
        &ctx,
        &dir.path().join("provider.db"),
        Some(provider.pid()),
        &settings,
    )
    .await?;
    provider.stop()?;
    Ok(report)
}

/// Every scenario at every concurrency, against an already running provider.
pub async fn run_scenarios(
    ctx: &Rc<Ctx>,
    scenarios: &[Scenario],
    options: &Options,
    provider_pids: &[u32],
) -> anyhow::Result<Vec<RunResult>> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let mut pool = AgentPool::default();
            let mut runs = Vec::new();
            for &scenario in scenarios {
                for &concurrency in &options.concurrency {
                    let seconds = if scenario == Scenario::Login {
                        options.login_seconds
                    } else {
                        options.seconds
                    };
                    let bounds = Bounds {
                        duration: Duration::from_secs_f64(seconds),
                        max_ops: options.max_ops,
                    };
                    let result = runner::run(ctx, &mut pool, scenario, concurrency, bounds, provider_pids)
                        .await?;
                    eprintln!(
                        "  {:<15} c={:<3} {:>8} ops {:>10.1}/s p50 {:>8.2} ms p99 {:>8.2} ms errors {} (provider {:.2} cores, generator {:.2})",
                        result.name,
                        concurrency,
                        result.operations,
                        result.per_sec,
                        result.latency.p50_ms,
                        result.latency.p99_ms,
                        result.errors,
                        result.provider_cpu,
                        result.generator_cpu
                    );
                    runs.push(result);
                }
            }
            Ok(runs)
        })
        .await
}

#[allow(clippy::too_many_arguments)]
async fn webapp_idle(
    binary: &std::path::Path,
    dir: &std::path::Path,
    out: &std::path::Path,
    issuer: &str,
    webapp_url: &str,
    port: u16,
    seed: &Seed,
    options: &Options,
) -> anyhow::Result<WebappFigures> {
    let env: Vec<(String, String)> = [
        ("WEBAPP_URL", webapp_url.to_owned()),
        ("WEBAPP_ADDR", format!("127.0.0.1:{port}")),
        ("WEBAPP_SESSION_SECRET", random_token(48)),
        ("OIDC_ISSUER", issuer.to_owned()),
        ("OIDC_CLIENT_ID", seed.client_id.clone()),
        ("OIDC_CLIENT_SECRET", seed.client_secret.clone()),
        ("OIDC_PROVIDER_ID", "provider".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let log = out.join("webapp.log");
    let _ = std::fs::remove_file(&log);
    let webapp = Service::start(
        "webapp",
        binary,
        dir,
        &env,
        ([127, 0, 0, 1], port).into(),
        &log,
        Duration::from_secs(30),
    )
    .await?;
    settle(options).await;
    let figures = WebappFigures {
        ready_ms: ms(webapp.ready_after),
        idle_rss_kib: procfs::memory(webapp.pid()).map(|m| m.rss_kib),
    };
    eprintln!(
        "webapp ready in {:.0} ms, idle RSS {:?} KiB",
        figures.ready_ms, figures.idle_rss_kib
    );
    webapp.stop()?;
    Ok(figures)
}

async fn settle(options: &Options) {
    tokio::time::sleep(Duration::from_secs_f64(options.settle_seconds)).await;
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Options {
        Options::parse_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_valid_and_bad_values_name_their_option() {
        parse(&[]).validate().expect("defaults");
        assert_eq!(parse(&[]).layout(), Layout::SQLITE);
        let replicas = parse(&["--database", "postgres", "--replicas", "2"]);
        replicas.validate().expect("two replicas on PostgreSQL");
        assert!(replicas.layout().balanced);
        assert!(parse(&["--haproxy"]).layout().balanced);
        for (args, option) in [
            (&["--seconds=-1"][..], "--seconds"),
            (&["--login-seconds", "NaN"][..], "--login-seconds"),
            (&["--concurrency", "0"][..], "--concurrency"),
            (&["--bcrypt-cost", "3"][..], "--bcrypt-cost"),
            (&["--limit-threads", "0"][..], "--limit-threads"),
            (&["--max-ops", "0"][..], "--max-ops"),
            (&["--soak-seconds", "0"][..], "--soak-seconds"),
            (
                &["--soak-sample-seconds", "1000"][..],
                "--soak-sample-seconds",
            ),
            (&["--soak-concurrency", "0"][..], "--soak-concurrency"),
            (&["--replicas", "0"][..], "--replicas"),
            (&["--soak", "--replicas", "2"][..], "--soak"),
            (&["--soak-only", "--database", "postgres"][..], "--soak"),
        ] {
            let error = parse(args).validate().expect_err(option).to_string();
            assert!(error.contains(option), "{error}");
        }
    }
}
