//! Login throttling: attempts are counted per account and per client address within a window;
//! past the limit further attempts for that account or from that address are refused with 429
//! until the window ends. Other accounts and addresses are unaffected, and the address limit is
//! much higher than the account limit, so users behind one NAT are not locked out by one
//! neighbour guessing passwords.
//!
//! An attempt is counted when it is admitted, before its password is hashed, and a success gives
//! it back: however many requests arrive at once, at most the limit reach the password check.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::LoginThrottleSettings;

/// Bound on tracked keys per kind. When it is reached the oldest window is forgotten (it is the
/// closest to its end anyway), so a spray of new keys can neither exhaust memory nor stop
/// accounts or addresses under attack from being counted.
const MAX_KEYS: usize = 200_000;

/// Longest account key kept: usernames are at most 64 bytes, longer names cannot exist.
const MAX_ACCOUNT_KEY_CHARS: usize = 128;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    /// Position in [`Table::order`]; identifies this window of the key.
    seq: u64,
    attempts: u32,
}

/// Counters of one kind of key, with their windows in the order they started.
#[derive(Debug, Default)]
struct Table {
    windows: HashMap<String, Window>,
    /// Sequence number -> key, oldest window first (windows start in sequence order).
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

impl Table {
    /// Drops windows that have ended; they are all at the front of `order`.
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(entry) = self.order.first_entry() {
            let ended = self
                .windows
                .get(entry.get())
                .is_none_or(|w| now.duration_since(w.started) >= window);
            if !ended {
                break;
            }
            let key = entry.remove();
            self.windows.remove(&key);
        }
    }

    /// Seconds until `key` may try again, if it has used up `limit` in its current window.
    fn blocked(&self, key: &str, limit: u32, now: Instant, window: Duration) -> Option<u64> {
        let w = self.windows.get(key)?;
        let elapsed = now.duration_since(w.started);
        (elapsed < window && w.attempts >= limit).then(|| (window - elapsed).as_secs().max(1))
    }

    /// Counts one attempt for `key`; returns the window it was counted in.
    fn count(&mut self, key: String, now: Instant, window: Duration, max_keys: usize) -> u64 {
        self.expire(now, window);
        if let Some(w) = self.windows.get_mut(&key) {
            w.attempts = w.attempts.saturating_add(1);
            return w.seq;
        }
        while self.windows.len() >= max_keys.max(1) {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.windows.remove(&oldest);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, key.clone());
        self.windows.insert(
            key,
            Window {
                started: now,
                seq,
                attempts: 1,
            },
        );
        seq
    }

    /// Takes back one attempt counted in window `seq` of `key`, if that window is still current.
    fn give_back(&mut self, key: &str, seq: u64) {
        if let Some(w) = self.windows.get_mut(key).filter(|w| w.seq == seq) {
            w.attempts = w.attempts.saturating_sub(1);
        }
    }

    /// Forgets `key`.
    fn forget(&mut self, key: &str) {
        if let Some(w) = self.windows.remove(key) {
            self.order.remove(&w.seq);
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    accounts: Table,
    addresses: Table,
}

/// Shared attempt counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    settings: LoginThrottleSettings,
    max_keys: usize,
    counters: Arc<Mutex<Counters>>,
}

/// A login refused before the password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until attempts are allowed again.
    pub retry_after_secs: u64,
}

/// An admitted login attempt, counted against its account and address. Dropping it leaves it
/// counted as a failure (also when the check could not finish: failing closed);
/// [`Attempt::succeeded`] gives it back.
#[must_use = "an attempt is a failure unless `succeeded` is called"]
#[derive(Debug)]
pub struct Attempt {
    throttle: LoginThrottle,
    account: String,
    address: String,
    address_seq: u64,
}

impl Attempt {
    /// The password was right: the account's count is reset and the address gets its slot
    /// back (its other failures stay: one good password must not reset a spray across many
    /// accounts).
    pub fn succeeded(self) {
        let mut counters = self.throttle.lock();
        counters.accounts.forget(&self.account);
        counters
            .addresses
            .give_back(&self.address, self.address_seq);
    }
}

impl LoginThrottle {
    /// Counters with the given limits.
    pub fn new(settings: LoginThrottleSettings) -> Self {
        Self {
            settings,
            max_keys: MAX_KEYS,
            counters: Arc::new(Mutex::new(Counters::default())),
        }
    }

