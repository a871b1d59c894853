//! The admin's Azure identity, the way admins already sign in, so scheduled jobs run
//! unattended.
//!
//! Plugins never see credentials: the plugin host adds `Authorization: Bearer <token>` to
//! a plugin's HTTPS requests to granted Azure hosts. This crate gets those tokens. An
//! [`Identity`] is built from an [`IdentityConfig`]: one named source (the Azure CLI, the
//! Azure Developer CLI, a service principal with a client secret or a certificate, the
//! machine's managed identity) or [`IdentityConfig::Auto`], a chain that uses the first
//! source that works, in this order:
//!
//! 1. a service principal from the environment (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID` and
//!    `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH`),
//! 2. the Azure CLI (`az account get-access-token`),
//! 3. the Azure Developer CLI (`azd auth token`),
//! 4. the managed identity: Azure Arc when the Connected Machine agent is installed, else
//!    the instance metadata service (IMDS), after a short probe.
//!
//! [`Identity::token`] is blocking and callable from any thread: the work runs on a
//! private tokio runtime and the caller waits on a channel, so it is safe inside another
//! runtime's `block_in_place`. Tokens are cached per scope and refreshed five minutes
//! before they expire, one fetch at a time per scope. [`Identity::status`] says which
//! source is in use, what its token claims, and why each earlier source failed, in plain
//! words. [`audience::scope_for`] maps an Azure host to its token scope, and
//! [`http::client`] is the one HTTP client configuration Rehydra uses for Azure and plugin
//! requests. A service that wants a token of another tenant says so in a bearer challenge
//! ([`challenge::Challenge`]); [`Identity::token_in_tenant`] gets one there.
//!
//! The Azure CLI, azd, client-secret and IMDS flows are the official `azure_identity`
//! credentials, driven through our reqwest client (`transport.rs`) and our process
//! runner (a timeout that kills the process group). Azure Arc, client certificates (a
//! signed JWT assertion, no OpenSSL), the chain and the cache are built here, behind the
//! same `TokenCredential` trait.
//!
//! ```no_run
//! use rehydra_azure::{Identity, IdentityConfig, IdentityOptions, audience};
//!
//! let identity = Identity::new(IdentityConfig::Auto, IdentityOptions::default())?;
//! let scope = audience::scope_for("myvault.vault.azure.net").expect("an Azure host");
//! let token = identity.token(scope)?;
//! let header = token.bearer(); // "Bearer eyJ…"
//! # drop(header);
//! # Ok::<(), rehydra_azure::IdentityError>(())
//! ```

pub mod audience;
mod cache;
pub mod challenge;
mod chain;
mod config;
mod error;
pub mod http;
mod identity;
mod reason;
mod sources;
mod status;
mod token;
mod transport;

pub use config::{IdentityConfig, IdentityOptions, SecretSource};
pub use error::IdentityError;
pub use identity::Identity;
pub use sources::secret::{
    forget_in_keychain, read as read_secret, recall_from_keychain, store_in_keychain,
};
pub use status::{Attempt, Claims, SourceKind, Status};
pub use token::Token;
