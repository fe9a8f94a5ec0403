//! Starting, watching and stopping the provider and web app processes on loopback.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::StatusCode;

use crate::http::Conn;

/// A free loopback port (bound, read, released: the child binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process serving HTTP, stopped when dropped.
pub struct Service {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    /// From spawning the process to `/healthz` answering 200.
    pub ready_after: Duration,
}

impl Service {
    /// Spawns `binary serve` in `dir` with `env` (stdout and stderr appended to `log`) and waits
    /// until `GET /healthz` answers 200 on `addr`, polling every millisecond.
    pub async fn start(
        name: &'static str,
        binary: &Path,
        dir: &Path,
        env: &[(String, String)],
        addr: SocketAddr,
        log: &Path,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .current_dir(dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut service = Self {
            name,
            addr,
            child,
            ready_after: Duration::ZERO,
        };
        service.ready_after = service.wait_ready(spawned, timeout, log).await?;
        Ok(service)
    }

    async fn wait_ready(
        &mut self,
        spawned: Instant,
        timeout: Duration,
        log: &Path,
    ) -> anyhow::Result<Duration> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was ready; its log {}:\n{}",
                    self.name,
                    log.display(),
                    tail(log)
                );
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                let mut conn = Conn::new(self.addr);
                if let Ok(response) = conn.get("/healthz", &[]).await
                    && response.status == StatusCode::OK
                {
                    return Ok(spawned.elapsed());
                }
            }
            if spawned.elapsed() > timeout {
                bail!(
                    "{} not ready on {} after {timeout:?}; its log {}:\n{}",
                    self.name,
                    self.addr,
                    log.display(),
                    tail(log)
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process: SIGTERM, then SIGKILL after 5 s.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        // The standard library only sends SIGKILL; a graceful stop lets SQLite checkpoint.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let asked = Instant::now();
        while asked.elapsed() < Duration::from_secs(5) {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// The last lines of a log file, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The directory of the running executable (where cargo put the provider and web app too).
pub fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("executable without a directory")?;
    let candidate = dir.join(name);
    if !candidate.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p {name}` or pass its path",
            candidate.display()
        );
    }
    Ok(candidate)
}
