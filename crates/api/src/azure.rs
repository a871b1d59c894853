//! Signing in to Azure: the identity the admin chose (kept in the catalog, never a
//! secret), the credentials the plugin host adds to plugins' requests, and the status
//! shells show (`rehydra azure status`, the app's Settings → Azure).
//!
//! Which token a request gets is decided here, once: a host's static override
//! (`REHYDRA_HTTP_AUTH_<HOST>`, for hosts that are not Azure), else the token scope of an
//! extra audience the admin added for that host, else the Azure host's own audience
//! (`rehydra_azure::audience`), else none. Tokens come from one [`Identity`] per process
//! and settings, so its cache serves every job. A server that answers 401 with a bearer
//! challenge naming another tenant the admin allowed (`rehydra azure tenant allow`), for
//! the very Azure audience it was given, gets a token of that tenant, then and for the
//! rest of the plugin call; a challenge for another audience is never followed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rehydra_azure::{Identity, IdentityConfig, IdentityOptions, SecretSource};
use rehydra_plugin_host as host;
use serde::{Deserialize, Serialize};

use crate::Context;
use crate::catalog_sync::with_catalog;
use crate::error::{ApiError, Code, Result};
use crate::plugins::EnvCredentials;

/// The ARM endpoint of the public cloud.
pub const PUBLIC_ARM: &str = "https://management.azure.com";
/// The keychain service client secrets are kept under.
pub const KEYCHAIN_SERVICE: &str = "rehydra";

/// The identity the admin chose, as kept in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum IdentitySetting {
    /// The first that works: environment service principal, Azure CLI, Azure Developer
    /// CLI, managed identity (Azure Arc, then IMDS).
    #[default]
    Auto,
    /// The account signed in to the Azure CLI (`az login`).
    AzureCli,
    /// The account signed in to the Azure Developer CLI (`azd auth login`).
    AzureDeveloperCli,
    /// A service principal with a client secret.
    ServicePrincipal {
        /// Directory (tenant) id or domain.
        tenant: String,
        /// Application (client) id.
        client_id: String,
        /// Where the secret is read from.
        secret: SecretSetting,
    },
    /// A service principal with a client certificate (PEM with the RSA key).
    Certificate {
        /// Directory (tenant) id or domain.
        tenant: String,
        /// Application (client) id.
        client_id: String,
        /// The PEM file.
        certificate: PathBuf,
    },
    /// The machine's managed identity (Azure Arc or IMDS).
    ManagedIdentity {
        /// A user-assigned identity's client id (IMDS only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

/// Where a service principal's secret is read from (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum SecretSetting {
    /// A file only its owner can read.
    File(PathBuf),
    /// An environment variable of the process that runs the job.
    Env(String),
    /// The OS keychain, under service `rehydra` and this user name.
    Keychain(String),
}

impl IdentitySetting {
    fn config(&self) -> IdentityConfig {
        match self.clone() {
            Self::Auto => IdentityConfig::Auto,
            Self::AzureCli => IdentityConfig::AzureCli,
            Self::AzureDeveloperCli => IdentityConfig::AzureDeveloperCli,
            Self::ServicePrincipal {
                tenant,
                client_id,
                secret,
            } => IdentityConfig::ServicePrincipalSecret {
                tenant,
                client_id,
                secret: match secret {
                    SecretSetting::File(p) => SecretSource::File(p),
                    SecretSetting::Env(v) => SecretSource::Env(v),
                    SecretSetting::Keychain(user) => SecretSource::Keyring {
                        service: KEYCHAIN_SERVICE.into(),
                        user,
                    },
                },
            },
            Self::Certificate {
                tenant,
                client_id,
                certificate,
            } => IdentityConfig::ServicePrincipalCertificate {
                tenant,
                client_id,
                certificate,
            },
            Self::ManagedIdentity { client_id } => IdentityConfig::ManagedIdentity { client_id },
        }
    }

