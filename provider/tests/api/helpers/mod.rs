//! Test support: the real provider on a random loopback port with a fresh database, seeded with
//! an admin, a user and the confidential client `webapp`; more clients and users written
//! straight to its database; and a cookie-keeping user agent ([`Browser`]) that walks the real
//! login and consent pages.
// Shared by every module of this binary; not each uses every helper.
#![allow(dead_code)]

mod authenticator;
mod browser;
pub mod factors;
mod pages;
// The throwaway cluster of the test kit, included rather than depended on: the test kit
// depends on this crate, and these tests need only this module of it.
#[path = "../../../../crates/testkit/src/postgres.rs"]
pub mod postgres;

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use base64::Engine as _;
use diesel::prelude::*;
use oidc_core::types::TokenHash;
use provider::config::{BootstrapAccount, BootstrapClient, Settings};
use provider::startup::Application;
use provider::state::AppState;
use provider::storage::schema::{clients, users};
use reqwest::header::LOCATION;
use reqwest::{Response, StatusCode};
use sha2::Digest as _;
use tempfile::TempDir;
use url::Url;

pub use authenticator::SoftAuthenticator;
pub use browser::{Browser, Consent, Outcome};
pub use pages::{csrf_token, element_text, hidden_fields, input_value, page_text, without_csrf};

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const USER_USERNAME: &str = "alice";
pub const USER_PASSWORD: &str = "alice-password-123";
pub const CLIENT_ID: &str = "webapp";
pub const CLIENT_SECRET: &str = "webapp-secret-0123456789-0123456789-abcdef";
pub const REDIRECT_URI: &str = "http://127.0.0.1:3000/api/auth/callback/provider";
pub const SECOND_REDIRECT_URI: &str = "http://localhost:3000/callback";
pub const POST_LOGOUT_REDIRECT_URI: &str = "http://127.0.0.1:3000/api/auth/signin";

/// Whether the tests run on PostgreSQL (`PROVIDER_TEST_DATABASE=postgres`) rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var("PROVIDER_TEST_DATABASE").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// The database of the provider whose folder is `dir`: with [`on_postgres`], a fresh database
/// in the test process's throwaway cluster, its URL kept in `dir` so that a provider restarted
/// on `dir` finds it again; else the SQLite file `dir/provider.db`.
pub fn database_url_for(dir: &Path) -> String {
    if !on_postgres() {
        return sqlite_url_for(dir);
    }
    // Two providers started together on one folder share one database.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _creating = CREATING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let kept = dir.join("postgres-url");
    if let Ok(url) = std::fs::read_to_string(&kept) {
        return url;
    }
    let url = postgres::fresh_database_blocking().expect("a PostgreSQL test database");
    std::fs::write(&kept, &url).expect("keeping the database URL");
    url
}

/// The SQLite file in `dir`, for the tests about SQLite itself (files, permissions, upgrades).
pub fn sqlite_url_for(dir: &Path) -> String {
    dir.join("provider.db").to_string_lossy().into_owned()
}

/// Makes `settings` use the SQLite file in `dir` whatever the test database, with the cookie
/// key generated next to it: for the tests about SQLite files themselves.
pub fn use_sqlite(settings: &mut Settings, dir: &Path) {
    settings.database_url = sqlite_url_for(dir);
    settings.secret_key = None;
}

/// The environment that points the provider binary at the database of `settings`.
pub fn database_env(settings: &Settings) -> Vec<(&'static str, String)> {
    let mut env = vec![("PROVIDER_DATABASE_URL", settings.database_url.clone())];
    if let Some(key) = &settings.secret_key {
        env.push(("PROVIDER_SECRET_KEY", key.to_base64()));
    }
    env
}

