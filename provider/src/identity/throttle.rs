//! Login throttling: failed attempts are counted per account and per client address within a
//! window; past the limit further attempts for that account or from that address are refused
//! with 429 until the window ends. Other accounts and addresses are unaffected, and the
//! address limit is much higher than the account limit, so users behind one NAT are not
//! locked out by one neighbour guessing passwords.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::LoginThrottleSettings;

/// Entries kept before expired ones are swept, bounding memory under a spray of usernames.
const SWEEP_AT: usize = 10_000;
/// Hard bound on tracked keys per kind: past it, new keys are not tracked until old ones
/// expire (memory stays bounded under a distributed spray; known keys keep counting).
const MAX_KEYS: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug, Default)]
struct Counters {
    accounts: HashMap<String, Window>,
    addresses: HashMap<String, Window>,
}

/// Shared failure counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    settings: LoginThrottleSettings,
    counters: Arc<Mutex<Counters>>,
}

/// A login refused before the password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until attempts are allowed again.
    pub retry_after_secs: u64,
}

impl LoginThrottle {
    /// Counters with the given limits.
    pub fn new(settings: LoginThrottleSettings) -> Self {
        Self {
            settings,
            counters: Arc::new(Mutex::new(Counters::default())),
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.settings.window_secs)
    }

    /// Whether a login for `username` from `address` may be attempted now.
    pub fn check(&self, username: &str, address: &str) -> Result<(), Throttled> {
        let now = Instant::now();
        let window = self.window();
        let counters = self.lock();
        let blocked = |map: &HashMap<String, Window>, key: &str, limit: u32| {
            map.get(key).and_then(|w| {
                let elapsed = now.duration_since(w.started);
                (elapsed < window && w.failures >= limit)
                    .then(|| (window - elapsed).as_secs().max(1))
            })
        };
        let account = blocked(
            &counters.accounts,
            &account_key(username),
            self.settings.max_failures_per_account,
        );
        let address = blocked(
            &counters.addresses,
            address,
            self.settings.max_failures_per_address,
        );
        match account.into_iter().chain(address).max() {
            Some(retry_after_secs) => Err(Throttled { retry_after_secs }),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt against the account and the address.
    pub fn record_failure(&self, username: &str, address: &str) {
        let now = Instant::now();
        let window = self.window();
        let mut guard = self.lock();
        let counters = &mut *guard;
        if counters.accounts.len() + counters.addresses.len() > SWEEP_AT {
            counters
                .accounts
                .retain(|_, w| now.duration_since(w.started) < window);
            counters
                .addresses
                .retain(|_, w| now.duration_since(w.started) < window);
        }
        for (map, key) in [
            (&mut counters.accounts, account_key(username)),
            (&mut counters.addresses, address.to_owned()),
        ] {
            if map.len() >= MAX_KEYS && !map.contains_key(&key) {
                continue;
            }
            let entry = map.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(entry.started) >= window {
                *entry = Window {
                    started: now,
                    failures: 0,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
        }
    }

    /// Forgets the account's failures after a successful login (the address keeps its count:
    /// one good password must not reset a spray across many accounts).
    pub fn record_success(&self, username: &str) {
        self.lock().accounts.remove(&account_key(username));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // The counters stay consistent even if a holder panicked: every update is one step.
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn account_key(username: &str) -> String {
    username.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_limit_spares_other_accounts() {
        let throttle = LoginThrottle::new(LoginThrottleSettings {
            max_failures_per_account: 3,
            max_failures_per_address: 10,
            window_secs: 60,
        });
        for _ in 0..3 {
            assert!(throttle.check("alice", "1.1.1.1").is_ok());
            throttle.record_failure("alice", "1.1.1.1");
        }
        assert!(throttle.check("Alice", "2.2.2.2").is_err());
        assert!(throttle.check("bob", "1.1.1.1").is_ok());
        throttle.record_success("alice");
        assert!(throttle.check("alice", "1.1.1.1").is_ok());
    }

    #[test]
    fn address_limit() {
        let throttle = LoginThrottle::new(LoginThrottleSettings {
            max_failures_per_account: 100,
            max_failures_per_address: 4,
            window_secs: 60,
        });
        for i in 0..4 {
            throttle.record_failure(&format!("user{i}"), "1.1.1.1");
        }
        let err = throttle.check("someone", "1.1.1.1").expect_err("throttled");
        assert!(err.retry_after_secs >= 1);
        assert!(throttle.check("someone", "3.3.3.3").is_ok());
    }
}
