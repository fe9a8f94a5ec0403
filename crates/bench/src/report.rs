//! The report: targets checked, a table for people, JSON for machines, Markdown for the README.

use std::fmt::Write as _;

use serde::Serialize;

use crate::clientcost::ClientCost;
use crate::limits::Rate;
use crate::runner::{RunResult, Scenario};
use crate::soak::SoakReport;

/// The machine the figures come from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub load_average_before: Option<f64>,
    pub load_average_after: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub bcrypt_cost: u32,
    pub bcrypt: Rate,
    pub rs256: Rate,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderFigures {
    /// First start on a fresh database (migrations, signing key generation, bootstrap).
    pub first_start_ready_ms: f64,
    /// Restarts on the existing database.
    pub ready_ms: Vec<f64>,
    pub ready_ms_median: Option<f64>,
    pub ready_ms_max: Option<f64>,
    /// Idle RSS of a process started on the existing database, before any request but `/healthz`.
    pub idle_rss_kib: Option<u64>,
    /// Idle RSS right after the first start (bootstrap done), before the load.
    pub idle_rss_after_bootstrap_kib: Option<u64>,
    /// RSS after the load, once idle again.
    pub idle_rss_after_load_kib: Option<u64>,
    /// Peak RSS (VmHWM) at the end of the load.
    pub peak_rss_kib: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WebappFigures {
    pub ready_ms: f64,
    pub idle_rss_kib: Option<u64>,
}

/// A flow's rate next to the machine limit of its expensive operation.
#[derive(Debug, Clone, Serialize)]
pub struct Fraction {
    pub scenario: Scenario,
    pub concurrency: usize,
    pub per_sec: f64,
    pub limit: &'static str,
    pub limit_per_sec: f64,
    pub fraction: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub pass: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The provider processes measured, e.g. "PostgreSQL ×2 behind haproxy".
    pub deployment: String,
    pub command: String,
    pub machine: Machine,
    pub limits: Limits,
    pub runs: Vec<RunResult>,
    pub fractions: Vec<Fraction>,
    /// The generator's own cost per request with each HTTP client.
    pub client_comparison: Vec<ClientCost>,
    pub provider: ProviderFigures,
    pub webapp: Option<WebappFigures>,
    pub targets: Vec<TargetCheck>,
    /// The soak, when it was run (`--soak`).
    pub soak: Option<SoakReport>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn best(runs: &[RunResult], scenario: Scenario) -> Option<&RunResult> {
    runs.iter()
        .filter(|r| r.scenario == scenario)
        .max_by(|a, b| a.per_sec.total_cmp(&b.per_sec))
}

fn errors_of(runs: &[RunResult], scenario: Scenario) -> u64 {
    runs.iter()
        .filter(|r| r.scenario == scenario)
        .map(|r| r.errors)
        .sum()
}

/// How each flow compares with the limit of its expensive operation: a login costs one bcrypt
/// hash, a signed-in flow and a refresh grant one RS256 signature (the ID token).
pub fn fractions(runs: &[RunResult], limits: &Limits) -> Vec<Fraction> {
    runs.iter()
        .filter_map(|run| {
            let (limit, limit_per_sec) = match run.scenario {
                Scenario::Login => ("bcrypt hashes/s", limits.bcrypt.per_sec),
                Scenario::SignedIn | Scenario::Refresh => {
                    ("RS256 signatures/s", limits.rs256.per_sec)
                }
                _ => return None,
            };
            Some(Fraction {
                scenario: run.scenario,
                concurrency: run.concurrency,
                per_sec: run.per_sec,
                limit,
                limit_per_sec,
                fraction: run.per_sec / limit_per_sec,
            })
        })
        .collect()
}

/// Checks the targets against the figures; a figure not measured is neither pass nor fail.
pub fn check_targets(
    runs: &[RunResult],
    limits: &Limits,
    provider: &ProviderFigures,
    webapp: Option<&WebappFigures>,
) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    let signed_in = runs
        .iter()
        .find(|r| r.scenario == Scenario::SignedIn && r.concurrency == 64);
    checks.push(TargetCheck {
        figure: "Signed-in flows/s at concurrency 64".into(),
        target: "≥ 1,500/s, 0 errors".into(),
        measured: signed_in.map_or("not run".into(), |r| {
            format!("{:.0}/s, {} errors", r.per_sec, r.errors)
        }),
        pass: signed_in.map(|r| r.per_sec >= 1500.0 && r.errors == 0),
    });
    let login = best(runs, Scenario::Login);
    let login_errors = errors_of(runs, Scenario::Login);
    checks.push(TargetCheck {
        figure: format!("Login flows/s (bcrypt cost {})", limits.bcrypt_cost),
        target: format!(
            "≥ 80% of the bcrypt limit ({:.1}/s), 0 errors",
            limits.bcrypt.per_sec
        ),
        measured: login.map_or("not run".into(), |r| {
            format!(
                "{:.1}/s = {:.0}% (c={}), {} errors",
                r.per_sec,
                100.0 * r.per_sec / limits.bcrypt.per_sec,
                r.concurrency,
                login_errors
            )
        }),
        pass: login.map(|r| r.per_sec >= 0.8 * limits.bcrypt.per_sec && login_errors == 0),
    });
    for (scenario, figure, target) in [
        (Scenario::Userinfo, "Userinfo requests/s", 10_000.0),
        (Scenario::Discovery, "Discovery requests/s", 20_000.0),
        (Scenario::Jwks, "JWKS requests/s", 20_000.0),
    ] {
        let run = best(runs, scenario);
        let errors = errors_of(runs, scenario);
        checks.push(TargetCheck {
            figure: figure.into(),
            target: format!("≥ {}/s", thousands(target)),
            measured: run.map_or("not run".into(), |r| {
                format!(
                    "{}/s (c={}), {errors} errors",
                    thousands(r.per_sec),
                    r.concurrency
                )
            }),
            pass: run.map(|r| r.per_sec >= target && errors == 0),
        });
    }
    if let Some(run) = best(runs, Scenario::Refresh) {
        checks.push(TargetCheck {
            figure: "Refresh-token grants/s".into(),
            target: "(no target)".into(),
            measured: format!(
                "{}/s (c={}), {} errors",
                thousands(run.per_sec),
                run.concurrency,
                errors_of(runs, Scenario::Refresh)
            ),
            pass: None,
        });
    }
    let memory = |figure: &str, target_mib: f64, kib: Option<u64>| TargetCheck {
        figure: figure.into(),
        target: format!("≤ {target_mib:.0} MiB"),
        measured: kib.map_or("not measured".into(), |k| format!("{:.1} MiB", mib(k))),
        pass: kib.map(|k| mib(k) <= target_mib),
    };
    checks.push(memory("Provider RSS, idle", 20.0, provider.idle_rss_kib));
    checks.push(memory(
        "Provider RSS, peak under the heaviest load (VmHWM)",
        64.0,
        provider.peak_rss_kib,
    ));
    checks.push(memory(
        "Web app RSS, idle",
        20.0,
        webapp.and_then(|w| w.idle_rss_kib),
    ));
    checks.push(TargetCheck {
        figure: "Provider ready on an existing database (start to port open, migrations done)"
            .into(),
        target: "≤ 200 ms".into(),
        measured: match (provider.ready_ms_median, provider.ready_ms_max) {
            (Some(median), Some(max)) => format!(
                "{median:.0} ms median, {max:.0} ms max of {}",
                provider.ready_ms.len()
            ),
            _ => "not measured".into(),
        },
        pass: provider.ready_ms_median.map(|m| m <= 200.0),
    });
    checks
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(pass: Option<bool>) -> &'static str {
    match pass {
        Some(true) => "pass",
        Some(false) => "FAIL",
        None => "–",
    }
}

impl Report {
    /// The table printed at the end of a run.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\nprovider: {}", self.deployment);
        let _ = writeln!(
            out,
            "\n{:<15} {:>4} {:>8} {:>6} {:>10} {:>9} {:>9} {:>6} {:>6} {:>6} {:>9} {:>8} {:>8}",
            "scenario",
            "c",
            "ops",
            "errors",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "prov",
            "gen",
            "other",
            "prov µs/op",
            "gen µs/op",
            "RSS MiB"
        );
        for r in &self.runs {
            let _ = writeln!(
                out,
                "{:<15} {:>4} {:>8} {:>6} {:>10.1} {:>9.2} {:>9.2} {:>6.2} {:>6.2} {:>6.2} {:>9.0} {:>8.0} {:>8.1}",
                r.name,
                r.concurrency,
                r.operations,
                r.errors,
                r.per_sec,
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.provider_cpu,
                r.generator_cpu,
                r.other_cpu,
                r.provider_cpu_us_per_op,
                r.generator_cpu_us_per_op,
                mib(r.provider_rss_max_kib)
            );
        }
        let _ = writeln!(
            out,
            "(prov/gen/other: CPU cores used by the provider, this generator, everything else; µs/op: CPU time per operation)"
        );
        for r in self.runs.iter().filter(|r| !r.error_samples.is_empty()) {
            let _ = writeln!(out, "errors in {} c={}:", r.name, r.concurrency);
            for sample in &r.error_samples {
                let _ = writeln!(out, "  {sample}");
            }
        }
        if let Some(soak) = &self.soak {
            for sample in &soak.error_samples {
                let _ = writeln!(out, "error in the soak: {sample}");
            }
        }
        let _ = writeln!(
            out,
            "\nlimits: bcrypt cost {} {:.1} hashes/s ({:.0} ms CPU each), RS256 {:.0} signatures/s ({:.0} µs CPU each) ({} threads)",
            self.limits.bcrypt_cost,
            self.limits.bcrypt.per_sec,
            self.limits.bcrypt.cpu_us_per_op / 1000.0,
            self.limits.rs256.per_sec,
            self.limits.rs256.cpu_us_per_op,
            self.limits.rs256.threads
        );
        for f in &self.fractions {
            let _ = writeln!(
                out,
                "  {:<15} c={:<3} {:>9.1}/s = {:>5.1}% of {}",
                f.scenario_name(),
                f.concurrency,
                f.per_sec,
                100.0 * f.fraction,
                f.limit
            );
        }
        let _ = writeln!(
            out,
            "\n{:<78} {:<28} {:<40} result",
            "figure", "target", "measured"
        );
        for t in &self.targets {
            let _ = writeln!(
                out,
                "{:<78} {:<28} {:<40} {}",
                t.figure,
                t.target,
                t.measured,
                verdict(t.pass)
            );
        }
        let _ = writeln!(
            out,
            "\nmachine: {} cores, {}; load average {} before, {} after",
            self.machine.cores,
            self.machine.cpu_model,
            fmt_load(self.machine.load_average_before),
            fmt_load(self.machine.load_average_after)
        );
        out
    }

    /// The README section: targets, then every run, then the machine and the command.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| Figure | Target | Measured | Result |");
        let _ = writeln!(out, "|---|---|---|---|");
        for t in &self.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                t.figure,
                t.target,
                t.measured,
                verdict(t.pass)
            );
        }
        let _ = writeln!(
            out,
            "\nProvider: {}. With several processes, the runs' provider CPU and memory are theirs together and the memory figures below are the largest process's; a database server's and haproxy's CPU count as other CPU.",
            self.deployment
        );
        let _ = writeln!(
            out,
            "\nLimits measured in the same run ({} threads): bcrypt cost {}: {:.1} hashes/s ({:.0} ms CPU each); RS256 (2048-bit key, the provider's signer): {} signatures/s ({:.0} µs CPU each).\n",
            self.limits.bcrypt.threads,
            self.limits.bcrypt_cost,
            self.limits.bcrypt.per_sec,
            self.limits.bcrypt.cpu_us_per_op / 1000.0,
            thousands(self.limits.rs256.per_sec),
            self.limits.rs256.cpu_us_per_op
        );
        let _ = writeln!(
            out,
            "| Scenario | Concurrency | Throughput /s | p50 ms | p99 ms | Errors | Share of limit | Provider CPU | Generator CPU | Other CPU | Provider CPU per op |"
        );
        let _ = writeln!(
            out,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.runs {
            let share = self
                .fractions
                .iter()
                .find(|f| f.scenario == r.scenario && f.concurrency == r.concurrency)
                .map_or(String::new(), |f| {
                    format!("{:.0}% of {}", 100.0 * f.fraction, f.limit)
                });
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {} | {} | {:.2} | {:.2} | {:.2} | {:.0} µs |",
                r.name,
                r.concurrency,
                if r.per_sec >= 100.0 {
                    thousands(r.per_sec)
                } else {
                    format!("{:.1}", r.per_sec)
                },
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.errors,
                share,
                r.provider_cpu,
                r.generator_cpu,
                r.other_cpu,
                r.provider_cpu_us_per_op
            );
        }
        let _ = writeln!(
            out,
            "\nCPU columns: cores used on average during the run by the provider, by the load generator, and by everything else on the machine; CPU per op is the provider's CPU time per operation (from /proc, 10 ms ticks)."
        );
        if !self.client_comparison.is_empty() {
            let costs: Vec<String> = self
                .client_comparison
                .iter()
                .map(|c| {
                    format!(
                        "{} {:.1} µs ({}/s)",
                        c.client,
                        c.generator_cpu_us_per_request,
                        thousands(c.per_sec)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "\nThe generator's own CPU per discovery request at concurrency 64: {}.",
                costs.join(", ")
            );
        }
        if let Some(soak) = &self.soak {
            out.push_str(&soak.markdown());
        }
        let _ = writeln!(
            out,
            "\nMachine: `nproc` = {}, {}; load average {} before the run, {} after (the load generator runs on the same cores). Command: `{}`.",
            self.machine.cores,
            self.machine.cpu_model,
            fmt_load(self.machine.load_average_before),
            fmt_load(self.machine.load_average_after),
            self.command
        );
        out
    }
}

impl Fraction {
    fn scenario_name(&self) -> &'static str {
        self.scenario.name()
    }
}

fn fmt_load(load: Option<f64>) -> String {
    load.map_or("?".into(), |l| format!("{l:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1500.2), "1,500");
        assert_eq!(thousands(1234567.0), "1,234,567");
    }
}
