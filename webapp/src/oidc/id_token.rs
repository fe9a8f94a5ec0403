//! ID-token checks, all by the `openidconnect` crate: the signature against the provider's keys
//! (fetched again once for an unknown key), asymmetric algorithms only, `iss`, `aud`/`azp`,
//! `exp`, `iat` (with a little clock skew), `nonce` and `at_hash`.

use openidconnect::core::{CoreIdToken, CoreIdTokenClaims, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessToken, AccessTokenHash, ClaimsVerificationError, Nonce, SignatureVerificationError,
};

use super::{Oidc, OidcError, Provider};

/// Clock skew tolerated on `iat` (a token from the future is refused beyond it).
const CLOCK_SKEW_SECS: i64 = 60;

/// Why an ID token was not accepted with the keys at hand.
pub(super) enum IdTokenFailure {
    /// Signed with a key the current key set lacks: fetching the keys again may help.
    UnknownKey,
    /// Anything else.
    Invalid(String),
}

/// The signing algorithms the provider announces, without HMAC and `none`: an HMAC "signature"
/// keyed with something public (or the client secret) proves nothing about the provider, and
/// `none` proves nothing at all.
pub(super) fn asymmetric_algs(provider: &Provider) -> Vec<CoreJwsSigningAlgorithm> {
    provider
        .metadata()
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| {
            !matches!(
                alg,
                CoreJwsSigningAlgorithm::HmacSha256
                    | CoreJwsSigningAlgorithm::HmacSha384
                    | CoreJwsSigningAlgorithm::HmacSha512
                    | CoreJwsSigningAlgorithm::None
            )
        })
        .cloned()
        .collect()
}

impl Oidc {
    /// Checks signature (against the JWKS, fetched again once for an unknown `kid`), `iss`,
    /// `aud`/`azp`, `exp`, `iat`, `nonce` and `at_hash`.
    pub(super) async fn verify_id_token(
        &self,
        provider: &Provider,
        id_token: &CoreIdToken,
        access_token: &AccessToken,
        nonce: Option<&Nonce>,
    ) -> Result<CoreIdTokenClaims, OidcError> {
        let invalid = |failure| match failure {
            IdTokenFailure::UnknownKey => OidcError::InvalidToken(
                "ID token signed with a key the provider does not publish".into(),
            ),
            IdTokenFailure::Invalid(reason) => OidcError::InvalidToken(reason),
        };
        match self.verify_with_current_keys(provider, id_token, access_token, nonce) {
            Err(IdTokenFailure::UnknownKey) => {
                self.refetch_jwks(provider).await?;
                self.verify_with_current_keys(provider, id_token, access_token, nonce)
                    .map_err(invalid)
            }
            other => other.map_err(invalid),
        }
    }

