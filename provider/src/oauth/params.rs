//! Strict parsing of OAuth parameters from query strings and form bodies.
//!
//! Parameters are read here rather than through serde so that every failure has a precise
//! protocol answer: a body that is too large, not UTF-8 (raw or percent-encoded), of the wrong
//! content type, or that repeats a parameter (RFC 6749 §3.1) is a client mistake with a 400, never
//! a 500 from an extractor.

use std::collections::HashMap;

use actix_web::{HttpRequest, http::header, web};

/// Largest form body accepted by the OAuth endpoints: real requests are well under 8 KiB.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Why a parameter set could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    #[error("the request body is larger than {MAX_FORM_BYTES} bytes")]
    TooLarge,
    #[error("the request is not valid UTF-8")]
    NotUtf8,
    #[error("the request body must be application/x-www-form-urlencoded")]
    WrongContentType,
    #[error("the parameter `{0}` is repeated")]
    Repeated(String),
    #[error("the request body could not be read")]
    Unreadable,
}

/// Decoded parameters; empty values count as absent (RFC 6749 §3.1).
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text, refusing repeated parameters.
    pub fn parse(input: &[u8]) -> Result<Self, ParamsError> {
        let mut map = HashMap::new();
        for pair in input.split(|b| *b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode(name)?;
            let value = decode(value)?;
            if value.is_empty() {
                continue;
            }
            if map.insert(name.clone(), value).is_some() {
                return Err(ParamsError::Repeated(name));
            }
        }
        Ok(Self(map))
    }

    /// The parameters of the request's query string.
    pub fn from_query(req: &HttpRequest) -> Result<Self, ParamsError> {
        Self::parse(req.query_string().as_bytes())
    }

    /// Reads and parses a form body of at most [`MAX_FORM_BYTES`].
    pub async fn from_body(req: &HttpRequest, payload: web::Payload) -> Result<Self, ParamsError> {
        Self::parse(&form_body(req, payload).await?)
    }

    /// A parameter's value, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Takes a parameter out, if present and not empty.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// Whether a parameter is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// The bytes of a form body of at most [`MAX_FORM_BYTES`], not yet decoded.
pub async fn form_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<web::Bytes, ParamsError> {
    if !is_form(req) {
        return Err(ParamsError::WrongContentType);
    }
    payload
        .to_bytes_limited(MAX_FORM_BYTES)
        .await
        .map_err(|_| ParamsError::TooLarge)?
        .map_err(|_| ParamsError::Unreadable)
}

