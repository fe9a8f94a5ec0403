//! What a client can do with the HTTP layer itself: a body that never arrives, malformed
//! requests. Sent over raw sockets, since no HTTP client library sends them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use servicekit::testing::raw_exchange;

use crate::helpers::spawn_app_with;

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_answered_408() {
    let app = spawn_app_with(|s| s.body_timeout_secs = 1).await;
    let routes = [
        "/oauth/token",
        "/login",
        "/logout",
        "/oauth/authorize",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/userinfo",
        "/oauth/logout",
        "/admin/users",
    ];
    let mut requests = tokio::task::JoinSet::new();
    for path in routes {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nabc"
        );
        let port = app.port;
        requests.spawn(async move {
            let started = Instant::now();
            let answer = raw_exchange(port, request.as_bytes(), Duration::from_secs(8)).await;
            (path, answer, started.elapsed())
        });
    }
    while let Some(result) = requests.join_next().await {
        let (path, answer, took) = result.expect("request task");
        let answer = answer.unwrap_or_else(|| panic!("{path}: no answer within 8 s"));
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(took < Duration::from_secs(5), "{path}: {took:?}");
    }
    // A whole body is still read as before.
    let response = app
        .browser
        .post_form("/oauth/token", &[("grant_type", "authorization_code")])
        .await;
    assert_eq!(response.status(), 401);
}

/// Runs `provider serve` with `PROVIDER_LOG=info`, its log in `log`, until dropped.
struct LoggingServer {
    child: std::process::Child,
    port: u16,
}

impl LoggingServer {
    async fn start(dir: &Path, log: &Path) -> Self {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            probe.local_addr().expect("addr").port()
        };
        let log_file = std::fs::File::create(log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_provider"))
            .arg("serve")
            .env_clear()
            .env("PROVIDER_DATABASE_URL", dir.join("provider.db"))
            .env("PROVIDER_BCRYPT_COST", "4")
            .env("PROVIDER_LOG", "info")
            .env("PROVIDER_ADDR", format!("127.0.0.1:{port}"))
            .env("PROVIDER_ISSUER", format!("http://127.0.0.1:{port}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            // Both streams: a log written to either one counts.
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start provider serve");
        let server = Self { child, port };
        for _ in 0..300 {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("provider serve did not become healthy");
    }
}

impl Drop for LoggingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn malformed_requests_are_not_logged_as_server_errors() {
    let dir = tempfile::tempdir().expect("folder");
    let log = dir.path().join("provider.log");
    let server = LoggingServer::start(dir.path(), &log).await;
    let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(64 * 1024));
    let malformed: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: 1\r\n\r\n",
        b"GET /a b\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
        long_header.as_bytes(),
    ];
    for request in malformed {
        let answer = raw_exchange(server.port, request, Duration::from_secs(5)).await;
        let answer = answer.expect("the server answers or closes");
        assert!(!answer.starts_with("HTTP/1.1 5"), "{answer}");
    }
    // A real fault of the server would still be an error; a good request is logged at info.
    let response = reqwest::get(format!("http://127.0.0.1:{}/login", server.port))
        .await
        .expect("GET /login");
    assert_eq!(response.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(server);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(text.contains("GET /login 200"), "{text}");
    assert!(text.contains("starting"), "nothing logged: {text}");
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(
        errors.is_empty(),
        "client mistakes logged as errors: {errors:#?}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file: {text}"
    );
}
