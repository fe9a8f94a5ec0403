//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the `end_session_endpoint`.
//!
//! A valid `id_token_hint` for the signed-in user ends the session at once; otherwise the user
//! confirms on a page with a CSRF-protected form, so a third-party page cannot sign people out.
//! The user is sent back only to a `post_logout_redirect_uri` registered for the client (byte
//! for byte), with `state`; without one, a signed-out page is shown.

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::identity::session::{current_login, log_out};
use crate::pages::{self, csrf};
use crate::state::AppState;
use crate::storage::grants;

use super::clients::{self, RegisteredClient};
use super::id_token;
use super::params::{Params, ParamsError};

/// A logout request whose client and return address have been checked.
struct LogoutRequest {
    client: Option<RegisteredClient>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    hint_subject: Option<String>,
}

fn bad_request(message: &str) -> HttpResponse {
    pages::error_page(StatusCode::BAD_REQUEST, "Invalid sign-out request", message)
}

fn server_error(e: impl std::fmt::Debug) -> HttpResponse {
    tracing::error!(error = ?e, "sign-out failed");
    pages::error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The sign-out could not be completed. Please try again later.",
    )
}

/// `GET /oauth/logout`.
pub async fn end_session_get(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    end_session(Params::from_query(&req), session, state).await
}

/// `POST /oauth/logout` (the specification allows both methods).
pub async fn end_session_post(
    req: HttpRequest,
    payload: web::Payload,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    end_session(Params::from_body(&req, payload).await, session, state).await
}

async fn validate(
    state: &AppState,
    mut params: Params,
    with_hint: bool,
) -> Result<LogoutRequest, HttpResponse> {
    let mut client_id = params.take("client_id");
    let hint_subject = match params.take("id_token_hint").filter(|_| with_hint) {
        Some(hint) => {
            let claims = id_token::verify_hint(state, &hint, client_id.as_deref())
                .await
                .map_err(|_| {
                    bad_request("The id_token_hint is not a valid ID token of this provider.")
                })?;
            if client_id.is_none() {
                client_id = claims.aud.iter().next().map(|c| c.as_str().to_owned());
            }
            Some(claims.sub.as_str().to_owned())
        }
        None => None,
    };
    let client = match client_id {
        Some(id) => Some(
            state
                .db
                .run(move |conn| clients::find_client(conn, &id))
                .await
                .map_err(server_error)?
                .ok_or_else(|| {
                    bad_request("The application is not registered here (unknown client_id).")
                })?,
        ),
        None => None,
    };
    let post_logout_redirect_uri = params.take("post_logout_redirect_uri");
    if let Some(uri) = &post_logout_redirect_uri {
        match &client {
            None => {
                return Err(bad_request(
                    "A return address needs the application: send client_id or id_token_hint.",
                ));
            }
            Some(client) if !client.has_post_logout_redirect_uri(uri) => {
                return Err(bad_request(
                    "The return address is not registered for this application.",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(LogoutRequest {
        client,
        post_logout_redirect_uri,
        state: params.take("state"),
        hint_subject,
    })
}

async fn end_session(
    params: Result<Params, ParamsError>,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = match params {
        Ok(params) => params,
        Err(e) => return bad_request(&format!("The request is malformed: {e}.")),
    };
    let request = match validate(&state, params, true).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let login = match current_login(&state, &session).await {
        Ok(login) => login,
        Err(e) => return server_error(e),
    };
    let Some(login) = login else {
        return finish(&state, &request);
    };
    if let Some(subject) = &request.hint_subject {
        let user_id = login.user_id.clone();
        let user = state
            .db
            .run(move |conn| {
                grants::find_claims_user(conn, &user_id).map_err(crate::storage::StorageError::from)
            })
            .await;
        match user {
            Ok(Some(user)) if user.subject == *subject => {
                if let Err(e) = log_out(&state, &session).await {
                    return server_error(e);
                }
                return finish(&state, &request);
            }
            Ok(_) => {}
            Err(e) => return server_error(e),
        }
    }
    confirm_page(&state, &session, &request)
}

#[derive(Serialize)]
struct ConfirmPage<'a> {
    client_name: Option<&'a str>,
    fields: Vec<(&'static str, String)>,
    csrf_token: String,
}

fn confirm_page(state: &AppState, session: &Session, request: &LogoutRequest) -> HttpResponse {
    let mut fields = Vec::new();
    if let Some(client) = &request.client {
        fields.push(("client_id", client.id.clone()));
    }
    if let Some(uri) = &request.post_logout_redirect_uri {
        fields.push(("post_logout_redirect_uri", uri.clone()));
    }
    if let Some(s) = &request.state {
        fields.push(("state", s.clone()));
    }
    let context = ConfirmPage {
        client_name: request.client.as_ref().map(|c| c.name.as_str()),
        fields,
        csrf_token: csrf::token(session),
    };
    no_store(pages::render(
        &state.templates,
        "oauth/logout.html",
        &context,
    ))
}

/// `POST /oauth/logout/confirm`: the confirmation form.
pub async fn confirm(
    req: HttpRequest,
    payload: web::Payload,
    session: Session,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut params = match Params::from_body(&req, payload).await {
        Ok(params) => params,
        Err(e) => return bad_request(&format!("The form is malformed: {e}.")),
    };
    if !params
        .take("csrf_token")
        .is_some_and(|t| csrf::verify(&session, &t))
    {
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "The sign-out form could not be verified. Please try again.",
        );
    }
    let request = match validate(&state, params, false).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if let Err(e) = log_out(&state, &session).await {
        return server_error(e);
    }
    finish(&state, &request)
}

#[derive(Serialize)]
struct SignedOutPage<'a> {
    client_name: Option<&'a str>,
}

/// Back to the application's registered address, or the signed-out page.
fn finish(state: &AppState, request: &LogoutRequest) -> HttpResponse {
    match &request.post_logout_redirect_uri {
        Some(uri) => match url::Url::parse(uri) {
            Ok(mut url) => {
                if let Some(s) = &request.state {
                    url.query_pairs_mut().append_pair("state", s);
                }
                HttpResponse::Found()
                    .insert_header((header::LOCATION, url.as_str()))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .finish()
            }
            Err(_) => bad_request("The return address is not usable."),
        },
        None => no_store(pages::render(
            &state.templates,
            "oauth/signed_out.html",
            &SignedOutPage {
                client_name: request.client.as_ref().map(|c| c.name.as_str()),
            },
        )),
    }
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}
