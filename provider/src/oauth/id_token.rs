//! The provider's own ID tokens: signed with the client's algorithm, and verified again when a
//! request presents one as a hint (`id_token_hint` at login and logout).

use oidc_core::claims::IdTokenClaims;
use oidc_core::jose::{Algorithm, IdTokenVerifier, at_hash};
use oidc_core::types::{AccessToken, ClientId};

use crate::state::AppState;

use super::error::OAuthError;

/// Signs `claims` (adding `at_hash`) with the active key of the client's algorithm.
pub fn sign(
    state: &AppState,
    alg: Algorithm,
    claims: &mut IdTokenClaims,
    access_token: &AccessToken,
) -> Result<String, OAuthError> {
    let key = state
        .keys
        .active(alg)
        .ok_or_else(|| anyhow::anyhow!("no active {alg} signing key"))?;
    claims.at_hash = Some(at_hash(access_token, key.algorithm()));
    key.sign_id_token(claims)
        .map_err(|e| OAuthError::Unexpected(anyhow::anyhow!("signing the ID token: {e}")))
}

/// How old an ID token may be and still serve as a hint (login or logout of that user).
const HINT_MAX_AGE_SECS: u32 = 365 * 24 * 3600;

/// Verifies an ID token this provider issued, for `client_id` (or its own audience when the
/// caller did not name one); expiry is tolerated, since hints are often old.
pub async fn verify_hint(
    state: &AppState,
    hint: &str,
    client_id: Option<&str>,
) -> anyhow::Result<IdTokenClaims> {
    let audience = match client_id {
        Some(id) => id.to_owned(),
        None => unverified_audience(hint).ok_or_else(|| anyhow::anyhow!("no audience"))?,
    };
    let verifier =
        IdTokenVerifier::new(state.issuer()?, ClientId::new(audience), state.keys.jwks())
            .leeway(HINT_MAX_AGE_SECS);
    Ok(verifier.verify(hint, None, None)?)
}

/// The first audience of a token, read before verification only to pick the verifier.
fn unverified_audience(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match value.get("aud")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(a) => a.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}
