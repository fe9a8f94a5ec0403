//! Signing in with a discoverable passkey instead of a password: `POST /login/passkey/options`
//! and `POST /login/passkey/finish`, driven by the button on the login page. Failures count
//! against the same throttle as wrong passwords.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::unix_now;
use serde::Deserialize;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, DiscoverableKey, Passkey, PublicKeyCredential,
};

use super::ceremony::{self, Purpose};
use super::second_factor;
use super::{PasskeyError, check_csrf, credential_key, parse_json, relying_party, user_handle};
use crate::identity::login::client_address;
use crate::identity::session::{self, NewLogin, Origin};
use crate::metrics::LoginOutcome;
use crate::pages::safe_next;
use crate::state::AppState;
use crate::storage::audit::{self, Event, Kind, Outcome};
use crate::storage::passkeys::{self, PasskeyRow};
use crate::storage::users::{self, User};

/// Mounts the passwordless sign-in endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/login/passkey/options", web::post().to(options))
        .route("/login/passkey/finish", web::post().to(finish));
}

/// The `amr` values of a passkey login: `hwk` for a roaming authenticator (a security key),
/// `swk` otherwise; always `mfa`, since user verification (PIN, biometrics) is required.
pub fn amr_for(authenticator_attachment: Option<&str>) -> [&'static str; 2] {
    match authenticator_attachment {
        Some("cross-platform") => ["hwk", "mfa"],
        _ => ["swk", "mfa"],
    }
}

/// Query of the sign-in endpoints: `mode=factor` is the second factor after a password.
#[derive(Deserialize)]
struct ModeQuery {
    mode: Option<String>,
}

/// Whether the request is for the second factor after a password (`mode=factor`), handled by
/// [`super::second_factor`]; any other mode is refused.
fn is_factor_mode(req: &HttpRequest) -> Result<bool, PasskeyError> {
    let query = web::Query::<ModeQuery>::from_query(req.query_string())
        .map_err(|_| PasskeyError::BadRequest("The address has invalid parameters."))?;
    match query.mode.as_deref() {
        None | Some("") => Ok(false),
        Some("factor") => Ok(true),
        Some(_) => Err(PasskeyError::BadRequest(
            "The address has invalid parameters.",
        )),
    }
}

