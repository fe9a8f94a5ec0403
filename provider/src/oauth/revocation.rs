//! Token revocation (RFC 7009) for authenticated clients.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::unix_now;

use crate::state::AppState;
use crate::storage::grants;

use super::clients;
use super::error::OAuthError;

/// `POST /oauth/revoke`. An unknown token, or one of another client, is answered 200 like a
/// revoked one (RFC 7009 §2.2): the caller learns nothing about tokens it does not hold.
pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (credentials, hash) = clients::read_token_request(&req, payload).await?;
    state
        .db
        .write(move |conn| -> Result<(), OAuthError> {
            let client = clients::authenticate(conn, &credentials)?;
            let at = unix_now();
            if let Some(access) = grants::find_access_token(conn, &hash)? {
                if access.client_id == client.id {
                    grants::revoke_access_token(conn, &hash, at)?;
                }
            } else if let Some(refresh) = grants::find_refresh_token(conn, &hash)? {
                // RFC 7009 §2.1: revoking a refresh token also ends the access tokens of its grant.
                if refresh.client_id == client.id {
                    grants::revoke_grant_family(conn, &refresh.grant_id, at)?;
                }
            }
            Ok(())
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
