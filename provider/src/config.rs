//! Typed settings read once from the environment (and a `.env` file); a missing or invalid value
//! stops start-up with an error naming the variable.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// A setting that could not be read: the message always names the environment variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    /// The environment variable, e.g. `PROVIDER_BCRYPT_COST`.
    pub setting: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }
}

/// Key material for the encrypted session cookie (at least 64 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct CookieSecret(Vec<u8>);

impl CookieSecret {
    /// Minimum length in bytes: what actix-web's cookie `Key` needs for signing and encryption.
    pub const MIN_LEN: usize = 64;

    /// Parses hex or base64 (standard or URL-safe, padded or not) text of at least 64 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bytes = decode_hex(text)
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .or_else(|| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(text)
                    .ok()
            })
            .or_else(|| base64::engine::general_purpose::URL_SAFE.decode(text).ok())
            .or_else(|| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()
            })
            .ok_or_else(|| "must be hex or base64 text".to_owned())?;
        if bytes.len() < Self::MIN_LEN {
            return Err(format!(
                "must decode to at least {} bytes (got {})",
                Self::MIN_LEN,
                bytes.len()
            ));
        }
        Ok(Self(bytes))
    }

    /// Fresh random key material.
    pub fn generate() -> Self {
        use rand::RngCore as _;
        let mut bytes = vec![0u8; Self::MIN_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Base64 text, as written to the key file.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(..)")
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() % 2 != 0 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// An account created at first start when it does not exist yet.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BootstrapAccount {
    /// Login name.
    pub username: String,
    /// Initial password (at least 8 characters).
    pub password: String,
    /// E-mail address.
    pub email: String,
    /// Given name (may be empty).
    pub given_name: String,
    /// Family name (may be empty).
    pub family_name: String,
}

impl fmt::Debug for BootstrapAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapAccount")
            .field("username", &self.username)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A confidential client kept in line with the settings at every start (created, or its
/// secret, name and URIs updated).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BootstrapClient {
    /// The client id.
    pub client_id: String,
    /// The client secret (at least 32 characters); only its hash is stored.
    pub client_secret: String,
    /// Display name shown on the consent page.
    pub name: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// A resource server allowed to introspect other clients' access tokens
    /// (`PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT`); `None` keeps what is stored (off for a new one).
    pub can_introspect: Option<bool>,
    /// Where logout tokens are posted (`PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_URI`).
    pub backchannel_logout_uri: Option<String>,
    /// Whether logout tokens must carry `sid`
    /// (`PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_SESSION_REQUIRED`).
    pub backchannel_logout_session_required: bool,
}

impl fmt::Debug for BootstrapClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BootstrapClient")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .field("can_introspect", &self.can_introspect)
            .field("backchannel_logout_uri", &self.backchannel_logout_uri)
            .finish_non_exhaustive()
    }
}

/// What to create at first start (each part optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bootstrap {
    /// An administrator (`PROVIDER_BOOTSTRAP_ADMIN_*`).
    pub admin: Option<BootstrapAccount>,
    /// A regular demo user (`PROVIDER_BOOTSTRAP_USER_*`).
    pub user: Option<BootstrapAccount>,
    /// A confidential client (`PROVIDER_BOOTSTRAP_CLIENT_*`).
    pub client: Option<BootstrapClient>,
}

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

/// Every setting of the provider.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The public issuer URL, used verbatim (`PROVIDER_ISSUER`); never derived from requests.
    pub issuer: String,
    /// Listen address (`PROVIDER_ADDR`).
    pub addr: String,
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
            database_url: "./data/provider.db".to_owned(),
            secret_key: None,
            bcrypt_cost: 12,
            code_ttl_secs: 60,
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            id_token_ttl_secs: 3600,
            allow_http_redirect_hosts: Vec::new(),
            log: "info".to_owned(),
            workers: None,
            db_pool_size: 8,
            keys_reload_secs: 10,
            body_timeout_secs: 10,
            sweep_interval_secs: 60,
            session_idle_secs: 14 * 24 * 3600,
            session_max_secs: 30 * 24 * 3600,
            sessions_per_user: 32,
            backchannel_max_attempts: 5,
            offline_access: true,
            trust_forwarded_for: false,
            login_throttle: LoginThrottleSettings::default(),
            bootstrap: Bootstrap::default(),
        }
    }
}

