//! Runs one scenario at one concurrency: virtual users in a loop, bounded in time and count,
//! while the provider's memory and every party's CPU time are sampled.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::flows::{Ctx, FlowPages, Tokens};
use crate::http::{Agent, Conn};
use crate::procfs;
use crate::stats::{Latency, StepSummary, Steps};

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A fresh user agent: authorize, login form (bcrypt), consent, code, token, userinfo.
    Login,
    /// A signed-in, consented user agent: authorize, code, token, userinfo.
    SignedIn,
    /// Userinfo with a valid access token.
    Userinfo,
    /// Refresh-token grants (each virtual user follows its own rotating refresh token).
    Refresh,
    /// The discovery document.
    Discovery,
    /// The JSON Web Key Set.
    Jwks,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Login,
        Scenario::SignedIn,
        Scenario::Userinfo,
        Scenario::Refresh,
        Scenario::Discovery,
        Scenario::Jwks,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Login => "login flow",
            Scenario::SignedIn => "signed-in flow",
            Scenario::Userinfo => "userinfo",
            Scenario::Refresh => "refresh grant",
            Scenario::Discovery => "discovery",
            Scenario::Jwks => "jwks",
        }
    }
}

/// Time and count bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// No virtual user starts an operation after this much time.
    pub duration: Duration,
    /// No more operations than this are started in all.
    pub max_ops: u64,
}

/// Signed-in user agents kept between scenarios, so each is logged in only once.
#[derive(Default)]
pub struct AgentPool {
    agents: Vec<Agent>,
}

impl AgentPool {
    pub const CAPACITY: usize = 64;

    pub fn len(&self) -> usize {
        self.agents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    fn take(&mut self) -> Option<Agent> {
        self.agents.pop()
    }

    fn put(&mut self, agent: Agent) {
        if self.agents.len() < Self::CAPACITY {
            self.agents.push(agent);
        }
    }
}

/// The result of one scenario at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub scenario: Scenario,
    pub name: &'static str,
    pub concurrency: usize,
    pub operations: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_sec: f64,
    #[serde(flatten)]
    pub latency: Latency,
    /// Mean time per request of each endpoint inside the flows.
    pub steps: Vec<StepSummary>,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
    pub login_pages: u64,
    pub consent_pages: u64,
    /// CPU cores used on average by the provider, by this generator, and by everything else.
    pub provider_cpu: f64,
    pub generator_cpu: f64,
    pub other_cpu: f64,
    /// Provider CPU time per operation (µs): what an operation costs, even on a busy machine.
    pub provider_cpu_us_per_op: f64,
    /// Generator CPU time per operation (µs).
    pub generator_cpu_us_per_op: f64,
    /// Highest provider RSS sampled during the run (KiB).
    pub provider_rss_max_kib: u64,
    pub tcp_connects: u64,
}

struct Worker {
    agent: Option<Agent>,
    rp: Conn,
    tokens: Option<Tokens>,
    steps: Steps,
    latencies: Vec<u32>,
    errors: u64,
    error_samples: Vec<String>,
    pages: (u64, u64),
}

impl Worker {
    fn new(ctx: &Ctx, agent: Option<Agent>) -> Self {
        Self {
            agent,
            rp: Conn::new(ctx.target.addr),
            tokens: None,
            steps: Steps::default(),
            latencies: Vec::new(),
            errors: 0,
            error_samples: Vec::new(),
            pages: (0, 0),
        }
    }

