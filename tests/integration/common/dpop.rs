//! A DPoP client for the tests: a key pair of each accepted kind, and
//! proofs built by hand (RFC 9449 §4.2), so every field can be got wrong on
//! purpose.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

pub enum DpopKey {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
    Rsa(RsaKeyPair, bool),
}

impl DpopKey {
    pub fn es256() -> Self {
        Self::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    pub fn ed25519() -> Self {
        Self::EdDsa(Ed25519KeyPair::generate().unwrap())
    }

    /// RS256, or PS256 with `pss`.
    pub fn rsa(pss: bool) -> Self {
        Self::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap(), pss)
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::EdDsa(_) => "EdDSA",
            Self::Rsa(_, false) => "RS256",
            Self::Rsa(_, true) => "PS256",
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let point = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256",
                       "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])})
            }
            Self::EdDsa(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.public_key().as_ref())})
            }
            Self::Rsa(k, _) => {
                let p = k.public_key();
                json!({"kty": "RSA",
                       "n": B64.encode(p.modulus().big_endian_without_leading_zero()),
                       "e": B64.encode(p.exponent().big_endian_without_leading_zero())})
            }
        }
    }

    /// The RFC 7638 thumbprint, written out here rather than taken from
    /// the server's code.
    pub fn thumbprint(&self) -> String {
        let j = self.jwk();
        let s = |n: &str| j[n].as_str().unwrap().to_owned();
        let canonical = match self {
            Self::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                s("x"),
                s("y")
            ),
            Self::EdDsa(_) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, s("x")),
            Self::Rsa(..) => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        };
        B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Self::Es256(k) => k.sign(&rng, message).unwrap().as_ref().to_vec(),
            Self::EdDsa(k) => k.sign(message).as_ref().to_vec(),
            Self::Rsa(k, pss) => {
                let mut sig = vec![0; k.public_modulus_len()];
                let padding = if *pss {
                    &RSA_PSS_SHA256
                } else {
                    &RSA_PKCS1_SHA256
                };
                k.sign(padding, &rng, message, &mut sig).unwrap();
                sig
            }
        }
    }

    /// A good proof for `POST htu`, now, with a fresh jti.
    pub fn proof(&self, htu: &str) -> String {
        self.proof_with(json!({}), self.claims(htu))
    }

    /// The claims of a good proof for the token endpoint, to alter.
    pub fn claims(&self, htu: &str) -> Value {
        json!({"htm": "POST", "htu": htu, "iat": chrono::Utc::now().timestamp(),
               "jti": uuid::Uuid::new_v4().to_string()})
    }

    /// The claims of a good proof for `method url` at a resource server,
    /// presenting `token` (`ath`), to alter.
    pub fn resource_claims(&self, method: &str, url: &str, token: &str) -> Value {
        let ath = B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        let mut c = self.claims(url);
        c["htm"] = json!(method);
        c["ath"] = json!(ath);
        c
    }

    /// A proof whose header is the good one with `header` merged over it
    /// (`null` removes a member), signed by this key.
    pub fn proof_with(&self, header: Value, claims: Value) -> String {
        let mut h = json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()});
        for (k, v) in header.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        let signed = format!(
            "{}.{}",
            B64.encode(h.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = B64.encode(self.sign(signed.as_bytes()));
        format!("{signed}.{signature}")
    }
}
