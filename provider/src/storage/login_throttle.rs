//! The login throttle's counters (`login_throttle`): one row per account key and per client
//! address key, holding the attempts counted in the key's current window and when that window
//! ends. Every provider process on the database counts in the same rows, so replicas share one
//! limit and a restart forgets nothing. Windows are whole unix seconds, like every expiry here:
//! one lasts between `window_secs - 1` and `window_secs` seconds.
//!
//! Counting is a row update checked against the limit inside the caller's write transaction: on
//! SQLite the write lock (`BEGIN IMMEDIATE`, one writer across processes) serializes it, on
//! PostgreSQL the updated row stays locked until commit, so two requests never both see the
//! count before either is added (at READ COMMITTED, its default: the waiting update then counts
//! on the committed row; a stricter level would fail it with a serialization error instead).
//!
//! The statements are portable diesel DSL without `ON CONFLICT`: diesel's `MultiConnection`
//! backend does not offer it, so a new key is an `INSERT` in a savepoint that falls back to the
//! update when another process inserted the key first.

use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};

use super::schema::login_throttle;
use super::{Conn, is_unique_violation};

/// What a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An account's comparison key.
    Account,
    /// A client address key (IPv4 address, IPv6 /64).
    Address,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Address => "address",
        }
    }
}

/// A key's window after one attempt was counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Attempts counted in the window, this one included.
    pub attempts: i64,
    /// When the window ends (unix seconds); it identifies the window.
    pub expires_at: i64,
}

/// Limits of [`admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_account: u32,
    pub per_address: u32,
    pub window_secs: i64,
}

/// What [`admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted against both keys; `address_window` is the window of the address it was counted in.
    Admitted { address_window: i64 },
    /// Refused and not counted; the blocking key's window ends in this many seconds (at least 1).
    Refused { retry_after_secs: i64 },
}

/// Tries of [`count`] when inserts of the same new key keep colliding (only across processes).
const COUNT_TRIES: usize = 3;

/// Counts one attempt of `key` at `now`: a key whose window has ended (or that has none) starts
/// a new one of `window_secs`.
pub fn count(
    conn: &mut Conn,
    kind: Kind,
    key: &str,
    now: i64,
    window_secs: i64,
) -> QueryResult<Window> {
    let ends = now.saturating_add(window_secs);
    let mut collided = None;
    for _ in 0..COUNT_TRIES {
        // Both right-hand sides read the row as it was before this update.
        let ended = login_throttle::expires_at.le(now);
        let counted =
            diesel::update(login_throttle::table.find((kind.as_str(), key)))
                .set((
                    login_throttle::attempts.eq(case_when::<_, _, Integer>(ended, 1)
                        .otherwise(login_throttle::attempts + 1)),
                    login_throttle::expires_at.eq(case_when::<_, _, BigInt>(ended, ends)
                        .otherwise(login_throttle::expires_at)),
                ))
                .returning((login_throttle::attempts, login_throttle::expires_at))
                .get_result::<(i32, i64)>(conn)
                .optional()?;
        if let Some((attempts, expires_at)) = counted {
            return Ok(Window {
                attempts: attempts.into(),
                expires_at,
            });
        }
        // In a savepoint: on PostgreSQL a failed statement would abort the whole transaction.
        let inserted = conn.transaction(|conn| {
            diesel::insert_into(login_throttle::table)
                .values((
                    login_throttle::kind.eq(kind.as_str()),
                    login_throttle::key.eq(key),
                    login_throttle::attempts.eq(1),
                    login_throttle::expires_at.eq(ends),
                ))
                .execute(conn)
        });
        match inserted {
            Ok(_) => {
                return Ok(Window {
                    attempts: 1,
                    expires_at: ends,
                });
            }
            Err(error) if is_unique_violation(&error) => collided = Some(error),
            Err(error) => return Err(error),
        }
    }
    Err(collided.unwrap_or(diesel::result::Error::NotFound))
}

