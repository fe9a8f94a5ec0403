//! The real provider started in-process on a random loopback port with a fresh database.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::{Credentials, TestUser, bind_loopback, random_secret, wait_until_healthy};

/// The provider id the web app uses in its routes (`/api/auth/callback/{id}`).
pub const PROVIDER_ID: &str = "provider";
/// The name on the web app's "Sign in with …" button.
pub const PROVIDER_NAME: &str = "Test Provider";
/// The client id of the web app at the provider.
pub const CLIENT_ID: &str = "webapp";
/// The seeded administrator.
pub const ADMIN_USERNAME: &str = "admin";
/// The seeded administrator's password.
pub const ADMIN_PASSWORD: &str = "admin-password-123";
/// The seeded administrator's email.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// The seeded user.
pub const USER_USERNAME: &str = "alice";
/// The seeded user's password.
pub const USER_PASSWORD: &str = "alice-password-123";
/// The seeded user's email.
pub const USER_EMAIL: &str = "alice@example.com";
/// The seeded user's given name.
pub const USER_GIVEN_NAME: &str = "Alice";
/// The seeded user's family name.
pub const USER_FAMILY_NAME: &str = "Example";

/// The cheapest bcrypt cost the `bcrypt` crate accepts: logins in tests take milliseconds.
const TEST_BCRYPT_COST: u32 = 4;

/// The web app's redirect URI at the provider, for a web app served at `webapp_base_url`.
pub fn redirect_uri_for(webapp_base_url: &str) -> String {
    format!(
        "{}/api/auth/callback/{PROVIDER_ID}",
        webapp_base_url.trim_end_matches('/')
    )
}

/// The web app's back-channel logout URI at the provider, for a web app at `webapp_base_url`.
pub fn backchannel_logout_uri_for(webapp_base_url: &str) -> String {
    format!(
        "{}/api/auth/backchannel-logout/{PROVIDER_ID}",
        webapp_base_url.trim_end_matches('/')
    )
}

/// The web app's post-logout redirect URIs at the provider.
pub fn post_logout_redirect_uris_for(webapp_base_url: &str) -> Vec<String> {
    let base = webapp_base_url.trim_end_matches('/');
    vec![format!("{base}/api/auth/signin"), format!("{base}/")]
}

/// A running provider with its own temporary database; stopped when dropped.
///
/// Seeded through its bootstrap settings with [`ADMIN_USERNAME`], [`USER_USERNAME`] and a
/// confidential client [`CLIENT_ID`] whose redirect URI points at a web app address reserved
/// for [`crate::TestWebapp::start`] (or the one given to [`TestProvider::start_for_webapp`]).
pub struct TestProvider {
    /// The issuer, `http://127.0.0.1:{port}` (no trailing slash).
    pub issuer: String,
    /// The port the provider listens on.
    pub port: u16,
    /// The web app's client id.
    pub client_id: String,
    /// The web app's client secret (plain; the provider stores its hash).
    pub client_secret: String,
    /// The web app base URL the client is registered for (`http://127.0.0.1:{port}`).
    pub webapp_url: String,
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// The seeded administrator.
    pub admin: Credentials,
    /// The seeded user.
    pub user: TestUser,
    /// The SQLite database file.
    pub database_path: PathBuf,
    /// A listener bound for the web app before the client was registered, so the redirect URI
    /// names a port that is really the web app's.
    reserved_webapp_listener: Mutex<Option<TcpListener>>,
    state: provider::state::AppState,
    server: JoinHandle<()>,
    _dir: TempDir,
}

impl TestProvider {
    /// Starts a provider whose client is registered for a web app on a reserved port, which
    /// [`crate::TestWebapp::start`] then uses.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Like [`TestProvider::start`], letting `customize` change the settings after the test
    /// defaults are filled in.
    pub async fn start_with(
        customize: impl FnOnce(&mut provider::config::Settings),
    ) -> anyhow::Result<Self> {
        let webapp_listener = bind_loopback()?;
        let webapp_url = format!("http://127.0.0.1:{}", webapp_listener.local_addr()?.port());
        Self::launch(webapp_url, Some(webapp_listener), customize).await
    }

    /// Starts a provider whose client is registered for a web app served at
    /// `webapp_base_url` (e.g. `http://127.0.0.1:4123`).
    pub async fn start_for_webapp(webapp_base_url: &str) -> anyhow::Result<Self> {
        Self::launch(webapp_base_url.to_owned(), None, |_| {}).await
    }