    pub(super) fn verify_with_current_keys(
        &self,
        provider: &Provider,
        id_token: &CoreIdToken,
        access_token: &AccessToken,
        nonce: Option<&Nonce>,
    ) -> Result<CoreIdTokenClaims, IdTokenFailure> {
        let client = self.client(provider);
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(asymmetric_algs(provider))
            .set_issue_time_verifier_fn(|iat| {
                if iat.timestamp() > oidc_core::unix_now() + CLOCK_SKEW_SECS {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            });
        let result = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            // A refreshed ID token carries no nonce of ours (OIDC Core §12.2).
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        };
        let claims = match result {
            Ok(claims) => claims.clone(),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => return Err(IdTokenFailure::UnknownKey),
            Err(e) => return Err(IdTokenFailure::Invalid(e.to_string())),
        };
        if let Some(expected) = claims.access_token_hash() {
            let alg = id_token
                .signing_alg()
                .map_err(|e| IdTokenFailure::Invalid(e.to_string()))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|e| IdTokenFailure::Invalid(e.to_string()))?;
            let actual = AccessTokenHash::from_token(access_token, alg, key)
                .map_err(|e| IdTokenFailure::Invalid(e.to_string()))?;
            if actual != *expected {
                return Err(IdTokenFailure::Invalid("at_hash does not match".into()));
            }
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use hmac::{Hmac, Mac as _};
    use oidc_core::jose::{Algorithm, SigningKey};
    use openidconnect::core::CoreJsonWebKeySet;
    use serde_json::json;
    use sha2::Sha256;

    use super::*;
    use crate::oidc::fixture::{
        ACCESS_TOKEN, CLIENT_ID, CLIENT_SECRET, Fixture, ISSUER, NONCE, b64, fixture, good_claims,
        now, with,
    };

    fn verify(fixture: &Fixture, token: &str) -> Result<CoreIdTokenClaims, IdTokenFailure> {
        let token = CoreIdToken::from_str(token)
            .map_err(|e| IdTokenFailure::Invalid(format!("unparseable: {e}")))?;
        fixture.oidc.verify_with_current_keys(
            &fixture.provider,
            &token,
            &AccessToken::new(ACCESS_TOKEN.to_owned()),
            Some(&Nonce::new(NONCE.to_owned())),
        )
    }

    fn assert_rejected(fixture: &Fixture, token: &str, what: &str) {
        match verify(fixture, token) {
            Err(IdTokenFailure::Invalid(_)) => {}
            Err(IdTokenFailure::UnknownKey) => panic!("{what}: reported as an unknown key"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }

    fn hs256_token(secret: &[u8], claims: &serde_json::Value) -> String {
        let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64(claims.to_string().as_bytes());
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        let signature = mac.finalize().into_bytes();
        format!("{header}.{payload}.{}", b64(&signature))
    }

    #[test]
    fn a_correct_id_token_is_accepted_with_its_claims() {
        let fixture = fixture();
        let token = fixture.key.sign(&good_claims()).unwrap();
        let claims = verify(&fixture, &token).unwrap_or_else(|_| panic!("valid token refused"));
        assert_eq!(claims.subject().as_str(), "user-1");
        assert_eq!(
            claims.email().map(|e| e.as_str()),
            Some("alice@example.com")
        );
    }

    #[test]
    fn every_failed_check_rejects_the_token() {
        let fixture = fixture();
        let cases = [
            (
                "wrong iss",
                with(good_claims(), "iss", json!("http://127.0.0.1:2")),
            ),
            (
                "iss with trailing slash",
                with(good_claims(), "iss", json!(format!("{ISSUER}/"))),
            ),
            ("missing iss", with(good_claims(), "iss", json!(null))),
            (
                "aud of another client",
                with(good_claims(), "aud", json!("someone-else")),
            ),
            (
                "aud with an untrusted extra",
                with(good_claims(), "aud", json!([CLIENT_ID, "other"])),
            ),
            ("expired", with(good_claims(), "exp", json!(now() - 10))),
            (
                "issued in the future",
                with(good_claims(), "iat", json!(now() + 3600)),
            ),
            (
                "wrong nonce",
                with(good_claims(), "nonce", json!("nonce-2")),
            ),
            ("missing nonce", with(good_claims(), "nonce", json!(null))),
            (
                "wrong at_hash",
                with(good_claims(), "at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA")),
            ),
            ("missing sub", with(good_claims(), "sub", json!(null))),
        ];
        for (what, claims) in cases {
            let token = fixture.key.sign(&claims).unwrap();
            assert_rejected(&fixture, &token, what);
        }
    }

    #[test]
    fn forged_signatures_are_rejected() {
        let fixture = fixture();
        let token = fixture.key.sign(&good_claims()).unwrap();

        // A changed payload under the original signature.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = b64(with(good_claims(), "sub", json!("admin"))
            .to_string()
            .as_bytes());
        assert_rejected(
            &fixture,
            &format!("{}.{forged_payload}.{}", parts[0], parts[2]),
            "payload swapped",
        );

        // `alg: none`.
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64(good_claims().to_string().as_bytes());
        assert_rejected(&fixture, &format!("{header}.{payload}."), "alg none");

        // HS256 keyed with the public key, and with the client secret, even though the
        // provider lists HS256.
        let public_pem = serde_json::to_string(&fixture.key.public_jwk()).unwrap();
        assert_rejected(
            &fixture,
            &hs256_token(public_pem.as_bytes(), &good_claims()),
            "HS256 with the public key",
        );
        assert_rejected(
            &fixture,
            &hs256_token(CLIENT_SECRET.as_bytes(), &good_claims()),
            "HS256 with the client secret",
        );

        // Garbage.
        for junk in ["", "a.b.c", "not-a-jwt", "e30.e30.e30"] {
            assert_rejected(&fixture, junk, junk);
        }
    }

    #[test]
    fn a_key_the_jwks_does_not_have_asks_for_a_refetch() {
        let fixture = fixture();
        let rotated = SigningKey::generate(Algorithm::RS256).unwrap();
        let token = rotated.sign(&good_claims()).unwrap();
        assert!(matches!(
            verify(&fixture, &token),
            Err(IdTokenFailure::UnknownKey)
        ));

        // Once the new key is in the set, the same token verifies.
        let jwks: CoreJsonWebKeySet = serde_json::from_value(
            json!({ "keys": [fixture.key.public_jwk(), rotated.public_jwk()] }),
        )
        .unwrap();
        fixture.provider.set_jwks(jwks);
        assert!(verify(&fixture, &token).is_ok());
    }
}
