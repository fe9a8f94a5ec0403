//! Prometheus metrics: only on WEBAPP_METRICS_ADDR (off by default, never on the public port),
//! counting sign-ins, refreshes, back-channel logouts and requests by route pattern.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use testkit::{Browser, Stack, TestWebapp, bind_loopback};

use crate::helpers::{run_until_callback_with, session_json};

fn loopback_any_port() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn stack_with_metrics(access_token_ttl_secs: i64) -> Stack {
    Stack::start_with(
        |provider| provider.access_token_ttl_secs = access_token_ttl_secs,
        |webapp| webapp.metrics_addr = loopback_any_port(),
    )
    .await
    .expect("the stack starts")
}

/// `GET /metrics` on the web app's metrics listener, after checking status and content type.
async fn scrape(webapp: &TestWebapp) -> String {
    let addr = webapp.metrics_addr.expect("metrics are served");
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.expect("metrics text")
}

/// The value of one series, `name{labels}` exactly as exported.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

fn outcome(text: &str, metric: &str, outcome: &str) -> f64 {
    value(text, &format!("{metric}{{outcome=\"{outcome}\"}}"))
}

fn random_word() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn metrics_are_off_by_default_and_never_on_the_public_port() {
    let stack = Stack::start().await.unwrap();
    assert_eq!(stack.webapp.metrics_addr, None, "no metrics listener");
    let browser = Browser::new();
    let anonymous = browser.get(stack.webapp.url("/metrics")).await.unwrap();
    assert_eq!(anonymous.status, 302, "gated like any page");

    let stack = stack_with_metrics(3600).await;
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let page = browser.get(stack.webapp.url("/metrics")).await.unwrap();
    assert_eq!(page.status, 404);
    assert!(
        !page.body.contains("webapp_http_requests_total"),
        "{}",
        page.body
    );
    assert_ne!(stack.webapp.metrics_addr.unwrap().port(), stack.webapp.port);
}

#[tokio::test]
async fn the_metrics_listener_serves_get_metrics_only() {
    let stack = stack_with_metrics(3600).await;
    let base = format!("http://{}", stack.webapp.metrics_addr.unwrap());
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/metrics/",
        "/metrics/x",
        "/healthz",
        "/api/auth/session",
    ] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = http
            .request(method.clone(), format!("{base}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "GET");
    }
    let text = scrape(&stack.webapp).await;
    assert!(
        text.contains("# TYPE webapp_sign_ins_total counter"),
        "{text}"
    );
    assert_eq!(value(&text, "webapp_db_pool_connections_max"), 4.0);
}

#[tokio::test]
async fn sign_ins_refreshes_and_back_channel_logouts_are_counted() {
    // Access tokens that last two seconds.
    let stack = stack_with_metrics(2).await;
    let before = scrape(&stack.webapp).await;
    for name in ["completed", "denied", "failed"] {
        assert_eq!(outcome(&before, "webapp_sign_ins_total", name), 0.0);
    }

    // Denied at the consent page.
    let refuser = Browser::new();
    let callback = run_until_callback_with(&refuser, &stack, "Cancel")
        .await
        .unwrap();
    refuser.visit(callback.as_str()).await.unwrap();
    // A callback without a sign-in in progress.
    let stranger = Browser::new();
    let page = stranger
        .get(
            stack
                .webapp
                .url("/api/auth/callback/provider?code=x&state=y"),
        )
        .await
        .unwrap();
    assert!(page.status.is_client_error(), "{}", page.status);
    // Completed, and the home page refreshes the access token.
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let home = browser.visit(stack.webapp.url("/")).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());

    // A bad logout token, then the provider's own logout sends a good one.
    let bad = reqwest::Client::new()
        .post(stack.webapp.url("/api/auth/backchannel-logout/provider"))
        .form(&[("logout_token", "not.a.token")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let logout = browser.visit(stack.provider.url("/logout")).await.unwrap();
    let form = logout.form("form[action='/logout']").unwrap();
    let button = ["Log out", "Sign out"]
        .iter()
        .find_map(|label| form.click(label).ok())
        .expect("a logout button");
    browser.submit(&button).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let text = loop {
        let text = scrape(&stack.webapp).await;
        let accepted = outcome(&text, "webapp_backchannel_logouts_total", "accepted");
        if accepted >= 1.0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        session_json(&browser, &stack.webapp).await,
        serde_json::json!({})
    );
    let sign_ins = |name| outcome(&text, "webapp_sign_ins_total", name);
    assert_eq!(sign_ins("completed"), 1.0);
    assert_eq!(sign_ins("denied"), 1.0);
    assert_eq!(sign_ins("failed"), 1.0);
    let refreshes = |name| outcome(&text, "webapp_token_refreshes_total", name);
    assert!(refreshes("succeeded") >= 1.0, "{text}");
    assert_eq!(refreshes("refused"), 0.0);
    assert_eq!(refreshes("failed"), 0.0);
    let logouts = |name| outcome(&text, "webapp_backchannel_logouts_total", name);
    assert_eq!(logouts("accepted"), 1.0);
    assert_eq!(logouts("rejected"), 1.0);
    assert_eq!(logouts("unavailable"), 0.0);
    let series = "webapp_http_requests_total{method=\"POST\",route=\"/api/auth/backchannel-logout/{provider_id}\",status=\"200\"}";
    assert_eq!(value(&text, series), 1.0);
    assert!(value(&text, "webapp_db_pool_wait_seconds_count") >= 3.0);
    let in_use = value(&text, "webapp_db_pool_connections_in_use");
    assert!((0.0..=4.0).contains(&in_use), "{in_use}");
}

#[tokio::test]
async fn route_labels_are_patterns_so_random_paths_and_methods_add_no_series() {
    let stack = stack_with_metrics(3600).await;
    let browser = Browser::new();
    stack.sign_in(&browser).await.unwrap();
    let anonymous = Browser::new();
    let mut words = Vec::new();
    for i in 0..50 {
        let word = random_word();
        let path = match i % 5 {
            0 => format!("/{word}"),
            1 => format!("/api/auth/{word}"),
            2 => format!("/api/auth/callback/{word}"),
            3 => format!("/api/auth/signin/{word}"),
            _ => format!("/{word}/{word}"),
        };
        let who = if i % 2 == 0 { &browser } else { &anonymous };
        let page = who.get(stack.webapp.url(&path)).await.unwrap();
        assert!(!page.status.is_server_error(), "{path}: {}", page.status);
        words.push(word);
    }
    for _ in 0..5 {
        let word = random_word().to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(word.as_bytes()).unwrap();
        let response = reqwest::Client::new()
            .request(method, stack.webapp.url("/api/auth/session"))
            .send()
            .await
            .unwrap();
        assert!(!response.status().is_server_error());
        words.push(word);
    }

    let text = scrape(&stack.webapp).await;
    let lowercase = text.to_ascii_lowercase();
    for word in &words {
        assert!(
            !lowercase.contains(&word.to_ascii_lowercase()),
            "{word} in:\n{text}"
        );
    }
    let labels = |label: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|line| line.starts_with("webapp_http_requests_total{"))
            .filter_map(|line| {
                let value = line
                    .split(&format!("{label}=\""))
                    .nth(1)?
                    .split('"')
                    .next()?;
                Some(value.to_owned())
            })
            .collect()
    };
    let routes = labels("route");
    assert!(routes.contains("unmatched"), "{routes:?}");
    assert!(
        routes.contains("/api/auth/callback/{provider_id}"),
        "{routes:?}"
    );
    // The sign-in's few routes and the 55 requests: a dozen patterns at most, not 55 paths.
    assert!(routes.len() <= 12, "{routes:?}");
    assert_eq!(
        labels("method"),
        BTreeSet::from(["GET", "POST", "other"].map(str::to_owned))
    );
}