impl Settings {
    /// Reads the process environment, after loading a `.env` file from the working directory
    /// if there is one (variables already set win).
    pub fn from_env() -> Result<Self, ConfigError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new(".env", e.to_string())),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (an environment); unset or empty values take defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        let mut settings = Self {
            issuer: get("PROVIDER_ISSUER").unwrap_or(defaults.issuer),
            addr: get("PROVIDER_ADDR").unwrap_or(defaults.addr),
            database_url: get("PROVIDER_DATABASE_URL").unwrap_or(defaults.database_url),
            secret_key: get("PROVIDER_SECRET_KEY")
                .map(|v| {
                    CookieSecret::parse(&v).map_err(|m| ConfigError::new("PROVIDER_SECRET_KEY", m))
                })
                .transpose()?,
            bcrypt_cost: number(&get, "PROVIDER_BCRYPT_COST", defaults.bcrypt_cost)?,
            code_ttl_secs: number(&get, "PROVIDER_CODE_TTL_SECS", defaults.code_ttl_secs)?,
            access_token_ttl_secs: number(
                &get,
                "PROVIDER_ACCESS_TOKEN_TTL_SECS",
                defaults.access_token_ttl_secs,
            )?,
            refresh_token_ttl_secs: number(
                &get,
                "PROVIDER_REFRESH_TOKEN_TTL_SECS",
                defaults.refresh_token_ttl_secs,
            )?,
            id_token_ttl_secs: number(
                &get,
                "PROVIDER_ID_TOKEN_TTL_SECS",
                defaults.id_token_ttl_secs,
            )?,
            allow_http_redirect_hosts: get("PROVIDER_ALLOW_HTTP_REDIRECT_HOSTS")
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_ascii_lowercase())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            log: get("PROVIDER_LOG").unwrap_or(defaults.log),
            workers: get("PROVIDER_WORKERS")
                .map(|v| parse_number(&v, "PROVIDER_WORKERS"))
                .transpose()?,
            db_pool_size: number(&get, "PROVIDER_DB_POOL_SIZE", defaults.db_pool_size)?,
            keys_reload_secs: number(&get, "PROVIDER_KEYS_RELOAD_SECS", defaults.keys_reload_secs)?,
            body_timeout_secs: number(
                &get,
                "PROVIDER_BODY_TIMEOUT_SECS",
                defaults.body_timeout_secs,
            )?,
            session_idle_secs: number(
                &get,
                "PROVIDER_SESSION_IDLE_SECS",
                defaults.session_idle_secs,
            )?,
            session_max_secs: number(&get, "PROVIDER_SESSION_MAX_SECS", defaults.session_max_secs)?,
            sessions_per_user: number(
                &get,
                "PROVIDER_SESSIONS_PER_USER",
                defaults.sessions_per_user,
            )?,
            backchannel_max_attempts: number(
                &get,
                "PROVIDER_BACKCHANNEL_MAX_ATTEMPTS",
                defaults.backchannel_max_attempts,
            )?,
            sweep_interval_secs: number(
                &get,
                "PROVIDER_SWEEP_INTERVAL_SECS",
                defaults.sweep_interval_secs,
            )?,
            offline_access: get("PROVIDER_OFFLINE_ACCESS")
                .map(|v| boolean(&v, "PROVIDER_OFFLINE_ACCESS"))
                .transpose()?
                .unwrap_or(defaults.offline_access),
            trust_forwarded_for: get("PROVIDER_TRUST_FORWARDED_FOR")
                .map(|v| boolean(&v, "PROVIDER_TRUST_FORWARDED_FOR"))
                .transpose()?
                .unwrap_or(defaults.trust_forwarded_for),
            login_throttle: LoginThrottleSettings {
                max_failures_per_account: number(
                    &get,
                    "PROVIDER_LOGIN_MAX_FAILURES_PER_ACCOUNT",
                    defaults.login_throttle.max_failures_per_account,
                )?,
                max_failures_per_address: number(
                    &get,
                    "PROVIDER_LOGIN_MAX_FAILURES_PER_ADDRESS",
                    defaults.login_throttle.max_failures_per_address,
                )?,
                window_secs: number(
                    &get,
                    "PROVIDER_LOGIN_THROTTLE_WINDOW_SECS",
                    defaults.login_throttle.window_secs,
                )?,
            },
            bootstrap: Bootstrap {
                admin: bootstrap_account(&get, "ADMIN")?,
                user: bootstrap_account(&get, "USER")?,
                client: bootstrap_client(&get)?,
            },
        };
        settings.issuer = settings.issuer.trim().to_owned();
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that are set directly (as tests and the test kit do) as strictly as
    /// values read from the environment.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let issuer = url::Url::parse(&self.issuer).map_err(|e| {
            ConfigError::new(
                "PROVIDER_ISSUER",
                format!("must be an absolute URL ({e}): {:?}", self.issuer),
            )
        })?;
        if !matches!(issuer.scheme(), "http" | "https")
            || issuer.host_str().is_none()
            || issuer.query().is_some()
            || issuer.fragment().is_some()
            || self.issuer.ends_with('/')
        {
            return Err(ConfigError::new(
                "PROVIDER_ISSUER",
                format!(
                    "must be an http(s) URL without query, fragment or trailing slash: {:?}",
                    self.issuer
                ),
            ));
        }
        if self.addr.trim().is_empty() {
            return Err(ConfigError::new("PROVIDER_ADDR", "must not be empty"));
        }
        check_database_url(&self.database_url)?;
        if self.database_url.trim().is_empty()
            || self.database_path().to_string_lossy().contains(":memory:")
        {
            return Err(ConfigError::new(
                "PROVIDER_DATABASE_URL",
                "must be the path of a SQLite database file",
            ));
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(ConfigError::new(
                "PROVIDER_BCRYPT_COST",
                format!("must be between 4 and 31 (got {})", self.bcrypt_cost),
            ));
        }
        if !(1..=600).contains(&self.code_ttl_secs) {
            return Err(ConfigError::new(
                "PROVIDER_CODE_TTL_SECS",
                format!("must be between 1 and 600 (got {})", self.code_ttl_secs),
            ));
        }
        for (name, value) in [
            ("PROVIDER_ACCESS_TOKEN_TTL_SECS", self.access_token_ttl_secs),
            (
                "PROVIDER_REFRESH_TOKEN_TTL_SECS",
                self.refresh_token_ttl_secs,
            ),
            ("PROVIDER_ID_TOKEN_TTL_SECS", self.id_token_ttl_secs),
        ] {
            if value <= 0 {
                return Err(ConfigError::new(
                    name,
                    format!("must be positive (got {value})"),
                ));
            }
        }
        if self.workers == Some(0) {
            return Err(ConfigError::new("PROVIDER_WORKERS", "must be at least 1"));
        }
        if self.db_pool_size == 0 {
            return Err(ConfigError::new(
                "PROVIDER_DB_POOL_SIZE",
                "must be at least 1",
            ));
        }
        if self.keys_reload_secs == 0 {
            return Err(ConfigError::new(
                "PROVIDER_KEYS_RELOAD_SECS",
                "must be at least 1",
            ));
        }
        if self.body_timeout_secs == 0 {
            return Err(ConfigError::new(
                "PROVIDER_BODY_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if !(1..=20).contains(&self.backchannel_max_attempts) {
            return Err(ConfigError::new(
                "PROVIDER_BACKCHANNEL_MAX_ATTEMPTS",
                format!(
                    "must be between 1 and 20 (got {})",
                    self.backchannel_max_attempts
                ),
            ));
        }
        if !(60..=400 * 86_400).contains(&self.session_max_secs) {
            return Err(ConfigError::new(
                "PROVIDER_SESSION_MAX_SECS",
                format!(
                    "must be between 60 and 34560000 (400 days) (got {})",
                    self.session_max_secs
                ),
            ));
        }
        if !(60..=self.session_max_secs).contains(&self.session_idle_secs) {
            return Err(ConfigError::new(
                "PROVIDER_SESSION_IDLE_SECS",
                format!(
                    "must be between 60 and PROVIDER_SESSION_MAX_SECS ({}) (got {})",
                    self.session_max_secs, self.session_idle_secs
                ),
            ));
        }
        if !(1..=86_400).contains(&self.sweep_interval_secs) {
            return Err(ConfigError::new(
                "PROVIDER_SWEEP_INTERVAL_SECS",
                format!(
                    "must be between 1 and 86400 (got {})",
                    self.sweep_interval_secs
                ),
            ));
        }
        if self.login_throttle.max_failures_per_account == 0 {
            return Err(ConfigError::new(
                "PROVIDER_LOGIN_MAX_FAILURES_PER_ACCOUNT",
                "must be at least 1",
            ));
        }
        if self.login_throttle.max_failures_per_address == 0 {
            return Err(ConfigError::new(
                "PROVIDER_LOGIN_MAX_FAILURES_PER_ADDRESS",
                "must be at least 1",
            ));
        }
        if self.sessions_per_user < 1 {
            return Err(ConfigError::new(
                "PROVIDER_SESSIONS_PER_USER",
                "must be at least 1",
            ));
        }
        if self.login_throttle.window_secs == 0 {
            return Err(ConfigError::new(
                "PROVIDER_LOGIN_THROTTLE_WINDOW_SECS",
                "must be at least 1",
            ));
        }
        for (kind, account) in [
            ("ADMIN", &self.bootstrap.admin),
            ("USER", &self.bootstrap.user),
        ] {
            if let Some(account) = account {
                validate_bootstrap_account(kind, account)?;
            }
        }
        if let Some(client) = &self.bootstrap.client {
            if client.client_secret.len() < 32 {
                return Err(ConfigError::new(
                    "PROVIDER_BOOTSTRAP_CLIENT_SECRET",
                    "must be at least 32 characters",
                ));
            }
            if client.redirect_uris.is_empty() {
                return Err(ConfigError::new(
                    "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                    "must list at least one redirect URI",
                ));
            }
            for uri in &client.redirect_uris {
                crate::storage::clients::validate_redirect_uri(
                    uri,
                    &self.allow_http_redirect_hosts,
                )
                .map_err(|e| {
                    ConfigError::new("PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS", e.to_string())
                })?;
            }
            for uri in &client.post_logout_redirect_uris {
                crate::storage::clients::validate_redirect_uri(
                    uri,
                    &self.allow_http_redirect_hosts,
                )
                .map_err(|e| {
                    ConfigError::new(
                        "PROVIDER_BOOTSTRAP_CLIENT_POST_LOGOUT_REDIRECT_URIS",
                        e.to_string(),
                    )
                })?;
            }
        }
        Ok(())
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

/// Refuses a database URL of a kind this build cannot open: it would otherwise be taken for a
/// file path (`postgres://host/db` becoming a SQLite file `./postgres:/host/db`). The URL is not
/// echoed, as it may hold a password.
fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let url = url.trim();
    let Some((scheme, _)) = url.split_once(':') else {
        return Ok(());
    };
    // RFC 3986 scheme syntax; one letter is a Windows drive (`C:\data\provider.db`).
    let is_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return Ok(());
    }
    match scheme.to_ascii_lowercase().as_str() {
        "sqlite" => Ok(()),
        "postgres" | "postgresql" => Err(ConfigError::new(
            "PROVIDER_DATABASE_URL",
            "PostgreSQL is not supported by this build yet; set the path of a SQLite database file (or sqlite://path)",
        )),
        other => Err(ConfigError::new(
            "PROVIDER_DATABASE_URL",
            format!(
                "the scheme {other:?} is not supported; set the path of a SQLite database file (or sqlite://path)"
            ),
        )),
    }
}

