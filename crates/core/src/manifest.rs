//! Restore points: encrypted JSON manifests under `snapshots/` (the folder name is format).

use serde::{Deserialize, Serialize};

use crate::id::Id;

/// Manifest format version.
pub const MANIFEST_VERSION: u32 = 1;

/// The plugin (or built-in source) that made a restore point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PluginRef {
    /// Plugin id (`builtin` for the engine's own sources).
    pub id: String,
    /// Plugin version.
    pub version: String,
}

/// What an item holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    /// A directory tree.
    Tree,
    /// One file or stream.
    Stream,
    /// A disk image (aligned chunking).
    Disk,
    /// A metadata document (small, written by a plugin).
    Document,
}

/// One item of a restore point. Its content map (nodes and extents) is stored as chunks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// Item name, unique within the restore point.
    pub name: String,
    /// Kind.
    pub kind: ItemKind,
    /// Logical bytes (sum of file sizes, or the disk size).
    pub size: u64,
    /// Chunk ids of the content map, in order.
    pub map: Vec<Id>,
}

/// Counters of one backup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Files (or streams) read.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Logical bytes read.
    pub bytes: u64,
    /// Bytes in zero runs (never stored).
    pub zero_bytes: u64,
    /// Chunks not already in the repository.
    pub new_chunks: u64,
    /// Plaintext bytes of those chunks.
    pub new_bytes: u64,
    /// Bytes written to packs (compressed, sealed).
    pub stored_bytes: u64,
    /// Packs written.
    pub packs: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Files of folder items found unchanged since the previous restore point (same
    /// size, modification and status-change time, inode) and not read again; they are
    /// counted in `files` and `bytes` too.
    #[serde(default)]
    pub unchanged_files: u64,
    /// Their bytes.
    #[serde(default)]
    pub unchanged_bytes: u64,
    /// Files and folders of folder items left out by exclude patterns (an excluded
    /// folder counts once, whatever it holds).
    #[serde(default)]
    pub excluded: u64,
}

/// A restore-point manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestorePoint {
    /// Manifest version.
    pub version: u32,
    /// The id the manifest is stored under, sealed inside it so that a manifest stored
    /// again under another name is detected ([`crate::Repository::load_restore_point`]).
    /// Absent in manifests written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    /// When the backup started (RFC 3339, UTC).
    pub time: chrono::DateTime<chrono::Utc>,
    /// Workload (`files`, `disk`, `hyperv-vm`, …).
    pub workload: String,
    /// Asset id (what was protected: a path, a VM id …).
    pub asset: String,
    /// Who made it.
    pub plugin: PluginRef,
    /// `crash`, `application`, or `none`.
    pub consistency: String,
    /// Host that ran the backup.
    pub hostname: String,
    /// Items.
    pub items: Vec<Item>,
    /// Previous restore point of the same asset, if any.
    pub parent: Option<Id>,
    /// Tags.
    pub tags: Vec<String>,
    /// Counters.
    pub summary: Summary,
    /// Set on a restore point copied from another repository (`rehydra copy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_from: Option<CopiedFrom>,
}

/// Where a copied restore point came from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CopiedFrom {
    /// Id of the source repository.
    pub repository: Id,
    /// Id of the restore point in the source repository.
    pub restore_point: Id,
}

impl RestorePoint {
    /// Parse a decrypted manifest (exposed for fuzzing; [`crate::Repository::load_restore_point`] uses it).
    ///
    /// # Errors
    /// Malformed JSON or a newer manifest version.
    pub fn parse(plain: &[u8], what: &str) -> crate::Result<Self> {
        let snap: RestorePoint = serde_json::from_slice(plain).map_err(|e| {
            crate::Error::new(
                crate::ErrorKind::Corrupt,
                format!("{what}: manifest is malformed: {e}"),
            )
        })?;
        if snap.version > MANIFEST_VERSION {
            return Err(crate::Error::new(
                crate::ErrorKind::UnsupportedVersion,
                format!(
                    "{what}: manifest version {} is newer than this build reads",
                    snap.version
                ),
            ));
        }
        Ok(snap)
    }
}

/// The longest item name, in bytes.
pub const MAX_ITEM_NAME: usize = 4096;

/// The item names of one restore point, checked: each 1 to [`MAX_ITEM_NAME`] bytes with no
/// control characters (names are often paths, and they are shown in listings and logs, so
/// nothing in them may steer a terminal), and no name twice (trees, streams, disks and
/// documents share one namespace). The one rule for the CLI, the engine and plugins.
///
/// # Errors
/// [`crate::ErrorKind::InvalidInput`] naming the first bad name.
pub fn check_item_names<'a>(names: impl IntoIterator<Item = &'a str>) -> crate::Result<()> {
    let bad = |why: String| Err(crate::Error::new(crate::ErrorKind::InvalidInput, why));
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if name.is_empty() || name.len() > MAX_ITEM_NAME {
            return bad(format!(
                "item name of {} bytes: an item name has 1 to {MAX_ITEM_NAME}",
                name.len()
            ));
        }
        if name.chars().any(char::is_control) {
            return bad(format!(
                "item name {name:?} holds a control character; name items with printable text"
            ));
        }
        if !seen.insert(name) {
            return bad(format!(
                "item name `{name}` is used twice in one restore point; give each item its own name"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod item_name_tests {
    use super::*;

    #[test]
    fn item_names_are_printable_bounded_and_unique() {
        assert!(check_item_names(["C:\\VMs\\a.vhdx", "/srv/data", "tpm-key"]).is_ok());
        assert!(check_item_names([""]).is_err());
        assert!(check_item_names(["a\u{1b}[2Jb"]).is_err());
        assert!(check_item_names(["line\nbreak"]).is_err());
        assert!(check_item_names(["same", "same"]).is_err());
        let long = "x".repeat(MAX_ITEM_NAME + 1);
        assert!(check_item_names([long.as_str()]).is_err());
    }
}
