//! Signed ID tokens and logout tokens: JWS algorithms, signing keys, the ID-token and
//! logout-token verifiers and `at_hash` (RFC 7515, RFC 7518 §3, RFC 7519, RFC 8725, OpenID
//! Connect Core 1.0 §2, §3.1.3.6–§3.1.3.7, OpenID Connect Back-Channel Logout 1.0 §2.4–§2.6).
//!
//! [`Algorithm`] and [`at_hash`] are always available; [`SigningKey`], [`IdTokenVerifier`] and
//! [`LogoutTokenVerifier`] need the `jose` feature (default), which uses `josekit`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::encoding::{b64url, sha256};
use crate::types::AccessToken;

/// The builder and accessor methods both verifiers share: the accepted algorithms, the keys and
/// whom the tokens must come from and be meant for. `$unknown_kid` names the error on which to
/// fetch the JWK Set again; the paths name the fields holding the issuer and the client id.
#[cfg(feature = "jose")]
macro_rules! verifier_key_methods {
    ($unknown_kid:literal, $($issuer:ident).+, $($client_id:ident).+) => {
        /// Narrows the accepted algorithms (e.g. to the provider's
        /// `id_token_signing_alg_values_supported`). Default: every [`Algorithm`].
        pub fn allowed_algorithms(mut self, algorithms: &[Algorithm]) -> Self {
            self.allowed = algorithms.to_vec();
            self
        }

        #[doc = concat!("Replaces the keys, e.g. after fetching the JWK Set again on [`", $unknown_kid, "`].")]
        pub fn set_jwks(&mut self, jwks: &JwkSet) {
            self.keys = keys_from_jwks(jwks);
        }

        /// Number of usable keys.
        pub fn key_count(&self) -> usize {
            self.keys.len()
        }

        /// The expected issuer.
        pub fn issuer(&self) -> &IssuerUrl {
            &self.$($issuer).+
        }

        /// The client the tokens must be meant for.
        pub fn client_id(&self) -> &ClientId {
            &self.$($client_id).+
        }
    };
}

#[cfg(feature = "jose")]
mod key;
#[cfg(feature = "jose")]
mod logout;
#[cfg(feature = "jose")]
mod verify;

#[cfg(feature = "jose")]
pub use key::{KeyError, SignError, SigningKey};
#[cfg(feature = "jose")]
pub use logout::{LogoutTokenVerifier, VerifiedLogoutToken};
// The error type lives with the claim checks, which need no JWS code; kept reachable here.
pub use crate::logout::LogoutTokenError;
#[cfg(feature = "jose")]
pub use verify::{IdTokenVerifier, MAX_TOKEN_LEN, VerifyError};

/// The JOSE header `typ` of logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4, RFC 8725
/// §3.11), which keeps them apart from ID tokens (`JWT`).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";

#[cfg(feature = "jose")]
use crate::logout::is_logout_type;

/// The JWS algorithms this crate signs and verifies with (RFC 7518 §3.1): an allow-list by
/// construction. There is no `none` and no HMAC variant, so a token claiming either is refused
/// before any key is looked at (RFC 8725 §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3); keys of at least 2048 bits. The algorithm
    /// every OpenID Connect relying party supports.
    RS256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4): small keys, fast signing.
    ES256,
}

/// An `alg` value outside the allow-list (RFC 7518 §3.1, RFC 8725 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported JWS algorithm {0:?}")]
pub struct UnsupportedAlgorithm(pub String);

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

    /// The `alg` name (RFC 7518 §3.1).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
        }
    }

    /// Parses an `alg` name (case-sensitive); `none`, `HS256` and everything else unsupported
    /// is an error.
    pub fn parse(value: &str) -> Result<Self, UnsupportedAlgorithm> {
        match value {
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            other => Err(UnsupportedAlgorithm(other.chars().take(32).collect())),
        }
    }

    /// The JWK `kty` a key for this algorithm has.
    pub fn key_type(&self) -> &'static str {
        match self {
            Self::RS256 => "RSA",
            Self::ES256 => "EC",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = UnsupportedAlgorithm;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The `at_hash` claim for `access_token` signed with `alg` (OpenID Connect Core 1.0 §3.1.3.6):
/// the left half of the hash of the token's ASCII bytes, base64url. Both supported algorithms
/// hash with SHA-256, so the result is 22 characters.
pub fn at_hash(access_token: &AccessToken, alg: Algorithm) -> String {
    match alg {
        Algorithm::RS256 | Algorithm::ES256 => {
            let digest = sha256(access_token.secret().as_bytes());
            b64url(&digest[..16])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rs256_and_es256_parse() {
        assert_eq!(Algorithm::parse("RS256"), Ok(Algorithm::RS256));
        assert_eq!(Algorithm::parse("ES256"), Ok(Algorithm::ES256));
        for bad in ["none", "HS256", "rs256", "RS384", "PS256", ""] {
            assert!(Algorithm::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Algorithm>("\"none\"").is_err());
        assert_eq!(
            serde_json::to_string(&Algorithm::ES256).unwrap(),
            "\"ES256\""
        );
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        let token = AccessToken::new("abc");
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a396177a9cb410ff61f20015ad
        let left = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23,
        ];
        assert_eq!(at_hash(&token, Algorithm::RS256), b64url(left));
        assert_eq!(at_hash(&token, Algorithm::RS256).len(), 22);
    }
}
