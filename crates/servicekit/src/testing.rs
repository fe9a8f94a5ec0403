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
