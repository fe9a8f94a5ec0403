//! The userinfo endpoint (OpenID Connect Core 1.0 §5.3), and how bearer-token resources read
//! their token: from the `Authorization` header or, for POST, the form body (RFC 6750 §2.1,
//! §2.2).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::claims::UserInfo;
use oidc_core::types::{AccessToken, Scopes, Subject};
use oidc_core::unix_now;

use crate::state::AppState;
use crate::storage::grants::{self, ActiveAccessToken};

use super::error::BearerError;
use super::params::{self, Params};
use super::scopes;

/// The bearer token of a request: from the header, or from a form body of a POST, never both.
pub(super) async fn bearer_token(
    req: &HttpRequest,
    payload: Option<web::Payload>,
) -> Result<String, BearerError> {
    let from_header = match req.headers().get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| BearerError::InvalidToken("the Authorization header is malformed"))?;
            match value.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Some(token.trim().to_owned())
                }
                _ => {
                    return Err(BearerError::InvalidToken(
                        "the Authorization header is not a Bearer token",
                    ));
                }
            }
        }
        None => None,
    };
    let from_body = match payload {
        Some(payload) if params::is_form(req) => {
            Params::from_body(req, payload).await?.take("access_token")
        }
        _ => None,
    };
    match (from_header, from_body) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest(
            "the access token was sent in more than one way".into(),
        )),
        (Some(token), None) | (None, Some(token)) => Ok(token),
        (None, None) => Err(BearerError::InvalidToken("no access token was sent")),
    }
}

/// Looks the token up (one query, joined with its user).
pub(super) async fn active_token(
    state: &AppState,
    token: String,
) -> Result<(ActiveAccessToken, Scopes), BearerError> {
    let hash = AccessToken::new(token).hash().into_string();
    let found = state
        .db
        .run(move |conn| {
            Ok::<_, BearerError>(grants::find_active_access_token(conn, &hash, unix_now())?)
        })
        .await?
        .ok_or(BearerError::InvalidToken(
            "the access token is unknown, expired or revoked",
        ))?;
    let scopes = found.token.scope.clone();
    Ok((found, scopes))
}

pub(super) fn no_store_json(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// `GET /oauth/userinfo`.
pub async fn userinfo_get(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, BearerError> {
    userinfo(&state, bearer_token(&req, None).await?).await
}

/// `POST /oauth/userinfo`.
pub async fn userinfo_post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, BearerError> {
    userinfo(&state, bearer_token(&req, Some(payload)).await?).await
}

async fn userinfo(state: &AppState, token: String) -> Result<HttpResponse, BearerError> {
    let (found, scopes) = active_token(state, token).await?;
    if !scopes.contains("openid") {
        return Err(BearerError::InsufficientScope("openid"));
    }
    Ok(no_store_json(&UserInfo {
        sub: Subject::new(found.user.subject.clone()),
        claims: scopes::standard_claims(&found.user, &scopes),
    }))
}
