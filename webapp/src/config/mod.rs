//! Typed configuration read from the environment (and `.env`), failing with the setting's name.

use std::fmt;
use std::time::Duration;

use url::Url;

/// Length of a session secret in bytes before encoding, as printed by `webapp secret`.
const GENERATED_SECRET_BYTES: usize = 48;
/// The shortest session secret accepted, in bytes (the cookie keys are derived from it).
pub const MIN_SESSION_SECRET_BYTES: usize = 32;
/// NextAuth's default session lifetime: 30 days, renewed while the user keeps coming back.
pub const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Default time a client may take to send a request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// One setting that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The environment variable's name, e.g. `OIDC_ISSUER`.
    pub setting: &'static str,
    /// What is wrong with it, for a human.
    pub reason: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.reason)
    }
}

/// Every problem found in the configuration, so one start-up reports them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<SettingError>);

impl ConfigError {
    fn single(setting: &'static str, reason: impl Into<String>) -> Self {
        Self(vec![SettingError {
            setting,
            reason: reason.into(),
        }])
    }

    /// The names of the settings at fault.
    pub fn settings(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.setting).collect()
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration:")?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

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
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    original: String,
    url: Url,
}

impl Issuer {
    /// Parses an http(s) URL without query or fragment.
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("must not have a query or fragment".into());
        }
        if url.host_str().is_none() {
            return Err("must have a host".into());
        }
        Ok(Self {
            original: value.to_owned(),
            url,
        })
    }

    /// Exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.original
    }

    /// Parsed form, for building URLs under it.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Issuer").field(&self.original).finish()
    }
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
    let url = Url::parse(value).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.host_str().is_none() {
        return Err("must have a host".into());
    }
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

/// The client secret registered at the provider (`OIDC_CLIENT_SECRET`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Any non-empty string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
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

/// All of the web app's settings. Public fields, so tests can build one in code; `from_env`
/// for the binary.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `WEBAPP_URL`: the public base URL (redirect URIs are built from it).
    pub url: AppUrl,
    /// `WEBAPP_ADDR`: the listen address.
    pub addr: String,
    /// `WEBAPP_SESSION_SECRET`.
    pub session_secret: SessionSecret,
    /// `OIDC_ISSUER`: the public issuer, as browsers and the `iss` claim see it.
    pub issuer: Issuer,
    /// `OIDC_BACKCHANNEL_URL`: where the web app itself reaches the provider, if not the issuer.
    pub backchannel_url: Option<BackchannelUrl>,
    /// `OIDC_CLIENT_ID`.
    pub client_id: String,
    /// `OIDC_CLIENT_SECRET` (absent for a public client, which then relies on PKCE alone).
    pub client_secret: Option<ClientSecret>,
    /// `OIDC_PROVIDER_ID` (default `provider`).
    pub provider_id: ProviderId,
    /// `OIDC_PROVIDER_NAME` (default `OIDC Provider`): the button says "Sign in with {name}".
    pub provider_name: String,
    /// `OIDC_SCOPES` (default `openid profile email offline_access`); always contains `openid`.
    pub scopes: Vec<String>,
    /// `WEBAPP_PROVIDER_LOGOUT` (default true): sign-out also ends the provider's session.
    pub provider_logout: bool,
    /// `WEBAPP_API_URL`: the protected API shown on the home page (default `{issuer}/api/profile`).
    pub api_url: Option<Url>,
    /// `WEBAPP_SESSION_MAX_AGE_SECS` (default 30 days, sliding).
    pub session_max_age: Duration,
    /// `WEBAPP_BODY_TIMEOUT_SECS` (default 10): time a client may take to send a request body
    /// once its head has arrived; a late body is answered 408.
    pub body_timeout: Duration,
    /// `WEBAPP_DATABASE_URL` (default `./data/webapp.db`): the SQLite file of the sessions, a
    /// path or `sqlite://` and a path.
    pub database_path: std::path::PathBuf,
}

