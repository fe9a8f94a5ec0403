//! The back-channel rewrite: requests this server makes to the provider go to
//! `OIDC_BACKCHANNEL_URL` (e.g. `http://provider:8000` inside compose) instead of the public
//! issuer's origin, while browsers and the `iss` claim keep the public one.

use openidconnect::{JsonWebKeySetUrl, RevocationUrl, TokenUrl, UserInfoUrl};
use url::Url;

use super::{Metadata, Oidc, OidcError};

impl Oidc {
    /// Rewrites a URL on the issuer's origin to the back-channel origin (when one is set), for
    /// requests made by this server. Other URLs are left alone.
    pub fn backchannel(&self, url: &Url) -> Url {
        let Some(backchannel) = &self.settings.backchannel_url else {
            return url.clone();
        };
        if url.origin() != self.settings.issuer.url().origin() {
            return url.clone();
        }
        let mut rewritten = url.clone();
        let target = backchannel.url();
        // Both are http(s) URLs with hosts, so these setters cannot fail; keep the original if
        // they ever did rather than sending the request somewhere unexpected.
        if rewritten.set_scheme(target.scheme()).is_err()
            || rewritten.set_host(target.host_str()).is_err()
            || rewritten.set_port(target.port()).is_err()
        {
            return url.clone();
        }
        rewritten
    }

    /// The token, userinfo, JWKS and revocation endpoints as this server reaches them.
    pub(super) fn rewrite_server_side_endpoints(
        &self,
        metadata: Metadata,
    ) -> Result<Metadata, OidcError> {
        let bad = |what: &str, e: openidconnect::url::ParseError| {
            OidcError::Misconfigured(format!("{what} after back-channel rewrite: {e}"))
        };
        let token = match metadata.token_endpoint() {
            Some(url) => Some(
                TokenUrl::new(self.backchannel(url.url()).into())
                    .map_err(|e| bad("token_endpoint", e))?,
            ),
            None => None,
        };
        let userinfo = match metadata.userinfo_endpoint() {
            Some(url) => Some(
                UserInfoUrl::new(self.backchannel(url.url()).into())
                    .map_err(|e| bad("userinfo_endpoint", e))?,
            ),
            None => None,
        };
        let jwks = JsonWebKeySetUrl::new(self.backchannel(metadata.jwks_uri().url()).into())
            .map_err(|e| bad("jwks_uri", e))?;
        let mut metadata = metadata;
        let extra = metadata.additional_metadata_mut();
        if let Some(url) = extra.revocation_endpoint.take() {
            extra.revocation_endpoint = Some(
                RevocationUrl::new(self.backchannel(url.url()).into())
                    .map_err(|e| bad("revocation_endpoint", e))?,
            );
        }
        Ok(metadata
            .set_token_endpoint(token)
            .set_userinfo_endpoint(userinfo)
            .set_jwks_uri(jwks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BackchannelUrl, Settings};
    use crate::oidc::fixture::{CLIENT_ID, CLIENT_SECRET, SESSION_SECRET};

    #[test]
    fn backchannel_rewrites_only_the_issuers_origin() {
        let mut settings = Settings::new(
            "http://localhost:3000",
            "http://localhost:8000",
            CLIENT_ID,
            CLIENT_SECRET,
            SESSION_SECRET,
        )
        .unwrap();
        settings.backchannel_url = Some(BackchannelUrl::parse("http://provider:8000").unwrap());
        let oidc = Oidc::new(settings).unwrap();
        let rewrite = |u: &str| oidc.backchannel(&Url::parse(u).unwrap()).to_string();
        assert_eq!(
            rewrite("http://localhost:8000/oauth/token"),
            "http://provider:8000/oauth/token"
        );
        assert_eq!(
            rewrite("http://localhost:8000/api/profile?x=1"),
            "http://provider:8000/api/profile?x=1"
        );
        // Endpoints on other hosts are left alone.
        assert_eq!(
            rewrite("https://api.example/profile"),
            "https://api.example/profile"
        );
        assert_eq!(
            rewrite("http://localhost:8001/oauth/token"),
            "http://localhost:8001/oauth/token"
        );
    }
}
