//! Capabilities, grants and trusted publishers: the data the admin controls.
//!
//! Everything is denied by default. What a grant (`kind[:scope]`) allows and the path,
//! host and command checks are `rehydra_plugin_rules::grants`, the one implementation,
//! which the SDK's mock host applies too.

use serde::{Deserialize, Serialize};

use crate::error::PluginError;

pub use rehydra_plugin_rules::grants::{CapabilityKind, Grant, Grants};

/// A publisher key the admin trusts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustedKey {
    /// Publisher name (as in plugin manifests).
    pub publisher: String,
    /// ed25519 public key, hex.
    pub key: String,
}

/// Parse a 32-byte ed25519 public key in hex.
///
/// # Errors
/// Not 64 hex digits or not a valid point.
pub fn parse_public_key(hex_key: &str) -> Result<ed25519_dalek::VerifyingKey, PluginError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            PluginError::Invalid(format!(
                "`{hex_key}` is not an ed25519 public key (64 hex digits)"
            ))
        })?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| PluginError::Invalid(format!("`{hex_key}` is not a valid ed25519 public key")))
}