impl Settings {
    /// Settings with the defaults for everything but the five facts a user must give.
    pub fn new(
        url: &str,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
        session_secret: &str,
    ) -> Result<Self, ConfigError> {
        let mut vars = vec![
            ("WEBAPP_URL", url),
            ("OIDC_ISSUER", issuer),
            ("OIDC_CLIENT_ID", client_id),
            ("WEBAPP_SESSION_SECRET", session_secret),
        ];
        if !client_secret.is_empty() {
            vars.push(("OIDC_CLIENT_SECRET", client_secret));
        }
        Self::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    /// Reads `.env` (when present) and then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::single(".env", e.to_string())),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the settings from any source of variables (the environment, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        // Empty values count as unset, as in most `.env` conventions.
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let url = check(
            &mut errors,
            "WEBAPP_URL",
            AppUrl::parse(&get("WEBAPP_URL").unwrap_or_else(|| "http://localhost:3000".into())),
        );
        let addr = get("WEBAPP_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
        let session_secret = check(
            &mut errors,
            "WEBAPP_SESSION_SECRET",
            get("WEBAPP_SESSION_SECRET")
                .ok_or_else(|| {
                    "is required (generate one with `webapp secret` and put it in .env)".to_owned()
                })
                .and_then(|v| SessionSecret::parse(&v)),
        );
        let issuer = check(
            &mut errors,
            "OIDC_ISSUER",
            Issuer::parse(&get("OIDC_ISSUER").unwrap_or_else(|| "http://localhost:8000".into())),
        );
        let backchannel_url = match get("OIDC_BACKCHANNEL_URL") {
            None => Some(None),
            Some(v) => check(
                &mut errors,
                "OIDC_BACKCHANNEL_URL",
                BackchannelUrl::parse(&v).map(Some),
            ),
        };
        let client_id = check(
            &mut errors,
            "OIDC_CLIENT_ID",
            get("OIDC_CLIENT_ID")
                .ok_or_else(|| "is required (the client id registered at the provider)".into()),
        );
        let client_secret = get("OIDC_CLIENT_SECRET").map(ClientSecret::new);
        let provider_id = check(
            &mut errors,
            "OIDC_PROVIDER_ID",
            ProviderId::parse(&get("OIDC_PROVIDER_ID").unwrap_or_else(|| "provider".into())),
        );
        let provider_name = get("OIDC_PROVIDER_NAME").unwrap_or_else(|| "OIDC Provider".into());
        let scopes = check(
            &mut errors,
            "OIDC_SCOPES",
            parse_scopes(
                &get("OIDC_SCOPES").unwrap_or_else(|| "openid profile email offline_access".into()),
            ),
        );
        let provider_logout = match get("WEBAPP_PROVIDER_LOGOUT") {
            None => Some(true),
            Some(v) => check(&mut errors, "WEBAPP_PROVIDER_LOGOUT", parse_bool(&v)),
        };
        let api_url = match get("WEBAPP_API_URL") {
            None => Some(None),
            Some(v) => check(
                &mut errors,
                "WEBAPP_API_URL",
                Url::parse(&v)
                    .map_err(|e| format!("not a URL ({e})"))
                    .and_then(|u| match u.scheme() {
                        "http" | "https" => Ok(Some(u)),
                        _ => Err("must be an http or https URL".into()),
                    }),
            ),
        };
        let session_max_age = match get("WEBAPP_SESSION_MAX_AGE_SECS") {
            None => Some(DEFAULT_SESSION_MAX_AGE),
            Some(v) => check(
                &mut errors,
                "WEBAPP_SESSION_MAX_AGE_SECS",
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|secs| *secs >= 60)
                    .map(Duration::from_secs)
                    .ok_or_else(|| "must be a number of seconds, at least 60".into()),
            ),
        };
        let body_timeout = match get("WEBAPP_BODY_TIMEOUT_SECS") {
            None => Some(DEFAULT_BODY_TIMEOUT),
            Some(v) => check(
                &mut errors,
                "WEBAPP_BODY_TIMEOUT_SECS",
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|secs| *secs >= 1)
                    .map(Duration::from_secs)
                    .ok_or_else(|| "must be a number of seconds, at least 1".into()),
            ),
        };
        let database_path = check(
            &mut errors,
            "WEBAPP_DATABASE_URL",
            crate::store::parse_database_url(
                &get("WEBAPP_DATABASE_URL").unwrap_or_else(|| "./data/webapp.db".into()),
            ),
        );

