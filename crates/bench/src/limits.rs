//! The machine's limits for the provider's two expensive operations, measured in the same run:
//! RS256 signatures (an ID token per token response) and bcrypt hashes (one per login).

use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::Context;
use oidc_core::jose::{Algorithm, SigningKey};
use serde::Serialize;

/// Operations per second with `threads` threads.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Rate {
    pub per_sec: f64,
    pub threads: usize,
    pub operations: u64,
    pub seconds: f64,
    /// CPU time per operation (µs), from this process's CPU time while measuring.
    pub cpu_us_per_op: f64,
}

/// Runs `op` on `threads` threads until each has spent at least `min_time`, then reports the
/// combined rate (operations over the slowest thread's time).
fn measure<F>(threads: usize, min_time: Duration, make_op: impl Fn() -> F) -> Rate
where
    F: FnMut() + Send + 'static,
{
    let cpu_before = crate::procfs::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mut op = make_op();
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut count = 0u64;
                while count == 0 || started.elapsed() < min_time {
                    op();
                    count += 1;
                }
                (count, started.elapsed())
            })
        })
        .collect();
    let mut operations = 0;
    let mut seconds: f64 = 0.0;
    for handle in handles {
        let (count, elapsed) = handle.join().expect("limit thread panicked");
        operations += count;
        seconds = seconds.max(elapsed.as_secs_f64());
    }
    let cpu = crate::procfs::cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu_before;
    Rate {
        per_sec: operations as f64 / seconds,
        threads,
        operations,
        seconds,
        cpu_us_per_op: cpu * 1e6 / operations as f64,
    }
}

/// bcrypt hashes per second at `cost`.
pub fn bcrypt_rate(cost: u32, threads: usize, min_time: Duration) -> anyhow::Result<Rate> {
    bcrypt::hash("limit-check", cost).context("bcrypt cost")?;
    Ok(measure(threads, min_time, || {
        move || {
            let _ = bcrypt::hash("correct horse battery staple", cost);
        }
    }))
}

/// RS256 signatures per second of an ID token with the provider's own signer (oidc-core's
/// `SigningKey`: a 2048-bit key parsed once, the header encoded once).
pub fn rs256_rate(threads: usize, min_time: Duration) -> anyhow::Result<Rate> {
    let key = Arc::new(SigningKey::generate(Algorithm::RS256)?);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:8000",
        "sub": "c2xvd2x5LXJhbmRvbS1zdWJqZWN0",
        "aud": "bench-client",
        "exp": now + 3600,
        "iat": now,
        "auth_time": now,
        "nonce": "bm9uY2Utbm9uY2Utbm9uY2U",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "azp": "bench-client",
        "name": "Alice Example",
        "given_name": "Alice",
        "family_name": "Example",
        "preferred_username": "alice",
        "email": "alice@example.com",
        "email_verified": true,
    });
    key.sign(&claims)?;
    Ok(measure(threads, min_time, || {
        let (key, claims) = (Arc::clone(&key), claims.clone());
        move || {
            let _ = key.sign(&claims);
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_both_limits() {
        let bcrypt = bcrypt_rate(4, 2, Duration::from_millis(20)).expect("bcrypt");
        assert!(bcrypt.per_sec > 0.0 && bcrypt.operations >= 2);
        let rsa = rs256_rate(1, Duration::from_millis(20)).expect("rs256");
        assert!(rsa.per_sec > 0.0 && rsa.operations >= 1);
    }
}
