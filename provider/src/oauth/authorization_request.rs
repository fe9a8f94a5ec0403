//! An authorization request (RFC 6749 §4.1.1; RFC 7636; OpenID Connect Core 1.0 §3.1.2.1), read
//! once into oidc-core types, and why a request stops before a code is issued.
//!
//! Reading follows RFC 6749 §4.1.2.1: the client first, then the redirect URI (exact byte
//! match), and only then everything else, answered by redirect with `state` and `iss`. Before
//! the redirect URI is known to be registered, errors are shown as a page: redirecting to an
//! unvalidated URI would make this endpoint an open redirector.

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use oidc_core::error::{AuthorizationError, ErrorCode};
use oidc_core::pkce::{CodeChallenge, CodeChallengeMethod};
use oidc_core::types::{Nonce, RedirectUri, Scopes, State, Subject};

use crate::identity::factor::{ACR_MFA, ACR_PASSWORD};
use crate::identity::session::{self, Login};
use crate::pages;
use crate::state::AppState;
use crate::storage::StorageError;

use super::clients::{self, GrantType, RegisteredClient};
use super::id_token;
use super::params::Params;
use super::scopes;

/// Longest `state` and `nonce` accepted: they travel through the login redirect's URL.
const MAX_VALUE_LEN: usize = 1024;

/// The `prompt` values this provider acts on (OpenID Connect Core 1.0 §3.1.2.1).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// An authorization request whose client and redirect URI are valid and whose other
/// parameters have been checked.
#[derive(Debug)]
pub(super) struct AuthorizationRequest {
    pub client: RegisteredClient,
    pub redirect_uri: RedirectUri,
    /// Whether the client sent `redirect_uri` (it is echoed in the login and consent round trips).
    redirect_uri_sent: bool,
    pub state: Option<State>,
    pub scope: Scopes,
    pub nonce: Option<Nonce>,
    pub code_challenge: CodeChallenge,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint_subject: Option<Subject>,
    /// `acr_values` as sent (space separated, most preferred first), echoed in round trips.
    pub acr_values: Option<String>,
}

/// What a request needs of the second factor (see [`AuthorizationRequest::second_factor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecondFactor {
    /// A password is enough.
    Optional,
    /// `mfa` is preferred to `pwd`: asked for when the user has a factor, else skipped.
    Preferred,
    /// Only `mfa` will do: `acr_values` names it and not `pwd`, or the client requires it.
    Required,
}

