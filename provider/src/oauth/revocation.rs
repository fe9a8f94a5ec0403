//! Token revocation (RFC 7009) for authenticated clients.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use oidc_core::types::AccessToken;

use crate::state::AppState;
use crate::storage::grants;
use crate::storage::now;

use super::clients;
use super::error::OAuthError;
use super::params::Params;

/// `POST /oauth/revoke`. An unknown token, or one of another client, is answered 200 like a
/// revoked one (RFC 7009 §2.2): the caller learns nothing about tokens it does not hold.
pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let mut params = Params::from_body(&req, payload).await?;
    let credentials = clients::read_credentials(&req, &mut params)?;
    let token = params
        .take("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let hash = AccessToken::new(token).hash().into_string();
    state
        .db
        .write(move |conn| -> Result<(), OAuthError> {
            let client = clients::authenticate(conn, &credentials)?;
            let at = now();
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
