//! The userinfo endpoint (OIDC Core §5.3), optional: without it the ID token's claims suffice.

use openidconnect::core::{CoreGenderClaim, CoreUserInfoClaims};
use openidconnect::{AccessToken, SubjectIdentifier};

use super::{Oidc, OidcError, Provider};

impl Oidc {
    /// The user's claims from the userinfo endpoint, checked to name `sub`; `None` when the
    /// provider has no userinfo endpoint.
    pub(super) async fn userinfo(
        &self,
        provider: &Provider,
        access_token: &AccessToken,
        sub: &SubjectIdentifier,
    ) -> Result<Option<CoreUserInfoClaims>, OidcError> {
        let client = self.client(provider);
        let Ok(request) = client.user_info(access_token.clone(), Some(sub.clone())) else {
            return Ok(None);
        };
        let claims: CoreUserInfoClaims = request
            .request_async::<_, _, CoreGenderClaim>(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::UserInfoError::ClaimsVerification(e) => {
                    OidcError::InvalidToken(format!("userinfo: {e}"))
                }
                other => OidcError::Unavailable(format!("userinfo: {other}")),
            })?;
        Ok(Some(claims))
    }
}
