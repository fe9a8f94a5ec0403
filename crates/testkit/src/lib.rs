//! Starts the real provider and web app in-process, each on a random loopback port with a fresh
//! temporary database, seeded with an admin, a user and the web app's client; plus a
//! cookie-keeping [`Browser`] that follows redirects and submits forms like a user agent.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let stack = testkit::Stack::start().await?;
//! let browser = testkit::Browser::new();
//! let home = stack.sign_in(&browser).await?;
//! assert!(home.contains(&stack.provider.user.email));
//! let session: serde_json::Value = browser.visit(stack.webapp.url("/api/auth/session")).await?.json()?;
//! # let _ = session; Ok(()) }
//! ```
//!
//! Services run on the calling test's tokio runtime and stop when their handle is dropped.
//! Logs are silent unless `TEST_LOG` is set (to a tracing filter such as `debug`, or `1`).
//!
//! For deployments with several processes: [`replicas::Replicas`] runs `provider serve`
//! processes (the binary from [`provider_binary`]) on one database behind [`haproxy::Haproxy`],
//! on SQLite or on a database of the throwaway [`postgres`] cluster.

pub mod browser;
pub mod haproxy;
pub mod postgres;
mod process;
mod provider;
pub mod replicas;
mod settings;
mod stack;
mod webapp;

use std::net::TcpListener;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use rand::RngCore;

pub use browser::{Browser, Button, Form, Page, query_param};
pub use process::{ProviderProcess, provider_binary};
pub use provider::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, CLIENT_ID, PROVIDER_ID, PROVIDER_NAME,
    TestProvider, USER_EMAIL, USER_FAMILY_NAME, USER_GIVEN_NAME, USER_PASSWORD, USER_USERNAME,
    backchannel_logout_uri_for, post_logout_redirect_uris_for, redirect_uri_for,
};
pub use stack::{
    Stack, decide_consent, is_consent_page, log_in, login_form, sign_in_form, start_sign_in,
};
pub use webapp::{Registration, TestWebapp};

/// A username and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// The seeded end user and the claims the provider holds for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestUser {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// The email address.
    pub email: String,
    /// The given name.
    pub given_name: String,
    /// The family name.
    pub family_name: String,
}

impl TestUser {
    /// "Given Family", the `name` claim.
    pub fn name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }
}

/// Binds `127.0.0.1:0`; the listener is what a service is then started on.
pub fn bind_loopback() -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// A random 256-bit secret, base64url without padding (43 characters).
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Polls `url` until it answers 200, for at most 10 seconds.
async fn wait_until_healthy(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let mut last = String::new();
    for _ in 0..100 {
        match client.get(url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => last = format!("status {}", response.status()),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer 200 within 10 s (last: {last})")
}

/// Sends the services' logs to the test output when `TEST_LOG` is set; silent otherwise.
pub fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let Ok(filter) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = match filter.as_str() {
            "" | "1" | "true" => "info".to_owned(),
            other => other.to_owned(),
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn provider_starts_seeded_on_its_own_port_and_stops_on_drop() {
        let provider = TestProvider::start().await.expect("provider starts");
        assert_eq!(
            provider.issuer,
            format!("http://127.0.0.1:{}", provider.port)
        );
        assert!(provider.database_path.exists());
        assert_eq!(provider.client_id, CLIENT_ID);
        assert!(provider.client_secret.len() >= 32);
        assert_eq!(provider.user.name(), "Alice Example");

        let discovery: serde_json::Value =
            reqwest::get(provider.url("/.well-known/openid-configuration"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(discovery["issuer"], provider.issuer.as_str());

        // The seeded user can log in: the login form accepts the password.
        let browser = Browser::new();
        let login = browser.visit(provider.url("/login")).await.unwrap();
        let mut form = login_form(&login).unwrap();
        form.set("username", USER_USERNAME)
            .set("password", USER_PASSWORD);
        let after = browser.submit_once(&form).await.unwrap();
        assert!(
            after.is_redirect(),
            "login succeeds: {} {}",
            after.status,
            after.body
        );

        let port = provider.port;
        drop(provider);
        let mut stopped = false;
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                stopped = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(stopped, "the provider's port closes after drop");
    }

    #[tokio::test]
    async fn each_provider_has_its_own_database() {
        let (a, b) = tokio::join!(TestProvider::start(), TestProvider::start());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a.port, b.port);
        assert_ne!(a.database_path, b.database_path);
        assert_ne!(a.client_secret, b.client_secret);
    }

    #[tokio::test]
    async fn stack_wires_the_web_app_to_the_provider() {
        let stack = Stack::start().await.expect("stack starts");
        assert_eq!(stack.provider.webapp_url, stack.webapp.url);
        assert_eq!(stack.provider.redirect_uri, stack.webapp.redirect_uri());
        let browser = Browser::new();
        let home = stack
            .sign_in(&browser)
            .await
            .expect("the seeded user signs in");
        assert!(home.contains(USER_EMAIL), "{}", home.body);
    }

    #[tokio::test]
    async fn provider_for_a_given_web_app_url_registers_its_redirect_uri() {
        let listener = bind_loopback().unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        drop(listener);
        let provider = TestProvider::start_for_webapp(&url).await.unwrap();
        assert_eq!(provider.redirect_uri, redirect_uri_for(&url));
        let webapp = TestWebapp::start(&provider)
            .await
            .expect("web app starts on that port");
        assert_eq!(webapp.url, url);
    }
}
