//! ID-token verification as a relying party does it (OpenID Connect Core 1.0 §3.1.3.7, RFC 8725).

use josekit::jws::JwsVerifier as _;
use josekit::jws::alg::ecdsa::EcdsaJwsVerifier;
use josekit::jws::alg::rsassa::RsassaJwsVerifier;
use serde::Deserialize;
use subtle::ConstantTimeEq as _;

use super::{Algorithm, at_hash, is_logout_type};
use crate::claims::{BACKCHANNEL_LOGOUT_EVENT, IdTokenClaims};
use crate::encoding::b64url_decode;
use crate::jwk::{Jwk, JwkParams, JwkSet};
use crate::types::{AccessToken, ClientId, IssuerUrl, Nonce};

/// Longest token accepted, in bytes; longer input is refused before decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Default clock-skew allowance for `exp` and `iat`, in seconds.
const DEFAULT_LEEWAY_SECS: i64 = 60;

/// Why an ID token was refused (the checks of OpenID Connect Core 1.0 §3.1.3.7 and RFC 8725
/// §3). Each check has its own variant, so a caller can log the reason
/// and react to [`VerifyError::UnknownKid`] by fetching the JWK Set again once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS: wrong number of parts, bad base64url, header not a JSON object, too
    /// long.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header's `alg` is not in the allow-list (`none`, `HS256`, anything unknown).
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The header has a `crit` member naming extensions this verifier does not understand
    /// (RFC 7515 §4.1.11).
    #[error("unsupported critical header parameters")]
    UnsupportedCriticalHeader,
    /// No key of the JWK Set has the header's `kid` (or, without `kid`, no key suits the
    /// algorithm). The provider may have rotated its keys: fetch the JWK Set again once, rebuild
    /// the verifier and retry; if it fails again, refuse the token.
    #[error(
        "no key {} in the JWK Set",
        .0.as_deref().map_or("for the token's algorithm".to_owned(), |k| format!("with id {k:?}"))
    )]
    UnknownKid(Option<String>),
    /// The key named by `kid` does not fit the header's algorithm (e.g. an EC key for RS256).
    #[error("key {kid:?} cannot verify {alg}")]
    KeyAlgorithmMismatch {
        /// The key id.
        kid: String,
        /// The algorithm of the header.
        alg: Algorithm,
    },
    /// The signature does not verify with the key.
    #[error("bad signature")]
    BadSignature,
    /// The header's `typ` names another kind of token (`logout+jwt`): a logout token is never
    /// an ID token (RFC 8725 §3.11).
    #[error("wrong token type {0:?} for an ID token")]
    WrongType(String),
    /// The payload is not a JSON object with the required ID-token claims.
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// `iss` is not exactly the expected issuer.
    #[error("wrong issuer {found:?}")]
    WrongIssuer {
        /// The issuer in the token.
        found: String,
    },
    /// `aud` does not contain our client id.
    #[error("the token is not meant for this client")]
    WrongAudience,
    /// `aud` has several values but no `azp` names our client (OpenID Connect Core 1.0
    /// §3.1.3.7, point 4 and 5).
    #[error("azp is required when aud has several values")]
    MissingAuthorizedParty,
    /// `azp` is present and is not our client id.
    #[error("wrong authorized party {found:?}")]
    WrongAuthorizedParty {
        /// The `azp` in the token.
        found: String,
    },
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired at {exp} (now {now})")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The time of the check.
        now: i64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error("token issued in the future at {iat} (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: i64,
        /// The time of the check.
        now: i64,
    },
    /// A nonce was sent but the token's `nonce` is absent or different.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The token's `at_hash` does not match the access token.
    #[error("at_hash mismatch")]
    AtHashMismatch,
}

impl VerifyError {
    /// Whether fetching the JWK Set again may help (the key is not known yet).
    pub fn is_unknown_key(&self) -> bool {
        matches!(self, Self::UnknownKid(_))
    }
}

/// A public key ready to verify signatures.
#[derive(Clone)]
enum KeyVerifier {
    Rsa(RsassaJwsVerifier),
    Ec(EcdsaJwsVerifier),
}

impl std::fmt::Debug for KeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Rsa(_) => "Rsa",
            Self::Ec(_) => "Ec",
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct VerificationKey {
    kid: Option<String>,
    alg: Algorithm,
    verifier: KeyVerifier,
}

