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

pub mod browser;
mod provider;
mod settings;
mod stack;
mod webapp;

use std::net::TcpListener;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use rand::RngCore;

pub use browser::{Browser, Button, Form, Page, query_param};
pub use provider::{
    ADMIN_EMAIL, ADMIN_PASSWORD, ADMIN_USERNAME, CLIENT_ID, PROVIDER_ID, PROVIDER_NAME,
    TestProvider, USER_EMAIL, USER_FAMILY_NAME, USER_GIVEN_NAME, USER_PASSWORD, USER_USERNAME,
    post_logout_redirect_uris_for, redirect_uri_for,
};
pub use stack::{
    Stack, decide_consent, is_consent_page, log_in, login_form, sign_in_form, start_sign_in,
};
pub use webapp::TestWebapp;

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
