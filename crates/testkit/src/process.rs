//! The `provider` binary as a child process: found (and brought up to date) in the cargo target
//! folder of the running test, started with `serve` on a free loopback port, killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The `provider` binary of this build: `PROVIDER_BIN`, or the one in the cargo target folder of
/// the running executable, built (or rebuilt when stale) with cargo once per test process.
///
/// Cargo builds a package's binaries only for that package's own tests; other crates' tests ask
/// cargo for it here, so they never run a binary older than the code they were compiled with.
pub fn provider_binary() -> anyhow::Result<PathBuf> {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build().map_err(|error| format!("{error:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn locate_or_build() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PROVIDER_BIN") {
        let path = PathBuf::from(path);
        anyhow::ensure!(
            path.is_file(),
            "PROVIDER_BIN {} is not a file",
            path.display()
        );
        return Ok(path);
    }
    let exe = std::env::current_exe().context("locating the running executable")?;
    let mut profile_dir = exe.parent().context("executable without a folder")?;
    // Tests run from target/{profile}/deps; binaries live one level up.
    if profile_dir.ends_with("deps") {
        profile_dir = profile_dir.parent().context("deps without a parent")?;
    }
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .context("target folder without a profile name")?;
    let target_dir = profile_dir
        .parent()
        .context("profile folder without a parent")?;
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .context("testkit sits two levels below the workspace root")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--quiet", "-p", "provider", "--bin", "provider"])
        .current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            command.arg("--release");
        }
        other => {
            command.args(["--profile", other]);
        }
    }
    let status = command
        .status()
        .with_context(|| format!("running {} build -p provider", cargo.to_string_lossy()))?;
    anyhow::ensure!(status.success(), "cargo build -p provider failed: {status}");
    let binary = profile_dir.join("provider");
    anyhow::ensure!(
        binary.is_file(),
        "cargo built the provider but {} is missing",
        binary.display()
    );
    Ok(binary)
}

/// A `provider serve` child process; killed (SIGKILL) when dropped.
pub struct ProviderProcess {
    /// `http://127.0.0.1:{port}`: the process itself, not the issuer it was given.
    pub url: String,
    /// Its listening address.
    pub addr: SocketAddr,
    /// Its standard output and error.
    pub log: PathBuf,
    child: Child,
}

impl ProviderProcess {
    /// Starts `binary serve` in `dir` with exactly `env` plus `PROVIDER_ADDR` on a free loopback
    /// port, and waits until `/healthz` answers 200. A port taken between picking and binding
    /// is replaced by another; any other early exit is an error with the process's log.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            match Self::try_start(binary, dir, env, port).await {
                Ok(process) => return Ok(process),
                Err(Exit::PortTaken(log)) => last = log,
                Err(Exit::Other(error)) => return Err(error),
            }
        }
        bail!("provider serve found no free port in five tries; its last log:\n{last}")
    }

    async fn try_start(
        binary: &Path,
        dir: &Path,
        env: &[(String, String)],
        port: u16,
    ) -> Result<Self, Exit> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = dir.join(format!("provider-{port}.log"));
        let log_file = std::fs::File::create(&log).context("creating the provider's log")?;
        let child = Command::new(binary)
            .arg("serve")
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("PROVIDER_ADDR", addr.to_string())
            // No .env file of a developer's is read from here.
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("provider log")?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut process = Self {
            url: format!("http://{addr}"),
            addr,
            log,
            child,
        };
        process.wait_healthy().await?;
        Ok(process)
    }

    async fn wait_healthy(&mut self) -> Result<(), Exit> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .context("HTTP client")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for the provider")? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                if log.contains("cannot listen on PROVIDER_ADDR") {
                    return Err(Exit::PortTaken(log));
                }
                return Err(Exit::Other(anyhow::anyhow!(
                    "provider serve exited with {status} at start:\n{log}"
                )));
            }
            if let Ok(response) = client.get(self.url("/healthz")).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(Exit::Other(anyhow::anyhow!(
                    "provider serve on {} was not healthy within 30 s:\n{log}",
                    self.addr
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `{url}{path}` at this process; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ProviderProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Exit {
    /// The port picked was taken before the process bound it; its log.
    PortTaken(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Exit {
    fn from(error: anyhow::Error) -> Self {
        Self::Other(error)
    }
}
