//! [`IdentityError`]: why no token could be had. Messages are plain words for an admin
//! and never hold a token or a secret.

use crate::status::{Attempt, SourceKind};

/// Why an identity could not be built or a token could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The configuration or options are unusable (an http authority, an Arc endpoint
    /// off this machine, a malformed tenant id …).
    #[error("invalid Azure identity configuration: {0}")]
    Config(String),
    /// The client secret could not be read.
    #[error("could not read the client secret: {0}")]
    Secret(String),
    /// The OS keychain could not keep, give back or remove an entry.
    #[error("{0}")]
    Keychain(String),
    /// The client certificate file could not be used.
    #[error("could not use the certificate {path}: {reason}")]
    Certificate {
        /// The PEM file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The one configured source did not give a token.
    #[error("{kind}: {reason}")]
    Source {
        /// The source that failed.
        kind: SourceKind,
        /// Why, in plain words.
        reason: String,
    },
    /// No source of the chain gave a token.
    #[error("no Azure identity could be used: {}", list(attempts))]
    NoIdentity {
        /// Every source tried, in order, with why it failed.
        attempts: Vec<Attempt>,
    },
    /// The private runtime that fetches tokens could not start or has stopped.
    #[error("the Azure identity worker is not running: {0}")]
    Runtime(String),
}

fn list(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{}: {}", a.source, a.failure.as_deref().unwrap_or("worked")))
        .collect::<Vec<_>>()
        .join("; ")
}
