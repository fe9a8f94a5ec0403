//! Recent security events of the user, from the audit log, in words.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::{Account, AccountError, Frame, format_time, page};
use crate::state::AppState;
use crate::storage::StorageError;
use crate::storage::audit::{self, Kind, Outcome};

/// How many events the page shows.
const SHOWN: i64 = 20;

#[derive(Serialize)]
struct EventLine {
    at: String,
    what: &'static str,
    outcome: &'static str,
    failed: bool,
    application: Option<String>,
    address: String,
    detail: String,
    by_admin: bool,
}

#[derive(Serialize)]
struct EventsPage {
    frame: Frame,
    events: Vec<EventLine>,
}

/// The words for a stored kind.
fn label(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::SignIn) => "Sign-in",
        Some(Kind::FactorUsed) => "Two-step verification used",
        Some(Kind::FactorEnrolled) => "Two-step verification method added",
        Some(Kind::FactorRemoved) => "Two-step verification method removed",
        Some(Kind::FactorsReset) => "Two-step verification reset",
        Some(Kind::PasswordChanged) => "Password change",
        Some(Kind::PasswordReset) => "Password reset by an administrator",
        Some(Kind::ProfileChanged) => "Profile change",
        Some(Kind::SessionEnded) => "Session ended",
        Some(Kind::ConsentGranted) => "Application authorized",
        Some(Kind::ConsentRevoked) => "Application access revoked",
        Some(Kind::UserCreated) => "Account created",
        Some(Kind::UserUpdated) => "Account changed by an administrator",
        Some(Kind::UserDeleted) => "Account deleted",
        Some(
            Kind::ClientCreated
            | Kind::ClientUpdated
            | Kind::ClientDeleted
            | Kind::ClientSecretRotated
            | Kind::KeyRotated,
        ) => "Administrative change",
        None => "Other event",
    }
}

fn outcome_label(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Succeeded) => "succeeded",
        Some(Outcome::Failed) => "failed",
        Some(Outcome::Throttled) => "refused: too many attempts",
        None => "",
    }
}

/// `GET /account/events`.
pub(super) async fn list(
    account: Account,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AccountError> {
    let user_id = account.user.id.clone();
    let rows = state
        .db
        .run(move |conn| audit::recent_for_user(conn, &user_id, SHOWN).map_err(StorageError::from))
        .await?;
    let events = rows
        .into_iter()
        .map(|row| {
            let outcome = Outcome::parse(&row.outcome);
            EventLine {
                at: format_time(row.at),
                what: label(Kind::parse(&row.kind)),
                outcome: outcome_label(outcome),
                failed: outcome != Some(Outcome::Succeeded),
                application: row.client_id,
                address: row.client_addr,
                detail: row.detail,
                by_admin: row.actor.is_some(),
            }
        })
        .collect();
    let context = EventsPage {
        frame: account.frame("events"),
        events,
    };
    Ok(page(
        &state,
        StatusCode::OK,
        "account/events.html",
        &context,
    ))
}
