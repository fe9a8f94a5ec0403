//! Prometheus metrics: only on PROVIDER_METRICS_ADDR (off by default, never on the public port),
//! counting logins, tokens, deliveries and requests by route pattern.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::RngCore as _;
use reqwest::StatusCode;

use crate::helpers::{CLIENT_ID, CLIENT_SECRET, TestApp, spawn_app, spawn_app_with};

fn loopback_any_port() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn spawn_with_metrics() -> TestApp {
    spawn_app_with(|s| s.metrics_addr = loopback_any_port()).await
}

/// `GET /metrics` on the metrics listener: the text, after checking status and content type.
async fn scrape(app: &TestApp) -> String {
    let addr = app.metrics_addr.expect("metrics are served");
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("metrics request");
    assert_eq!(response.status(), StatusCode::OK);
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

fn random_word() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn metrics_are_off_by_default_and_never_on_the_public_port() {
    let app = spawn_app().await;
    assert_eq!(app.settings.metrics_addr, None);
    assert_eq!(app.metrics_addr, None, "no metrics listener");
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let app = spawn_with_metrics().await;
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = response.text().await.unwrap();
    assert!(!body.contains("provider_http_requests_total"), "{body}");
    assert_ne!(app.metrics_addr.unwrap().port(), app.port);
}

#[tokio::test]
async fn the_metrics_listener_serves_get_metrics_only() {
    let app = spawn_with_metrics().await;
    let base = format!("http://{}", app.metrics_addr.unwrap());
    let http = reqwest::Client::new();
    for path in ["/", "/metrics/", "/metrics/x", "/healthz", "/login"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = http
            .request(method.clone(), format!("{base}/metrics"))
            .body("x=1")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()["allow"], "GET");
    }
    // Requests to the metrics listener are not the provider's: only its own are counted.
    let text = scrape(&app).await;
    assert!(
        text.contains("# TYPE provider_logins_total counter"),
        "{text}"
    );
    assert!(!text.contains("provider_http_requests_total{"), "{text}");
    let healthz = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
    let text = scrape(&app).await;
    assert!(
        text.contains("# TYPE provider_http_request_duration_seconds histogram"),
        "{text}"
    );
    let series = "provider_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}";
    assert_eq!(value(&text, series), 1.0);
}