impl VerificationKey {
    /// Builds the verifier for `jwk`, or `None` when the key cannot verify any allowed algorithm
    /// (wrong `use`, other `alg`, curve other than P-256, RSA under 2048 bits, bad encoding).
    fn from_jwk(jwk: &Jwk) -> Option<Self> {
        if !jwk.is_for_signing() {
            return None;
        }
        let alg = match &jwk.params {
            JwkParams::Rsa { .. } => Algorithm::RS256,
            JwkParams::Ec { crv, .. } if crv == "P-256" => Algorithm::ES256,
            JwkParams::Ec { .. } => return None,
        };
        if jwk.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return None;
        }
        let bytes = serde_json::to_vec(jwk).ok()?;
        let jose_jwk = josekit::jwk::Jwk::from_bytes(bytes).ok()?;
        let verifier = match alg {
            Algorithm::RS256 => {
                KeyVerifier::Rsa(josekit::jws::RS256.verifier_from_jwk(&jose_jwk).ok()?)
            }
            Algorithm::ES256 => {
                KeyVerifier::Ec(josekit::jws::ES256.verifier_from_jwk(&jose_jwk).ok()?)
            }
        };
        Some(Self {
            kid: jwk.kid.clone(),
            alg,
            verifier,
        })
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            KeyVerifier::Rsa(v) => v.verify(message, signature).is_ok(),
            KeyVerifier::Ec(v) => v.verify(message, signature).is_ok(),
        }
    }
}

/// The JOSE header members the verifier reads. `jku`, `x5u`, `jwk` and `x5c` are deliberately
/// not read: keys come only from the configured JWK Set, never from the token (RFC 8725 §3.10).
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
    /// Read as any JSON value so that ID-token verification, which ignores `typ`, accepts
    /// exactly what it accepted before; the logout-token check looks at it.
    #[serde(default)]
    typ: Option<serde_json::Value>,
}

/// The one claim read to tell a logout token from an ID token.
#[derive(Deserialize)]
struct EventsProbe {
    #[serde(default)]
    events: Option<serde_json::Value>,
}

/// A compact JWS whose structure, algorithm, key and signature have been checked.
pub(super) struct VerifiedJws {
    pub(super) alg: Algorithm,
    /// The header's `typ`, if any (`null` reads as absent).
    pub(super) typ: Option<serde_json::Value>,
    pub(super) payload: Vec<u8>,
}

/// The keys of `jwks` that can verify an allowed algorithm.
pub(super) fn keys_from_jwks(jwks: &JwkSet) -> Vec<VerificationKey> {
    jwks.keys
        .iter()
        .filter_map(VerificationKey::from_jwk)
        .collect()
}

/// Verifies ID tokens of one issuer for one client (OpenID Connect Core 1.0 §3.1.3.7).
///
/// Checks, in order: the compact JWS form; `alg` against the allow-list ([`Algorithm`]: never
/// `none` or HMAC); the key by `kid` in the JWK Set, of the type the algorithm needs; the
/// signature; that the token is no logout token (header `typ` `logout+jwt`, or the
/// back-channel logout event among the claims); then the claims: `iss` byte for byte, `aud` (string or array) contains the client
/// id, `azp` equals the client id when present and is present when `aud` has several values,
/// `exp` and `iat` within the leeway (default 60 s), `nonce`, `at_hash`. Keys are parsed once
/// when the verifier is built. Header parameters that point at keys elsewhere (`jku`, `x5u`,
/// `jwk`) are ignored and never fetched.
///
/// # Key rotation
///
/// A provider publishes its new key before signing with it and keeps the old one published
/// until the old key's tokens have expired. A relying party that meets a `kid` it does not know
/// fetches the JWK Set again, once, and retries; a second [`VerifyError::UnknownKid`] is final.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use oidc_core::claims::{Audience, IdTokenClaims};
/// # use oidc_core::jose::{Algorithm, SigningKey};
/// # use oidc_core::types::{ClientId, IssuerUrl, Subject};
/// use oidc_core::jose::{IdTokenVerifier, VerifyError};
/// use oidc_core::jwk::JwkSet;
///
/// # let issuer = IssuerUrl::parse("https://id.example.com")?;
/// # let client_id = ClientId::new("webapp");
/// # let (old_key, new_key) = (SigningKey::generate(Algorithm::ES256)?, SigningKey::generate(Algorithm::ES256)?);
/// # let now = oidc_core::unix_now();
/// # let claims = IdTokenClaims::new(issuer.clone(), Subject::new("u"), Audience::Single(client_id.clone()), now, now + 60);
/// # let token = new_key.sign_id_token(&claims)?;
/// # let fetch_jwks = || -> Result<JwkSet, Box<dyn std::error::Error>> {
/// #     Ok(JwkSet::new(vec![new_key.public_jwk(), old_key.public_jwk()]))
/// # };
/// let mut verifier = IdTokenVerifier::new(issuer, client_id, JwkSet::new(vec![old_key.public_jwk()]));
/// let claims = match verifier.verify(&token, None, None) {
///     Err(VerifyError::UnknownKid(_)) => {
///         verifier.set_jwks(&fetch_jwks()?);
///         verifier.verify(&token, None, None)?
///     }
///     other => other?,
/// };
/// assert_eq!(claims.sub.as_str(), "u");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct IdTokenVerifier {
    issuer: IssuerUrl,
    client_id: ClientId,
    keys: Vec<VerificationKey>,
    allowed: Vec<Algorithm>,
    leeway: i64,
    accept_expired: bool,
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, VerifyError> {
    b64url_decode(part).ok_or_else(|| VerifyError::Malformed(format!("{what} is not base64url")))
}

