//! [`Identity`]: the configured sources behind a blocking, cached `token` call.
//!
//! The credentials are async; callers are not. Each fetch is spawned on a private tokio
//! runtime (one worker thread, owned by the identity) and the caller waits on a channel.
//! `Runtime::block_on` is never called, so `token` works from any thread, including one
//! inside another runtime's `block_in_place`; dropping the last clone shuts the runtime
//! down in the background, which is allowed anywhere.

use std::fmt;
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use crate::cache::Cache;
use crate::chain::Chain;
use crate::config::{IdentityConfig, IdentityOptions};
use crate::error::IdentityError;
use crate::sources::{self, Settings};
use crate::status::Status;
use crate::token::Token;

/// The longest one fetch may take, whatever the source (IMDS retries for up to 72 s).
const FETCH_LIMIT: Duration = Duration::from_secs(120);

/// The admin's Azure identity: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

struct Inner {
    config: IdentityConfig,
    chain: Arc<Chain>,
    cache: Cache,
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
                chain: Arc::new(chain),
                cache: Cache::default(),
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

    fn fetch(&self, scope: &str) -> Result<Token, IdentityError> {
        let runtime = self
            .inner
            .runtime
            .as_ref()
            .ok_or_else(|| IdentityError::Runtime("shut down".to_owned()))?;
        let (tx, rx) = mpsc::sync_channel(1);
        let chain = self.inner.chain.clone();
        let owned = scope.to_owned();
        runtime.spawn(async move {
            let result = match tokio::time::timeout(FETCH_LIMIT, chain.fetch(&owned)).await {
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
