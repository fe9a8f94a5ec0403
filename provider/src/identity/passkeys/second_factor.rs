//! A passkey as the second factor after a password: the ceremony is restricted to the
//! credentials of the user who entered the password, and its success adds `hwk` or `swk` (and
//! `mfa`) to that login's methods.
//!
//! The state kept is that of a discoverable ceremony (challenge and policy only) with the
//! user's credentials listed in the options and checked at the finish: the state of
//! `start_passkey_authentication` carries every credential's public key, and ten of them would
//! not fit in the session cookie.
//!
//! The factor prompt owns the pending login (`identity::factor`) and links to
//! `GET /login/passkey?mode=factor`; [`start_for_user`] answers
//! `POST /login/passkey/options?mode=factor` and [`finish_for_user`] checks
//! `POST /login/passkey/finish?mode=factor` before `factor::finish` completes the login with
//! the returned methods.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _, web};
use oidc_core::unix_now;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, RequestChallengeResponse,
};
use webauthn_rs_proto::AllowCredentials;

use super::ceremony::{self, Purpose};
use super::sign_in::{AlreadyUsed, FinishBody, amr_for, updated_json};
use super::{PasskeyError, credential_key, relying_party};
use crate::identity::factor;
use crate::identity::login::{client_address, see_other};
use crate::pages::{csrf, render};
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::passkeys;

/// Mounts `GET /login/passkey` (the page of the factor prompt's "Use a passkey").
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/passkey", web::get().to(page));
}

#[derive(Deserialize)]
struct PageQuery {
    mode: Option<String>,
}

#[derive(Serialize)]
struct Page<'a> {
    csrf_token: String,
    username: &'a str,
}

/// `GET /login/passkey?mode=factor`: the button that runs the ceremony for the pending login;
/// without one, back to the login page.
async fn page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let pending = factor::pending(&session);
    match (query.mode.as_deref(), pending) {
        (Some("factor"), Some(pending)) => {
            let page = Page {
                csrf_token: csrf::token(&session),
                username: &pending.username,
            };
            render(&state.templates, "passkey_factor.html", &page)
        }
        _ => see_other("/login"),
    }
}

/// `POST /login/passkey/options?mode=factor`.
pub(super) async fn options(
    state: &AppState,
    session: &Session,
) -> Result<HttpResponse, PasskeyError> {
    let pending = factor::pending(session).ok_or(PasskeyError::NotPending)?;
    let options = start_for_user(state, session, &pending.user_id)
        .await?
        .ok_or(PasskeyError::Conflict(
            "You have no passkey; use another way to sign in.",
        ))?;
    Ok(HttpResponse::Ok().json(options))
}

/// `POST /login/passkey/finish?mode=factor`: the passkey's check, then the pending login is
/// finished by the factor prompt; its redirect is answered as JSON for the page's script.
pub(super) async fn finish(
    req: &HttpRequest,
    state: &AppState,
    session: &Session,
    body: &FinishBody,
) -> Result<HttpResponse, PasskeyError> {
    let pending = factor::pending(session).ok_or(PasskeyError::NotPending)?;
    let address = client_address(req, state.settings.trust_forwarded_for);
    let amr = finish_for_user(
        state,
        session,
        &pending.user_id,
        &pending.username,
        &address,
        body,
    )
    .await?;
    let done = match factor::finish(state, session, req, pending, &amr).await {
        Ok(done) => done,
        Err(error) => return Ok(error.error_response()),
    };
    let redirect = done
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("/")
        .to_owned();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "redirect": redirect })))
}

