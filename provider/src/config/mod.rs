//! Typed settings read once from the environment (and a `.env` file) with servicekit's reader:
//! every missing or invalid value is reported at once, each naming its variable, and start-up
//! stops.

mod bootstrap;
mod cookie_secret;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use servicekit::logging::LogFormat;
use servicekit::settings::{Reader, Separator, SettingsError, parse};

pub use bootstrap::{Bootstrap, BootstrapAccount, BootstrapClient};
pub use cookie_secret::CookieSecret;

use crate::storage::Target;

/// Every problem found in the settings, each naming its environment variable.
pub type ConfigError = SettingsError;

/// Limits of the login throttle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginThrottleSettings {
    /// Failed logins for one account within the window before it is throttled.
    pub max_failures_per_account: u32,
    /// Failed logins from one client address within the window before it is throttled.
    pub max_failures_per_address: u32,
    /// Length of the window, in seconds.
    pub window_secs: u64,
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_address: 50,
            window_secs: 300,
        }
    }
}

/// Whether the admin site needs a session with a second factor
/// (`PROVIDER_REQUIRE_MFA_FOR_ADMINS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdminMfa {
    /// Required once any active administrator has a second factor (the default): turning on
    /// the first factor protects the site without locking out administrators who have none.
    #[default]
    Auto,
    /// Always required; administrators without a factor are sent to set one up.
    Required,
    /// Never required.
    Off,
}

impl AdminMfa {
    /// `auto`, `true` or `false` (case ignored).
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "true" => Ok(Self::Required),
            "false" => Ok(Self::Off),
            _ => Err("must be auto, true or false".to_owned()),
        }
    }
}