/// Whether the request declares a form body (any charset parameter is accepted).
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Decodes one name or value: `+` is a space, `%XX` a byte (a `%` not followed by two hex
/// digits stays as it is), and the bytes must be UTF-8.
fn decode(input: &[u8]) -> Result<String, ParamsError> {
    let spaced: Vec<u8> = input
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| ParamsError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let p = Params::parse(b"a=x+y%2Fz&b=%E2%9C%93&c=").unwrap();
        assert_eq!(p.get("a"), Some("x y/z"));
        assert_eq!(p.get("b"), Some("\u{2713}"));
        assert_eq!(p.get("c"), None);
    }

    #[test]
    fn refuses_repeats_and_bad_utf8() {
        assert_eq!(
            Params::parse(b"a=1&a=2").unwrap_err(),
            ParamsError::Repeated("a".into())
        );
        assert_eq!(Params::parse(b"a=%FF").unwrap_err(), ParamsError::NotUtf8);
        assert_eq!(Params::parse(b"a=\xff").unwrap_err(), ParamsError::NotUtf8);
    }

    #[test]
    fn keeps_a_lone_percent() {
        assert_eq!(Params::parse(b"a=1%").unwrap().get("a"), Some("1%"));
        assert_eq!(Params::parse(b"a=%4").unwrap().get("a"), Some("%4"));
    }

    mod properties {
        use std::collections::HashMap;

        use proptest::prelude::*;

        use super::super::*;

        /// A typical authorization request, the seed of the mutated inputs.
        const SEED: &[u8] = b"client_id=webapp&redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Fcb\
            &response_type=code&scope=openid+profile&state=s%20t&nonce=n\
            &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
            &prompt=login&max_age=0";

        /// Byte-level edits of a valid request: the kind of damage a fuzzer or a broken client does.
        #[derive(Debug, Clone)]
        enum Edit {
            Flip(usize, u8),
            Insert(usize, Vec<u8>),
            Remove(usize, usize),
            Repeat(usize, usize),
        }

        fn edit() -> impl Strategy<Value = Edit> {
            let interesting = prop::sample::select(vec![
                b"%".to_vec(),
                b"%F".to_vec(),
                b"%FF".to_vec(),
                b"%C3".to_vec(),
                b"%00".to_vec(),
                b"&".to_vec(),
                b"=".to_vec(),
                b"&&==".to_vec(),
                b"+".to_vec(),
                b"\xff\xfe".to_vec(),
                b"&client_id=x".to_vec(),
                b"&prompt=none".to_vec(),
            ]);
            prop_oneof![
                (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
                (
                    any::<usize>(),
                    prop_oneof![interesting, prop::collection::vec(any::<u8>(), 0..8)]
                )
                    .prop_map(|(i, bytes)| Edit::Insert(i, bytes)),
                (any::<usize>(), 0usize..40).prop_map(|(i, n)| Edit::Remove(i, n)),
                (any::<usize>(), 0usize..60).prop_map(|(i, n)| Edit::Repeat(i, n)),
            ]
        }

        fn apply(mut input: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
            for edit in edits {
                let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
                match edit {
                    Edit::Flip(i, b) if !input.is_empty() => {
                        let i = i % input.len();
                        input[i] = *b;
                    }
                    Edit::Flip(..) => {}
                    Edit::Insert(i, bytes) => {
                        let i = at(*i, input.len());
                        input.splice(i..i, bytes.iter().copied());
                    }
                    Edit::Remove(i, n) => {
                        let i = at(*i, input.len());
                        let end = (i + n).min(input.len());
                        input.drain(i..end);
                    }
                    Edit::Repeat(i, n) => {
                        let i = at(*i, input.len());
                        let end = (i + n).min(input.len());
                        let copy = input[i..end].to_vec();
                        input.extend_from_slice(&copy);
                    }
                }
            }
            input
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn arbitrary_bytes_parse_or_fail_cleanly(input in prop::collection::vec(any::<u8>(), 0..512)) {
                match Params::parse(&input) {
                    Ok(params) => {
                        for (name, value) in &params.0 {
                            prop_assert!(!value.is_empty(), "empty values count as absent");
                            prop_assert_eq!(params.get(name), Some(value.as_str()));
                        }
                    }
                    Err(e) => prop_assert!(
                        matches!(e, ParamsError::NotUtf8 | ParamsError::Repeated(_)),
                        "{e:?}"
                    ),
                }
            }

            #[test]
            fn mutated_requests_parse_or_fail_cleanly(edits in prop::collection::vec(edit(), 1..6)) {
                let input = apply(SEED.to_vec(), &edits);
                match Params::parse(&input) {
                    Ok(params) => {
                        // Whatever was decoded is valid text and can be encoded back.
                        let pairs: Vec<(&String, &String)> = params.0.iter().collect();
                        let encoded = serde_urlencoded::to_string(&pairs).expect("encode");
                        let again = Params::parse(encoded.as_bytes()).expect("parse again");
                        prop_assert_eq!(again.0, params.0);
                    }
                    Err(e) => prop_assert!(
                        matches!(e, ParamsError::NotUtf8 | ParamsError::Repeated(_)),
                        "{e:?}"
                    ),
                }
            }

            #[test]
            fn encoded_parameters_come_back_unchanged(
                map in prop::collection::hash_map("[^\\x00]{1,12}", "\\PC{1,24}", 0..8)
            ) {
                let encoded = serde_urlencoded::to_string(&map).expect("encode");
                let params = Params::parse(encoded.as_bytes()).expect("parse");
                let expected: HashMap<String, String> = map;
                prop_assert_eq!(params.0, expected);
            }

            #[test]
            fn a_repeated_parameter_is_refused(
                name in "[a-z_]{1,12}",
                first in "[a-zA-Z0-9]{1,8}",
                second in "[a-zA-Z0-9]{1,8}",
            ) {
                let input = format!("{name}={first}&x=1&{name}={second}");
                let err = Params::parse(input.as_bytes());
                if name == "x" {
                    prop_assert!(err.is_err());
                } else {
                    prop_assert_eq!(err.unwrap_err(), ParamsError::Repeated(name));
                }
            }
        }
    }
}
