//! Steps of a sign-in that tests need to stop in the middle of, and a TCP relay that can play
//! a provider going down.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use testkit::{Browser, Page, Stack, TestWebapp, is_consent_page, login_form};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use url::Url;

/// The `webapp.session` cookie's name over http.
pub const SESSION_COOKIE: &str = "webapp.session";
/// The flow cookie's name over http.
pub const FLOW_COOKIE: &str = "webapp.flow";

/// `url` parsed.
pub fn url(value: &str) -> Url {
    Url::parse(value).expect("test URLs are absolute")
}

/// The session JSON the web app gives this browser.
pub async fn session_json(browser: &Browser, webapp: &TestWebapp) -> serde_json::Value {
    let page = browser
        .get(webapp.url("/api/auth/session"))
        .await
        .expect("session endpoint answers");
    assert_eq!(page.status, 200, "{}", page.body);
    page.json().expect("session endpoint answers JSON")
}

/// Asserts that the browser is not signed in at the web app.
pub async fn assert_signed_out(browser: &Browser, webapp: &TestWebapp) {
    assert_eq!(session_json(browser, webapp).await, serde_json::json!({}));
    let home = browser.get(webapp.url("/")).await.unwrap();
    assert_eq!(home.status, 302, "the home page is gated");
    let location = home.location().unwrap().unwrap();
    assert_eq!(location.path(), "/api/auth/signin");
}

/// Whether `url` is the web app's callback.
fn is_callback(url: &Url, webapp: &TestWebapp) -> bool {
    url.port() == Some(webapp.port) && url.path().starts_with("/api/auth/callback/")
}

/// Follows redirects from `page` until the next hop would be the web app's callback, and
/// returns that callback URL; or returns the first page that is not a redirect.
pub async fn follow_until_callback(
    browser: &Browser,
    mut page: Page,
    webapp: &TestWebapp,
) -> anyhow::Result<Result<Url, Page>> {
    for _ in 0..20 {
        let Some(next) = page.location()? else {
            return Ok(Err(page));
        };
        if is_callback(&next, webapp) {
            return Ok(Ok(next));
        }
        page = browser.get(next.as_str()).await?;
    }
    bail!("too many redirects")
}

/// Runs a sign-in from the web app's sign-in button through the provider's login (and
/// consent, clicking `consent_button`), stopping before the callback: returns its URL.
pub async fn run_until_callback_with(
    browser: &Browser,
    stack: &Stack,
    consent_button: &str,
) -> anyhow::Result<Url> {
    let signin = browser.visit(stack.webapp.url("/")).await?;
    let started = browser
        .submit_once(&testkit::sign_in_form(&signin)?)
        .await?;
    let provider_page = match follow_until_callback(browser, started, &stack.webapp).await? {
        // Signed in and consented at the provider before: straight back.
        Ok(callback) => return Ok(callback),
        Err(page) => page,
    };
    let after_login = if login_form(&provider_page).is_ok() {
        let user = &stack.provider.user;
        let mut form = login_form(&provider_page)?;
        form.set("username", &user.username)
            .set("password", &user.password);
        let form = match form.buttons.first() {
            Some(button) => form.click(&button.label.clone())?,
            None => form,
        };
        let page = browser.submit_once(&form).await?;
        match follow_until_callback(browser, page, &stack.webapp).await? {
            Ok(callback) => return Ok(callback),
            Err(page) => page,
        }
    } else {
        provider_page
    };
    if !is_consent_page(&after_login) {
        bail!(
            "expected the consent page, got {} ({}): {}",
            after_login.url,
            after_login.status,
            after_login.text()
        );
    }
    let form = after_login
        .form_with_button(consent_button)?
        .click(consent_button)?;
    let page = browser.submit_once(&form).await?;
    follow_until_callback(browser, page, &stack.webapp)
        .await?
        .map_err(|page| anyhow::anyhow!("no redirect to the callback: {}", page.text()))
        .context("after consent")
}