impl IdTokenVerifier {
    /// A verifier for tokens of `issuer` meant for `client_id`, with the keys of `jwks`. Keys
    /// that cannot verify RS256 or ES256 are left out.
    pub fn new(issuer: IssuerUrl, client_id: ClientId, jwks: JwkSet) -> Self {
        let mut verifier = Self {
            issuer,
            client_id,
            keys: Vec::new(),
            allowed: Algorithm::ALL.to_vec(),
            leeway: DEFAULT_LEEWAY_SECS,
            accept_expired: false,
        };
        verifier.set_jwks(&jwks);
        verifier
    }

    /// Sets the clock-skew allowance for `exp` and `iat`, in seconds (default 60).
    pub fn leeway(mut self, secs: u32) -> Self {
        self.leeway = i64::from(secs);
        self
    }

    /// Accepts tokens whose `exp` has passed (every other check still applies). Only for ID
    /// tokens used as hints, e.g. the `id_token_hint` of a logout request, which OpenID Connect
    /// RP-Initiated Logout 1.0 §2 recommends accepting after expiry; never for sign-in.
    pub fn accept_expired(mut self, accept: bool) -> Self {
        self.accept_expired = accept;
        self
    }

    verifier_key_methods!("VerifyError::UnknownKid", issuer, client_id);

    /// Verifies `token` now. `expected_nonce` is the nonce sent in the authentication request
    /// (`None` if none was sent); `access_token` is the one issued with the ID token, checked
    /// against `at_hash` when the token carries one.
    pub fn verify(
        &self,
        token: &str,
        expected_nonce: Option<&Nonce>,
        access_token: Option<&AccessToken>,
    ) -> Result<IdTokenClaims, VerifyError> {
        self.verify_at(token, expected_nonce, access_token, crate::unix_now())
    }

    /// [`verify`](Self::verify) with the clock reading `now` (seconds since the Unix epoch).
    pub fn verify_at(
        &self,
        token: &str,
        expected_nonce: Option<&Nonce>,
        access_token: Option<&AccessToken>,
        now: i64,
    ) -> Result<IdTokenClaims, VerifyError> {
        let VerifiedJws { alg, typ, payload } = verify_jws(token, &self.keys, &self.allowed)?;
        if let Some(typ) = typ.as_ref().and_then(serde_json::Value::as_str)
            && is_logout_type(typ)
        {
            return Err(VerifyError::WrongType(typ.chars().take(64).collect()));
        }
        let claims: IdTokenClaims = serde_json::from_slice(&payload)
            .map_err(|e| VerifyError::InvalidClaims(e.to_string()))?;
        // Logout tokens are signed with the same keys and carry sub, aud, iat and exp; without
        // `typ` only their event tells them apart where no nonce is expected (id_token_hint).
        let probe: EventsProbe = serde_json::from_slice(&payload)
            .map_err(|e| VerifyError::InvalidClaims(e.to_string()))?;
        if probe
            .events
            .as_ref()
            .is_some_and(|e| e.get(BACKCHANNEL_LOGOUT_EVENT).is_some())
        {
            return Err(VerifyError::InvalidClaims(
                "a logout token is not an ID token".into(),
            ));
        }
        self.check_claims(&claims, alg, expected_nonce, access_token, now)?;
        Ok(claims)
    }

