//! Debian's chromedriver as a child process and headless Chromium sessions driven through it,
//! with failure artifacts (screenshot and page source) saved under `target/e2e-artifacts/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};

/// Where Debian installs Chromium; `CHROME_BIN` overrides it.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The browser window's width: wide enough for every page's layout, small enough for small
/// screenshots.
const WINDOW_WIDTH: u32 = 960;
/// How long a page may take to show what a step waits for.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the browser tests cannot run here.
#[derive(Debug)]
pub struct Missing(pub String);

/// Finds chromedriver (`CHROMEDRIVER` or `PATH`) and Chromium (`CHROME_BIN` or
/// `/usr/bin/chromium`).
pub fn locate() -> Result<(PathBuf, PathBuf), Missing> {
    let driver = match std::env::var_os("CHROMEDRIVER") {
        Some(path) => PathBuf::from(path),
        None => find_in_path("chromedriver").ok_or_else(|| {
            Missing("chromedriver is not on PATH (Debian package chromium-driver)".into())
        })?,
    };
    if !driver.is_file() {
        return Err(Missing(format!(
            "chromedriver not found at {}",
            driver.display()
        )));
    }
    let chromium = std::env::var_os("CHROME_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    if !chromium.is_file() {
        return Err(Missing(format!(
            "Chromium not found at {} (Debian package chromium)",
            chromium.display()
        )));
    }
    Ok((driver, chromium))
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A running chromedriver, killed on drop.
pub struct Driver {
    url: String,
    chromium: PathBuf,
    child: Child,
}

impl Driver {
    /// Starts `driver` on a free loopback port and waits until it reports ready.
    pub async fn start(driver: &Path, chromium: PathBuf) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let verbose = std::env::var_os("TEST_LOG").is_some();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", driver.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(response) = client.get(format!("{url}/status")).send().await
                && let Ok(status) = response.json::<serde_json::Value>().await
                && status["value"]["ready"] == json!(true)
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("chromedriver did not become ready on {url} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            url,
            chromium,
            child,
        })
    }

    /// A new headless Chromium with a fresh profile (so no cookies are shared between
    /// sessions).
    pub async fn session(&self) -> anyhow::Result<Session> {
        let profile = tempfile::Builder::new()
            .prefix("e2e-chromium-")
            .tempdir()
            .context("creating a Chromium profile directory")?;
        let args = vec![
            "--headless".to_owned(),
            // Running as root (containers, CI) requires it.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-extensions".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            format!("--window-size={WINDOW_WIDTH},720"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "binary": self.chromium, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .map_err(|error| anyhow!("starting a Chromium session: {error}"))?;
        Ok(Session {
            client,
            _profile: profile,
        })
    }

    /// Where chromedriver listens, `http://127.0.0.1:{port}`, for commands fantoccini lacks.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops chromedriver (and with it any browser left over).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// One browser with its own profile.
pub struct Session {
    /// The WebDriver client.
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Session {
    /// Ends the browser session.
    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("opening {url}"))
    }

    /// The current URL.
    pub async fn url(&self) -> anyhow::Result<url::Url> {
        Ok(self.client.current_url().await?)
    }

    /// The visible text of the page.
    pub async fn text(&self) -> anyhow::Result<String> {
        Ok(self.client.find(Locator::Css("body")).await?.text().await?)
    }

    /// Waits until the page's visible text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if let Ok(text) = self.text().await
                && text.contains(needle)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the page at {} never showed {needle:?} within {STEP_TIMEOUT:?}",
                    self.url().await.map(|u| u.to_string()).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the current URL's path is `path`.
    pub async fn wait_for_path(&self, path: &str) -> anyhow::Result<url::Url> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let url = self.url().await?;
            if url.path() == path {
                return Ok(url);
            }
            if Instant::now() > deadline {
                bail!("expected to arrive at {path}, still at {url} after {STEP_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for an element matching the CSS `selector`.
    pub async fn wait_for(&self, selector: &str) -> anyhow::Result<fantoccini::elements::Element> {
        self.client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::Css(selector))
            .await
            .with_context(|| format!("no element {selector:?} appeared within {STEP_TIMEOUT:?}"))
    }

    /// Clicks the button (or submit input) whose text starts with `label`, waiting for it to
    /// appear.
    pub async fn click_button(&self, label: &str) -> anyhow::Result<()> {
        let xpath = button_xpath(label);
        let button = self
            .client
            .wait()
            .at_most(STEP_TIMEOUT)
            .for_element(Locator::XPath(&xpath))
            .await
            .with_context(|| format!("no button {label:?} on the page"))?;
        button
            .click()
            .await
            .with_context(|| format!("clicking {label:?}"))?;
        Ok(())
    }

    /// Clicks the button whose text starts with `label` if the page has one now; returns
    /// whether it did.
    pub async fn click_button_if_present(&self, label: &str) -> anyhow::Result<bool> {
        let buttons = self
            .client
            .find_all(Locator::XPath(&button_xpath(label)))
            .await?;
        match buttons.first() {
            Some(button) => {
                button
                    .click()
                    .await
                    .with_context(|| format!("clicking {label:?}"))?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Types `value` into the field named `name`.
    pub async fn fill(&self, name: &str, value: &str) -> anyhow::Result<()> {
        let field = self.wait_for(&format!("[name={name:?}]")).await?;
        field.clear().await?;
        field
            .send_keys(value)
            .await
            .with_context(|| format!("typing into {name:?}"))?;
        Ok(())
    }

    /// Saves a screenshot of the whole page as PNG to `path`: the window is first resized to
    /// the page's height, since WebDriver captures only the viewport.
    pub async fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let sizes = self
            .client
            .execute(
                "return [document.documentElement.scrollHeight, \
                         window.outerHeight - window.innerHeight];",
                Vec::new(),
            )
            .await?;
        let page_height = sizes[0].as_u64().unwrap_or(720);
        let chrome_height = sizes[1].as_u64().unwrap_or(0);
        let height = u32::try_from((page_height + chrome_height).clamp(400, 2000)).unwrap_or(720);
        self.client.set_window_size(WINDOW_WIDTH, height).await?;
        let png = self.client.screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Saves a screenshot and the page source under `dir` as `{name}.png` and `{name}.html`;
    /// returns their paths.
    pub async fn save_artifacts(&self, dir: &Path, name: &str) -> Vec<PathBuf> {
        let mut saved = Vec::new();
        if std::fs::create_dir_all(dir).is_err() {
            return saved;
        }
        let png = dir.join(format!("{name}.png"));
        if self.screenshot(&png).await.is_ok() {
            saved.push(png);
        }
        let html = dir.join(format!("{name}.html"));
        if let Ok(source) = self.client.source().await {
            let url = self.url().await.map(|u| u.to_string()).unwrap_or_default();
            if std::fs::write(&html, format!("<!-- {url} -->\n{source}")).is_ok() {
                saved.push(html);
            }
        }
        saved
    }
}

/// The submit buttons whose text (or value) starts with `label`.
fn button_xpath(label: &str) -> String {
    format!(
        "//button[starts-with(normalize-space(.), {label})] | \
         //input[@type='submit'][starts-with(@value, {label})]",
        label = xpath_literal(label)
    )
}

/// `value` as an XPath string literal (XPath 1.0 has no escapes: quotes are switched).
fn xpath_literal(value: &str) -> String {
    if !value.contains('\'') {
        format!("'{value}'")
    } else if !value.contains('"') {
        format!("\"{value}\"")
    } else {
        let parts: Vec<String> = value.split('\'').map(|part| format!("'{part}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

#[test]
fn xpath_literals_quote_any_text() {
    assert_eq!(xpath_literal("Sign in"), "'Sign in'");
    assert_eq!(xpath_literal("it's"), "\"it's\"");
    assert_eq!(
        xpath_literal("it's \"x\""),
        "concat('it', \"'\", 's \"x\"')"
    );
}
