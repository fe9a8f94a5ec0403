//! The web app's own kinds of setting values, each parsed once with a message for the operator.

use std::fmt;

use oidc_core::types::{IssuerUrl, ParseError, Scope, Scopes};
use url::Url;

/// Length of a session secret in bytes before encoding, as printed by `webapp secret`.
const GENERATED_SECRET_BYTES: usize = 48;
/// The shortest session secret accepted, in bytes (the cookie keys are derived from it).
pub const MIN_SESSION_SECRET_BYTES: usize = 32;

/// The web app's public base URL (`WEBAPP_URL`): an http(s) origin, with no path, query or fragment.
#[derive(Clone, PartialEq, Eq)]
pub struct AppUrl(Url);

impl AppUrl {
    /// Parses an origin such as `http://localhost:3000` (a trailing `/` is accepted).
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = parse_origin(value)?;
        Ok(Self(url))
    }

    /// The base URL, always ending in `/`.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// `https` base URLs get `Secure` cookies.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// An absolute URL for a path of this app (`path` starts with `/`).
    pub fn join(&self, path: &str) -> String {
        let base = self.0.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }
}

impl fmt::Debug for AppUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AppUrl").field(&self.0.as_str()).finish()
    }
}

/// The provider's public issuer (`OIDC_ISSUER`), kept byte for byte: it must equal the `iss` the
/// provider announces and signs, so it is never normalized.
pub fn parse_issuer(value: &str) -> Result<IssuerUrl, String> {
    IssuerUrl::parse(value).map_err(|e| match e {
        ParseError::InvalidUrl { reason, .. } => format!("not a URL ({reason})"),
        other => other.to_string(),
    })
}

/// Where the web app itself reaches the provider (`OIDC_BACKCHANNEL_URL`): an origin replacing
/// the issuer's origin in server-side requests.
#[derive(Clone, PartialEq, Eq)]
pub struct BackchannelUrl(Url);

impl BackchannelUrl {
    /// Parses an http(s) origin such as `http://provider:8000`.
    pub fn parse(value: &str) -> Result<Self, String> {
        parse_origin(value).map(Self)
    }

    /// The origin as a URL ending in `/`.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Debug for BackchannelUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BackchannelUrl")
            .field(&self.0.as_str())
            .finish()
    }
}

fn parse_origin(value: &str) -> Result<Url, String> {
    let url = servicekit::settings::parse::http_url(value)?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must be an origin like http://localhost:3000, without a path".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    Ok(url)
}

/// The session secret (`WEBAPP_SESSION_SECRET`): the cookie keys are derived from it.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionSecret(String);