    fn check_claims(
        &self,
        claims: &IdTokenClaims,
        alg: Algorithm,
        expected_nonce: Option<&Nonce>,
        access_token: Option<&AccessToken>,
        now: i64,
    ) -> Result<(), VerifyError> {
        if claims.iss != self.issuer {
            return Err(VerifyError::WrongIssuer {
                found: claims.iss.as_str().chars().take(256).collect(),
            });
        }
        if !claims.aud.contains(&self.client_id) {
            return Err(VerifyError::WrongAudience);
        }
        match &claims.azp {
            Some(azp) if *azp != self.client_id => {
                return Err(VerifyError::WrongAuthorizedParty {
                    found: azp.as_str().chars().take(256).collect(),
                });
            }
            None if claims.aud.len() > 1 => return Err(VerifyError::MissingAuthorizedParty),
            _ => {}
        }
        if !self.accept_expired && now.saturating_sub(self.leeway) >= claims.exp {
            return Err(VerifyError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if claims.iat > now.saturating_add(self.leeway) {
            return Err(VerifyError::IssuedInFuture {
                iat: claims.iat,
                now,
            });
        }
        if let Some(expected) = expected_nonce {
            match &claims.nonce {
                Some(nonce) if nonce.ct_eq(expected) => {}
                _ => return Err(VerifyError::NonceMismatch),
            }
        }
        if let (Some(token), Some(claimed)) = (access_token, &claims.at_hash) {
            let expected = at_hash(token, alg);
            if !bool::from(expected.as_bytes().ct_eq(claimed.as_bytes())) {
                return Err(VerifyError::AtHashMismatch);
            }
        }
        Ok(())
    }
}

/// Checks the JWS structure, the algorithm against `allowed`, the key by `kid` among `keys` and
/// the signature; returns the algorithm, the header's `typ` and the payload bytes.
pub(super) fn verify_jws(
    token: &str,
    keys: &[VerificationKey],
    allowed: &[Algorithm],
) -> Result<VerifiedJws, VerifyError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed("token too long".into()));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::Malformed(
            "not three dot-separated parts".into(),
        ));
    };
    let header: Header = serde_json::from_slice(&decode_part(header_b64, "header")?)
        .map_err(|e| VerifyError::Malformed(format!("header: {e}")))?;
    let alg = Algorithm::parse(&header.alg)
        .ok()
        .filter(|a| allowed.contains(a))
        .ok_or_else(|| VerifyError::UnsupportedAlgorithm(header.alg.chars().take(32).collect()))?;
    if header.crit.is_some() {
        return Err(VerifyError::UnsupportedCriticalHeader);
    }
    let signature = decode_part(signature_b64, "signature")?;
    let payload = decode_part(payload_b64, "payload")?;
    let message = token
        .as_bytes()
        .get(..header_b64.len() + 1 + payload_b64.len())
        .ok_or_else(|| VerifyError::Malformed("truncated".into()))?;

    let candidates: Vec<&VerificationKey> = match &header.kid {
        Some(kid) => {
            let named: Vec<_> = keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect();
            if named.is_empty() {
                return Err(VerifyError::UnknownKid(Some(
                    kid.chars().take(128).collect(),
                )));
            }
            let fitting: Vec<_> = named.into_iter().filter(|k| k.alg == alg).collect();
            if fitting.is_empty() {
                return Err(VerifyError::KeyAlgorithmMismatch {
                    kid: kid.chars().take(128).collect(),
                    alg,
                });
            }
            fitting
        }
        None => {
            let fitting: Vec<_> = keys.iter().filter(|k| k.alg == alg).collect();
            if fitting.is_empty() {
                return Err(VerifyError::UnknownKid(None));
            }
            fitting
        }
    };
    if candidates.iter().any(|k| k.verify(message, &signature)) {
        Ok(VerifiedJws {
            alg,
            typ: header.typ,
            payload,
        })
    } else {
        Err(VerifyError::BadSignature)
    }
}
