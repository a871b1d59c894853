//! Workload plugins: where they are installed, what the admin granted and trusts (kept in
//! the catalog), and running their verbs against a repository.
//!
//! The engine capability is served on the caller's thread while the plugin runs on a
//! scoped thread: the plugin's requests (ingest this path, restore that item) arrive over
//! a channel, already checked against the grants by the host, and go straight into the
//! engine's backup session or restorer. Bulk bytes never cross into the plugin.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use rehydra_catalog::AuditRow;
use rehydra_core::archiver::{BackupOptions, ChangedRanges, Finish, ItemSink, Source, SourceItem};
use rehydra_core::restorer::{DiskOutput, RestoreOptions};
use rehydra_core::{Cancel, NoProgress, Progress};
use rehydra_core::{ItemKind, PluginRef, RestorePoint};
use rehydra_plugin_host as host;
use serde::Serialize;

pub use host::{
    Asset, AuditEvent, BackupReport, Finding, Grant, Limits, LoadInfo, Manifest, PluginInfo,
    Property, RemoteShell, RestorePlan, RestoreReport, Signer, Step, Target, VerifyReport,
};

use crate::catalog_sync::with_catalog;
use crate::dto::RestorePointDto;
use crate::error::{ApiError, Code, Result};
use crate::{Context, RestorePointFilter, Session};

/// An installed plugin as listed.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PluginEntry {
    /// Plugin id (file stem when it cannot be loaded).
    pub id: String,
    /// File.
    pub path: PathBuf,
    /// Version, if loadable.
    pub version: Option<String>,
    /// Publisher, if loadable.
    pub publisher: Option<String>,
    /// Workloads.
    pub workloads: Vec<String>,
    /// Who vouches for it.
    pub signer: Option<Signer>,
    /// Why it cannot be loaded, if so.
    pub error: Option<String>,
}

/// A command target as kept, with what asking its cluster found.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct TargetKept {
    /// The target as it is now configured.
    pub target: host::Target,
    /// Nodes the cluster lists that were not pinned before (every node of a new cluster
    /// target).
    pub added: Vec<String>,
    /// Nodes pinned before that the cluster no longer lists.
    pub removed: Vec<String>,
    /// Lines of the cluster's answer that are not host names (never pinned).
    pub left_out: Vec<String>,
    /// Whether the nodes found are pinned now. A refresh that finds new nodes pins them
    /// only when told to: whoever may run PowerShell on the cluster can make its answer
    /// name any host, so the admin looks at the new names first.
    pub pinned: bool,
}

/// Details of one plugin: its manifest, requested capabilities and what is granted.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct PluginDetails {
    /// Summary.
    pub entry: PluginEntry,
    /// Manifest.
    pub manifest: Manifest,
    /// Requested capabilities with the admin-facing description and whether granted.
    pub capabilities: Vec<CapabilityView>,
    /// Grants in force.
    pub grants: Vec<String>,
    /// Load time.
    pub load: LoadInfo,
    /// The limits its calls run under: what the manifest asks, capped by the admin.
    pub limits: host::Limits,
}

/// A requested capability as the admin sees it.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct CapabilityView {
    /// Kind.
    pub kind: String,
    /// What it allows.
    pub allows: String,
    /// Scope asked for.
    pub scope: Option<String>,
    /// The plugin's reason.
    pub reason: String,
    /// Granted scopes of this kind.
    pub granted: Vec<String>,
}

/// Result of a plugin backup.
#[derive(Debug, Clone, Serialize)]
pub struct PluginBackupOutcome {
    /// The restore point written.
    pub restore_point: RestorePointDto,
    /// What the plugin reported.
    pub report: BackupReport,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Plugin log lines.
    pub log: Vec<String>,
}

/// Result of a plugin restore.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRestoreOutcome {
    /// The plan that was checked first.
    pub plan: RestorePlan,
    /// What the restore did (`None` for a plan-only run).
    pub report: Option<RestoreReport>,
    /// Plugin log lines.
    pub log: Vec<String>,
}

/// Plugin settings of a [`Context`].
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// Folders searched for `<id>.wasm`, first match wins (configured, user, system).
    pub dirs: Vec<PathBuf>,
    /// Where `install` puts plugins (the first configured folder, else the user folder).
    pub install_dir: Option<PathBuf>,
    /// Load unsigned plugins and untrusted publishers (never tampered files).
    pub developer_mode: bool,
    /// The admin's caps on every plugin call's memory and time (a plugin gets the lower of
    /// what it asks and these; never above the host's own highest).
    pub caps: host::Limits,
}

impl PluginSettings {
    /// Configured folders (`REHYDRA_PLUGIN_PATH`-style list), then the user's, then the
    /// system's: on Linux the one beside the running binary (`PREFIX/lib/rehydra/plugins`
    /// for `PREFIX/bin/rehydra`, which is how the AppImage carries its plugins) when only
    /// root or this account can change it, then `/usr/lib/rehydra/plugins` (the .deb's).
    pub fn with_defaults(configured: &[PathBuf], developer_mode: bool) -> Self {
        let user = dirs::data_local_dir().map(|d| d.join("rehydra").join("plugins"));
        let system = if cfg!(windows) {
            std::env::var_os("ProgramData")
                .map(|p| vec![PathBuf::from(p).join("Rehydra").join("plugins")])
                .unwrap_or_default()
        } else {
            let usr = PathBuf::from("/usr/lib/rehydra/plugins");
            let beside = std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
                .filter(|prefix| ours(prefix))
                .map(|prefix| prefix.join("lib/rehydra/plugins"))
                .filter(|d| d.is_dir() && *d != usr);
            beside.into_iter().chain([usr]).collect()
        };
        let mut dirs = configured.to_vec();
        dirs.extend(user.clone());
        dirs.extend(system);
        Self {
            dirs,
            // `plugins install` writes where the admin pointed first, else the user folder
            install_dir: configured.first().cloned().or(user),
            developer_mode,
            caps: host::Limits::HIGHEST,
        }
    }

