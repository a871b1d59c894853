//! Service principals against a local HTTPS Entra ID token endpoint that checks the
//! client-credentials request as documented and answers like Entra ID does.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rehydra_azure::{
    Identity, IdentityConfig, IdentityError, IdentityOptions, SecretSource, SourceKind,
};
use rustls_pki_types::CertificateDer;
use serde_json::json;

use crate::support::{
    Handler, Pki, Request, Response, Server, fake_jwt, now, options, private_file,
};

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
pub const SECRET: &str = "Abc8Q~correct-horse-battery-staple";
pub const SCOPE: &str = "https://management.azure.com/.default";

/// What the endpoint accepts.
pub struct Expect {
    pub secret: Option<String>,
    /// The DER certificate whose key must have signed the assertion.
    pub certificate: Option<Vec<u8>>,
    pub expires_in: u64,
    pub delay: Duration,
}

impl Expect {
    pub fn secret() -> Self {
        Self {
            secret: Some(SECRET.into()),
            certificate: None,
            expires_in: 3599,
            delay: Duration::ZERO,
        }
    }
}

/// The access token the endpoint issues for `client`.
pub fn issued_token(client: &str) -> String {
    fake_jwt(
        json!({"tid": TENANT, "appid": client, "oid": "99999999-0000-0000-0000-000000000001", "exp": now() + 3599}),
    )
}

fn entra_error(status: u16, error: &str, code: u32, description: &str) -> Response {
    Response::json(
        status,
        json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description}\r\nTrace ID: 0b1c\r\nCorrelation ID: 7d2e\r\nTimestamp: 2025-01-01 00:00:00Z"),
            "error_codes": [code],
            "timestamp": "2025-01-01 00:00:00Z",
            "trace_id": "0b1c",
            "correlation_id": "7d2e",
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// The token endpoint `POST /{tenant}/oauth2/v2.0/token`.
pub fn entra(expect: Expect) -> Handler {
    Arc::new(move |req: &Request| {
        std::thread::sleep(expect.delay);
        if let Err(problem) = check(&expect, req) {
            return problem;
        }
        Response::json(
            200,
            json!({"token_type": "Bearer", "expires_in": expect.expires_in, "ext_expires_in": expect.expires_in, "access_token": issued_token(CLIENT)}),
        )
    })
}

fn bad_request(what: String) -> Response {
    entra_error(
        400,
        "invalid_request",
        900144,
        &format!("test endpoint: {what}"),
    )
}

fn check(expect: &Expect, req: &Request) -> Result<(), Response> {
    if req.method != "POST" || req.path() != format!("/{TENANT}/oauth2/v2.0/token") {
        return Err(bad_request(format!("{} {}", req.method, req.target)));
    }
    if req.header("content-type") != Some("application/x-www-form-urlencoded") {
        return Err(bad_request(format!(
            "content type {:?}",
            req.header("content-type")
        )));
    }
    let form = req.form();
    let mut keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials")
        || field("client_id") != Some(CLIENT)
        || field("scope") != Some(SCOPE)
    {
        return Err(bad_request(format!("form {keys:?}")));
    }
    if let Some(secret) = &expect.secret {
        if keys != ["client_id", "client_secret", "grant_type", "scope"] {
            return Err(bad_request(format!("secret form has {keys:?}")));
        }
        if field("client_secret") != Some(secret.as_str()) {
            return Err(entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '11111111-2222-3333-4444-555555555555'.",
            ));
        }
    }
    if let Some(certificate) = &expect.certificate {
        if keys
            != [
                "client_assertion",
                "client_assertion_type",
                "client_id",
                "grant_type",
                "scope",
            ]
        {
            return Err(bad_request(format!("assertion form has {keys:?}")));
        }
        if field("client_assertion_type")
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err(bad_request("assertion type".into()));
        }
        let host = req.header("host").unwrap_or_default();
        let audience = format!("https://{host}/{TENANT}/oauth2/v2.0/token");
        check_assertion(
            field("client_assertion").unwrap_or_default(),
            certificate,
            &audience,
        )
        .map_err(|why| {
            entra_error(
                401,
                "invalid_client",
                700027,
                &format!("Client assertion failed signature validation. ({why})"),
            )
        })?;
    }
    Ok(())
}

