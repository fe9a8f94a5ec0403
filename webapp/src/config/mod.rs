//! Typed configuration read from the environment (and `.env`), failing with every bad setting's
//! name at once.

mod values;

use std::time::Duration;

use oidc_core::types::{ClientId, ClientSecret, IssuerUrl};
use servicekit::logging::LogFormat;
use servicekit::settings::{Reader, parse};
use url::Url;

pub use servicekit::settings::{SettingError, SettingsError as ConfigError};
pub use values::{
    AcrValues, AppUrl, BackchannelUrl, MIN_SESSION_SECRET_BYTES, ProviderId, RequestedScopes,
    SessionSecret, parse_issuer,
};

/// NextAuth's default session lifetime: 30 days, renewed while the user keeps coming back.
pub const DEFAULT_SESSION_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Default time a client may take to send a request body.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// All of the web app's settings. Public fields, so tests can build one in code; `from_env`
/// for the binary.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `WEBAPP_URL`: the public base URL (redirect URIs are built from it).
    pub url: AppUrl,
    /// `WEBAPP_ADDR`: the listen address.
    pub addr: String,
    /// `WEBAPP_METRICS_ADDR` (`host:port`): where `GET /metrics` is served, on a listener of its
    /// own; unset, the default, serves no metrics.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// `WEBAPP_SESSION_SECRET`.
    pub session_secret: SessionSecret,
    /// `OIDC_ISSUER`: the public issuer, as browsers and the `iss` claim see it.
    pub issuer: IssuerUrl,
    /// `OIDC_BACKCHANNEL_URL`: where the web app itself reaches the provider, if not the issuer.
    pub backchannel_url: Option<BackchannelUrl>,
    /// `OIDC_CLIENT_ID`.
    pub client_id: ClientId,
    /// `OIDC_CLIENT_SECRET` (absent for a public client, which then relies on PKCE alone).
    pub client_secret: Option<ClientSecret>,
    /// `OIDC_PROVIDER_ID` (default `provider`).
    pub provider_id: ProviderId,
    /// `OIDC_PROVIDER_NAME` (default `OIDC Provider`): the button says "Sign in with {name}".
    pub provider_name: String,
    /// `OIDC_SCOPES` (default `openid profile email offline_access`); always contains `openid`.
    /// Only those the provider lists in `scopes_supported` (when it lists any) are asked for.
    pub scopes: RequestedScopes,
    /// `OIDC_ACR_VALUES` (optional, space-separated): sent as `acr_values` in every
    /// authorization request; a sign-in whose ID token's `acr` is not one of them is refused.
    pub acr_values: AcrValues,
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
    /// `WEBAPP_LOG` (default `info`): the log filter, e.g. `info,webapp=debug`.
    pub log: String,
    /// `WEBAPP_LOG_FORMAT` (`text` or `json`, default `text`).
    pub log_format: LogFormat,
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
        Self::read(Reader::from_pairs(&vars))
    }

    /// Reads `.env` (when present) and then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Reader::from_env()?)
    }

    /// Builds the settings from any source of variables (the environment, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(Reader::new(lookup))
    }

    fn read(mut env: Reader<'_>) -> Result<Self, ConfigError> {
        let url = env.parse_or("WEBAPP_URL", "http://localhost:3000", AppUrl::parse);
        let addr = env.text("WEBAPP_ADDR", "127.0.0.1:3000");
        let metrics_addr = env.optional("WEBAPP_METRICS_ADDR", parse::listen_addr);
        let session_secret = env.required(
            "WEBAPP_SESSION_SECRET",
            "generate one with `webapp secret` and put it in .env",
            SessionSecret::parse,
        );
        let issuer = env.parse_or("OIDC_ISSUER", "http://localhost:8000", values::parse_issuer);
        let backchannel_url = env.optional("OIDC_BACKCHANNEL_URL", BackchannelUrl::parse);
        let client_id = env.required(
            "OIDC_CLIENT_ID",
            "the client id registered at the provider",
            |v| ClientId::parse(v).map_err(|e| e.to_string()),
        );
        let client_secret = env.optional("OIDC_CLIENT_SECRET", |v| Ok(ClientSecret::new(v)));
        let provider_id = env.parse_or("OIDC_PROVIDER_ID", "provider", ProviderId::parse);
        let provider_name = env.text("OIDC_PROVIDER_NAME", "OIDC Provider");
        let scopes = env.parse_or(
            "OIDC_SCOPES",
            "openid profile email offline_access",
            RequestedScopes::parse,
        );
        let acr_values = env.parse_or("OIDC_ACR_VALUES", "", AcrValues::parse);
        let provider_logout = env.flag("WEBAPP_PROVIDER_LOGOUT", true);
        let api_url = env.optional("WEBAPP_API_URL", parse::http_url);
        let session_max_age =
            env.seconds("WEBAPP_SESSION_MAX_AGE_SECS", 60.., DEFAULT_SESSION_MAX_AGE);
        let body_timeout = env.seconds("WEBAPP_BODY_TIMEOUT_SECS", 1.., DEFAULT_BODY_TIMEOUT);
        let database_path = env.parse_or(
            "WEBAPP_DATABASE_URL",
            "./data/webapp.db",
            crate::store::parse_database_url,
        );
        let log = env.text("WEBAPP_LOG", "info");
        let log_format = env.or_default("WEBAPP_LOG_FORMAT", LogFormat::Text, LogFormat::parse);
        env.finish(|| {
            Some(Self {
                url: url?,
                addr,
                metrics_addr,
                session_secret: session_secret?,
                issuer: issuer?,
                backchannel_url,
                client_id: client_id?,
                client_secret,
                provider_id: provider_id?,
                provider_name,
                scopes: scopes?,
                acr_values: acr_values?,
                provider_logout,
                api_url,
                session_max_age,
                body_timeout,
                database_path: database_path?,
                log,
                log_format,
            })
        })
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
            // The issuer parsed as a URL, so appending a path keeps it one.
            None => self
                .issuer
                .join_path("api/profile")
                .unwrap_or_else(|_| self.issuer.url().clone()),
        }
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
        assert_eq!(
            settings.metrics_addr, None,
            "no metrics listener unless asked for"
        );
        assert_eq!(settings.issuer.as_str(), "http://localhost:8000");
        assert_eq!(settings.provider_id.as_str(), "provider");
        assert_eq!(settings.provider_name, "OIDC Provider");
        assert_eq!(
            settings.scopes.names(),
            ["openid", "profile", "email", "offline_access"]
        );
        assert_eq!(settings.log, "info");
        assert_eq!(settings.log_format, LogFormat::Text);
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
            ("WEBAPP_METRICS_ADDR", "0.0.0.0:9101"),
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
            ("WEBAPP_LOG", "warn,webapp=debug"),
            ("WEBAPP_LOG_FORMAT", "json"),
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
        assert_eq!(settings.metrics_addr.unwrap().to_string(), "0.0.0.0:9101");
        assert_eq!(settings.issuer.as_str(), "https://id.example/realm");
        assert_eq!(
            settings.backchannel_url.unwrap().url().as_str(),
            "http://provider:8000/"
        );
        assert_eq!(settings.client_secret.unwrap().secret(), "s3cret");
        assert_eq!(settings.provider_id.as_str(), "my-idp");
        assert_eq!(settings.provider_name, "My IdP");
        assert_eq!(settings.scopes.names(), ["openid", "email"]);
        assert_eq!(settings.log, "warn,webapp=debug");
        assert_eq!(settings.log_format, LogFormat::Json);
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
            ("OIDC_ACR_VALUES", "urn:\"quoted\""),
            ("WEBAPP_PROVIDER_LOGOUT", "maybe"),
            ("WEBAPP_API_URL", "file:///etc/passwd"),
            ("WEBAPP_SESSION_MAX_AGE_SECS", "soon"),
            ("WEBAPP_DATABASE_URL", "postgres://db/webapp"),
            ("WEBAPP_LOG_FORMAT", "xml"),
            ("WEBAPP_BODY_TIMEOUT_SECS", "0"),
            ("WEBAPP_METRICS_ADDR", "9101"),
            ("WEBAPP_METRICS_ADDR", "metrics.example:9101"),
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
    fn every_bad_setting_is_reported_at_once() {
        let error = Settings::from_lookup(lookup(&[
            ("WEBAPP_URL", "ftp://localhost"),
            ("OIDC_CLIENT_ID", "webapp"),
            ("OIDC_SCOPES", "profile"),
            ("WEBAPP_LOG_FORMAT", "pretty"),
        ]))
        .unwrap_err();
        assert_eq!(
            error.settings(),
            [
                "WEBAPP_URL",
                "WEBAPP_SESSION_SECRET",
                "OIDC_SCOPES",
                "WEBAPP_LOG_FORMAT"
            ]
        );
        let message = error.to_string();
        assert!(
            message.contains("WEBAPP_LOG_FORMAT: must be text or json"),
            "{message}"
        );
    }

    #[test]
    fn issuer_is_kept_verbatim() {
        let issuer = IssuerUrl::parse("http://localhost:8000").unwrap();
        assert_eq!(issuer.as_str(), "http://localhost:8000");
        let with_slash = IssuerUrl::parse("http://localhost:8000/").unwrap();
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
