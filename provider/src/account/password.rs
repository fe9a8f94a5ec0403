//! Changing one's password: the current one is required and counted by the login throttle,
//! the new one follows the rule of the admin site and the command line, and on success every
//! other session ends and every grant not issued in this session is revoked.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use oidc_core::unix_now;
use serde::{Deserialize, Serialize};

use super::{Account, AccountError, AccountForm, Frame, WriteError, account_forms, page};
use crate::identity::login::see_other;
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::users::{self, validate_password};
use crate::storage::{StorageError, grants, sessions};

/// Body of `POST /account/password`.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

account_forms!(PasswordForm);

#[derive(Serialize)]
struct PasswordPage {
    frame: Frame,
    error: Option<&'static str>,
    rule: String,
}

fn password_page(
    state: &AppState,
    account: &Account,
    status: StatusCode,
    error: Option<&'static str>,
) -> HttpResponse {
    let context = PasswordPage {
        frame: account.frame("password"),
        error,
        rule: users::UserInputError::Password.to_string(),
    };
    page(state, status, "account/password.html", &context)
}

/// `GET /account/password`: the form.
pub(super) async fn show(account: Account, state: web::Data<AppState>) -> HttpResponse {
    password_page(&state, &account, StatusCode::OK, None)
}

const WRONG_CURRENT: &str = "The current password is not correct.";
const CHANGED_MEANWHILE: &str =
    "Your password was changed in the meantime. Reload the page and try again.";

/// `POST /account/password`.
pub(super) async fn change(
    AccountForm { account, form }: AccountForm<PasswordForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AccountError> {
    let bad = |message| {
        Ok(password_page(
            &state,
            &account,
            StatusCode::BAD_REQUEST,
            message,
        ))
    };
    if validate_password(&form.new_password).is_err() {
        return bad(Some("The new password must be 8 to 256 characters."));
    }
    if form.new_password != form.confirm_password {
        return bad(Some("The new password and its confirmation differ."));
    }
    // Counted like a login before the password is checked: this form guesses no faster.
    let attempt = match state
        .throttle
        .begin(&account.user.username, &account.address)
        .await?
    {
        Ok(attempt) => attempt,
        Err(throttled) => {
            let mut response = password_page(
                &state,
                &account,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many wrong passwords. Please wait a few minutes and try again."),
            );
            if let Ok(value) =
                header::HeaderValue::from_str(&throttled.retry_after_secs.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Ok(response);
        }
    };
    let verified_hash = account.user.password_hash.clone();
    let matched = state
        .hasher
        .verify(form.current_password, Some(verified_hash.clone()))
        .await
        .map_err(|e| AccountError::Unexpected(e.into()))?;
    let (user_id, username) = (account.user.id.clone(), account.user.username.clone());
    let address = account.address.clone();
    if !matched {
        // The attempt stays counted.
        drop(attempt);
        state
            .db
            .write(move |conn| {
                audit::record(
                    conn,
                    &Event::new(Kind::PasswordChanged, Outcome::Failed)
                        .with_user(&user_id, &username)
                        .with_address(&address)
                        .with_detail("wrong current password"),
                )
                .map_err(StorageError::from)
            })
            .await?;
        return bad(Some(WRONG_CURRENT));
    }
    let new_hash = state
        .hasher
        .hash(form.new_password)
        .await
        .map_err(|e| AccountError::Unexpected(e.into()))?;
    let keep = account.login.session_id.clone();
    let changed = state
        .db
        .write(move |conn| -> Result<Option<usize>, WriteError> {
            // The row locked, then compared with the hash the current password was checked
            // against: of two changes at once, the second finds the first's hash and stops.
            grants::find_claims_user_for_update(conn, &user_id)?;
            let stored = users::find(conn, &user_id)?.ok_or(WriteError::NotFound)?;
            if stored.password_hash != verified_hash {
                return Ok(None);
            }
            users::set_password_hash(conn, &user_id, &new_hash)?;
            let at = unix_now();
            let ended = sessions::end_everything_else_for_user(conn, &user_id, &keep, at)?;
            attempt.succeeded(conn)?;
            audit::record(
                conn,
                &Event::new(Kind::PasswordChanged, Outcome::Succeeded)
                    .with_user(&user_id, &username)
                    .with_address(&address)
                    .with_detail(&format!("other sessions ended: {}", ended.len())),
            )?;
            Ok(Some(ended.len()))
        })
        .await?;
    let Some(ended) = changed else {
        return Ok(password_page(
            &state,
            &account,
            StatusCode::CONFLICT,
            Some(CHANGED_MEANWHILE),
        ));
    };
    tracing::info!(user = %account.user.username, ended, "password changed");
    account.flash(
        "Password changed. Your other sessions were signed out and the applications they used lost their access.",
    );
    Ok(see_other("/account/password"))
}
