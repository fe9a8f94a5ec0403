//! Verifies an ID token against a JWK Set, as a relying party or resource server does.
//!
//! ```text
//! cargo run -p oidc-core --example verify_id_token -- \
//!     --issuer https://id.example.com --client-id webapp \
//!     --jwks jwks.json --token id_token.jwt [--nonce N] [--access-token AT]
//! ```
//!
//! `--jwks` is a file holding the provider's JWK Set (what its `jwks_uri` serves) and `--token`
//! a file holding the compact ID token (`-` reads it from standard input). Without `--jwks` and
//! `--token` the example plays both sides: it makes a signing key, signs a token, writes the
//! JWK Set as JSON and verifies the token against that JSON. It prints the verified claims as
//! JSON, or the reason the token was refused (exit status 1).

use std::io::Read as _;
use std::process::ExitCode;

use oidc_core::claims::{Audience, IdTokenClaims, StandardClaims};
use oidc_core::jose::{Algorithm, IdTokenVerifier, SigningKey, at_hash};
use oidc_core::jwk::JwkSet;
use oidc_core::types::{AccessToken, ClientId, IssuerUrl, Nonce, Subject};

/// Command-line options.
struct Options {
    issuer: String,
    client_id: String,
    jwks: Option<String>,
    token: Option<String>,
    nonce: Option<String>,
    access_token: Option<String>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        issuer: "https://id.example.com".into(),
        client_id: "webapp".into(),
        jwks: None,
        token: None,
        nonce: None,
        access_token: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--issuer" => options.issuer = value()?,
            "--client-id" => options.client_id = value()?,
            "--jwks" => options.jwks = Some(value()?),
            "--token" => options.token = Some(value()?),
            "--nonce" => options.nonce = Some(value()?),
            "--access-token" => options.access_token = Some(value()?),
            "-h" | "--help" => {
                return Err("usage: verify_id_token [--issuer URL] [--client-id ID] \
                     [--jwks FILE --token FILE|-] [--nonce N] [--access-token AT]"
                    .into());
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(options)
}

/// Plays the provider: signs a token for `issuer`/`client_id` and returns it with the JWK Set
/// JSON, the nonce and the access token it is bound to.
fn demo_inputs(
    issuer: &IssuerUrl,
    client_id: &ClientId,
) -> Result<(String, String, Nonce, AccessToken), Box<dyn std::error::Error>> {
    let key = SigningKey::generate(Algorithm::RS256)?;
    let nonce = Nonce::generate();
    let access_token = AccessToken::generate();
    let now = oidc_core::unix_now();
    let mut claims = IdTokenClaims::new(
        issuer.clone(),
        Subject::new("248289761001"),
        Audience::Single(client_id.clone()),
        now,
        now + 600,
    );
    claims.nonce = Some(nonce.clone());
    claims.auth_time = Some(now);
    claims.at_hash = Some(at_hash(&access_token, key.algorithm()));
    claims.profile = StandardClaims {
        name: Some("Jane Doe".into()),
        email: Some("janedoe@example.com".into()),
        email_verified: Some(true),
        ..StandardClaims::default()
    };
    let token = key.sign_id_token(&claims)?;
    let jwks = serde_json::to_string_pretty(&JwkSet::new(vec![key.public_jwk()]))?;
    eprintln!(
        "No --jwks/--token given: signed a demo token with key {}.",
        key.kid()
    );
    eprintln!("JWK Set:\n{jwks}\nID token:\n{token}\n");
    Ok((jwks, token, nonce, access_token))
}

fn read_input(path: &str) -> std::io::Result<String> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(path)
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let options = parse_args()?;
    let issuer = IssuerUrl::parse(&options.issuer)?;
    let client_id = ClientId::parse(&options.client_id)?;
    let (jwks_json, token, nonce, access_token) = match (&options.jwks, &options.token) {
        (Some(jwks), Some(token)) => (
            read_input(jwks).map_err(|e| format!("reading {jwks}: {e}"))?,
            read_input(token).map_err(|e| format!("reading {token}: {e}"))?,
            options.nonce.as_deref().map(Nonce::parse).transpose()?,
            options.access_token.map(AccessToken::new),
        ),
        (None, None) => {
            let (jwks, token, nonce, at) = demo_inputs(&issuer, &client_id)?;
            (jwks, token, Some(nonce), Some(at))
        }
        _ => return Err("give both --jwks and --token, or neither".into()),
    };

    let jwks: JwkSet =
        serde_json::from_str(&jwks_json).map_err(|e| format!("the JWK Set is not valid: {e}"))?;
    let verifier = IdTokenVerifier::new(issuer, client_id, jwks);
    let claims = verifier
        .verify(token.trim(), nonce.as_ref(), access_token.as_ref())
        .map_err(|e| {
            if e.is_unknown_key() {
                format!("{e} (fetch the provider's JWK Set again and retry once)")
            } else {
                format!("the ID token was refused: {e}")
            }
        })?;
    println!("{}", serde_json::to_string_pretty(&claims)?);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
