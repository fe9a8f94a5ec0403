//! Where to go after sign-in: NextAuth's `callbackUrl` parameter (not the OAuth callback, the
//! redirect URI), honoured only within the web app's own origin.

use percent_encoding::percent_decode_str;
use url::Url;

use crate::config::AppUrl;

/// Where a user lands when `callbackUrl` is absent or refused.
pub const HOME: &str = "/";

/// Longer values are refused: no page of this app needs one.
const MAX_LEN: usize = 2048;

/// How many rounds of percent-decoding are inspected: enough for double-encoded tricks.
const DECODE_ROUNDS: usize = 3;

/// A same-origin path (with query), safe to put in a `Location` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterSignIn(String);

impl AfterSignIn {
    /// Accepts a relative path (`/x?y`) or an absolute URL on `app`'s origin; everything else,
    /// including protocol-relative (`//evil`), backslash (`/\evil`) and encoded variants,
    /// becomes `/`. The result is a fixed point: sanitizing it again gives it back unchanged.
    pub fn sanitize(app: &AppUrl, raw: Option<&str>) -> Self {
        raw.and_then(|raw| Self::parse(app, raw))
            .unwrap_or_else(|| Self(HOME.to_owned()))
    }

    /// `Some` only for a value that is safe as it stands.
    pub fn parse(app: &AppUrl, raw: &str) -> Option<Self> {
        let local = resolve(app, raw)?;
        // Resolving dot segments can produce what the raw value did not show (`/..//evil`
        // becomes `//evil`), so the result must pass the same checks and resolve to itself.
        // A value that is not a fixed point is refused rather than resolved once more.
        (resolve(app, &local)? == local).then_some(Self(local))
    }

    /// The local path and query.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One round: checks `raw` and resolves it against the app's URL into a path and query.
fn resolve(app: &AppUrl, raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_LEN {
        return None;
    }
    if raw.chars().any(char::is_whitespace) {
        // URL parsers drop tabs and newlines anywhere, so `/\t/evil` would become `//evil`.
        return None;
    }
    if !raw.starts_with('/') && !is_absolute_http(raw) {
        // Relative forms like `evil.example` or `https:evil` are not what anyone means.
        return None;
    }
    // Look at the value and its decoded forms: browsers and proxies disagree on what they
    // decode, so a backslash or a control character at any level is refused.
    let mut layer = raw.to_owned();
    for _ in 0..=DECODE_ROUNDS {
        if !is_plain_layer(&layer) {
            return None;
        }
        // Invalid UTF-8 once decoded is refused rather than guessed at.
        let decoded = percent_decode_str(&layer).decode_utf8().ok()?;
        if decoded == layer {
            break;
        }
        layer = decoded.into_owned();
    }
    let base = app.url();
    let joined = base.join(raw).ok()?;
    if joined.origin() != base.origin() {
        return None;
    }
    let mut local = joined.path().to_owned();
    if let Some(query) = joined.query() {
        local.push('?');
        local.push_str(query);
    }
    is_plain_layer(&local).then_some(local)
}

/// No backslash, no control character, and not two slashes (or a slash and a backslash) at
/// the start, which browsers read as another host.
fn is_plain_layer(layer: &str) -> bool {
    let foreign_char = layer.chars().any(|c| c == '\\' || c.is_control());
    let two_slashes = layer.starts_with("//");
    !foreign_char && !two_slashes
}

fn is_absolute_http(raw: &str) -> bool {
    Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        && (raw.starts_with("http://") || raw.starts_with("https://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> AppUrl {
        AppUrl::parse("http://localhost:3000").unwrap()
    }

    fn sanitize(raw: &str) -> String {
        AfterSignIn::sanitize(&app(), Some(raw)).as_str().to_owned()
    }

    #[test]
    fn local_paths_are_kept() {
        assert_eq!(sanitize("/"), "/");
        assert_eq!(sanitize("/reports?year=2026"), "/reports?year=2026");
        assert_eq!(sanitize("/a/b%20c"), "/a/b%20c");
        assert_eq!(sanitize("/a/../b/./c"), "/b/c");
        assert_eq!(sanitize("/a?next=//x"), "/a?next=//x");
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
        assert_eq!(AfterSignIn::sanitize(&app(), None).as_str(), "/");
    }

    #[test]
    fn fragments_are_dropped() {
        assert_eq!(sanitize("/page#section"), "/page");
    }

    /// What a browser would take for another origin, or what becomes one once a URL parser
    /// drops tabs and newlines or a proxy decodes it.
    fn leaves_the_origin(value: &str) -> bool {
        let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        [value, decoded.as_ref()].iter().any(|v| {
            let stripped: String = v
                .chars()
                .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                .collect();
            !stripped.starts_with('/')
                || stripped.starts_with("//")
                || stripped.starts_with("/\\")
                || stripped.contains('\\')
        })
    }

    #[test]
    fn dot_segments_cannot_make_a_protocol_relative_url() {
        for attempt in [
            "/..//evil.example",
            "/.//evil.example",
            "/a/..//evil.example",
            "/a/b/../..//evil.example",
            "/%2e%2e//evil.example",
            "/%2E%2E//evil.example",
            "/%2e//evil.example",
            "/.%2e//evil.example",
            "http://localhost:3000/..//evil.example",
            "http://localhost:3000/.//evil.example",
            // What the gate puts in callbackUrl for a request to `//evil.example`.
            "http://localhost:3000//evil.example",
            "http://localhost:3000//evil.example/x?y=1",
            "/..%2f/evil.example",
            "/../%2fevil.example",
            "/..//%2fevil.example",
        ] {
            let once = sanitize(attempt);
            assert!(!leaves_the_origin(&once), "{attempt:?} became {once:?}");
            assert_eq!(sanitize(&once), once, "{attempt:?}: not idempotent");
        }
    }

    /// Inputs built from the pieces that matter: slashes, dots, their encodings, backslashes,
    /// whitespace, our origin and another one.
    fn tricky() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just("%2e".to_owned()),
            Just("%2E%2e".to_owned()),
            Just("%2f".to_owned()),
            Just("%2F".to_owned()),
            Just("%5c".to_owned()),
            Just("%252f".to_owned()),
            Just("\\".to_owned()),
            Just("\t".to_owned()),
            Just("\n".to_owned()),
            Just("%09".to_owned()),
            Just("?".to_owned()),
            Just("#".to_owned()),
            Just("@".to_owned()),
            Just(":".to_owned()),
            Just("evil.example".to_owned()),
            Just("http://localhost:3000".to_owned()),
            Just("https://evil.example".to_owned()),
            Just("a".to_owned()),
            "[a-z0-9%.=&]{1,4}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        #[test]
        fn sanitized_values_stay_local_and_are_a_fixed_point(raw in tricky()) {
            let once = sanitize(&raw);
            proptest::prop_assert!(!leaves_the_origin(&once), "{:?} became {:?}", raw, once);
            proptest::prop_assert_eq!(sanitize(&once), once.clone());
            proptest::prop_assert!(AfterSignIn::parse(&app(), &once).is_some());
        }

        #[test]
        fn arbitrary_strings_never_leave_the_origin(raw in proptest::prelude::any::<String>()) {
            let once = sanitize(&raw);
            proptest::prop_assert!(!leaves_the_origin(&once), "{:?} became {:?}", raw, once);
            proptest::prop_assert_eq!(sanitize(&once), once);
        }
    }
}
