//! Login throttling: attempts are counted per account and per client address within a window;
//! past the limit further attempts for that account or from that address are refused with 429
//! until the window ends. Other accounts and addresses are unaffected, and the address limit is
//! much higher than the account limit, so users behind one NAT are not locked out by one
//! neighbour guessing passwords.
//!
//! An attempt is counted when it is admitted, before its password is hashed, and a success gives
//! it back: however many requests arrive at once, at most the limit reach the password check.
//! The counters live in the database ([`crate::storage::login_throttle`]), so every provider
//! process on it counts against the same limits and a restart forgets nothing.

use std::net::IpAddr;

use oidc_core::unix_now;

use crate::config::LoginThrottleSettings;
use crate::storage::login_throttle::{self, Admission, Limits};
use crate::storage::{Conn, Db, StorageError};

/// Longest account key kept: usernames are at most 64 bytes, longer names cannot exist.
const MAX_ACCOUNT_KEY_CHARS: usize = 128;

/// Counts attempts in the database; cheap to clone.
///
/// No key is ever evicted to bound the counters: the database is the bound. Only admitted
/// attempts write rows (a refused one writes nothing), at most the address limit per address and
/// window, and the sweeper deletes every row whose window has ended.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    settings: LoginThrottleSettings,
    db: Db,
}

/// A login refused before the password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until attempts are allowed again.
    pub retry_after_secs: u64,
}

/// An admitted login attempt, already counted against its account and address: dropping it
/// leaves it counted as a failure (also when the check could not finish: failing closed), so a
/// failure needs no write. [`Attempt::succeeded`] gives it back.
#[must_use = "an attempt is a failure unless `succeeded` is called"]
#[derive(Debug)]
pub struct Attempt {
    account: String,
    address: String,
    /// The end of the address window the attempt was counted in.
    address_window: i64,
}

impl Attempt {
    /// The password was right: the account's count is reset and the address gets its slot
    /// back (its other failures stay: one good password must not reset a spray across many
    /// accounts). Runs in the caller's write, so a successful login adds no write of its own.
    pub fn succeeded(self, conn: &mut Conn) -> Result<(), StorageError> {
        login_throttle::succeeded(conn, &self.account, &self.address, self.address_window)?;
        Ok(())
    }
}

impl LoginThrottle {
    /// Counters with the given limits, kept in `db`.
    pub fn new(settings: LoginThrottleSettings, db: Db) -> Self {
        Self { settings, db }
    }

    /// Admits and counts a login for `username` from `address`, or refuses it when the account
    /// or the address has used up its attempts. Checking and counting are one write
    /// transaction, so concurrent requests, in this process or another, cannot all pass the
    /// check before any is counted.
    pub async fn begin(
        &self,
        username: &str,
        address: &str,
    ) -> Result<Result<Attempt, Throttled>, StorageError> {
        self.begin_at(username, address, unix_now()).await
    }