    /// Counters tracking at most `max_keys` keys of each kind.
    #[cfg(test)]
    fn with_max_keys(settings: LoginThrottleSettings, max_keys: usize) -> Self {
        Self {
            max_keys,
            ..Self::new(settings)
        }
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.settings.window_secs)
    }

    /// Admits and counts a login for `username` from `address`, or refuses it when the account
    /// or the address has used up its attempts. Checking and counting are one step under one
    /// lock, so concurrent requests cannot all pass the check before any is counted.
    pub fn begin(&self, username: &str, address: &str) -> Result<Attempt, Throttled> {
        let now = Instant::now();
        let window = self.window();
        let account = account_key(username);
        let address = address_key(address);
        let mut guard = self.lock();
        let counters = &mut *guard;
        let blocked = counters
            .accounts
            .blocked(
                &account,
                self.settings.max_failures_per_account,
                now,
                window,
            )
            .into_iter()
            .chain(counters.addresses.blocked(
                &address,
                self.settings.max_failures_per_address,
                now,
                window,
            ))
            .max();
        if let Some(retry_after_secs) = blocked {
            return Err(Throttled { retry_after_secs });
        }
        counters
            .accounts
            .count(account.clone(), now, window, self.max_keys);
        let address_seq = counters
            .addresses
            .count(address.clone(), now, window, self.max_keys);
        drop(guard);
        Ok(Attempt {
            throttle: self.clone(),
            account,
            address,
            address_seq,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // The counters stay consistent even if a holder panicked: every update is one step.
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The account a login is for, as sign-in finds it: the username's comparison key (case and
/// Unicode form folded), so `ALICE` and fullwidth `ａｌｉｃｅ` count against `alice`.
fn account_key(username: &str) -> String {
    crate::storage::users::username_key(username)
        .chars()
        .take(MAX_ACCOUNT_KEY_CHARS)
        .collect()
}

/// The key of a client address: an IPv6 address stands for its /64 (one host usually has a
/// whole /64 to pick from), an IPv4-mapped IPv6 address for the IPv4 address. Text that is no
/// address (an odd `X-Forwarded-For` value) is kept as it is, shortened.
fn address_key(address: &str) -> String {
    let text = address.trim();
    let ip = text
        .parse::<IpAddr>()
        .or_else(|_| text.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok();
    match ip.map(|ip| ip.to_canonical()) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => text.chars().take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_limit_spares_other_accounts() {
        let throttle = LoginThrottle::new(settings(3, 10));
        for _ in 0..3 {
            let _failed = throttle.begin("alice", "1.1.1.1").expect("admitted");
        }
        assert!(throttle.begin("Alice", "2.2.2.2").is_err());
        let _failed = throttle.begin("bob", "1.1.1.1").expect("another account");
        // A success resets the account.
        let throttle = LoginThrottle::new(settings(3, 10));
        for _ in 0..2 {
            let _failed = throttle.begin("alice", "1.1.1.1").expect("admitted");
        }
        throttle
            .begin("alice", "1.1.1.1")
            .expect("admitted")
            .succeeded();
        for _ in 0..3 {
            let _failed = throttle.begin("alice", "1.1.1.1").expect("admitted again");
        }
        assert!(throttle.begin("alice", "1.1.1.1").is_err());
    }

    #[test]
    fn unicode_forms_of_one_username_share_one_account_window() {
        // Sign-in finds `alice` through every case and NFKC form, so they are one account here.
        let throttle = LoginThrottle::new(settings(3, 100));
        for typed in ["alice", "ALICE", "ａｌｉｃｅ"] {
            let _failed = throttle.begin(typed, "1.1.1.1").expect("admitted");
        }
        for typed in ["Alice", "ａlice", "ＡＬＩＣＥ", " alice "] {
            assert!(throttle.begin(typed, "2.2.2.2").is_err(), "{typed}");
        }
    }

    #[test]
    fn address_limit() {
        let throttle = LoginThrottle::new(settings(100, 4));
        for i in 0..4 {
            let _failed = throttle
                .begin(&format!("user{i}"), "1.1.1.1")
                .expect("admitted");
        }
        let err = throttle.begin("someone", "1.1.1.1").expect_err("throttled");
        assert!(err.retry_after_secs >= 1);
        let _failed = throttle
            .begin("someone", "3.3.3.3")
            .expect("another address");
    }

    fn settings(account: u32, address: u32) -> LoginThrottleSettings {
        LoginThrottleSettings {
            max_failures_per_account: account,
            max_failures_per_address: address,
            window_secs: 60,
        }
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let throttle = LoginThrottle::new(settings(100, 3));
        for (i, address) in [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
            "2001:DB8:1:2::abcd",
        ]
        .into_iter()
        .enumerate()
        {
            let _failed = throttle
                .begin(&format!("user{i}"), address)
                .expect("admitted");
        }
        assert!(throttle.begin("someone", "2001:db8:1:2:1:2:3:4").is_err());
        assert!(throttle.begin("someone", "[2001:db8:1:2::5]:443").is_err());
        let _failed = throttle
            .begin("someone", "2001:db8:1:3::1")
            .expect("another /64");
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_ipv4() {
        let throttle = LoginThrottle::new(settings(100, 2));
        let _failed = throttle.begin("a", "::ffff:192.0.2.7").expect("admitted");
        let _failed = throttle.begin("b", "192.0.2.7").expect("admitted");
        assert!(throttle.begin("c", "192.0.2.7").is_err());
        assert!(throttle.begin("c", "::ffff:c000:207").is_err());
        let _failed = throttle.begin("c", "192.0.2.8").expect("another address");
    }

    #[test]
    fn a_full_table_evicts_the_oldest_and_keeps_counting_new_keys() {
        let throttle = LoginThrottle::with_max_keys(settings(3, 1000), 100);
        // Fill the table with other accounts from many addresses.
        for i in 0..100 {
            let address = format!("10.0.{}.{}", i / 256, i % 256);
            let _failed = throttle
                .begin(&format!("filler{i}"), &address)
                .expect("admitted");
        }
        // A new account under attack is still counted and throttled.
        for _ in 0..3 {
            let _failed = throttle.begin("alice", "192.0.2.1").expect("admitted");
        }
        assert!(throttle.begin("alice", "198.51.100.1").is_err());
        // Flooding with new keys evicts the oldest entries, not the ones just counted.
        for i in 0..50 {
            let _failed = throttle
                .begin(&format!("flood{i}"), "203.0.113.9")
                .expect("admitted");
        }
        assert!(throttle.begin("alice", "198.51.100.1").is_err());
        let counters = throttle.lock();
        assert_eq!(counters.accounts.windows.len(), 100);
        assert_eq!(counters.accounts.order.len(), 100);
        assert!(!counters.accounts.windows.contains_key("filler0"));
    }

    #[test]
    fn concurrent_attempts_are_counted_before_their_check() {
        let throttle = LoginThrottle::new(settings(5, 1000));
        let admitted: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..40)
                .map(|_| scope.spawn(|| throttle.begin("alice", "192.0.2.1").ok()))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().expect("thread"))
                .collect()
        });
        assert_eq!(admitted.len(), 5);
    }

    #[test]
    fn a_success_gives_the_address_slot_back_and_windows_end() {
        let throttle = LoginThrottle::new(LoginThrottleSettings {
            max_failures_per_account: 100,
            max_failures_per_address: 1,
            window_secs: 1,
        });
        for _ in 0..3 {
            throttle
                .begin("alice", "192.0.2.1")
                .expect("admitted")
                .succeeded();
        }
        let _failed = throttle.begin("bob", "192.0.2.1").expect("admitted");
        assert!(throttle.begin("carol", "192.0.2.1").is_err());
        std::thread::sleep(Duration::from_millis(1100));
        let _failed = throttle.begin("carol", "192.0.2.1").expect("a new window");
        let counters = throttle.lock();
        assert_eq!(
            counters.addresses.windows.len(),
            1,
            "ended windows are dropped"
        );
    }

    #[test]
    fn address_keys() {
        assert_eq!(address_key("192.0.2.1"), "192.0.2.1");
        assert_eq!(address_key(" ::ffff:192.0.2.1 "), "192.0.2.1");
        assert_eq!(address_key("192.0.2.1:8080"), "192.0.2.1");
        assert_eq!(address_key("2001:db8::1"), "2001:db8:0:0::/64");
        assert_eq!(address_key("[2001:db8:0:0:1::1]:80"), "2001:db8:0:0::/64");
        assert_eq!(address_key("unknown"), "unknown");
        assert_eq!(address_key(&"x".repeat(1000)).len(), 64);
        assert_eq!(account_key(&"A".repeat(1000)).len(), MAX_ACCOUNT_KEY_CHARS);
    }
}
