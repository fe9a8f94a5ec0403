//! Latency summaries and per-endpoint step timings.

use std::time::Duration;

use serde::Serialize;

/// Time spent per endpoint (method and path without query) inside multi-request flows.
#[derive(Debug, Default, Clone)]
pub struct Steps {
    entries: Vec<(String, u64, u64)>,
}

impl Steps {
    pub fn record(&mut self, method: &str, path: &str, elapsed: Duration) {
        let path = path.split('?').next().unwrap_or(path);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        match self
            .entries
            .iter_mut()
            .find(|(k, _, _)| k.split_once(' ') == Some((method, path)))
        {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += micros;
            }
            None => self.entries.push((format!("{method} {path}"), 1, micros)),
        }
    }

    pub fn merge(&mut self, other: &Steps) {
        for (key, count, micros) in &other.entries {
            match self.entries.iter_mut().find(|(k, _, _)| k == key) {
                Some(entry) => {
                    entry.1 += count;
                    entry.2 += micros;
                }
                None => self.entries.push((key.clone(), *count, *micros)),
            }
        }
    }

    /// Mean time per request of each endpoint, in order of first use.
    pub fn summary(&self) -> Vec<StepSummary> {
        self.entries
            .iter()
            .map(|(key, count, micros)| StepSummary {
                request: key.clone(),
                count: *count,
                mean_ms: *micros as f64 / 1000.0 / (*count).max(1) as f64,
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepSummary {
    pub request: String,
    pub count: u64,
    pub mean_ms: f64,
}

/// p50, p99 and max of a set of latencies in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn from_micros(mut samples: Vec<u32>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            f64::from(samples[index]) / 1000.0
        };
        Self {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let latency = Latency::from_micros(samples);
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
        assert_eq!(Latency::from_micros(vec![]).p99_ms, 0.0);
    }

    #[test]
    fn steps_group_by_method_and_path() {
        let mut steps = Steps::default();
        steps.record("GET", "/oauth/authorize?x=1", Duration::from_millis(2));
        steps.record("GET", "/oauth/authorize?x=2", Duration::from_millis(4));
        steps.record("POST", "/oauth/authorize", Duration::from_millis(1));
        let summary = steps.summary();
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].request, "GET /oauth/authorize");
        assert_eq!(summary[0].count, 2);
        assert!((summary[0].mean_ms - 3.0).abs() < 1e-9);
    }
}