    /// In the admin's words.
    pub fn describe(&self) -> String {
        match self {
            Self::Auto => {
                "automatic (environment service principal, az, azd, managed identity)".into()
            }
            Self::AzureCli => "the Azure CLI sign-in (az login)".into(),
            Self::AzureDeveloperCli => "the Azure Developer CLI sign-in (azd auth login)".into(),
            Self::ServicePrincipal {
                client_id, secret, ..
            } => format!(
                "service principal {client_id} with a client secret from {}",
                match secret {
                    SecretSetting::File(p) => format!("the file {}", p.display()),
                    SecretSetting::Env(v) => format!("the environment variable {v}"),
                    SecretSetting::Keychain(u) =>
                        format!("the OS keychain ({KEYCHAIN_SERVICE}/{u})"),
                }
            ),
            Self::Certificate {
                client_id,
                certificate,
                ..
            } => format!(
                "service principal {client_id} with the certificate {}",
                certificate.display()
            ),
            Self::ManagedIdentity { client_id: None } => {
                "the machine's managed identity (Azure Arc or IMDS)".into()
            }
            Self::ManagedIdentity { client_id: Some(c) } => {
                format!("the user-assigned managed identity {c}")
            }
        }
    }
}

/// Everything about signing in to Azure that the admin set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default, ts_rs::TS)]
pub struct AzureSettings {
    /// The identity.
    pub identity: IdentitySetting,
    /// The ARM endpoint (`https://management.azure.com` unless set).
    pub arm_endpoint: String,
    /// Extra hosts and the token scope each gets (`host` or `*.suffix`).
    pub audiences: Vec<(String, String)>,
    /// Tenants other than the identity's own that a service's bearer challenge may send
    /// it to (`*`: any); none unless the admin allows them.
    pub tenants: Vec<String>,
}

const IDENTITY: &str = "identity";
const ARM_ENDPOINT: &str = "arm-endpoint";
const AUDIENCE: &str = "audience:";
const TENANT: &str = "tenant:";

/// The settings, with defaults where nothing is set.
///
/// # Errors
/// Catalog failure, or an identity setting that no longer parses.
pub fn settings(ctx: &Context) -> Result<AzureSettings> {
    let (identity, arm, audiences, tenants) = with_catalog(ctx, |c| async move {
        Ok((
            c.azure_setting(IDENTITY).await?,
            c.azure_setting(ARM_ENDPOINT).await?,
            c.azure_settings(AUDIENCE).await?,
            c.azure_settings(TENANT).await?,
        ))
    })?;
    let identity = match identity {
        Some(j) => serde_json::from_str(&j).map_err(|e| {
            ApiError::new(
                Code::Io,
                format!("the Azure identity in the catalog is damaged ({e}); choose it again with `rehydra azure login`"),
            )
        })?,
        None => IdentitySetting::Auto,
    };
    Ok(AzureSettings {
        identity,
        arm_endpoint: arm.unwrap_or_else(|| PUBLIC_ARM.into()),
        audiences: audiences
            .into_iter()
            .map(|(k, v)| (k[AUDIENCE.len()..].to_string(), v))
            .collect(),
        tenants: tenants
            .into_iter()
            .map(|(k, _)| k[TENANT.len()..].to_string())
            .collect(),
    })
}

/// Let a service's bearer challenge send the identity to `tenant` (an id or domain, or
/// `*` for any): a vault of a customer's tenant reached as a guest or through Azure
/// Lighthouse.
///
/// # Errors
/// Not a tenant id or domain; catalog failure.
pub fn allow_tenant(ctx: &Context, tenant: &str) -> Result<()> {
    let t = tenant.trim().to_ascii_lowercase();
    if t != "*" && !rehydra_azure::challenge::is_tenant(&t) {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "`{tenant}` is not a tenant: give its id (a GUID) or domain (contoso.onmicrosoft.com), or * for any"
            ),
        ));
    }
    let key = format!("{TENANT}{t}");
    put_setting(ctx, key, Some("allowed".into()))?;
    Ok(())
}

/// Set the catalog's Azure setting `key` to `value` (`None`: remove it); returns whether
/// it was set before.
fn put_setting(ctx: &Context, key: String, value: Option<String>) -> Result<bool> {
    with_catalog(ctx, |c| async move {
        c.set_azure_setting(&key, value.as_deref()).await
    })
}

/// Stop allowing `tenant`; returns whether it was allowed.
///
/// # Errors
/// Catalog failure.
pub fn forget_tenant(ctx: &Context, tenant: &str) -> Result<bool> {
    put_setting(
        ctx,
        format!("{TENANT}{}", tenant.trim().to_ascii_lowercase()),
        None,
    )
}

