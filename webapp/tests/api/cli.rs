//! The binary: `secret`, configuration errors naming the setting (from `.env` too), and
//! `healthcheck`.

use std::process::Command;

use testkit::{Stack, bind_loopback};

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

// Multi-threaded: the blocking child-process wait must not stall the services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_reports_whether_the_web_app_answers() {
    let stack = Stack::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let up = webapp()
        .arg("healthcheck")
        .current_dir(dir.path())
        .env("WEBAPP_ADDR", format!("127.0.0.1:{}", stack.webapp.port))
        .status()
        .unwrap();
    assert!(up.success());

    let closed = bind_loopback().unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = webapp()
        .arg("healthcheck")
        .current_dir(dir.path())
        .env("WEBAPP_ADDR", format!("127.0.0.1:{port}"))
        .status()
        .unwrap();
    assert!(!down.success());
}