/// [`run_until_callback_with`] clicking "Authorize".
pub async fn run_until_callback(browser: &Browser, stack: &Stack) -> anyhow::Result<Url> {
    run_until_callback_with(browser, stack, "Authorize").await
}

/// A TCP relay in front of a port: "down" refuses new connections and cuts open ones, like a
/// provider that stopped; "up" relays again.
pub struct Relay {
    /// The port to connect to instead of the target.
    pub port: u16,
    up: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
    open: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    /// Starts relaying `127.0.0.1:{port}` to `127.0.0.1:{target}`, up or down.
    pub async fn start(target: u16, up: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(up));
        let connections = Arc::new(AtomicUsize::new(0));
        let open: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (up, connections, open) = (up.clone(), connections.clone(), open.clone());
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    connections.fetch_add(1, Ordering::SeqCst);
                    let relay = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    open.lock().unwrap().push(relay);
                }
            })
        };
        Self {
            port,
            up,
            connections,
            open,
            accept,
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Brings the relay up or down (down also cuts the connections already open).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for connection in self.open.lock().unwrap().drain(..) {
                connection.abort();
            }
        }
    }

    /// How many connections were relayed so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.set_up(false);
    }
}

/// Signs the seeded user in from the web app's home page, whatever the provider remembers
/// (login session, consent): returns the page the web app shows at the end.
pub async fn sign_in(browser: &Browser, stack: &Stack) -> anyhow::Result<Page> {
    let callback = run_until_callback(browser, stack).await?;
    browser.visit(callback.as_str()).await
}

/// What the [`BackchannelProxy`] changes in the provider's answers.
#[derive(Default)]
struct ProxyRules {
    /// Served instead of the provider's JWK Set.
    frozen_jwks: Option<String>,
    /// Put into token responses instead of the ID token the provider issued.
    id_token: Option<String>,
    /// Claims merged into the provider's ID tokens, which are then signed again with the key
    /// (the provider's own): a provider that issues them, under the test's control.
    extra_id_token_claims: Option<(serde_json::Value, Arc<oidc_core::jose::SigningKey>)>,
    /// The last ID token the provider issued.
    seen_id_token: Option<String>,
    /// The last refresh token the provider issued.
    seen_refresh_token: Option<String>,
    /// Answers to refresh-token grants wait while this is set.
    hold_refreshes: bool,
    /// Answers to refresh-token grants waiting now.
    held_refreshes: usize,
}

/// An HTTP proxy in front of the provider for the web app's server-side calls: it counts the
/// JWK Set fetches and can serve an outdated key set or a foreign ID token, as a compromised or
/// misbehaving path to the provider would.
pub struct BackchannelProxy {
    /// The port the web app's back-channel points at.
    pub port: u16,
    jwks_fetches: Arc<AtomicUsize>,
    rules: Arc<Mutex<ProxyRules>>,
    handle: actix_web::dev::ServerHandle,
}

impl BackchannelProxy {
    /// Starts relaying every request to `127.0.0.1:{target}`.
    pub async fn start(target: u16) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let rules: Arc<Mutex<ProxyRules>> = Arc::default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let state = actix_web::web::Data::new((
            format!("http://127.0.0.1:{target}"),
            http,
            jwks_fetches.clone(),
            rules.clone(),
        ));
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(state.clone())
                .default_service(actix_web::web::to(relay))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            port,
            jwks_fetches,
            rules,
            handle,
        }
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many times the JWK Set was asked for through this proxy.
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Serves `jwks` instead of the provider's key set (`None`: the provider's again).
    pub fn freeze_jwks(&self, jwks: Option<String>) {
        self.rules.lock().unwrap().frozen_jwks = jwks;
    }

    /// The last ID token the provider issued through this proxy.
    pub fn seen_id_token(&self) -> Option<String> {
        self.rules.lock().unwrap().seen_id_token.clone()
    }

    /// The last refresh token the provider issued through this proxy.
    pub fn seen_refresh_token(&self) -> Option<String> {
        self.rules.lock().unwrap().seen_refresh_token.clone()
    }

    /// Holds the provider's answers to refresh-token grants (received, not yet relayed) until
    /// called again with `false`: the refresh is in flight for as long as a test needs.
    pub fn hold_refreshes(&self, hold: bool) {
        self.rules.lock().unwrap().hold_refreshes = hold;
    }

    /// How many answers to refresh-token grants are being held.
    pub fn held_refreshes(&self) -> usize {
        self.rules.lock().unwrap().held_refreshes
    }

    /// Adds `claims` to (or replaces them in) the ID tokens of token responses, signed again
    /// with `key`; `None`: the genuine ones.
    pub fn add_id_token_claims(
        &self,
        claims: Option<(serde_json::Value, Arc<oidc_core::jose::SigningKey>)>,
    ) {
        self.rules.lock().unwrap().extra_id_token_claims = claims;
    }

    /// Replaces the ID token of token responses with `id_token` (`None`: the genuine one).
    pub fn replace_id_token(&self, id_token: Option<String>) {
        self.rules.lock().unwrap().id_token = id_token;
    }
}

