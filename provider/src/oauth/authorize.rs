//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2; RFC 7636; RFC 9207; OpenID Connect
//! Core 1.0 §3.1.2): a valid request (see [`AuthorizationRequest`]) leads to the login page, the
//! consent page or a code.
//!
//! No pending request is kept on the server: when a login is needed, the user is sent to the
//! login page with the request itself as `next`. A forced login (`prompt=login`, `max_age`) is
//! remembered in the session by a digest of the request, and the login marks it done, so the
//! request comes back and is satisfied exactly once; nothing in the request can claim that a
//! login was made.

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::error::{AuthorizationResponse, ErrorCode};
use oidc_core::types::{AuthorizationCode, Subject};
use oidc_core::unix_now;

use crate::identity::factor::{self, PendingLogin};
use crate::identity::session::{self, Login, current_login};
use crate::state::AppState;
use crate::storage::audit;
use crate::storage::grants::{self, AuthorizationCodeRow, Grant};
use crate::storage::{new_id, totp, users};

use super::authorization_request::{AuthorizationRequest, SecondFactor, Stop, encode, redirect};
use super::consent;
use super::params::{Params, ParamsError};

/// `GET /oauth/authorize`.
pub async fn authorize_get(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = Params::from_query(&req);
    authorize(params, session, state).await
}

/// `POST /oauth/authorize` (OpenID Connect Core 1.0 §3.1.2.1: form-encoded, same parameters).
pub async fn authorize_post(
    req: HttpRequest,
    payload: web::Payload,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = Params::from_body(&req, payload).await;
    authorize(params, session, state).await
}

async fn authorize(
    params: Result<Params, ParamsError>,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = async {
        let params = params.map_err(|e| Stop::page(format!("The request is malformed: {e}.")))?;
        let request = AuthorizationRequest::read(&state, params).await?;
        decide(&state, &session, request).await
    }
    .await;
    result.unwrap_or_else(|stop| stop.into_response(&state))
}

/// What to do with a valid request: log in, ask for consent, or issue a code.
async fn decide(
    state: &AppState,
    session: &Session,
    request: AuthorizationRequest,
) -> Result<HttpResponse, Stop> {
    let started = unix_now();
    let Some(login) = current_login(state, session)
        .await?
        .filter(|login| request.satisfied_by(session, login, started))
    else {
        return login_redirect(&request, session);
    };
    if let Some(response) = require_second_factor(state, session, &request, &login).await? {
        return Ok(response);
    }
    // One write transaction looks at the user and the consent and, on the usual path of a
    // signed-in user who agreed before, stores the code: one trip to the database.
    let check = ConsentCheck {
        hint_subject: request.id_token_hint_subject.clone(),
        force_consent: request.prompt.consent,
        skip_authorization: request.client.skip_authorization,
    };
    let issued = issue_code(state, &request, &login, Some(check)).await?;
    match issued {
        Issue::NeedsConsent(_) if request.prompt.none => Err(request.fail(
            ErrorCode::ConsentRequired,
            "the user has not authorized this application",
        )),
        Issue::NeedsConsent(username) => {
            Ok(consent::consent_page(state, session, &request, &username))
        }
        issued => finish(state, session, &request, issued).await,
    }
}

/// Answers what [`issue_code`] did when it did not ask for consent: the redirect with the code,
/// or a new login.
pub(super) async fn finish(
    state: &AppState,
    session: &Session,
    request: &AuthorizationRequest,
    issued: Issue,
) -> Result<HttpResponse, Stop> {
    match issued {
        Issue::Issued(location) => {
            session::take_login_for(session, &request.digest());
            Ok(redirect(&location))
        }
        Issue::NoUser => {
            // The account is gone or disabled: the session no longer means anything.
            session::log_out(state, session).await?;
            login_redirect(request, session)
        }
        // Someone else is signed in than the application expects: a new login is needed.
        Issue::WrongUser => login_redirect(request, session),
        Issue::NeedsConsent(_) => Err(Stop::Unexpected(anyhow::anyhow!(
            "consent given but no code issued"
        ))),
    }
}

