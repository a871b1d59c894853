//! Service principals with a client certificate, without OpenSSL: `azure_identity`'s
//! `ClientAssertionCredential` with an assertion we sign ourselves.
//!
//! The assertion is the JWT Entra ID documents for certificate credentials: header
//! `alg: RS256`, `x5t` (base64url SHA-1 thumbprint of the DER certificate) and
//! `x5t#S256` (its SHA-256 thumbprint); claims `aud` = the token URL, `iss` = `sub` = the
//! client id, a random `jti`, `nbf`/`iat` = now and `exp` = now + 10 minutes; signed
//! with RSASSA-PKCS1-v1_5 SHA-256 by `ring`. A fresh one is made for every token request.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use azure_core::credentials::TokenCredential;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::ClientMethodOptions;
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::{PemObject as _, SectionKind};
use zeroize::Zeroizing;

use crate::error::IdentityError;
use crate::sources::Settings;
use crate::status::SourceKind;

/// How long an assertion is valid.
const LIFETIME_SECS: u64 = 600;
/// The largest PEM file we read.
const MAX_PEM: u64 = 1 << 20;

/// The certificate credential for `client_id` in `tenant`, from the PEM file at `path`.
pub(crate) fn credential(
    settings: &Settings,
    tenant: &str,
    client_id: &str,
    path: &Path,
) -> Result<Arc<dyn TokenCredential>, IdentityError> {
    let loaded = load(path).map_err(|reason| IdentityError::Certificate {
        path: path.to_owned(),
        reason,
    })?;
    let assertion =
        CertificateAssertion::new(&loaded, client_id, settings.token_url(tenant)?.as_str());
    let options = ClientAssertionCredentialOptions {
        client_options: settings.client_options(&settings.http),
    };
    let credential = ClientAssertionCredential::new(
        tenant.to_owned(),
        client_id.to_owned(),
        assertion,
        Some(options),
    )
    .map_err(|e| {
        IdentityError::Config(crate::reason::plain(
            SourceKind::ServicePrincipalCertificate,
            &e,
        ))
    })?;
    Ok(credential)
}

/// A certificate and its private key.
pub(crate) struct Loaded {
    pub(crate) certificate: Vec<u8>,
    pub(crate) key: Arc<RsaKeyPair>,
}

/// Reads the certificate (the first one in the file) and its RSA private key.
pub(crate) fn load(path: &Path) -> Result<Loaded, String> {
    let bytes = Zeroizing::new(crate::sources::secret::read_private_file(path, MAX_PEM)?);
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") {
        let pfx = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pfx") || e.eq_ignore_ascii_case("p12"))
            || bytes.first() == Some(&0x30);
        return Err(if pfx {
            format!(
                "PFX (PKCS#12) files are not supported; convert it to PEM with \
                 `openssl pkcs12 -in {0} -out {0}.pem -nodes` and protect the result (chmod 600)",
                path.display()
            )
        } else {
            "not a PEM file".to_owned()
        });
    }
    if text.contains("ENCRYPTED PRIVATE KEY") || text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err("the private key is encrypted; store it unencrypted in a file only the service can read".to_owned());
    }
    let mut certificate = None;
    let mut key = None;
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        let (kind, der) = item.map_err(|e| format!("bad PEM: {e}"))?;
        let der = Zeroizing::new(der);
        match kind {
            SectionKind::Certificate if certificate.is_none() => certificate = Some(der.to_vec()),
            SectionKind::PrivateKey if key.is_none() => {
                key = Some(
                    RsaKeyPair::from_pkcs8(&der)
                        .map_err(|e| format!("the private key is not a usable RSA key ({e})"))?,
                );
            }
            SectionKind::RsaPrivateKey if key.is_none() => {
                key = Some(
                    RsaKeyPair::from_der(&der)
                        .map_err(|e| format!("the RSA private key is not usable ({e})"))?,
                );
            }
            SectionKind::EcPrivateKey => {
                return Err("only RSA keys are supported, this is an EC key".to_owned());
            }
            _ => {}
        }
    }
    let certificate = certificate.ok_or("no CERTIFICATE in the file")?;
    let key = key.ok_or("no PRIVATE KEY (or RSA PRIVATE KEY) in the file")?;
    // the certificate's SubjectPublicKeyInfo holds the RSAPublicKey DER verbatim
    let public = key.public().as_ref();
    if !certificate.windows(public.len()).any(|w| w == public) {
        return Err("the private key does not belong to the certificate".to_owned());
    }
    Ok(Loaded {
        certificate,
        key: Arc::new(key),
    })
}

/// Makes the signed JWT that stands in for a client secret.
pub(crate) struct CertificateAssertion {
    client_id: String,
    audience: String,
    x5t: String,
    x5t_s256: String,
    key: Arc<RsaKeyPair>,
    rng: SystemRandom,
}

impl fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

impl CertificateAssertion {
    pub(crate) fn new(loaded: &Loaded, client_id: &str, audience: &str) -> Self {
        let thumbprint = |alg| URL_SAFE_NO_PAD.encode(digest::digest(alg, &loaded.certificate));
        Self {
            client_id: client_id.to_owned(),
            audience: audience.to_owned(),
            x5t: thumbprint(&digest::SHA1_FOR_LEGACY_USE_ONLY),
            x5t_s256: thumbprint(&digest::SHA256),
            key: loaded.key.clone(),
            rng: SystemRandom::new(),
        }
    }

    /// A fresh assertion, valid from now for ten minutes.
    pub(crate) fn sign(&self, now: SystemTime) -> Result<String, String> {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| "the clock is before 1970")?
            .as_secs();
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| "no randomness for the assertion id")?;
        let header = serde_json::json!({
            "alg": "RS256",
            "typ": "JWT",
            "x5t": self.x5t,
            "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the assertion failed")?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        self.sign(SystemTime::now())
            .map_err(|message| Error::with_message(ErrorKind::Credential, message))
    }
}
