//! URL-valued protocol values that keep the original string and compare it byte for byte
//! (RFC 6749 §3.1.2, RFC 9700 §4.1.3, OpenID Connect Discovery 1.0 §3).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use super::{MAX_VALUE_LEN, ParseError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