    /// Like [`TestProvider::start_for_webapp`] with `customize` applied to the settings.
    pub async fn start_for_webapp_with(
        webapp_base_url: &str,
        customize: impl FnOnce(&mut provider::config::Settings),
    ) -> anyhow::Result<Self> {
        Self::launch(webapp_base_url.to_owned(), None, customize).await
    }

    async fn launch(
        webapp_url: String,
        reserved_webapp_listener: Option<TcpListener>,
        customize: impl FnOnce(&mut provider::config::Settings),
    ) -> anyhow::Result<Self> {
        crate::init_test_logging();
        let webapp_url = webapp_url.trim_end_matches('/').to_owned();
        let dir = tempfile::Builder::new()
            .prefix("testkit-provider-")
            .tempdir()
            .context("creating the provider's temporary directory")?;
        let database_path = dir.path().join("provider.db");
        let listener = bind_loopback()?;
        let port = listener.local_addr()?.port();
        let issuer = format!("http://127.0.0.1:{port}");
        let client_secret = random_secret();
        let redirect_uri = redirect_uri_for(&webapp_url);

        let admin = Credentials {
            username: ADMIN_USERNAME.to_owned(),
            password: ADMIN_PASSWORD.to_owned(),
        };
        let user = TestUser {
            username: USER_USERNAME.to_owned(),
            password: USER_PASSWORD.to_owned(),
            email: USER_EMAIL.to_owned(),
            given_name: USER_GIVEN_NAME.to_owned(),
            family_name: USER_FAMILY_NAME.to_owned(),
        };

        let mut settings = crate::settings::provider_settings(crate::settings::ProviderSeed {
            issuer: &issuer,
            addr: listener.local_addr()?,
            database_path: &database_path,
            bcrypt_cost: TEST_BCRYPT_COST,
            admin_email: ADMIN_EMAIL,
            admin: &admin,
            user: &user,
            client_id: CLIENT_ID,
            client_secret: &client_secret,
            client_name: "Web app",
            redirect_uris: vec![redirect_uri.clone()],
            post_logout_redirect_uris: post_logout_redirect_uris_for(&webapp_url),
            backchannel_logout_uri: backchannel_logout_uri_for(&webapp_url),
        })?;
        customize(&mut settings);

        let application = provider::startup::Application::from_listener(settings, listener)
            .await
            .context("starting the provider")?;
        let state = application.state().clone();
        let server = tokio::spawn(async move {
            if let Err(error) = application.run_until_stopped().await {
                eprintln!("testkit: the provider stopped with an error: {error:#}");
            }
        });
        wait_until_healthy(&format!("{issuer}/healthz")).await?;

        Ok(Self {
            issuer,
            port,
            client_id: CLIENT_ID.to_owned(),
            client_secret,
            webapp_url,
            redirect_uri,
            admin,
            user,
            database_path,
            reserved_webapp_listener: Mutex::new(reserved_webapp_listener),
            state,
            server,
            _dir: dir,
        })
    }

    /// `{issuer}{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// The running provider's shared state (database, signing keys, settings), for tests that
    /// change it behind the HTTP interface, e.g. rotating the signing key.
    pub fn state(&self) -> &provider::state::AppState {
        &self.state
    }

    /// Registers another confidential client `client_id` (consent asked, no back-channel URI),
    /// as an operator would; returns its client secret.
    pub async fn register_client(
        &self,
        client_id: &str,
        redirect_uris: Vec<String>,
        post_logout_redirect_uris: Vec<String>,
    ) -> anyhow::Result<String> {
        use provider::storage::clients::{self, ClientInput};
        let mut input = ClientInput::new(client_id, redirect_uris);
        input.id = Some(client_id.to_owned());
        input.post_logout_redirect_uris = post_logout_redirect_uris;
        let allow_http_hosts = self.state.settings.allow_http_redirect_hosts.clone();
        let (_, secret) = self
            .state
            .db
            .run(move |conn| clients::create(conn, &input, &allow_http_hosts))
            .await
            .with_context(|| format!("registering the client {client_id:?}"))?;
        secret
            .map(|secret| secret.secret().to_owned())
            .context("a confidential client has a secret")
    }

    /// The issuer and the web app's client, for [`crate::TestWebapp`].
    pub fn registration(&self) -> crate::webapp::Registration {
        crate::webapp::Registration {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            webapp_url: self.webapp_url.clone(),
        }
    }

    /// The listener reserved for the web app this provider's client was registered for, once.
    pub(crate) fn take_webapp_listener(&self) -> Option<TcpListener> {
        self.reserved_webapp_listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        // Dropping the actix server future closes its listeners and stops its workers.
        self.server.abort();
    }
}
