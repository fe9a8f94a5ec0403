//! The one place that fills the services' settings for tests, so a change in either service's
//! configuration touches only this file.

use std::net::SocketAddr;
use std::path::Path;

use crate::{Credentials, TestUser};

/// What a test provider is seeded with.
pub(crate) struct ProviderSeed<'a> {
    pub issuer: &'a str,
    pub addr: SocketAddr,
    pub database_path: &'a Path,
    pub bcrypt_cost: u32,
    pub admin_email: &'a str,
    pub admin: &'a Credentials,
    pub user: &'a TestUser,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub client_name: &'a str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the provider posts logout tokens (the web app's back-channel logout endpoint).
    pub backchannel_logout_uri: String,
}

/// The provider's settings for `seed`: defaults, then the test's values.
pub(crate) fn provider_settings(
    seed: ProviderSeed<'_>,
) -> anyhow::Result<provider::config::Settings> {
    use provider::config::{Bootstrap, BootstrapAccount, BootstrapClient, CookieSecret, Settings};
    let settings = Settings {
        issuer: seed.issuer.to_owned(),
        addr: seed.addr.to_string(),
        database_url: seed.database_path.to_string_lossy().into_owned(),
        // Given, so nothing is written next to the database.
        secret_key: Some(CookieSecret::generate()),
        bcrypt_cost: seed.bcrypt_cost,
        bootstrap: Bootstrap {
            admin: Some(BootstrapAccount {
                username: seed.admin.username.clone(),
                password: seed.admin.password.clone(),
                email: seed.admin_email.to_owned(),
                given_name: String::new(),
                family_name: String::new(),
            }),
            user: Some(BootstrapAccount {
                username: seed.user.username.clone(),
                password: seed.user.password.clone(),
                email: seed.user.email.clone(),
                given_name: seed.user.given_name.clone(),
                family_name: seed.user.family_name.clone(),
            }),
            client: Some(BootstrapClient {
                client_id: seed.client_id.to_owned(),
                client_secret: seed.client_secret.to_owned(),
                name: seed.client_name.to_owned(),
                redirect_uris: seed.redirect_uris,
                post_logout_redirect_uris: seed.post_logout_redirect_uris,
                can_introspect: None,
                backchannel_logout_uri: Some(seed.backchannel_logout_uri),
                backchannel_logout_session_required: true,
            }),
        },
        ..Settings::default()
    };
    settings.validate()?;
    Ok(settings)
}

/// What a test web app is configured with.
pub(crate) struct WebappSeed<'a> {
    pub url: &'a str,
    pub addr: SocketAddr,
    pub session_secret: &'a str,
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    pub provider_id: &'a str,
    pub provider_name: &'a str,
}

/// The web app's settings for `seed`.
pub(crate) fn webapp_settings(seed: WebappSeed<'_>) -> anyhow::Result<webapp::config::Settings> {
    let mut settings = webapp::config::Settings::new(
        seed.url,
        seed.issuer,
        seed.client_id,
        seed.client_secret,
        seed.session_secret,
    )?;
    settings.addr = seed.addr.to_string();
    settings.provider_id = webapp::config::ProviderId::parse(seed.provider_id)
        .map_err(|reason| anyhow::anyhow!("provider id {:?}: {reason}", seed.provider_id))?;
    settings.provider_name = seed.provider_name.to_owned();
    Ok(settings)
}