fn parse_number<T: std::str::FromStr>(value: &str, name: &'static str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ConfigError::new(name, format!("must be a whole number (got {value:?})")))
}

fn boolean(value: &str, name: &'static str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            name,
            format!("must be true or false (got {value:?})"),
        )),
    }
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        Some(value) => parse_number(&value, name),
        None => Ok(default),
    }
}

fn setting_name(kind: &str, field: &str) -> &'static str {
    // A closed set of names, so `ConfigError` can keep a plain static name.
    match (kind, field) {
        ("ADMIN", "USERNAME") => "PROVIDER_BOOTSTRAP_ADMIN_USERNAME",
        ("ADMIN", "PASSWORD") => "PROVIDER_BOOTSTRAP_ADMIN_PASSWORD",
        ("ADMIN", "EMAIL") => "PROVIDER_BOOTSTRAP_ADMIN_EMAIL",
        ("ADMIN", "GIVEN_NAME") => "PROVIDER_BOOTSTRAP_ADMIN_GIVEN_NAME",
        ("ADMIN", "FAMILY_NAME") => "PROVIDER_BOOTSTRAP_ADMIN_FAMILY_NAME",
        ("USER", "USERNAME") => "PROVIDER_BOOTSTRAP_USER_USERNAME",
        ("USER", "PASSWORD") => "PROVIDER_BOOTSTRAP_USER_PASSWORD",
        ("USER", "EMAIL") => "PROVIDER_BOOTSTRAP_USER_EMAIL",
        ("USER", "GIVEN_NAME") => "PROVIDER_BOOTSTRAP_USER_GIVEN_NAME",
        ("USER", "FAMILY_NAME") => "PROVIDER_BOOTSTRAP_USER_FAMILY_NAME",
        _ => "PROVIDER_BOOTSTRAP",
    }
}

