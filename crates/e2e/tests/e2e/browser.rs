//! The flow in a real headless Chromium: sign in through login and consent, sign out at both
//! ends, cancel on consent, wrong password. One chromedriver and one stack serve every
//! scenario; each scenario gets a fresh browser profile.
//!
//! Without Chromium and chromedriver the test says it was skipped and why, unless `CI` is set,
//! where that is a failure. `SAVE_SCREENSHOTS=1` writes the README's screenshots to
//! `docs/screenshots/`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use testkit::Stack;

use crate::webdriver::{self, Driver, Session};

/// The workspace root (two levels above this crate).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("the crate sits two levels below the workspace root")
        .to_path_buf()
}

/// Where failure screenshots and page sources go: `target/e2e-artifacts/`.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("e2e-artifacts")
}

/// Where the README's screenshots go when `SAVE_SCREENSHOTS=1`.
fn screenshots_dir() -> Option<PathBuf> {
    let wanted = std::env::var("SAVE_SCREENSHOTS").is_ok_and(|v| v == "1" || v == "true");
    wanted.then(|| workspace_root().join("docs").join("screenshots"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_scenarios() {
    let (driver_path, chromium) = match webdriver::locate() {
        Ok(found) => found,
        Err(webdriver::Missing(why)) => {
            if in_ci() {
                panic!(
                    "browser tests cannot run: {why}. CI must run them: install Debian's \
                     chromium and chromium-driver (scripts/install-test-deps)"
                );
            }
            // Written to the stderr handle, not with eprintln!, which the test harness
            // captures and shows only for failing tests: a skip must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: browser tests (e2e::browser): {why}. Install Debian's chromium \
                 and chromium-driver with scripts/install-test-deps to run them. ***\n"
            );
            return;
        }
    };
    let driver = Driver::start(&driver_path, chromium)
        .await
        .expect("chromedriver starts");
    let stack = Stack::start().await.expect("stack starts");

    let mut failures = Vec::new();
    for scenario in [
        Scenario::SignInAndSignOut,
        Scenario::CancelOnConsent,
        Scenario::WrongPassword,
    ] {
        if let Err(failure) = run(&driver, &stack, scenario).await {
            failures.push(failure);
        }
    }
    driver.stop().await;

    assert!(
        failures.is_empty(),
        "browser scenarios failed:\n{}",
        failures.join("\n")
    );
}

/// The scenarios, run one after the other against the same stack.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    SignInAndSignOut,
    CancelOnConsent,
    WrongPassword,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Self::SignInAndSignOut => "sign_in_and_sign_out",
            Self::CancelOnConsent => "cancel_on_consent",
            Self::WrongPassword => "wrong_password",
        }
    }

    async fn play(self, session: &Session, stack: &Stack) -> anyhow::Result<()> {
        match self {
            Self::SignInAndSignOut => sign_in_and_sign_out(session, stack).await,
            Self::CancelOnConsent => cancel_on_consent(session, stack).await,
            Self::WrongPassword => wrong_password(session, stack).await,
        }
    }
}

/// Runs one scenario in a fresh browser; on failure saves a screenshot and the page source
/// under `target/e2e-artifacts/` and returns the error with their paths.
async fn run(driver: &Driver, stack: &Stack, scenario: Scenario) -> Result<(), String> {
    let name = scenario.name();
    let session = driver
        .session()
        .await
        .map_err(|error| format!("{name}: no browser session: {error:#}"))?;
    let outcome = scenario.play(&session, stack).await;
    let result = match outcome {
        Ok(()) => Ok(()),
        Err(error) => {
            let saved = session.save_artifacts(&artifacts_dir(), name).await;
            let paths: Vec<String> = saved.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "browser scenario {name} failed; saved: {}",
                paths.join(", ")
            );
            Err(format!(
                "{name}: {error:#}\n    artifacts: {}",
                paths.join(", ")
            ))
        }
    };
    session.close().await;
    result
}

async fn screenshot(session: &Session, name: &str) -> anyhow::Result<()> {
    if let Some(dir) = screenshots_dir() {
        let path = dir.join(format!("{name}.png"));
        session.screenshot(&path).await?;
        eprintln!("saved {}", path.display());
    }
    Ok(())
}

