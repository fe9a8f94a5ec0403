//! Interoperability with the independent `openidconnect` crate, in both directions: what
//! oidc-core signs and publishes, openidconnect accepts, and what openidconnect produces,
//! oidc-core reads.

use oidc_core::claims::{Audience, UserInfo};
use oidc_core::discovery::ProviderMetadata;
use oidc_core::error::{ErrorCode, ErrorResponse};
use oidc_core::jose::{Algorithm, VerifyError, at_hash};
use oidc_core::jwk::JwkSet;
use oidc_core::token::TokenResponse;
use oidc_core::types::{AccessToken, ClientId, RefreshToken, Scopes, Subject};
use openidconnect::core::{
    CoreErrorResponseType, CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKey,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType,
    CoreRsaPrivateSigningKey, CoreSubjectIdentifierType, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthUrl, EmptyAdditionalProviderMetadata, JsonWebKeyId, JsonWebKeySetUrl,
    ResponseTypes, StandardErrorResponse,
};
use openidconnect::{OAuth2TokenResponse as _, TokenResponse as _};
use serde_json::json;

use crate::common::*;

fn oidc_issuer() -> openidconnect::IssuerUrl {
    openidconnect::IssuerUrl::new(ISSUER.into()).unwrap()
}

fn oidc_verifier(jwks_json: &str) -> CoreIdTokenVerifier<'static> {
    let jwks: CoreJsonWebKeySet = serde_json::from_str(jwks_json).unwrap();
    CoreIdTokenVerifier::new_public_client(
        openidconnect::ClientId::new(CLIENT.into()),
        oidc_issuer(),
        jwks,
    )
    .set_allowed_algs(vec![
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    ])
}

