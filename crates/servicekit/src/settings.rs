//! Typed settings read from the environment (after a `.env` file), for both services.
//!
//! A [`Reader`] parses one variable at a time into a typed value. A bad value does not stop
//! the reading: it is recorded, and [`Reader::finish`] reports every bad setting at once, each
//! with its variable's name and what is wrong with it, so an operator fixes them in one round.
//! Unset and blank variables count as unset, as in most `.env` conventions.
//!
//! ```
//! use std::time::Duration;
//! use servicekit::settings::{Reader, parse};
//!
//! struct Settings { addr: String, workers: u32, debug: bool, timeout: Duration, api: url::Url }
//!
//! let mut reader = Reader::from_pairs(&[("APP_WORKERS", "0"), ("APP_API_URL", "ftp://x")]);
//! let addr = reader.text("APP_ADDR", "127.0.0.1:8000");
//! let workers = reader.number("APP_WORKERS", 1.., 4);
//! let debug = reader.flag("APP_DEBUG", false);
//! let timeout = reader.seconds("APP_TIMEOUT_SECS", 1..=3600, Duration::from_secs(10));
//! let api = reader.required("APP_API_URL", "the API's base URL", parse::http_url);
//! let error = reader
//!     .finish(|| Some(Settings { addr, workers, debug, timeout, api: api? }))
//!     .err()
//!     .unwrap();
//! assert_eq!(error.settings(), ["APP_WORKERS", "APP_API_URL"]);
//! ```

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::str::FromStr;
use std::time::Duration;

/// One setting that is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The environment variable's name, e.g. `OIDC_ISSUER`.
    pub setting: &'static str,
    /// What is wrong with it, for a human.
    pub reason: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.reason)
    }
}

/// Every problem found in the configuration, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsError(pub Vec<SettingError>);

impl SettingsError {
    /// An error about one setting.
    pub fn single(setting: &'static str, reason: impl Into<String>) -> Self {
        let mut error = Self::default();
        error.push(setting, reason);
        error
    }

    /// Records one more bad setting.
    pub fn push(&mut self, setting: &'static str, reason: impl Into<String>) {
        self.0.push(SettingError {
            setting,
            reason: reason.into(),
        });
    }

    /// The names of the settings at fault, in the order found.
    pub fn settings(&self) -> Vec<&'static str> {
        self.0.iter().map(|e| e.setting).collect()
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was found wrong, the collected errors otherwise.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration:")?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

/// How the items of a list setting are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// Spaces, tabs or newlines (URI lists, scopes).
    Whitespace,
    /// Commas, with spaces around items trimmed (host names).
    Comma,
}

/// A source of variables: the value of a name, if set.
type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads settings from a source of variables and collects what is wrong with them.
pub struct Reader<'a> {
    lookup: Lookup<'a>,
    errors: SettingsError,
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: only the errors are shown.
        f.debug_struct("Reader")
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl<'a> Reader<'a> {
    /// Reads through `lookup` (the environment, a map in tests).
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
            errors: SettingsError::default(),
        }
    }

    /// Reads the process environment after loading a `.env` file from the working directory, if
    /// there is one (variables already set win). A `.env` that cannot be read is an error named
    /// `.env`.
    pub fn from_env() -> Result<Reader<'static>, SettingsError> {
        match dotenvy::dotenv() {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(SettingsError::single(".env", e.to_string())),
        }
        Ok(Reader::new(|name| std::env::var(name).ok()))
    }

    /// Reads from fixed name-value pairs (tests, settings built in code).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Reader<'static> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Reader::new(move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        })
    }

    /// The raw value of `name`; `None` when it is unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// The value of `name` as it stands, or `default`.
    pub fn text(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// The items of a list setting, empty when unset.
    pub fn list(&self, name: &str, separator: Separator) -> Vec<String> {
        let Some(value) = self.get(name) else {
            return Vec::new();
        };
        match separator {
            Separator::Whitespace => value.split_whitespace().map(str::to_owned).collect(),
            Separator::Comma => value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }

    /// `name` parsed by `parse`; unset, it is `default_text` parsed the same way. `None` when
    /// the value is invalid (recorded).
    pub fn parse_or<T>(
        &mut self,
        name: &'static str,
        default_text: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.text(name, default_text);
        self.check(name, parse(&value))
    }

    /// `name` parsed by `parse`, or `default` when unset. An invalid value gives `default` and
    /// is recorded, so [`Reader::finish`] fails.
    pub fn or_default<T>(
        &mut self,
        name: &'static str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.get(name) {
            None => default,
            Some(value) => self.check(name, parse(&value)).unwrap_or(default),
        }
    }

    /// `name` parsed by `parse`; `None` when unset or invalid (recorded).
    pub fn optional<T>(
        &mut self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(name)?;
        self.check(name, parse(&value))
    }

    /// `name` parsed by `parse`; when unset, recorded as required with `what` telling what the
    /// value is (`is required (what)`).
    pub fn required<T>(
        &mut self,
        name: &'static str,
        what: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.get(name) {
            Some(value) => self.check(name, parse(&value)),
            None => {
                self.report(name, format!("is required ({what})"));
                None
            }
        }
    }

    /// A whole number within `range`, or `default` when unset.
    pub fn number<T>(&mut self, name: &'static str, range: impl RangeBounds<T>, default: T) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        self.or_default(name, default, |value| {
            parse::number_in(value, &range, "a whole number")
        })
    }

    /// A whole number within `range`; `None` when unset or invalid (recorded).
    pub fn optional_number<T>(
        &mut self,
        name: &'static str,
        range: impl RangeBounds<T>,
    ) -> Option<T>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        self.optional(name, |value| {
            parse::number_in(value, &range, "a whole number")
        })
    }

    /// A number of seconds within `range`, or `default` when unset.
    pub fn seconds(
        &mut self,
        name: &'static str,
        range: impl RangeBounds<u64>,
        default: Duration,
    ) -> Duration {
        self.or_default(name, default, |value| {
            parse::number_in(value, &range, "a number of seconds").map(Duration::from_secs)
        })
    }

    /// A boolean ([`parse::boolean`]), or `default` when unset.
    pub fn flag(&mut self, name: &'static str, default: bool) -> bool {
        self.or_default(name, default, parse::boolean)
    }

    /// Keeps the value, or records why `name` is invalid.
    pub fn check<T>(&mut self, name: &'static str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(reason) => {
                self.report(name, reason);
                None
            }
        }
    }

    /// Records that `name` is invalid (checks that involve several settings).
    pub fn report(&mut self, name: &'static str, reason: impl Into<String>) {
        self.errors.push(name, reason);
    }

    /// The settings built by `build`, or every error recorded. `build` runs only when nothing
    /// was recorded, so it can take the `Option`s of required values with `?`; a `None` from it
    /// then means a value was not read at all, which is reported too.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, SettingsError> {
        self.errors.into_result()?;
        build().ok_or_else(|| {
            SettingsError::single("configuration", "a value was neither read nor reported")
        })
    }
}

