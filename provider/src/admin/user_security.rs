//! What an administrator does about a user's security: end sessions, and see and reset the
//! user's second factors (which ends every session of the user too).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::users::find_user;
use super::{
    ActionForm, AdminError, AdminForm, AdminRoutes, admin_event, admin_forms, format_time,
    urlencode,
};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::audit::{self, Kind};
use crate::storage::factors::{self, Summary};
use crate::storage::{StorageError, sessions};

pub(super) fn routes(routes: AdminRoutes) -> AdminRoutes {
    routes
        .post("/users/{id}/sessions/end", end_all_sessions)
        .post("/users/{id}/sessions/{session_id}/end", end_session)
        .post("/users/{id}/factors/reset", reset_factors)
}

#[derive(Serialize)]
pub(super) struct PasskeyView {
    name: String,
    created: String,
    last_used: Option<String>,
}

/// The user page's list of second factors.
#[derive(Serialize)]
pub(super) struct FactorsView {
    any: bool,
    totp: bool,
    totp_since: Option<String>,
    recovery_codes: i64,
    passkeys: Vec<PasskeyView>,
}

impl From<Summary> for FactorsView {
    fn from(summary: Summary) -> Self {
        Self {
            any: summary.any(),
            totp: summary.totp_confirmed_at.is_some(),
            totp_since: summary.totp_confirmed_at.map(format_time),
            recovery_codes: summary.unused_recovery_codes,
            passkeys: summary
                .passkeys
                .into_iter()
                .map(|p| PasskeyView {
                    name: p.name,
                    created: format_time(p.created_at),
                    last_used: p.last_used_at.map(format_time),
                })
                .collect(),
        }
    }
}

/// Body of the reset form: the token and the ticked confirmation.
#[derive(Deserialize)]
pub struct ResetFactorsForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    confirm: String,
}

admin_forms!(ResetFactorsForm);

/// `POST /admin/users/{id}/factors/reset`: deletes the user's TOTP, recovery codes and
/// passkeys and ends every session, grant and token of the user, in one write with its audit
/// event.
async fn reset_factors(
    AdminForm { admin, form }: AdminForm<ResetFactorsForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    if form.confirm != "yes" {
        return Err(AdminError::BadRequest(
            "Tick the confirmation to reset the second factors.".to_owned(),
        ));
    }
    let event =
        admin_event(Kind::FactorsReset, &admin.username).with_user(&user.id, &user.username);
    let id = user.id.clone();
    let removed = state
        .db
        .write(move |conn| -> Result<_, StorageError> {
            Ok(factors::reset_and_end_sessions(
                conn,
                &id,
                event,
                oidc_core::unix_now(),
            )?)
        })
        .await?;
    tracing::info!(user = %user.username, admin = %admin.username, ?removed, "second factors reset");
    admin.flash(
        "Second factors removed; every session of the user ended and every token was revoked.",
    );
    Ok(see_other(&format!("/admin/users/{}", urlencode(&user.id))))
}

/// `POST /admin/users/{id}/sessions/end`: ends every session, grant and token of the user.
async fn end_all_sessions(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let user = find_user(&state, path.into_inner()).await?;
    let event = admin_event(Kind::SessionEnded, &admin.username)
        .with_user(&user.id, &user.username)
        .with_detail("all sessions");
    let id = user.id.clone();
    state
        .db
        .write(move |conn| -> Result<_, StorageError> {
            sessions::end_everything_for_user(conn, &id, oidc_core::unix_now())?;
            audit::record(conn, &event)?;
            Ok(())
        })
        .await?;
    tracing::info!(user = %user.username, admin = %admin.username, "all sessions ended");
    admin.flash("Every session ended and every token revoked.");
    Ok(see_other(&format!("/admin/users/{}", urlencode(&user.id))))
}

/// `POST /admin/users/{id}/sessions/{session_id}/end`: ends one session.
async fn end_session(
    AdminForm { admin, .. }: AdminForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (user_id, session_id) = path.into_inner();
    let owner = user_id.clone();
    let actor = admin.username.clone();
    let ended = state
        .db
        .write(move |conn| -> Result<bool, StorageError> {
            let ended = sessions::end_for_user(conn, &owner, &session_id, oidc_core::unix_now())?;
            if ended {
                let username = crate::storage::users::find(conn, &owner)?
                    .map(|u| u.username)
                    .unwrap_or_default();
                let event = admin_event(Kind::SessionEnded, &actor)
                    .with_user(&owner, &username)
                    .with_detail("one session");
                audit::record(conn, &event)?;
            }
            Ok(ended)
        })
        .await?;
    if !ended {
        return Err(AdminError::NotFound);
    }
    tracing::info!(user_id = %user_id, admin = %admin.username, "session ended");
    admin.flash("Session ended.");
    Ok(see_other(&format!("/admin/users/{}", urlencode(&user_id))))
}