/// The checks Entra ID makes of a certificate assertion.
fn check_assertion(jwt: &str, certificate: &[u8], audience: &str) -> Result<(), String> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not a JWT".into());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    let header: serde_json::Value =
        serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let claims: serde_json::Value =
        serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    let sha1 = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        certificate,
    ));
    let sha256 = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, certificate));
    if header["alg"] != "RS256"
        || header["typ"] != "JWT"
        || header["x5t"] != sha1.as_str()
        || header["x5t#S256"] != sha256.as_str()
    {
        return Err(format!("header {header}"));
    }
    let now = now() as i64;
    let (nbf, exp) = (
        claims["nbf"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if claims["aud"] != audience
        || claims["iss"] != CLIENT
        || claims["sub"] != CLIENT
        || claims["jti"].as_str().is_none_or(str::is_empty)
        || (nbf - now).abs() > 60
        || exp - nbf != 600
    {
        return Err(format!("claims {claims} (audience {audience})"));
    }
    let signing_input = &jwt[..jwt.rfind('.').unwrap()];
    let der = CertificateDer::from(certificate.to_vec());
    let cert = webpki::EndEntityCert::try_from(&der).map_err(|e| e.to_string())?;
    cert.verify_signature(
        webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        signing_input.as_bytes(),
        &decode(signature)?,
    )
    .map_err(|e| format!("signature: {e}"))
}

/// A self-signed client certificate with a fresh RSA key: (DER certificate, PEM file
/// contents with the certificate and its PKCS#8 key).
pub fn client_certificate() -> (Vec<u8>, String) {
    use rsa::pkcs8::EncodePrivateKey as _;
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "rehydra-backup");
    let cert = params.self_signed(&pair).unwrap();
    (
        cert.der().to_vec(),
        format!("{}{}", cert.pem(), pem.as_str()),
    )
}

/// Options that trust the test CA explicitly and use `server` as the authority.
pub fn https_options(pki: &Pki, server: &Server, cli_dir: &std::path::Path) -> IdentityOptions {
    IdentityOptions {
        authority_host: Some(server.url("https")),
        extra_roots: vec![pki.ca_file()],
        ..options(cli_dir)
    }
}

fn secret_identity(pki: &Pki, server: &Server, dir: &std::path::Path, secret: &str) -> Identity {
    let path = dir.join("client-secret");
    private_file(&path, format!("{secret}\n").as_bytes());
    let config = IdentityConfig::ServicePrincipalSecret {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        secret: SecretSource::File(path),
    };
    Identity::new(config, https_options(pki, server, dir)).unwrap()
}