/// Sends the user to the login page with the request as `next`. When the login must be a new
/// one (`prompt=login`, `max_age`), the session remembers the request, so the login made now
/// satisfies it when it comes back and the user is not asked again.
pub(super) fn login_redirect(
    request: &AuthorizationRequest,
    session: &Session,
) -> Result<HttpResponse, Stop> {
    if request.prompt.none {
        return Err(request.fail(ErrorCode::LoginRequired, "the user is not signed in"));
    }
    if request.prompt.login || request.max_age.is_some() {
        session::expect_login_for(session, &request.digest())
            .map_err(|e| Stop::Unexpected(e.into()))?;
    }
    let next = format!("/oauth/authorize?{}", encode(&request.to_params()));
    let mut login = vec![("next", next)];
    if let Some(hint) = &request.login_hint {
        login.push(("login_hint", hint.clone()));
    }
    Ok(redirect(&format!("/login?{}", encode(&login))))
}

/// Stops a request that needs a second factor the login lacks (`acr_values`, a client's
/// `requires_mfa`; see [`AuthorizationRequest::second_factor`]). A user with a factor is sent to
/// the factor page (not the password again) and comes back here; a user without one, when the
/// factor is required, is sent back to the client with `access_denied`: nothing here could
/// satisfy the request, and the description says where a factor is set up.
pub(super) async fn require_second_factor(
    state: &AppState,
    session: &Session,
    request: &AuthorizationRequest,
    login: &Login,
) -> Result<Option<HttpResponse>, Stop> {
    let need = request.second_factor();
    if need == SecondFactor::Optional || factor::is_mfa(&login.amr) {
        return Ok(None);
    }
    let user_id = login.user_id.clone();
    let (user, factors) = state
        .db
        .run(move |conn| {
            let user = users::find(conn, &user_id)?;
            let factors = totp::factors(conn, &user_id)?;
            Ok::<_, Stop>((user, factors))
        })
        .await?;
    // A missing or disabled user is answered by issuing, which ends the session.
    let Some(user) = user.filter(|u| u.is_active) else {
        return Ok(None);
    };
    if !factors.any() {
        if need == SecondFactor::Preferred {
            return Ok(None);
        }
        let description = format!(
            "this application requires a second factor, and the user has none; it can be set up at {}",
            state
                .issuer()
                .map_err(Stop::Unexpected)?
                .join_path("account/security")
                .map_err(|e| Stop::Unexpected(e.into()))?
        );
        return Err(request.fail(ErrorCode::AccessDenied, &description));
    }
    if request.prompt.none {
        return Err(request.fail(
            ErrorCode::InteractionRequired,
            "a second factor is required",
        ));
    }
    let next = format!("/oauth/authorize?{}", encode(&request.to_params()));
    let pending = PendingLogin::step_up(login, &user.username, &next);
    factor::ask_for_factor(session, &pending)
        .map(Some)
        .map_err(|e| Stop::Unexpected(e.into()))
}

/// What [`issue_code`] checks before issuing on its own (no consent form was just submitted).
pub(super) struct ConsentCheck {
    hint_subject: Option<Subject>,
    force_consent: bool,
    skip_authorization: bool,
}

/// What [`issue_code`] did.
pub(super) enum Issue {
    /// The code was stored: the redirect URL back to the client.
    Issued(String),
    /// The session's user no longer exists or is disabled.
    NoUser,
    /// The signed-in user is not the one of `id_token_hint`.
    WrongUser,
    /// The user must agree first (their username, for the page).
    NeedsConsent(String),
}

