//! The plugin manifest: who the plugin is and which capabilities it asks for, and why.

use serde::{Deserialize, Serialize};

use crate::policy::CapabilityKind;
use crate::settings::SettingDecl;

/// Contract version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.5";

/// A plugin's manifest (TOML, embedded in the component).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Plugin id: lowercase letters, digits and `-`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// Publisher name; its signing keys are trusted with `rehydra plugins trust`.
    pub publisher: String,
    /// What it does.
    #[serde(default)]
    pub description: String,
    /// Contract version the plugin was written against (`0.1.5`; 0.1.0 to 0.1.4 plugins run too).
    pub contract: String,
    /// Workloads it protects.
    pub workloads: Vec<String>,
    /// Capabilities it asks for.
    #[serde(default)]
    pub capabilities: Vec<CapabilityRequest>,
    /// Resource limits it asks for (the host caps them).
    #[serde(default)]
    pub limits: Limits,
    /// The settings its calls read (`[[settings]]`): the app's forms and the host's checks.
    #[serde(default)]
    pub settings: Vec<SettingDecl>,
}

/// One requested capability, shown to the admin with its reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRequest {
    /// Kind.
    pub kind: CapabilityKind,
    /// Scope asked for (`*` = whatever the admin chooses); ignored for `engine`.
    #[serde(default)]
    pub scope: Option<String>,
    /// Why, in words an admin understands.
    pub reason: String,
}

/// Limits a plugin asks for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory per call (all memories of all its instances together), MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    /// Wall time per call, seconds: the plugin's code, its WASI waits and its host calls
    /// (commands, HTTP, files, denied calls); engine bulk work (ingest, restore-item,
    /// item reads and writes) counts only 50 ms per call.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_memory() -> u64 {
    64
}
fn default_timeout() -> u64 {
    60
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mib: default_memory(),
            timeout_secs: default_timeout(),
        }
    }
}

/// Highest limits any plugin may ask for.
pub const MAX_MEMORY_MIB: u64 = 4096;
/// Highest time limit any plugin may ask for.
pub const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

impl Limits {
    /// The most any plugin may ask for: the host's own caps.
    pub const HIGHEST: Limits = Limits {
        memory_mib: MAX_MEMORY_MIB,
        timeout_secs: MAX_TIMEOUT_SECS,
    };

    /// What a plugin asking for `self` gets under the admin's `caps`: the lower of each.
    pub fn capped(self, caps: Limits) -> Limits {
        Limits {
            memory_mib: self.memory_mib.min(caps.memory_mib),
            timeout_secs: self.timeout_secs.min(caps.timeout_secs),
        }
    }
}

impl Manifest {
    /// Parse and validate manifest text.
    ///
    /// # Errors
    /// Not TOML, unknown fields or capability kinds, invalid id, limits out of range.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
        let m: Manifest = toml::from_str(text).map_err(|e| e.message().to_string())?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), String> {
        if self.id.is_empty()
            || self.id.len() > 64
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(format!(
                "id `{}` must be 1-64 characters of a-z, 0-9 and -",
                self.id
            ));
        }
        if self.publisher.is_empty()
            || !self
                .publisher
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(format!(
                "publisher `{}` must be letters, digits, '-' and '.'",
                self.publisher
            ));
        }
        if self.workloads.is_empty() {
            return Err("`workloads` must name at least one workload".into());
        }
        if !(1..=MAX_MEMORY_MIB).contains(&self.limits.memory_mib) {
            return Err(format!("limits.memory_mib must be 1..={MAX_MEMORY_MIB}"));
        }
        if !(1..=MAX_TIMEOUT_SECS).contains(&self.limits.timeout_secs) {
            return Err(format!(
                "limits.timeout_secs must be 1..={MAX_TIMEOUT_SECS}"
            ));
        }
        for c in &self.capabilities {
            if c.reason.trim().is_empty() {
                return Err(format!(
                    "capability `{}` needs a reason for the admin",
                    c.kind.name()
                ));
            }
        }
        crate::settings::validate(&self.settings)
    }

    /// True if the manifest asks for `kind`.
    pub fn requests(&self, kind: CapabilityKind) -> bool {
        self.capabilities.iter().any(|c| c.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let ok = b"id='a'\nname='A'\nversion='1'\npublisher='p'\ncontract='0.1.0'\nworkloads=['x']\n[[capabilities]]\nkind='files'\nscope='*'\nreason='read'\n";
        let m = Manifest::parse(ok).unwrap();
        assert!(m.requests(CapabilityKind::Files));
        assert!(!m.requests(CapabilityKind::Http));
        assert!(Manifest::parse(b"id='A B'\nname='A'\nversion='1'\npublisher='p'\ncontract='0.1.0'\nworkloads=['x']").unwrap_err().contains("id"));
        assert!(Manifest::parse(b"id='a'\nname='A'\nversion='1'\npublisher='p'\ncontract='0.1.0'\nworkloads=['x']\n[[capabilities]]\nkind='root'\nreason='r'").is_err());
        assert!(Manifest::parse(b"id='a'\nname='A'\nversion='1'\npublisher='p'\ncontract='0.1.0'\nworkloads=['x']\nextra=1").is_err());
    }
}
