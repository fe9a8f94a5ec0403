//! The protected profile API, `GET /api/profile`: the resource a relying party calls with the
//! access token it was given (RFC 6750).

use actix_web::{HttpRequest, HttpResponse, web};

use crate::state::AppState;

use super::error::BearerError;
use super::scopes;
use super::userinfo::{active_token, bearer_token, no_store_json};

/// `GET /api/profile`: the user's profile for a token with the `profile` scope.
pub async fn api_profile(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, BearerError> {
    let (found, scopes) = active_token(&state, bearer_token(&req, None).await?).await?;
    if !scopes.contains("profile") {
        return Err(BearerError::InsufficientScope("profile"));
    }
    let claims = scopes::standard_claims(&found.user, &scopes);
    Ok(no_store_json(&serde_json::json!({
        "sub": found.user.subject,
        "username": found.user.username,
        "name": claims.name,
        "given_name": claims.given_name,
        "family_name": claims.family_name,
        "email": claims.email,
        "email_verified": claims.email_verified,
        "updated_at": found.user.updated_at,
        "scope": scopes.to_string(),
        "client_id": found.token.client_id,
    })))
}
