//! The JWK Set endpoint (RFC 7517 §5, OpenID Connect Discovery 1.0 `jwks_uri`): every published
//! key, active and still-verifying ones.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

use super::discovery::public_json;

/// `GET /oauth/jwks`: cacheable, since keys are published before they sign.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    public_json(state.keys.jwks_json())
}