impl Drop for BackchannelProxy {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

type ProxyState = (
    String,
    reqwest::Client,
    Arc<AtomicUsize>,
    Arc<Mutex<ProxyRules>>,
);

async fn relay(
    request: actix_web::HttpRequest,
    body: actix_web::web::Bytes,
    state: actix_web::web::Data<ProxyState>,
) -> actix_web::HttpResponse {
    let (target, http, jwks_fetches, rules) = state.get_ref();
    let path = request.uri().path();
    if path == "/oauth/jwks" {
        jwks_fetches.fetch_add(1, Ordering::SeqCst);
        if let Some(jwks) = rules.lock().unwrap().frozen_jwks.clone() {
            return actix_web::HttpResponse::Ok()
                .content_type("application/json")
                .body(jwks);
        }
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map_or(path, |p| p.as_str())
        .to_owned();
    let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes()).unwrap();
    let mut outbound = http.request(method, format!("{target}{path_and_query}"));
    for (name, value) in request.headers() {
        if name != "host" {
            outbound = outbound.header(name.as_str(), value.as_bytes());
        }
    }
    let Ok(answer) = outbound.body(body.to_vec()).send().await else {
        return actix_web::HttpResponse::BadGateway().finish();
    };
    let status = actix_web::http::StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut response = actix_web::HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            response.insert_header((name.as_str(), value.as_bytes()));
        }
    }
    let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
    if path == "/oauth/token" {
        if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            let mut rules = rules.lock().unwrap();
            if let Some(issued) = json.get("refresh_token").and_then(|t| t.as_str()) {
                rules.seen_refresh_token = Some(issued.to_owned());
            }
            if let Some(issued) = json.get("id_token").and_then(|t| t.as_str()) {
                rules.seen_id_token = Some(issued.to_owned());
                if let Some(replacement) = rules.id_token.clone() {
                    json["id_token"] = serde_json::Value::String(replacement);
                    bytes = serde_json::to_vec(&json).unwrap();
                } else if let Some((extra, key)) = &rules.extra_id_token_claims {
                    let resigned = with_claims(issued, extra, key);
                    json["id_token"] = serde_json::Value::String(resigned);
                    bytes = serde_json::to_vec(&json).unwrap();
                }
            }
        }
    }
    let refresh_grant = String::from_utf8_lossy(&body).contains("grant_type=refresh_token");
    if path == "/oauth/token" && refresh_grant && rules.lock().unwrap().hold_refreshes {
        rules.lock().unwrap().held_refreshes += 1;
        while rules.lock().unwrap().hold_refreshes {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        rules.lock().unwrap().held_refreshes -= 1;
    }
    response.body(bytes)
}

/// `id_token` with `extra` merged into its claims, signed with `key`.
fn with_claims(
    id_token: &str,
    extra: &serde_json::Value,
    key: &oidc_core::jose::SigningKey,
) -> String {
    use base64::Engine as _;
    let payload = id_token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let mut claims: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON claims");
    for (name, value) in extra.as_object().expect("an object of claims") {
        claims[name] = value.clone();
    }
    key.sign(&claims).expect("signed")
}