/// Why the counting transaction of [`admit`] is rolled back.
enum Undo {
    Refused(i64),
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for Undo {
    fn from(error: diesel::result::Error) -> Self {
        Self::Query(error)
    }
}

/// Admits and counts an attempt for `account` from `address` at `now`, or refuses it when
/// either has used up its limit in its current window. A refused attempt is rolled back and
/// counts against neither key, as if it never came.
pub fn admit(
    conn: &mut Conn,
    account: &str,
    address: &str,
    limits: Limits,
    now: i64,
) -> QueryResult<Admission> {
    let counted = conn.transaction(|conn| {
        let account = count(conn, Kind::Account, account, now, limits.window_secs)?;
        let address = count(conn, Kind::Address, address, now, limits.window_secs)?;
        let blocked = [(account, limits.per_account), (address, limits.per_address)]
            .into_iter()
            .filter(|(window, limit)| window.attempts > i64::from(*limit))
            .map(|(window, _)| window.expires_at.saturating_sub(now).max(1))
            .max();
        match blocked {
            Some(retry_after_secs) => Err(Undo::Refused(retry_after_secs)),
            None => Ok(address.expires_at),
        }
    });
    match counted {
        Ok(address_window) => Ok(Admission::Admitted { address_window }),
        Err(Undo::Refused(retry_after_secs)) => Ok(Admission::Refused { retry_after_secs }),
        Err(Undo::Query(error)) => Err(error),
    }
}

/// After a right password: the account's count is forgotten, and the address's count loses the
/// attempt if it is still in the window it was counted in (`address_window`).
pub fn succeeded(
    conn: &mut Conn,
    account: &str,
    address: &str,
    address_window: i64,
) -> QueryResult<()> {
    diesel::delete(login_throttle::table.find((Kind::Account.as_str(), account))).execute(conn)?;
    diesel::update(
        login_throttle::table
            .find((Kind::Address.as_str(), address))
            .filter(login_throttle::expires_at.eq(address_window))
            .filter(login_throttle::attempts.gt(0)),
    )
    .set(login_throttle::attempts.eq(login_throttle::attempts - 1))
    .execute(conn)?;
    Ok(())
}

/// Deletes up to `limit` rows whose window ended before `cutoff`; returns how many went.
pub fn sweep_batch(conn: &mut Conn, cutoff: i64, limit: usize) -> QueryResult<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let ended: Vec<(String, String)> = login_throttle::table
        .filter(login_throttle::expires_at.lt(cutoff))
        .select((login_throttle::kind, login_throttle::key))
        .limit(limit)
        .load(conn)?;
    let mut deleted = 0;
    for kind in [Kind::Account, Kind::Address] {
        let keys: Vec<&str> = ended
            .iter()
            .filter(|(k, _)| k == kind.as_str())
            .map(|(_, key)| key.as_str())
            .collect();
        if keys.is_empty() {
            continue;
        }
        // The end is checked again: on PostgreSQL a login may have started a new window of the
        // key since it was read.
        deleted += diesel::delete(
            login_throttle::table
                .filter(login_throttle::kind.eq(kind.as_str()))
                .filter(login_throttle::key.eq_any(&keys))
                .filter(login_throttle::expires_at.lt(cutoff)),
        )
        .execute(conn)?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;

    const T: i64 = 1_000_000;

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("db.sqlite3").to_string_lossy(), 2).unwrap();
        db.migrate().unwrap();
        (dir, db)
    }

    fn limits(per_account: u32, per_address: u32) -> Limits {
        Limits {
            per_account,
            per_address,
            window_secs: 60,
        }
    }

    fn rows(conn: &mut Conn) -> Vec<(String, String, i32, i64)> {
        login_throttle::table
            .order((login_throttle::kind, login_throttle::key))
            .load(conn)
            .unwrap()
    }

    #[test]
    fn a_window_counts_until_it_ends_then_a_new_one_starts() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        let first = count(conn, Kind::Account, "alice", T, 60).unwrap();
        assert_eq!(
            first,
            Window {
                attempts: 1,
                expires_at: T + 60
            }
        );
        let second = count(conn, Kind::Account, "alice", T + 59, 60).unwrap();
        assert_eq!(
            second,
            Window {
                attempts: 2,
                expires_at: T + 60
            }
        );
        // The same key of the other kind is another row.
        assert_eq!(
            count(conn, Kind::Address, "alice", T, 60).unwrap().attempts,
            1
        );
        let renewed = count(conn, Kind::Account, "alice", T + 60, 60).unwrap();
        assert_eq!(
            renewed,
            Window {
                attempts: 1,
                expires_at: T + 120
            }
        );
    }

    #[test]
    fn a_refused_attempt_counts_against_neither_key() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        for _ in 0..2 {
            assert!(matches!(
                admit(conn, "alice", "192.0.2.1", limits(2, 10), T).unwrap(),
                Admission::Admitted { .. }
            ));
        }
        let before = rows(conn);
        assert_eq!(
            admit(conn, "alice", "192.0.2.1", limits(2, 10), T + 20).unwrap(),
            Admission::Refused {
                retry_after_secs: 40
            }
        );
        // A new address of a throttled account leaves no row either.
        assert!(matches!(
            admit(conn, "alice", "198.51.100.1", limits(2, 10), T + 20).unwrap(),
            Admission::Refused { .. }
        ));
        assert_eq!(rows(conn), before);
    }

    #[test]
    fn retry_after_is_the_latest_end_of_the_blocking_windows() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        admit(conn, "bob", "192.0.2.1", limits(1, 2), T).unwrap();
        admit(conn, "alice", "192.0.2.1", limits(1, 2), T + 30).unwrap();
        // Both the account (ends T + 90) and the address (ends T + 60) are used up.
        assert_eq!(
            admit(conn, "alice", "192.0.2.1", limits(1, 2), T + 40).unwrap(),
            Admission::Refused {
                retry_after_secs: 50
            }
        );
        // Only the address: its own end.
        assert_eq!(
            admit(conn, "carol", "192.0.2.1", limits(1, 2), T + 40).unwrap(),
            Admission::Refused {
                retry_after_secs: 20
            }
        );
    }

    #[test]
    fn a_success_forgets_the_account_and_gives_back_only_its_own_address_window() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        let Admission::Admitted { address_window } =
            admit(conn, "alice", "192.0.2.1", limits(5, 5), T).unwrap()
        else {
            panic!("refused");
        };
        admit(conn, "alice", "192.0.2.1", limits(5, 5), T).unwrap();
        succeeded(conn, "alice", "192.0.2.1", address_window).unwrap();
        assert_eq!(
            rows(conn),
            [("address".into(), "192.0.2.1".into(), 1, T + 60)]
        );
        // A success reported after its address window ended takes nothing from the next one.
        admit(conn, "bob", "192.0.2.1", limits(5, 5), T + 60).unwrap();
        succeeded(conn, "alice", "192.0.2.1", address_window).unwrap();
        assert_eq!(
            rows(conn),
            [
                ("account".into(), "bob".into(), 1, T + 120),
                ("address".into(), "192.0.2.1".into(), 1, T + 120)
            ]
        );
    }

    #[test]
    fn the_sweep_takes_ended_windows_in_bounded_batches() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        for i in 0..5 {
            admit(
                conn,
                &format!("old{i}"),
                &format!("10.0.0.{i}"),
                limits(5, 5),
                T,
            )
            .unwrap();
        }
        admit(conn, "live", "192.0.2.1", limits(5, 5), T + 1).unwrap();
        // Rows end at T + 60 and T + 61; only those ended before the cutoff go.
        assert_eq!(sweep_batch(conn, T + 60, 100).unwrap(), 0);
        assert_eq!(sweep_batch(conn, T + 61, 4).unwrap(), 4);
        assert_eq!(sweep_batch(conn, T + 61, 100).unwrap(), 6);
        assert_eq!(sweep_batch(conn, T + 61, 100).unwrap(), 0);
        let keys: Vec<String> = rows(conn).into_iter().map(|r| r.1).collect();
        assert_eq!(keys, ["live", "192.0.2.1"]);
    }
}
