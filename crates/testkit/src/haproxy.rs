//! Debian's haproxy (`/usr/sbin/haproxy`, or `HAPROXY`) started on a free loopback port in front
//! of N HTTP backends, `balance roundrobin`, from a generated configuration file in a temporary
//! folder; killed when dropped.
//!
//! Every response carries `X-Served-By: replica{i}`, the backend that answered (its index in the
//! list given), so tests can tell which backend served which request through the balancer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;

/// Where Debian installs haproxy; `HAPROXY` overrides it.
pub const DEFAULT_HAPROXY: &str = "/usr/sbin/haproxy";

/// The response header naming the backend that answered.
pub const SERVED_BY: &str = "x-served-by";

/// How haproxy is configured beyond its backends.
#[derive(Debug, Clone, Default)]
pub struct HaproxyOptions {
    /// Checks every backend with `GET {path}` every half second and sends no requests to one
    /// that does not answer 200; `None` sends requests to every backend, up or not.
    pub health_check: Option<String>,
    /// haproxy's threads (`nbthread`); `None` is haproxy's default (one per core).
    pub threads: Option<u32>,
}

/// A running haproxy; killed when dropped.
pub struct Haproxy {
    /// `http://127.0.0.1:{port}` (no trailing slash).
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The backends, in the order of their names `replica0`, `replica1`, …
    pub backends: Vec<SocketAddr>,
    /// Its standard error (haproxy's warnings and alerts).
    pub log: PathBuf,
    child: Child,
    _dir: TempDir,
}

impl Haproxy {
    /// haproxy without health checks in front of `backends`.
    pub async fn start(backends: &[SocketAddr]) -> anyhow::Result<Self> {
        Self::start_with(backends, &HaproxyOptions::default()).await
    }

