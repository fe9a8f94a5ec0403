//! What a client can do with the HTTP layer itself: a body that never arrives, malformed
//! requests. Sent over raw sockets, since no HTTP client library sends them.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use servicekit::testing::raw_exchange;
use testkit::{Stack, TestProvider};

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_answered_408() {
    let stack = Stack::start_with(|_| {}, |s| s.body_timeout = Duration::from_secs(1))
        .await
        .expect("stack");
    let routes = [
        "/api/auth/signin/provider",
        "/api/auth/signout",
        "/api/auth/backchannel-logout/provider",
        "/",
    ];
    let mut requests = tokio::task::JoinSet::new();
    for path in routes {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nabc"
        );
        let port = stack.webapp.port;
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
}

#[tokio::test]
async fn malformed_requests_are_not_logged_as_server_errors() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        probe.local_addr().expect("address").port()
    };
    let provider = TestProvider::start_for_webapp(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("provider");
    let dir = tempfile::tempdir().expect("folder");
    let log = dir.path().join("webapp.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_webapp"))
        .env_clear()
        .env("WEBAPP_LOG", "info")
        .env("WEBAPP_URL", format!("http://127.0.0.1:{port}"))
        .env("WEBAPP_ADDR", format!("127.0.0.1:{port}"))
        .env("WEBAPP_SESSION_SECRET", "s".repeat(64))
        .env("OIDC_ISSUER", &provider.issuer)
        .env("OIDC_CLIENT_ID", &provider.client_id)
        .env("OIDC_CLIENT_SECRET", &provider.client_secret)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        // Both streams: a log written to either one counts.
        .stdout(log_file.try_clone().expect("log file"))
        .stderr(log_file)
        .spawn()
        .expect("start the web app");
    let mut healthy = false;
    for _ in 0..300 {
        if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(64 * 1024));
    let malformed: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: 1\r\n\r\n",
        b"GET /a b\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
        long_header.as_bytes(),
    ];
    let mut answers = Vec::new();
    if healthy {
        for request in malformed {
            answers.push(raw_exchange(port, request, Duration::from_secs(5)).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(healthy, "the web app did not start: {text}");
    for answer in answers {
        let answer = answer.expect("the server answers or closes");
        assert!(!answer.starts_with("HTTP/1.1 5"), "{answer}");
    }
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