    fn error(&mut self, error: &anyhow::Error) {
        self.errors += 1;
        let message = format!("{error:#}");
        if self.error_samples.len() < 3 && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    fn count_pages(&mut self, pages: FlowPages) {
        self.pages.0 += u64::from(pages.login_pages);
        self.pages.1 += u64::from(pages.consent_pages);
    }

    /// Untimed preparation: a signed-in agent and, where needed, tokens.
    async fn prepare(&mut self, ctx: &Ctx, scenario: Scenario) -> anyhow::Result<()> {
        let needs_agent = matches!(
            scenario,
            Scenario::SignedIn | Scenario::Userinfo | Scenario::Refresh
        );
        if needs_agent && self.agent.is_none() {
            let mut agent = Agent::new(ctx.target.addr);
            let mut steps = Steps::default();
            ctx.browser_flow(&mut agent, &mut self.rp, true, &mut steps)
                .await?;
            self.agent = Some(agent);
        }
        if matches!(scenario, Scenario::Userinfo | Scenario::Refresh) {
            self.fetch_tokens(ctx).await?;
        }
        Ok(())
    }

    async fn fetch_tokens(&mut self, ctx: &Ctx) -> anyhow::Result<()> {
        let agent = self.agent.as_mut().expect("prepared agent");
        let mut steps = Steps::default();
        let (tokens, _) = ctx
            .browser_flow(agent, &mut self.rp, false, &mut steps)
            .await?;
        self.tokens = Some(tokens);
        Ok(())
    }

    /// One timed operation.
    async fn operate(&mut self, ctx: &Ctx, scenario: Scenario) -> anyhow::Result<()> {
        match scenario {
            Scenario::Login => {
                let mut agent = Agent::new(ctx.target.addr);
                let (_, pages) = ctx
                    .browser_flow(&mut agent, &mut self.rp, true, &mut self.steps)
                    .await?;
                self.count_pages(pages);
                self.agent = Some(agent);
            }
            Scenario::SignedIn => {
                let agent = self.agent.as_mut().expect("prepared agent");
                let (_, pages) = ctx
                    .browser_flow(agent, &mut self.rp, false, &mut self.steps)
                    .await?;
                self.count_pages(pages);
            }
            Scenario::Userinfo => {
                let tokens = self.tokens.as_ref().expect("prepared tokens");
                ctx.userinfo(&mut self.rp, &tokens.access_token, &mut self.steps)
                    .await?;
            }
            Scenario::Refresh => {
                let refresh = self
                    .tokens
                    .as_ref()
                    .and_then(|t| t.refresh_token.clone())
                    .ok_or_else(|| anyhow::anyhow!("no refresh token was issued"))?;
                let tokens = ctx.refresh(&mut self.rp, &refresh, &mut self.steps).await?;
                self.tokens = Some(Tokens {
                    refresh_token: tokens.refresh_token.or(Some(refresh)),
                    ..tokens
                });
            }
            Scenario::Discovery => ctx.discovery(&mut self.rp).await?,
            Scenario::Jwks => ctx.jwks(&mut self.rp).await?,
        }
        Ok(())
    }

    fn connects(&self) -> u64 {
        self.rp.connects + self.agent.as_ref().map_or(0, |a| a.conn.connects)
    }
}

/// Runs `scenario` with `concurrency` virtual users; must be called inside a `LocalSet`.
pub async fn run(
    ctx: &Rc<Ctx>,
    pool: &mut AgentPool,
    scenario: Scenario,
    concurrency: usize,
    bounds: Bounds,
    provider_pids: &[u32],
) -> anyhow::Result<RunResult> {
    // Preparation, untimed and concurrent (logging in costs a bcrypt hash each).
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let keeps_agent = matches!(
            scenario,
            Scenario::SignedIn | Scenario::Userinfo | Scenario::Refresh
        );
        let mut worker = Worker::new(ctx, if keeps_agent { pool.take() } else { None });
        let ctx = Rc::clone(ctx);
        set.spawn_local(async move {
            let prepared = worker.prepare(&ctx, scenario).await;
            (worker, prepared)
        });
    }
    let mut workers = Vec::with_capacity(concurrency);
    while let Some(joined) = set.join_next().await {
        let (worker, prepared) = joined?;
        prepared.map_err(|e| e.context(format!("preparing {}", scenario.name())))?;
        workers.push(worker);
    }