    async fn begin_at(
        &self,
        username: &str,
        address: &str,
        now: i64,
    ) -> Result<Result<Attempt, Throttled>, StorageError> {
        // A limit of 0 is taken as 1: one that refused every login would be a lockout of all
        // users, not a throttle.
        let limits = Limits {
            per_account: self.settings.max_failures_per_account.max(1),
            per_address: self.settings.max_failures_per_address.max(1),
            window_secs: i64::try_from(self.settings.window_secs).unwrap_or(i64::MAX),
        };
        let account = account_key(username);
        let address = address_key(address);
        let (account_row, address_row) = (account.clone(), address.clone());
        let admission = self
            .db
            .write(move |conn| {
                login_throttle::admit(conn, &account_row, &address_row, limits, now)
                    .map_err(StorageError::from)
            })
            .await?;
        Ok(match admission {
            Admission::Admitted { address_window } => Ok(Attempt {
                account,
                address,
                address_window,
            }),
            Admission::Refused { retry_after_secs } => Err(Throttled {
                retry_after_secs: u64::try_from(retry_after_secs).unwrap_or(1).max(1),
            }),
        })
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
    use diesel::prelude::*;

    use super::*;
    use crate::storage::schema::login_throttle as table;

    /// A throttle on a fresh database in a temporary folder.
    fn fresh(account: u32, address: u32) -> (tempfile::TempDir, LoginThrottle) {
        let dir = tempfile::tempdir().unwrap();
        let throttle = on(dir.path(), settings(account, address));
        (dir, throttle)
    }

    /// A throttle on the database in `dir`, with a connection pool and writer of its own, as
    /// another process on the same file has.
    fn on(dir: &std::path::Path, settings: LoginThrottleSettings) -> LoginThrottle {
        let db = Db::open(&dir.join("db.sqlite3").to_string_lossy(), 2).unwrap();
        db.migrate().unwrap();
        LoginThrottle::new(settings, db)
    }

    fn settings(account: u32, address: u32) -> LoginThrottleSettings {
        LoginThrottleSettings {
            max_failures_per_account: account,
            max_failures_per_address: address,
            window_secs: 60,
        }
    }

    impl LoginThrottle {
        async fn admitted(&self, username: &str, address: &str) -> Attempt {
            self.begin(username, address)
                .await
                .unwrap()
                .unwrap_or_else(|t| panic!("{username} from {address} refused: {t:?}"))
        }

        async fn refused(&self, username: &str, address: &str) -> bool {
            self.begin(username, address).await.unwrap().is_err()
        }

        async fn succeed(&self, attempt: Attempt) {
            self.db
                .write(move |conn| attempt.succeeded(conn))
                .await
                .unwrap();
        }

        fn rows(&self) -> i64 {
            table::table
                .count()
                .get_result(&mut *self.db.conn().unwrap())
                .unwrap()
        }
    }

    #[tokio::test]
    async fn account_limit_spares_other_accounts() {
        let (_dir, throttle) = fresh(3, 10);
        for _ in 0..3 {
            let _failed = throttle.admitted("alice", "1.1.1.1").await;
        }
        assert!(throttle.refused("Alice", "2.2.2.2").await);
        let _failed = throttle.admitted("bob", "1.1.1.1").await;
        // A success resets the account.
        let (_dir, throttle) = fresh(3, 10);
        for _ in 0..2 {
            let _failed = throttle.admitted("alice", "1.1.1.1").await;
        }
        let attempt = throttle.admitted("alice", "1.1.1.1").await;
        throttle.succeed(attempt).await;
        for _ in 0..3 {
            let _failed = throttle.admitted("alice", "1.1.1.1").await;
        }
        assert!(throttle.refused("alice", "1.1.1.1").await);
    }

    #[tokio::test]
    async fn unicode_forms_of_one_username_share_one_account_window() {
        // Sign-in finds `alice` through every case and NFKC form, so they are one account here.
        let (_dir, throttle) = fresh(3, 100);
        for typed in ["alice", "ALICE", "ａｌｉｃｅ"] {
            let _failed = throttle.admitted(typed, "1.1.1.1").await;
        }
        for typed in ["Alice", "ａlice", "ＡＬＩＣＥ", " alice "] {
            assert!(throttle.refused(typed, "2.2.2.2").await, "{typed}");
        }
    }

    #[tokio::test]
    async fn address_limit() {
        let (_dir, throttle) = fresh(100, 4);
        for i in 0..4 {
            let _failed = throttle.admitted(&format!("user{i}"), "1.1.1.1").await;
        }
        let err = throttle
            .begin("someone", "1.1.1.1")
            .await
            .unwrap()
            .expect_err("throttled");
        assert!((1..=60).contains(&err.retry_after_secs), "{err:?}");
        let _failed = throttle.admitted("someone", "3.3.3.3").await;
    }

    #[tokio::test]
    async fn ipv6_addresses_count_per_64() {
        let (_dir, throttle) = fresh(100, 3);
        for (i, address) in [
            "2001:db8:1:2::1",
            "2001:db8:1:2:ffff::9",
            "2001:DB8:1:2::abcd",
        ]
        .into_iter()
        .enumerate()
        {
            let _failed = throttle.admitted(&format!("user{i}"), address).await;
        }
        assert!(throttle.refused("someone", "2001:db8:1:2:1:2:3:4").await);
        assert!(throttle.refused("someone", "[2001:db8:1:2::5]:443").await);
        let _failed = throttle.admitted("someone", "2001:db8:1:3::1").await;
    }

    #[tokio::test]
    async fn ipv4_mapped_ipv6_counts_as_ipv4() {
        let (_dir, throttle) = fresh(100, 2);
        let _failed = throttle.admitted("a", "::ffff:192.0.2.7").await;
        let _failed = throttle.admitted("b", "192.0.2.7").await;
        assert!(throttle.refused("c", "192.0.2.7").await);
        assert!(throttle.refused("c", "::ffff:c000:207").await);
        let _failed = throttle.admitted("c", "192.0.2.8").await;
    }

    #[tokio::test]
    async fn a_flood_of_new_keys_forgets_no_counted_key_and_refusals_add_no_rows() {
        let (_dir, throttle) = fresh(3, 1000);
        for _ in 0..3 {
            let _failed = throttle.admitted("alice", "192.0.2.1").await;
        }
        // Far more new keys than the in-memory table once held before evicting.
        let flood = (0..300).map(|i| {
            let throttle = throttle.clone();
            tokio::spawn(async move {
                let address = format!("10.0.{}.{}", i / 256, i % 256);
                let _failed = throttle.admitted(&format!("flood{i}"), &address).await;
            })
        });
        for task in flood.collect::<Vec<_>>() {
            task.await.unwrap();
        }
        assert!(throttle.refused("alice", "198.51.100.1").await);
        let rows = throttle.rows();
        assert_eq!(rows, 2 + 600);
        // Refused attempts, even under new keys, write nothing.
        for i in 0..20 {
            assert!(throttle.refused("alice", &format!("203.0.113.{i}")).await);
        }
        assert_eq!(throttle.rows(), rows);
    }

    #[tokio::test]
    async fn concurrent_attempts_are_counted_before_their_check() {
        let (_dir, throttle) = fresh(5, 1000);
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let throttle = throttle.clone();
                tokio::spawn(async move { throttle.begin("alice", "192.0.2.1").await })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap().unwrap().is_ok());
        }
        assert_eq!(admitted, 5);
    }

    #[tokio::test]
    async fn processes_on_one_database_share_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let first = on(dir.path(), settings(5, 8));
        let second = on(dir.path(), settings(5, 8));
        // Concurrent attempts for one account through both, each with its own writer.
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let throttle = if i % 2 == 0 { &first } else { &second }.clone();
                tokio::spawn(async move { throttle.begin("alice", &format!("10.0.0.{i}")).await })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += usize::from(task.await.unwrap().unwrap().is_ok());
        }
        assert_eq!(admitted, 5, "one account limit across both");
        // And one address limit: 8 in all, alternating.
        for i in 0..8 {
            let throttle = if i % 2 == 0 { &first } else { &second };
            let _failed = throttle.admitted(&format!("user{i}"), "192.0.2.9").await;
        }
        assert!(first.refused("user8", "192.0.2.9").await);
        assert!(second.refused("user9", "192.0.2.9").await);
        // A success through one resets the account for the other.
        let (one, other) = (
            on(dir.path(), settings(2, 100)),
            on(dir.path(), settings(2, 100)),
        );
        let _failed = one.admitted("bob", "198.51.100.1").await;
        let attempt = other.admitted("bob", "198.51.100.1").await;
        other.succeed(attempt).await;
        for _ in 0..2 {
            let _failed = one.admitted("bob", "198.51.100.1").await;
        }
        assert!(other.refused("bob", "198.51.100.1").await);
    }

    #[tokio::test]
    async fn a_success_gives_the_address_slot_back_and_windows_end() {
        let (_dir, throttle) = fresh(100, 1);
        let t = 1_000_000;
        for _ in 0..3 {
            let attempt = throttle
                .begin_at("alice", "192.0.2.1", t)
                .await
                .unwrap()
                .expect("admitted");
            throttle.succeed(attempt).await;
        }
        let _failed = throttle
            .begin_at("bob", "192.0.2.1", t)
            .await
            .unwrap()
            .expect("admitted");
        let refused = throttle
            .begin_at("carol", "192.0.2.1", t + 59)
            .await
            .unwrap();
        assert_eq!(refused.expect_err("throttled").retry_after_secs, 1);
        let _failed = throttle
            .begin_at("carol", "192.0.2.1", t + 60)
            .await
            .unwrap()
            .expect("a new window");
    }

    #[tokio::test]
    async fn a_limit_of_zero_admits_one_attempt_per_window() {
        let (_dir, throttle) = fresh(0, 0);
        let attempt = throttle.admitted("alice", "192.0.2.1").await;
        throttle.succeed(attempt).await;
        let _failed = throttle.admitted("alice", "192.0.2.1").await;
        assert!(throttle.refused("alice", "192.0.2.1").await);
        assert!(throttle.refused("bob", "192.0.2.1").await);
        let _failed = throttle.admitted("bob", "198.51.100.1").await;
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