#[test]
fn client_secret_flow_over_https() {
    let pki = Pki::new();
    let server = Server::https(&pki, entra(Expect::secret()));
    let dir = tempfile::tempdir().unwrap();
    let identity = secret_identity(&pki, &server, dir.path(), SECRET);

    let token = identity.token(SCOPE).unwrap();
    assert_eq!(token.bearer(), format!("Bearer {}", issued_token(CLIENT)));
    let left = token
        .expires
        .duration_since(std::time::SystemTime::now())
        .unwrap();
    assert!(
        left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
        "{left:?}"
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let form = requests[0].form();
    assert!(
        form.contains(&("client_secret".into(), SECRET.into())),
        "{form:?}"
    );

    let status = identity.status(SCOPE);
    assert_eq!(status.source, Some(SourceKind::ServicePrincipalSecret));
    let claims = status.claims.unwrap();
    assert_eq!(claims.tenant.as_deref(), Some(TENANT));
    assert_eq!(claims.app_id.as_deref(), Some(CLIENT));
    assert_eq!(server.requests().len(), 1, "status used the cached token");
}

#[test]
fn wrong_secret_gives_the_aadsts_reason() {
    let pki = Pki::new();
    let server = Server::https(&pki, entra(Expect::secret()));
    let dir = tempfile::tempdir().unwrap();
    let identity = secret_identity(&pki, &server, dir.path(), "wrong-secret-value");

    let status = identity.status(SCOPE);
    assert_eq!(status.source, None);
    assert_eq!(status.attempts.len(), 1);
    assert_eq!(
        status.attempts[0].source,
        SourceKind::ServicePrincipalSecret
    );
    assert_eq!(
        status.attempts[0].failure.as_deref(),
        Some("AADSTS7000215: Invalid client secret provided.")
    );
    let err = identity.token(SCOPE).unwrap_err();
    assert_eq!(
        err.to_string(),
        "service principal (client secret): AADSTS7000215: Invalid client secret provided."
    );
    assert!(!format!("{err:?}{status:?}").contains("wrong-secret-value"));
}

#[test]
fn client_certificate_flow_signs_a_verifiable_assertion() {
    let (der, pem) = client_certificate();
    let pki = Pki::new();
    let expect = Expect {
        secret: None,
        certificate: Some(der),
        expires_in: 3599,
        delay: Duration::ZERO,
    };
    let server = Server::https(&pki, entra(expect));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sp.pem");
    private_file(&path, pem.as_bytes());
    let config = IdentityConfig::ServicePrincipalCertificate {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        certificate: path,
    };
    let identity = Identity::new(config, https_options(&pki, &server, dir.path())).unwrap();

    let status = identity.status(SCOPE);
    assert_eq!(status.error, None, "{status:?}");
    assert_eq!(status.source, Some(SourceKind::ServicePrincipalCertificate));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn an_assertion_from_another_key_is_rejected_with_entra_words() {
    let (registered, _) = client_certificate();
    let (_, other_pem) = client_certificate();
    let pki = Pki::new();
    let expect = Expect {
        secret: None,
        certificate: Some(registered),
        expires_in: 3599,
        delay: Duration::ZERO,
    };
    let server = Server::https(&pki, entra(expect));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sp.pem");
    private_file(&path, other_pem.as_bytes());
    let config = IdentityConfig::ServicePrincipalCertificate {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        certificate: path,
    };
    let identity = Identity::new(config, https_options(&pki, &server, dir.path())).unwrap();
    let err = identity.token(SCOPE).unwrap_err().to_string();
    assert!(
        err.starts_with("service principal (certificate): AADSTS700027:"),
        "{err}"
    );
}

#[test]
fn certificate_files_we_cannot_use_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, pem) = client_certificate();
    let (_, other) = client_certificate();
    let cert_only = pem[..pem.find("-----BEGIN PRIVATE KEY").unwrap()].to_owned();
    let other_key = &other[other.find("-----BEGIN PRIVATE KEY").unwrap()..];
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("sp.pfx", vec![0x30, 0x82, 0x0a, 0x01], "PFX (PKCS#12) files are not supported"),
        ("enc.pem", format!("{cert_only}-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n").into_bytes(), "encrypted"),
        ("nokey.pem", cert_only.clone().into_bytes(), "no PRIVATE KEY"),
        ("mismatch.pem", format!("{cert_only}{other_key}").into_bytes(), "does not belong to the certificate"),
        ("ec.pem", format!("{cert_only}-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n").into_bytes(), "only RSA"),
    ];
    for (name, contents, words) in cases {
        let path = dir.path().join(name);
        private_file(&path, &contents);
        let config = IdentityConfig::ServicePrincipalCertificate {
            tenant: TENANT.into(),
            client_id: CLIENT.into(),
            certificate: path.clone(),
        };
        let err = Identity::new(config, options(dir.path())).unwrap_err();
        assert!(
            matches!(err, IdentityError::Certificate { .. }),
            "{name}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(words) && text.contains(name),
            "{name}: {text}"
        );
        assert!(!text.contains("MII"), "{name}: {text}");
    }
}

#[test]
fn an_untrusted_authority_is_refused() {
    let pki = Pki::new();
    let server = Server::https(&pki, entra(Expect::secret()));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client-secret");
    private_file(&path, SECRET.as_bytes());
    let config = IdentityConfig::ServicePrincipalSecret {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        secret: SecretSource::File(path),
    };
    let opts = IdentityOptions {
        authority_host: Some(server.url("https")),
        ..options(dir.path())
    };
    let err = Identity::new(config, opts)
        .unwrap()
        .token(SCOPE)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("could not reach 127.0.0.1") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn an_http_authority_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = IdentityConfig::ServicePrincipalSecret {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        secret: SecretSource::Env("PATH".into()),
    };
    let opts = IdentityOptions {
        authority_host: Some("http://127.0.0.1:1".into()),
        ..options(dir.path())
    };
    let err = Identity::new(config, opts).unwrap_err();
    assert!(
        matches!(err, IdentityError::Config(_)) && err.to_string().contains("https"),
        "{err}"
    );
}