    let sampling = Rc::new(Cell::new(true));
    // With replicas, the provider is every process: their RSS and CPU are summed.
    let pids = provider_pids.to_vec();
    let sampler = (!pids.is_empty()).then(|| {
        let sampling = Rc::clone(&sampling);
        let pids = pids.clone();
        tokio::task::spawn_local(async move {
            let mut max = 0;
            while sampling.get() {
                let rss: u64 = pids
                    .iter()
                    .filter_map(|&pid| procfs::memory(pid))
                    .map(|m| m.rss_kib)
                    .sum();
                max = max.max(rss);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            max
        })
    });

    let me = std::process::id();
    let cpu_before = (
        pids.iter()
            .filter_map(|&pid| procfs::cpu_seconds(pid))
            .sum::<f64>(),
        procfs::cpu_seconds(me).unwrap_or(0.0),
        procfs::machine_cpu_seconds().unwrap_or((0.0, 0.0)),
    );
    let started = Instant::now();
    let deadline = started + bounds.duration;
    let claimed = Rc::new(Cell::new(0u64));
    let mut set = JoinSet::new();
    for mut worker in workers {
        let ctx = Rc::clone(ctx);
        let claimed = Rc::clone(&claimed);
        set.spawn_local(async move {
            while Instant::now() < deadline && claimed.get() < bounds.max_ops {
                claimed.set(claimed.get() + 1);
                let op_started = Instant::now();
                match worker.operate(&ctx, scenario).await {
                    Ok(()) => worker
                        .latencies
                        .push(u32::try_from(op_started.elapsed().as_micros()).unwrap_or(u32::MAX)),
                    Err(error) => {
                        worker.error(&error);
                        // A broken chain of refresh tokens is replaced, untimed.
                        if scenario == Scenario::Refresh && worker.fetch_tokens(&ctx).await.is_err()
                        {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
            worker
        });
    }
    let mut workers = Vec::with_capacity(concurrency);
    while let Some(joined) = set.join_next().await {
        workers.push(joined?);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_after = (
        pids.iter()
            .filter_map(|&pid| procfs::cpu_seconds(pid))
            .sum::<f64>(),
        procfs::cpu_seconds(me).unwrap_or(0.0),
        procfs::machine_cpu_seconds().unwrap_or((0.0, 0.0)),
    );
    sampling.set(false);
    let provider_rss_max_kib = match sampler {
        Some(handle) => handle.await?,
        None => 0,
    };

    let provider_cpu = (cpu_after.0 - cpu_before.0) / seconds;
    let generator_cpu = (cpu_after.1 - cpu_before.1) / seconds;
    let machine_busy = ((cpu_after.2).0 - (cpu_before.2).0) / seconds;
    let mut latencies = Vec::new();
    let mut steps = Steps::default();
    let mut errors = 0;
    let mut error_samples: Vec<String> = Vec::new();
    let mut pages = (0, 0);
    let mut tcp_connects = 0;
    for mut worker in workers {
        latencies.append(&mut worker.latencies);
        steps.merge(&worker.steps);
        errors += worker.errors;
        for sample in worker.error_samples.drain(..) {
            if error_samples.len() < 5 && !error_samples.contains(&sample) {
                error_samples.push(sample);
            }
        }
        pages.0 += worker.pages.0;
        pages.1 += worker.pages.1;
        tcp_connects += worker.connects();
        if let Some(agent) = worker.agent.take() {
            pool.put(agent);
        }
    }
    let operations = latencies.len() as u64;
    Ok(RunResult {
        scenario,
        name: scenario.name(),
        concurrency,
        operations,
        errors,
        seconds,
        per_sec: operations as f64 / seconds,
        latency: Latency::from_micros(latencies),
        steps: steps.summary(),
        error_samples,
        login_pages: pages.0,
        consent_pages: pages.1,
        provider_cpu,
        generator_cpu,
        other_cpu: (machine_busy - provider_cpu - generator_cpu).max(0.0),
        provider_cpu_us_per_op: provider_cpu * seconds * 1e6 / operations.max(1) as f64,
        generator_cpu_us_per_op: generator_cpu * seconds * 1e6 / operations.max(1) as f64,
        provider_rss_max_kib,
        tcp_connects,
    })
}
