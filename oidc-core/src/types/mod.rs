//! Protocol values as newtypes, so a state cannot be passed where a nonce is expected (RFC 6749,
//! OpenID Connect Core 1.0).
//!
//! URL-valued types ([`RedirectUri`], [`IssuerUrl`]) keep the original string beside the parsed
//! URL and compare the string byte for byte: OAuth requires exact matching, not matching after
//! normalization. Secret types ([`AuthorizationCode`], [`AccessToken`], [`RefreshToken`],
//! [`ClientSecret`]) redact `Debug`, expose the value only through `.secret()`, compare in
//! constant time and give the [`TokenHash`] that a server stores instead of the value.
//!
//! ```
//! use oidc_core::types::{AccessToken, RedirectUri, Scopes, TokenHash};
//!
//! // Issue a token, store only its hash, find it again from what the client presents.
//! let token = AccessToken::generate();
//! let stored: TokenHash = token.hash();
//! let presented = AccessToken::parse(token.secret())?;
//! assert_eq!(presented.hash(), stored);
//! assert_eq!(format!("{presented:?}"), "AccessToken([redacted])");
//!
//! // Redirect URIs match byte for byte only.
//! let registered = RedirectUri::parse("https://app.example.com/cb")?;
//! assert_ne!(registered, RedirectUri::parse("https://app.example.com/cb/")?);
//!
//! let granted = Scopes::parse("openid profile email")?;
//! assert!(Scopes::parse("openid email")?.is_subset(&granted));
//! # Ok::<(), oidc_core::types::ParseError>(())
//! ```

mod exact_url;
mod scope;
mod secret;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use subtle::ConstantTimeEq as _;

use crate::encoding::random_b64url;

pub use exact_url::{IssuerUrl, RedirectUri};
pub use scope::{Scope, Scopes};
pub use secret::{AccessToken, AuthorizationCode, ClientSecret, RefreshToken, TokenHash};

/// A value that could not be parsed into one of this module's types: the syntax rules are those
/// of RFC 6749 Appendix A (parameter characters), §3.3 (scope tokens), §3.1.2 (redirect URIs) and
/// RFC 3986 (URIs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not an absolute URL.
    #[error("{what} is not an absolute URL: {reason}")]
    InvalidUrl {
        /// Which value was parsed.
        what: &'static str,
        /// Why the URL parser refused it.
        reason: String,
    },
    /// The URL has a part its role forbids (a fragment, a query, user info...).
    #[error("{what} must not contain {part}")]
    ForbiddenUrlPart {
        /// Which value was parsed.
        what: &'static str,
        /// The forbidden part.
        part: &'static str,
    },
    /// A scope token contains a character outside RFC 6749 §3.3's `scope-token`, or is empty.
    #[error("invalid scope token {0:?}")]
    InvalidScope(String),
    /// More scopes than [`Scopes::MAX_SCOPES`] in one value.
    #[error("too many scopes (at most {0})")]
    TooManyScopes(usize),
    /// The value is empty or longer than allowed.
    #[error("{what} must be between 1 and {max} characters")]
    BadLength {
        /// Which value was parsed.
        what: &'static str,
        /// Maximum length in bytes.
        max: usize,
    },
    /// The value contains characters its role forbids.
    #[error("{what} contains a forbidden character")]
    InvalidCharacter {
        /// Which value was parsed.
        what: &'static str,
    },
}

/// Longest accepted opaque protocol value (client id, state, nonce, subject, secret), in bytes.
///
/// Protects servers against absurd inputs; far above what any real value needs.
pub const MAX_VALUE_LEN: usize = 2048;

/// Longest accepted secret value (tokens issued by other servers may be JWTs), in bytes.
pub const MAX_SECRET_LEN: usize = 8192;

/// Checks the constraints shared by opaque protocol strings: 1..=[`MAX_VALUE_LEN`] bytes of
/// visible ASCII and spaces (RFC 6749 Appendix A: `VSCHAR` / `NQSCHAR`).
fn check_opaque(what: &'static str, value: &str) -> Result<(), ParseError> {
    check_opaque_max(what, value, MAX_VALUE_LEN)
}

fn check_opaque_max(what: &'static str, value: &str, max: usize) -> Result<(), ParseError> {
    if value.is_empty() || value.len() > max {
        return Err(ParseError::BadLength { what, max });
    }
    if !value.chars().all(|c| (' '..='~').contains(&c)) {
        return Err(ParseError::InvalidCharacter { what });
    }
    Ok(())
}

/// Declares a plain (non-secret) string newtype.
macro_rules! plain_string {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value without checking it (for values this program made itself).
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// Parses a value received from outside: 1 to [`MAX_VALUE_LEN`] bytes of visible
            /// ASCII (RFC 6749 Appendix A).
            pub fn parse(value: &str) -> Result<Self, ParseError> {
                check_opaque($what, value)?;
                Ok(Self(value.to_owned()))
            }

            /// The value as sent on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The owned value.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                check_opaque($what, &s).map_err(serde::de::Error::custom)?;
                Ok(Self(s))
            }
        }
    };
}

plain_string!(
    /// An OAuth 2.0 client identifier (RFC 6749 §2.2).
    ClientId,
    "client_id"
);
plain_string!(
    /// The subject identifier of an end user, unique and never reassigned within an issuer
    /// (OpenID Connect Core 1.0 §2, `sub`; §8 subject identifier types).
    Subject,
    "sub"
);

/// Declares a random, unguessable but non-secret-at-rest string newtype (state, nonce).
macro_rules! random_string {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        plain_string!($(#[$meta])* $name, $what);

        impl $name {
            /// A fresh random value: 256 bits from a CSPRNG, base64url (43 characters).
            pub fn generate() -> Self {
                Self(random_b64url(32))
            }

            /// Compares with `other` in constant time (for values that guard a flow).
            pub fn ct_eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }
    };
}

random_string!(
    /// The opaque `state` value binding an authorization request to the user agent's session
    /// (RFC 6749 §4.1.1, §10.12).
    State,
    "state"
);
random_string!(
    /// The `nonce` binding an ID token to the authentication request (OpenID Connect Core 1.0
    /// §3.1.2.1, §15.5.2).
    Nonce,
    "nonce"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_values_accept_visible_ascii_only() {
        assert!(check_opaque("x", "a b~!").is_ok());
        assert!(check_opaque("x", "").is_err());
        assert!(check_opaque("x", "a\nb").is_err());
        assert!(check_opaque("x", "\u{e9}").is_err());
        assert!(check_opaque("x", &"a".repeat(MAX_VALUE_LEN)).is_ok());
        assert!(check_opaque("x", &"a".repeat(MAX_VALUE_LEN + 1)).is_err());
    }
}