/// `POST /login/passkey/options`: a challenge any discoverable passkey of this relying party
/// may answer (no username asked).
async fn options(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PasskeyError> {
    check_csrf(&req, &session)?;
    if is_factor_mode(&req)? {
        return second_factor::options(&state, &session).await;
    }
    let rp = relying_party(&state.settings)?;
    let (mut options, authentication) = rp
        .start_discoverable_authentication()
        .map_err(|e| PasskeyError::Unexpected(anyhow::anyhow!("authentication options: {e}")))?;
    // Asked for by a button: the browser's own dialog, not autofill of the username field.
    options.mediation = None;
    ceremony::begin(&session, Purpose::SignIn, &authentication, unix_now())?;
    Ok(HttpResponse::Ok().json(options))
}

/// Body of the finish endpoints: the authenticator's answer, as the page's script sends it.
#[derive(Deserialize)]
pub struct FinishBody {
    pub credential: PublicKeyCredential,
    /// `PublicKeyCredential.authenticatorAttachment`: `platform` or `cross-platform`.
    #[serde(default)]
    pub authenticator_attachment: Option<String>,
    /// Local path to continue to.
    #[serde(default)]
    pub next: Option<String>,
}

/// A sign-in whose ceremony had been used already (the passkey was used since it was issued).
#[derive(Debug, thiserror::Error)]
#[error("the passkey ceremony was used already")]
pub struct AlreadyUsed;

/// The throttle key of a passkey sign-in: the account's username when the credential is
/// known, else the credential id, so guessing at unknown credentials is throttled too.
fn throttle_key(found: Option<&(PasskeyRow, User)>, credential_id: &str) -> String {
    match found {
        Some((_, user)) => user.username.clone(),
        None => format!(
            "passkey:{}",
            credential_id.chars().take(96).collect::<String>()
        ),
    }
}

/// `POST /login/passkey/finish`: verifies the answer against the passkey it names, then
/// starts a session with `amr` `[hwk|swk, mfa]`; the passkey's counter and last use, the
/// throttle's reset and the audit events share the session's write.
async fn finish(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    body: web::Bytes,
) -> Result<HttpResponse, PasskeyError> {
    check_csrf(&req, &session)?;
    let body: FinishBody = parse_json(&body)?;
    if is_factor_mode(&req)? {
        return second_factor::finish(&req, &state, &session, &body).await;
    }
    let now = unix_now();
    let (authentication, issued_at): (DiscoverableAuthentication, i64) =
        ceremony::take(&session, &Purpose::SignIn, now)?;
    let rp = relying_party(&state.settings)?;
    let (handle, raw_id) = rp
        .identify_discoverable_authentication(&body.credential)
        .map_err(|_| PasskeyError::BadRequest("The passkey answer names no user."))?;
    let credential_id = credential_key(raw_id);

    let lookup = credential_id.clone();
    let found = state
        .db
        .run(
            move |conn| -> Result<Option<(PasskeyRow, User)>, PasskeyError> {
                let Some(row) = passkeys::find(conn, &lookup)? else {
                    return Ok(None);
                };
                Ok(users::find(conn, &row.user_id)?.map(|user| (row, user)))
            },
        )
        .await?;
    let address = client_address(&req, state.settings.trust_forwarded_for);
    let attempt = match state
        .throttle
        .begin(&throttle_key(found.as_ref(), &credential_id), &address)
        .await?
    {
        Ok(attempt) => attempt,
        Err(throttled) => {
            state.metrics.login(LoginOutcome::Throttled);
            return Err(PasskeyError::Throttled {
                retry_after_secs: throttled.retry_after_secs,
            });
        }
    };
    // From here on, every refusal leaves the attempt counted.
    let Some((row, user)) =
        found.filter(|(row, user)| user.is_active && user_handle(&row.user_id) == handle)
    else {
        state.metrics.login(LoginOutcome::Failed);
        return Err(PasskeyError::Refused);
    };
    let mut passkey: Passkey = serde_json::from_str(&row.passkey).map_err(anyhow::Error::from)?;
    let result = rp
        .finish_discoverable_authentication(
            &body.credential,
            authentication,
            &[DiscoverableKey::from(&passkey)],
        )
        .map_err(|error| {
            tracing::info!(error = %error, "a passkey sign-in was refused");
            state.metrics.login(LoginOutcome::Failed);
            PasskeyError::Refused
        })?;
    if !result.user_verified() {
        state.metrics.login(LoginOutcome::Failed);
        return Err(PasskeyError::Refused);
    }
    let amr = amr_for(body.authenticator_attachment.as_deref());
    let passkey_json = updated_json(&mut passkey, &result)?;
    let sign_in = Event::new(Kind::SignIn, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_address(&address)
        .with_detail(&format!("passkey {}", amr[0]));
    let factor = Event::new(Kind::FactorUsed, Outcome::Succeeded)
        .with_user(&user.id, &user.username)
        .with_address(&address)
        .with_detail("passkey");
    let (passkey_id, user_id) = (row.id.clone(), user.id.clone());
    let login = NewLogin {
        user_id: user.id.clone(),
        auth_time: now,
        amr: amr.iter().map(|m| (*m).to_owned()).collect(),
        origin: Origin::of(&req, address),
    };
    let logged_in = session::log_in_with(&state, &session, login, move |conn| {
        // Declined (no session) when the passkey was used since the ceremony was issued.
        if !passkeys::record_use(conn, &passkey_id, &passkey_json, issued_at, now)? {
            return Ok(None);
        }
        attempt.succeeded(conn)?;
        users::touch_last_login(conn, &user_id)?;
        audit::record(conn, &sign_in)?;
        audit::record(conn, &factor)?;
        Ok(Some(()))
    })
    .await?;
    if logged_in.is_none() {
        state.metrics.login(LoginOutcome::Failed);
        return Err(PasskeyError::Refused);
    }
    state.metrics.login(LoginOutcome::Succeeded);
    tracing::info!(user = %user.username, "signed in with a passkey");
    let next = safe_next(body.next.as_deref());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "redirect": next })))
}

/// The passkey as stored after `result` (its counter moved on).
pub fn updated_json(
    passkey: &mut Passkey,
    result: &AuthenticationResult,
) -> Result<String, PasskeyError> {
    passkey.update_credential(result);
    Ok(serde_json::to_string(passkey).map_err(anyhow::Error::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_keys_are_hardware_and_the_rest_software() {
        assert_eq!(amr_for(Some("cross-platform")), ["hwk", "mfa"]);
        assert_eq!(amr_for(Some("platform")), ["swk", "mfa"]);
        assert_eq!(amr_for(None), ["swk", "mfa"]);
        assert_eq!(amr_for(Some("anything")), ["swk", "mfa"]);
    }
}