fn bootstrap_account(
    get: &impl Fn(&str) -> Option<String>,
    kind: &str,
) -> Result<Option<BootstrapAccount>, ConfigError> {
    let field = |f: &str| get(setting_name(kind, f));
    let Some(username) = field("USERNAME") else {
        if field("PASSWORD").is_some() {
            return Err(ConfigError::new(
                setting_name(kind, "USERNAME"),
                "must be set when the password is",
            ));
        }
        return Ok(None);
    };
    let password = field("PASSWORD").ok_or_else(|| {
        ConfigError::new(
            setting_name(kind, "PASSWORD"),
            "must be set when the username is",
        )
    })?;
    Ok(Some(BootstrapAccount {
        username: username.trim().to_owned(),
        password,
        email: field("EMAIL").unwrap_or_default().trim().to_owned(),
        given_name: field("GIVEN_NAME").unwrap_or_default().trim().to_owned(),
        family_name: field("FAMILY_NAME").unwrap_or_default().trim().to_owned(),
    }))
}

fn validate_bootstrap_account(kind: &str, account: &BootstrapAccount) -> Result<(), ConfigError> {
    crate::storage::users::Username::parse(&account.username)
        .map_err(|e| ConfigError::new(setting_name(kind, "USERNAME"), e.to_string()))?;
    crate::storage::users::validate_password(&account.password)
        .map_err(|e| ConfigError::new(setting_name(kind, "PASSWORD"), e.to_string()))?;
    crate::storage::users::validate_email(&account.email)
        .map_err(|e| ConfigError::new(setting_name(kind, "EMAIL"), e.to_string()))?;
    Ok(())
}