#[tokio::test]
async fn logins_a_code_flow_and_a_refresh_are_counted() {
    let app = spawn_app_with(|s| {
        s.metrics_addr = loopback_any_port();
        s.login_throttle.max_failures_per_account = 2;
    })
    .await;
    let before = scrape(&app).await;
    for outcome in ["succeeded", "failed", "throttled"] {
        let series = format!("provider_logins_total{{outcome=\"{outcome}\"}}");
        assert_eq!(value(&before, &series), 0.0);
    }

    // Two wrong passwords for one account, then the throttle.
    let mallory = app.new_browser();
    for _ in 0..2 {
        let response = mallory.login("bob", "wrong-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = mallory.login("bob", "wrong-password").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);

    // Login, consent, code, then a refresh.
    let tokens = app.tokens_for_alice().await;
    let refresh_token = tokens["refresh_token"].as_str().expect("a refresh token");
    let response = app
        .token_request(
            (CLIENT_ID, CLIENT_SECRET),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let text = scrape(&app).await;
    let logins = |outcome: &str| {
        value(
            &text,
            &format!("provider_logins_total{{outcome=\"{outcome}\"}}"),
        )
    };
    assert_eq!(logins("succeeded"), 1.0);
    assert_eq!(logins("failed"), 2.0);
    assert_eq!(logins("throttled"), 1.0);
    let issued = |grant: &str| {
        value(
            &text,
            &format!("provider_tokens_issued_total{{grant_type=\"{grant}\"}}"),
        )
    };
    assert_eq!(issued("authorization_code"), 1.0);
    assert_eq!(issued("refresh_token"), 1.0);
    let requests = |method: &str, route: &str, status: u16| {
        value(
            &text,
            &format!(
                "provider_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("POST", "/oauth/token", 200), 2.0);
    assert_eq!(requests("POST", "/login", 401), 2.0);
    assert_eq!(requests("POST", "/login", 429), 1.0);
    assert_eq!(requests("POST", "/login", 303), 1.0);
    assert!(requests("GET", "/oauth/authorize", 302) >= 1.0);
    assert_eq!(
        value(
            &text,
            "provider_http_request_duration_seconds_count{route=\"/oauth/token\"}"
        ),
        2.0
    );
    assert!(
        value(
            &text,
            "provider_http_request_duration_seconds_bucket{route=\"/oauth/token\",le=\"+Inf\"}"
        ) == 2.0
    );

    // The database: its size, waits recorded for every call, nothing stuck in use or queued.
    let pool_size = f64::from(app.settings.db_pool_size);
    assert_eq!(value(&text, "provider_db_pool_connections_max"), pool_size);
    let in_use = value(&text, "provider_db_pool_connections_in_use");
    assert!((0.0..=pool_size).contains(&in_use), "{in_use}");
    assert!(value(&text, "provider_db_pool_wait_seconds_count") >= 10.0);
    let queued = value(&text, "provider_db_writer_queue_depth");
    assert!((0.0..=2.0).contains(&queued), "{queued}");
}

#[tokio::test]
async fn route_labels_are_patterns_so_random_paths_and_methods_add_no_series() {
    let app = spawn_with_metrics().await;
    let admin = app.admin_browser().await;
    let mut words = Vec::new();
    for i in 0..50 {
        let word = random_word();
        let path = match i % 5 {
            0 => format!("/{word}"),
            1 => format!("/oauth/{word}"),
            2 => format!("/admin/users/{word}"),
            3 => format!("/login/{word}/x"),
            _ => format!("/.well-known/{word}"),
        };
        let status = admin.get(&app.url(&path)).await.status();
        assert!(
            status.is_client_error() || status.is_success(),
            "{path}: {status}"
        );
        words.push(word);
    }
    for _ in 0..5 {
        let word = random_word().to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(word.as_bytes()).unwrap();
        let response = app
            .http
            .request(method, app.url("/login"))
            .send()
            .await
            .unwrap();
        assert!(!response.status().is_server_error());
        words.push(word);
    }

    let text = scrape(&app).await;
    let lowercase = text.to_ascii_lowercase();
    for word in &words {
        assert!(
            !lowercase.contains(&word.to_ascii_lowercase()),
            "{word} in:\n{text}"
        );
    }
    let routes: BTreeSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("provider_http_requests_total{"))
        .filter_map(|line| line.split("route=\"").nth(1)?.split('"').next())
        .collect();
    assert!(routes.contains("unmatched"), "{routes:?}");
    assert!(routes.contains("/admin/users/{id}"), "{routes:?}");
    // The admin's login and the 55 requests: a handful of patterns, not 55 paths.
    assert!(routes.len() <= 6, "{routes:?}");
    let methods: BTreeSet<&str> = text
        .lines()
        .filter(|line| line.starts_with("provider_http_requests_total{"))
        .filter_map(|line| line.split("method=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(methods, BTreeSet::from(["GET", "POST", "other"]));
}

#[tokio::test]
async fn failed_and_given_up_back_channel_deliveries_are_counted() {
    let app = spawn_app_with(|s| {
        s.metrics_addr = loopback_any_port();
        s.backchannel_max_attempts = 2;
    })
    .await;
    // Nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}/backchannel", dead.local_addr().unwrap());
    drop(dead);
    {
        use diesel::prelude::*;
        use provider::storage::schema::clients;
        diesel::update(clients::table.find(CLIENT_ID))
            .set(clients::backchannel_logout_uri.eq(&uri))
            .execute(&mut *app.state.db.conn().unwrap())
            .unwrap();
    }
    let browser = app.new_browser();
    app.code_for_alice(&browser).await;
    let page = browser.get(&app.url("/logout")).await.text().await.unwrap();
    let response = browser
        .post_form(&app.url("/logout"), &crate::helpers::hidden_fields(&page))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let deadline = Instant::now() + Duration::from_secs(15);
    let given_up = "provider_backchannel_logout_deliveries_total{outcome=\"given_up\"}";
    let text = loop {
        let text = scrape(&app).await;
        if value(&text, given_up) >= 1.0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(value(&text, given_up), 1.0);
    let failed = "provider_backchannel_logout_deliveries_total{outcome=\"failed\"}";
    assert_eq!(value(&text, failed), 1.0);
    let delivered = "provider_backchannel_logout_deliveries_total{outcome=\"delivered\"}";
    assert_eq!(value(&text, delivered), 0.0);
}

#[tokio::test]
async fn the_metrics_listener_stops_with_the_provider() {
    let app = spawn_with_metrics().await;
    let addr = app.metrics_addr.unwrap();
    scrape(&app).await;
    app.stop().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the metrics listener is still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `provider serve` on `addr` with a fresh database in `dir` and `env`.
fn serve(dir: &std::path::Path, addr: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_provider"));
    command
        .arg("serve")
        .env_clear()
        .env("PROVIDER_DATABASE_URL", dir.join("provider.db"))
        .env("PROVIDER_BCRYPT_COST", "4")
        .env("PROVIDER_LOG", "off")
        .env("PROVIDER_ADDR", addr)
        .env("PROVIDER_ISSUER", format!("http://{addr}"))
        .current_dir(dir)
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
            if response.status() == StatusCode::OK {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the provider did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_binary_opens_a_metrics_listener_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Running(serve(dir.path(), &addr, &[]).spawn().unwrap());
    wait_until_healthy(&addr).await;
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(
        servicekit::testing::listening_ports(server.0.id()),
        [port],
        "one listener, the public one"
    );
    drop(server);

    let addr = format!("127.0.0.1:{}", free_port());
    let metrics_port = free_port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let env = [("PROVIDER_METRICS_ADDR", metrics_addr.as_str())];
    let server = Running(serve(dir.path(), &addr, &env).spawn().unwrap());
    wait_until_healthy(&addr).await;
    let port: u16 = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    let mut expected = vec![port, metrics_port];
    expected.sort_unstable();
    assert_eq!(
        servicekit::testing::listening_ports(server.0.id()),
        expected
    );
    let response = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("provider_logins_total")
    );
}

#[tokio::test]
async fn a_bad_metrics_address_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    // A port another socket listens on.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    for bad in [
        "9100",
        "metrics.example:9100",
        "127.0.0.1:99999",
        taken_addr.as_str(),
    ] {
        let addr = format!("127.0.0.1:{}", free_port());
        let output = serve(dir.path(), &addr, &[("PROVIDER_METRICS_ADDR", bad)])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{bad}: started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("PROVIDER_METRICS_ADDR"), "{bad}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    // Built in code, as the test kit does: the same error, nothing left listening.
    let addr: SocketAddr = taken_addr.parse().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut settings = crate::helpers::test_settings(dir.path());
    settings.metrics_addr = Some(addr);
    let error = provider::startup::Application::from_listener(settings, listener)
        .await
        .err()
        .expect("refused");
    assert!(
        format!("{error:#}").contains("PROVIDER_METRICS_ADDR"),
        "{error:#}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    drop(taken);
}