/// The request options for the pending user's passkeys; `Ok(None)` when the user has none.
pub async fn start_for_user(
    state: &AppState,
    session: &Session,
    user_id: &str,
) -> Result<Option<RequestChallengeResponse>, PasskeyError> {
    let rp = relying_party(&state.settings)?;
    let owner = user_id.to_owned();
    let rows = state
        .db
        .run(move |conn| passkeys::list_for_user(conn, &owner).map_err(PasskeyError::from))
        .await?;
    let keys: Vec<Passkey> = rows
        .iter()
        .filter_map(|row| serde_json::from_str(&row.passkey).ok())
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (mut options, authentication) = rp
        .start_discoverable_authentication()
        .map_err(|e| PasskeyError::Unexpected(anyhow::anyhow!("authentication options: {e}")))?;
    options.mediation = None;
    options.public_key.allow_credentials = keys
        .iter()
        .map(|key| AllowCredentials {
            type_: "public-key".to_owned(),
            id: key.cred_id().as_ref().to_vec().into(),
            transports: None,
        })
        .collect();
    ceremony::begin(
        session,
        Purpose::SecondFactor {
            user_id: user_id.to_owned(),
        },
        &authentication,
        unix_now(),
    )?;
    Ok(Some(options))
}

/// Checks the answer to [`start_for_user`]'s ceremony for `user_id` and records the use (the
/// passkey's counter and last use, conditional on it not having been used since the ceremony
/// was issued, the throttle's reset and a `factor_used` event) in one write. Failures count
/// against the login throttle of `username` and `address`. Returns the methods to add to the
/// login's `amr`, e.g. `["hwk", "mfa"]`.
pub async fn finish_for_user(
    state: &AppState,
    session: &Session,
    user_id: &str,
    username: &str,
    address: &str,
    body: &FinishBody,
) -> Result<[&'static str; 2], PasskeyError> {
    let now = unix_now();
    let (authentication, issued_at): (DiscoverableAuthentication, i64) = ceremony::take(
        session,
        &Purpose::SecondFactor {
            user_id: user_id.to_owned(),
        },
        now,
    )?;
    let rp = relying_party(&state.settings)?;
    // Guessing at a second factor is throttled like guessing passwords, on the same counters.
    let attempt = match state.throttle.begin(username, address).await? {
        Ok(attempt) => attempt,
        Err(throttled) => {
            return Err(PasskeyError::Throttled {
                retry_after_secs: throttled.retry_after_secs,
            });
        }
    };
    let credential_id = credential_key(body.credential.get_credential_id());
    let (lookup, owner) = (credential_id.clone(), user_id.to_owned());
    let row = state
        .db
        .run(move |conn| passkeys::find(conn, &lookup).map_err(PasskeyError::from))
        .await?
        .filter(|row| row.user_id == owner)
        .ok_or(PasskeyError::Refused)?;
    let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(anyhow::Error::from)?;
    // Verified against the one credential of this user that it names, and no other.
    let result = rp
        .finish_discoverable_authentication(
            &body.credential,
            authentication,
            &[DiscoverableKey::from(&passkey)],
        )
        .map_err(|error| {
            tracing::info!(error = %error, "a passkey second factor was refused");
            PasskeyError::Refused
        })?;
    if !result.user_verified() {
        return Err(PasskeyError::Refused);
    }
    let passkey_json = updated_json(&mut passkey, &result)?;
    let event = Event::new(Kind::FactorUsed, Outcome::Succeeded)
        .with_user(user_id, username)
        .with_address(address)
        .with_detail("passkey");
    let recorded = state
        .db
        .write(move |conn| -> Result<(), PasskeyError> {
            if !passkeys::record_use(conn, &row.id, &passkey_json, issued_at, now)? {
                return Err(PasskeyError::Unexpected(AlreadyUsed.into()));
            }
            attempt.succeeded(conn)?;
            audit::record(conn, &event)?;
            Ok(())
        })
        .await;
    match recorded {
        Ok(()) => Ok(amr_for(body.authenticator_attachment.as_deref())),
        Err(PasskeyError::Unexpected(error)) if error.is::<AlreadyUsed>() => {
            Err(PasskeyError::Refused)
        }
        Err(error) => Err(error),
    }
}
