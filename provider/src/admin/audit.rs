//! The audit log in the admin site: `GET /admin/audit`, newest first, filtered by a GET form.
//! A filter value that cannot be understood is answered with a 400 page naming it.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::{Admin, AdminError, AdminRoutes, Frame, format_time, page};
use crate::pages::error_page;
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::audit::{Kind, Outcome};
use crate::storage::audit_query::{self, Filter, MAX_PAGE, PageSize};

pub(super) fn routes(routes: AdminRoutes) -> AdminRoutes {
    routes.get("/audit", list)
}

/// The filter form as sent: text only, so that reading it never fails on a type; empty fields
/// filter nothing.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FilterQuery {
    pub user: String,
    pub kind: String,
    pub outcome: String,
    pub client: String,
    /// A day (`YYYY-MM-DD`) or unix seconds: events from then on.
    pub since: String,
    /// A day (`YYYY-MM-DD`, that day included) or unix seconds: events before then.
    pub until: String,
    pub before_id: String,
    pub limit: String,
}

/// Longest filter text accepted (usernames and client ids are shorter).
const MAX_TEXT: usize = 256;

impl FilterQuery {
    /// The filter, or a message naming the field that cannot be understood.
    pub fn parse(&self) -> Result<Filter, String> {
        let text = |name: &str, value: &str| -> Result<Option<String>, String> {
            let value = value.trim();
            if value.chars().count() > MAX_TEXT {
                return Err(format!("{name}: at most {MAX_TEXT} characters"));
            }
            Ok((!value.is_empty()).then(|| value.to_owned()))
        };
        let kind = match self.kind.trim() {
            "" => None,
            name => Some(Kind::parse(name).ok_or_else(|| format!("kind: unknown kind {name:?}"))?),
        };
        let outcome = match self.outcome.trim() {
            "" => None,
            name => Some(
                Outcome::parse(name).ok_or_else(|| format!("outcome: unknown outcome {name:?}"))?,
            ),
        };
        let before_id = match self.before_id.trim() {
            "" => None,
            id => Some(
                id.parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or("before_id: must be a positive whole number")?,
            ),
        };
        let limit = match self.limit.trim() {
            "" => PageSize::default(),
            n => n
                .parse::<u32>()
                .ok()
                .and_then(PageSize::new)
                .ok_or_else(|| format!("limit: must be a whole number from 1 to {MAX_PAGE}"))?,
        };
        Ok(Filter {
            user: text("user", &self.user)?,
            kind,
            outcome,
            client_id: text("client", &self.client)?,
            since: time("since", &self.since, false)?,
            until: time("until", &self.until, true)?,
            before_id,
            limit,
        })
    }
}

/// A time filter: unix seconds, or a day; `end_of_day` moves a day to the start of the next,
/// so that the day itself is included.
pub fn time(name: &str, value: &str, end_of_day: bool) -> Result<Option<i64>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(secs) = value.parse::<i64>() {
        return if secs >= 0 {
            Ok(Some(secs))
        } else {
            Err(format!("{name}: must not be negative"))
        };
    }
    let day = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| format!("{name}: expected a day (YYYY-MM-DD) or unix seconds"))?;
    let day = if end_of_day {
        day.succ_opt()
    } else {
        Some(day)
    };
    day.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| Some(t.and_utc().timestamp()))
        .ok_or_else(|| format!("{name}: day out of range"))
}

#[derive(Serialize)]
struct Line {
    id: i64,
    at: String,
    kind: String,
    outcome: String,
    user_id: String,
    username: String,
    client_id: String,
    address: String,
    actor: String,
    detail: String,
}

#[derive(Serialize)]
struct ListPage<'a> {
    frame: Frame,
    query: &'a FilterQuery,
    kinds: Vec<&'static str>,
    outcomes: Vec<&'static str>,
    events: Vec<Line>,
    /// The query string of the next (older) page, when there is one.
    older: Option<String>,
}

/// `GET /admin/audit`.
async fn list(
    admin: Admin,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let query: FilterQuery = match serde_urlencoded::from_str(req.query_string()) {
        Ok(query) => query,
        Err(_) => return Ok(bad_filter("The filter could not be read.")),
    };
    let filter = match query.parse() {
        Ok(filter) => filter,
        Err(message) => return Ok(bad_filter(&message)),
    };
    let found = state
        .db
        .run(move |conn| audit_query::list(conn, &filter).map_err(StorageError::from))
        .await?;
    let older = found.next_before_id.map(|id| {
        let next = FilterQuery {
            before_id: id.to_string(),
            user: query.user.clone(),
            kind: query.kind.clone(),
            outcome: query.outcome.clone(),
            client: query.client.clone(),
            since: query.since.clone(),
            until: query.until.clone(),
            limit: query.limit.clone(),
        };
        serde_urlencoded::to_string(&next).unwrap_or_default()
    });
    let context = ListPage {
        frame: admin.frame("audit"),
        query: &query,
        kinds: Kind::ALL.iter().map(|k| k.as_str()).collect(),
        outcomes: [Outcome::Succeeded, Outcome::Failed, Outcome::Throttled]
            .iter()
            .map(|o| o.as_str())
            .collect(),
        events: found
            .events
            .into_iter()
            .map(|e| Line {
                id: e.id,
                at: format_time(e.at),
                kind: e.kind,
                outcome: e.outcome,
                user_id: e.user_id.unwrap_or_default(),
                username: e.username,
                client_id: e.client_id.unwrap_or_default(),
                address: e.client_addr,
                actor: e.actor.unwrap_or_default(),
                detail: e.detail,
            })
            .collect(),
        older,
    };
    Ok(page(&state, "admin/audit.html", &context))
}

fn bad_filter(message: &str) -> HttpResponse {
    error_page(StatusCode::BAD_REQUEST, "Bad filter", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_seconds_are_read_and_the_until_day_is_included() {
        assert_eq!(time("since", "", false), Ok(None));
        assert_eq!(time("since", "86400", false), Ok(Some(86_400)));
        assert_eq!(time("since", "1970-01-02", false), Ok(Some(86_400)));
        assert_eq!(time("until", "1970-01-02", true), Ok(Some(2 * 86_400)));
        assert!(time("since", "-1", false).is_err());
        assert!(time("since", "yesterday", false).is_err());
    }
}