#[tokio::test]
async fn the_metrics_listener_stops_with_the_web_app() {
    let stack = stack_with_metrics(3600).await;
    let addr = stack.webapp.metrics_addr.unwrap();
    scrape(&stack.webapp).await;
    let Stack { webapp, provider } = stack;
    drop(webapp);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the metrics listener is still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(provider);
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    bind_loopback().unwrap().local_addr().unwrap().port()
}

/// `webapp serve` on `addr` (with a provider that is not there: it starts anyway) and `env`.
fn serve(dir: &std::path::Path, addr: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webapp"));
    command
        .arg("serve")
        .env_clear()
        .current_dir(dir)
        .env("WEBAPP_ADDR", addr)
        .env("WEBAPP_URL", format!("http://{addr}"))
        .env(
            "WEBAPP_SESSION_SECRET",
            "a-session-secret-of-at-least-32-bytes",
        )
        .env("OIDC_ISSUER", format!("http://127.0.0.1:{}", free_port()))
        .env("OIDC_CLIENT_ID", "webapp")
        .env("OIDC_CLIENT_SECRET", "client-secret")
        .env("WEBAPP_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until_healthy(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = reqwest::get(format!("http://{addr}/healthz")).await {
            if response.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the web app did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_binary_opens_a_metrics_listener_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let server = Running(serve(dir.path(), &addr, &[]).spawn().unwrap());
    wait_until_healthy(&addr).await;
    assert_eq!(
        servicekit::testing::listening_ports(server.0.id()),
        [port],
        "one listener, the public one"
    );
    drop(server);

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let env = [("WEBAPP_METRICS_ADDR", metrics_addr.as_str())];
    let server = Running(serve(dir.path(), &addr, &env).spawn().unwrap());
    wait_until_healthy(&addr).await;
    let mut expected = vec![port, metrics_port];
    expected.sort_unstable();
    assert_eq!(
        servicekit::testing::listening_ports(server.0.id()),
        expected
    );
    let response = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("webapp_sign_ins_total")
    );
}

#[tokio::test]
async fn a_bad_metrics_address_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    // A port another socket listens on.
    let taken = bind_loopback().unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    for bad in [
        "9101",
        "metrics.example:9101",
        "127.0.0.1:99999",
        taken_addr.as_str(),
    ] {
        let addr = format!("127.0.0.1:{}", free_port());
        let output = serve(dir.path(), &addr, &[("WEBAPP_METRICS_ADDR", bad)])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{bad}: started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("WEBAPP_METRICS_ADDR"), "{bad}: {stderr}");
    }
    drop(taken);
}