        match (
            url,
            session_secret,
            issuer,
            backchannel_url,
            client_id,
            provider_id,
            scopes,
            provider_logout,
            api_url,
            session_max_age,
            body_timeout,
            database_path,
        ) {
            (
                Some(url),
                Some(session_secret),
                Some(issuer),
                Some(backchannel_url),
                Some(client_id),
                Some(provider_id),
                Some(scopes),
                Some(provider_logout),
                Some(api_url),
                Some(session_max_age),
                Some(body_timeout),
                Some(database_path),
            ) if errors.is_empty() => Ok(Self {
                url,
                addr,
                session_secret,
                issuer,
                backchannel_url,
                client_id,
                client_secret,
                provider_id,
                provider_name,
                scopes,
                provider_logout,
                api_url,
                session_max_age,
                body_timeout,
                database_path,
            }),
            _ => Err(ConfigError(errors)),
        }
    }

    /// The redirect URI to register at the provider: `{WEBAPP_URL}/api/auth/callback/{id}`.
    pub fn redirect_uri(&self) -> String {
        self.url
            .join(&format!("/api/auth/callback/{}", self.provider_id.as_str()))
    }

    /// Where the provider sends the browser after logging out: the sign-in page.
    pub fn post_logout_redirect_uri(&self) -> String {
        self.url.join("/api/auth/signin")
    }

    /// The protected API's URL as the browser would name it (before any back-channel rewrite).
    pub fn api_url(&self) -> Url {
        match &self.api_url {
            Some(url) => url.clone(),
            None => {
                let base = self.issuer.as_str().trim_end_matches('/');
                // The issuer parsed as a URL, so appending a path keeps it one.
                Url::parse(&format!("{base}/api/profile"))
                    .unwrap_or_else(|_| self.issuer.url.clone())
            }
        }
    }
}

/// Keeps the value, or records why the setting is invalid.
fn check<T>(
    errors: &mut Vec<SettingError>,
    setting: &'static str,
    result: Result<T, String>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(reason) => {
            errors.push(SettingError { setting, reason });
            None
        }
    }
}