/// From a gated page to the provider's login page through "Sign in with …".
async fn to_login_page(
    session: &Session,
    stack: &Stack,
    path: &str,
    shoot: bool,
) -> anyhow::Result<()> {
    session.goto(&stack.webapp.url(path)).await?;
    session.wait_for_path("/api/auth/signin").await?;
    session.wait_for_text("Sign in with").await?;
    if shoot {
        screenshot(session, "signin").await?;
    }
    session
        .click_button(&format!("Sign in with {}", stack.webapp.provider_name))
        .await?;
    let url = session.wait_for_path("/login").await?;
    ensure!(
        url.port() == Some(stack.provider.port),
        "the login page is the provider's: {url}"
    );
    session.wait_for("input[name='password']").await?;
    Ok(())
}

/// Types the credentials into the provider's login form and submits it with Enter.
async fn log_in(session: &Session, username: &str, password: &str) -> anyhow::Result<()> {
    session.fill("username", username).await?;
    session
        .fill("password", &format!("{password}\u{E007}"))
        .await
        .context("submitting the login form")
}

async fn sign_in_and_sign_out(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    let user = &stack.provider.user;
    to_login_page(session, stack, "/?view=browser", true).await?;
    screenshot(session, "login").await?;
    log_in(session, &user.username, &user.password).await?;

    session.wait_for_text("Authorize").await?;
    screenshot(session, "consent").await?;
    session.click_button("Authorize").await?;

    let url = session.wait_for_path("/").await?;
    ensure!(
        url.port() == Some(stack.webapp.port) && url.query() == Some("view=browser"),
        "back on the page first asked for, got {url}"
    );
    session.wait_for_text(&user.email).await?;
    let session_json = session.wait_for("pre#session").await?.text().await?;
    let json: serde_json::Value =
        serde_json::from_str(&session_json).context("the session block is JSON")?;
    // What `useSession()` returns: `{ data: { user, expires }, status }`.
    ensure!(
        json["status"] == "authenticated"
            && json["data"]["user"]["name"] == user.name()
            && json["data"]["user"]["email"] == user.email.as_str(),
        "the session names the user: {json}"
    );
    let api = session.wait_for("pre#api").await?.text().await?;
    ensure!(
        api.contains(&user.email),
        "the protected API's data is shown: {api}"
    );
    screenshot(session, "home").await?;

    // Sign out: the web app's button, then the provider's confirmation if it asks for one
    // (it does not when the web app sends a valid id_token_hint).
    session.click_button("Sign out").await?;
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    let mut confirmed = false;
    loop {
        let url = session.url().await?;
        if url.port() == Some(stack.webapp.port) && url.path() == "/api/auth/signin" {
            break;
        }
        if url.port() == Some(stack.provider.port) && !confirmed {
            confirmed = session.click_button_if_present("Sign out").await?;
        }
        if std::time::Instant::now() > deadline {
            bail!("sign-out did not end on the web app's sign-in page; at {url}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    session.wait_for_text("Sign in with").await?;

    // Gated again, and the provider asks for the password again.
    session.goto(&stack.webapp.url("/")).await?;
    session.wait_for_path("/api/auth/signin").await?;
    to_login_page(session, stack, "/", false).await?;
    let text = session.text().await?;
    if text.contains(&user.email) {
        bail!("the provider still shows the user as signed in: {text}");
    }
    Ok(())
}

async fn cancel_on_consent(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    // Consent given by the user in the first scenario is remembered, so this scenario signs
    // in as the administrator, who has never consented.
    to_login_page(session, stack, "/", false).await?;
    log_in(
        session,
        &stack.provider.admin.username,
        &stack.provider.admin.password,
    )
    .await?;
    session.wait_for_text("Authorize").await?;
    session.click_button("Cancel").await?;
    let url = session.wait_for_path("/api/auth/signin").await?;
    ensure!(
        url.port() == Some(stack.webapp.port),
        "back at the web app's sign-in page: {url}"
    );
    let message = session.wait_for("#signin-error").await?.text().await?;
    let lower = message.to_lowercase();
    ensure!(
        ["denied", "refused", "cancelled"]
            .iter()
            .any(|word| lower.contains(word)),
        "the sign-in page says access was denied: {message:?}"
    );
    Ok(())
}

async fn wrong_password(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    let user = &stack.provider.user;
    to_login_page(session, stack, "/", false).await?;
    log_in(session, &user.username, "not-the-password").await?;
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    loop {
        let text = session.text().await?.to_lowercase();
        if text.contains("invalid") || text.contains("incorrect") || text.contains("wrong") {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("no error message on the login page: {text}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let url = session.url().await?;
    ensure!(
        url.port() == Some(stack.provider.port) && url.path() == "/login",
        "still on the provider's login page: {url}"
    );
    session.wait_for("input[name='password']").await?;
    Ok(())
}
