//! Test support for the OAuth endpoints: a provider on a random loopback port with a fresh
//! database, seeded clients and users, and a cookie-keeping user agent that walks the real
//! login and consent pages.
// Shared by the oauth modules; not each uses every helper.
#![allow(dead_code)]

use std::net::TcpListener;
use std::sync::Arc;

use base64::Engine as _;
use diesel::prelude::*;
use provider::config::{BootstrapAccount, BootstrapClient, CookieSecret, Settings};
use provider::state::AppState;
use provider::storage::schema::{clients, users};
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode};
use sha2::Digest as _;
use url::Url;

pub const USERNAME: &str = "alice";
pub const PASSWORD: &str = "alice-password-123";
pub const CLIENT_ID: &str = "webapp";
pub const CLIENT_SECRET: &str = "webapp-client-secret-0123456789-abcdefghij";
pub const REDIRECT_URI: &str = "http://127.0.0.1:3000/api/auth/callback/provider";
pub const SECOND_REDIRECT_URI: &str = "http://localhost:3000/callback";
pub const POST_LOGOUT_REDIRECT_URI: &str = "http://127.0.0.1:3000/api/auth/signin";

/// A running provider.
pub struct OAuthApp {
    pub issuer: String,
    pub state: AppState,
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

impl Drop for OAuthApp {
    fn drop(&mut self) {
        // Not awaited: the test's runtime ends right after.
        drop(self.handle.stop(false));
    }
}

impl OAuthApp {
    /// A provider with alice and the confidential client `webapp` (two redirect URIs).
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`spawn`](Self::spawn), with changed settings.
    pub async fn spawn_with(customize: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let issuer = format!("http://127.0.0.1:{port}");
        let mut settings = Settings {
            issuer: issuer.clone(),
            addr: format!("127.0.0.1:{port}"),
            database_url: dir
                .path()
                .join("provider.db")
                .to_string_lossy()
                .into_owned(),
            secret_key: Some(CookieSecret::generate()),
            bcrypt_cost: 4,
            log: "off".to_owned(),
            workers: Some(2),
            ..Settings::default()
        };
        settings.bootstrap.user = Some(BootstrapAccount {
            username: USERNAME.to_owned(),
            password: PASSWORD.to_owned(),
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
        customize(&mut settings);
        let app = provider::startup::Application::from_listener(settings, listener)
            .await
            .expect("the provider starts");
        let state = app.state().clone();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            issuer,
            state,
            http,
            handle,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
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
                clients::secret_hash.eq(secret.as_deref().map(hash)),
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
        let mut conn = self.state.db.conn().expect("db conn");
        diesel::insert_into(users::table)
            .values((
                users::id.eq(provider::storage::new_id()),
                users::subject.eq(&subject),
                users::username.eq(username),
                users::username_key.eq(provider::storage::users::username_key(username)),
                users::email.eq(format!("{username}@example.com")),
                users::email_key.eq(provider::storage::users::email_key(&format!(
                    "{username}@example.com"
                ))),
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

    /// The usual authorization request of `webapp` with the given PKCE pair, plus `extra`.
    pub fn authorize_url(&self, pkce: &Pkce, extra: &[(&str, &str)]) -> String {
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
        let mut url = Url::parse(&self.url("/oauth/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs(params);
        url.to_string()
    }

    /// A full sign-in as alice with consent; returns the code and the PKCE verifier.
    pub async fn code_for_alice(&self, browser: &Browser) -> (String, Pkce) {
        let pkce = Pkce::new();
        let outcome = browser
            .drive(
                self,
                &self.authorize_url(&pkce, &[]),
                Some((USERNAME, PASSWORD)),
                Consent::Authorize,
            )
            .await;
        (outcome.code(), pkce)
    }

    /// Tokens for alice: (token response JSON, verifier used).
    pub async fn tokens_for_alice(&self) -> serde_json::Value {
        let browser = Browser::new();
        let (code, pkce) = self.code_for_alice(&browser).await;
        let response = self.exchange(&code, &pkce.verifier).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// A client to register with [`OAuthApp::add_client`].
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

pub fn hash(secret: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// A PKCE pair (RFC 7636 S256).
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

/// What to do on a consent page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Consent {
    Authorize,
    Cancel,
    /// A consent page is a failure of the test.
    Unexpected,
}

/// Where a walk through the provider ended.
#[derive(Debug)]
pub struct Outcome {
    /// The redirect out of the provider, if it ended with one.
    pub redirect: Option<Url>,
    /// Status and body of the last provider page otherwise.
    pub status: StatusCode,
    pub body: String,
    pub saw_login: bool,
    pub saw_consent: bool,
}

impl Outcome {
    pub fn param(&self, name: &str) -> Option<String> {
        self.redirect
            .as_ref()?
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub fn code(&self) -> String {
        self.param("code")
            .unwrap_or_else(|| panic!("no code in the outcome: {self:?}"))
    }
}

/// A cookie-keeping user agent without automatic redirects.
#[derive(Clone)]
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { client, jar }
    }

    pub async fn get(&self, url: &str) -> Response {
        self.client.get(url).send().await.expect("GET")
    }

    pub async fn post_form(&self, url: &str, form: &[(String, String)]) -> Response {
        self.client.post(url).form(form).send().await.expect("POST")
    }

    /// Signs in at the login page directly.
    pub async fn log_in(&self, app: &OAuthApp, username: &str, password: &str) {
        let page = self.get(&app.url("/login")).await.text().await.unwrap();
        let mut fields = hidden_fields(&page);
        fields.push(("username".into(), username.into()));
        fields.push(("password".into(), password.into()));
        let response = self.post_form(&app.url("/login"), &fields).await;
        assert!(
            response.status().is_redirection(),
            "login failed: {}",
            response.status()
        );
    }

    /// Follows a flow from `start`: submits the login form with `credentials` when shown, acts on
    /// consent as told, and stops at the first redirect that leaves the provider or at a page
    /// that is neither login nor consent.
    pub async fn drive(
        &self,
        app: &OAuthApp,
        start: &str,
        credentials: Option<(&str, &str)>,
        consent: Consent,
    ) -> Outcome {
        let mut response = self.get(start).await;
        let (mut saw_login, mut saw_consent) = (false, false);
        for _ in 0..20 {
            let current = response.url().clone();
            if response.status().is_redirection() {
                let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
                let next = current.join(&location).unwrap();
                if !next.as_str().starts_with(&app.issuer) {
                    return Outcome {
                        redirect: Some(next),
                        status: response.status(),
                        body: String::new(),
                        saw_login,
                        saw_consent,
                    };
                }
                response = self.get(next.as_str()).await;
                continue;
            }
            let status = response.status();
            let is_html = response
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html"));
            let body = response.text().await.unwrap();
            if let (true, "/login", Some((username, password)), false) =
                (is_html, current.path(), credentials, saw_login)
            {
                saw_login = true;
                let mut fields = hidden_fields(&body);
                fields.push(("username".into(), username.into()));
                fields.push(("password".into(), password.into()));
                response = self.post_form(&app.url("/login"), &fields).await;
                continue;
            }
            if is_html
                && body.contains("action=\"/oauth/authorize/decision\"")
                && consent != Consent::Unexpected
            {
                saw_consent = true;
                let mut fields = hidden_fields(&body);
                let decision = if consent == Consent::Authorize {
                    "authorize"
                } else {
                    "cancel"
                };
                fields.push(("decision".into(), decision.into()));
                response = self
                    .post_form(&app.url("/oauth/authorize/decision"), &fields)
                    .await;
                continue;
            }
            return Outcome {
                redirect: None,
                status,
                body,
                saw_login,
                saw_consent,
            };
        }
        panic!("redirect loop from {start}");
    }
}

/// The hidden inputs of the first form of `html`, unescaped.
pub fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for tag in html.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        if !tag.contains("type=\"hidden\"") {
            continue;
        }
        let attr = |name: &str| {
            let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
            let end = tag[start..].find('"')? + start;
            Some(unescape(&tag[start..end]))
        };
        if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
            out.push((name, value));
        }
    }
    out
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
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
