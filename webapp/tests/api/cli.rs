//! The binary: `secret`, configuration errors naming the setting (from `.env` too), log lines
//! as text or JSON, `serve` with the provider down, and `healthcheck`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::bind_loopback;

fn webapp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_webapp"));
    command.env_clear();
    command
}

#[test]
fn secret_prints_a_fresh_usable_session_secret() {
    let first = webapp().arg("secret").output().unwrap();
    let second = webapp().arg("secret").output().unwrap();
    assert!(first.status.success());
    let a = String::from_utf8(first.stdout).unwrap();
    let b = String::from_utf8(second.stdout).unwrap();
    assert!(a.trim().len() >= 32, "{a:?}");
    assert_ne!(a, b);
    assert!(webapp::config::SessionSecret::parse(a.trim()).is_ok());
}

#[test]
fn missing_settings_stop_start_up_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let output = webapp().current_dir(dir.path()).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("WEBAPP_SESSION_SECRET"), "{stderr}");
    assert!(stderr.contains("OIDC_CLIENT_ID"), "{stderr}");
}

#[test]
fn settings_are_read_from_dot_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "WEBAPP_SESSION_SECRET=too-short\nOIDC_CLIENT_ID=webapp\nOIDC_ISSUER=not-a-url\n",
    )
    .unwrap();
    let output = webapp()
        .arg("serve")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("WEBAPP_SESSION_SECRET: must be at least 32 bytes"),
        "{stderr}"
    );
    assert!(stderr.contains("OIDC_ISSUER: not a URL"), "{stderr}");
    assert!(!stderr.contains("OIDC_CLIENT_ID"), "{stderr}");
}

/// What `serve` writes to stderr (a pipe, not a terminal) with `log_format`, when its address
/// is taken: the start-up line is logged, then it stops.
fn stderr_of_a_failed_start(log_format: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let taken = bind_loopback().unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = webapp()
        .arg("serve")
        .current_dir(dir.path())
        .env("WEBAPP_ADDR", &addr)
        .env(
            "WEBAPP_SESSION_SECRET",
            "a-session-secret-of-at-least-32-bytes",
        )
        .env("OIDC_CLIENT_ID", "webapp")
        .env("WEBAPP_LOG_FORMAT", log_format)
        .output()
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn log_lines_are_plain_text_or_json_objects_off_a_terminal() {
    let text = stderr_of_a_failed_start("text");
    assert!(text.contains("INFO") && text.contains("starting"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes off a terminal: {text:?}"
    );

    let json = stderr_of_a_failed_start("json");
    assert!(!json.contains('\u{1b}'), "{json:?}");
    let (logged, last) = json
        .trim_end()
        .rsplit_once('\n')
        .unwrap_or(("", json.trim_end()));
    assert!(last.starts_with("webapp: WEBAPP_ADDR"), "{json}");
    assert!(!logged.is_empty(), "{json}");
    for line in logged.lines() {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        assert!(
            object["level"].is_string() && object["message"].is_string(),
            "{line}"
        );
    }
    let first: serde_json::Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(first["message"], "starting");
    assert_eq!(first["issuer"], "http://localhost:8000");
}

#[test]
fn a_bad_log_format_stops_start_up_naming_it() {
    let stderr = stderr_of_a_failed_start("pretty");
    assert!(
        stderr.contains("WEBAPP_LOG_FORMAT: must be text or json"),
        "{stderr}"
    );
    assert!(!stderr.contains("starting"), "{stderr}");
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = bind_loopback().unwrap();
    listener.local_addr().unwrap().port()
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_starts_without_the_provider_and_healthcheck_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let unreachable_issuer = format!("http://127.0.0.1:{}", free_port());
    let healthcheck = |addr: &str| {
        webapp()
            .arg("healthcheck")
            .current_dir(dir.path())
            .env("WEBAPP_ADDR", addr)
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(!healthcheck(&addr), "nothing runs yet");

    let _server = Running(
        webapp()
            .arg("serve")
            .current_dir(dir.path())
            .env("WEBAPP_ADDR", &addr)
            .env("WEBAPP_URL", format!("http://{addr}"))
            .env(
                "WEBAPP_SESSION_SECRET",
                "a-session-secret-of-at-least-32-bytes",
            )
            .env("OIDC_ISSUER", &unreachable_issuer)
            .env("OIDC_CLIENT_ID", "webapp")
            .env("OIDC_CLIENT_SECRET", "client-secret")
            .env("WEBAPP_LOG", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !healthcheck(&addr) {
        assert!(Instant::now() < deadline, "webapp serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}
