//! The W3C WebAuthn WebDriver extension: a virtual authenticator attached to a Chromium
//! session, so passkey ceremonies run headless without a device or a person.
//! <https://www.w3.org/TR/webauthn-2/#sctn-automation>

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::webdriver::{Driver, Session};

/// How the virtual authenticator is attached: `Usb` is a roaming security key (the browser
/// reports `cross-platform`), `Internal` the device's own (`platform`).
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    Usb,
    Internal,
}

impl Transport {
    fn as_str(self) -> &'static str {
        match self {
            Self::Usb => "usb",
            Self::Internal => "internal",
        }
    }
}

/// A CTAP2 authenticator with resident keys and user verification that always succeeds.
pub struct VirtualAuthenticator {
    base: String,
    http: reqwest::Client,
}

impl VirtualAuthenticator {
    /// Adds one to the browser of `session`.
    pub async fn add(
        driver: &Driver,
        session: &Session,
        transport: Transport,
    ) -> anyhow::Result<Self> {
        let session_id = session
            .client
            .session_id()
            .await?
            .context("the browser session has no id")?;
        let http = reqwest::Client::new();
        let url = format!(
            "{}/session/{session_id}/webauthn/authenticator",
            driver.url()
        );
        let created = command(
            &http,
            reqwest::Method::POST,
            &url,
            Some(json!({
                "protocol": "ctap2",
                "transport": transport.as_str(),
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserVerified": true,
            })),
        )
        .await
        .context("adding a virtual authenticator")?;
        let Some(id) = created.as_str() else {
            bail!("no authenticator id in {created}");
        };
        Ok(Self {
            base: format!("{url}/{id}"),
            http,
        })
    }

    /// The credentials the authenticator holds (`credentialId`, `isResidentCredential`,
    /// `rpId`, `userHandle`, `signCount`, ...).
    pub async fn credentials(&self) -> anyhow::Result<Vec<Value>> {
        let url = format!("{}/credentials", self.base);
        let value = command(&self.http, reqwest::Method::GET, &url, None).await?;
        Ok(value.as_array().cloned().unwrap_or_default())
    }
}

/// Sends one WebDriver command and returns its `value`, or the WebDriver error as an error.
async fn command(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let mut reply: Value = response
        .json()
        .await
        .context("reading the WebDriver reply")?;
    if !status.is_success() {
        bail!("WebDriver refused {url}: {status} {reply}");
    }
    Ok(reply["value"].take())
}