impl SessionSecret {
    /// Accepts any string of at least [`MIN_SESSION_SECRET_BYTES`] bytes.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.len() < MIN_SESSION_SECRET_BYTES {
            return Err(format!(
                "must be at least {MIN_SESSION_SECRET_BYTES} bytes long (generate one with `webapp secret`)"
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A fresh random secret, base64url-encoded (what `webapp secret` prints).
    pub fn generate() -> Self {
        use base64::Engine as _;
        use rand::RngCore as _;
        let mut bytes = [0u8; GENERATED_SECRET_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The secret itself.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionSecret([redacted])")
    }
}

/// The id of the provider in NextAuth's routes (`OIDC_PROVIDER_ID`): `[A-Za-z0-9_-]{1,64}`, since
/// it is a path segment of the redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderId(String);

impl ProviderId {
    /// Checks the character set and length.
    pub fn parse(value: &str) -> Result<Self, String> {
        let valid = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err("must be 1 to 64 characters of A-Z, a-z, 0-9, '-' and '_'".into())
        }
    }

    /// The id as used in paths.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The authentication context classes the web app asks for (`OIDC_ACR_VALUES`, OpenID Connect
/// Core §3.1.2.1 `acr_values`), in the configured order, each once. Empty: none asked for, and
/// any `acr` (or none) accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcrValues(Vec<String>);

impl AcrValues {
    /// Parses a space-separated list of values, each of visible ASCII characters other than
    /// `"` and `\` (the characters of a scope token, RFC 6749 §3.3).
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut values: Vec<String> = Vec::new();
        for token in value.split_whitespace() {
            let allowed = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
            if !token.chars().all(allowed) {
                return Err("contains a character not allowed in an acr value".to_owned());
            }
            if !values.iter().any(|v| v == token) {
                values.push(token.to_owned());
            }
        }
        Ok(Self(values))
    }

    /// The values, in the configured order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether none are configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an ID token's `acr` satisfies the request: anything when none were asked for,
    /// else one of the values asked for (OpenID Connect Core §5.5.1.1: a provider may answer
    /// with another class than asked for, which the relying party must then refuse itself).
    pub fn accepts(&self, acr: Option<&str>) -> bool {
        self.is_empty() || acr.is_some_and(|acr| self.0.iter().any(|v| v == acr))
    }
}

/// The scopes the web app asks for (`OIDC_SCOPES`), in the configured order, each once, always
/// with `openid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedScopes(Vec<Scope>);

impl RequestedScopes {
    /// Parses a space-separated list of scope tokens (RFC 6749 §3.3) that contains `openid`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut scopes: Vec<Scope> = Vec::new();
        for token in value.split_whitespace() {
            let scope = Scope::parse(token)
                .map_err(|_| "contains a character not allowed in a scope".to_owned())?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if !scopes.iter().any(|s| s.as_str() == Scope::OPENID) {
            return Err("must contain `openid`".into());
        }
        Ok(Self(scopes))
    }

    /// The scopes, in the configured order.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// The scope names, in the configured order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(Scope::as_str).collect()
    }

    /// Splits the scopes into those a provider listing `supported` knows (always `openid`,
    /// which every OpenID provider serves) and those it does not.
    pub fn split_by_support(&self, supported: &Scopes) -> (Vec<&Scope>, Vec<&Scope>) {
        self.0
            .iter()
            .partition(|s| s.as_str() == Scope::OPENID || supported.contains(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_scopes_keep_their_order_and_drop_what_the_provider_lacks() {
        let requested = RequestedScopes::parse("openid profile email offline_access").unwrap();
        assert_eq!(
            requested.names(),
            ["openid", "profile", "email", "offline_access"]
        );
        let supported = Scopes::parse("openid profile email").unwrap();
        let (kept, dropped) = requested.split_by_support(&supported);
        let names = |scopes: Vec<&Scope>| {
            scopes
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(kept), ["openid", "profile", "email"]);
        assert_eq!(names(dropped), ["offline_access"]);
        // `openid` is asked for even from a provider that forgets to list it.
        let (kept, dropped) = requested.split_by_support(&Scopes::parse("email").unwrap());
        assert_eq!(names(kept), ["openid", "email"]);
        assert_eq!(names(dropped), ["profile", "offline_access"]);
        assert_eq!(
            RequestedScopes::parse("openid email openid")
                .unwrap()
                .names(),
            ["openid", "email"]
        );
    }
}

#[cfg(test)]
mod acr_tests {
    use super::AcrValues;

    #[test]
    fn acr_values_are_parsed_once_each_and_checked() {
        let none = AcrValues::parse("").unwrap();
        assert!(none.is_empty());
        assert!(none.accepts(None) && none.accepts(Some("anything")));
        let values = AcrValues::parse(" urn:mfa  phr urn:mfa ").unwrap();
        assert_eq!(values.iter().collect::<Vec<_>>(), ["urn:mfa", "phr"]);
        assert!(values.accepts(Some("phr")));
        assert!(!values.accepts(Some("urn:other")));
        assert!(!values.accepts(None));
        assert!(AcrValues::parse("urn:\"quoted\"").is_err());
        assert!(AcrValues::parse("caf\u{e9}").is_err());
    }
}
