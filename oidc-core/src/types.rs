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

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq as _;
use url::Url;

use crate::encoding::{b64url, random_b64url, sha256};

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

/// Declares a URL newtype that keeps its original string and compares it byte for byte.
macro_rules! exact_url {
    ($(#[$meta:meta])* $name:ident, $what:literal, $check:path) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name {
            raw: String,
            url: Url,
        }

        impl $name {
            /// Parses `value`, keeping it verbatim.
            pub fn parse(value: &str) -> Result<Self, ParseError> {
                if value.is_empty() || value.len() > MAX_VALUE_LEN {
                    return Err(ParseError::BadLength {
                        what: $what,
                        max: MAX_VALUE_LEN,
                    });
                }
                let url = Url::parse(value).map_err(|e| ParseError::InvalidUrl {
                    what: $what,
                    reason: e.to_string(),
                })?;
                $check(&url)?;
                Ok(Self {
                    raw: value.to_owned(),
                    url,
                })
            }

            /// The original string, exactly as given.
            pub fn as_str(&self) -> &str {
                &self.raw
            }

            /// The parsed URL (normalized by the URL parser: use it to read parts, never to
            /// compare).
            pub fn url(&self) -> &Url {
                &self.url
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.raw == other.raw
            }
        }

        impl Eq for $name {}

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.raw.hash(state)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.raw).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.raw)
            }
        }

        impl std::str::FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.raw)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check_redirect_uri(url: &Url) -> Result<(), ParseError> {
    if url.fragment().is_some() {
        return Err(ParseError::ForbiddenUrlPart {
            what: "redirect_uri",
            part: "a fragment",
        });
    }
    Ok(())
}

fn check_issuer(url: &Url) -> Result<(), ParseError> {
    let forbidden = |part| {
        Err(ParseError::ForbiddenUrlPart {
            what: "issuer",
            part,
        })
    };
    if !matches!(url.scheme(), "https" | "http") {
        return forbidden("a scheme other than https or http");
    }
    if url.query().is_some() {
        return forbidden("a query");
    }
    if url.fragment().is_some() {
        return forbidden("a fragment");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return forbidden("user info");
    }
    Ok(())
}

exact_url!(
    /// A client's redirection endpoint (RFC 6749 §3.1.2): an absolute URI without fragment,
    /// compared byte for byte with the registered one (RFC 9700 §4.1.3).
    RedirectUri,
    "redirect_uri",
    check_redirect_uri
);

exact_url!(
    /// A provider's issuer identifier (OpenID Connect Core 1.0 §2 `iss`, Discovery 1.0 §3): an
    /// `https` (or `http` for local use) URL with no query or fragment, compared byte for byte.
    IssuerUrl,
    "issuer",
    check_issuer
);

impl IssuerUrl {
    /// The URL of an endpoint below the issuer: `join_path("oauth/token")` on
    /// `https://id.example.com` or `https://id.example.com/` gives
    /// `https://id.example.com/oauth/token` (exactly one `/` between the parts).
    pub fn join_path(&self, path: &str) -> Result<Url, ParseError> {
        let joined = format!(
            "{}/{}",
            self.raw.trim_end_matches('/'),
            path.trim_start_matches('/')
        );
        Url::parse(&joined).map_err(|e| ParseError::InvalidUrl {
            what: "endpoint",
            reason: e.to_string(),
        })
    }
}

/// One scope token (RFC 6749 §3.3: `1*( %x21 / %x23-5B / %x5D-7E )`), e.g. `openid`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    /// The `openid` scope that makes an OAuth request an OpenID Connect request
    /// (OpenID Connect Core 1.0 §3.1.2.1).
    pub const OPENID: &'static str = "openid";

    /// Parses one scope token.
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let ok = !value.is_empty()
            && value.len() <= 256
            && value
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(ParseError::InvalidScope(value.chars().take(64).collect()))
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scope").field(&self.0).finish()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of scopes, space-separated on the wire (RFC 6749 §3.3). Order is not significant;
/// duplicates collapse; `Display` writes them sorted.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(BTreeSet<Scope>);

impl Scopes {
    /// Most scopes accepted in one value.
    pub const MAX_SCOPES: usize = 64;

    /// Parses a space-separated scope list. Empty input gives an empty set; repeated spaces are
    /// tolerated.
    pub fn parse(value: &str) -> Result<Self, ParseError> {
        let mut set = BTreeSet::new();
        for token in value.split(' ').filter(|t| !t.is_empty()) {
            set.insert(Scope::parse(token)?);
            if set.len() > Self::MAX_SCOPES {
                return Err(ParseError::TooManyScopes(Self::MAX_SCOPES));
            }
        }
        Ok(Self(set))
    }

    /// Whether the set holds the scope `scope`.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.0 == scope)
    }

    /// Whether every scope of `self` is in `other` (e.g. a refresh asks for no more than was
    /// granted, RFC 6749 §6).
    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Adds a scope.
    pub fn insert(&mut self, scope: Scope) {
        self.0.insert(scope);
    }

    /// The scopes in `self` that are also in `other`.
    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Scopes(self.0.intersection(&other.0).cloned().collect())
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no scope.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scopes({:?})", self.to_string())
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&s.0)?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Scopes {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

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

    #[test]
    fn scope_tokens_follow_rfc6749_section_3_3() {
        assert!(Scope::parse("openid").is_ok());
        assert!(Scope::parse("urn:example:read!#$").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "\u{7f}"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_equality_is_by_value() {
        let a = ClientSecret::new("s3cret");
        assert_eq!(a, ClientSecret::new("s3cret"));
        assert_ne!(a, ClientSecret::new("s3cret "));
        assert_eq!(a.hash(), TokenHash::of("s3cret"));
        assert_eq!(a.hash().as_str().len(), 43);
    }

    #[test]
    fn url_types_remember_the_original_text() {
        let uri = RedirectUri::parse("HTTPS://App.Example.com:443/cb").unwrap();
        assert_eq!(uri.as_str(), "HTTPS://App.Example.com:443/cb");
        assert_eq!(uri.url().as_str(), "https://app.example.com/cb");
        assert_ne!(
            uri,
            RedirectUri::parse("https://app.example.com/cb").unwrap()
        );
    }
}
