//! A lean HTTP/1.1 client: one keep-alive connection, and a user agent with a cookie jar.
//!
//! hyper's connection-level API is used directly: no pool, no redirect machinery, no locks,
//! so that the generator's own CPU cost per request stays small next to the provider's.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A response read in full.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The `Location` header, if any.
    pub fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The body as text (lossy), for HTML pages and error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A short description for error reports.
    pub fn describe(&self) -> String {
        let body = self.text();
        let snippet: String = body.chars().take(200).collect();
        format!("HTTP {}: {}", self.status.as_u16(), snippet.trim())
    }
}

/// One keep-alive HTTP/1.1 connection to the server, reopened when the server closed it.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// Number of TCP connections opened, for reports.
    pub connects: u64,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        let host =
            HeaderValue::from_str(&addr.to_string()).expect("socket address is a valid header");
        Self {
            addr,
            host,
            sender: None,
            connects: 0,
        }
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // The connection task ends when the sender is dropped or the server closes the socket.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        self.connects += 1;
        Ok(())
    }

    /// Sends one request (origin-form `path`) and reads the whole response.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        body: Option<(&'static str, Bytes)>,
    ) -> anyhow::Result<Response> {
        // A kept-alive connection the server has closed meanwhile is replaced before sending;
        // a request is never resent once written, since a token request is not idempotent.
        let ready = match self.sender.as_mut() {
            Some(sender) if !sender.is_closed() => sender.ready().await.is_ok(),
            _ => false,
        };
        if !ready {
            self.connect().await?;
            let sender = self.sender.as_mut().expect("just connected");
            sender.ready().await.context("connection not ready")?;
        }
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.host.clone());
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = match body {
            Some((content_type, bytes)) => builder
                .header(header::CONTENT_TYPE, content_type)
                .body(Full::new(bytes))?,
            None => builder.body(Full::new(Bytes::new()))?,
        };
        let sender = self.sender.as_mut().expect("connected above");
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("request to {path}"))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(
        &mut self,
        path: &str,
        headers: &[(header::HeaderName, HeaderValue)],
    ) -> anyhow::Result<Response> {
        self.send(Method::GET, path, headers, None).await
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        headers: &[(header::HeaderName, HeaderValue)],
        form: String,
    ) -> anyhow::Result<Response> {
        self.send(
            Method::POST,
            path,
            headers,
            Some(("application/x-www-form-urlencoded", Bytes::from(form))),
        )
        .await
    }
}

/// A browser: its own connection and cookie jar (one origin, so cookies are name/value pairs).
pub struct Agent {
    pub conn: Conn,
    cookies: Vec<(String, String)>,
}

impl Agent {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            conn: Conn::new(addr),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> Option<(header::HeaderName, HeaderValue)> {
        if self.cookies.is_empty() {
            return None;
        }
        let joined = self
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        HeaderValue::from_str(&joined)
            .ok()
            .map(|v| (header::COOKIE, v))
    }

    fn store_cookies(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, val) = (name.trim().to_owned(), val.trim().to_owned());
            let removed = parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-") || attr.contains("1970")
            });
            self.cookies.retain(|(n, _)| *n != name);
            if !removed && !val.is_empty() {
                self.cookies.push((name, val));
            }
        }
    }

    /// Whether the agent holds any cookie (a session, once logged in).
    pub fn has_cookies(&self) -> bool {
        !self.cookies.is_empty()
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Response> {
        let headers: Vec<_> = self.cookie_header().into_iter().collect();
        let response = self.conn.get(path, &headers).await?;
        self.store_cookies(&response.headers);
        Ok(response)
    }

    pub async fn post_form(&mut self, path: &str, form: String) -> anyhow::Result<Response> {
        let headers: Vec<_> = self.cookie_header().into_iter().collect();
        let response = self.conn.post_form(path, &headers, form).await?;
        self.store_cookies(&response.headers);
        Ok(response)
    }
}

/// Fails unless the status is the expected one, quoting the response.
pub fn expect_status(response: &Response, expected: StatusCode) -> anyhow::Result<()> {
    if response.status != expected {
        bail!("expected {expected}, got {}", response.describe());
    }
    Ok(())
}
