//! `POST /api/auth/backchannel-logout/{provider_id}` (OpenID Connect Back-Channel Logout 1.0
//! §2.5–§2.8): the provider posts a logout token; a valid one ends the sessions it names.
//!
//! Public (no gate, no CSRF: the caller is the provider's server, authenticated by the token's
//! signature). Answers 200 with `Cache-Control: no-store`, 400 `invalid_request` with a JSON
//! description for any bad token or body, 404 for an unknown provider id, 503 when the provider's
//! keys or the database cannot be reached (the provider may retry).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use oidc_core::error::{ErrorCode, ErrorResponse};

use crate::oidc::LogoutTokenFailure;
use crate::state::AppState;

/// The handler; every answer is counted by its outcome.
pub async fn backchannel_logout(
    state: web::Data<AppState>,
    provider_id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let response = handle(&state, &provider_id, &body).await;
    state.metrics.backchannel_logout(response.status());
    response
}

async fn handle(state: &AppState, provider_id: &str, body: &[u8]) -> HttpResponse {
    if provider_id != state.settings.provider_id.as_str() {
        return HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({ "error": "not_found" }));
    }
    let token = match logout_token_param(body) {
        Ok(token) => token,
        Err(reason) => return invalid_request(reason),
    };
    let provider = match state.oidc.provider().await {
        Ok(provider) => provider,
        Err(error) => return unavailable(&error),
    };
    let now = oidc_core::unix_now();
    let checked = match state.oidc.verify_logout_token(&provider, &token, now).await {
        Ok(checked) => checked,
        Err(LogoutTokenFailure::Invalid(error)) => {
            tracing::info!(%error, "logout token refused");
            return invalid_request(error.to_string());
        }
        Err(LogoutTokenFailure::Unavailable(error)) => return unavailable(&error),
    };
    let claims = &checked.claims;
    let outcome = state
        .store
        .back_channel_logout(
            &claims.jti,
            checked.keep_jti_until,
            claims.sub.as_ref().map(|s| s.as_str()),
            claims.sid.as_deref(),
            now,
        )
        .await;
    match outcome {
        Ok(Some(ended)) => {
            tracing::info!(
                sub = claims.sub.as_ref().map(|s| s.as_str()),
                sid = claims.sid.as_deref(),
                ended,
                "back-channel logout"
            );
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
        Ok(None) => {
            tracing::info!("logout token replayed");
            invalid_request("logout token already used (jti seen before)".to_owned())
        }
        Err(error) => unavailable(&error),
    }
}

/// The one `logout_token` of a form body.
fn logout_token_param(body: &[u8]) -> Result<String, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| "the body is not an application/x-www-form-urlencoded form".to_owned())?;
    let mut tokens = pairs
        .into_iter()
        .filter(|(name, _)| name == "logout_token")
        .map(|(_, value)| value);
    match (tokens.next(), tokens.next()) {
        (Some(token), None) => Ok(token),
        (None, _) => Err("logout_token is missing".to_owned()),
        (Some(_), Some(_)) => Err("logout_token is repeated".to_owned()),
    }
}

fn invalid_request(description: String) -> HttpResponse {
    // §2.8: 400 with `invalid_request`; the description says which check failed.
    let body = ErrorResponse::new(ErrorCode::InvalidRequest).with_description(description);
    HttpResponse::build(StatusCode::BAD_REQUEST)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn unavailable(error: &dyn std::fmt::Display) -> HttpResponse {
    tracing::warn!(%error, "back-channel logout cannot be handled now");
    HttpResponse::ServiceUnavailable()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": "temporarily_unavailable" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_exactly_one_logout_token() {
        assert_eq!(logout_token_param(b"logout_token=a.b.c").unwrap(), "a.b.c");
        assert!(logout_token_param(b"").is_err());
        assert!(logout_token_param(b"logout_token=a&logout_token=b").is_err());
        assert!(logout_token_param(b"other=1").is_err());
        assert!(logout_token_param(&[0xff, 0xfe, b'=', 0x80]).is_err());
    }
}