fn bootstrap_client(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<BootstrapClient>, ConfigError> {
    let Some(client_id) = get("PROVIDER_BOOTSTRAP_CLIENT_ID") else {
        return Ok(None);
    };
    let client_secret = get("PROVIDER_BOOTSTRAP_CLIENT_SECRET").ok_or_else(|| {
        ConfigError::new(
            "PROVIDER_BOOTSTRAP_CLIENT_SECRET",
            "must be set when PROVIDER_BOOTSTRAP_CLIENT_ID is",
        )
    })?;
    let list = |name: &str| -> Vec<String> {
        get(name)
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    Ok(Some(BootstrapClient {
        name: get("PROVIDER_BOOTSTRAP_CLIENT_NAME").unwrap_or_else(|| client_id.clone()),
        client_id: client_id.trim().to_owned(),
        client_secret: client_secret.trim().to_owned(),
        redirect_uris: list("PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS"),
        post_logout_redirect_uris: list("PROVIDER_BOOTSTRAP_CLIENT_POST_LOGOUT_REDIRECT_URIS"),
        can_introspect: get("PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT")
            .map(|v| boolean(&v, "PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT"))
            .transpose()?,
        backchannel_logout_uri: get("PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_URI")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()),
        backchannel_logout_session_required: get(
            "PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_SESSION_REQUIRED",
        )
        .map(|v| {
            boolean(
                &v,
                "PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_SESSION_REQUIRED",
            )
        })
        .transpose()?
        .unwrap_or(false),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_usable() {
        let s = settings(&[]).expect("defaults");
        assert_eq!(s.issuer, "http://localhost:8000");
        assert_eq!(s.addr, "127.0.0.1:8000");
        assert_eq!(s.bcrypt_cost, 12);
        assert_eq!(s.code_ttl_secs, 60);
        assert_eq!(s.refresh_token_ttl_secs, 30 * 24 * 3600);
        assert!(s.secret_key.is_none());
        assert_eq!(s.bootstrap, Bootstrap::default());
    }

    #[test]
    fn errors_name_the_setting() {
        for (name, value) in [
            ("PROVIDER_BCRYPT_COST", "twelve"),
            ("PROVIDER_BCRYPT_COST", "3"),
            ("PROVIDER_ISSUER", "not a url"),
            ("PROVIDER_ISSUER", "http://localhost:8000/"),
            ("PROVIDER_SECRET_KEY", "too-short"),
            ("PROVIDER_CODE_TTL_SECS", "0"),
            ("PROVIDER_ACCESS_TOKEN_TTL_SECS", "-5"),
            ("PROVIDER_DATABASE_URL", ":memory:"),
            ("PROVIDER_TRUST_FORWARDED_FOR", "maybe"),
            ("PROVIDER_OFFLINE_ACCESS", "sometimes"),
            ("PROVIDER_SWEEP_INTERVAL_SECS", "0"),
            ("PROVIDER_SWEEP_INTERVAL_SECS", "86401"),
            ("PROVIDER_SESSION_IDLE_SECS", "59"),
            ("PROVIDER_SESSION_IDLE_SECS", "2592001"),
            ("PROVIDER_SESSION_MAX_SECS", "-1"),
            ("PROVIDER_BACKCHANNEL_MAX_ATTEMPTS", "0"),
            ("PROVIDER_SESSION_MAX_SECS", "34560001"),
        ] {
            let err = settings(&[(name, value)]).expect_err(name);
            assert_eq!(err.setting, name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn database_url_schemes() {
        for url in [
            "postgres://user@127.0.0.1:5432/provider",
            "postgresql://user@127.0.0.1:5432/provider",
            "POSTGRES://user@127.0.0.1/provider",
        ] {
            let err = settings(&[("PROVIDER_DATABASE_URL", url)]).expect_err(url);
            assert_eq!(err.setting, "PROVIDER_DATABASE_URL");
            assert!(err.message.contains("PostgreSQL"), "{err}");
        }
        for url in ["mysql://h/db", "file:provider.db", "https://example.com/db"] {
            let err = settings(&[("PROVIDER_DATABASE_URL", url)]).expect_err(url);
            assert_eq!(err.setting, "PROVIDER_DATABASE_URL");
            assert!(err.message.contains("not supported"), "{err}");
        }
        for (url, path) in [
            ("provider.db", "provider.db"),
            ("./data/provider.db", "./data/provider.db"),
            (
                "/var/lib/provider/provider.db",
                "/var/lib/provider/provider.db",
            ),
            ("sqlite://data/provider.db", "data/provider.db"),
            ("sqlite:provider.db", "provider.db"),
            ("sqlite:///var/lib/p.db", "/var/lib/p.db"),
            ("C:\\data\\provider.db", "C:\\data\\provider.db"),
        ] {
            let s = settings(&[("PROVIDER_DATABASE_URL", url)]).expect(url);
            assert_eq!(s.database_path(), PathBuf::from(path));
        }
    }

    #[test]
    fn secret_key_accepts_hex_and_base64() {
        let hex = "ab".repeat(64);
        assert_eq!(CookieSecret::parse(&hex).expect("hex").as_bytes().len(), 64);
        let b64 = CookieSecret::generate().to_base64();
        assert_eq!(CookieSecret::parse(&b64).expect("b64").as_bytes().len(), 64);
    }

    #[test]
    fn bootstrap_is_read_and_checked() {
        let s = settings(&[
            ("PROVIDER_BOOTSTRAP_ADMIN_USERNAME", "admin"),
            ("PROVIDER_BOOTSTRAP_ADMIN_PASSWORD", "admin-password-123"),
            ("PROVIDER_BOOTSTRAP_CLIENT_ID", "webapp"),
            ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", &"s".repeat(40)),
            (
                "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                "http://localhost:3000/cb https://app.example/cb",
            ),
        ])
        .expect("bootstrap");
        assert_eq!(s.bootstrap.admin.expect("admin").username, "admin");
        let client = s.bootstrap.client.expect("client");
        assert_eq!(client.redirect_uris.len(), 2);
        assert_eq!(client.name, "webapp");
        assert_eq!(client.can_introspect, None);
        let client_vars = [
            ("PROVIDER_BOOTSTRAP_CLIENT_ID", "api"),
            ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", &"s".repeat(40)),
            (
                "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                "https://api.example/cb",
            ),
        ];
        let with = |value| {
            let mut vars = client_vars.to_vec();
            vars.push(("PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT", value));
            settings(&vars)
        };
        let client = with("true").expect("introspect").bootstrap.client;
        assert_eq!(client.expect("client").can_introspect, Some(true));
        let err = with("sometimes").expect_err("bad flag");
        assert_eq!(err.setting, "PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT");

        let err = settings(&[("PROVIDER_BOOTSTRAP_ADMIN_USERNAME", "admin")]).expect_err("pw");
        assert_eq!(err.setting, "PROVIDER_BOOTSTRAP_ADMIN_PASSWORD");
        let err = settings(&[
            ("PROVIDER_BOOTSTRAP_CLIENT_ID", "webapp"),
            ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", "short"),
        ])
        .expect_err("secret");
        assert_eq!(err.setting, "PROVIDER_BOOTSTRAP_CLIENT_SECRET");
        let err = settings(&[
            ("PROVIDER_BOOTSTRAP_CLIENT_ID", "webapp"),
            ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", &"s".repeat(40)),
            (
                "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                "http://evil.example/cb",
            ),
        ])
        .expect_err("http redirect");
        assert_eq!(err.setting, "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS");
    }
}