    /// haproxy with `options` in front of `backends`, on a free port (tried again on another
    /// port when the one picked was taken before haproxy bound it).
    pub async fn start_with(
        backends: &[SocketAddr],
        options: &HaproxyOptions,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!backends.is_empty(), "haproxy needs at least one backend");
        let binary = binary()?;
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .context("binding 127.0.0.1:0")?
                .local_addr()?
                .port();
            match Self::try_start(&binary, port, backends, options).await {
                Ok(haproxy) => return Ok(haproxy),
                Err(Failure::PortTaken(log)) => last = log,
                Err(Failure::Other(error)) => return Err(error),
            }
        }
        bail!("haproxy found no free port in five tries; its last log:\n{last}")
    }

    /// haproxy with `options` in front of `backends` on `port`, which must be free.
    pub async fn start_on(
        port: u16,
        backends: &[SocketAddr],
        options: &HaproxyOptions,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!backends.is_empty(), "haproxy needs at least one backend");
        match Self::try_start(&binary()?, port, backends, options).await {
            Ok(haproxy) => Ok(haproxy),
            Err(Failure::PortTaken(log)) => bail!("haproxy cannot bind 127.0.0.1:{port}:\n{log}"),
            Err(Failure::Other(error)) => Err(error),
        }
    }

    async fn try_start(
        binary: &Path,
        port: u16,
        backends: &[SocketAddr],
        options: &HaproxyOptions,
    ) -> Result<Self, Failure> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-haproxy-")
            .tempdir()
            .context("creating haproxy's temporary folder")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config_path = dir.path().join("haproxy.cfg");
        std::fs::write(&config_path, config(addr, backends, options))
            .context("writing haproxy.cfg")?;
        let log = dir.path().join("haproxy.log");
        let log_file = std::fs::File::create(&log).context("creating haproxy.log")?;
        // -db: stay in the foreground, so the child is haproxy itself and killing it stops it.
        let child = Command::new(binary)
            .arg("-db")
            .arg("-f")
            .arg(&config_path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("haproxy.log")?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut haproxy = Self {
            url: format!("http://{addr}"),
            addr,
            backends: backends.to_vec(),
            log,
            child,
            _dir: dir,
        };
        haproxy.wait_listening().await?;
        Ok(haproxy)
    }

    /// Waits until the frontend accepts connections, or haproxy exits.
    async fn wait_listening(&mut self) -> Result<(), Failure> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for haproxy")? {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                if log.contains("cannot bind socket") {
                    return Err(Failure::PortTaken(log));
                }
                return Err(Failure::Other(anyhow::anyhow!(
                    "haproxy exited with {status} at start:\n{log}"
                )));
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(Failure::Other(anyhow::anyhow!(
                    "haproxy did not listen on {} within 10 s:\n{log}",
                    self.addr
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `{url}{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The pid of the haproxy process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

enum Failure {
    /// haproxy could not bind the port picked for it; its log.
    PortTaken(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::Other(error)
    }
}

/// The haproxy binary: `HAPROXY`, or Debian's `/usr/sbin/haproxy`; a clear error when absent.
pub fn binary() -> anyhow::Result<PathBuf> {
    binary_at(
        std::env::var_os("HAPROXY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_HAPROXY)),
    )
}

fn binary_at(path: PathBuf) -> anyhow::Result<PathBuf> {
    if !path.is_file() {
        bail!(
            "haproxy not found at {} (set HAPROXY to its path, or install Debian's haproxy \
             package with scripts/install-test-deps)",
            path.display()
        );
    }
    Ok(path)
}

/// The configuration: an HTTP frontend on `frontend`, one backend `replicas` balancing
/// `backends` round-robin, each response marked with the server that answered.
pub fn config(frontend: SocketAddr, backends: &[SocketAddr], options: &HaproxyOptions) -> String {
    let mut text = String::from("global\n    maxconn 4096\n");
    if let Some(threads) = options.threads {
        text.push_str(&format!("    nbthread {threads}\n"));
    }
    // forwardfor: the providers see the client's address in the last X-Forwarded-For entry.
    text.push_str(
        "\ndefaults\n    mode http\n    option forwardfor\n    timeout connect 5s\n    \
         timeout client 60s\n    timeout server 60s\n    timeout http-request 10s\n\n",
    );
    text.push_str(&format!(
        "frontend balancer\n    bind {frontend}\n    default_backend replicas\n\n"
    ));
    text.push_str("backend replicas\n    balance roundrobin\n");
    text.push_str(&format!("    http-response set-header {SERVED_BY} %s\n"));
    if let Some(path) = &options.health_check {
        text.push_str(&format!(
            "    option httpchk GET {path}\n    http-check expect status 200\n"
        ));
    }
    let check = if options.health_check.is_some() {
        " check inter 500ms fall 2 rise 1"
    } else {
        ""
    };
    for (i, backend) in backends.iter().enumerate() {
        text.push_str(&format!("    server replica{i} {backend}{check}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_balances_round_robin_and_checks_only_when_asked() {
        let frontend = SocketAddr::from(([127, 0, 0, 1], 8000));
        let backends = [
            SocketAddr::from(([127, 0, 0, 1], 9001)),
            SocketAddr::from(([127, 0, 0, 1], 9002)),
        ];
        let plain = config(frontend, &backends, &HaproxyOptions::default());
        assert!(plain.contains("bind 127.0.0.1:8000"), "{plain}");
        assert!(plain.contains("balance roundrobin"), "{plain}");
        assert!(
            plain.contains("server replica0 127.0.0.1:9001\n"),
            "{plain}"
        );
        assert!(
            plain.contains("server replica1 127.0.0.1:9002\n"),
            "{plain}"
        );
        assert!(!plain.contains("httpchk"), "{plain}");
        let checked = config(
            frontend,
            &backends,
            &HaproxyOptions {
                health_check: Some("/healthz".into()),
                threads: Some(1),
            },
        );
        assert!(checked.contains("option httpchk GET /healthz"), "{checked}");
        assert!(checked.contains("nbthread 1"), "{checked}");
        assert!(
            checked.contains("server replica1 127.0.0.1:9002 check"),
            "{checked}"
        );
    }

    #[test]
    fn a_missing_haproxy_is_named_with_how_to_install_it() {
        let error = binary_at(PathBuf::from("/nonexistent/haproxy"))
            .expect_err("no haproxy there")
            .to_string();
        assert!(error.contains("/nonexistent/haproxy"), "{error}");
        assert!(error.contains("scripts/install-test-deps"), "{error}");
    }

    /// A backend answering every request on a connection with its `name`.
    async fn backend(name: &'static str) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = vec![0u8; 8192];
                    let mut pending = Vec::new();
                    loop {
                        let Ok(read) = stream.read(&mut buffer).await else {
                            return;
                        };
                        if read == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buffer[..read]);
                        // Requests without bodies: each ends with an empty line.
                        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..end + 4);
                            let response = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{name}",
                                name.len()
                            );
                            if stream.write_all(response.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    async fn served_by(client: &reqwest::Client, haproxy: &Haproxy) -> (String, String) {
        let response = client.get(haproxy.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let server = response.headers()[SERVED_BY].to_str().unwrap().to_owned();
        (server, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn requests_alternate_between_the_backends_on_one_connection() {
        let backends = [backend("first").await, backend("second").await];
        let haproxy = Haproxy::start(&backends).await.expect("haproxy starts");
        assert_ne!(haproxy.addr.port(), 0);
        // One keep-alive connection: the balancing is per request, not per connection.
        let client = reqwest::Client::new();
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(served_by(&client, &haproxy).await);
        }
        for pair in seen.windows(2) {
            assert_ne!(pair[0].0, pair[1].0, "round-robin alternates: {seen:?}");
        }
        for (server, body) in &seen {
            let expected = if server == "replica0" {
                "first"
            } else {
                "second"
            };
            assert_eq!(body, expected, "{seen:?}");
        }

        let port = haproxy.addr.port();
        drop(haproxy);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "haproxy is gone once dropped"
        );
    }

    #[tokio::test]
    async fn with_health_checks_a_dead_backend_gets_no_requests() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let backends = [dead, backend("alive").await];
        let options = HaproxyOptions {
            health_check: Some("/healthz".into()),
            threads: Some(1),
        };
        let haproxy = Haproxy::start_with(&backends, &options).await.unwrap();
        let client = reqwest::Client::new();
        // The dead one is marked down after two failed checks, half a second apart.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        for _ in 0..4 {
            assert_eq!(
                served_by(&client, &haproxy).await,
                ("replica1".to_owned(), "alive".to_owned())
            );
        }
    }
}