/// Parsers for common kinds of values, for [`Reader::optional`], [`Reader::parse_or`] and the
/// like. Their messages say what is expected and never echo a value that could be a secret.
pub mod parse {
    use super::*;

    /// `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`, in any case.
    pub fn boolean(value: &str) -> Result<bool, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err(format!("must be true or false (got {value:?})")),
        }
    }

    /// An absolute `http` or `https` URL with a host.
    pub fn http_url(value: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(value.trim()).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must be an http or https URL".into());
        }
        if url.host_str().is_none() {
            return Err("must have a host".into());
        }
        Ok(url)
    }

    /// An address to listen on, `host:port`: an IP address (`0.0.0.0:9100`, `[::1]:9100`) or
    /// `localhost`, and a port (0 picks a free one).
    pub fn listen_addr(value: &str) -> Result<std::net::SocketAddr, String> {
        let value = value.trim();
        let expected =
            || format!("must be host:port with an IP address or localhost (got {value:?})");
        if let Ok(addr) = value.parse() {
            return Ok(addr);
        }
        let (host, port) = value.rsplit_once(':').ok_or_else(expected)?;
        if !host.eq_ignore_ascii_case("localhost") {
            return Err(expected());
        }
        let port: u16 = port.parse().map_err(|_| expected())?;
        Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// A number within `range`; `kind` names what is expected ("a whole number").
    pub fn number_in<T>(value: &str, range: &impl RangeBounds<T>, kind: &str) -> Result<T, String>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let expected = || format!("must be {kind}{} (got {value:?})", describe(range));
        let number: T = value.trim().parse().map_err(|_| expected())?;
        if range.contains(&number) {
            Ok(number)
        } else {
            Err(expected())
        }
    }

    fn describe<T: fmt::Display>(range: &impl RangeBounds<T>) -> String {
        let start = match range.start_bound() {
            Bound::Included(start) => Some(start.to_string()),
            Bound::Excluded(start) => Some(format!("above {start}")),
            Bound::Unbounded => None,
        };
        let end = match range.end_bound() {
            Bound::Included(end) => Some(end.to_string()),
            Bound::Excluded(end) => Some(format!("below {end}")),
            Bound::Unbounded => None,
        };
        match (start, end) {
            (Some(start), Some(end)) => format!(" from {start} to {end}"),
            (Some(start), None) => format!(", at least {start}"),
            (None, Some(end)) => format!(", at most {end}"),
            (None, None) => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset() {
        let mut reader = Reader::from_pairs(&[("A", "  "), ("B", "x")]);
        assert_eq!(reader.get("A"), None);
        assert_eq!(reader.text("A", "default"), "default");
        assert_eq!(reader.text("B", "default"), "x");
        assert_eq!(reader.number("A", 1..=5, 3), 3);
        assert!(reader.finish(|| Some(())).is_ok());
    }

    #[test]
    fn every_bad_setting_is_reported_in_order() {
        let mut reader = Reader::from_pairs(&[
            ("COST", "3"),
            ("TTL", "soon"),
            ("FLAG", "maybe"),
            ("URL", "file:///etc/passwd"),
            ("WORKERS", "0"),
        ]);
        assert_eq!(reader.number::<u32>("COST", 4..=31, 12), 12);
        reader.seconds("TTL", 60.., Duration::from_secs(60));
        assert!(reader.flag("FLAG", true));
        assert_eq!(reader.optional("URL", parse::http_url), None);
        assert_eq!(reader.optional_number::<usize>("WORKERS", 1..), None);
        assert_eq!(
            reader.required("SECRET", "generate one", |v| Ok(v.to_owned())),
            None
        );
        reader.report("PAIR", "must not exceed the other one");
        let error = reader.finish(|| Some(())).unwrap_err();
        assert_eq!(
            error.settings(),
            ["COST", "TTL", "FLAG", "URL", "WORKERS", "SECRET", "PAIR"]
        );
        let message = error.to_string();
        for expected in [
            "invalid configuration:",
            "\n  COST: must be a whole number from 4 to 31 (got \"3\")",
            "\n  TTL: must be a number of seconds, at least 60 (got \"soon\")",
            "\n  FLAG: must be true or false (got \"maybe\")",
            "\n  URL: must be an http or https URL",
            "\n  SECRET: is required (generate one)",
        ] {
            assert!(message.contains(expected), "{expected:?} in {message}");
        }
    }

    #[test]
    fn good_values_are_typed() {
        let mut reader = Reader::from_pairs(&[
            ("COST", " 10 "),
            ("TTL", "3600"),
            ("FLAG", "Off"),
            ("URL", "https://api.example/me"),
            ("HOSTS", " a.example, ,b.example "),
            ("URIS", "http://a/cb\n  http://b/cb"),
        ]);
        assert_eq!(reader.number::<u32>("COST", 4..=31, 12), 10);
        assert_eq!(
            reader.seconds("TTL", 1.., Duration::ZERO),
            Duration::from_secs(3600)
        );
        assert!(!reader.flag("FLAG", true));
        let url = reader.optional("URL", parse::http_url).unwrap();
        assert_eq!(url.as_str(), "https://api.example/me");
        assert_eq!(
            reader.list("HOSTS", Separator::Comma),
            ["a.example", "b.example"]
        );
        assert_eq!(
            reader.list("URIS", Separator::Whitespace),
            ["http://a/cb", "http://b/cb"]
        );
        assert!(reader.list("NONE", Separator::Comma).is_empty());
        assert_eq!(reader.finish(|| Some(7)), Ok(7));
    }

    #[test]
    fn finish_reports_a_value_that_was_not_read() {
        let reader = Reader::from_pairs(&[]);
        let error = reader.finish(|| None::<()>).unwrap_err();
        assert_eq!(error.settings(), ["configuration"]);
    }

    #[test]
    fn listen_addresses_are_ip_or_localhost_with_a_port() {
        let addr = |v| parse::listen_addr(v).map(|a| a.to_string());
        assert_eq!(addr("0.0.0.0:9100"), Ok("0.0.0.0:9100".into()));
        assert_eq!(addr(" [::1]:9100 "), Ok("[::1]:9100".into()));
        assert_eq!(addr("LOCALHOST:0"), Ok("127.0.0.1:0".into()));
        for bad in [
            "9100",
            "localhost",
            "localhost:99999",
            "metrics.example:9100",
            ":9100",
        ] {
            let error = parse::listen_addr(bad).unwrap_err();
            assert!(error.starts_with("must be host:port"), "{bad}: {error}");
        }
    }

    #[test]
    fn number_ranges_describe_themselves() {
        let within = |v, r: std::ops::Range<i64>| parse::number_in(v, &r, "a whole number");
        assert_eq!(within("5", 1..10), Ok(5));
        assert_eq!(
            within("10", 1..10),
            Err("must be a whole number from 1 to below 10 (got \"10\")".into())
        );
        assert_eq!(
            parse::number_in::<i64>("-1", &(..=0), "a whole number"),
            Ok(-1)
        );
        assert_eq!(
            parse::number_in::<i64>("1", &(..=0), "a whole number"),
            Err("must be a whole number, at most 0 (got \"1\")".into())
        );
        assert_eq!(
            parse::number_in::<u8>("x", &(..), "a byte"),
            Err("must be a byte (got \"x\")".into())
        );
    }

    #[test]
    fn settings_errors_collect_checks_of_values_built_in_code() {
        let mut errors = SettingsError::default();
        assert_eq!(errors.clone().into_result(), Ok(()));
        errors.push("A", "must be positive");
        assert_eq!(
            errors.into_result().unwrap_err().to_string(),
            "invalid configuration:\n  A: must be positive"
        );
    }
}