/// Every setting of the provider.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The public issuer URL, used verbatim (`PROVIDER_ISSUER`); never derived from requests.
    pub issuer: String,
    /// Listen address (`PROVIDER_ADDR`).
    pub addr: String,
    /// Where `GET /metrics` is served (`PROVIDER_METRICS_ADDR`, `host:port`); `None`, the
    /// default, serves no metrics. A listener of its own, never the public one.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Path of the SQLite database file (`PROVIDER_DATABASE_URL`).
    pub database_url: String,
    /// Session cookie key (`PROVIDER_SECRET_KEY`); when absent it is generated and kept in a
    /// file next to the database.
    pub secret_key: Option<CookieSecret>,
    /// bcrypt cost for password hashes (`PROVIDER_BCRYPT_COST`, 4..=31).
    pub bcrypt_cost: u32,
    /// Authorization code lifetime in seconds (`PROVIDER_CODE_TTL_SECS`).
    pub code_ttl_secs: i64,
    /// Access token lifetime in seconds (`PROVIDER_ACCESS_TOKEN_TTL_SECS`).
    pub access_token_ttl_secs: i64,
    /// Refresh token lifetime in seconds (`PROVIDER_REFRESH_TOKEN_TTL_SECS`).
    pub refresh_token_ttl_secs: i64,
    /// ID token lifetime in seconds (`PROVIDER_ID_TOKEN_TTL_SECS`).
    pub id_token_ttl_secs: i64,
    /// Hosts besides localhost and loopback addresses that may use `http` redirect URIs
    /// (`PROVIDER_ALLOW_HTTP_REDIRECT_HOSTS`, comma-separated), e.g. compose service names.
    pub allow_http_redirect_hosts: Vec<String>,
    /// Tracing filter (`PROVIDER_LOG`).
    pub log: String,
    /// How log lines are written (`PROVIDER_LOG_FORMAT`: `text`, the default, or `json`).
    pub log_format: LogFormat,
    /// HTTP worker threads (`PROVIDER_WORKERS`); `None` means one per core.
    pub workers: Option<usize>,
    /// Connections in the database pool (`PROVIDER_DB_POOL_SIZE`).
    pub db_pool_size: u32,
    /// How often to look for signing keys changed by another process, in seconds
    /// (`PROVIDER_KEYS_RELOAD_SECS`).
    pub keys_reload_secs: u64,
    /// Seconds a client may take to send a request body once its head has arrived
    /// (`PROVIDER_BODY_TIMEOUT_SECS`); a late body is answered 408.
    pub body_timeout_secs: u64,
    /// Seconds between two sweeps of expired codes, tokens and grants
    /// (`PROVIDER_SWEEP_INTERVAL_SECS`, 1 to 86400).
    pub sweep_interval_secs: u64,
    /// Days audit events are kept before the sweep removes them
    /// (`PROVIDER_AUDIT_RETENTION_DAYS`, 0 to 36500, default 180; 0 keeps them forever).
    pub audit_retention_days: u32,
    /// Seconds a browser session lasts without being used (`PROVIDER_SESSION_IDLE_SECS`,
    /// 60 up to the absolute lifetime).
    pub session_idle_secs: i64,
    /// Seconds a browser session lasts at most, however active (`PROVIDER_SESSION_MAX_SECS`,
    /// 60 to 400 days).
    pub session_max_secs: i64,
    /// Browser sessions one user keeps at most (`PROVIDER_SESSIONS_PER_USER`, at least 1); a
    /// new login beyond it ends the user's least recently used session.
    pub sessions_per_user: i64,
    /// Attempts at posting one back-channel logout token before giving up
    /// (`PROVIDER_BACKCHANNEL_MAX_ATTEMPTS`, 1 to 20).
    pub backchannel_max_attempts: u32,
    /// Offer the `offline_access` scope and issue refresh tokens (`PROVIDER_OFFLINE_ACCESS`,
    /// default true); off, the provider behaves as one that does not know the scope.
    pub offline_access: bool,
    /// Take the client address for login throttling from the last `X-Forwarded-For` entry
    /// (`PROVIDER_TRUST_FORWARDED_FOR`); only behind a reverse proxy that appends it, since
    /// clients can send the header themselves.
    pub trust_forwarded_for: bool,
    /// Whether the admin site needs a second factor (`PROVIDER_REQUIRE_MFA_FOR_ADMINS`:
    /// `auto`, the default, `true` or `false`).
    pub require_mfa_for_admins: AdminMfa,
    /// Login throttling (`PROVIDER_LOGIN_MAX_FAILURES_PER_ACCOUNT`,
    /// `PROVIDER_LOGIN_MAX_FAILURES_PER_ADDRESS`, `PROVIDER_LOGIN_THROTTLE_WINDOW_SECS`).
    pub login_throttle: LoginThrottleSettings,
    /// Accounts and client created at first start.
    pub bootstrap: Bootstrap,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8000".to_owned(),
            addr: "127.0.0.1:8000".to_owned(),
            metrics_addr: None,
            database_url: "./data/provider.db".to_owned(),
            secret_key: None,
            bcrypt_cost: 12,
            code_ttl_secs: 60,
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            id_token_ttl_secs: 3600,
            allow_http_redirect_hosts: Vec::new(),
            log: "info".to_owned(),
            log_format: LogFormat::Text,
            workers: None,
            db_pool_size: 8,
            keys_reload_secs: 10,
            body_timeout_secs: 10,
            sweep_interval_secs: 60,
            audit_retention_days: 180,
            session_idle_secs: 14 * 24 * 3600,
            session_max_secs: 30 * 24 * 3600,
            sessions_per_user: 32,
            backchannel_max_attempts: 5,
            offline_access: true,
            trust_forwarded_for: false,
            require_mfa_for_admins: AdminMfa::Auto,
            login_throttle: LoginThrottleSettings::default(),
            bootstrap: Bootstrap::default(),
        }
    }
}

