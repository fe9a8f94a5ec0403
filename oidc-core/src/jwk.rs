//! JSON Web Keys and key sets (RFC 7517) for RSA and EC public keys (RFC 7518 §6.2, §6.3), with
//! RFC 7638 thumbprints as key ids.
//!
//! ```
//! use oidc_core::jwk::JwkSet;
//!
//! // A provider's published key set, as fetched from its `jwks_uri` (RFC 7638 §3.1's key).
//! let jwks: JwkSet = serde_json::from_str(r#"{"keys": [
//!   {"kty": "RSA", "alg": "RS256", "kid": "2011-04-29", "e": "AQAB",
//!    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
//!   {"kty": "oct", "k": "c2VjcmV0"}
//! ]}"#)?;
//! // The symmetric key is skipped; the RSA key keeps its members.
//! assert_eq!(jwks.keys.len(), 1);
//! let key = jwks.find("2011-04-29").unwrap();
//! assert_eq!(key.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
//! # Ok::<(), serde_json::Error>(())
//! ```

use serde::{Deserialize, Deserializer, Serialize};

use crate::encoding::{b64url, sha256};

/// The key-type-specific members of a public JWK (RFC 7518 §6), tagged by `kty`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum JwkParams {
    /// An RSA public key (RFC 7518 §6.3.1): modulus and exponent, base64url big-endian.
    #[serde(rename = "RSA")]
    Rsa {
        /// Modulus.
        n: String,
        /// Public exponent.
        e: String,
    },
    /// An elliptic-curve public key (RFC 7518 §6.2.1): curve name and coordinates, base64url.
    #[serde(rename = "EC")]
    Ec {
        /// Curve, e.g. `P-256`.
        crv: String,
        /// X coordinate.
        x: String,
        /// Y coordinate.
        y: String,
    },
}

/// A public JSON Web Key (RFC 7517 §4). Private members (such as `d`) are never read or written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type and key material.
    #[serde(flatten)]
    pub params: JwkParams,
    /// Intended use (`sig` for signing keys), RFC 7517 §4.2.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The algorithm the key is meant for (e.g. `RS256`), RFC 7517 §4.4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Key id, matched against the `kid` of a JWS header (RFC 7517 §4.5). Keys made by this
    /// crate use the RFC 7638 thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

impl Jwk {
    /// A key from its members, with no `use`, `alg` or `kid`.
    pub fn new(params: JwkParams) -> Self {
        Self {
            params,
            key_use: None,
            alg: None,
            kid: None,
        }
    }

    /// An RSA public key from its big-endian modulus and exponent.
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Self {
        Self::new(JwkParams::Rsa {
            n: b64url(modulus),
            e: b64url(exponent),
        })
    }

    /// A P-256 public key from its big-endian coordinates.
    pub fn ec_p256(x: &[u8], y: &[u8]) -> Self {
        Self::new(JwkParams::Ec {
            crv: "P-256".into(),
            x: b64url(x),
            y: b64url(y),
        })
    }

    /// The `kty` value: `RSA` or `EC`.
    pub fn key_type(&self) -> &'static str {
        match self.params {
            JwkParams::Rsa { .. } => "RSA",
            JwkParams::Ec { .. } => "EC",
        }
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order with
    /// no whitespace, base64url.
    pub fn thumbprint(&self) -> String {
        // serde_json escapes strings exactly as RFC 7638 §3 requires (JSON string syntax).
        let s = |v: &str| serde_json::Value::String(v.to_owned()).to_string();
        let canonical = match &self.params {
            JwkParams::Rsa { n, e } => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, s(e), s(n)),
            JwkParams::Ec { crv, x, y } => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                s(crv),
                s(x),
                s(y)
            ),
        };
        b64url(sha256(canonical.as_bytes()))
    }

    /// This key with `kid` set to its thumbprint.
    pub fn with_thumbprint_kid(mut self) -> Self {
        self.kid = Some(self.thumbprint());
        self
    }

    /// Whether the key may verify signatures: `use` is absent or `sig` (RFC 7517 §4.2).
    pub fn is_for_signing(&self) -> bool {
        self.key_use.as_deref().is_none_or(|u| u == "sig")
    }
}

/// A JWK Set (RFC 7517 §5): what a provider serves at its `jwks_uri`.
///
/// Reading a set skips keys whose type is not understood (e.g. `oct` or `OKP`), as RFC 7517 §5
/// asks, instead of refusing the whole set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// A set of `keys`.
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    /// The key with id `kid`.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }
}

impl<'de> Deserialize<'de> for JwkSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let raw = Raw::deserialize(d)?;
        let keys = raw
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
            .collect();
        Ok(Self { keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_thumbprint_uses_the_required_members_in_order() {
        let jwk = Jwk::ec_p256(&[1; 32], &[2; 32]);
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64url([1; 32]),
            b64url([2; 32])
        );
        assert_eq!(jwk.thumbprint(), b64url(sha256(canonical)));
        let mut with_extras = jwk.clone();
        with_extras.kid = Some("k".into());
        with_extras.alg = Some("ES256".into());
        assert_eq!(with_extras.thumbprint(), jwk.thumbprint());
    }

    #[test]
    fn serialization_leaves_out_absent_members() {
        let jwk = Jwk::rsa(&[1, 2, 3], &[1, 0, 1]);
        assert_eq!(
            serde_json::to_string(&jwk).unwrap(),
            r#"{"kty":"RSA","n":"AQID","e":"AQAB"}"#
        );
        assert!(jwk.is_for_signing());
    }
}
