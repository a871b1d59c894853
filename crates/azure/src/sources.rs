//! The token sources: building each one from the configuration and the environment.
//!
//! Every source is a `TokenCredential`. The Azure CLI, azd, client-secret and IMDS ones
//! are `azure_identity`'s; Azure Arc ([`arc`]) and the certificate assertion
//! ([`certificate`]) are ours. [`build`] turns an [`IdentityConfig`] into the ordered
//! list of sources the chain walks (one for a configured source).

mod arc;
mod certificate;
mod cli;
mod imds;
pub(crate) mod secret;

use std::sync::Arc;
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Url};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

use crate::config::{IdentityConfig, IdentityOptions, SecretSource};
use crate::error::IdentityError;
use crate::status::SourceKind;
use crate::transport::Reqwest;

/// How long one request to Entra ID, Arc or IMDS may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
const PUBLIC_AUTHORITY: &str = "https://login.microsoftonline.com";

/// One place a token can come from; `credential` is the reason it cannot be used when it
/// could not even be set up (variables missing, file unreadable, …).
pub(crate) struct Source {
    pub(crate) kind: SourceKind,
    pub(crate) credential: Result<Arc<dyn TokenCredential>, String>,
}

/// The options, resolved once: authority, HTTP clients, Arc and IMDS settings.
pub(crate) struct Settings {
    opts: IdentityOptions,
    authority: Url,
    /// For Entra ID: proxies honoured.
    http: reqwest::Client,
    /// For the on-machine endpoints (Arc, IMDS): never through a proxy.
    local: reqwest::Client,
}

impl Settings {
    pub(crate) fn new(opts: IdentityOptions) -> Result<Self, IdentityError> {
        let authority = opts
            .authority_host
            .clone()
            .or_else(|| env_var("AZURE_AUTHORITY_HOST"))
            .unwrap_or_else(|| PUBLIC_AUTHORITY.to_owned());
        let authority = Url::parse(&authority)
            .ok()
            .filter(|u| u.scheme() == "https" && u.host_str().is_some())
            .ok_or_else(|| {
                IdentityError::Config(format!(
                    "the authority host {authority:?} is not an https URL"
                ))
            })?;
        let mut builder = crate::http::builder(HTTP_TIMEOUT);
        for path in &opts.extra_roots {
            let pem = std::fs::read(path).map_err(|e| {
                IdentityError::Config(format!(
                    "cannot read the trusted roots {}: {e}",
                    path.display()
                ))
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                IdentityError::Config(format!("no certificates in {}: {e}", path.display()))
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| IdentityError::Config(format!("HTTPS setup failed: {e}")))?;
        let local = crate::http::builder(HTTP_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| IdentityError::Config(format!("HTTP setup failed: {e}")))?;
        Ok(Self {
            opts,
            authority,
            http,
            local,
        })
    }

    /// `ClientOptions` for the official credentials: our transport and authority.
    fn client_options(&self, http: &reqwest::Client) -> ClientOptions {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = self.authority.as_str().trim_end_matches('/').to_owned();
        // a few quick retries: the cache tries again on the next call anyway
        let retry = RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(500),
            max_retries: 3,
            max_total_elapsed: azure_core::time::Duration::seconds(20),
            ..Default::default()
        });
        ClientOptions {
            transport: Some(Reqwest::transport(http.clone())),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            retry,
            ..Default::default()
        }
    }

    /// The Entra ID token endpoint of `tenant`.
    fn token_url(&self, tenant: &str) -> Result<Url, IdentityError> {
        self.authority
            .join(&format!("/{tenant}/oauth2/v2.0/token"))
            .map_err(|e| IdentityError::Config(format!("bad tenant {tenant:?}: {e}")))
    }
}

/// The sources for `config`, in the order they are tried.
///
/// # Errors
///
/// A configured source that cannot be set up; the chain ([`IdentityConfig::Auto`]) only
/// fails on unusable options, and keeps each source's problem as its reason instead.
pub(crate) fn build(
    config: &IdentityConfig,
    settings: &Settings,
) -> Result<Vec<Source>, IdentityError> {
    let one = |kind, credential: Result<Arc<dyn TokenCredential>, IdentityError>| {
        credential.map(|c| {
            vec![Source {
                kind,
                credential: Ok(c),
            }]
        })
    };
    match config {
        IdentityConfig::Auto => Ok(vec![
            Source {
                kind: SourceKind::Environment,
                credential: environment(settings, None),
            },
            Source {
                kind: SourceKind::AzureCli,
                credential: cli::azure_cli(&settings.opts, None).map_err(|e| e.to_string()),
            },
            Source {
                kind: SourceKind::AzureDeveloperCli,
                credential: cli::azure_developer_cli(&settings.opts, None)
                    .map_err(|e| e.to_string()),
            },
            managed_identity(settings, None).unwrap_or_else(|(kind, e)| Source {
                kind,
                credential: Err(e.to_string()),
            }),
        ]),
        IdentityConfig::AzureCli => one(SourceKind::AzureCli, cli::azure_cli(&settings.opts, None)),
        IdentityConfig::AzureDeveloperCli => one(
            SourceKind::AzureDeveloperCli,
            cli::azure_developer_cli(&settings.opts, None),
        ),
        IdentityConfig::ServicePrincipalSecret {
            tenant,
            client_id,
            secret,
        } => {
            let secret = secret::read(secret)?;
            one(
                SourceKind::ServicePrincipalSecret,
                client_secret(settings, tenant, client_id, secret),
            )
        }
        IdentityConfig::ServicePrincipalCertificate {
            tenant,
            client_id,
            certificate,
        } => one(
            SourceKind::ServicePrincipalCertificate,
            certificate::credential(settings, tenant, client_id, certificate),
        ),
        IdentityConfig::ManagedIdentity { client_id } => {
            managed_identity(settings, client_id.as_deref())
                .map(|s| vec![s])
                .map_err(|(_, e)| e)
        }
    }
}

