//! A software WebAuthn authenticator (P-256, attestation "none", user verified, signature
//! counter always 0 like most synced passkeys), answering the provider's options as a browser
//! would send the answers: JSON with base64url binary fields.

use base64::Engine as _;
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey, PointConversionForm};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use serde_json::{Value, json};
use sha2::Digest as _;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .expect("base64url")
}

/// Minimal CBOR: what an attestation object and a COSE key need.
mod cbor {
    fn head(out: &mut Vec<u8>, major: u8, value: u64) {
        let major = major << 5;
        match value {
            0..=23 => out.push(major | value as u8),
            24..=0xff => out.extend([major | 24, value as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend((value as u16).to_be_bytes());
            }
            _ => {
                out.push(major | 26);
                out.extend((value as u32).to_be_bytes());
            }
        }
    }
    pub fn int(out: &mut Vec<u8>, value: i64) {
        if value >= 0 {
            head(out, 0, value as u64);
        } else {
            head(out, 1, (-1 - value) as u64);
        }
    }
    pub fn bytes(out: &mut Vec<u8>, value: &[u8]) {
        head(out, 2, value.len() as u64);
        out.extend(value);
    }
    pub fn text(out: &mut Vec<u8>, value: &str) {
        head(out, 3, value.len() as u64);
        out.extend(value.as_bytes());
    }
    pub fn map(out: &mut Vec<u8>, entries: usize) {
        head(out, 5, entries as u64);
    }
}

/// One credential of the authenticator.
pub struct SoftCredential {
    pub id: Vec<u8>,
    pub user_handle: Vec<u8>,
    key: PKey<Private>,
}

/// A software authenticator for the relying party `rp_id` at `origin`.
pub struct SoftAuthenticator {
    pub rp_id: String,
    pub origin: String,
    pub credentials: Vec<SoftCredential>,
    /// Whether answers claim user verification (a PIN or biometrics).
    pub user_verified: bool,
}

impl SoftAuthenticator {
    pub fn new(origin: &str) -> Self {
        let url = url::Url::parse(origin).expect("origin URL");
        Self {
            rp_id: url.host_str().expect("host").to_owned(),
            origin: url.origin().ascii_serialization(),
            credentials: Vec::new(),
            user_verified: true,
        }
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut flags = 0x01; // user present
        if self.user_verified {
            flags |= 0x04;
        }
        if attested {
            flags |= 0x40;
        }
        flags
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .expect("client data")
    }

    /// Answers creation options (the JSON of `/account/passkeys/register/options`) with a new
    /// credential: the `credential` of the finish body.
    pub fn register(&mut self, options: &Value) -> Value {
        let public_key = &options["publicKey"];
        assert_eq!(public_key["rp"]["id"], self.rp_id.as_str(), "{options}");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let user_handle = unb64(public_key["user"]["id"].as_str().expect("user id"));
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let ec = EcKey::generate(&group).expect("key");
        let mut ctx = BigNumContext::new().expect("bn");
        let point = ec
            .public_key()
            .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
            .expect("point");
        let (x, y) = (&point[1..33], &point[33..65]);
        let id: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();

        let mut cose = Vec::new();
        cbor::map(&mut cose, 5);
        cbor::int(&mut cose, 1);
        cbor::int(&mut cose, 2); // kty: EC2
        cbor::int(&mut cose, 3);
        cbor::int(&mut cose, -7); // alg: ES256
        cbor::int(&mut cose, -1);
        cbor::int(&mut cose, 1); // crv: P-256
        cbor::int(&mut cose, -2);
        cbor::bytes(&mut cose, x);
        cbor::int(&mut cose, -3);
        cbor::bytes(&mut cose, y);

        let mut auth_data = sha2::Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend(0u32.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((id.len() as u16).to_be_bytes());
        auth_data.extend(&id);
        auth_data.extend(&cose);

        let mut attestation = Vec::new();
        cbor::map(&mut attestation, 3);
        cbor::text(&mut attestation, "fmt");
        cbor::text(&mut attestation, "none");
        cbor::text(&mut attestation, "attStmt");
        cbor::map(&mut attestation, 0);
        cbor::text(&mut attestation, "authData");
        cbor::bytes(&mut attestation, &auth_data);

        let client_data = self.client_data("webauthn.create", challenge);
        self.credentials.push(SoftCredential {
            id: id.clone(),
            user_handle,
            key: PKey::from_ec_key(ec).expect("pkey"),
        });
        json!({
            "id": b64(&id),
            "rawId": b64(&id),
            "type": "public-key",
            "response": {
                "attestationObject": b64(&attestation),
                "clientDataJSON": b64(&client_data),
            },
            "extensions": {},
        })
    }

    /// Answers request options with the credential `index`: the `credential` of the finish
    /// body.
    pub fn assert(&self, options: &Value, index: usize) -> Value {
        let credential = &self.credentials[index];
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let mut auth_data = sha2::Sha256::digest(self.rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend(0u32.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend(sha2::Sha256::digest(&client_data));
        let mut signer = Signer::new(MessageDigest::sha256(), &credential.key).expect("signer");
        signer.update(&signed).expect("sign");
        let signature = signer.sign_to_vec().expect("signature");
        json!({
            "id": b64(&credential.id),
            "rawId": b64(&credential.id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64(&auth_data),
                "clientDataJSON": b64(&client_data),
                "signature": b64(&signature),
                "userHandle": b64(&credential.user_handle),
            },
            "extensions": {},
        })
    }
}
