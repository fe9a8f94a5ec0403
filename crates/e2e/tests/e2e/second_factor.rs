//! A second factor in a real headless Chromium: a user signs in with a password, sets up an
//! authenticator app on the provider's account pages (QR code, key in text, a first code), and
//! the next sign-in from another browser asks for a code after the password; the web app's
//! session then says how the user authenticated (`amr`, `acr`). `SAVE_SCREENSHOTS=1` writes the
//! account, enrolment and second-factor screenshots of the README.

use std::io::Write as _;

use anyhow::{Context, bail, ensure};
use testkit::Stack;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::browser::{artifacts_dir, in_ci, log_in, screenshot, to_login_page};
use crate::webdriver::{self, Driver, Session};

/// The code of the base32 `secret` at unix time `at` (30-second steps, 6 digits, SHA-1).
fn code_at(secret: &str, at: u64) -> anyhow::Result<String> {
    let bytes = Secret::Encoded(secret.replace(' ', ""))
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("the key shown is not base32: {e:?}"))?;
    let totp =
        TOTP::new(Algorithm::SHA1, 6, 0, 30, bytes).map_err(|e| anyhow::anyhow!("TOTP: {e:?}"))?;
    Ok(totp.generate(at))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_is_set_up_and_asked_for_in_chromium() {
    let (driver_path, chromium) = match webdriver::locate() {
        Ok(found) => found,
        Err(webdriver::Missing(why)) => {
            assert!(!in_ci(), "browser tests cannot run in CI: {why}");
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: second-factor browser test: {why}. Install Debian's chromium \
                 and chromium-driver with scripts/install-test-deps to run it. ***\n"
            );
            return;
        }
    };
    let driver = Driver::start(&driver_path, chromium)
        .await
        .expect("chromedriver starts");
    let stack = Stack::start().await.expect("stack starts");
    let outcome = play(&driver, &stack).await;
    driver.stop().await;
    if let Err(error) = outcome {
        panic!("second-factor scenario failed: {error:#}");
    }
}

/// Runs `step` in a fresh browser, saving a screenshot and the page source on failure.
async fn in_browser<T>(
    driver: &Driver,
    name: &str,
    step: impl AsyncFnOnce(&Session) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let session = driver.session().await?;
    let outcome = step(&session).await;
    if outcome.is_err() {
        let saved = session.save_artifacts(&artifacts_dir(), name).await;
        eprintln!("second-factor step {name} failed; saved {saved:?}");
    }
    session.close().await;
    outcome
}

/// The `useSession()` block of the web app's home page.
async fn session_json(session: &Session) -> anyhow::Result<serde_json::Value> {
    let text = session.wait_for("pre#session").await?.text().await?;
    serde_json::from_str(&text).context("the session block is JSON")
}

/// From the login form to the web app's home page, through consent if it is asked for.
async fn until_home(session: &Session, stack: &Stack) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + webdriver::STEP_TIMEOUT;
    loop {
        let url = session.url().await?;
        if url.port() == Some(stack.webapp.port) && url.path() == "/" {
            return session.wait_for_text(&stack.provider.user.email).await;
        }
        if url.port() == Some(stack.provider.port) {
            session.click_button_if_present("Authorize").await?;
        }
        if std::time::Instant::now() > deadline {
            bail!("the sign-in did not end on the web app's home page; at {url}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn play(driver: &Driver, stack: &Stack) -> anyhow::Result<()> {
    let user = &stack.provider.user;
    // First browser: a password sign-in, then the authenticator app is set up.
    let secret = in_browser(driver, "second_factor_enrol", async |session| {
        to_login_page(session, stack, "/", false).await?;
        log_in(session, &user.username, &user.password).await?;
        until_home(session, stack).await?;
        let json = session_json(session).await?;
        ensure!(
            json["data"]["amr"] == serde_json::json!(["pwd"]) && json["data"]["acr"] == "pwd",
            "a password sign-in says so: {json}"
        );

        session.goto(&stack.provider.url("/account")).await?;
        session.wait_for_text("Two-step verification").await?;
        screenshot(session, "account").await?;
        session
            .goto(&stack.provider.url("/account/security"))
            .await?;
        session.click_button("Set up an authenticator app").await?;
        let qr = session.wait_for("#qr svg").await?;
        ensure!(
            qr.attr("viewBox").await?.is_some(),
            "the QR code is an SVG drawn by the server"
        );
        let secret = session.wait_for("#totp-secret").await?.text().await?;
        screenshot(session, "totp-setup").await?;
        session
            .fill("code", &format!("{}\u{E007}", code_at(&secret, now())?))
            .await?;
        let codes = session.wait_for("#recovery-codes").await?.text().await?;
        ensure!(
            codes.lines().filter(|l| !l.trim().is_empty()).count() == 10,
            "ten recovery codes are shown once: {codes:?}"
        );
        Ok(secret)
    })
    .await?;

    // Second browser: the password alone no longer signs the user in.
    in_browser(driver, "second_factor_sign_in", async |session| {
        to_login_page(session, stack, "/", false).await?;
        log_in(session, &user.username, &user.password).await?;
        let url = session.wait_for_path("/login/factor").await?;
        ensure!(
            url.port() == Some(stack.provider.port),
            "the provider asks for the second factor: {url}"
        );
        screenshot(session, "second-factor").await?;
        // The code of the next step: the one used to confirm the app may be of this step, and
        // a code is accepted once; one step of skew is allowed.
        session
            .fill(
                "code",
                &format!("{}\u{E007}", code_at(&secret, now() + 30)?),
            )
            .await?;
        until_home(session, stack).await?;
        let json = session_json(session).await?;
        let amr = json["data"]["amr"]
            .as_array()
            .context("the session has amr")?;
        ensure!(
            ["pwd", "otp", "mfa"]
                .iter()
                .all(|m| amr.iter().any(|v| v == m))
                && json["data"]["acr"] == "mfa",
            "the web app's session says a second factor was used: {json}"
        );
        Ok(())
    })
    .await
}