fn parse_scopes(value: &str) -> Result<Vec<String>, String> {
    let scopes: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
    if !scopes.iter().any(|s| s == "openid") {
        return Err("must contain `openid`".into());
    }
    if scopes.iter().any(|s| {
        s.bytes()
            .any(|b| b == b'"' || b == b'\\' || !(0x21..=0x7e).contains(&b))
    }) {
        return Err("contains a character not allowed in a scope".into());
    }
    Ok(scopes)
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_apply_when_only_required_settings_are_given() {
        let settings = Settings::from_lookup(lookup(&[
            ("WEBAPP_SESSION_SECRET", SECRET),
            ("OIDC_CLIENT_ID", "webapp"),
            ("OIDC_CLIENT_SECRET", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(settings.url.url().as_str(), "http://localhost:3000/");
        assert_eq!(settings.addr, "127.0.0.1:3000");
        assert_eq!(settings.issuer.as_str(), "http://localhost:8000");
        assert_eq!(settings.provider_id.as_str(), "provider");
        assert_eq!(settings.provider_name, "OIDC Provider");
        assert_eq!(
            settings.scopes,
            ["openid", "profile", "email", "offline_access"]
        );
        assert!(settings.provider_logout);
        assert!(settings.backchannel_url.is_none());
        assert_eq!(settings.session_max_age, DEFAULT_SESSION_MAX_AGE);
        assert_eq!(
            settings.redirect_uri(),
            "http://localhost:3000/api/auth/callback/provider"
        );
        assert_eq!(
            settings.api_url().as_str(),
            "http://localhost:8000/api/profile"
        );
    }

    #[test]
    fn every_setting_is_read() {
        let settings = Settings::from_lookup(lookup(&[
            ("WEBAPP_URL", "https://app.example"),
            ("WEBAPP_ADDR", "0.0.0.0:3000"),
            ("WEBAPP_SESSION_SECRET", SECRET),
            ("OIDC_ISSUER", "https://id.example/realm"),
            ("OIDC_BACKCHANNEL_URL", "http://provider:8000"),
            ("OIDC_CLIENT_ID", "webapp"),
            ("OIDC_CLIENT_SECRET", "s3cret"),
            ("OIDC_PROVIDER_ID", "my-idp"),
            ("OIDC_PROVIDER_NAME", "My IdP"),
            ("OIDC_SCOPES", "openid email"),
            ("WEBAPP_PROVIDER_LOGOUT", "false"),
            ("WEBAPP_API_URL", "https://api.example/me"),
            ("WEBAPP_SESSION_MAX_AGE_SECS", "3600"),
            (
                "WEBAPP_DATABASE_URL",
                "sqlite:///var/lib/webapp/sessions.db",
            ),
        ]))
        .unwrap();
        assert_eq!(
            settings.database_path,
            std::path::Path::new("/var/lib/webapp/sessions.db")
        );
        assert!(settings.url.is_https());
        assert_eq!(settings.addr, "0.0.0.0:3000");
        assert_eq!(settings.issuer.as_str(), "https://id.example/realm");
        assert_eq!(
            settings.backchannel_url.unwrap().url().as_str(),
            "http://provider:8000/"
        );
        assert_eq!(settings.client_secret.unwrap().secret(), "s3cret");
        assert_eq!(settings.provider_id.as_str(), "my-idp");
        assert_eq!(settings.provider_name, "My IdP");
        assert_eq!(settings.scopes, ["openid", "email"]);
        assert!(!settings.provider_logout);
        assert_eq!(settings.api_url.unwrap().as_str(), "https://api.example/me");
        assert_eq!(settings.session_max_age, Duration::from_secs(3600));
    }

    #[test]
    fn missing_required_settings_are_all_named() {
        let error = Settings::from_lookup(lookup(&[])).unwrap_err();
        assert_eq!(
            error.settings(),
            ["WEBAPP_SESSION_SECRET", "OIDC_CLIENT_ID"]
        );
        let message = error.to_string();
        assert!(
            message.contains("WEBAPP_SESSION_SECRET: is required"),
            "{message}"
        );
        assert!(message.contains("OIDC_CLIENT_ID: is required"), "{message}");
    }

    #[test]
    fn invalid_values_name_their_setting() {
        let cases: &[(&str, &str)] = &[
            ("WEBAPP_URL", "not a url"),
            ("WEBAPP_URL", "ftp://localhost"),
            ("WEBAPP_URL", "http://localhost:3000/app"),
            ("WEBAPP_SESSION_SECRET", "short"),
            ("OIDC_ISSUER", "localhost:8000"),
            ("OIDC_ISSUER", "http://localhost:8000/?x=1"),
            ("OIDC_BACKCHANNEL_URL", "http://provider:8000/some/path"),
            ("OIDC_PROVIDER_ID", "bad/id"),
            ("OIDC_SCOPES", "profile email"),
            ("WEBAPP_PROVIDER_LOGOUT", "maybe"),
            ("WEBAPP_API_URL", "file:///etc/passwd"),
            ("WEBAPP_SESSION_MAX_AGE_SECS", "soon"),
            ("WEBAPP_DATABASE_URL", "postgres://db/webapp"),
        ];
        for (name, value) in cases {
            let mut vars = vec![
                ("WEBAPP_SESSION_SECRET", SECRET),
                ("OIDC_CLIENT_ID", "webapp"),
            ];
            vars.retain(|(k, _)| k != name);
            vars.push((name, value));
            let error = Settings::from_lookup(lookup(&vars)).unwrap_err();
            assert_eq!(error.settings(), [*name], "{name}={value}: {error}");
        }
    }

    #[test]
    fn issuer_is_kept_verbatim() {
        let issuer = Issuer::parse("http://localhost:8000").unwrap();
        assert_eq!(issuer.as_str(), "http://localhost:8000");
        let with_slash = Issuer::parse("http://localhost:8000/").unwrap();
        assert_ne!(issuer, with_slash);
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let settings = Settings::new(
            "http://127.0.0.1:3000",
            "http://127.0.0.1:8000",
            "webapp",
            "client-secret-value",
            SECRET,
        )
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("client-secret-value"));
        assert!(!debug.contains(SECRET));
    }

    #[test]
    fn generated_secrets_are_long_enough_and_fresh() {
        let a = SessionSecret::generate();
        let b = SessionSecret::generate();
        assert!(SessionSecret::parse(a.secret()).is_ok());
        assert_ne!(a.secret(), b.secret());
    }
}
