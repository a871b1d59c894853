//! The managed identity of an Azure VM (IMDS) or App Service: `azure_identity`'s
//! `ManagedIdentityCredential`, behind a short probe.
//!
//! Off Azure nothing answers at 169.254.169.254, and the official credential would retry
//! for over a minute (its retry budget follows the IMDS guidance for machines that do have
//! it). So the first use sends one plain request with a short timeout: any HTTP answer
//! (IMDS says 400 to a request without `Metadata: true`) means IMDS is there; no answer
//! means "no managed identity endpoint on this machine", at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};

use crate::error::IdentityError;
use crate::sources::{Settings, env_var};

const PROBE_URL: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// What the chain reports when the probe gets no answer.
pub(crate) const ABSENT: &str = "no managed identity endpoint on this machine";

/// IMDS (or App Service) managed identity, probed before first use.
#[derive(Debug)]
pub(crate) struct Imds {
    credential: Arc<ManagedIdentityCredential>,
    probe: Option<Probe>,
    present: AtomicBool,
}

#[derive(Debug)]
struct Probe {
    url: String,
    client: reqwest::Client,
}

impl Imds {
    pub(crate) fn new(settings: &Settings, client_id: Option<&str>) -> Result<Self, IdentityError> {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_owned())),
            client_options: settings.client_options(&settings.local),
        };
        let credential = ManagedIdentityCredential::new(Some(options)).map_err(|e| {
            IdentityError::Config(crate::reason::plain(crate::SourceKind::Imds, &e))
        })?;
        // App Service publishes its endpoint in the environment: nothing to probe there
        let app_service =
            env_var("IDENTITY_ENDPOINT").is_some() && env_var("IDENTITY_HEADER").is_some();
        let probe = (!app_service)
            .then(|| {
                crate::http::builder(settings.opts.imds_probe_timeout)
                    .no_proxy()
                    .build()
                    .map(|client| Probe {
                        url: settings
                            .opts
                            .imds_probe_url
                            .clone()
                            .unwrap_or_else(|| PROBE_URL.to_owned()),
                        client,
                    })
            })
            .transpose()
            .map_err(|e| IdentityError::Config(format!("HTTP setup failed: {e}")))?;
        Ok(Self {
            credential,
            probe,
            present: AtomicBool::new(false),
        })
    }

    async fn probe(&self) -> bool {
        let Some(probe) = &self.probe else {
            return true;
        };
        if self.present.load(Ordering::Relaxed) {
            return true;
        }
        let answered = probe.client.get(&probe.url).send().await.is_ok();
        if answered {
            self.present.store(true, Ordering::Relaxed);
        }
        answered
    }
}

#[async_trait::async_trait]
impl TokenCredential for Imds {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        if !self.probe().await {
            return Err(Error::with_message(ErrorKind::Credential, ABSENT));
        }
        self.credential.get_token(scopes, options).await
    }
}
