//! The home page: the session as `useSession()` gives it, and the protected API's answer for
//! the access token (refreshed first when it has expired).

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use std::time::Instant;

use crate::gate;
use crate::oidc::OidcError;
use crate::pages::{self, HomePage};
use crate::protected_api;
use crate::refresh::{Arrival, RefreshOutcome};
use crate::routes::auth::layout;
use crate::session::{self, REFRESH_ERROR, UserSession};
use crate::state::AppState;

/// Refresh this many seconds before the access token's expiry, so it does not expire in flight.
const REFRESH_MARGIN_SECS: i64 = 10;

/// Mounts the route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home));
}

fn now() -> i64 {
    oidc_core::unix_now()
}

/// What became of the access token before the API call.
enum TokenState {
    Ready(UserSession),
    /// The provider refused the refresh token: sign in again.
    SignInAgain,
    /// The provider could not be reached: show the page without the API.
    Unavailable(UserSession),
    /// The session was ended (sign-out elsewhere, back-channel logout) meanwhile.
    Ended,
}

async fn home(state: web::Data<AppState>, session: Session, req: HttpRequest) -> HttpResponse {
    let arrived = Arrival::of(&req);
    // The gate only lets signed-in users through; a session that vanished meanwhile signs in.
    let Some(user) = session::current_user(&session, now()) else {
        return redirect(&gate::signin_redirect(&state, "/", None));
    };
    let user = match ensure_fresh_access_token(&state, &session, user, arrived).await {
        TokenState::Ready(user) => user,
        TokenState::SignInAgain => {
            return redirect(&gate::signin_redirect(&state, "/", Some(REFRESH_ERROR)));
        }
        TokenState::Unavailable(user) => {
            return render(&session, &user, None, Some(API_UNREACHABLE));
        }
        TokenState::Ended => {
            return redirect(&gate::signin_redirect(&state, "/", None));
        }
    };
    let api_url = state.settings.api_url();
    match protected_api::call(&state.oidc, &api_url, &user.access_token).await {
        Ok(answer) => {
            let json = answer
                .json
                .as_ref()
                .and_then(|json| serde_json::to_string_pretty(json).ok());
            let error = (!(200..300).contains(&answer.status)).then_some(API_REFUSED);
            render(&session, &user, Some((answer.status, json)), error)
        }
        Err(error) => {
            tracing::warn!(%error, "protected API unreachable");
            render(&session, &user, None, Some(API_UNREACHABLE))
        }
    }
}

const API_UNREACHABLE: &str =
    "The API cannot be reached right now. Please reload the page in a moment.";
const API_REFUSED: &str = "The API refused the request.";

async fn ensure_fresh_access_token(
    state: &AppState,
    session: &Session,
    mut user: UserSession,
    arrived: Instant,
) -> TokenState {
    if !user.access_token_expiring(now(), REFRESH_MARGIN_SECS) {
        return TokenState::Ready(user);
    }
    let Some(refresh_token) = user.refresh_token.clone() else {
        return mark_refresh_failed(session, user);
    };
    // The row before: a session ended since the request came in spends no refresh token.
    if !session_still_active(state, session, &user).await {
        return TokenState::Ended;
    }
    let outcome = state
        .refresh
        .refresh(&refresh_token, arrived, || async {
            let outcome = async {
                let provider = state.oidc.provider().await?;
                match state
                    .oidc
                    .refresh(&provider, &refresh_token, &user.sub)
                    .await
                {
                    Ok(tokens) => Ok(RefreshOutcome::Refreshed(Box::new(tokens))),
                    Err(error) => after_failed_refresh(error),
                }
            }
            .await;
            state.metrics.token_refresh(&outcome);
            outcome
        })
        .await;
    match outcome {
        Ok(RefreshOutcome::Refreshed(tokens)) => {
            // And after: a session ended while the refresh was in flight must not get the new
            // tokens into a cookie; they are revoked instead.
            if !session_still_active(state, session, &user).await {
                user.apply_refresh(*tokens, now());
                crate::routes::auth::revoke_refresh_token(state, &user).await;
                return TokenState::Ended;
            }
            user.apply_refresh(*tokens, now());
            if let Err(error) = session::store_user(session, &user) {
                tracing::warn!(%error, "cannot store refreshed tokens");
            }
            TokenState::Ready(user)
        }
        Ok(RefreshOutcome::Refused) => mark_refresh_failed(session, user),
        Err(error) => {
            tracing::warn!(%error, "cannot refresh the access token now");
            TokenState::Unavailable(user)
        }
    }
}

/// A refusal (`invalid_grant`: the grant is gone) or a token that fails validation means
/// signing in again; the provider being unreachable or failing itself (`temporarily_unavailable`,
/// `server_error`) means trying again later, with the session kept.
fn after_failed_refresh(error: OidcError) -> Result<RefreshOutcome, OidcError> {
    match error {
        OidcError::Refused(_) | OidcError::InvalidToken(_) if !error.is_transient() => {
            tracing::info!(%error, "refresh refused");
            Ok(RefreshOutcome::Refused)
        }
        other => Err(other),
    }
}

/// Whether the session's row still counts; if not (or it cannot be told), the user is taken
/// out of the cookie.
async fn session_still_active(state: &AppState, session: &Session, user: &UserSession) -> bool {
    match state.store.is_active(&user.session_id, now()).await {
        Ok(true) => true,
        Ok(false) => {
            session.remove(session::USER_KEY);
            false
        }
        Err(error) => {
            tracing::warn!(%error, "cannot check the session");
            false
        }
    }
}

/// Like NextAuth's `session.error = "RefreshAccessTokenError"`: the session says why, and the
/// gate sends the user to sign in again.
fn mark_refresh_failed(session: &Session, mut user: UserSession) -> TokenState {
    user.error = Some(REFRESH_ERROR.to_owned());
    if let Err(error) = session::store_user(session, &user) {
        tracing::warn!(%error, "cannot store the refresh error");
    }
    TokenState::SignInAgain
}

fn render(
    session: &Session,
    user: &UserSession,
    api: Option<(u16, Option<String>)>,
    api_error: Option<&'static str>,
) -> HttpResponse {
    let session_json = serde_json::to_string_pretty(&user.use_session_json()).unwrap_or_default();
    let (api_status, api_json) = match api {
        Some((status, json)) => (Some(status), json),
        None => (None, None),
    };
    pages::render(
        StatusCode::OK,
        "home.html",
        &HomePage {
            layout: layout(session),
            session_json,
            api_status,
            api_json,
            api_error,
        },
    )
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}

#[cfg(test)]
mod tests {
    use oidc_core::error::{ErrorCode, ErrorResponse};

    use super::*;

    fn refused(code: ErrorCode) -> OidcError {
        OidcError::Refused(ErrorResponse::new(code).with_description("from the provider"))
    }

    #[test]
    fn invalid_grant_means_sign_in_again_and_temporarily_unavailable_means_later() {
        for sign_in_again in [
            refused(ErrorCode::InvalidGrant),
            refused(ErrorCode::InvalidClient),
            OidcError::InvalidToken("refreshed ID token names another subject".into()),
        ] {
            assert!(matches!(
                after_failed_refresh(sign_in_again),
                Ok(RefreshOutcome::Refused)
            ));
        }
        for try_later in [
            refused(ErrorCode::TemporarilyUnavailable),
            refused(ErrorCode::ServerError),
            OidcError::Unavailable("connection refused".into()),
            OidcError::Misconfigured("no token endpoint".into()),
        ] {
            assert!(after_failed_refresh(try_later).is_err());
        }
    }
}
