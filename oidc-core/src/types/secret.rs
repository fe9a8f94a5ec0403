//! Secret values: redacted `Debug`, constant-time `==`, and the [`TokenHash`] a server stores
//! instead of the value (RFC 6749 §10.3, RFC 6819 §5.1.4.1.3).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use subtle::ConstantTimeEq as _;

use super::{MAX_SECRET_LEN, ParseError, check_opaque_max};
use crate::encoding::{b64url, random_b64url, sha256};

/// The SHA-256 of a secret, base64url without padding: what a server stores and looks up
/// instead of the secret itself (RFC 6819 §5.1.4.1.3).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes `secret`.
    pub fn of(secret: &str) -> Self {
        Self(b64url(sha256(secret.as_bytes())))
    }

    /// Wraps a hash read back from storage.
    pub fn from_stored(hash: impl Into<String>) -> Self {
        Self(hash.into())
    }

    /// The hash as stored (43 base64url characters).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owned hash.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenHash").field(&self.0).finish()
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Declares a secret string newtype: redacted `Debug`, constant-time `==`, `.secret()`, `.hash()`.
macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        ///
        /// `Debug` prints no part of the value; `==` runs in constant time.
        #[derive(Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random value: 256 bits from a CSPRNG, base64url (43 characters).
            pub fn generate() -> Self {
                Self(random_b64url(32))
            }

            /// Wraps a value without checking it (configuration, values this program made).
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// Parses a value received from outside: 1 to [`MAX_SECRET_LEN`] bytes of visible
            /// ASCII (RFC 6749 Appendix A).
            pub fn parse(value: &str) -> Result<Self, ParseError> {
                check_opaque_max($what, value, MAX_SECRET_LEN)?;
                Ok(Self(value.to_owned()))
            }

            /// The secret value itself: the only way to read it, so every use is visible.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// SHA-256 of the value, base64url: what a server stores instead of the value.
            pub fn hash(&self) -> TokenHash {
                TokenHash::of(&self.0)
            }

            /// Whether this value hashes to `stored` (constant-time comparison of the hashes).
            pub fn matches_hash(&self, stored: &TokenHash) -> bool {
                self.hash().0.as_bytes().ct_eq(stored.0.as_bytes()).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                check_opaque_max($what, &s, MAX_SECRET_LEN).map_err(serde::de::Error::custom)?;
                Ok(Self(s))
            }
        }
    };
}

secret_string!(
    /// A single-use authorization code (RFC 6749 §1.3.1, §4.1.2, §10.5). Not `Clone`: a code is
    /// redeemed once.
    AuthorizationCode,
    "code"
);
secret_string!(
    /// A bearer access token (RFC 6749 §1.4, RFC 6750).
    AccessToken,
    "access_token"
);
secret_string!(
    /// A refresh token (RFC 6749 §1.5, §6).
    RefreshToken,
    "refresh_token"
);
secret_string!(
    /// A client secret for `client_secret_basic` / `client_secret_post` authentication
    /// (RFC 6749 §2.3.1).
    ClientSecret,
    "client_secret"
);

impl Clone for AccessToken {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Clone for RefreshToken {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Clone for ClientSecret {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_equality_is_by_value() {
        let a = ClientSecret::new("s3cret");
        assert_eq!(a, ClientSecret::new("s3cret"));
        assert_ne!(a, ClientSecret::new("s3cret "));
        assert_eq!(a.hash(), TokenHash::of("s3cret"));
        assert_eq!(a.hash().as_str().len(), 43);
    }
}
