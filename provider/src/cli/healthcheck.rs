//! `provider healthcheck`: a GET of `/healthz` for container health checks.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::Context as _;

/// GETs `/healthz` on the listen address (a wildcard address is reached on loopback), without
/// an HTTP client library: the runtime image has no curl.
pub fn healthcheck(addr: &str) -> anyhow::Result<()> {
    let port = addr
        .rsplit_once(':')
        .map(|(_, p)| p)
        .context("PROVIDER_ADDR has no port")?;
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    let host = match host {
        "0.0.0.0" | "" | "[::]" | "::" => "127.0.0.1",
        other => other,
    };
    let target = format!("{host}:{port}");
    let socket = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("cannot resolve {target}"))?;
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&socket, timeout)
        .with_context(|| format!("cannot connect to {target}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let status = response.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        anyhow::bail!("unhealthy: {target} answered {status:?}")
    }
}