    /// Lower the caps on every plugin call (`None` keeps the host's own; the host never
    /// lets a cap exceed its highest).
    #[must_use]
    pub fn with_caps(mut self, memory_mib: Option<u64>, seconds: Option<u64>) -> Self {
        let highest = host::Limits::HIGHEST;
        self.caps = host::Limits {
            memory_mib: memory_mib.unwrap_or(highest.memory_mib),
            timeout_secs: seconds.unwrap_or(highest.timeout_secs),
        };
        self
    }
}

/// Whether `prefix/lib/rehydra/plugins` and every folder on the way there is root's or
/// this account's, and no one else may write it: an AppImage extracted into a shared
/// folder another user made first must not lend that user its plugins (signed ones, an
/// older version say, still load).
#[cfg(unix)]
fn ours(prefix: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let me = nix::unistd::geteuid().as_raw();
    let mut dir = prefix.to_path_buf();
    ["", "lib", "rehydra", "plugins"].iter().all(|part| {
        dir.push(part);
        std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && (m.uid() == 0 || m.uid() == me) && m.mode() & 0o022 == 0)
    })
}

#[cfg(not(unix))]
fn ours(_prefix: &std::path::Path) -> bool {
    false
}

/// `(name, value)` pairs (as shells and policies hold options) as plugin properties.
#[must_use]
pub fn properties(pairs: &[(String, String)]) -> Vec<Property> {
    Property::list(pairs)
}

fn plugin_err(e: impl Into<host::PluginError>) -> ApiError {
    use host::PluginError as E;
    let e = e.into();
    let code = match &e {
        E::NotInstalled(_) | E::Invalid(_) => Code::InvalidInput,
        E::Io { .. } => Code::Io,
        E::Malformed { .. }
        | E::Manifest { .. }
        | E::Unsigned { .. }
        | E::BadSignature { .. }
        | E::UnknownPublisher { .. }
        | E::ContractMismatch { .. }
        | E::Link { .. } => Code::PluginRejected,
        E::Failed {
            code: host::ErrorCode::Cancelled,
            ..
        } => Code::Cancelled,
        E::Trap { .. } | E::Timeout { .. } | E::MemoryLimit { .. } | E::Failed { .. } => {
            Code::PluginFailed
        }
    };
    ApiError::new(code, e.to_string())
}

mod admin;
mod bridge;
mod buckets;
mod credentials;
mod directories;
mod events;
pub use events::is_debug;
pub(crate) mod kube_clusters;
mod sql_servers;
mod verbs;

use bridge::*;
pub use credentials::EnvCredentials;
pub use directories::{Directory, PasswordSource};
use events::*;
pub use kube_clusters::{KubeCluster, KubeClusterView};
pub use sql_servers::{SqlLoginKind, SqlServer};

/// The plugin platform for one process: a host, plus the context's folders and catalog.
pub struct Plugins {
    ctx: Context,
    settings: PluginSettings,
    host: host::PluginHost,
}

impl Plugins {
    /// Start the plugin host.
    ///
    /// # Errors
    /// No catalog configured (grants live there), or the runtime cannot start.
    pub fn new(ctx: &Context, settings: PluginSettings) -> Result<Self> {
        if ctx.catalog.is_none() {
            return Err(ApiError::new(
                Code::InvalidInput,
                "plugins need the catalog (grants and trusted publishers are kept there); do not combine them with --no-catalog",
            ));
        }
        let cfg = host::HostConfig {
            cache_dir: ctx.cache_dir.as_ref().map(|d| d.join("plugins")),
            developer_mode: settings.developer_mode,
            max_concurrency: 4,
            caps: settings.caps,
        };
        Ok(Self {
            ctx: ctx.clone(),
            settings,
            host: host::PluginHost::new(cfg).map_err(plugin_err)?,
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn plugins_beside_the_binary_count_only_where_no_one_else_writes() {
        let d = tempfile::tempdir().unwrap();
        let prefix = d.path().join("squashfs-root");
        let plugins = prefix.join("lib/rehydra/plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        for dir in [
            &prefix,
            &prefix.join("lib"),
            &prefix.join("lib/rehydra"),
            &plugins,
        ] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        assert!(super::ours(&prefix));
        // a folder on the way others may write (a shared folder someone else made)
        std::fs::set_permissions(prefix.join("lib"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        assert!(!super::ours(&prefix));
        std::fs::set_permissions(prefix.join("lib"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // another account's folder (made first by another user), where this test can
        // give one away (as root)
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::chown(&plugins, Some(65534), None).unwrap();
            assert!(!super::ours(&prefix));
            std::os::unix::fs::chown(&plugins, Some(0), None).unwrap();
            assert!(super::ours(&prefix));
        }
        // a link on the way
        std::fs::rename(&plugins, prefix.join("lib/rehydra/elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", &plugins).unwrap();
        assert!(!super::ours(&prefix));
        // no such folder
        assert!(!super::ours(&d.path().join("none")));
    }
}
