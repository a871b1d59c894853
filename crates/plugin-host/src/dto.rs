//! Host-side copies of the contract's types: serializable, free of wasmtime, and what the
//! API, CLI and app see.

use serde::{Deserialize, Serialize};

/// Error codes of the contract, and an error a host call returns to the plugin: the
/// rules' own types (the SDK's mock host returns the same).
pub use rehydra_plugin_rules::{ErrorCode, HostError};

/// A name/value pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Property {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

impl Property {
    /// `(name, value)` pairs (as shells, policies and tests hold options) as properties.
    pub fn list<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Vec<Self> {
        pairs
            .iter()
            .map(|(name, value)| Self {
                name: name.as_ref().to_string(),
                value: value.as_ref().to_string(),
            })
            .collect()
    }
}

/// An inventory asset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Asset {
    /// Kind within the workload.
    pub kind: String,
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Parent asset id.
    pub parent: Option<String>,
    /// Properties.
    pub properties: Vec<Property>,
    /// Protection-relevant flags (`trusted-launch`, `arc-managed` …).
    pub flags: Vec<String>,
}

/// An assessment / verification finding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Finding {
    /// Rule id.
    pub rule: String,
    /// `info` … `critical`.
    pub severity: String,
    /// Asset id.
    pub asset: Option<String>,
    /// Title.
    pub title: String,
    /// Detail.
    pub detail: String,
    /// What to do.
    pub recommendation: String,
}

/// `describe`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginInfo {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Workloads.
    pub workloads: Vec<String>,
    /// Description.
    pub description: String,
}

/// What an item holds: the engine's own type (the contract's `item-kind` is converted
/// to and from it in one place, `convert.rs`).
pub use rehydra_core::ItemKind;

/// An item of a restore point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemInfo {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ItemKind,
    /// Logical bytes.
    pub size: u64,
}

/// What the engine stored for one item.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemSummary {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ItemKind,
    /// Logical bytes.
    pub size: u64,
    /// New bytes.
    pub new_bytes: u64,
}

/// A restore point as handed to plugins.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestorePointInfo {
    /// Id (hex).
    pub id: String,
    /// RFC 3339.
    pub time: String,
    /// Workload.
    pub workload: String,
    /// Asset.
    pub asset: String,
    /// Plugin id.
    pub plugin_id: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Consistency.
    pub consistency: String,
    /// Items.
    pub items: Vec<ItemInfo>,
    /// Tags.
    pub tags: Vec<String>,
}

/// `backup`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupReport {
    /// Consistency reached.
    pub consistency: String,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// A restore request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreRequest {
    /// The restore point.
    pub restore_point: RestorePointInfo,
    /// Target.
    pub target: String,
    /// Options.
    pub options: Vec<Property>,
}

/// One plan step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct Step {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Detail.
    pub detail: String,
    /// Prerequisite step ids.
    pub depends_on: Vec<String>,
}

/// A restore plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ts_rs::TS)]
pub struct RestorePlan {
    /// Steps in order.
    pub steps: Vec<Step>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Reasons it cannot proceed.
    pub blockers: Vec<String>,
}

/// `restore`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestoreReport {
    /// Bytes written.
    pub bytes: u64,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// `verify`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerifyReport {
    /// True if the restore point can come back.
    pub ok: bool,
    /// Findings.
    pub findings: Vec<Finding>,
}