/// Choose the identity; it is checked (a secret file that exists, a certificate that
/// parses…) by building it, not by signing in.
///
/// # Errors
/// An identity that cannot be built; catalog failure.
pub fn set_identity(ctx: &Context, identity: &IdentitySetting) -> Result<()> {
    Identity::new(identity.config(), IdentityOptions::default()).map_err(identity_err)?;
    let json = serde_json::to_string(identity).expect("identity serializes");
    put_setting(ctx, IDENTITY.into(), Some(json))?;
    Ok(())
}

/// Set the ARM endpoint (`None`: the public cloud's).
///
/// # Errors
/// Not an https URL (loopback may use http, for tests and local proxies); catalog failure.
pub fn set_arm_endpoint(ctx: &Context, url: Option<&str>) -> Result<()> {
    if let Some(u) = url {
        let parsed = url::Url::parse(u)
            .map_err(|e| ApiError::new(Code::InvalidInput, format!("`{u}` is not a URL: {e}")))?;
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if parsed.scheme() != "https" && !loopback {
            return Err(ApiError::new(
                Code::InvalidInput,
                format!("the ARM endpoint `{u}` must be https (tokens never travel in the clear)"),
            ));
        }
    }
    let u = url.map(|u| u.trim_end_matches('/').to_string());
    put_setting(ctx, ARM_ENDPOINT.into(), u)?;
    Ok(())
}

/// Give `host` (exact, or `*.suffix`) tokens for `scope`.
///
/// # Errors
/// A host or scope that is empty or malformed; catalog failure.
pub fn add_audience(ctx: &Context, host_pattern: &str, scope: &str) -> Result<()> {
    let h = host_pattern.trim().to_ascii_lowercase();
    let bare = h.strip_prefix("*.").unwrap_or(&h);
    if bare.is_empty()
        || !bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        || scope.trim().is_empty()
    {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "`{host_pattern}` → `{scope}`: give a host name (or *.domain) and a token scope such as https://management.azure.com/.default"
            ),
        ));
    }
    put_setting(
        ctx,
        format!("{AUDIENCE}{h}"),
        Some(scope.trim().to_string()),
    )?;
    Ok(())
}

/// Forget an extra audience; returns whether it was set.
///
/// # Errors
/// Catalog failure.
pub fn remove_audience(ctx: &Context, host_pattern: &str) -> Result<bool> {
    put_setting(
        ctx,
        format!("{AUDIENCE}{}", host_pattern.trim().to_ascii_lowercase()),
        None,
    )
}

/// Keep a client secret in the OS keychain for `tenant`/`client_id`; returns the
/// setting that reads it back.
///
/// # Errors
/// No keychain on this machine (a service on Linux has no D-Bus session: use a file).
pub fn store_secret(tenant: &str, client_id: &str, secret: &str) -> Result<SecretSetting> {
    let user = format!("{tenant}/{client_id}");
    rehydra_azure::store_in_keychain(KEYCHAIN_SERVICE, &user, secret).map_err(identity_err)?;
    Ok(SecretSetting::Keychain(user))
}

fn identity_err(e: rehydra_azure::IdentityError) -> ApiError {
    ApiError::new(Code::InvalidInput, e.to_string())
}

/// One [`Identity`] per process and settings, so that its token cache serves every job.
fn identity(setting: &IdentitySetting) -> Result<Identity> {
    static CURRENT: Mutex<Option<(IdentitySetting, Identity)>> = Mutex::new(None);
    let mut cur = CURRENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((s, id)) = cur.as_ref()
        && s == setting
    {
        return Ok(id.clone());
    }
    let id = Identity::new(setting.config(), IdentityOptions::default()).map_err(identity_err)?;
    *cur = Some((setting.clone(), id.clone()));
    Ok(id)
}

/// The identity jobs in `ctx` use (automatic when there is no catalog).
///
/// # Errors
/// The configured identity cannot be built; catalog failure.
pub(crate) fn current(ctx: &Context) -> Result<Identity> {
    let setting = if ctx.catalog.is_some() {
        settings(ctx)?.identity
    } else {
        IdentitySetting::Auto
    };
    identity(&setting)
}

/// The token scope for `host`: an extra audience the admin set, else Azure's own.
fn scope_for(audiences: &[(String, String)], host: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    audiences
        .iter()
        .find(|(pattern, _)| match pattern.strip_prefix("*.") {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => *pattern == host,
        })
        .map(|(_, scope)| scope.clone())
        .or_else(|| rehydra_azure::audience::scope_for(&host).map(str::to_string))
}

