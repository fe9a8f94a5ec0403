//! A throwaway PostgreSQL cluster for tests: one per test process, started on first use with
//! `initdb` and `pg_ctl` from `/usr/lib/postgresql/<version>/bin`, listening on a free loopback
//! port, and removed when the process is gone.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let url = testkit::postgres::fresh_database().await?; // postgres://postgres@127.0.0.1:…/test_…
//! # let _ = url; Ok(()) }
//! ```
//!
//! Statics are never dropped, so the cluster is stopped by a small detached reaper that waits
//! for this process to end, then runs `pg_ctl stop -m immediate` and deletes the folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, anyhow, bail};

/// The superuser of the throwaway cluster (trust authentication, no password).
pub const SUPERUSER: &str = "postgres";

/// A running cluster: its binaries, folder and port.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the data directory, the socket and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of database `name` as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a new empty database and returns its URL.
    pub fn create_database(&self) -> anyhow::Result<String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let output = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, &name])
            .stdin(Stdio::null())
            .output()
            .context("running createdb")?;
        if !output.status.success() {
            bail!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(self.url(&name))
    }
}

/// The process's cluster, started on first call; an error (e.g. PostgreSQL not installed) is
/// kept and returned to every caller.
pub fn cluster() -> anyhow::Result<&'static Cluster> {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    CLUSTER
        .get_or_init(|| start().map_err(|error| format!("{error:#}")))
        .as_ref()
        .map_err(|error| anyhow!("throwaway PostgreSQL cluster: {error}"))
}

/// A fresh empty database in the process's cluster, as a `postgres://` URL (blocking).
pub fn fresh_database_blocking() -> anyhow::Result<String> {
    cluster()?.create_database()
}

/// A fresh empty database in the process's cluster, as a `postgres://` URL.
pub async fn fresh_database() -> anyhow::Result<String> {
    tokio::task::spawn_blocking(fresh_database_blocking)
        .await
        .context("creating a test database")?
}

/// The `bin` folder of the newest PostgreSQL under `/usr/lib/postgresql`.
pub fn find_bin() -> anyhow::Result<PathBuf> {
    let not_installed = || {
        anyhow!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/initdb); \
             run scripts/install-test-deps"
        )
    };
    let entries = std::fs::read_dir("/usr/lib/postgresql").map_err(|_| not_installed())?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .ok_or_else(not_installed)
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// `program` as a command, run as the `postgres` user when this process is root (the server
/// refuses to run as root).
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout).trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn start() -> anyhow::Result<Cluster> {
    let bin = find_bin()?;
    let root = running_as_root();
    // Kept by hand (not a TempDir): the reaper deletes it once this process has ended.
    let dir = tempfile::Builder::new()
        .prefix("testkit-pg-")
        .tempdir()
        .context("creating the cluster folder")?
        .keep();
    reap_when_gone(&bin, &dir, root)?;
    if root {
        let mut chown = Command::new("chown");
        chown.args(["-R", "postgres:postgres"]).arg(&dir);
        run(chown, "chown postgres")?;
    }
    let data = dir.join("data");
    let mut initdb = as_server_user(&bin.join("initdb"), root);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync"])
        .args(["--locale", "C"]);
    run(initdb, "initdb")?;

    // The free port is found by binding and releasing it; another process may take it in
    // between, so starting is tried a few times.
    let mut last = None;
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free port")?
            .port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=500 \
             -c shared_buffers=32MB",
            dir.display()
        );
        let mut pg_ctl = as_server_user(&bin.join("pg_ctl"), root);
        pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-o", &options, "-w", "-t", "30", "start"]);
        match run(pg_ctl, "pg_ctl start") {
            Ok(()) => return Ok(Cluster { bin, dir, port }),
            Err(error) => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                last = Some(error.context(log));
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("the server did not start")))
}

/// Starts a detached `sh` loop that waits for this process to end, then stops the server and
/// removes `dir`.
fn reap_when_gone(bin: &Path, dir: &Path, root: bool) -> anyhow::Result<()> {
    let pg_ctl = bin.join("pg_ctl");
    let data = dir.join("data");
    let stop = if root {
        format!(
            "runuser -u postgres -- '{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "'{}' -D '{}' stop -m immediate",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         if [ -f '{data}/postmaster.pid' ]; then {stop}; fi; rm -rf '{dir}'",
        pid = std::process::id(),
        data = data.display(),
        dir = dir.display(),
    );
    // setsid: a Ctrl-C to the test's process group does not reach the reaper.
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the cluster's reaper")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str, sql: &str) -> String {
        let bin = find_bin().unwrap();
        let output = Command::new(bin.join("psql"))
            .args([url, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    #[tokio::test]
    async fn each_call_gives_a_new_empty_database_in_one_shared_cluster() {
        let (a, b) = tokio::join!(fresh_database(), fresh_database());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_ne!(a, b);
        let cluster = cluster().unwrap();
        assert!(a.starts_with(&format!(
            "postgres://postgres@127.0.0.1:{}/",
            cluster.port()
        )));

        query(&a, "CREATE TABLE only_in_a (id integer)");
        assert_eq!(
            query(
                &a,
                "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
            ),
            "1"
        );
        assert_eq!(
            query(
                &b,
                "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
            ),
            "0"
        );
        assert_eq!(
            query(&b, "SELECT current_database()"),
            b.rsplit('/').next().unwrap()
        );
        // The server runs unprivileged in the cluster's own folder.
        assert_eq!(query(&a, "SHOW listen_addresses"), "127.0.0.1");
        assert!(cluster.dir().join("data/postmaster.pid").is_file());
    }

    #[test]
    fn the_newest_installed_version_is_found() {
        let bin = find_bin().unwrap();
        assert!(bin.join("pg_ctl").is_file());
        assert!(bin.starts_with("/usr/lib/postgresql"));
    }
}