/// Why a request stops before a code is issued.
pub(super) enum Stop {
    /// Shown at the provider: the redirect URI cannot be trusted (or the request is unusable).
    Page(StatusCode, &'static str, String),
    /// Sent back to the client by redirect.
    Redirect {
        redirect_uri: Box<RedirectUri>,
        state: Option<State>,
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
    pub fn page(message: impl Into<String>) -> Self {
        Self::Page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in request",
            message.into(),
        )
    }

    pub fn into_response(self, state: &AppState) -> HttpResponse {
        match self {
            Stop::Page(status, title, message) => pages::error_page(status, title, &message),
            Stop::Redirect {
                redirect_uri,
                state: client_state,
                error,
                description,
            } => match state.issuer() {
                Ok(iss) => {
                    let url = AuthorizationError::new(error, client_state, iss)
                        .with_description(description)
                        .redirect_url(&redirect_uri);
                    redirect(url.as_str())
                }
                Err(e) => Stop::Unexpected(e).into_response(state),
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

/// A `302` to `location` that no cache keeps.
pub(super) fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Where errors go once the redirect URI is trusted: back to the client, with its `state`.
struct ErrorRedirect {
    redirect_uri: RedirectUri,
    state: Option<State>,
}

impl ErrorRedirect {
    fn fail(&self, error: ErrorCode, description: &str) -> Stop {
        Stop::Redirect {
            redirect_uri: Box::new(self.redirect_uri.clone()),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
        }
    }
}

impl AuthorizationRequest {
    /// Checks the client, then the redirect URI, then every other parameter.
    pub async fn read(state: &AppState, mut params: Params) -> Result<Self, Stop> {
        let client_id = params.take("client_id").ok_or_else(|| {
            Stop::page("The request does not name an application (client_id is missing).")
        })?;
        let client = state
            .db
            .run(move |conn| Ok::<_, Stop>(clients::find_client(conn, &client_id)?))
            .await?
            .ok_or_else(|| {
                Stop::page("The application is not registered here (unknown client_id).")
            })?;
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
        let redirect_uri = RedirectUri::parse(&redirect_uri)
            .map_err(|_| Stop::page("The application's redirect address is not usable."))?;
        let client_state = params.take("state");
        if client_state
            .as_ref()
            .is_some_and(|s| s.len() > MAX_VALUE_LEN)
        {
            return Err(Stop::page("The state parameter is too long."));
        }
        // From here on, errors go back to the client. `state` is returned as it came.
        let back = ErrorRedirect {
            redirect_uri,
            state: client_state.map(State::new),
        };
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return Err(back.fail(
                ErrorCode::UnauthorizedClient,
                "this client may not use the authorization code grant",
            ));
        }
        check_response(&mut params).map_err(|(error, d)| back.fail(error, d))?;
        let scope = read_scope(params.take("scope"), state.settings.offline_access)
            .map_err(|(e, d)| back.fail(e, &d))?;
        let code_challenge = read_code_challenge(&mut params).map_err(|(e, d)| back.fail(e, d))?;
        let nonce = params.take("nonce");
        if nonce.as_ref().is_some_and(|n| n.len() > MAX_VALUE_LEN) {
            return Err(back.fail(ErrorCode::InvalidRequest, "nonce is too long"));
        }
        let prompt = read_prompt(params.take("prompt")).map_err(|(e, d)| back.fail(e, d))?;
        let max_age = params
            .take("max_age")
            .map(|v| v.parse::<i64>().ok().filter(|v| *v >= 0))
            .map(|v| {
                v.ok_or_else(|| {
                    back.fail(
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
                        back.fail(
                            ErrorCode::InvalidRequest,
                            "id_token_hint is not a valid ID token of this provider",
                        )
                    })?
                    .sub,
            ),
            None => None,
        };
        Ok(Self {
            client,
            redirect_uri: back.redirect_uri,
            redirect_uri_sent,
            state: back.state,
            scope,
            nonce: nonce.map(Nonce::new),
            code_challenge,
            prompt,
            max_age,
            login_hint: params.take("login_hint"),
            id_token_hint_subject,
            acr_values: params
                .take("acr_values")
                .filter(|v| !v.trim().is_empty() && v.len() <= MAX_VALUE_LEN),
        })
    }

    /// The request as parameters again, for the login round trip and the consent form.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("client_id", self.client.id.clone()),
            ("response_type", "code".to_owned()),
            ("scope", self.scope.to_string()),
            ("code_challenge", self.code_challenge.as_str().to_owned()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if self.redirect_uri_sent {
            out.push(("redirect_uri", self.redirect_uri.as_str().to_owned()));
        }
        if let Some(state) = &self.state {
            out.push(("state", state.as_str().to_owned()));
        }
        if let Some(nonce) = &self.nonce {
            out.push(("nonce", nonce.as_str().to_owned()));
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
        if let Some(acr_values) = &self.acr_values {
            out.push(("acr_values", acr_values.clone()));
        }
        out
    }

    /// Whether this request needs a second factor. `acr_values` lists the acceptable values
    /// most preferred first (OpenID Connect Core 1.0 §3.1.2.1); unknown values are ignored. A
    /// client registered with `requires_mfa` always needs one.
    pub fn second_factor(&self) -> SecondFactor {
        if self.client.requires_mfa {
            return SecondFactor::Required;
        }
        let values = self.acr_values.as_deref().unwrap_or_default();
        let mut known = values
            .split_whitespace()
            .filter(|v| *v == ACR_MFA || *v == ACR_PASSWORD);
        match (known.next(), known.next()) {
            (Some(ACR_MFA), None) => SecondFactor::Required,
            (Some(ACR_MFA), Some(_)) => SecondFactor::Preferred,
            _ => SecondFactor::Optional,
        }
    }

    /// Identifies the request across the login round trip and the consent form (both carry
    /// [`Self::to_params`]), for the forced logins remembered in the session.
    pub fn digest(&self) -> String {
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
    pub fn satisfied_by(&self, session: &Session, login: &Login, at: i64) -> bool {
        !self.needs_new_login(login, at) || session::login_done_for(session, &self.digest())
    }

    /// An error sent back to the client.
    pub fn fail(&self, error: ErrorCode, description: &str) -> Stop {
        Stop::Redirect {
            redirect_uri: Box::new(self.redirect_uri.clone()),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
        }
    }
}

/// Parameters as a query string or form body.
pub(super) fn encode(params: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(params).unwrap_or_default()
}

/// `code` with query response mode, and no request objects.
fn check_response(params: &mut Params) -> Result<(), (ErrorCode, &'static str)> {
    match params.take("response_type").as_deref() {
        None => return Err((ErrorCode::InvalidRequest, "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err((
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if params.contains("request") {
        return Err((
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains("request_uri") {
        return Err((
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    if params.take("response_mode").is_some_and(|m| m != "query") {
        return Err((
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    Ok(())
}

/// The requested scopes: `openid` and only scopes this provider offers (`offline_access` only
/// when it is on).
fn read_scope(scope: Option<String>, offline_access: bool) -> Result<Scopes, (ErrorCode, String)> {
    let invalid = |d: &str| (ErrorCode::InvalidScope, d.to_owned());
    let scope = scope.ok_or_else(|| invalid("scope is missing (openid is required)"))?;
    let scope = Scopes::parse(&scope).map_err(|_| invalid("scope is malformed"))?;
    if !scope.contains("openid") {
        return Err(invalid("the openid scope is required"));
    }
    if let Some(unknown) = scopes::first_unsupported(&scope, offline_access) {
        return Err(invalid(&format!("the scope {unknown} is not supported")));
    }
    Ok(scope)
}

/// The PKCE challenge, S256 only.
fn read_code_challenge(params: &mut Params) -> Result<CodeChallenge, (ErrorCode, &'static str)> {
    let invalid = |d| (ErrorCode::InvalidRequest, d);
    let challenge = params
        .take("code_challenge")
        .ok_or_else(|| invalid("code_challenge is required (PKCE with S256)"))?;
    match params.take("code_challenge_method") {
        Some(method) if CodeChallengeMethod::parse(&method).is_ok() => {}
        _ => return Err(invalid("code_challenge_method must be S256")),
    }
    CodeChallenge::parse(&challenge).map_err(|_| invalid("code_challenge is malformed"))
}

/// The `prompt` values acted on; `select_account` and unknown values are ignored, since there is
/// one account per session.
fn read_prompt(prompt: Option<String>) -> Result<Prompt, (ErrorCode, &'static str)> {
    let mut out = Prompt::default();
    for value in prompt.unwrap_or_default().split(' ') {
        match value {
            "none" => out.none = true,
            "login" => out.login = true,
            "consent" => out.consent = true,
            _ => {}
        }
    }
    if out.none && (out.login || out.consent) {
        return Err((
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(out)
}