impl Settings {
    /// Reads the process environment, after loading a `.env` file from the working directory
    /// if there is one (variables already set win).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::read(Reader::from_env()?)
    }

    /// Reads settings through `lookup` (an environment); unset or empty values take defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(Reader::new(lookup))
    }

    fn read(mut r: Reader<'_>) -> Result<Self, ConfigError> {
        let d = Self::default();
        let settings = Self {
            issuer: r.text("PROVIDER_ISSUER", &d.issuer).trim().to_owned(),
            addr: r.text("PROVIDER_ADDR", &d.addr),
            metrics_addr: r.optional("PROVIDER_METRICS_ADDR", parse::listen_addr),
            database_url: r.text("PROVIDER_DATABASE_URL", &d.database_url),
            secret_key: r.optional("PROVIDER_SECRET_KEY", CookieSecret::parse),
            bcrypt_cost: r.number("PROVIDER_BCRYPT_COST", .., d.bcrypt_cost),
            code_ttl_secs: r.number("PROVIDER_CODE_TTL_SECS", .., d.code_ttl_secs),
            access_token_ttl_secs: r.number(
                "PROVIDER_ACCESS_TOKEN_TTL_SECS",
                ..,
                d.access_token_ttl_secs,
            ),
            refresh_token_ttl_secs: r.number(
                "PROVIDER_REFRESH_TOKEN_TTL_SECS",
                ..,
                d.refresh_token_ttl_secs,
            ),
            id_token_ttl_secs: r.number("PROVIDER_ID_TOKEN_TTL_SECS", .., d.id_token_ttl_secs),
            allow_http_redirect_hosts: r
                .list("PROVIDER_ALLOW_HTTP_REDIRECT_HOSTS", Separator::Comma)
                .into_iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
            log: r.text("PROVIDER_LOG", &d.log),
            log_format: r.or_default("PROVIDER_LOG_FORMAT", d.log_format, LogFormat::parse),
            workers: r.optional_number("PROVIDER_WORKERS", ..),
            db_pool_size: r.number("PROVIDER_DB_POOL_SIZE", .., d.db_pool_size),
            keys_reload_secs: r.number("PROVIDER_KEYS_RELOAD_SECS", .., d.keys_reload_secs),
            body_timeout_secs: r.number("PROVIDER_BODY_TIMEOUT_SECS", .., d.body_timeout_secs),
            sweep_interval_secs: r.number(
                "PROVIDER_SWEEP_INTERVAL_SECS",
                ..,
                d.sweep_interval_secs,
            ),
            audit_retention_days: r.number(
                "PROVIDER_AUDIT_RETENTION_DAYS",
                0..=36_500,
                d.audit_retention_days,
            ),
            session_idle_secs: r.number("PROVIDER_SESSION_IDLE_SECS", .., d.session_idle_secs),
            session_max_secs: r.number("PROVIDER_SESSION_MAX_SECS", .., d.session_max_secs),
            sessions_per_user: r.number("PROVIDER_SESSIONS_PER_USER", .., d.sessions_per_user),
            backchannel_max_attempts: r.number(
                "PROVIDER_BACKCHANNEL_MAX_ATTEMPTS",
                ..,
                d.backchannel_max_attempts,
            ),
            offline_access: r.flag("PROVIDER_OFFLINE_ACCESS", d.offline_access),
            trust_forwarded_for: r.flag("PROVIDER_TRUST_FORWARDED_FOR", d.trust_forwarded_for),
            require_mfa_for_admins: r.or_default(
                "PROVIDER_REQUIRE_MFA_FOR_ADMINS",
                d.require_mfa_for_admins,
                AdminMfa::parse,
            ),
            login_throttle: LoginThrottleSettings {
                max_failures_per_account: r.number(
                    "PROVIDER_LOGIN_MAX_FAILURES_PER_ACCOUNT",
                    ..,
                    d.login_throttle.max_failures_per_account,
                ),
                max_failures_per_address: r.number(
                    "PROVIDER_LOGIN_MAX_FAILURES_PER_ADDRESS",
                    ..,
                    d.login_throttle.max_failures_per_address,
                ),
                window_secs: r.number(
                    "PROVIDER_LOGIN_THROTTLE_WINDOW_SECS",
                    ..,
                    d.login_throttle.window_secs,
                ),
            },
            bootstrap: Bootstrap::read(&mut r),
        };
        // What could not be read, then what was read but is out of bounds: all at once.
        let mut errors = r.finish(|| Some(())).err().unwrap_or_default();
        settings.check(&mut errors);
        errors.into_result()?;
        Ok(settings)
    }

    /// Checks values that are set directly (as tests and the test kit do) as strictly as
    /// values read from the environment, reporting every bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = SettingsError::default();
        self.check(&mut errors);
        errors.into_result()
    }

    fn check(&self, errors: &mut SettingsError) {
        if let Err(reason) = check_issuer(&self.issuer) {
            errors.push("PROVIDER_ISSUER", reason);
        }
        if self.addr.trim().is_empty() {
            errors.push("PROVIDER_ADDR", "must not be empty");
        }
        match Target::parse(&self.database_url) {
            Err(reason) => errors.push("PROVIDER_DATABASE_URL", reason),
            Ok(Target::Sqlite(path))
                if self.database_url.trim().is_empty()
                    || path.to_string_lossy().contains(":memory:") =>
            {
                errors.push(
                    "PROVIDER_DATABASE_URL",
                    "must be the path of a SQLite database file or a postgres:// URL",
                );
            }
            // Replicas on one PostgreSQL database must share the cookie key, and there is no
            // folder of the database to keep a generated one in.
            Ok(Target::Postgres(_)) if self.secret_key.is_none() => errors.push(
                "PROVIDER_SECRET_KEY",
                "must be set when PROVIDER_DATABASE_URL is a PostgreSQL database (the same key on every replica)",
            ),
            Ok(_) => {}
        }
        between(
            errors,
            "PROVIDER_BCRYPT_COST",
            self.bcrypt_cost.into(),
            4,
            31,
        );
        between(errors, "PROVIDER_CODE_TTL_SECS", self.code_ttl_secs, 1, 600);
        for (name, value) in [
            ("PROVIDER_ACCESS_TOKEN_TTL_SECS", self.access_token_ttl_secs),
            (
                "PROVIDER_REFRESH_TOKEN_TTL_SECS",
                self.refresh_token_ttl_secs,
            ),
            ("PROVIDER_ID_TOKEN_TTL_SECS", self.id_token_ttl_secs),
        ] {
            between(errors, name, value, 1, i64::MAX);
        }
        for (name, value) in [
            ("PROVIDER_WORKERS", self.workers.unwrap_or(1) as u64),
            ("PROVIDER_DB_POOL_SIZE", self.db_pool_size.into()),
            ("PROVIDER_KEYS_RELOAD_SECS", self.keys_reload_secs),
            ("PROVIDER_BODY_TIMEOUT_SECS", self.body_timeout_secs),
            (
                "PROVIDER_LOGIN_MAX_FAILURES_PER_ACCOUNT",
                self.login_throttle.max_failures_per_account.into(),
            ),
            (
                "PROVIDER_LOGIN_MAX_FAILURES_PER_ADDRESS",
                self.login_throttle.max_failures_per_address.into(),
            ),
            (
                "PROVIDER_LOGIN_THROTTLE_WINDOW_SECS",
                self.login_throttle.window_secs,
            ),
        ] {
            if value == 0 {
                errors.push(name, "must be at least 1");
            }
        }
        if self.sessions_per_user < 1 {
            errors.push("PROVIDER_SESSIONS_PER_USER", "must be at least 1");
        }
        between(
            errors,
            "PROVIDER_BACKCHANNEL_MAX_ATTEMPTS",
            self.backchannel_max_attempts.into(),
            1,
            20,
        );
        between(
            errors,
            "PROVIDER_SWEEP_INTERVAL_SECS",
            i64::try_from(self.sweep_interval_secs).unwrap_or(i64::MAX),
            1,
            86_400,
        );
        const MAX_SESSION_SECS: i64 = 400 * 86_400;
        if (60..=MAX_SESSION_SECS).contains(&self.session_max_secs) {
            // The idle limit is checked against a valid absolute lifetime only.
            if !(60..=self.session_max_secs).contains(&self.session_idle_secs) {
                errors.push(
                    "PROVIDER_SESSION_IDLE_SECS",
                    format!(
                        "must be between 60 and PROVIDER_SESSION_MAX_SECS ({}) (got {})",
                        self.session_max_secs, self.session_idle_secs
                    ),
                );
            }
        } else {
            errors.push(
                "PROVIDER_SESSION_MAX_SECS",
                format!(
                    "must be between 60 and {MAX_SESSION_SECS} (400 days) (got {})",
                    self.session_max_secs
                ),
            );
        }
        self.bootstrap
            .check(&self.allow_http_redirect_hosts, errors);
    }

    /// Where the database is: a SQLite file or a PostgreSQL server (a URL of another kind is
    /// refused by [`Self::validate`]; here it is taken for a file path).
    pub fn database_target(&self) -> Target {
        Target::parse(&self.database_url)
            .unwrap_or_else(|_| Target::Sqlite(PathBuf::from(self.database_url.trim())))
    }

    /// The database file path (`sqlite://` prefixes are accepted and removed).
    pub fn database_path(&self) -> PathBuf {
        let url = self.database_url.trim();
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        PathBuf::from(path)
    }

    /// Where a generated cookie key is kept: next to the database.
    pub fn secret_key_path(&self) -> PathBuf {
        let db = self.database_path();
        let dir = db.parent().unwrap_or(Path::new("."));
        dir.join("provider.secret_key")
    }

    /// `{issuer}{path}`, for absolute links such as discovery endpoints.
    pub fn issuer_url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// Whether cookies must carry the `Secure` attribute (an https issuer).
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// Records `name` unless `value` is within `low..=high`.
fn between(errors: &mut SettingsError, name: &'static str, value: i64, low: i64, high: i64) {
    if !(low..=high).contains(&value) {
        errors.push(
            name,
            format!("must be between {low} and {high} (got {value})"),
        );
    }
}

/// An http(s) URL without query, fragment or trailing slash.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer)
        .map_err(|e| format!("must be an absolute URL ({e}): {issuer:?}"))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || issuer.ends_with('/')
    {
        return Err(format!(
            "must be an http(s) URL without query, fragment or trailing slash: {issuer:?}"
        ));
    }
    Ok(())
}