/// The audiences a SQL Server instance signed in to with Entra may be given a token for:
/// Azure SQL's in each cloud, the first the default. Nothing else: a token for ARM, Key
/// Vault or a cluster is never sent to a SQL Server.
pub const SQL_AUDIENCES: [&str; 3] = [
    "https://database.windows.net/.default",
    "https://database.usgovcloudapi.net/.default",
    "https://database.chinacloudapi.cn/.default",
];

/// Access tokens of the admin's Azure sign-in for SQL Server instances signed in to with
/// Microsoft Entra ID.
pub(crate) struct SqlTokens {
    identity: Identity,
}

impl SqlTokens {
    /// The identity of `ctx`'s settings.
    ///
    /// # Errors
    /// The configured identity cannot be built; catalog failure.
    pub(crate) fn new(ctx: &Context) -> Result<Self> {
        let setting = if ctx.catalog.is_some() {
            settings(ctx)?.identity
        } else {
            IdentitySetting::Auto
        };
        Ok(Self {
            identity: identity(&setting)?,
        })
    }

    /// A token for `audience`, one of [`SQL_AUDIENCES`] (`server` names the instance in
    /// the error).
    ///
    /// # Errors
    /// Another audience; the sign-in failed (the message says why, never holding a
    /// token).
    pub(crate) fn token(
        &self,
        server: &str,
        audience: &str,
    ) -> std::result::Result<zeroize::Zeroizing<String>, String> {
        if !SQL_AUDIENCES.contains(&audience) {
            return Err(format!(
                "SQL Server `{server}`: `{audience}` is not an audience of Azure SQL; a token for it is never sent to a SQL Server"
            ));
        }
        self.identity
            .token(audience)
            .map(|t| zeroize::Zeroizing::new(t.secret().to_string()))
            .map_err(|e| format!("signing in to Azure for SQL Server `{server}` failed: {e}"))
    }
}

/// What the plugin host adds to plugins' requests (see the module documentation).
pub(crate) struct AzureCredentials {
    identity: Identity,
    audiences: Vec<(String, String)>,
    /// Kubernetes API servers reached through the admin's kubeconfigs: their TLS, and
    /// their token before anything else.
    clusters: crate::plugins::kube_clusters::Configured,
    /// The tenants a challenge may send the identity to (lower case; `*`: any).
    allowed: Vec<String>,
    /// Servers (scheme, host, port) whose bearer challenge named another tenant than the
    /// identity's, for this plugin call: the tenant.
    tenants: Mutex<std::collections::HashMap<(String, String, u16), String>>,
}

impl AzureCredentials {
    /// From the context's settings, and the clusters configured.
    pub(crate) fn new(
        ctx: &Context,
        clusters: crate::plugins::kube_clusters::Configured,
    ) -> Result<Arc<Self>> {
        let s = settings(ctx)?;
        Ok(Arc::new(Self {
            identity: identity(&s.identity)?,
            audiences: s.audiences,
            clusters,
            allowed: s.tenants,
            tenants: Mutex::default(),
        }))
    }
}

impl host::Credentials for AzureCredentials {
    fn authorization_at(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
    ) -> std::result::Result<Option<String>, String> {
        match self.clusters.at(scheme, host, port).transpose()? {
            Some(a) if a.authorization.is_some() => {
                Ok(a.authorization.as_ref().map(|t| t.to_string()))
            }
            // a client certificate signs in by itself; no token is added to it
            Some(a) if a.tls.identity_pem.is_some() => Ok(None),
            _ => match self.tenant_of(scheme, host, port) {
                Some(tenant) if EnvCredentials.authorization(host)?.is_none() => {
                    match scope_for(&self.audiences, host) {
                        Some(scope) => self.in_tenant(host, &scope, &tenant).map(Some),
                        None => Ok(None),
                    }
                }
                _ => self.authorization(host),
            },
        }
    }

    fn tls(&self, host: &str, port: u16) -> std::result::Result<Option<host::HostTls>, String> {
        Ok(self
            .clusters
            .at("https", host, port)
            .transpose()?
            .map(|a| a.tls.clone()))
    }

    fn authorization(&self, host: &str) -> std::result::Result<Option<String>, String> {
        if let Some(v) = EnvCredentials.authorization(host)? {
            return Ok(Some(v));
        }
        let Some(scope) = scope_for(&self.audiences, host) else {
            return Ok(None);
        };
        self.identity
            .token(&scope)
            .map(|t| Some(t.bearer()))
            .map_err(|e| format!("signing in to Azure for {host} failed: {e}"))
    }

