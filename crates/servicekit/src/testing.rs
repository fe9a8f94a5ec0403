//! Test support: raw HTTP exchanges, for requests that no HTTP client library sends (a body
//! shorter than its `Content-Length`, invalid header bytes, a head too large).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Sends `request` to `127.0.0.1:port` and reads until the server closes the connection;
/// `None` when it has not closed it within `wait`.
pub async fn raw_exchange(port: u16, request: &[u8], wait: Duration) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the server");
    stream.write_all(request).await.expect("send the request");
    let mut answer = Vec::new();
    tokio::time::timeout(wait, stream.read_to_end(&mut answer))
        .await
        .ok()
        .map(|_| String::from_utf8_lossy(&answer).into_owned())
}

/// The TCP ports process `pid` listens on, sorted, from `/proc` (Linux): whether a service
/// opened a listener it was not asked for.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let sockets: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's open files")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is fields[1] (`ADDR:PORT` in hex), st is fields[3] (0A: LISTEN),
            // inode is fields[9].
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state != "0A" || !sockets.contains(*inode) {
                continue;
            }
            if let Some(port) = local
                .rsplit_once(':')
                .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}
