//! `callbackUrl`: where to go after sign-in, honoured only within the web app's own origin.

use url::Url;

use crate::config::AppUrl;

/// Where a user lands when `callbackUrl` is absent or refused.
pub const HOME: &str = "/";

/// How many rounds of percent-decoding are inspected: enough for double-encoded tricks.
const DECODE_ROUNDS: usize = 3;

/// A same-origin path (with query), safe to put in a `Location` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    /// Accepts a relative path (`/x?y`) or an absolute URL on `app`'s origin; everything else,
    /// including protocol-relative (`//evil`), backslash (`/\evil`) and encoded variants,
    /// becomes `/`.
    pub fn sanitize(app: &AppUrl, raw: Option<&str>) -> Self {
        raw.and_then(|raw| Self::parse(app, raw))
            .unwrap_or_else(|| Self(HOME.to_owned()))
    }

    /// `Some` only for a value that is safe as it stands.
    pub fn parse(app: &AppUrl, raw: &str) -> Option<Self> {
        if raw.is_empty() || raw.len() > 2048 {
            return None;
        }
        // Look at the value and its decoded forms: browsers and proxies disagree on what they
        // decode, so a backslash or a control character at any level is refused.
        let mut layer = raw.to_owned();
        if raw.chars().any(char::is_whitespace) {
            // URL parsers drop tabs and newlines anywhere, so `/\t/evil` would become `//evil`.
            return None;
        }
        for _ in 0..=DECODE_ROUNDS {
            if layer.chars().any(|c| c == '\\' || c.is_control()) {
                return None;
            }
            let trimmed = layer.trim_start_matches('/');
            // A path must not start with two slashes at any decoding level (`/%2Fevil`).
            if layer.starts_with('/') && layer.len() - trimmed.len() > 1 {
                return None;
            }
            let decoded = percent_decode(&layer)?;
            if decoded == layer {
                break;
            }
            layer = decoded;
        }
        let base = app.url();
        let joined = base.join(raw).ok()?;
        if joined.origin() != base.origin() {
            return None;
        }
        if !raw.starts_with('/') && !is_absolute_http(raw) {
            // Relative forms like `evil.example` or `https:evil` are not what anyone means.
            return None;
        }
        let mut local = joined.path().to_owned();
        if let Some(query) = joined.query() {
            local.push('?');
            local.push_str(query);
        }
        Some(Self(local))
    }

    /// The local path and query.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_absolute_http(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        && (raw.starts_with("http://") || raw.starts_with("https://"))
}

/// Percent-decodes into UTF-8; `None` for invalid UTF-8 (refused rather than guessed at).
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppUrl {
        AppUrl::parse("http://localhost:3000").unwrap()
    }

    fn sanitize(raw: &str) -> String {
        CallbackUrl::sanitize(&app(), Some(raw)).as_str().to_owned()
    }

    #[test]
    fn local_paths_are_kept() {
        assert_eq!(sanitize("/"), "/");
        assert_eq!(sanitize("/reports?year=2026"), "/reports?year=2026");
        assert_eq!(sanitize("/a/b%20c"), "/a/b%20c");
    }

    #[test]
    fn absolute_urls_on_our_origin_become_paths() {
        assert_eq!(
            sanitize("http://localhost:3000/reports?x=1"),
            "/reports?x=1"
        );
        assert_eq!(sanitize("http://localhost:3000"), "/");
    }

    #[test]
    fn other_origins_are_refused() {
        for attempt in [
            "//evil.example",
            "//evil.example/path",
            "https://evil.example",
            "http://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/%2Fevil.example",
            "/%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%252F%252Fevil.example",
            "/%255Cevil.example",
            "///evil.example",
            "/\t/evil.example",
            "/ /evil.example",
            "https:evil.example",
            "http:/evil.example",
            "evil.example",
            "javascript:alert(1)",
            "data:text/html,hi",
            "http://localhost:3001/",
            "https://localhost:3000/",
            "http://localhost:3000@evil.example/",
            "http://evil.example#http://localhost:3000/",
            "",
            "/%E0%A4%A",
            "/%ff",
        ] {
            assert_eq!(sanitize(attempt), "/", "{attempt:?} must be refused");
        }
    }

    #[test]
    fn absent_means_home() {
        assert_eq!(CallbackUrl::sanitize(&app(), None).as_str(), "/");
    }

    #[test]
    fn fragments_are_dropped() {
        assert_eq!(sanitize("/page#section"), "/page");
    }
}
