//! The consent page and its decision: what the application asks for, in plain words, and the
//! user's Authorize or Cancel.
//!
//! The form carries the request in hidden fields and is read again in full when posted, so
//! several tabs can be in flight at once.

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::error::ErrorCode;
use oidc_core::unix_now;
use serde::Serialize;

use crate::identity::session::current_login;
use crate::pages::{self, csrf};
use crate::state::AppState;

use super::authorization_request::{AuthorizationRequest, Stop};
use super::authorize::{finish, issue_code, login_redirect, require_second_factor};
use super::params::Params;
use super::scopes;

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

pub(super) fn consent_page(
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
        redirect_host: request
            .redirect_uri
            .url()
            .host_str()
            .unwrap_or_default()
            .to_owned(),
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
        let request = AuthorizationRequest::read(&state, params).await?;
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
        if let Some(response) = require_second_factor(&state, &session, &request, &login).await? {
            return Ok(response);
        }
        let issued = issue_code(&state, &request, &login, None).await?;
        finish(&state, &session, &request, issued).await
    }
    .await;
    result.unwrap_or_else(|stop| stop.into_response(&state))
}