/// The source `kind` of `config` signing in to `tenant` instead of its own: what a bearer
/// challenge naming another tenant asks for (a vault of a customer's tenant reached as a
/// guest or through Azure Lighthouse). A managed identity belongs to one tenant only.
pub(crate) fn in_tenant(
    config: &IdentityConfig,
    kind: SourceKind,
    settings: &Settings,
    tenant: &str,
) -> Result<Arc<dyn TokenCredential>, IdentityError> {
    if !crate::challenge::is_tenant(tenant) {
        return Err(IdentityError::Config(format!(
            "`{}` is not a tenant id or domain",
            tenant.chars().take(80).collect::<String>()
        )));
    }
    let opts = &settings.opts;
    match (kind, config) {
        (SourceKind::AzureCli, _) => cli::azure_cli(opts, Some(tenant)),
        (SourceKind::AzureDeveloperCli, _) => cli::azure_developer_cli(opts, Some(tenant)),
        (SourceKind::Environment, _) => environment(settings, Some(tenant))
            .map_err(|reason| IdentityError::Source { kind, reason }),
        (
            SourceKind::ServicePrincipalSecret,
            IdentityConfig::ServicePrincipalSecret {
                client_id, secret, ..
            },
        ) => client_secret(settings, tenant, client_id, secret::read(secret)?),
        (
            SourceKind::ServicePrincipalCertificate,
            IdentityConfig::ServicePrincipalCertificate {
                client_id,
                certificate,
                ..
            },
        ) => certificate::credential(settings, tenant, client_id, certificate),
        _ => Err(IdentityError::Source {
            kind,
            reason: format!(
                "it signs in to its own tenant only, not to {tenant}: use an identity that can sign in there (rehydra azure login)"
            ),
        }),
    }
}

/// The environment service principal (in its own tenant, or in `tenant`), or why there is
/// none.
fn environment(
    settings: &Settings,
    tenant: Option<&str>,
) -> Result<Arc<dyn TokenCredential>, String> {
    let (Some(own), Some(client_id)) = (env_var("AZURE_TENANT_ID"), env_var("AZURE_CLIENT_ID"))
    else {
        return Err("AZURE_TENANT_ID and AZURE_CLIENT_ID are not set".to_owned());
    };
    let tenant = tenant.map_or(own, str::to_owned);
    if env_var("AZURE_CLIENT_SECRET").is_some() {
        let secret = secret::read(&SecretSource::Env("AZURE_CLIENT_SECRET".to_owned()))
            .map_err(|e| e.to_string())?;
        client_secret(settings, &tenant, &client_id, secret).map_err(|e| e.to_string())
    } else if let Some(path) = env_var("AZURE_CLIENT_CERTIFICATE_PATH") {
        certificate::credential(settings, &tenant, &client_id, path.as_ref())
            .map_err(|e| e.to_string())
    } else {
        Err("neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH is set".to_owned())
    }
}

fn client_secret(
    settings: &Settings,
    tenant: &str,
    client_id: &str,
    secret: zeroize::Zeroizing<String>,
) -> Result<Arc<dyn TokenCredential>, IdentityError> {
    let options = ClientSecretCredentialOptions {
        client_options: settings.client_options(&settings.http),
    };
    let credential = ClientSecretCredential::new(
        tenant,
        client_id.to_owned(),
        Secret::new(secret.to_string()),
        Some(options),
    )
    .map_err(|e| {
        IdentityError::Config(crate::reason::plain(SourceKind::ServicePrincipalSecret, &e))
    })?;
    Ok(credential)
}

/// Azure Arc when the agent is on this machine (or an endpoint was given), else IMDS.
fn managed_identity(
    settings: &Settings,
    client_id: Option<&str>,
) -> Result<Source, (SourceKind, IdentityError)> {
    if let Some(arc) = arc::detect(&settings.opts) {
        let credential = arc::ArcCredential::new(arc, settings.local.clone(), client_id)
            .map_err(|e| (SourceKind::AzureArc, e))?;
        return Ok(Source {
            kind: SourceKind::AzureArc,
            credential: Ok(Arc::new(credential)),
        });
    }
    let credential = imds::Imds::new(settings, client_id).map_err(|e| (SourceKind::Imds, e))?;
    Ok(Source {
        kind: SourceKind::Imds,
        credential: Ok(Arc::new(credential)),
    })
}

/// A variable of this process's environment, when set and not empty.
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_managed_identity_signs_in_to_its_own_tenant_only() {
        let settings = Settings::new(IdentityOptions::default()).unwrap();
        let config = IdentityConfig::ManagedIdentity { client_id: None };
        for kind in [SourceKind::AzureArc, SourceKind::Imds] {
            let e = in_tenant(&config, kind, &settings, "contoso.onmicrosoft.com")
                .err()
                .unwrap()
                .to_string();
            assert!(
                e.contains("its own tenant only, not to contoso.onmicrosoft.com"),
                "{e}"
            );
        }
    }
}
