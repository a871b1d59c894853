//! [`Identity`]: the configured sources behind a blocking, cached `token` call.
//!
//! The credentials are async; callers are not. Each fetch is spawned on a private tokio
//! runtime (one worker thread, owned by the identity) and the caller waits on a channel.
//! `Runtime::block_on` is never called, so `token` works from any thread, including one
//! inside another runtime's `block_in_place`; dropping the last clone shuts the runtime
//! down in the background, which is allowed anywhere.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use azure_core::credentials::{AccessToken, TokenCredential};

use crate::cache::Cache;
use crate::chain::Chain;
use crate::config::{IdentityConfig, IdentityOptions};
use crate::error::IdentityError;
use crate::sources::{self, Settings};
use crate::status::Status;
use crate::token::Token;

/// How many other tenants one identity signs in to at most (what a run of hostile
/// challenges could otherwise grow without end).
const TENANTS_MAX: usize = 32;

/// The longest one fetch may take, whatever the source (IMDS retries for up to 72 s).
const FETCH_LIMIT: Duration = Duration::from_secs(120);

/// The admin's Azure identity: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    config: IdentityConfig,
    settings: Settings,
    chain: Arc<Chain>,
    cache: Cache,
    /// The source in use, signing in to other tenants (built on first need).
    tenants: Mutex<HashMap<String, Arc<dyn TokenCredential>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (source, _) = self.inner.chain.report();
        f.debug_struct("Identity")
            .field("config", &self.inner.config)
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Sets up the sources of `config`. Nothing is fetched yet; a configured client
    /// secret or certificate is read now.
    ///
    /// # Errors
    ///
    /// Unusable options (an http authority host, an Arc endpoint off this machine, an
    /// unreadable extra root), a configured source that cannot be set up (secret or
    /// certificate unreadable, bad tenant id), or no runtime thread.
    pub fn new(config: IdentityConfig, opts: IdentityOptions) -> Result<Self, IdentityError> {
        let settings = Settings::new(opts)?;
        let chain = Chain::new(sources::build(&config, &settings)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rehydra-azure")
            .enable_all()
            .build()
            .map_err(|e| IdentityError::Runtime(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                settings,
                chain: Arc::new(chain),
                cache: Cache::default(),
                tenants: Mutex::default(),
                runtime: Some(runtime),
            }),
        })
    }

    /// A bearer token for `scope` (e.g. `"https://management.azure.com/.default"`, see
    /// [`crate::audience::scope_for`]): cached per scope, refreshed 5 minutes before
    /// expiry, one fetch at a time per scope.
    ///
    /// Blocking, and callable from any thread, including a thread inside another tokio
    /// runtime's `block_in_place` (not directly on an async task: it blocks that worker).
    ///
    /// # Errors
    ///
    /// The source (or every source of the chain) failed; the message says why in plain
    /// words and never holds a token.
    pub fn token(&self, scope: &str) -> Result<Token, IdentityError> {
        self.inner.cache.get(scope, || self.fetch(scope))
    }

    /// A bearer token for `scope` in `tenant` rather than the identity's own: the answer
    /// to a bearer challenge that names another tenant. The source in use signs in there
    /// (the Azure CLI and azd with `--tenant`, a service principal at that tenant's token
    /// endpoint); a managed identity cannot. Cached per scope and tenant, as
    /// [`Identity::token`].
    ///
    /// # Errors
    ///
    /// `tenant` is not a tenant id or domain, the source cannot sign in to another tenant,
    /// or it did not give a token there (the message says why in plain words).
    pub fn token_in_tenant(&self, scope: &str, tenant: &str) -> Result<Token, IdentityError> {
        let kind = match self.inner.chain.report().0 {
            Some(kind) => kind,
            None => {
                // nothing signed in yet: the chain picks its source first
                self.token(scope)?;
                self.inner.chain.report().0.ok_or_else(|| {
                    IdentityError::Runtime("no source of the chain is in use".to_owned())
                })?
            }
        };
        let tenant = tenant.to_ascii_lowercase();
        let built = || {
            self.inner
                .tenants
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let known = built().get(&tenant).cloned();
        let credential = match known {
            Some(c) => c,
            None => {
                if built().len() >= TENANTS_MAX {
                    return Err(IdentityError::Config(format!(
                        "tokens of {TENANTS_MAX} other tenants were asked for already; not {tenant}"
                    )));
                }
                sources::in_tenant(&self.inner.config, kind, &self.inner.settings, &tenant)?
            }
        };
        let got = self.inner.cache.get(&format!("{scope}\n{tenant}"), || {
            let owned = scope.to_owned();
            let credential = credential.clone();
            self.run(async move {
                credential
                    .get_token(&[&owned], None)
                    .await
                    .map_err(|e| IdentityError::Source {
                        kind,
                        reason: crate::reason::plain(kind, &e),
                    })
            })
        })?;
        // kept once it gave a token: a tenant that refuses leaves nothing behind
        built().entry(tenant).or_insert(credential);
        Ok(got)
    }

    fn fetch(&self, scope: &str) -> Result<Token, IdentityError> {
        let chain = self.inner.chain.clone();
        let owned = scope.to_owned();
        self.run(async move { chain.fetch(&owned).await })
    }

    /// Runs one token fetch on the identity's runtime, within [`FETCH_LIMIT`], and waits
    /// for it.
    fn run(
        &self,
        fetch: impl Future<Output = Result<AccessToken, IdentityError>> + Send + 'static,
    ) -> Result<Token, IdentityError> {
        let runtime = self
            .inner
            .runtime
            .as_ref()
            .ok_or_else(|| IdentityError::Runtime("shut down".to_owned()))?;
        let (tx, rx) = mpsc::sync_channel(1);
        runtime.spawn(async move {
            let result = match tokio::time::timeout(FETCH_LIMIT, fetch).await {
                Ok(result) => result,
                Err(_) => Err(IdentityError::Runtime(format!(
                    "no token within {} s",
                    FETCH_LIMIT.as_secs()
                ))),
            };
            let _ = tx.send(result);
        });
        let token = rx
            .recv()
            .map_err(|_| IdentityError::Runtime("the fetch was abandoned".to_owned()))??;
        Ok(Token::new(
            token.token.secret().to_owned(),
            SystemTime::from(token.expires_on),
        ))
    }

    /// For `rehydra azure status`: the source in use, the claims of its token, and every
    /// source tried in order with why it failed. Gets a token for `scope` the way
    /// [`Identity::token`] does (a cached one counts).
    pub fn status(&self, scope: &str) -> Status {
        let result = self.token(scope);
        let (source, attempts) = self.inner.chain.report();
        match result {
            Ok(token) => Status {
                source,
                claims: token.claims(),
                expires: Some(token.expires),
                attempts,
                error: None,
            },
            Err(e) => Status {
                source,
                claims: None,
                expires: None,
                attempts,
                error: Some(e.to_string()),
            },
        }
    }
}
