//! The authorization endpoint (RFC 6749 §4.1.1, §4.1.2; RFC 7636; RFC 9207; OpenID Connect
//! Core 1.0 §3.1.2) and the consent decision.
//!
//! Validation follows RFC 6749 §4.1.2.1: the client first, then the redirect URI (exact byte
//! match), and only then everything else, answered by redirect with `state` and `iss`. Before
//! the redirect URI is known to be registered, errors are shown as a page: redirecting to an
//! unvalidated URI would make this endpoint an open redirector.
//!
//! No pending request is kept on the server: when a login is needed, the user is sent to the
//! login page with the request itself as `next`. A forced login (`prompt=login`, `max_age`) is
//! remembered in the session by a digest of the request, and the login marks it done, so the
//! request comes back and is satisfied exactly once; nothing in the request can claim that a
//! login was made. The consent form carries the request in hidden fields and is validated
//! again in full when posted, so several tabs can be in flight at once.

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::error::{AuthorizationError, AuthorizationResponse, ErrorCode};
use oidc_core::pkce::{CodeChallenge, CodeChallengeMethod};
use oidc_core::types::{AuthorizationCode, RedirectUri, Scopes, State};
use oidc_core::unix_now;
use serde::Serialize;

use crate::identity::session::{self, Login, current_login};
use crate::pages::{self, csrf};
use crate::state::AppState;
use crate::storage::grants::{self, AuthorizationCodeRow, Grant};
use crate::storage::{StorageError, new_id};

use super::clients::{self, GrantType, RegisteredClient};
use super::id_token;
use super::params::{Params, ParamsError};
use super::scopes;

/// Longest `state` and `nonce` accepted: they travel through the login redirect's URL.
const MAX_VALUE_LEN: usize = 1024;

/// The `prompt` values this provider acts on (OpenID Connect Core 1.0 §3.1.2.1).
#[derive(Debug, Clone, Copy, Default)]
struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

/// An authorization request whose client and redirect URI are valid and whose other
/// parameters have been checked.
#[derive(Debug)]
struct AuthorizationRequest {
    client: RegisteredClient,
    redirect_uri: String,
    /// Whether the client sent `redirect_uri` (it is echoed in the login and consent round trips).
    redirect_uri_sent: bool,
    state: Option<String>,
    scope: Scopes,
    nonce: Option<String>,
    code_challenge: String,
    prompt: Prompt,
    max_age: Option<i64>,
    login_hint: Option<String>,
    id_token_hint_subject: Option<String>,
}

/// Why a request stops before a code is issued.
enum Stop {
    /// Shown at the provider: the redirect URI cannot be trusted (or the request is unusable).
    Page(StatusCode, &'static str, String),
    /// Sent back to the client by redirect.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: ErrorCode,
        description: String,
    },
    Unexpected(anyhow::Error),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Self {
        Self::Unexpected(e.into())
    }
}

impl From<diesel::result::Error> for Stop {
    fn from(e: diesel::result::Error) -> Self {
        Self::Unexpected(e.into())
    }
}

impl Stop {
    fn page(message: impl Into<String>) -> Self {
        Self::Page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            message.into(),
        )
    }

    fn into_response(self, state: &AppState) -> HttpResponse {
        match self {
            Stop::Page(status, title, message) => pages::error_page(status, title, &message),
            Stop::Redirect {
                redirect_uri,
                state: client_state,
                error,
                description,
            } => match (RedirectUri::parse(&redirect_uri), state.issuer()) {
                (Ok(uri), Ok(iss)) => {
                    let url = AuthorizationError::new(error, client_state.map(State::new), iss)
                        .with_description(description)
                        .redirect_url(&uri);
                    redirect(url.as_str())
                }
                _ => pages::error_page(
                    StatusCode::BAD_REQUEST,
                    "Invalid sign-in request",
                    "The application's redirect address is not usable.",
                ),
            },
            Stop::Unexpected(e) => {
                tracing::error!(error = ?e, "authorization request failed");
                pages::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The sign-in could not be completed. Please try again later.",
                )
            }
        }
    }
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

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
        let request = validate(&state, params).await?;
        decide(&state, &session, request).await
    }
    .await;
    result.unwrap_or_else(|stop| stop.into_response(&state))
}

