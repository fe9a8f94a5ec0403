//! The soak: signed-in flows for minutes against a provider with short code and token lifetimes
//! and a short sweep interval, sampling throughput, the provider's RSS and the rows it keeps.
//! A provider that runs for months must not grow with its traffic: the rows stay bounded by
//! rate × lifetime, RSS levels off, and throughput at the end matches throughput at the start.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::flows::Ctx;
use crate::http::{Agent, Conn};
use crate::procfs;
use crate::report::TargetCheck;
use crate::stats::Steps;

/// How long the provider keeps a row past its expiry before sweeping it
/// (`provider::storage::sweep::EXPIRY_MARGIN_SECS`; the smoke test checks they agree).
pub const PROVIDER_EXPIRY_MARGIN_SECS: i64 = 5;

/// The RSS the provider must level off under.
pub const RSS_TARGET_MIB: f64 = 64.0;

/// What the soak runs and against which lifetimes.
#[derive(Debug, Clone, Serialize)]
pub struct SoakSettings {
    pub seconds: f64,
    pub sample_seconds: f64,
    pub concurrency: usize,
    pub code_ttl_secs: i64,
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub sweep_interval_secs: u64,
    pub expiry_margin_secs: i64,
}

impl SoakSettings {
    /// Short lifetimes, so that rows expire and are swept many times within minutes, and the
    /// tables reach their steady state (every row inserted is also deleted) within the first
    /// half minute: the first minute then measures that state rather than an empty database.
    pub fn new(seconds: f64, sample_seconds: f64, concurrency: usize) -> Self {
        Self {
            seconds,
            sample_seconds,
            concurrency,
            code_ttl_secs: 2,
            access_token_ttl_secs: 5,
            refresh_token_ttl_secs: 10,
            sweep_interval_secs: 2,
            expiry_margin_secs: PROVIDER_EXPIRY_MARGIN_SECS,
        }
    }

    /// The provider's environment for these lifetimes.
    pub fn provider_env(&self) -> Vec<(String, String)> {
        [
            ("PROVIDER_CODE_TTL_SECS", self.code_ttl_secs.to_string()),
            (
                "PROVIDER_ACCESS_TOKEN_TTL_SECS",
                self.access_token_ttl_secs.to_string(),
            ),
            (
                "PROVIDER_REFRESH_TOKEN_TTL_SECS",
                self.refresh_token_ttl_secs.to_string(),
            ),
            (
                "PROVIDER_SWEEP_INTERVAL_SECS",
                self.sweep_interval_secs.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Seconds a row of this lifetime can stay: its lifetime, the sweep margin, and up to two
    /// sweep intervals (it may expire just after a sweep, and a sweep takes time).
    fn residence_secs(&self, lifetime: i64) -> f64 {
        (lifetime + self.expiry_margin_secs) as f64 + 2.0 * self.sweep_interval_secs as f64
    }

    /// The most rows of each kind a provider sweeping as it should keeps at `per_sec` flows/s
    /// (each signed-in flow leaves one grant, code, access token and refresh token).
    pub fn bounds(&self, per_sec: f64) -> RowCounts {
        let bound = |lifetime: i64| (per_sec * self.residence_secs(lifetime)).ceil() as i64;
        let longest = self
            .code_ttl_secs
            .max(self.access_token_ttl_secs)
            .max(self.refresh_token_ttl_secs);
        RowCounts {
            authorization_codes: bound(self.code_ttl_secs),
            access_tokens: bound(self.access_token_ttl_secs),
            refresh_tokens: bound(self.refresh_token_ttl_secs),
            grants: bound(longest),
        }
    }
}

/// Rows of the tables the sweeper keeps small.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, QueryableByName)]
pub struct RowCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub authorization_codes: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub access_tokens: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub refresh_tokens: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub grants: i64,
}

impl RowCounts {
    fn max(self, other: Self) -> Self {
        Self {
            authorization_codes: self.authorization_codes.max(other.authorization_codes),
            access_tokens: self.access_tokens.max(other.access_tokens),
            refresh_tokens: self.refresh_tokens.max(other.refresh_tokens),
            grants: self.grants.max(other.grants),
        }
    }

    fn within(self, bound: Self) -> bool {
        self.authorization_codes <= bound.authorization_codes
            && self.access_tokens <= bound.access_tokens
            && self.refresh_tokens <= bound.refresh_tokens
            && self.grants <= bound.grants
    }

    fn describe(self) -> String {
        format!(
            "codes {}, access {}, refresh {}, grants {}",
            self.authorization_codes, self.access_tokens, self.refresh_tokens, self.grants
        )
    }
}

/// Counts the rows in the provider's database file (a reader next to the provider's writer).
pub fn count_rows(database: &Path) -> anyhow::Result<RowCounts> {
    let mut conn = SqliteConnection::establish(&database.to_string_lossy())?;
    conn.batch_execute("PRAGMA busy_timeout = 5000;")?;
    Ok(diesel::sql_query(
        "SELECT (SELECT COUNT(*) FROM authorization_codes) AS authorization_codes,
                (SELECT COUNT(*) FROM access_tokens) AS access_tokens,
                (SELECT COUNT(*) FROM refresh_tokens) AS refresh_tokens,
                (SELECT COUNT(*) FROM grants) AS grants",
    )
    .get_result(&mut conn)?)
}

/// One sample of the soak.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the flows started.
    pub at_secs: f64,
    /// Flows completed so far.
    pub operations: u64,
    /// Flows per second since the previous sample.
    pub per_sec: f64,
    pub errors: u64,
    pub rss_kib: Option<u64>,
    pub rows: Option<RowCounts>,
}

/// What the soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub settings: SoakSettings,
    pub seconds: f64,
    pub operations: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub samples: Vec<Sample>,
    /// Highest throughput between two samples.
    pub peak_per_sec: f64,
    /// Length of the first and last windows compared (a minute, or a third of a short run).
    pub window_secs: f64,
    pub first_window_per_sec: f64,
    pub last_window_per_sec: f64,
    /// Most rows of each kind seen, and what `peak_per_sec` allows.
    pub max_rows: Option<RowCounts>,
    pub row_bounds: RowCounts,
    pub rss_max_first_half_kib: Option<u64>,
    pub rss_max_second_half_kib: Option<u64>,
    pub checks: Vec<TargetCheck>,
}

