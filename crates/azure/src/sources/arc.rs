//! The Azure Arc managed identity (not in `azure_identity` 1.0): the Connected Machine
//! agent's token endpoint on this machine and its challenge-file handshake.
//!
//! 1. `GET <endpoint>?api-version=2020-06-01&resource=<resource>` with `Metadata: true`;
//! 2. the agent answers 401 with `WWW-Authenticate: Basic realm=<path>`, a file it just
//!    wrote that only root (or the `himds` group) can read;
//! 3. the same request again with `Authorization: Basic <file contents>`.
//!
//! Because the file's contents prove local privilege, we only ever send them to a
//! loopback endpoint, never through a proxy, and only read a `.key` file of at most 4096
//! bytes directly inside the agent's token folder (links resolved first): a realm
//! pointing anywhere else is refused before anything is read.

use std::path::{Path, PathBuf};

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_core::http::Url;
use azure_core::time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::config::IdentityOptions;
use crate::error::IdentityError;
use crate::sources::env_var;

const DEFAULT_ENDPOINT: &str = "http://localhost:40342/metadata/identity/oauth2/token";
const API_VERSION: &str = "2020-06-01";
/// The agent's challenge files are small; anything bigger is not one.
const MAX_KEY: u64 = 4096;

/// Where the agent is: its token endpoint and the folder its challenge files are in.
#[derive(Debug)]
pub(crate) struct ArcEndpoint {
    url: String,
    folder: PathBuf,
}

/// The Arc endpoint when Arc is present: an endpoint in the options, `IDENTITY_ENDPOINT`
/// with `IMDS_ENDPOINT` (what the agent sets for services), or the agent installed.
pub(crate) fn detect(opts: &IdentityOptions) -> Option<ArcEndpoint> {
    let from_env = env_var("IDENTITY_ENDPOINT").filter(|_| env_var("IMDS_ENDPOINT").is_some());
    let present = opts.arc_endpoint.is_some() || from_env.is_some() || agent_installed();
    present.then(|| ArcEndpoint {
        url: opts
            .arc_endpoint
            .clone()
            .or(from_env)
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned()),
        folder: opts.arc_token_folder.clone().unwrap_or_else(default_folder),
    })
}

fn agent_installed() -> bool {
    if cfg!(windows) {
        let program_files =
            env_var("ProgramFiles").unwrap_or_else(|| r"C:\Program Files".to_owned());
        Path::new(&program_files)
            .join(r"AzureConnectedMachineAgent\himds.exe")
            .is_file()
    } else {
        Path::new("/opt/azcmagent/bin/himds").is_file()
    }
}

fn default_folder() -> PathBuf {
    if cfg!(windows) {
        let program_data = env_var("ProgramData").unwrap_or_else(|| r"C:\ProgramData".to_owned());
        Path::new(&program_data).join(r"AzureConnectedMachineAgent\Tokens")
    } else {
        PathBuf::from("/var/opt/azcmagent/tokens")
    }
}

/// The Arc managed identity as a `TokenCredential`.
#[derive(Debug)]
pub(crate) struct ArcCredential {
    url: Url,
    folder: PathBuf,
    client: reqwest::Client,
}

impl ArcCredential {
    /// `client` must not use a proxy.
    ///
    /// # Errors
    ///
    /// The endpoint is not an http(s) URL on a loopback address, or a user-assigned
    /// identity was asked for (Arc machines have only their system-assigned one).
    pub(crate) fn new(
        endpoint: ArcEndpoint,
        client: reqwest::Client,
        client_id: Option<&str>,
    ) -> Result<Self, IdentityError> {
        if client_id.is_some() {
            return Err(IdentityError::Config(
                "Azure Arc machines have only their system-assigned identity; remove the client id"
                    .to_owned(),
            ));
        }
        let url = Url::parse(&endpoint.url).map_err(|e| {
            IdentityError::Config(format!("the Azure Arc endpoint {:?}: {e}", endpoint.url))
        })?;
        if !matches!(url.scheme(), "http" | "https") || !is_loopback(&url) {
            return Err(IdentityError::Config(format!(
                "the Azure Arc endpoint {} is not on this machine (only loopback endpoints are used)",
                endpoint.url
            )));
        }
        Ok(Self {
            url,
            folder: endpoint.folder,
            client,
        })
    }

    async fn fetch(&self, scope: &str) -> Result<AccessToken, String> {
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION)
            .append_pair("resource", resource);
        let first = self.send(&url, None).await?;
        let response = if first.status() == reqwest::StatusCode::UNAUTHORIZED {
            let realm = first
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(realm)
                .ok_or("the Azure Arc agent answered 401 without a Basic challenge")?;
            let key = read_key(&self.folder, &realm)?;
            self.send(&url, Some(&key)).await?
        } else {
            first
        };
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("the Azure Arc agent's answer was cut off: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "the Azure Arc agent refused ({status}): {}",
                describe_error(&body)
            ));
        }
        parse_token(&body)
    }

    async fn send(&self, url: &Url, key: Option<&str>) -> Result<reqwest::Response, String> {
        let mut request = self.client.get(url.as_str()).header("Metadata", "true");
        if let Some(key) = key {
            request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {key}"));
        }
        request.send().await.map_err(|e| {
            format!(
                "the Azure Arc agent is not answering at {} (is the himds service running?): {}",
                crate::transport::host(url),
                crate::transport::causes(&e)
            )
        })
    }
}

