//! The user's active sessions: device, address, start and last activity, this one marked; End
//! one, or End all others. Ending cascades as a logout does (back-channel logout, grants of the
//! session revoked).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use oidc_core::unix_now;
use serde::Serialize;

use super::{Account, AccountError, AccountForm, ActionForm, Frame, WriteError, format_time, page};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::sessions;

#[derive(Serialize)]
struct SessionLine {
    id: String,
    user_agent: String,
    address: String,
    started: String,
    last_seen: String,
    current: bool,
}

#[derive(Serialize)]
struct SessionsPage {
    frame: Frame,
    sessions: Vec<SessionLine>,
    others: usize,
}

/// `GET /account/sessions`.
pub(super) async fn list(
    account: Account,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AccountError> {
    let user_id = account.user.id.clone();
    let rows = state
        .db
        .run(move |conn| {
            sessions::for_user(conn, &user_id).map_err(crate::storage::StorageError::from)
        })
        .await?;
    let (at, idle) = (unix_now(), state.settings.session_idle_secs);
    let mut lines: Vec<SessionLine> = rows
        .into_iter()
        .filter(|s| s.is_live(at, idle))
        .map(|s| SessionLine {
            current: s.public_id == account.login.session_id,
            id: s.public_id,
            user_agent: s.user_agent,
            address: s.client_addr,
            started: format_time(s.created_at),
            last_seen: format_time(s.last_seen_at),
        })
        .collect();
    // This session first, then the others newest first (as stored).
    lines.sort_by_key(|s| !s.current);
    let others = lines.iter().filter(|s| !s.current).count();
    let context = SessionsPage {
        frame: account.frame("sessions"),
        sessions: lines,
        others,
    };
    Ok(page(
        &state,
        StatusCode::OK,
        "account/sessions.html",
        &context,
    ))
}

/// `POST /account/sessions/{session_id}/end`: ends one of the user's sessions by its public
/// id. Another user's id ends nothing: 404. Ending this very session signs out.
pub(super) async fn end_one(
    AccountForm { account, .. }: AccountForm<ActionForm>,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AccountError> {
    let public_id = path.into_inner();
    let current = public_id == account.login.session_id;
    let (user_id, username) = (account.user.id.clone(), account.user.username.clone());
    let address = account.address.clone();
    let ended = state
        .db
        .write(move |conn| -> Result<bool, WriteError> {
            if !sessions::end_for_user(conn, &user_id, &public_id, unix_now())? {
                return Ok(false);
            }
            let detail = if current {
                "this session"
            } else {
                "another session"
            };
            audit::record(
                conn,
                &Event::new(Kind::SessionEnded, Outcome::Succeeded)
                    .with_user(&user_id, &username)
                    .with_address(&address)
                    .with_detail(detail),
            )?;
            Ok(true)
        })
        .await?;
    if !ended {
        return Err(AccountError::NotFound);
    }
    if current {
        account.session().purge();
        return Ok(see_other("/login"));
    }
    account.flash("Session ended.");
    Ok(see_other("/account/sessions"))
}

/// `POST /account/sessions/others/end`: ends every session of the user but this one.
pub(super) async fn end_others(
    AccountForm { account, .. }: AccountForm<ActionForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AccountError> {
    let keep = account.login.session_id.clone();
    let (user_id, username) = (account.user.id.clone(), account.user.username.clone());
    let address = account.address.clone();
    let ended = state
        .db
        .write(move |conn| -> Result<usize, WriteError> {
            let ended = sessions::end_others_for_user(conn, &user_id, &keep, unix_now())?;
            if !ended.is_empty() {
                audit::record(
                    conn,
                    &Event::new(Kind::SessionEnded, Outcome::Succeeded)
                        .with_user(&user_id, &username)
                        .with_address(&address)
                        .with_detail(&format!("other sessions ended: {}", ended.len())),
                )?;
            }
            Ok(ended.len())
        })
        .await?;
    account.flash(&match ended {
        0 => "There were no other sessions.".to_owned(),
        1 => "1 other session ended.".to_owned(),
        n => format!("{n} other sessions ended."),
    });
    Ok(see_other("/account/sessions"))
}
