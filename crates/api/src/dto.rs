//! Serializable views for shells (CLI `--json`, the app over IPC).

use chrono::{DateTime, Utc};
use rehydra_core::Id;
use rehydra_core::RestorePoint;
use serde::Serialize;

/// An item as listed.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(rename = "Item")]
pub struct ItemDto {
    /// Name.
    pub name: String,
    /// Kind (`tree`, `stream`, `disk`, `document`).
    pub kind: String,
    /// Logical bytes.
    pub size: u64,
}

/// A restore point as listed.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(rename = "RestorePoint")]
pub struct RestorePointDto {
    /// Full id.
    pub id: String,
    /// First 8 hex digits.
    pub short_id: String,
    /// Time.
    pub time: DateTime<Utc>,
    /// Workload.
    pub workload: String,
    /// Asset.
    pub asset: String,
    /// Host.
    pub hostname: String,
    /// Plugin.
    pub plugin_id: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Consistency.
    pub consistency: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Parent id.
    pub parent: Option<String>,
    /// Items.
    pub items: Vec<ItemDto>,
    /// Logical bytes.
    pub bytes: u64,
    /// New plaintext bytes added.
    pub new_bytes: u64,
    /// Bytes written to packs.
    pub stored_bytes: u64,
    /// Seconds the backup took.
    pub seconds: f64,
    /// Files found unchanged since the previous restore point and not read again.
    pub unchanged_files: u64,
    /// Their bytes (part of `bytes`).
    pub unchanged_bytes: u64,
    /// Files and folders left out by exclude patterns.
    pub excluded: u64,
    /// For a copy: the source restore point's id (`rehydra copy`, policy copy targets).
    pub copied_from: Option<String>,
    /// For a copy: the source repository's id.
    pub copied_from_repository: Option<String>,
}

impl RestorePointDto {
    /// What the backup read, for people: `12 MiB read`, and the files it did not read
    /// again when there were any.
    pub fn read_summary(&self) -> String {
        let read = crate::human_bytes(self.bytes - self.unchanged_bytes.min(self.bytes));
        let excluded = if self.excluded == 0 {
            String::new()
        } else {
            format!(", {} excluded", self.excluded)
        };
        if self.unchanged_files == 0 {
            format!("{read} read{excluded}")
        } else {
            format!(
                "{read} read ({} unchanged files, {}, not read again){excluded}",
                self.unchanged_files,
                crate::human_bytes(self.unchanged_bytes)
            )
        }
    }

    /// From the engine's manifest.
    pub fn from_core(id: &Id, s: &RestorePoint) -> Self {
        Self {
            id: id.to_hex(),
            short_id: id.short(),
            time: s.time,
            workload: s.workload.clone(),
            asset: s.asset.clone(),
            hostname: s.hostname.clone(),
            plugin_id: s.plugin.id.clone(),
            plugin_version: s.plugin.version.clone(),
            consistency: s.consistency.clone(),
            tags: s.tags.clone(),
            parent: s.parent.map(|p| p.to_hex()),
            items: s
                .items
                .iter()
                .map(|i| ItemDto {
                    name: i.name.clone(),
                    kind: serde_json::to_value(i.kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    size: i.size,
                })
                .collect(),
            bytes: s.summary.bytes,
            new_bytes: s.summary.new_bytes,
            stored_bytes: s.summary.stored_bytes,
            seconds: s.summary.seconds,
            unchanged_files: s.summary.unchanged_files,
            unchanged_bytes: s.summary.unchanged_bytes,
            excluded: s.summary.excluded,
            copied_from: s.copied_from.as_ref().map(|c| c.restore_point.to_hex()),
            copied_from_repository: s.copied_from.as_ref().map(|c| c.repository.to_hex()),
        }
    }
}

/// Which restore points a listing or `latest` considers.
#[derive(Debug, Clone, Default)]
pub struct RestorePointFilter {
    /// Asset equals.
    pub asset: Option<String>,
    /// Workload equals.
    pub workload: Option<String>,
    /// Has all these tags.
    pub tags: Vec<String>,
    /// Host equals.
    pub hostname: Option<String>,
    /// Not older than.
    pub since: Option<DateTime<Utc>>,
    /// Not newer than.
    pub until: Option<DateTime<Utc>>,
}

impl RestorePointFilter {
    /// True when `d` passes.
    pub fn matches(&self, d: &RestorePointDto) -> bool {
        self.asset.as_ref().is_none_or(|a| &d.asset == a)
            && self.workload.as_ref().is_none_or(|w| &d.workload == w)
            && self.hostname.as_ref().is_none_or(|h| &d.hostname == h)
            && self.tags.iter().all(|t| d.tags.contains(t))
            && self.since.is_none_or(|t| d.time >= t)
            && self.until.is_none_or(|t| d.time <= t)
    }
}

/// Result of a backup.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct BackupOutcome {
    /// The new restore point.
    pub restore_point: RestorePointDto,
    /// Files that could not be read, and other warnings.
    pub warnings: Vec<String>,
}

#[cfg(test)]
impl RestorePointDto {
    /// A restore point of `asset` by `workload`, `hours_ago` before `now`, for tests.
    pub(crate) fn made(
        id: &str,
        asset: &str,
        workload: &str,
        hours_ago: i64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            id: id.into(),
            short_id: id.into(),
            time: now - chrono::Duration::hours(hours_ago),
            workload: workload.into(),
            asset: asset.into(),
            hostname: String::new(),
            plugin_id: String::new(),
            plugin_version: String::new(),
            consistency: String::new(),
            tags: vec![],
            parent: None,
            items: vec![],
            bytes: 0,
            new_bytes: 0,
            stored_bytes: 0,
            seconds: 0.0,
            unchanged_files: 0,
            unchanged_bytes: 0,
            excluded: 0,
            copied_from: None,
            copied_from_repository: None,
        }
    }
}
