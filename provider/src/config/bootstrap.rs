//! What the provider creates at first start from its settings: an administrator, a demo user
//! and a confidential client (`PROVIDER_BOOTSTRAP_*`).

use std::fmt;

use servicekit::settings::{Reader, Separator, SettingsError, parse};

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

/// The name of the setting `field` of the account `kind` (`ADMIN` or `USER`). A closed set of
/// names, so that errors keep a plain static name.
fn setting_name(kind: &str, field: &str) -> &'static str {
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

impl Bootstrap {
    /// Reads the three parts; a part half set (a username without password) is recorded.
    pub(super) fn read(reader: &mut Reader<'_>) -> Self {
        Self {
            admin: read_account(reader, "ADMIN"),
            user: read_account(reader, "USER"),
            client: read_client(reader),
        }
    }

    /// Records what is wrong with the parts, checked as the admin site would check them.
    pub(super) fn check(&self, allow_http_hosts: &[String], errors: &mut SettingsError) {
        for (kind, account) in [("ADMIN", &self.admin), ("USER", &self.user)] {
            if let Some(account) = account {
                account.check(kind, errors);
            }
        }
        if let Some(client) = &self.client {
            client.check(allow_http_hosts, errors);
        }
    }
}

fn read_account(reader: &mut Reader<'_>, kind: &str) -> Option<BootstrapAccount> {
    let field = |f: &str| reader.get(setting_name(kind, f));
    let text = |f: &str| field(f).unwrap_or_default().trim().to_owned();
    match (field("USERNAME"), field("PASSWORD")) {
        (None, None) => None,
        (None, Some(_)) => {
            reader.report(
                setting_name(kind, "USERNAME"),
                "must be set when the password is",
            );
            None
        }
        (Some(_), None) => {
            reader.report(
                setting_name(kind, "PASSWORD"),
                "must be set when the username is",
            );
            None
        }
        (Some(username), Some(password)) => Some(BootstrapAccount {
            username: username.trim().to_owned(),
            password,
            email: text("EMAIL"),
            given_name: text("GIVEN_NAME"),
            family_name: text("FAMILY_NAME"),
        }),
    }
}

impl BootstrapAccount {
    fn check(&self, kind: &str, errors: &mut SettingsError) {
        use crate::storage::users;
        if let Err(e) = users::Username::parse(&self.username) {
            errors.push(setting_name(kind, "USERNAME"), e.to_string());
        }
        if let Err(e) = users::validate_password(&self.password) {
            errors.push(setting_name(kind, "PASSWORD"), e.to_string());
        }
        if let Err(e) = users::validate_email(&self.email) {
            errors.push(setting_name(kind, "EMAIL"), e.to_string());
        }
    }
}

fn read_client(reader: &mut Reader<'_>) -> Option<BootstrapClient> {
    let client_id = reader.get("PROVIDER_BOOTSTRAP_CLIENT_ID")?;
    let Some(client_secret) = reader.get("PROVIDER_BOOTSTRAP_CLIENT_SECRET") else {
        reader.report(
            "PROVIDER_BOOTSTRAP_CLIENT_SECRET",
            "must be set when PROVIDER_BOOTSTRAP_CLIENT_ID is",
        );
        return None;
    };
    Some(BootstrapClient {
        name: reader
            .get("PROVIDER_BOOTSTRAP_CLIENT_NAME")
            .unwrap_or_else(|| client_id.clone()),
        client_id: client_id.trim().to_owned(),
        client_secret: client_secret.trim().to_owned(),
        redirect_uris: reader.list(
            "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
            Separator::Whitespace,
        ),
        post_logout_redirect_uris: reader.list(
            "PROVIDER_BOOTSTRAP_CLIENT_POST_LOGOUT_REDIRECT_URIS",
            Separator::Whitespace,
        ),
        can_introspect: reader.optional("PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT", parse::boolean),
        backchannel_logout_uri: reader
            .get("PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_URI")
            .map(|v| v.trim().to_owned()),
        backchannel_logout_session_required: reader.flag(
            "PROVIDER_BOOTSTRAP_CLIENT_BACKCHANNEL_LOGOUT_SESSION_REQUIRED",
            false,
        ),
    })
}

impl BootstrapClient {
    fn check(&self, allow_http_hosts: &[String], errors: &mut SettingsError) {
        use crate::storage::clients::validate_redirect_uri;
        if self.client_secret.len() < 32 {
            errors.push(
                "PROVIDER_BOOTSTRAP_CLIENT_SECRET",
                "must be at least 32 characters",
            );
        }
        if self.redirect_uris.is_empty() {
            errors.push(
                "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                "must list at least one redirect URI",
            );
        }
        for (setting, uris) in [
            (
                "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
                &self.redirect_uris,
            ),
            (
                "PROVIDER_BOOTSTRAP_CLIENT_POST_LOGOUT_REDIRECT_URIS",
                &self.post_logout_redirect_uris,
            ),
        ] {
            for uri in uris {
                if let Err(e) = validate_redirect_uri(uri, allow_http_hosts) {
                    errors.push(setting, e.to_string());
                }
            }
        }
    }
}