/// Settings for a test provider with its database in `dir` (see [`database_url_for`]): bcrypt
/// cost 4, two workers, keys checked every second, an admin, a user and the confidential client
/// `webapp` (two redirect URIs, one post-logout redirect URI).
pub fn test_settings(dir: &Path) -> Settings {
    let mut settings = Settings {
        database_url: database_url_for(dir),
        // PostgreSQL requires the key (replicas share it); SQLite would generate one.
        secret_key: on_postgres().then(provider::config::CookieSecret::generate),
        bcrypt_cost: 4,
        log: "off".to_owned(),
        workers: Some(2),
        keys_reload_secs: 1,
        ..Settings::default()
    };
    settings.bootstrap.admin = Some(BootstrapAccount {
        username: ADMIN_USERNAME.to_owned(),
        password: ADMIN_PASSWORD.to_owned(),
        email: "admin@example.com".to_owned(),
        ..BootstrapAccount::default()
    });
    settings.bootstrap.user = Some(BootstrapAccount {
        username: USER_USERNAME.to_owned(),
        password: USER_PASSWORD.to_owned(),
        email: "alice@example.com".to_owned(),
        given_name: "Alice".to_owned(),
        family_name: "Example".to_owned(),
    });
    settings.bootstrap.client = Some(BootstrapClient {
        client_id: CLIENT_ID.to_owned(),
        client_secret: CLIENT_SECRET.to_owned(),
        name: "Web app".to_owned(),
        redirect_uris: vec![REDIRECT_URI.to_owned(), SECOND_REDIRECT_URI.to_owned()],
        post_logout_redirect_uris: vec![POST_LOGOUT_REDIRECT_URI.to_owned()],
        can_introspect: None,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    });
    settings
}

/// A running provider; stopped when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`, also the issuer unless a test configured another.
    pub address: String,
    pub port: u16,
    /// Where metrics are served, when the settings ask for them.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub settings: Settings,
    pub state: AppState,
    /// A user agent with its own cookie jar.
    pub browser: Browser,
    /// A client without cookies that does not follow redirects, for the API endpoints.
    pub http: reqwest::Client,
    /// Holds the database; shared with a restarted app.
    pub dir: Arc<TempDir>,
    handle: ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Not awaited: the runtime of the test ends right after.
        drop(self.handle.stop(false));
    }
}

/// Starts a provider on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a provider on a fresh database after `customize` changed the test settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
    spawn_app_in(dir, customize).await
}

/// Starts a provider on the database in `dir` (e.g. again after [`TestApp::stop`]).
pub async fn spawn_app_in(dir: Arc<TempDir>, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    let address = format!("http://127.0.0.1:{port}");
    let mut settings = test_settings(dir.path());
    settings.issuer = address.clone();
    settings.addr = format!("127.0.0.1:{port}");
    customize(&mut settings);
    let app = Application::from_listener(settings.clone(), listener)
        .await
        .expect("the provider starts");
    let state = app.state().clone();
    let metrics_addr = app.metrics_addr();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    TestApp {
        browser: Browser::new(&address),
        address,
        port,
        metrics_addr,
        settings,
        state,
        http,
        dir,
        handle,
    }
}

impl TestApp {
    /// `{address}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The issuer the provider is configured with.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Another user agent with an empty cookie jar.
    pub fn new_browser(&self) -> Browser {
        Browser::new(&self.address)
    }