#[test]
fn id_tokens_signed_by_oidc_core_verify_with_openidconnect() {
    let jwks_json = serde_json::to_string(&jwks(&[rsa_key(), ec_key()])).unwrap();
    let verifier = oidc_verifier(&jwks_json);
    for (key, alg) in [
        (rsa_key(), CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        (ec_key(), CoreJwsSigningAlgorithm::EcdsaP256Sha256),
    ] {
        let access_token = AccessToken::generate();
        let mut c = claims();
        c.at_hash = Some(at_hash(&access_token, key.algorithm()));
        c.acr = Some("urn:example:pwd".into());
        c.amr = Some(vec!["pwd".into()]);
        let token = key.sign_id_token(&c).unwrap();

        let id_token: CoreIdToken = token.parse().unwrap();
        let verified = id_token
            .claims(&verifier, &openidconnect::Nonce::new(NONCE.into()))
            .unwrap();
        assert_eq!(verified.subject().as_str(), "user-1");
        assert_eq!(verified.issuer().as_str(), ISSUER);
        assert_eq!(verified.email().unwrap().as_str(), "alice@example.com");
        assert_eq!(verified.email_verified(), Some(true));
        assert_eq!(
            verified.name().unwrap().get(None).unwrap().as_str(),
            "Alice Example"
        );
        assert_eq!(verified.preferred_username().unwrap().as_str(), "alice");
        assert_eq!(
            verified.auth_time().unwrap().timestamp(),
            c.auth_time.unwrap()
        );
        assert_eq!(verified.updated_at().unwrap().timestamp(), 1_700_000_000);

        // openidconnect computes the same at_hash from the token, algorithm and key.
        let oidc_at = openidconnect::AccessToken::new(access_token.secret().into());
        let jwk = id_token.signing_key(&verifier).unwrap();
        let expected = AccessTokenHash::from_token(&oidc_at, &alg, jwk).unwrap();
        assert_eq!(verified.access_token_hash(), Some(&expected));

        // And it refuses the token for another nonce, like oidc-core does.
        assert!(
            id_token
                .claims(&verifier, &openidconnect::Nonce::new("other".into()))
                .is_err()
        );
    }
}

#[test]
fn multiple_audiences_with_azp_verify_with_openidconnect() {
    let mut c = claims();
    c.aud = Audience::Multiple(vec![client(), ClientId::new("api")]);
    c.azp = Some(client());
    let token = rsa_key().sign_id_token(&c).unwrap();
    let jwks_json = serde_json::to_string(&jwks(&[rsa_key()])).unwrap();
    let verifier =
        oidc_verifier(&jwks_json).set_other_audience_verifier_fn(|aud| aud.as_str() == "api");
    let id_token: CoreIdToken = token.parse().unwrap();
    id_token
        .claims(&verifier, &openidconnect::Nonce::new(NONCE.into()))
        .unwrap();
}

#[test]
fn id_tokens_signed_by_openidconnect_verify_with_oidc_core() {
    // openidconnect signs with an RSA key read from PKCS#1 PEM; oidc-core reads the same key.
    let pkcs1 = josekit::jwk::alg::rsa::RsaKeyPair::from_pem(rsa_key().to_pem())
        .unwrap()
        .to_traditional_pem_private_key();
    let signing_key = CoreRsaPrivateSigningKey::from_pem(
        std::str::from_utf8(&pkcs1).unwrap(),
        Some(JsonWebKeyId::new(rsa_key().kid().into())),
    )
    .unwrap();
    let now = now();
    let claims: CoreIdTokenClaims = serde_json::from_value(json!({
        "iss": ISSUER, "sub": "user-9", "aud": [CLIENT], "exp": now + 600, "iat": now,
        "nonce": NONCE, "email": "bob@example.com", "name": "Bob",
    }))
    .unwrap();
    let access_token = openidconnect::AccessToken::new("an-access-token-value".into());
    let id_token = CoreIdToken::new(
        claims,
        &signing_key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Some(&access_token),
        None,
    )
    .unwrap();
    let token = id_token.to_string();

    let v = verifier(&[rsa_key()]);
    let verified = v
        .verify(
            &token,
            Some(&nonce()),
            Some(&AccessToken::new("an-access-token-value")),
        )
        .unwrap();
    assert_eq!(verified.sub, Subject::new("user-9"));
    assert_eq!(verified.aud, Audience::Multiple(vec![client()]));
    assert_eq!(verified.profile.email.as_deref(), Some("bob@example.com"));
    assert_eq!(verified.profile.name.as_deref(), Some("Bob"));
    // Its at_hash is checked: another access token does not match.
    assert_eq!(
        v.verify(&token, Some(&nonce()), Some(&AccessToken::new("other")))
            .unwrap_err(),
        VerifyError::AtHashMismatch
    );
}

#[test]
fn jwks_deserializes_into_core_json_web_key_set_and_back() {
    let ours = jwks(&[rsa_key(), ec_key()]);
    let json = serde_json::to_string(&ours).unwrap();
    let theirs: CoreJsonWebKeySet = serde_json::from_str(&json).unwrap();
    assert_eq!(theirs.keys().len(), 2);
    let kids: Vec<String> = theirs
        .keys()
        .iter()
        .map(|k| openidconnect::JsonWebKey::key_id(k).unwrap().to_string())
        .collect();
    assert_eq!(kids, [rsa_key().kid(), ec_key().kid()]);

    // Reverse: openidconnect's serialization reads back into the same keys.
    let back: JwkSet = serde_json::from_str(&serde_json::to_string(&theirs).unwrap()).unwrap();
    assert_eq!(back, ours);

    // A key built by openidconnect reads as ours with the same thumbprint.
    let jwk = CoreJsonWebKey::new_rsa(vec![0xc3; 256], vec![1, 0, 1], None);
    let ours_from_theirs: oidc_core::jwk::Jwk =
        serde_json::from_str(&serde_json::to_string(&jwk).unwrap()).unwrap();
    let expected = oidc_core::jwk::Jwk::rsa(&[0xc3; 256], &[1, 0, 1]);
    assert_eq!(ours_from_theirs.params, expected.params);
    assert_eq!(ours_from_theirs.key_use.as_deref(), Some("sig"));
    assert_eq!(ours_from_theirs.thumbprint(), expected.thumbprint());
}

fn metadata() -> ProviderMetadata {
    let issuer = issuer();
    let mut m = ProviderMetadata::new(
        issuer.clone(),
        issuer.join_path("oauth/authorize").unwrap(),
        issuer.join_path("oauth/jwks").unwrap(),
    );
    m.token_endpoint = Some(issuer.join_path("oauth/token").unwrap());
    m.userinfo_endpoint = Some(issuer.join_path("oauth/userinfo").unwrap());
    m.revocation_endpoint = Some(issuer.join_path("oauth/revoke").unwrap());
    m.introspection_endpoint = Some(issuer.join_path("oauth/introspect").unwrap());
    m.end_session_endpoint = Some(issuer.join_path("oauth/logout").unwrap());
    m.scopes_supported = Some(
        ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec(),
    );
    m.grant_types_supported = Some(vec!["authorization_code".into(), "refresh_token".into()]);
    m.id_token_signing_alg_values_supported =
        Algorithm::ALL.iter().map(|a| a.to_string()).collect();
    m.token_endpoint_auth_methods_supported = Some(vec![
        "client_secret_basic".into(),
        "client_secret_post".into(),
    ]);
    m.code_challenge_methods_supported = Some(vec!["S256".into()]);
    m.claims_supported = Some(vec!["sub".into(), "email".into(), "name".into()]);
    m.authorization_response_iss_parameter_supported = Some(true);
    m.request_uri_parameter_supported = Some(false);
    m
}

#[test]
fn discovery_metadata_deserializes_into_core_provider_metadata_and_back() {
    let ours = metadata();
    let json = serde_json::to_string(&ours).unwrap();
    assert!(!json.contains("null"));
    let theirs: CoreProviderMetadata = serde_json::from_str(&json).unwrap();
    assert_eq!(theirs.issuer().as_str(), ISSUER);
    assert_eq!(
        theirs.authorization_endpoint().as_str(),
        "https://id.example.com/oauth/authorize"
    );
    assert_eq!(
        theirs.token_endpoint().unwrap().as_str(),
        "https://id.example.com/oauth/token"
    );
    assert_eq!(
        theirs.jwks_uri().as_str(),
        "https://id.example.com/oauth/jwks"
    );
    assert_eq!(
        theirs.id_token_signing_alg_values_supported(),
        &vec![
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256
        ]
    );
    assert_eq!(theirs.scopes_supported().unwrap().len(), 4);

    // Reverse: openidconnect's metadata reads into ours.
    let theirs = CoreProviderMetadata::new(
        oidc_issuer(),
        AuthUrl::new(format!("{ISSUER}/authorize")).unwrap(),
        JsonWebKeySetUrl::new(format!("{ISSUER}/jwks")).unwrap(),
        vec![ResponseTypes::new(vec![CoreResponseType::Code])],
        vec![CoreSubjectIdentifierType::Public],
        vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
        EmptyAdditionalProviderMetadata {},
    );
    let back: ProviderMetadata =
        serde_json::from_str(&serde_json::to_string(&theirs).unwrap()).unwrap();
    assert_eq!(back.issuer, issuer());
    assert_eq!(back.response_types_supported, ["code"]);
    assert_eq!(back.subject_types_supported, ["public"]);
    assert_eq!(back.jwks_uri.as_str(), "https://id.example.com/jwks");
}

#[test]
fn token_response_deserializes_into_core_token_response_and_back() {
    let mut ours = TokenResponse::bearer(AccessToken::new("at-123"));
    ours.expires_in = Some(3600);
    ours.refresh_token = Some(RefreshToken::new("rt-456"));
    ours.scope = Some(Scopes::parse("openid email").unwrap());
    ours.id_token = Some(rsa_key().sign_id_token(&claims()).unwrap());
    let json = serde_json::to_string(&ours).unwrap();
    let theirs: CoreTokenResponse = serde_json::from_str(&json).unwrap();
    assert_eq!(theirs.access_token().secret(), "at-123");
    assert_eq!(theirs.refresh_token().unwrap().secret(), "rt-456");
    assert_eq!(
        theirs.expires_in(),
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(theirs.scopes().unwrap().len(), 2);
    assert_eq!(
        theirs.id_token().unwrap().to_string(),
        *ours.id_token.as_ref().unwrap()
    );

    let back: TokenResponse =
        serde_json::from_str(&serde_json::to_string(&theirs).unwrap()).unwrap();
    assert_eq!(back, ours);
}

#[test]
fn userinfo_deserializes_into_core_userinfo_claims() {
    let info = UserInfo {
        sub: Subject::new("user-1"),
        claims: claims().profile,
    };
    let json = serde_json::to_string(&info).unwrap();
    let theirs = CoreUserInfoClaims::from_json::<std::io::Error>(
        json.as_bytes(),
        Some(&openidconnect::SubjectIdentifier::new("user-1".into())),
    )
    .unwrap();
    assert_eq!(theirs.subject().as_str(), "user-1");
    assert_eq!(theirs.email().unwrap().as_str(), "alice@example.com");
    assert_eq!(
        theirs.given_name().unwrap().get(None).unwrap().as_str(),
        "Alice"
    );
}

#[test]
fn error_response_deserializes_into_standard_error_response() {
    for code in ErrorCode::ALL {
        let ours = ErrorResponse::new(code).with_description("something \"quoted\" happened");
        let json = serde_json::to_string(&ours).unwrap();
        let theirs: StandardErrorResponse<CoreErrorResponseType> =
            serde_json::from_str(&json).unwrap();
        assert_eq!(theirs.error().as_ref(), code.as_str());
        let back: ErrorResponse =
            serde_json::from_str(&serde_json::to_string(&theirs).unwrap()).unwrap();
        assert_eq!(back, ours);
    }
}