    fn answer_challenge(
        &self,
        scheme: &str,
        host: &str,
        port: u16,
        challenge: &str,
    ) -> std::result::Result<Option<String>, String> {
        // a cluster's own credentials and a header from the environment are not sign-ins
        if self.clusters.at(scheme, host, port).is_some()
            || EnvCredentials.authorization(host)?.is_some()
        {
            return Ok(None);
        }
        let Some(scope) = scope_for(&self.audiences, host) else {
            return Ok(None);
        };
        let Some(asked) = rehydra_azure::challenge::Challenge::parse(challenge) else {
            return Ok(None);
        };
        // only the audience this host has, and only an Azure service's (which checks the
        // token before it acts, so a request is sent again whatever its method): a
        // challenge never picks another service's token
        let (Some(tenant), true) = (
            asked.tenant,
            asked.scope.as_deref() == Some(&scope)
                && rehydra_azure::audience::is_service_scope(&scope),
        ) else {
            return Ok(None);
        };
        // the identity's own tenant: the 401 is the plugin's to report
        let home = self.identity.token(&scope).ok().and_then(|t| t.claims());
        if home
            .and_then(|c| c.tenant)
            .is_some_and(|t| t.eq_ignore_ascii_case(&tenant))
        {
            return Ok(None);
        }
        if !self.allowed.iter().any(|a| a == "*" || *a == tenant) {
            tracing::warn!(
                host,
                tenant,
                "a bearer challenge named a tenant that is not allowed (rehydra azure tenant allow)"
            );
            return Ok(None);
        }
        let bearer = self.in_tenant(host, &scope, &tenant)?;
        tracing::info!(
            host,
            tenant,
            "answered a bearer challenge with a token of that tenant"
        );
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((scheme.to_owned(), host.to_ascii_lowercase(), port), tenant);
        Ok(Some(bearer))
    }
}

impl AzureCredentials {
    fn tenant_of(&self, scheme: &str, host: &str, port: u16) -> Option<String> {
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(scheme.to_owned(), host.to_ascii_lowercase(), port))
            .cloned()
    }

    fn in_tenant(
        &self,
        host: &str,
        scope: &str,
        tenant: &str,
    ) -> std::result::Result<String, String> {
        self.identity
            .token_in_tenant(scope, tenant)
            .map(|t| t.bearer())
            .map_err(|e| {
                format!(
                    "{host} wants a token of tenant {tenant}, and signing in there failed: {e} (rehydra azure status shows the identity in use)"
                )
            })
    }
}

/// One source the identity tried, and why it failed (`None`: it worked).
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(rename = "Attempt")]
pub struct AttemptDto {
    /// Source name.
    pub source: String,
    /// Why it failed.
    pub failure: Option<String>,
}

/// A subscription the identity can see.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(rename = "Subscription")]
pub struct SubscriptionDto {
    /// Subscription id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// State (`Enabled`, `Disabled`, …).
    pub state: String,
    /// Its tenant.
    pub tenant: Option<String>,
}

/// `rehydra azure status`: what is configured, what is in use, what failed.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct AzureStatus {
    /// The identity as configured, in words.
    pub configured: String,
    /// The source that gave a token.
    pub source: Option<String>,
    /// Tenant of the token.
    pub tenant: Option<String>,
    /// User (UPN) of the token, for a person.
    pub user: Option<String>,
    /// Application id of the token, for a service principal or managed identity.
    pub app_id: Option<String>,
    /// Object id of the signed-in principal.
    pub object_id: Option<String>,
    /// When the current token expires (RFC 3339).
    pub expires: Option<String>,
    /// Every source tried, in order.
    pub attempts: Vec<AttemptDto>,
    /// Why no token could be had.
    pub error: Option<String>,
    /// The ARM endpoint.
    pub arm_endpoint: String,
    /// Subscriptions the identity sees.
    pub subscriptions: Vec<SubscriptionDto>,
    /// Why they could not be listed.
    pub subscriptions_error: Option<String>,
    /// Extra audiences set by the admin.
    pub audiences: Vec<(String, String)>,
    /// Other tenants a bearer challenge may send the identity to (`*`: any).
    pub tenants: Vec<String>,
}