/// Runs the soak against a running provider whose database file is `database`; its memory is
/// read from `provider_pid`.
pub async fn run(
    ctx: &Rc<Ctx>,
    database: &Path,
    provider_pid: Option<u32>,
    settings: &SoakSettings,
) -> anyhow::Result<SoakReport> {
    let local = tokio::task::LocalSet::new();
    local
        .run_until(run_local(ctx, database.to_owned(), provider_pid, settings))
        .await
}

#[derive(Default)]
struct Tally {
    operations: Cell<u64>,
    errors: Cell<u64>,
    samples: std::cell::RefCell<Vec<String>>,
}

impl Tally {
    fn note(&self, message: String) {
        let mut samples = self.samples.borrow_mut();
        if samples.len() < 5 && !samples.contains(&message) {
            samples.push(message);
        }
    }
}

async fn run_local(
    ctx: &Rc<Ctx>,
    database: PathBuf,
    provider_pid: Option<u32>,
    settings: &SoakSettings,
) -> anyhow::Result<SoakReport> {
    // Signed-in agents first, untimed (each login costs a bcrypt hash).
    let mut set = JoinSet::new();
    for _ in 0..settings.concurrency {
        let ctx = Rc::clone(ctx);
        set.spawn_local(async move {
            let mut agent = Agent::new(ctx.target.addr);
            let mut rp = Conn::new(ctx.target.addr);
            let mut steps = Steps::default();
            ctx.browser_flow(&mut agent, &mut rp, true, &mut steps)
                .await?;
            anyhow::Ok((agent, rp))
        });
    }
    let mut agents = Vec::new();
    while let Some(joined) = set.join_next().await {
        agents.push(joined??);
    }

    let tally = Rc::new(Tally::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(settings.seconds);
    let mut set = JoinSet::new();
    for (mut agent, mut rp) in agents {
        let ctx = Rc::clone(ctx);
        let tally = Rc::clone(&tally);
        set.spawn_local(async move {
            let mut steps = Steps::default();
            while Instant::now() < deadline {
                match ctx
                    .browser_flow(&mut agent, &mut rp, false, &mut steps)
                    .await
                {
                    Ok(_) => tally.operations.set(tally.operations.get() + 1),
                    Err(error) => {
                        tally.errors.set(tally.errors.get() + 1);
                        let message = format!("{error:#}");
                        tally.note(message);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
    }

    let every = Duration::from_secs_f64(settings.sample_seconds);
    let mut samples = vec![Sample {
        at_secs: 0.0,
        operations: 0,
        per_sec: 0.0,
        errors: 0,
        rss_kib: provider_pid.and_then(procfs::memory).map(|m| m.rss_kib),
        rows: rows_of(&database).await,
    }];
    let mut next = started + every;
    while next < deadline {
        tokio::time::sleep_until(next.into()).await;
        samples.push(sample(&tally, started, &samples, provider_pid, &database).await);
        next += every;
    }
    while let Some(joined) = set.join_next().await {
        joined?;
    }
    samples.push(sample(&tally, started, &samples, provider_pid, &database).await);
    let seconds = started.elapsed().as_secs_f64();
    let error_samples = tally.samples.borrow().clone();
    Ok(summarize(
        settings,
        seconds,
        tally.operations.get(),
        tally.errors.get(),
        error_samples,
        samples,
    ))
}

async fn rows_of(database: &Path) -> Option<RowCounts> {
    let database = database.to_owned();
    match tokio::task::spawn_blocking(move || count_rows(&database)).await {
        Ok(Ok(rows)) => Some(rows),
        Ok(Err(error)) => {
            eprintln!("  counting rows failed: {error:#}");
            None
        }
        Err(_) => None,
    }
}

async fn sample(
    tally: &Tally,
    started: Instant,
    previous: &[Sample],
    provider_pid: Option<u32>,
    database: &Path,
) -> Sample {
    let at_secs = started.elapsed().as_secs_f64();
    let operations = tally.operations.get();
    let rss_kib = provider_pid.and_then(procfs::memory).map(|m| m.rss_kib);
    let rows = rows_of(database).await;
    let last = previous
        .last()
        .expect("the first sample is taken at the start");
    let per_sec = (operations - last.operations) as f64 / (at_secs - last.at_secs).max(1e-9);
    let sample = Sample {
        at_secs,
        operations,
        per_sec,
        errors: tally.errors.get(),
        rss_kib,
        rows,
    };
    eprintln!(
        "  soak {:>6.0} s {:>8.1} flows/s RSS {} rows {}",
        sample.at_secs,
        sample.per_sec,
        rss_kib.map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
        rows.map_or("?".into(), RowCounts::describe)
    );
    sample
}

/// Throughput over the first and the last `window` seconds, from cumulative samples.
fn windows(samples: &[Sample], window: f64) -> (f64, f64) {
    let (Some(first), Some(end)) = (samples.first(), samples.last()) else {
        return (0.0, 0.0);
    };
    let rate = |a: &Sample, b: &Sample| {
        (b.operations - a.operations) as f64 / (b.at_secs - a.at_secs).max(1e-9)
    };
    let early = samples
        .iter()
        .find(|s| s.at_secs >= window - 1e-6)
        .unwrap_or(end);
    let late = samples
        .iter()
        .rev()
        .find(|s| s.at_secs <= end.at_secs - window + 1e-6)
        .unwrap_or(first);
    (rate(first, early), rate(late, end))
}

/// The figures and target checks of a finished soak.
pub fn summarize(
    settings: &SoakSettings,
    seconds: f64,
    operations: u64,
    errors: u64,
    error_samples: Vec<String>,
    samples: Vec<Sample>,
) -> SoakReport {
    let peak_per_sec = samples.iter().map(|s| s.per_sec).fold(0.0, f64::max);
    let window_secs = 60.0_f64.min(seconds / 3.0);
    let (first_window_per_sec, last_window_per_sec) = windows(&samples, window_secs);
    let max_rows = samples.iter().filter_map(|s| s.rows).reduce(RowCounts::max);
    let row_bounds = settings.bounds(peak_per_sec);
    let half = seconds / 2.0;
    let rss_max = |second_half: bool| {
        samples
            .iter()
            .filter(|s| (s.at_secs > half) == second_half)
            .filter_map(|s| s.rss_kib)
            .max()
    };
    let rss_max_first_half_kib = rss_max(false);
    let rss_max_second_half_kib = rss_max(true);
    let mib = |k: u64| k as f64 / 1024.0;

    let mut checks = vec![TargetCheck {
        figure: format!(
            "Soak: rows kept (lifetimes code {} s, access {} s, refresh {} s; sweep every {} s)",
            settings.code_ttl_secs,
            settings.access_token_ttl_secs,
            settings.refresh_token_ttl_secs,
            settings.sweep_interval_secs
        ),
        target: format!(
            "≤ peak rate × (lifetime + {} s margin + 2 sweep intervals): {}",
            settings.expiry_margin_secs,
            row_bounds.describe()
        ),
        measured: max_rows.map_or("not measured".into(), |r| format!("max {}", r.describe())),
        pass: max_rows.map(|r| r.within(row_bounds)),
    }];
    checks.push(TargetCheck {
        figure: "Soak: provider RSS".into(),
        target: format!(
            "levels off (second half ≤ first half + 10%) under {RSS_TARGET_MIB:.0} MiB"
        ),
        measured: match (rss_max_first_half_kib, rss_max_second_half_kib) {
            (Some(a), Some(b)) => format!(
                "max {:.1} MiB in the first half, {:.1} MiB in the second",
                mib(a),
                mib(b)
            ),
            _ => "not measured".into(),
        },
        pass: match (rss_max_first_half_kib, rss_max_second_half_kib) {
            (Some(a), Some(b)) => {
                Some(mib(a.max(b)) <= RSS_TARGET_MIB && b as f64 <= 1.1 * a as f64)
            }
            _ => None,
        },
    });
    checks.push(TargetCheck {
        figure: format!(
            "Soak: signed-in flows/s, last {window_secs:.0} s against first {window_secs:.0} s (c={})",
            settings.concurrency
        ),
        target: "≥ 90% of the first, 0 errors".into(),
        measured: format!(
            "{first_window_per_sec:.0}/s → {last_window_per_sec:.0}/s ({:+.1}%), {errors} errors in {operations} flows",
            100.0 * (last_window_per_sec / first_window_per_sec.max(1e-9) - 1.0)
        ),
        pass: Some(
            operations > 0 && errors == 0 && last_window_per_sec >= 0.9 * first_window_per_sec,
        ),
    });
    SoakReport {
        settings: settings.clone(),
        seconds,
        operations,
        errors,
        error_samples,
        samples,
        peak_per_sec,
        window_secs,
        first_window_per_sec,
        last_window_per_sec,
        max_rows,
        row_bounds,
        rss_max_first_half_kib,
        rss_max_second_half_kib,
        checks,
    }
}

impl SoakReport {
    /// The samples as a Markdown table.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nSoak: {:.0} s of signed-in flows at concurrency {}, {} flows, {} errors; samples every {:.0} s.\n",
            self.seconds,
            self.settings.concurrency,
            self.operations,
            self.errors,
            self.settings.sample_seconds
        );
        let _ = writeln!(
            out,
            "| Time s | Flows/s | Provider RSS MiB | Codes | Access tokens | Refresh tokens | Grants |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
        for s in &self.samples {
            let rows = s.rows.map_or_else(
                || "? | ? | ? | ?".to_owned(),
                |r| {
                    format!(
                        "{} | {} | {} | {}",
                        r.authorization_codes, r.access_tokens, r.refresh_tokens, r.grants
                    )
                },
            );
            let _ = writeln!(
                out,
                "| {:.0} | {:.0} | {} | {rows} |",
                s.at_secs,
                s.per_sec,
                s.rss_kib
                    .map_or("?".into(), |k| format!("{:.1}", k as f64 / 1024.0))
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_secs: f64, operations: u64, rss_kib: u64, rows: i64) -> Sample {
        Sample {
            at_secs,
            operations,
            per_sec: 0.0,
            errors: 0,
            rss_kib: Some(rss_kib),
            rows: Some(RowCounts {
                authorization_codes: rows,
                access_tokens: rows,
                refresh_tokens: rows,
                grants: rows,
            }),
        }
    }

    fn with_rates(mut samples: Vec<Sample>) -> Vec<Sample> {
        for i in 1..samples.len() {
            let (a, b) = (&samples[i - 1], &samples[i]);
            samples[i].per_sec = (b.operations - a.operations) as f64 / (b.at_secs - a.at_secs);
        }
        samples
    }

    #[test]
    fn a_steady_run_passes_and_a_growing_one_fails() {
        let settings = SoakSettings::new(180.0, 30.0, 8);
        // 100 flows/s throughout, rows and RSS flat.
        let steady = with_rates(
            (0..=6)
                .map(|i| {
                    sample(
                        f64::from(i) * 30.0,
                        u64::from(i as u32) * 3000,
                        30_000,
                        1_000,
                    )
                })
                .collect(),
        );
        let report = summarize(&settings, 180.0, 18_000, 0, Vec::new(), steady);
        assert_eq!(report.window_secs, 60.0);
        assert!((report.first_window_per_sec - 100.0).abs() < 1e-9);
        assert!((report.last_window_per_sec - 100.0).abs() < 1e-9);
        assert_eq!(report.row_bounds.authorization_codes, 100 * (2 + 5 + 4));
        assert_eq!(report.row_bounds.grants, 100 * (10 + 5 + 4));
        assert!(
            report.checks.iter().all(|c| c.pass == Some(true)),
            "{:?}",
            report.checks
        );

        // Throughput falling by a fifth, rows growing without bound, RSS climbing.
        let operations = [0, 3000, 6000, 8700, 11_200, 13_600, 16_000];
        let growing = with_rates(
            (0..=6)
                .map(|i| {
                    let n = i as u32;
                    sample(
                        f64::from(n) * 30.0,
                        operations[i],
                        30_000 + u64::from(n) * 8_000,
                        3000 * i64::from(n),
                    )
                })
                .collect(),
        );
        let report = summarize(&settings, 180.0, 16_000, 0, Vec::new(), growing);
        assert!(
            report.checks.iter().all(|c| c.pass == Some(false)),
            "{:?}",
            report.checks
        );
        assert!(report.markdown().contains("| 180 | 80 | 76.2 | 18000 |"));
    }
}
