//! The audit log: one row per security event (sign-ins, factors, passwords, sessions, consents,
//! and administrators' actions on users, clients and keys). Events are written inside the write
//! of the action they record, so a login costs no extra transaction.

use diesel::prelude::*;
use oidc_core::unix_now;

use super::Conn;
use super::schema::audit_events;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SignIn,
    FactorUsed,
    FactorEnrolled,
    FactorRemoved,
    FactorsReset,
    PasswordChanged,
    PasswordReset,
    ProfileChanged,
    SessionEnded,
    ConsentGranted,
    ConsentRevoked,
    UserCreated,
    UserUpdated,
    UserDeleted,
    ClientCreated,
    ClientUpdated,
    ClientDeleted,
    ClientSecretRotated,
    KeyRotated,
}

impl Kind {
    /// Every kind, in the order the admin page lists them.
    pub const ALL: [Self; 19] = [
        Self::SignIn,
        Self::FactorUsed,
        Self::FactorEnrolled,
        Self::FactorRemoved,
        Self::FactorsReset,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::ProfileChanged,
        Self::SessionEnded,
        Self::ConsentGranted,
        Self::ConsentRevoked,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientDeleted,
        Self::ClientSecretRotated,
        Self::KeyRotated,
    ];

    /// The stored name, e.g. `sign_in`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::FactorUsed => "factor_used",
            Self::FactorEnrolled => "factor_enrolled",
            Self::FactorRemoved => "factor_removed",
            Self::FactorsReset => "factors_reset",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::ProfileChanged => "profile_changed",
            Self::SessionEnded => "session_ended",
            Self::ConsentGranted => "consent_granted",
            Self::ConsentRevoked => "consent_revoked",
            Self::UserCreated => "user_created",
            Self::UserUpdated => "user_updated",
            Self::UserDeleted => "user_deleted",
            Self::ClientCreated => "client_created",
            Self::ClientUpdated => "client_updated",
            Self::ClientDeleted => "client_deleted",
            Self::ClientSecretRotated => "client_secret_rotated",
            Self::KeyRotated => "key_rotated",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Throttled,
}

impl Outcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Throttled => "throttled",
        }
    }

    /// The outcome stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Succeeded, Self::Failed, Self::Throttled]
            .into_iter()
            .find(|o| o.as_str() == name)
    }
}

/// An event to record. Built with [`Event::new`] and the `with_*` setters.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    pub outcome: Outcome,
    /// The user the event is about (row id), if known.
    pub user_id: Option<String>,
    /// The username as typed or stored (kept when the user is gone or never existed).
    pub username: String,
    pub client_id: Option<String>,
    pub client_addr: String,
    /// The administrator (username) who acted, for admin actions.
    pub actor: Option<String>,
    /// A short free-text detail (e.g. the factor's kind, the key id); never a secret.
    pub detail: String,
}

/// Longest text kept in one field: events are for reading, not storage of input.
const MAX_FIELD_CHARS: usize = 256;

fn clip(text: &str) -> String {
    text.chars().take(MAX_FIELD_CHARS).collect()
}

impl Event {
    pub fn new(kind: Kind, outcome: Outcome) -> Self {
        Self {
            kind,
            outcome,
            user_id: None,
            username: String::new(),
            client_id: None,
            client_addr: String::new(),
            actor: None,
            detail: String::new(),
        }
    }

    pub fn with_user(mut self, user_id: &str, username: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self.username = clip(username);
        self
    }

    /// A username that matched no account (a failed sign-in).
    pub fn with_username(mut self, username: &str) -> Self {
        self.username = clip(username);
        self
    }

    pub fn with_client(mut self, client_id: &str) -> Self {
        self.client_id = Some(clip(client_id));
        self
    }

    pub fn with_address(mut self, address: &str) -> Self {
        self.client_addr = clip(address);
        self
    }

    pub fn with_actor(mut self, admin_username: &str) -> Self {
        self.actor = Some(clip(admin_username));
        self
    }

    pub fn with_detail(mut self, detail: &str) -> Self {
        self.detail = clip(detail);
        self
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_events)]
struct NewRow<'a> {
    at: i64,
    kind: &'a str,
    outcome: &'a str,
    user_id: Option<&'a str>,
    username: &'a str,
    client_id: Option<&'a str>,
    client_addr: &'a str,
    actor: Option<&'a str>,
    detail: &'a str,
}

/// Records `event` now, on `conn` (inside the caller's write, where there is one).
pub fn record(conn: &mut Conn, event: &Event) -> QueryResult<()> {
    record_at(conn, event, unix_now())
}

/// Records `event` as having happened at `at` (unix seconds).
pub fn record_at(conn: &mut Conn, event: &Event, at: i64) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(NewRow {
            at,
            kind: event.kind.as_str(),
            outcome: event.outcome.as_str(),
            user_id: event.user_id.as_deref(),
            username: &event.username,
            client_id: event.client_id.as_deref(),
            client_addr: &event.client_addr,
            actor: event.actor.as_deref(),
            detail: &event.detail,
        })
        .execute(conn)
        .map(drop)
}

/// A stored event.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_events)]
pub struct EventRow {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub outcome: String,
    pub user_id: Option<String>,
    pub username: String,
    pub client_id: Option<String>,
    pub client_addr: String,
    pub actor: Option<String>,
    pub detail: String,
}

/// The latest `limit` events of one user, newest first (the account page's list).
pub fn recent_for_user(conn: &mut Conn, user_id: &str, limit: i64) -> QueryResult<Vec<EventRow>> {
    audit_events::table
        .filter(audit_events::user_id.eq(user_id))
        .order((audit_events::at.desc(), audit_events::id.desc()))
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)
}

/// Whether an event like `event` (same kind, outcome, username and address) was recorded at or
/// after `since`: refusals repeated from outside are recorded once per window, so they cannot
/// grow the log without bound.
pub fn recorded_since(conn: &mut Conn, event: &Event, since: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        audit_events::table
            .filter(audit_events::kind.eq(event.kind.as_str()))
            .filter(audit_events::at.ge(since))
            .filter(audit_events::outcome.eq(event.outcome.as_str()))
            .filter(audit_events::username.eq(&event.username))
            .filter(audit_events::client_addr.eq(&event.client_addr)),
    ))
    .get_result(conn)
}
