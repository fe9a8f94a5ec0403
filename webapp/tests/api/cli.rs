//! The binary: `secret`, configuration errors naming the setting (from `.env` too), `serve`
//! with the provider down, and `healthcheck`.

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
