//! The real web app started in-process on a loopback port, configured for a [`TestProvider`].

use anyhow::Context;
use tokio::task::JoinHandle;

use crate::provider::{PROVIDER_ID, PROVIDER_NAME};
use crate::{TestProvider, random_secret, wait_until_healthy};

/// What the web app needs to know of its provider: the issuer it signs in at and the client
/// registered there for the web app at `webapp_url`.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The provider's issuer (a provider, or a balancer in front of several).
    pub issuer: String,
    /// The web app's client id.
    pub client_id: String,
    /// The web app's client secret.
    pub client_secret: String,
    /// The web app base URL the client is registered for; the web app listens on its port.
    pub webapp_url: String,
}

/// A running web app signed in against a [`TestProvider`]; stopped when dropped.
pub struct TestWebapp {
    /// The base URL, `http://127.0.0.1:{port}` (no trailing slash).
    pub url: String,
    /// The port it listens on.
    pub port: u16,
    /// Where it serves metrics, when its settings ask for them (`metrics_addr`).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The provider id in its routes.
    pub provider_id: String,
    /// The provider name on its sign-in button.
    pub provider_name: String,
    /// The session secret it was given.
    pub session_secret: String,
    /// Its SQLite database of sessions (in a temporary folder kept while this value lives).
    pub database_path: std::path::PathBuf,
    server: JoinHandle<()>,
    dir: std::sync::Arc<tempfile::TempDir>,
}

impl TestWebapp {
    /// Starts a web app for `provider`, on the port the provider's client was registered for.
    pub async fn start(provider: &TestProvider) -> anyhow::Result<Self> {
        Self::start_with(provider, |_| {}).await
    }

    /// Like [`TestWebapp::start`], letting `customize` change the settings after the test
    /// defaults are filled in.
    pub async fn start_with(
        provider: &TestProvider,
        customize: impl FnOnce(&mut webapp::config::Settings),
    ) -> anyhow::Result<Self> {
        let dir = std::sync::Arc::new(tempfile::tempdir()?);
        let registration = provider.registration();
        let listener = provider.take_webapp_listener();
        Self::launch(&registration, listener, random_secret(), dir, customize).await
    }

    /// Starts a web app for the client of `registration`, on `listener` or else on the port of
    /// its `webapp_url`.
    pub async fn start_registered(
        registration: &Registration,
        listener: Option<std::net::TcpListener>,
        customize: impl FnOnce(&mut webapp::config::Settings),
    ) -> anyhow::Result<Self> {
        let dir = std::sync::Arc::new(tempfile::tempdir()?);
        Self::launch(registration, listener, random_secret(), dir, customize).await
    }

    /// Stops this web app and starts it again on the same port, secret and database, as a
    /// restarted process would be.
    pub async fn restart(self, provider: &TestProvider) -> anyhow::Result<Self> {
        let secret = self.session_secret.clone();
        let dir = self.dir.clone();
        let port = self.port;
        drop(self);
        // The old server lets go of the port shortly after being stopped.
        for _ in 0..100 {
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Self::launch(&provider.registration(), None, secret, dir, |_| {}).await
    }

    async fn launch(
        registration: &Registration,
        listener: Option<std::net::TcpListener>,
        session_secret: String,
        dir: std::sync::Arc<tempfile::TempDir>,
        customize: impl FnOnce(&mut webapp::config::Settings),
    ) -> anyhow::Result<Self> {
        crate::init_test_logging();
        let listener = match listener {
            Some(listener) => listener,
            None => {
                // The provider was started for a given web app URL: listen on that port.
                let url = url::Url::parse(&registration.webapp_url)
                    .context("the provider's web app URL is not a URL")?;
                let port = url
                    .port_or_known_default()
                    .context("the provider's web app URL has no port")?;
                std::net::TcpListener::bind(("127.0.0.1", port)).with_context(|| {
                    format!("binding the web app's port {port}, registered at the provider")
                })?
            }
        };
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let url = format!("http://127.0.0.1:{port}");
        let database_path = dir.path().join("webapp.db");
        let mut settings = crate::settings::webapp_settings(crate::settings::WebappSeed {
            url: &url,
            addr: listener.local_addr()?,
            session_secret: &session_secret,
            issuer: &registration.issuer,
            client_id: &registration.client_id,
            client_secret: &registration.client_secret,
            provider_id: PROVIDER_ID,
            provider_name: PROVIDER_NAME,
        })?;
        settings.database_path = database_path.clone();
        customize(&mut settings);

        let application = webapp::startup::Application::from_listener(settings, listener)
            .await
            .context("starting the web app")?;
        let metrics_addr = application.metrics_addr();
        let server = tokio::spawn(async move {
            if let Err(error) = application.run_until_stopped().await {
                eprintln!("testkit: the web app stopped with an error: {error:#}");
            }
        });
        wait_until_healthy(&format!("{url}/healthz")).await?;

        Ok(Self {
            url,
            port,
            metrics_addr,
            provider_id: PROVIDER_ID.to_owned(),
            provider_name: PROVIDER_NAME.to_owned(),
            session_secret,
            database_path,
            server,
            dir,
        })
    }

    /// `{url}{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The redirect URI the web app uses.
    pub fn redirect_uri(&self) -> String {
        crate::provider::redirect_uri_for(&self.url)
    }
}

impl Drop for TestWebapp {
    fn drop(&mut self) {
        // Dropping the actix server future closes its listeners and stops its workers.
        self.server.abort();
    }
}