/// Checks the client, then the redirect URI, then every other parameter.
async fn validate(state: &AppState, mut params: Params) -> Result<AuthorizationRequest, Stop> {
    let client_id = params.take("client_id").ok_or_else(|| {
        Stop::page("The request does not name an application (client_id is missing).")
    })?;
    let client = {
        let client_id = client_id.clone();
        state
            .db
            .run(move |conn| Ok::<_, Stop>(clients::find_client(conn, &client_id)?))
            .await?
    }
    .ok_or_else(|| Stop::page("The application is not registered here (unknown client_id)."))?;

    let redirect_uri_sent = params.contains("redirect_uri");
    let redirect_uri = match params.take("redirect_uri") {
        Some(uri) if client.has_redirect_uri(&uri) => uri,
        Some(_) => {
            return Err(Stop::page(
                "The redirect address is not registered for this application (redirect_uri must match exactly).",
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(Stop::page(
                "The request does not say where to return (redirect_uri is missing and several are registered).",
            ));
        }
    };
    let state_param = params.take("state");
    // From here on, errors go back to the client.
    let fail = |error: ErrorCode, description: &str| Stop::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state_param.clone(),
        error,
        description: description.to_owned(),
    };
    if state_param
        .as_ref()
        .is_some_and(|s| s.len() > MAX_VALUE_LEN)
    {
        return Err(Stop::page("The state parameter is too long."));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    match params.take("response_type").as_deref() {
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if params.contains("request") {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains("request_uri") {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    if params.take("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    let scope = params.take("scope").ok_or_else(|| {
        fail(
            ErrorCode::InvalidScope,
            "scope is missing (openid is required)",
        )
    })?;
    let scope =
        Scopes::parse(&scope).map_err(|_| fail(ErrorCode::InvalidScope, "scope is malformed"))?;
    if !scope.contains("openid") {
        return Err(fail(
            ErrorCode::InvalidScope,
            "the openid scope is required",
        ));
    }
    if let Some(unknown) = scopes::first_unsupported(&scope) {
        return Err(fail(
            ErrorCode::InvalidScope,
            &format!("the scope {unknown} is not supported"),
        ));
    }
    let code_challenge = params.take("code_challenge").ok_or_else(|| {
        fail(
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE with S256)",
        )
    })?;
    match params.take("code_challenge_method") {
        Some(method) if CodeChallengeMethod::parse(&method).is_ok() => {}
        _ => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
    }
    let code_challenge = CodeChallenge::parse(&code_challenge)
        .map_err(|_| fail(ErrorCode::InvalidRequest, "code_challenge is malformed"))?
        .as_str()
        .to_owned();
    let nonce = params.take("nonce");
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_VALUE_LEN) {
        return Err(fail(ErrorCode::InvalidRequest, "nonce is too long"));
    }
    let mut prompt = Prompt::default();
    for value in params.take("prompt").unwrap_or_default().split(' ') {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // `select_account` and unknown values: there is one account per session.
            _ => {}
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    let max_age = params
        .take("max_age")
        .map(|v| v.parse::<i64>().ok().filter(|v| *v >= 0))
        .map(|v| {
            v.ok_or_else(|| {
                fail(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                )
            })
        })
        .transpose()?;
    let id_token_hint_subject = match params.take("id_token_hint") {
        Some(hint) => Some(
            id_token::verify_hint(state, &hint, Some(&client.id))
                .await
                .map_err(|_| {
                    fail(
                        ErrorCode::InvalidRequest,
                        "id_token_hint is not a valid ID token of this provider",
                    )
                })?
                .sub
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_sent,
        state: state_param,
        scope,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint: params.take("login_hint"),
        id_token_hint_subject,
    })
}

impl AuthorizationRequest {
    /// The request as parameters again, for the login round trip and the consent form.
    fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("client_id", self.client.id.clone()),
            ("response_type", "code".to_owned()),
            ("scope", self.scope.to_string()),
            ("code_challenge", self.code_challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if self.redirect_uri_sent {
            out.push(("redirect_uri", self.redirect_uri.clone()));
        }
        if let Some(state) = &self.state {
            out.push(("state", state.clone()));
        }
        if let Some(nonce) = &self.nonce {
            out.push(("nonce", nonce.clone()));
        }
        match (self.prompt.login, self.prompt.consent) {
            (true, true) => out.push(("prompt", "login consent".to_owned())),
            (true, false) => out.push(("prompt", "login".to_owned())),
            (false, true) => out.push(("prompt", "consent".to_owned())),
            (false, false) => {}
        }
        if let Some(max_age) = self.max_age {
            out.push(("max_age", max_age.to_string()));
        }
        if let Some(hint) = &self.login_hint {
            out.push(("login_hint", hint.clone()));
        }
        out
    }

    /// Identifies the request across the login round trip and the consent form (both carry
    /// [`Self::to_params`]), for the forced logins remembered in the session.
    fn digest(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(encode(&self.to_params()).as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
    }

    /// Whether `login` is not enough for this request by itself: a new login is asked for, or
    /// the last one is older than `max_age` at `at`.
    fn needs_new_login(&self, login: &Login, at: i64) -> bool {
        self.prompt.login || self.max_age.is_some_and(|max| at - login.auth_time > max)
    }

    /// Whether `login` satisfies this request at `at`, counting a forced login made for it.
    fn satisfied_by(&self, session: &Session, login: &Login, at: i64) -> bool {
        !self.needs_new_login(login, at) || session::login_done_for(session, &self.digest())
    }

    fn fail(&self, error: ErrorCode, description: &str) -> Stop {
        Stop::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
        }
    }
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
    // One write transaction looks at the user and the consent and, on the usual path of a
    // signed-in user who agreed before, stores the code: one trip to the database.
    let check = ConsentCheck {
        hint_subject: request.id_token_hint_subject.clone(),
        force_consent: request.prompt.consent,
        skip_authorization: request.client.skip_authorization,
    };
    let issued = issue_code(state, &request, &login, Some(check)).await?;
    match issued {
        Issue::Issued(location) => {
            session::take_login_for(session, &request.digest());
            Ok(redirect(&location))
        }
        Issue::NoUser => {
            // The account is gone or disabled: the session no longer means anything.
            session::log_out(state, session).await?;
            login_redirect(&request, session)
        }
        // Someone else is signed in than the application expects: a new login is needed.
        Issue::WrongUser => login_redirect(&request, session),
        Issue::NeedsConsent(_) if request.prompt.none => Err(request.fail(
            ErrorCode::ConsentRequired,
            "the user has not authorized this application",
        )),
        Issue::NeedsConsent(username) => Ok(consent_page(state, session, &request, &username)),
    }
}

/// Sends the user to the login page with the request as `next`. When the login must be a new
/// one (`prompt=login`, `max_age`), the session remembers the request, so the login made now
/// satisfies it when it comes back and the user is not asked again.
fn login_redirect(request: &AuthorizationRequest, session: &Session) -> Result<HttpResponse, Stop> {
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

fn encode(params: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(params).unwrap_or_default()
}

#[derive(Serialize)]
struct ConsentPage<'a> {
    client_name: &'a str,
    username: &'a str,
    scopes: Vec<ScopeLine<'a>>,
    fields: Vec<(&'static str, String)>,
    csrf_token: String,
    redirect_host: String,
}

#[derive(Serialize)]
struct ScopeLine<'a> {
    name: &'a str,
    description: &'static str,
}

fn consent_page(
    state: &AppState,
    session: &Session,
    request: &AuthorizationRequest,
    username: &str,
) -> HttpResponse {
    let context = ConsentPage {
        client_name: &request.client.name,
        username,
        scopes: request
            .scope
            .iter()
            .map(|s| ScopeLine {
                name: s.as_str(),
                description: scopes::describe(s.as_str()),
            })
            .collect(),
        fields: request.to_params(),
        csrf_token: csrf::token(session),
        redirect_host: url::Url::parse(&request.redirect_uri)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
    };
    let mut response = pages::render(&state.templates, "oauth/consent.html", &context);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `POST /oauth/authorize/decision`: the consent form's Authorize or Cancel.
pub async fn decision(
    req: HttpRequest,
    payload: web::Payload,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let result = async {
        let mut params = Params::from_body(&req, payload)
            .await
            .map_err(|e| Stop::page(format!("The form is malformed: {e}.")))?;
        let csrf_ok = params
            .take("csrf_token")
            .is_some_and(|t| csrf::verify(&session, &t));
        if !csrf_ok {
            return Err(Stop::Page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form could not be verified. Go back to the application and sign in again."
                    .to_owned(),
            ));
        }
        let approve = match params.take("decision").as_deref() {
            Some("authorize") => true,
            Some("cancel") => false,
            _ => return Err(Stop::page("The form did not say whether to authorize.")),
        };
        let request = validate(&state, params).await?;
        // The form can be posted by hand: a forced login is checked here as on the way in.
        let Some(login) = current_login(&state, &session)
            .await?
            .filter(|login| request.satisfied_by(&session, login, unix_now()))
        else {
            return login_redirect(&request, &session);
        };
        if !approve {
            return Err(request.fail(ErrorCode::AccessDenied, "the user denied the request"));
        }
        match issue_code(&state, &request, &login, None).await? {
            Issue::Issued(location) => {
                session::take_login_for(&session, &request.digest());
                Ok(redirect(&location))
            }
            Issue::NoUser => {
                session::log_out(&state, &session).await?;
                login_redirect(&request, &session)
            }
            _ => Err(Stop::Unexpected(anyhow::anyhow!(
                "consent given but no code issued"
            ))),
        }
    }
    .await;
    result.unwrap_or_else(|stop| stop.into_response(&state))
}

/// What [`issue_code`] checks before issuing on its own (no consent form was just submitted).
struct ConsentCheck {
    hint_subject: Option<String>,
    force_consent: bool,
    skip_authorization: bool,
}

/// What [`issue_code`] did.
enum Issue {
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
async fn issue_code(
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
    };
    let row = AuthorizationCodeRow {
        code_hash: code.hash().into_string(),
        grant_id: grant.id.clone(),
        client_id: request.client.id.clone(),
        user_id,
        redirect_uri: request.redirect_uri.clone(),
        scope: grant.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        auth_time,
        expires_at: at + state.settings.code_ttl_secs,
        used_at: None,
        created_at: at,
    };
    let scope = request.scope.clone();
    let outcome = state
        .db
        .write(move |conn| -> Result<Option<Issue>, Stop> {
            let previous = grants::find_consent(conn, &grant.user_id, &grant.client_id)?;
            let previous = previous.map(|c| c.scope).unwrap_or_default();
            match check {
                Some(check) => {
                    let user = grants::find_claims_user(conn, &grant.user_id)?;
                    let Some(user) = user.filter(|u| u.is_active) else {
                        return Ok(Some(Issue::NoUser));
                    };
                    if check.hint_subject.is_some_and(|s| s != user.subject) {
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
                    let user = grants::find_claims_user(conn, &grant.user_id)?;
                    if !user.is_some_and(|u| u.is_active) {
                        return Ok(Some(Issue::NoUser));
                    }
                    // Remember everything agreed to so far, so a narrower request asks nothing.
                    let mut agreed = scope;
                    for s in previous.iter() {
                        agreed.insert(s.clone());
                    }
                    grants::upsert_consent(conn, &grant.user_id, &grant.client_id, &agreed, at)?;
                }
            }
            grants::insert_grant_with_code(conn, grant, row)?;
            Ok(None)
        })
        .await?;
    if let Some(outcome) = outcome {
        return Ok(outcome);
    }
    let uri = RedirectUri::parse(&request.redirect_uri).map_err(|e| Stop::Unexpected(e.into()))?;
    let iss = state
        .issuer()
        .map_err(|e| Stop::Unexpected(anyhow::anyhow!("{e}")))?;
    let client_state = request.state.clone().map(State::new);
    let url = AuthorizationResponse {
        code: &code,
        state: client_state.as_ref(),
        iss: &iss,
    }
    .redirect_url(&uri);
    Ok(Issue::Issued(url.into()))
}
