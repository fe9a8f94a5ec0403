//! Token introspection (RFC 7662) for authenticated confidential clients.
//!
//! Who may see what: a refresh token is described only to the client it was issued to; an
//! access token to that client and to clients registered as resource servers
//! (`can_introspect`). Everyone else gets `{"active": false}`, the answer for an unknown token,
//! so that holding another client's token reveals nothing about it (RFC 7662 §4).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::unix_now;
use serde::Serialize;

use crate::state::AppState;
use crate::storage::grants;

use super::clients;
use super::error::OAuthError;

/// An introspection answer (RFC 7662 §2.2); inactive tokens show nothing but `active`.
#[derive(Debug, Default, Serialize)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
}

/// `POST /oauth/introspect`: any authenticated confidential client may ask; what it is told
/// depends on whose token it is (see the module comment).
pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (credentials, hash) = clients::read_token_request(&req, payload).await?;
    let iss = state.issuer()?.as_str().to_owned();
    let answer = state
        .db
        .run(move |conn| -> Result<Introspection, OAuthError> {
            let client = clients::authenticate(conn, &credentials)?;
            if !client.is_confidential() {
                // Public clients cannot authenticate, so they cannot introspect.
                return Err(clients::ClientAuthError::Failed.into());
            }
            let at = unix_now();
            let found = if let Some(t) = grants::find_active_access_token(conn, &hash, at)? {
                Some((
                    t.token.scope,
                    t.token.client_id,
                    t.user,
                    "Bearer",
                    t.token.expires_at,
                    t.token.created_at,
                    t.token.grant_id,
                ))
            } else {
                match grants::find_refresh_token(conn, &hash)? {
                    Some(r)
                        if r.used_at.is_none() && r.revoked_at.is_none() && r.expires_at > at =>
                    {
                        match grants::find_claims_user(conn, &r.user_id)?.filter(|u| u.is_active) {
                            Some(user) => Some((
                                r.scope,
                                r.client_id,
                                user,
                                "refresh_token",
                                r.expires_at,
                                r.created_at,
                                r.grant_id,
                            )),
                            None => None,
                        }
                    }
                    _ => None,
                }
            };
            let Some((scope, client_id, user, token_type, exp, iat, grant_id)) = found else {
                return Ok(Introspection::default());
            };
            if !client.may_introspect(&client_id, token_type == "refresh_token") {
                return Ok(Introspection::default());
            }
            if grants::find_grant(conn, &grant_id)?.is_none_or(|g| g.revoked_at.is_some()) {
                return Ok(Introspection::default());
            }
            Ok(Introspection {
                active: true,
                scope: Some(scope.to_string()),
                aud: Some(client_id.clone()),
                client_id: Some(client_id),
                username: Some(user.username),
                token_type: Some(token_type),
                exp: Some(exp),
                iat: Some(iat),
                sub: Some(user.subject),
                iss: Some(iss),
            })
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