    /// A user agent signed in as the seeded admin.
    pub async fn admin_browser(&self) -> Browser {
        let browser = self.new_browser();
        let response = browser.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "admin login");
        browser
    }

    /// A user agent signed in as the seeded user.
    pub async fn user_browser(&self) -> Browser {
        let browser = self.new_browser();
        let response = browser.login(USER_USERNAME, USER_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "user login");
        browser
    }

    /// Stops the server gracefully and returns the folder holding its database.
    pub async fn stop(self) -> Arc<TempDir> {
        self.handle.stop(true).await;
        self.dir.clone()
    }

    /// Registers a client directly in the database; returns its secret when confidential.
    pub fn add_client(&self, spec: ClientSpec<'_>) -> Option<String> {
        let secret =
            (!spec.public).then(|| format!("{}-secret-0123456789abcdefghijklmnop", spec.id));
        let now = oidc_core::unix_now();
        let mut conn = self.state.db.conn().expect("db conn");
        diesel::insert_into(clients::table)
            .values((
                clients::id.eq(spec.id),
                clients::name.eq(format!("App {}", spec.id)),
                clients::secret_hash.eq(secret.as_deref().map(|s| TokenHash::of(s).into_string())),
                clients::client_type.eq(if spec.public {
                    "public"
                } else {
                    "confidential"
                }),
                clients::redirect_uris.eq(serde_json::to_string(spec.redirect_uris).unwrap()),
                clients::post_logout_redirect_uris.eq("[]"),
                clients::grant_types.eq(if spec.refresh {
                    "authorization_code refresh_token"
                } else {
                    "authorization_code"
                }),
                clients::skip_authorization.eq(spec.skip_authorization),
                clients::id_token_signed_response_alg.eq(spec.alg),
                clients::created_at.eq(now),
                clients::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .expect("insert client");
        secret
    }

    /// Adds a user with a password; returns the user's subject.
    pub fn add_user(&self, username: &str, password: &str) -> String {
        let now = oidc_core::unix_now();
        let subject = provider::storage::new_id();
        let email = format!("{username}@example.com");
        let mut conn = self.state.db.conn().expect("db conn");
        diesel::insert_into(users::table)
            .values((
                users::id.eq(provider::storage::new_id()),
                users::subject.eq(&subject),
                users::username.eq(username),
                users::username_key.eq(provider::storage::users::username_key(username)),
                users::email.eq(&email),
                users::email_key.eq(provider::storage::users::email_key(&email)),
                users::email_verified.eq(true),
                users::given_name.eq(""),
                users::family_name.eq(""),
                users::password_hash.eq(bcrypt::hash(password, 4).unwrap()),
                users::is_admin.eq(false),
                users::is_active.eq(true),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .execute(&mut *conn)
            .expect("insert user");
        subject
    }

    /// POSTs a form to the token endpoint with HTTP Basic client authentication.
    pub async fn token_request(&self, client: (&str, &str), form: &[(&str, &str)]) -> Response {
        self.http
            .post(self.url("/oauth/token"))
            .basic_auth(client.0, Some(client.1))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// Exchanges a code as `webapp`.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Response {
        self.token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("code_verifier", verifier),
            ],
        )
        .await
    }

    /// The JSON Web Key Set the provider publishes now.
    pub async fn published_keys<T: serde::de::DeserializeOwned>(&self) -> T {
        let response = self.http.get(self.url("/oauth/jwks")).send().await;
        response
            .expect("JWKS request")
            .json()
            .await
            .expect("JWKS JSON")
    }

    /// The usual authorization request of `webapp` with the given PKCE pair, plus `extra`.
    pub fn authorize_url(&self, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
        authorize_url(&self.address, pkce, extra)
    }

    /// A full sign-in as alice with consent; returns the code and the PKCE verifier.
    pub async fn code_for_alice(&self, browser: &Browser) -> (String, Pkce) {
        let pkce = Pkce::new();
        let outcome = browser
            .drive(
                &self.authorize_url(&pkce, &[]),
                Some((USER_USERNAME, USER_PASSWORD)),
                Consent::Authorize,
            )
            .await;
        (outcome.code(), pkce)
    }

    /// Tokens for alice, from a fresh browser: the token response's JSON.
    pub async fn tokens_for_alice(&self) -> serde_json::Value {
        let browser = self.new_browser();
        let (code, pkce) = self.code_for_alice(&browser).await;
        let response = self.exchange(&code, &pkce.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// The usual authorization request of `webapp` at the provider at `base` with the given PKCE
/// pair; each of `extra` replaces the parameter of its name, and an empty value removes it.
pub fn authorize_url(base: &str, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("response_type", "code"),
        ("scope", "openid profile email offline_access"),
        ("state", "state-123"),
        ("nonce", "nonce-456"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    for (k, _) in extra {
        params.retain(|(name, _)| name != k);
    }
    params.extend(extra.iter().filter(|(_, v)| !v.is_empty()).copied());
    let mut url = Url::parse(&format!("{base}/oauth/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// A client to register with [`TestApp::add_client`].
pub struct ClientSpec<'a> {
    pub id: &'a str,
    pub public: bool,
    pub skip_authorization: bool,
    pub refresh: bool,
    pub redirect_uris: &'a [&'a str],
    pub alg: &'a str,
}

impl<'a> ClientSpec<'a> {
    pub fn confidential(id: &'a str) -> Self {
        Self {
            id,
            public: false,
            skip_authorization: false,
            refresh: true,
            redirect_uris: &[REDIRECT_URI],
            alg: "RS256",
        }
    }
}

/// A PKCE pair (RFC 7636 S256), computed here rather than by the code under test.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Self {
        use rand::RngCore as _;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// The `Location` header of a redirect.
pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .expect("ASCII location")
        .to_owned()
}

/// The JSON claims of a JWT's payload (no verification: for looking at what was issued).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("three parts");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}