#[async_trait::async_trait]
impl TokenCredential for ArcCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(Error::with_message(
                ErrorKind::Credential,
                "Azure Arc needs exactly one scope",
            ));
        };
        self.fetch(scope)
            .await
            .map_err(|message| Error::with_message(ErrorKind::Credential, message))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The path in `Basic realm=<path>` (quotes optional).
fn realm(header: &str) -> Option<String> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let (name, value) = rest.trim().split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("realm") {
        return None;
    }
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    (!value.is_empty()).then(|| value.to_owned())
}

/// The contents of the challenge file `realm`, after checking it is a `.key` file of at
/// most 4096 bytes directly inside `folder` (both with links resolved).
pub(crate) fn read_key(folder: &Path, realm: &str) -> Result<Zeroizing<String>, String> {
    let refuse = |why: &str| {
        format!(
            "the Azure Arc agent asked for {realm}, which {why}; refused (only .key files directly in {} are read)",
            folder.display()
        )
    };
    let path = Path::new(realm);
    if !path.is_absolute() {
        return Err(refuse("is not an absolute path"));
    }
    let folder = std::fs::canonicalize(folder)
        .map_err(|e| format!("the Azure Arc token folder {}: {e}", folder.display()))?;
    let file = std::fs::canonicalize(path)
        .map_err(|e| format!("the Azure Arc challenge file {realm}: {e}"))?;
    if file.parent() != Some(folder.as_path()) {
        return Err(refuse("is outside the agent's token folder"));
    }
    if file.extension().is_none_or(|e| e != "key") || path.extension().is_none_or(|e| e != "key") {
        return Err(refuse("is not a .key file"));
    }
    let meta = std::fs::metadata(&file)
        .map_err(|e| format!("the Azure Arc challenge file {realm}: {e}"))?;
    if !meta.is_file() {
        return Err(refuse("is not a file"));
    }
    if meta.len() > MAX_KEY {
        return Err(refuse("is larger than 4096 bytes"));
    }
    let bytes = Zeroizing::new(std::fs::read(&file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            format!("cannot read the Azure Arc challenge file {realm}: run as root (or a member of the himds group)")
        } else {
            format!("cannot read the Azure Arc challenge file {realm}: {e}")
        }
    })?);
    if bytes.len() as u64 > MAX_KEY {
        return Err(refuse("is larger than 4096 bytes"));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| refuse("is not text"))?
        .trim();
    if text.is_empty() || text.bytes().any(|b| b.is_ascii_control()) {
        return Err(refuse("is empty or not a single line"));
    }
    Ok(Zeroizing::new(text.to_owned()))
}

/// An IMDS-shaped error body (`error`, `error_description`), never echoed whole.
fn describe_error(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    field("error_description")
        .or_else(|| field("error"))
        .map(|d| d.lines().next().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "no details".to_owned())
}

/// `access_token` and its expiry: `expires_on` (Unix seconds, a string or a number),
/// else `expires_in` seconds from now.
fn parse_token(body: &[u8]) -> Result<AccessToken, String> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| "the Azure Arc agent's answer is not JSON".to_owned())?;
    let token = value
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("the Azure Arc agent's answer has no access_token")?;
    let seconds = |name: &str| match value.get(name)? {
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    };
    let expires = match (seconds("expires_on"), seconds("expires_in")) {
        (Some(on), _) => OffsetDateTime::from_unix_timestamp(on).ok(),
        (None, Some(within)) => {
            OffsetDateTime::now_utc().checked_add(azure_core::time::Duration::seconds(within))
        }
        (None, None) => None,
    }
    .ok_or("the Azure Arc agent's answer has no usable expires_on or expires_in")?;
    Ok(AccessToken::new(Secret::new(token.to_owned()), expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realms() {
        assert_eq!(
            realm("Basic realm=/var/opt/azcmagent/tokens/a.key").as_deref(),
            Some("/var/opt/azcmagent/tokens/a.key")
        );
        assert_eq!(
            realm(r#"basic realm="C:\x\a.key""#).as_deref(),
            Some(r"C:\x\a.key")
        );
        assert_eq!(realm("Bearer realm=/x.key"), None);
        assert_eq!(realm("Basic"), None);
        assert_eq!(realm("Basic realm="), None);
    }

    #[test]
    fn loopback_only() {
        for (url, ok) in [
            ("http://localhost:40342/x", true),
            ("http://127.0.0.1:40342/x", true),
            ("http://[::1]:40342/x", true),
            ("http://10.0.0.4:40342/x", false),
            ("http://localhost.evil.com/x", false),
            ("http://169.254.169.254/x", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), ok, "{url}");
        }
    }

    #[test]
    fn token_answers() {
        let t =
            parse_token(br#"{"access_token":"abc","expires_on":"2000000000","expires_in":"3599"}"#)
                .unwrap();
        assert_eq!(t.expires_on.unix_timestamp(), 2_000_000_000);
        let t = parse_token(br#"{"access_token":"abc","expires_in":60}"#).unwrap();
        assert!(t.expires_on > OffsetDateTime::now_utc());
        let err = parse_token(br#"{"access_token":"abc-secret","expires_on":"soon"}"#).unwrap_err();
        assert!(!err.contains("abc-secret"), "{err}");
    }
}
