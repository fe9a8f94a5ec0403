//! Proof Key for Code Exchange (RFC 7636) with the `S256` method only: `plain` offers no
//! protection against a leaked authorization request, so it is refused (RFC 9700 §2.1.1).
//!
//! ```
//! use oidc_core::pkce::{CodeChallenge, CodeChallengeMethod, CodeVerifier, PkceError};
//!
//! // Client: keep the verifier, send the challenge with `code_challenge_method=S256`.
//! let verifier = CodeVerifier::generate();
//! let challenge = CodeChallenge::from_verifier(&verifier);
//!
//! // Server, authorization request: parse and store the challenge.
//! assert_eq!(CodeChallengeMethod::parse("plain"), Err(PkceError::PlainNotSupported));
//! let stored = CodeChallenge::parse(challenge.as_str())?;
//!
//! // Server, token request: the verifier must hash to the stored challenge.
//! let received = CodeVerifier::parse(verifier.secret().to_owned())?;
//! assert!(stored.verify(&received));
//! # Ok::<(), PkceError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq as _;

use crate::encoding::{b64url, is_b64url_char, random_b64url, sha256};

/// A PKCE value that could not be parsed (RFC 7636 §4.1–§4.3); a server answers it with
/// `invalid_request` (§4.4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// The verifier is not 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1).
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    MalformedVerifier,
    /// The challenge is not an S256 challenge: 43 base64url characters (RFC 7636 §4.2).
    #[error("code_challenge must be 43 base64url characters (S256)")]
    MalformedChallenge,
    /// `code_challenge_method=plain`, which this implementation refuses.
    #[error("code_challenge_method plain is not supported; use S256")]
    PlainNotSupported,
    /// A `code_challenge_method` other than `S256` or `plain`.
    #[error("unknown code_challenge_method")]
    UnknownMethod,
}

/// The PKCE `code_verifier` (RFC 7636 §4.1): a high-entropy secret the client keeps until the
/// token request.
///
/// Not `Clone` (it is sent once); `Debug` is redacted; the value is read through `.secret()`.
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// A fresh verifier: 32 random bytes, base64url (43 characters), as RFC 7636 §4.1
    /// recommends.
    pub fn generate() -> Self {
        Self(random_b64url(32))
    }

    /// Parses a verifier received in a token request.
    pub fn parse(value: String) -> Result<Self, PkceError> {
        let ok = (43..=128).contains(&value.len())
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
        if ok {
            Ok(Self(value))
        } else {
            Err(PkceError::MalformedVerifier)
        }
    }

    /// The verifier itself.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CodeVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeVerifier([redacted])")
    }
}

impl PartialEq for CodeVerifier {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for CodeVerifier {}

impl Serialize for CodeVerifier {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CodeVerifier {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The PKCE `code_challenge` for the `S256` method (RFC 7636 §4.2):
/// `BASE64URL(SHA256(ASCII(code_verifier)))`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The S256 challenge of `verifier`.
    pub fn from_verifier(verifier: &CodeVerifier) -> Self {
        Self(b64url(sha256(verifier.0.as_bytes())))
    }

    /// Parses a challenge received in an authorization request. An S256 challenge is always 43
    /// base64url characters; anything else could never match a verifier.
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        if value.len() == 43 && value.chars().all(is_b64url_char) {
            Ok(Self(value.to_owned()))
        } else {
            Err(PkceError::MalformedChallenge)
        }
    }

    /// The challenge as sent and stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` hashes to this challenge (RFC 7636 §4.6), compared in constant time.
    pub fn verify(&self, verifier: &CodeVerifier) -> bool {
        let expected = Self::from_verifier(verifier);
        expected.0.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CodeChallenge").field(&self.0).finish()
    }
}

impl fmt::Display for CodeChallenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CodeChallenge {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CodeChallenge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The `code_challenge_method` (RFC 7636 §4.3). Only `S256` exists here: parsing `plain` gives
/// [`PkceError::PlainNotSupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CodeChallengeMethod {
    /// `S256`: SHA-256 of the verifier.
    #[default]
    S256,
}

impl CodeChallengeMethod {
    /// Parses the method name (case-sensitive, as RFC 7636 §4.3 defines it).
    pub fn parse(value: &str) -> Result<Self, PkceError> {
        match value {
            "S256" => Ok(Self::S256),
            "plain" => Err(PkceError::PlainNotSupported),
            _ => Err(PkceError::UnknownMethod),
        }
    }

    /// The method name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::S256 => "S256",
        }
    }
}

impl fmt::Display for CodeChallengeMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CodeChallengeMethod {
    type Err = PkceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for CodeChallengeMethod {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CodeChallengeMethod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}
