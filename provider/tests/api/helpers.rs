//! Test support: the real provider on a random loopback port with a fresh database, and a
//! cookie-keeping user agent that does not follow redirects.
// Shared by every module of this binary; not each uses every helper.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use provider::config::{BootstrapAccount, BootstrapClient, Settings};
use provider::startup::Application;
use provider::state::AppState;
use reqwest::header::LOCATION;
use reqwest::{Response, StatusCode};
use tempfile::TempDir;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const USER_USERNAME: &str = "alice";
pub const USER_PASSWORD: &str = "alice-password-123";
pub const CLIENT_ID: &str = "webapp";
pub const CLIENT_SECRET: &str = "webapp-secret-0123456789-0123456789-abcdef";
pub const REDIRECT_URI: &str = "http://127.0.0.1:3000/api/auth/callback/provider";

/// Settings for a test provider with its database in `dir`: bcrypt cost 4, two workers, keys
/// checked every second, an admin, a user and a confidential client.
pub fn test_settings(dir: &Path) -> Settings {
    let mut settings = Settings {
        database_url: dir.join("provider.db").to_string_lossy().into_owned(),
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
        redirect_uris: vec![REDIRECT_URI.to_owned()],
        post_logout_redirect_uris: vec![],
        can_introspect: None,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    });
    settings
}

/// A running provider; stopped when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`, also the issuer.
    pub address: String,
    pub port: u16,
    pub settings: Settings,
    pub state: AppState,
    /// A user agent with its own cookie jar.
    pub browser: Browser,
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
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        browser: Browser::new(&address),
        address,
        port,
        settings,
        state,
        dir,
        handle,
    }
}

impl TestApp {
    /// `{address}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
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
}

/// A cookie-keeping HTTP client that does not follow redirects, as a browser seen step by step.
#[derive(Clone)]
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
}

impl Browser {
    /// A client for the server at `base`.
    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        Self {
            base: base.to_owned(),
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET request")
    }

    /// GET `path` and return its status and body.
    pub async fn get_html(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    /// POST an url-encoded form to `path`.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST request")
    }

    /// The CSRF token of the form on the page at `path`.
    pub async fn csrf_token(&self, path: &str) -> String {
        let (status, html) = self.get_html(path).await;
        assert!(status.is_success(), "GET {path}: {status}");
        csrf_token(&html).unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    /// POST a form to `path` with the CSRF token of the page at `form_page` added.
    pub async fn submit(&self, form_page: &str, path: &str, fields: &[(&str, &str)]) -> Response {
        let token = self.csrf_token(form_page).await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        self.post_form(path, &form).await
    }

    /// Fills in and submits the login form; returns the response to the POST (303 on success).
    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.login_next(username, password, None).await
    }

    /// Like [`login`](Self::login) with a `next` path.
    pub async fn login_next(&self, username: &str, password: &str, next: Option<&str>) -> Response {
        let token = self.csrf_token("/login").await;
        let mut form = vec![
            ("username", username),
            ("password", password),
            ("csrf_token", token.as_str()),
        ];
        if let Some(next) = next {
            form.push(("next", next));
        }
        self.post_form("/login", &form).await
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

/// The value of the hidden `csrf_token` field in `html`.
pub fn csrf_token(html: &str) -> Option<String> {
    input_value(html, "csrf_token")
}

/// The `value` of the first `<input>` named `name` in `html`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    html.split("<input").skip(1).find_map(|tag| {
        let tag = &tag[..tag.find('>')?];
        if !tag.contains(&marker) {
            return None;
        }
        let start = tag.find("value=\"")? + "value=\"".len();
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    })
}

/// Undoes the HTML escaping tera applies.
pub fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Pages differ only in their CSRF token: remove it to compare two renderings.
pub fn without_csrf(html: &str) -> String {
    match csrf_token(html) {
        Some(token) => html.replace(&token, "TOKEN"),
        None => html.to_owned(),
    }
}