fn rfc3339(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Sign in for ARM and list the subscriptions, saying what failed and why.
///
/// # Errors
/// Catalog failure (sign-in failures are part of the status, not errors).
pub fn status(ctx: &Context) -> Result<AzureStatus> {
    let s = settings(ctx)?;
    let id = identity(&s.identity)?;
    let arm_host = url::Url::parse(&s.arm_endpoint)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let scope = scope_for(&s.audiences, &arm_host)
        .unwrap_or_else(|| "https://management.azure.com/.default".into());
    let st = id.status(&scope);
    let claims = st.claims.clone().unwrap_or_default();
    let mut out = AzureStatus {
        configured: s.identity.describe(),
        source: st.source.map(|k| k.to_string()),
        tenant: claims.tenant,
        user: claims.user,
        app_id: claims.app_id,
        object_id: claims.object_id,
        expires: st.expires.map(rfc3339),
        attempts: st
            .attempts
            .iter()
            .map(|a| AttemptDto {
                source: a.source.to_string(),
                failure: a.failure.clone(),
            })
            .collect(),
        error: st.error.clone(),
        arm_endpoint: s.arm_endpoint.clone(),
        subscriptions: Vec::new(),
        subscriptions_error: None,
        audiences: s.audiences.clone(),
        tenants: s.tenants.clone(),
    };
    if st.source.is_some() {
        match id
            .token(&scope)
            .map_err(|e| e.to_string())
            .and_then(|t| subscriptions(&s.arm_endpoint, &t.bearer()))
        {
            Ok(subs) => out.subscriptions = subs,
            Err(e) => out.subscriptions_error = Some(e),
        }
    }
    Ok(out)
}

/// `GET {arm}/subscriptions`, following `nextLink` (at most 20 pages).
fn subscriptions(arm: &str, bearer: &str) -> std::result::Result<Vec<SubscriptionDto>, String> {
    let client = rehydra_azure::http::client(std::time::Duration::from_secs(30))
        .map_err(|e| format!("starting the HTTP client: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    let mut url = format!("{arm}/subscriptions?api-version=2022-12-01");
    let mut out = Vec::new();
    for _ in 0..20 {
        let (status, body) = rt.block_on(async {
            let r = client
                .get(&url)
                .header("Authorization", bearer)
                .send()
                .await
                .map_err(|e| format!("{arm}: {e}"))?;
            let status = r.status().as_u16();
            let body = r.bytes().await.map_err(|e| format!("{arm}: {e}"))?;
            Ok::<_, String>((status, body))
        })?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if status != 200 {
            let msg = v
                .pointer("/error/message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no message");
            return Err(format!("Azure Resource Manager answered {status}: {msg}"));
        }
        for s in v
            .get("value")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let f = |k: &str| s.get(k).and_then(|v| v.as_str()).map(str::to_string);
            out.push(SubscriptionDto {
                id: f("subscriptionId").unwrap_or_default(),
                name: f("displayName").unwrap_or_default(),
                state: f("state").unwrap_or_default(),
                tenant: f("tenantId"),
            });
        }
        match v.get("nextLink").and_then(|v| v.as_str()) {
            Some(next) if !next.is_empty() => url = next.to_string(),
            _ => return Ok(out),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_keep_no_secret_and_round_trip() {
        let s = IdentitySetting::ServicePrincipal {
            tenant: "t".into(),
            client_id: "c".into(),
            secret: SecretSetting::Env("SP_SECRET".into()),
        };
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(
            j,
            r#"{"kind":"service-principal","tenant":"t","client_id":"c","secret":{"env":"SP_SECRET"}}"#
        );
        assert_eq!(serde_json::from_str::<IdentitySetting>(&j).unwrap(), s);
        assert_eq!(
            serde_json::to_string(&IdentitySetting::Auto).unwrap(),
            r#"{"kind":"auto"}"#
        );
    }

    #[test]
    fn audiences_before_azure_hosts() {
        let a = vec![
            ("127.0.0.1".to_string(), "arm/.default".to_string()),
            ("*.hub.example".to_string(), "hub/.default".to_string()),
        ];
        assert_eq!(scope_for(&a, "127.0.0.1").as_deref(), Some("arm/.default"));
        assert_eq!(
            scope_for(&a, "x.hub.example").as_deref(),
            Some("hub/.default")
        );
        assert_eq!(scope_for(&a, "hub.example"), None);
        assert_eq!(
            scope_for(&a, "management.azure.com").as_deref(),
            Some("https://management.azure.com/.default")
        );
        assert_eq!(scope_for(&a, "example.com"), None);
    }
}