/// Stores a grant and its code and redirects to the client. With a `check`, only when the user
/// agreed before (or the client skips consent); without, the consent was just given and is
/// remembered.
pub(super) async fn issue_code(
    state: &AppState,
    request: &AuthorizationRequest,
    login: &Login,
    check: Option<ConsentCheck>,
) -> Result<Issue, Stop> {
    let user_id = login.user_id.clone();
    let auth_time = login.auth_time;
    let at = unix_now();
    let code = AuthorizationCode::generate();
    let grant = Grant {
        id: new_id(),
        user_id: user_id.clone(),
        client_id: request.client.id.clone(),
        scope: request.scope.clone(),
        auth_time,
        created_at: at,
        revoked_at: None,
        session_id: Some(login.session_id.clone()),
        amr: login.amr.join(" "),
        acr: factor::acr_for(&login.amr).to_owned(),
    };
    let row = AuthorizationCodeRow {
        code_hash: code.hash().into_string(),
        grant_id: grant.id.clone(),
        client_id: request.client.id.clone(),
        user_id,
        redirect_uri: request.redirect_uri.as_str().to_owned(),
        scope: grant.scope.clone(),
        nonce: request.nonce.as_ref().map(|n| n.as_str().to_owned()),
        code_challenge: request.code_challenge.as_str().to_owned(),
        auth_time,
        expires_at: at + state.settings.code_ttl_secs,
        used_at: None,
        created_at: at,
        amr: grant.amr.clone(),
        acr: grant.acr.clone(),
    };
    let scope = request.scope.clone();
    let outcome = state
        .db
        .write(move |conn| -> Result<Option<Issue>, Stop> {
            // The user's row is locked first (on PostgreSQL): a deactivation at the same time
            // comes wholly before or after. Shared to issue a code, so flows of one user run
            // side by side; exclusive to remember a consent, so two consents merge in turn.
            let user = if check.is_some() {
                grants::find_claims_user_for_share(conn, &grant.user_id)?
            } else {
                grants::find_claims_user_for_update(conn, &grant.user_id)?
            };
            let previous = grants::find_consent(conn, &grant.user_id, &grant.client_id)?;
            let previous = previous.map(|c| c.scope).unwrap_or_default();
            let mut remember = None;
            match check {
                Some(check) => {
                    let Some(user) = user.filter(|u| u.is_active) else {
                        return Ok(Some(Issue::NoUser));
                    };
                    if check
                        .hint_subject
                        .is_some_and(|s| s.as_str() != user.subject)
                    {
                        return Ok(Some(Issue::WrongUser));
                    }
                    let consented = scope.is_subset(&previous);
                    if check.force_consent || (!check.skip_authorization && !consented) {
                        return Ok(Some(Issue::NeedsConsent(user.username)));
                    }
                }
                None => {
                    // The consent form may be posted long after it was shown: the account must
                    // still be usable, or nothing is issued or remembered.
                    let Some(user) = user.filter(|u| u.is_active) else {
                        return Ok(Some(Issue::NoUser));
                    };
                    // Remember everything agreed to so far, so a narrower request asks nothing.
                    let mut agreed = scope;
                    for s in previous.iter() {
                        agreed.insert(s.clone());
                    }
                    remember = Some((agreed, user.username));
                }
            }
            // A session ended meanwhile (logout elsewhere) takes no new grant with it.
            if let Some(sid) = &grant.session_id
                && !crate::storage::sessions::hold(conn, sid)?
            {
                return Ok(Some(Issue::NoUser));
            }
            if let Some((agreed, username)) = remember {
                grants::upsert_consent(conn, &grant.user_id, &grant.client_id, &agreed, at)?;
                let event =
                    audit::Event::new(audit::Kind::ConsentGranted, audit::Outcome::Succeeded)
                        .with_user(&grant.user_id, &username)
                        .with_client(&grant.client_id)
                        .with_detail(&agreed.to_string());
                audit::record_at(conn, &event, at)?;
            }
            grants::insert_grant_with_code(conn, grant, row)?;
            Ok(None)
        })
        .await?;
    if let Some(outcome) = outcome {
        return Ok(outcome);
    }
    let iss = state.issuer().map_err(Stop::Unexpected)?;
    let url = AuthorizationResponse {
        code: &code,
        state: request.state.as_ref(),
        iss: &iss,
    }
    .redirect_url(&request.redirect_uri);
    Ok(Issue::Issued(url.into()))
}
