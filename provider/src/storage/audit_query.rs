//! Reading the audit log: filtered pages, newest first, and the retention sweep.
//!
//! Pages are cut by id (`before_id`), not by offset: a page stays the same while new events
//! arrive, and reaching page 100 costs what page 1 costs.

use diesel::prelude::*;

use super::Conn;
use super::audit::{EventRow, Kind, Outcome};
use super::schema::{audit_events, users};

/// Events on one page by default.
pub const DEFAULT_PAGE: u32 = 50;

/// Events on one page at most: a page is read into memory and rendered whole.
pub const MAX_PAGE: u32 = 500;

/// Seconds in a day, for retention in days.
const DAY_SECS: i64 = 86_400;

/// A page size between 1 and [`MAX_PAGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// `size`, when it is between 1 and [`MAX_PAGE`].
    pub fn new(size: u32) -> Option<Self> {
        (1..=MAX_PAGE).contains(&size).then_some(Self(size))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self(DEFAULT_PAGE)
    }
}

/// Which events to list. Every field narrows the list; none lists everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// A user's row id or username (as stored, or as the user's current username).
    pub user: Option<String>,
    pub kind: Option<Kind>,
    pub outcome: Option<Outcome>,
    pub client_id: Option<String>,
    /// Events at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Events before this time (unix seconds).
    pub until: Option<i64>,
    /// Events older than this id: the cursor of the next page.
    pub before_id: Option<i64>,
    pub limit: PageSize,
}

/// One page of events, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page {
    pub events: Vec<EventRow>,
    /// The `before_id` of the next page, when there are older events.
    pub next_before_id: Option<i64>,
}

/// The events matching `filter`, newest first.
pub fn list(conn: &mut Conn, filter: &Filter) -> QueryResult<Page> {
    let mut query = audit_events::table.into_boxed();
    if let Some(user) = &filter.user {
        // A username is matched as typed, and also through the account it names now, so a
        // user's events are found whatever case they were typed in.
        let id: Option<String> = users::table
            .filter(users::username_key.eq(super::users::username_key(user)))
            .select(users::id)
            .get_result(conn)
            .optional()?;
        let ids = [Some(user.clone()), id]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        query = query.filter(
            audit_events::user_id
                .eq_any(ids)
                .or(audit_events::username.eq(user.clone())),
        );
    }
    if let Some(kind) = filter.kind {
        query = query.filter(audit_events::kind.eq(kind.as_str()));
    }
    if let Some(outcome) = filter.outcome {
        query = query.filter(audit_events::outcome.eq(outcome.as_str()));
    }
    if let Some(client_id) = &filter.client_id {
        query = query.filter(audit_events::client_id.eq(client_id.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::at.lt(until));
    }
    if let Some(before_id) = filter.before_id {
        query = query.filter(audit_events::id.lt(before_id));
    }
    let limit = i64::from(filter.limit.get());
    // One more than the page, to know whether an older page exists.
    let mut events: Vec<EventRow> = query
        .order(audit_events::id.desc())
        .limit(limit + 1)
        .select(EventRow::as_select())
        .load(conn)?;
    let more = events.len() as i64 > limit;
    events.truncate(filter.limit.get() as usize);
    let next_before_id = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page {
        events,
        next_before_id,
    })
}

/// The time before which events go, at `now`, when they are kept `retention_days` (0: never).
pub fn retention_cutoff(now: i64, retention_days: u32) -> Option<i64> {
    (retention_days > 0).then(|| now.saturating_sub(i64::from(retention_days) * DAY_SECS))
}

/// Deletes up to `limit` events that happened before `cutoff`; returns how many went.
pub fn sweep_batch(conn: &mut Conn, cutoff: i64, limit: usize) -> QueryResult<usize> {
    let ids: Vec<i64> = audit_events::table
        .filter(audit_events::at.lt(cutoff))
        .select(audit_events::id)
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::delete(audit_events::table.filter(audit_events::id.eq_any(&ids))).execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Db;
    use crate::storage::audit::{Event, record_at};

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("db.sqlite3").to_str().unwrap(), 2).unwrap();
        db.migrate().unwrap();
        (dir, db)
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PageSize::new(0), None);
        assert_eq!(PageSize::new(MAX_PAGE + 1), None);
        assert_eq!(PageSize::new(MAX_PAGE).map(PageSize::get), Some(MAX_PAGE));
    }

    #[test]
    fn retention_of_zero_days_keeps_everything() {
        assert_eq!(retention_cutoff(1_000_000, 0), None);
        assert_eq!(retention_cutoff(1_000_000, 1), Some(1_000_000 - DAY_SECS));
    }

    #[test]
    fn pages_follow_the_cursor_newest_first() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        for i in 0..5 {
            let event = Event::new(Kind::SignIn, Outcome::Succeeded).with_username("alice");
            record_at(conn, &event, 100 + i).unwrap();
        }
        let mut filter = Filter {
            limit: PageSize::new(2).unwrap(),
            ..Filter::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = list(conn, &filter).unwrap();
            seen.extend(page.events.iter().map(|e| e.at));
            match page.next_before_id {
                Some(id) => filter.before_id = Some(id),
                None => break,
            }
        }
        assert_eq!(seen, [104, 103, 102, 101, 100]);
    }

    #[test]
    fn a_sweep_batch_deletes_only_events_before_the_cutoff() {
        let (_dir, db) = db();
        let conn = &mut *db.conn().unwrap();
        for at in [10, 20, 30] {
            record_at(conn, &Event::new(Kind::KeyRotated, Outcome::Succeeded), at).unwrap();
        }
        assert_eq!(sweep_batch(conn, 30, 1).unwrap(), 1);
        assert_eq!(sweep_batch(conn, 30, 10).unwrap(), 1);
        assert_eq!(sweep_batch(conn, 30, 10).unwrap(), 0);
        let left = list(conn, &Filter::default()).unwrap();
        assert_eq!(left.events.iter().map(|e| e.at).collect::<Vec<_>>(), [30]);
    }
}
