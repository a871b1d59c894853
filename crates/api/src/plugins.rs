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
use rehydra_core::manifest::{ItemKind as CoreKind, PluginRef, Snapshot};
use rehydra_core::progress::{Cancel, NoProgress, Progress};
use rehydra_core::restorer::{DiskOutput, RestoreOptions};
use rehydra_plugin_host as host;
use serde::Serialize;

pub use host::{
    Asset, AuditEvent, BackupReport, Finding, Grant, LoadInfo, Manifest, PluginInfo, Property,
    RemoteShell, RestorePlan, RestoreReport, Signer, Step, Target, VerifyReport,
};

use crate::catalog_sync::with_catalog;
use crate::dto::SnapshotDto;
use crate::error::{ApiError, Code, Result};
use crate::{Context, Session, SnapshotFilter};

/// An installed plugin as listed.
#[derive(Debug, Clone, Serialize)]
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

/// Details of one plugin: its manifest, requested capabilities and what is granted.
#[derive(Debug, Clone, Serialize)]
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
}

/// A requested capability as the admin sees it.
#[derive(Debug, Clone, Serialize)]
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
    pub snapshot: SnapshotDto,
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
    /// Where `install` puts plugins (the user folder).
    pub install_dir: Option<PathBuf>,
    /// Load unsigned plugins and untrusted publishers (never tampered files).
    pub developer_mode: bool,
}

impl PluginSettings {
    /// Configured folders (`REHYDRA_PLUGIN_PATH`-style list), then the user's, then the system's.
    pub fn with_defaults(configured: &[PathBuf], developer_mode: bool) -> Self {
        let user = dirs::data_local_dir().map(|d| d.join("rehydra").join("plugins"));
        let system = if cfg!(windows) {
            std::env::var_os("ProgramData")
                .map(|p| PathBuf::from(p).join("Rehydra").join("plugins"))
        } else {
            Some(PathBuf::from("/usr/lib/rehydra/plugins"))
        };
        let mut dirs = configured.to_vec();
        dirs.extend(user.clone());
        dirs.extend(system);
        Self {
            dirs,
            install_dir: user,
            developer_mode,
        }
    }
}

/// `(name, value)` pairs (as shells and policies hold options) as plugin properties.
#[must_use]
pub fn properties(pairs: &[(String, String)]) -> Vec<Property> {
    pairs
        .iter()
        .map(|(name, value)| Property {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn plugin_err(e: host::PluginError) -> ApiError {
    use host::PluginError as E;
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

fn host_err(e: &ApiError) -> host::HostError {
    let code = match e.code {
        Code::InvalidInput | Code::TargetExists => host::ErrorCode::InvalidInput,
        Code::Cancelled => host::ErrorCode::Cancelled,
        _ => host::ErrorCode::Failed,
    };
    host::HostError::new(code, e.message.clone())
}

fn kind(k: CoreKind) -> host::ItemKind {
    match k {
        CoreKind::Tree => host::ItemKind::Tree,
        CoreKind::Stream => host::ItemKind::Stream,
        CoreKind::Disk => host::ItemKind::Disk,
        CoreKind::Document => host::ItemKind::Document,
    }
}

/// Most log lines kept of one call; later ones are counted and reported in one line.
const LOG_MAX: usize = 10_000;

/// Collects audit events and log lines of one call. The host caps audit events per call;
/// log lines past [`LOG_MAX`] are dropped and counted.
#[derive(Default)]
struct Collector {
    audit: Mutex<Vec<AuditEvent>>,
    log: Mutex<(Vec<String>, u64)>,
}

impl Collector {
    /// The kept log lines, plus one final line saying how many were dropped, if any.
    fn lines(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| {
                let (lines, dropped) = &*l;
                let mut out = lines.clone();
                if *dropped > 0 {
                    out.push(format!(
                        "{dropped} further plugin log lines were dropped (at most {LOG_MAX} are kept per call)"
                    ));
                }
                out
            })
            .unwrap_or_default()
    }
}

impl host::Events for Collector {
    fn log(&self, plugin: &str, level: host::LogLevel, message: &str) {
        if let Ok(mut l) = self.log.lock() {
            if l.0.len() < LOG_MAX {
                l.0.push(format!("[{plugin}] {level:?}: {message}"));
            } else {
                l.1 += 1;
            }
        }
    }
    fn audit(&self, event: &AuditEvent) {
        if let Ok(mut a) = self.audit.lock() {
            a.push(event.clone());
        }
    }
}

/// Credentials from the environment: `REHYDRA_HTTP_AUTH_<HOST>` holds the whole
/// `Authorization` value for that host (`management.azure.com` → `..._MANAGEMENT_AZURE_COM`).
/// Values are passed to requests and never logged or shown to plugins.
///
/// The name is built so that two hosts never share a variable: the host must be a valid
/// RFC 1123 name (labels of letters, digits and inner hyphens, dot-separated, optionally
/// `:port`); `.` becomes `_`, `-` becomes `__`, `:` becomes `___`, letters are uppercased
/// (`a-b.example` → `A__B_EXAMPLE`, `a.b.example` → `A_B_EXAMPLE`). Hosts that are not
/// valid names (IPv6 literals, `_` in a label, a trailing dot …) get no credentials.
pub struct EnvCredentials;

impl EnvCredentials {
    /// The variable consulted for `host` (`name[:port]`), or `None` for a host that is not
    /// a valid RFC 1123 name (and so never gets credentials).
    #[must_use]
    pub fn variable(host: &str) -> Option<String> {
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return None;
        }
        if let Some(p) = port
            && (p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let mut v = String::from("REHYDRA_HTTP_AUTH_");
        for c in host.chars() {
            match c {
                '.' => v.push('_'),
                '-' => v.push_str("__"),
                ':' => v.push_str("___"),
                c => v.push(c.to_ascii_uppercase()),
            }
        }
        Some(v)
    }

    /// The `Authorization` value for `host` from `env` (a variable lookup).
    fn lookup(host: &str, env: impl Fn(&str) -> Option<String>) -> Option<String> {
        Self::variable(host)
            .and_then(|v| env(&v))
            .filter(|v| !v.is_empty())
    }
}

impl host::Credentials for EnvCredentials {
    fn authorization(&self, host: &str) -> std::result::Result<Option<String>, String> {
        Ok(Self::lookup(host, |v| std::env::var(v).ok()))
    }
}

/// Requests from the plugin thread to the engine thread.
enum Req {
    Ingest(
        String,
        host::Ingest,
        Sender<std::result::Result<host::ItemSummary, host::HostError>>,
    ),
    Items(Sender<std::result::Result<Vec<host::ItemInfo>, host::HostError>>),
    Previous(Sender<std::result::Result<Option<host::RestorePointInfo>, host::HostError>>),
    ReadPrevious(
        String,
        u64,
        Sender<std::result::Result<Vec<u8>, host::HostError>>,
    ),
    Read(
        String,
        u64,
        Sender<std::result::Result<Vec<u8>, host::HostError>>,
    ),
    Restore(
        String,
        PathBuf,
        bool,
        Sender<std::result::Result<u64, host::HostError>>,
    ),
}

/// The plugin's end of the engine channel.
struct Link(Sender<Req>);

fn gone() -> host::HostError {
    host::HostError::new(host::ErrorCode::Failed, "the engine session ended")
}

impl Link {
    fn ask<T>(
        &self,
        make: impl FnOnce(Sender<std::result::Result<T, host::HostError>>) -> Req,
    ) -> std::result::Result<T, host::HostError> {
        let (tx, rx) = bounded(1);
        self.0.send(make(tx)).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl host::EngineCapability for Link {
    fn ingest(
        &mut self,
        item: &str,
        source: host::Ingest,
    ) -> std::result::Result<host::ItemSummary, host::HostError> {
        self.ask(|tx| Req::Ingest(item.to_string(), source, tx))
    }
    fn items(&mut self) -> std::result::Result<Vec<host::ItemInfo>, host::HostError> {
        self.ask(Req::Items)
    }
    fn previous(&mut self) -> std::result::Result<Option<host::RestorePointInfo>, host::HostError> {
        self.ask(Req::Previous)
    }
    fn read_previous(
        &mut self,
        item: &str,
        max: u64,
    ) -> std::result::Result<Vec<u8>, host::HostError> {
        self.ask(|tx| Req::ReadPrevious(item.to_string(), max, tx))
    }
    fn read_item(&mut self, item: &str, max: u64) -> std::result::Result<Vec<u8>, host::HostError> {
        self.ask(|tx| Req::Read(item.to_string(), max, tx))
    }
    fn restore_item(
        &mut self,
        item: &str,
        target: &Path,
        overwrite: bool,
    ) -> std::result::Result<u64, host::HostError> {
        self.ask(|tx| Req::Restore(item.to_string(), target.to_path_buf(), overwrite, tx))
    }
}

fn not_now(what: &str) -> host::HostError {
    host::HostError::new(
        host::ErrorCode::Unsupported,
        format!("{what} is not available in this verb"),
    )
}

fn source(
    i: host::Ingest,
    previous: Option<&rehydra_core::Id>,
) -> std::result::Result<Source, host::HostError> {
    Ok(match i {
        host::Ingest::Tree(p) => Source::Path(p),
        host::Ingest::File(p) => Source::File(p),
        host::Ingest::Range {
            path,
            offset,
            length,
        } => Source::Range {
            path,
            offset,
            length,
        },
        host::Ingest::Disk { path, format } => Source::Disk {
            path,
            format: core_format(format),
        },
        host::Ingest::DiskChanged {
            path,
            format,
            since_item,
            ranges,
        } => Source::DiskChanged {
            path,
            format: core_format(format),
            changes: ChangedRanges {
                since: *previous.ok_or_else(|| {
                    host::HostError::new(
                        host::ErrorCode::NotFound,
                        "there is no previous restore point of this asset to take unchanged data from; ingest the whole disk",
                    )
                })?,
                item: since_item,
                ranges,
            },
        },
        host::Ingest::Document(d) => Source::Document(d),
        host::Ingest::Spooled(f) => Source::Reader(Box::new(f)),
    })
}

fn core_format(f: host::DiskFormat) -> rehydra_core::disk::Format {
    match f {
        host::DiskFormat::Auto => rehydra_core::disk::Format::Auto,
        host::DiskFormat::Raw => rehydra_core::disk::Format::Raw,
        host::DiskFormat::Vhdx => rehydra_core::disk::Format::Vhdx,
        host::DiskFormat::Vhd => rehydra_core::disk::Format::Vhd,
    }
}

/// The newest restore point of an asset (same workload), for incremental backups.
struct Previous<'a> {
    session: &'a Session,
    id: rehydra_core::Id,
    snap: Snapshot,
}

/// Serve backup requests into `sink` until the plugin's end hangs up.
fn serve_backup(rx: &Receiver<Req>, sink: &mut dyn ItemSink, previous: Option<&Previous<'_>>) {
    for req in rx.iter() {
        match req {
            Req::Ingest(name, src, reply) => {
                let r = source(src, previous.map(|p| &p.id)).and_then(|source| {
                    sink.add(SourceItem { name, source })
                        .map_err(|e| host_err(&ApiError::from(e)))
                });
                let _ = reply.send(r.map(|r| host::ItemSummary {
                    name: r.name,
                    kind: kind(r.kind),
                    size: r.size,
                    new_bytes: r.new_bytes,
                }));
            }
            Req::Items(reply) => drop(reply.send(Err(not_now("reading items")))),
            Req::Read(_, _, reply) => drop(reply.send(Err(not_now("reading items")))),
            Req::Restore(_, _, _, reply) => drop(reply.send(Err(not_now("restoring")))),
            Req::Previous(reply) => {
                drop(reply.send(Ok(previous.map(|p| point_info(&p.id, &p.snap)))));
            }
            Req::ReadPrevious(name, max, reply) => drop(reply.send(match previous {
                Some(p) => read_item(p.session, &p.snap, &name, max),
                None => Err(host::HostError::new(
                    host::ErrorCode::NotFound,
                    "there is no previous restore point of this asset",
                )),
            })),
        }
    }
}

/// A restore point as the plugin contract describes it.
fn point_info(id: &rehydra_core::Id, snap: &Snapshot) -> host::RestorePointInfo {
    host::RestorePointInfo {
        id: id.to_hex(),
        time: snap.time.to_rfc3339(),
        workload: snap.workload.clone(),
        asset: snap.asset.clone(),
        plugin_id: snap.plugin.id.clone(),
        plugin_version: snap.plugin.version.clone(),
        consistency: snap.consistency.clone(),
        items: item_infos(snap),
        tags: snap.tags.clone(),
    }
}

/// The items of a restore point as the plugin contract lists them.
fn item_infos(snap: &Snapshot) -> Vec<host::ItemInfo> {
    snap.items
        .iter()
        .map(|i| host::ItemInfo {
            name: i.name.clone(),
            kind: kind(i.kind),
            size: i.size,
        })
        .collect()
}

/// Serve restore / verify requests from one restore point.
fn serve_restore(
    rx: &Receiver<Req>,
    session: &Session,
    snap: &Snapshot,
    progress: &dyn Progress,
    cancel: &Cancel,
) {
    for req in rx.iter() {
        match req {
            Req::Ingest(_, _, reply) => drop(reply.send(Err(not_now("storing")))),
            Req::Previous(reply) => drop(reply.send(Err(not_now("the previous restore point")))),
            Req::ReadPrevious(_, _, reply) => {
                drop(reply.send(Err(not_now("the previous restore point"))));
            }
            Req::Items(reply) => drop(reply.send(Ok(item_infos(snap)))),
            Req::Read(name, max, reply) => drop(reply.send(read_item(session, snap, &name, max))),
            Req::Restore(name, target, overwrite, reply) => {
                let opts = RestoreOptions {
                    overwrite,
                    disk_format: disk_output_for(&target),
                    item: Some(name),
                    ..RestoreOptions::default()
                };
                let r = rehydra_core::restorer::restore(
                    session.repository(),
                    snap,
                    &target,
                    &opts,
                    progress,
                    cancel,
                )
                .map(|s| s.bytes)
                .map_err(|e| host_err(&ApiError::from(e)));
                let _ = reply.send(r);
            }
        }
    }
}

/// A disk item restored to `*.vhdx` / `*.vhd` is written as that container, anything
/// else as the raw virtual disk (the contract documents this on `restore-item`).
fn disk_output_for(target: &Path) -> DiskOutput {
    match target
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("vhdx") => DiskOutput::Vhdx,
        Some("vhd") => DiskOutput::Vhd,
        _ => DiskOutput::Raw,
    }
}

/// A small item, restored (and verified chunk by chunk) into a private temporary folder.
fn read_item(
    session: &Session,
    snap: &Snapshot,
    name: &str,
    max: u64,
) -> std::result::Result<Vec<u8>, host::HostError> {
    let item = snap.items.iter().find(|i| i.name == name).ok_or_else(|| {
        host::HostError::new(
            host::ErrorCode::NotFound,
            format!("the restore point has no item `{name}`"),
        )
    })?;
    if !matches!(item.kind, CoreKind::Document | CoreKind::Stream) || item.size > max {
        return Err(host::HostError::new(
            host::ErrorCode::InvalidInput,
            format!(
                "item `{name}` is not a document or stream of at most {max} bytes; restore it instead"
            ),
        ));
    }
    let dir = tempfile::tempdir()
        .map_err(|e| host::HostError::new(host::ErrorCode::Failed, e.to_string()))?;
    let out = dir.path().join("item");
    let opts = RestoreOptions {
        item: Some(name.to_string()),
        ..RestoreOptions::default()
    };
    rehydra_core::restorer::restore(
        session.repository(),
        snap,
        &out,
        &opts,
        &NoProgress,
        &Cancel::default(),
    )
    .map_err(|e| host_err(&ApiError::from(e)))?;
    std::fs::read(&out).map_err(|e| {
        host::HostError::new(
            host::ErrorCode::Failed,
            format!("reading restored item: {e}"),
        )
    })
}

/// Refuse to replace `installed` by a lower version (or one that cannot be compared with
/// it) unless `allow_downgrade`.
fn check_upgrade(installed: &Manifest, new: &Manifest, allow_downgrade: bool) -> Result<()> {
    if allow_downgrade {
        return Ok(());
    }
    let parse = |v: &str| semver::Version::parse(v.trim_start_matches('v')).ok();
    let why = match (parse(&installed.version), parse(&new.version)) {
        (Some(old), Some(n)) if n >= old => return Ok(()),
        (Some(_), Some(_)) => "is older than",
        _ => "cannot be compared with",
    };
    Err(ApiError::new(
        Code::InvalidInput,
        format!(
            "plugin `{}` {} {why} the installed {}; pass --allow-downgrade to install it anyway",
            new.id, new.version, installed.version
        ),
    ))
}

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
        };
        Ok(Self {
            ctx: ctx.clone(),
            settings,
            host: host::PluginHost::new(cfg).map_err(plugin_err)?,
        })
    }

    fn trusted(&self) -> Result<Vec<host::TrustedKey>> {
        let t = with_catalog(&self.ctx, |c| async move { c.trusted().await })?;
        Ok(t.into_iter()
            .map(|(publisher, key)| host::TrustedKey { publisher, key })
            .collect())
    }

    /// The grants of a loaded plugin: only those given to its id *and* its signer. Legacy
    /// grants (from before grants recorded their signer) are bound to the signer of the
    /// file loaded now, the first time it is used (see migration 0006).
    fn grants(&self, p: &host::LoadedPlugin) -> Result<host::Grants> {
        let (id, signer) = (p.manifest.id.clone(), p.signer.grant_key());
        let specs = with_catalog(&self.ctx, |c| async move {
            c.claim_legacy_grants(&id, &signer).await?;
            c.grants(&id, &signer).await
        })?;
        Ok(host::Grants(
            specs.iter().filter_map(|s| Grant::parse(s).ok()).collect(),
        ))
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for d in &self.settings.dirs {
            if let Ok(rd) = std::fs::read_dir(d) {
                let mut v: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                    .collect();
                v.sort();
                out.extend(v);
            }
        }
        out
    }

    fn find(&self, id: &str) -> Result<PathBuf> {
        self.settings
            .dirs
            .iter()
            .map(|d| d.join(format!("{id}.wasm")))
            .find(|p| p.is_file())
            .ok_or_else(|| plugin_err(host::PluginError::NotInstalled(id.into())))
    }

    /// Load an installed plugin.
    ///
    /// # Errors
    /// Not installed, or refused (signature, publisher, contract, malformed).
    pub fn load(&self, id: &str) -> Result<host::LoadedPlugin> {
        let path = self.find(id)?;
        let p = self
            .host
            .load(&path, &self.trusted()?)
            .map_err(plugin_err)?;
        if p.manifest.id != id {
            return Err(ApiError::new(
                Code::PluginRejected,
                format!(
                    "{} holds plugin `{}`, not `{id}`; reinstall it with `rehydra plugins install`",
                    path.display(),
                    p.manifest.id
                ),
            ));
        }
        Ok(p)
    }

    fn entry(path: &Path, r: std::result::Result<&host::LoadedPlugin, String>) -> PluginEntry {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match r {
            Ok(p) => PluginEntry {
                id: p.manifest.id.clone(),
                path: path.to_path_buf(),
                version: Some(p.manifest.version.clone()),
                publisher: Some(p.manifest.publisher.clone()),
                workloads: p.manifest.workloads.clone(),
                signer: Some(p.signer.clone()),
                error: None,
            },
            Err(e) => PluginEntry {
                id: stem,
                path: path.to_path_buf(),
                version: None,
                publisher: None,
                workloads: vec![],
                signer: None,
                error: Some(e),
            },
        }
    }

    /// Every plugin file in the plugin folders; ones that cannot load say why.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn list(&self) -> Result<Vec<PluginEntry>> {
        let trusted = self.trusted()?;
        Ok(self
            .files()
            .iter()
            .map(|f| {
                Self::entry(
                    f,
                    self.host
                        .load(f, &trusted)
                        .as_ref()
                        .map_err(ToString::to_string),
                )
            })
            .collect())
    }

    /// Manifest, capabilities and grants of an installed plugin.
    ///
    /// # Errors
    /// Not installed or refused.
    pub fn info(&self, id: &str) -> Result<PluginDetails> {
        let p = self.load(id)?;
        let grants = self.grants(&p)?;
        let capabilities = p
            .manifest
            .capabilities
            .iter()
            .map(|c| CapabilityView {
                kind: c.kind.name().into(),
                allows: c.kind.display_name().into(),
                scope: c.scope.clone(),
                reason: c.reason.clone(),
                granted: grants
                    .0
                    .iter()
                    .filter(|g| g.kind == c.kind)
                    .map(Grant::spec)
                    .collect(),
            })
            .collect();
        Ok(PluginDetails {
            entry: Self::entry(&p.path, Ok(&p)),
            manifest: p.manifest.clone(),
            capabilities,
            grants: grants.0.iter().map(Grant::spec).collect(),
            load: p.load,
        })
    }

    /// Verify a plugin file and copy it into the user's plugin folder as `<id>.wasm`.
    /// Replacing an installed plugin needs `replace`; replacing it with a lower version
    /// (semver of the manifests) also needs `allow_downgrade`. Grants stay with the signer
    /// they were given to: a file signed by another key starts with none.
    ///
    /// # Errors
    /// Refused by the host; a different file with that id is installed and `replace` is
    /// off; a downgrade (or versions that cannot be compared) without `allow_downgrade`.
    pub fn install(
        &self,
        file: &Path,
        replace: bool,
        allow_downgrade: bool,
    ) -> Result<PluginEntry> {
        let trusted = self.trusted()?;
        let p = self.host.load(file, &trusted).map_err(plugin_err)?;
        let dir = self.settings.install_dir.clone().ok_or_else(|| {
            ApiError::new(
                Code::InvalidInput,
                "no user plugin folder is known on this system",
            )
        })?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| ApiError::new(Code::Io, format!("creating {}: {e}", dir.display())))?;
        let dest = dir.join(format!("{}.wasm", p.manifest.id));
        let bytes = std::fs::read(file)
            .map_err(|e| ApiError::new(Code::Io, format!("reading {}: {e}", file.display())))?;
        if let Ok(old) = std::fs::read(&dest) {
            if old != bytes && !replace {
                return Err(ApiError::new(
                    Code::TargetExists,
                    format!(
                        "plugin `{}` is already installed at {}; pass --replace to upgrade it",
                        p.manifest.id,
                        dest.display()
                    ),
                ));
            }
            if old != bytes
                && let Ok(installed) = self.host.load(&dest, &trusted)
            {
                check_upgrade(&installed.manifest, &p.manifest, allow_downgrade)?;
                // legacy grants belong to the file installed until now, not to this one
                let (id, signer) = (installed.manifest.id.clone(), installed.signer.grant_key());
                with_catalog(&self.ctx, |c| async move {
                    c.claim_legacy_grants(&id, &signer).await
                })?;
            }
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)
            .map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
        use std::io::Write;
        tmp.write_all(&bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| ApiError::new(Code::Io, format!("writing {}: {e}", dest.display())))?;
        tmp.persist(&dest).map_err(|e| {
            ApiError::new(
                Code::Io,
                format!("installing {}: {}", dest.display(), e.error),
            )
        })?;
        Ok(Self::entry(&dest, Ok(&p)))
    }

    /// Grant capabilities (`kind[:scope]`) the plugin's manifest asks for. Grants belong
    /// to the plugin id *and* the key that signed the installed file: a package of the same
    /// id from another publisher gets none of them.
    ///
    /// # Errors
    /// Unknown plugin, malformed grant, a kind the plugin did not ask for.
    pub fn grant(&self, id: &str, specs: &[String]) -> Result<Vec<String>> {
        let p = self.load(id)?;
        let mut parsed = Vec::new();
        for s in specs {
            let g = Grant::parse(s).map_err(plugin_err)?;
            if !p.manifest.requests(g.kind) {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "plugin `{id}` did not ask for `{}`; it asks for: {}",
                        g.kind.name(),
                        p.manifest
                            .capabilities
                            .iter()
                            .map(|c| c.kind.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            parsed.push(g.spec());
        }
        let (id2, signer, specs2) = (id.to_string(), p.signer.grant_key(), parsed.clone());
        with_catalog(&self.ctx, |c| async move {
            c.claim_legacy_grants(&id2, &signer).await?;
            for s in &specs2 {
                c.grant(&id2, &signer, s).await?;
            }
            Ok(())
        })?;
        Ok(parsed)
    }

    /// Revoke grants (all of them when `specs` is empty); returns how many.
    ///
    /// # Errors
    /// Malformed grant, catalog failure.
    pub fn revoke(&self, id: &str, specs: &[String]) -> Result<u64> {
        let id = id.to_string();
        let parsed: Vec<String> = specs
            .iter()
            .map(|s| Grant::parse(s).map(|g| g.spec()))
            .collect::<std::result::Result<_, _>>()
            .map_err(plugin_err)?;
        with_catalog(&self.ctx, |c| async move {
            if parsed.is_empty() {
                return c.revoke(&id, None).await;
            }
            let mut n = 0;
            for s in &parsed {
                n += c.revoke(&id, Some(s)).await?;
            }
            Ok(n)
        })
    }

    /// Trust a publisher's signing key.
    ///
    /// # Errors
    /// Malformed key.
    pub fn trust(&self, publisher: &str, key: &str) -> Result<()> {
        host::parse_public_key(key).map_err(plugin_err)?;
        let (p, k) = (publisher.to_string(), key.trim().to_ascii_lowercase());
        with_catalog(&self.ctx, |c| async move { c.trust(&p, &k).await })
    }

    /// Stop trusting a key; returns whether it was trusted.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn untrust(&self, publisher: &str, key: &str) -> Result<bool> {
        let (p, k) = (publisher.to_string(), key.trim().to_ascii_lowercase());
        Ok(with_catalog(&self.ctx, |c| async move { c.untrust(&p, &k).await })? > 0)
    }

    /// Trusted publisher keys.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn trusted_keys(&self) -> Result<Vec<host::TrustedKey>> {
        self.trusted()
    }

    /// Configure how to reach a command target (replaces one with the same name).
    ///
    /// # Errors
    /// Invalid target fields; catalog failure.
    pub fn set_target(&self, target: &host::Target) -> Result<()> {
        target.validate().map_err(plugin_err)?;
        let spec =
            serde_json::to_string(target).map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
        let name = target.name.clone();
        with_catalog(
            &self.ctx,
            |c| async move { c.set_target(&name, &spec).await },
        )
    }

    /// Forget a command target; returns whether it was configured.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn remove_target(&self, name: &str) -> Result<bool> {
        let name = name.to_string();
        with_catalog(&self.ctx, |c| async move { c.remove_target(&name).await })
    }

    /// Configured command targets.
    ///
    /// # Errors
    /// Catalog failure; a stored target that no longer parses.
    pub fn targets(&self) -> Result<Vec<host::Target>> {
        let rows = with_catalog(&self.ctx, |c| async move { c.targets().await })?;
        rows.into_iter()
            .map(|(name, spec)| serde_json::from_str(&spec).map_err(|e| ApiError::new(Code::Io, format!("command target `{name}` in the catalog is damaged ({e}); add it again with `rehydra plugins target add`"))))
            .collect()
    }

    /// The newest audit entries.
    ///
    /// # Errors
    /// Catalog failure.
    pub fn audit_log(&self, plugin: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
        let p = plugin.map(str::to_string);
        with_catalog(&self.ctx, |c| async move {
            c.audit_log(p.as_deref(), limit).await
        })
    }

    fn invocation(
        &self,
        p: &host::LoadedPlugin,
        engine: Option<Box<dyn host::EngineCapability>>,
        cancel: Option<Arc<std::sync::atomic::AtomicBool>>,
    ) -> Result<(host::Invocation, Arc<Collector>)> {
        let events = Arc::new(Collector::default());
        let mut inv = host::Invocation::new(self.grants(p)?);
        inv.targets = self.targets()?;
        inv.engine = engine;
        inv.credentials = crate::azure::AzureCredentials::new(&self.ctx)?;
        inv.events = events.clone();
        if let Some(c) = cancel {
            inv.cancel = c;
        }
        Ok((inv, events))
    }

    /// Write the audit events of a call to the catalog and return its log lines.
    fn settle(&self, events: &Collector) -> Vec<String> {
        let audit: Vec<AuditRow> = events
            .audit
            .lock()
            .map(|a| {
                a.iter()
                    .map(|e| AuditRow {
                        time: e.time.clone(),
                        plugin_id: e.plugin.clone(),
                        verb: e.verb.clone(),
                        capability: e.capability.clone(),
                        target: e.target.clone(),
                        allowed: e.allowed,
                        detail: e.detail.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !audit.is_empty() {
            let _ = with_catalog(&self.ctx, |c| async move { c.audit(&audit).await });
        }
        events.lines()
    }

    fn run<T>(
        &self,
        id: &str,
        engine: Option<Box<dyn host::EngineCapability>>,
        f: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>,
    ) -> Result<(T, Vec<String>)> {
        let p = self.load(id)?;
        let (inv, events) = self.invocation(&p, engine, None)?;
        let r = f(&self.host, &p, inv);
        let log = self.settle(&events);
        Ok((r.map_err(plugin_err)?, log))
    }

    /// `describe`.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn describe(&self, id: &str) -> Result<PluginInfo> {
        Ok(self.run(id, None, |h, p, inv| h.describe(p, inv))?.0)
    }

    /// `discover` with settings.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn discover(&self, id: &str, settings: &[Property]) -> Result<(Vec<Asset>, Vec<String>)> {
        self.run(id, None, |h, p, inv| h.discover(p, inv, settings))
    }

    /// `discover`, then `assess` everything found.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn assess(&self, id: &str, settings: &[Property]) -> Result<(Vec<Finding>, Vec<String>)> {
        let (assets, mut log) = self.discover(id, settings)?;
        let (f, l) = self.run(id, None, |h, p, inv| h.assess(p, inv, &assets, settings))?;
        log.extend(l);
        Ok((f, log))
    }

    /// Back up `asset` (an asset id as `discover` reports it) through the plugin.
    ///
    /// # Errors
    /// Load or call failure, engine failure; nothing is committed unless the plugin succeeds.
    pub fn backup(
        &self,
        session: &Session,
        id: &str,
        asset: &str,
        options: &[Property],
        tags: &[String],
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<PluginBackupOutcome> {
        let p = self.load(id)?;
        let asset = Asset {
            kind: String::new(),
            id: asset.into(),
            name: asset.into(),
            parent: None,
            properties: vec![],
            flags: vec![],
        };
        let (tx, rx) = unbounded();
        let (inv, events) = self.invocation(&p, Some(Box::new(Link(tx))), Some(cancel.shared()))?;
        let opts = BackupOptions {
            workload: p.manifest.workloads.first().cloned().unwrap_or_default(),
            asset: asset.id.clone(),
            plugin: PluginRef {
                id: p.manifest.id.clone(),
                version: p.manifest.version.clone(),
            },
            tags: tags.to_vec(),
            // a disk image the plugin names may refer only to files it may read itself
            confine: Some(inv.grants.read_roots()),
            ..BackupOptions::default()
        };
        // the newest restore point of this asset and workload: the base for incremental work
        let previous = session
            .resolve(
                "latest",
                &SnapshotFilter {
                    asset: Some(opts.asset.clone()),
                    workload: Some(opts.workload.clone()),
                    ..SnapshotFilter::default()
                },
            )
            .ok()
            .filter(|(_, s)| s.plugin.id == p.manifest.id)
            .map(|(id, snap)| Previous { session, id, snap });
        let mut report = None;
        let mut plugin_failure = None;
        let run = session.catalog_start("backup");
        let r = rehydra_core::archiver::backup_with(
            session.repository(),
            &opts,
            progress,
            cancel,
            |sink| {
                let out = std::thread::scope(|s| {
                    let plugin_thread = s.spawn(|| self.host.backup(&p, inv, &asset, options));
                    serve_backup(&rx, sink, previous.as_ref());
                    plugin_thread.join()
                });
                match out {
                    Ok(Ok(rep)) => {
                        let finish = Finish {
                            consistency: Some(rep.consistency.clone()),
                            warnings: rep.warnings.clone(),
                        };
                        report = Some(rep);
                        Ok(finish)
                    }
                    Ok(Err(e)) => {
                        let msg = e.to_string();
                        plugin_failure = Some(e);
                        Err(rehydra_core::Error::new(
                            rehydra_core::ErrorKind::InvalidInput,
                            msg,
                        ))
                    }
                    Err(_) => Err(rehydra_core::Error::new(
                        rehydra_core::ErrorKind::Io,
                        "the plugin thread panicked",
                    )),
                }
            },
        );
        let log = self.settle(&events);
        let res = match r {
            Ok(res) => res,
            Err(e) => {
                // the plugin's own error keeps its code (failed, stopped at a limit, cancelled)
                let e = plugin_failure.map_or_else(|| ApiError::from(e), plugin_err);
                session.catalog_failed(run, &e, None, &log);
                return Err(e);
            }
        };
        let dto = SnapshotDto::from_core(&res.id, &res.snapshot);
        let mut warnings = res.warnings;
        if let Err(e) = session.catalog_put(&dto) {
            warnings.push(format!("catalog not updated: {e}"));
        }
        let mut lines = log.clone();
        lines.push(crate::summary_line(&dto));
        lines.extend(warnings.iter().map(|w| format!("warning: {w}")));
        session.catalog_finish(
            run,
            if warnings.is_empty() {
                "succeeded"
            } else {
                "succeeded-with-warnings"
            },
            &warnings.join("; "),
            Some(&dto.id),
            res.snapshot.summary.bytes,
            &lines,
        );
        let report = report.unwrap_or(BackupReport {
            consistency: res.snapshot.consistency.clone(),
            warnings: vec![],
        });
        Ok(PluginBackupOutcome {
            snapshot: dto,
            report,
            warnings,
            log,
        })
    }

    fn request(
        session: &Session,
        spec: &str,
        target: &str,
        options: &[Property],
    ) -> Result<(Snapshot, host::RestoreRequest)> {
        let (id, snap) = session.resolve(spec, &SnapshotFilter::default())?;
        let rp = point_info(&id, &snap);
        Ok((
            snap,
            host::RestoreRequest {
                restore_point: rp,
                target: target.into(),
                options: options.to_vec(),
            },
        ))
    }

    fn with_restore_engine<T: Send>(
        &self,
        session: &Session,
        snap: &Snapshot,
        progress: &dyn Progress,
        cancel: &Cancel,
        call: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>
        + Send,
    ) -> Result<(T, Vec<String>)> {
        let (r, log) = self.with_restore_engine_logged(session, snap, progress, cancel, call);
        Ok((r?, log))
    }

    /// As [`Self::with_restore_engine`], keeping the plugin's log also when it fails (the
    /// log is empty when the plugin could not be started).
    fn with_restore_engine_logged<T: Send>(
        &self,
        session: &Session,
        snap: &Snapshot,
        progress: &dyn Progress,
        cancel: &Cancel,
        call: impl FnOnce(&host::PluginHost, &host::LoadedPlugin, host::Invocation) -> host::Result<T>
        + Send,
    ) -> (Result<T>, Vec<String>) {
        let id = snap.plugin.id.clone();
        if id == "builtin" {
            let e = ApiError::new(
                Code::InvalidInput,
                "this restore point was made by the engine itself, not a plugin; use `rehydra restore`",
            );
            return (Err(e), Vec::new());
        }
        let started = self.load(&id).and_then(|p| {
            let (tx, rx) = unbounded();
            let (inv, events) =
                self.invocation(&p, Some(Box::new(Link(tx))), Some(cancel.shared()))?;
            Ok((p, rx, inv, events))
        });
        let (p, rx, inv, events) = match started {
            Ok(s) => s,
            Err(e) => return (Err(e), Vec::new()),
        };
        let presence = session.reading();
        let out = std::thread::scope(|s| {
            let t = s.spawn(|| call(&self.host, &p, inv));
            serve_restore(&rx, session, snap, progress, cancel);
            t.join()
        });
        drop(presence);
        let log = self.settle(&events);
        match out {
            Ok(r) => (r.map_err(plugin_err), log),
            Err(_) => (
                Err(ApiError::new(Code::Io, "the plugin thread panicked")),
                log,
            ),
        }
    }

    /// The plugin's restore plan (steps, warnings, blockers) and its log; touches nothing.
    ///
    /// # Errors
    /// Unknown restore point, load or call failure.
    pub fn plan_restore(
        &self,
        session: &Session,
        spec: &str,
        target: &str,
        options: &[Property],
    ) -> Result<(RestorePlan, Vec<String>)> {
        let (snap, req) = Self::request(session, spec, target, options)?;
        self.with_restore_engine(
            session,
            &snap,
            &NoProgress,
            &Cancel::default(),
            |h, p, inv| h.plan_restore(p, inv, &req),
        )
    }

    /// Plan a restore with the plugin that made the restore point; with `execute`, and
    /// only if the plan has no blockers, run it.
    ///
    /// # Errors
    /// Blockers in the plan (nothing touched), load or call failure.
    pub fn restore(
        &self,
        session: &Session,
        spec: &str,
        target: &str,
        options: &[Property],
        execute: bool,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<PluginRestoreOutcome> {
        let (plan, mut log) = self.plan_restore(session, spec, target, options)?;
        let (snap, req) = Self::request(session, spec, target, options)?;
        if !plan.blockers.is_empty() {
            return Err(ApiError::new(
                Code::TargetExists,
                format!(
                    "the restore plan is blocked, nothing was touched: {}",
                    plan.blockers.join("; ")
                ),
            ));
        }
        if !execute {
            return Ok(PluginRestoreOutcome {
                plan,
                report: None,
                log,
            });
        }
        let run = session.catalog_start("restore");
        let (r, l) =
            self.with_restore_engine_logged(session, &snap, progress, cancel, |h, p, inv| {
                h.restore(p, inv, &req)
            });
        log.extend(l);
        match r {
            Ok(report) => {
                let mut lines = log.clone();
                lines.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
                lines.push(format!(
                    "restored {} of {} to {target}",
                    crate::human_bytes(report.bytes),
                    &req.restore_point.id[..8.min(req.restore_point.id.len())]
                ));
                session.catalog_finish(
                    run,
                    "succeeded",
                    target,
                    Some(&req.restore_point.id),
                    report.bytes,
                    &lines,
                );
                Ok(PluginRestoreOutcome {
                    plan,
                    report: Some(report),
                    log,
                })
            }
            Err(e) => {
                session.catalog_failed(run, &e, Some(&req.restore_point.id), &log);
                Err(e)
            }
        }
    }

    /// Verify a restore point with the plugin that made it.
    ///
    /// # Errors
    /// Load or call failure.
    pub fn verify(&self, session: &Session, spec: &str) -> Result<(VerifyReport, Vec<String>)> {
        let (snap, req) = Self::request(session, spec, "", &[])?;
        self.with_restore_engine(
            session,
            &snap,
            &NoProgress,
            &Cancel::default(),
            |h, p, inv| h.verify(p, inv, &req),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_variables_are_unambiguous() {
        let v = |h: &str| EnvCredentials::variable(h);
        assert_eq!(
            v("management.azure.com").as_deref(),
            Some("REHYDRA_HTTP_AUTH_MANAGEMENT_AZURE_COM"),
            "the variable of ordinary hosts is unchanged"
        );
        assert_eq!(
            v("127.0.0.1").as_deref(),
            Some("REHYDRA_HTTP_AUTH_127_0_0_1")
        );
        assert_eq!(
            v("a-b.example").as_deref(),
            Some("REHYDRA_HTTP_AUTH_A__B_EXAMPLE")
        );
        assert_eq!(
            v("a.b.example").as_deref(),
            Some("REHYDRA_HTTP_AUTH_A_B_EXAMPLE")
        );
        assert_ne!(v("management-azure.com"), v("management.azure.com"));
        assert_eq!(
            v("h.example:8443").as_deref(),
            Some("REHYDRA_HTTP_AUTH_H_EXAMPLE___8443")
        );
        assert_ne!(v("a--b.c"), v("a.b.c"));
        for bad in [
            "", "-a.b", "a-.b", "a..b", "a.b.", "a_b.c", "[::1]", "a.b:", "a.b:x", "a b",
        ] {
            assert_eq!(v(bad), None, "{bad:?} gets no credentials");
        }
        // a request to the hyphenated host does not carry the dotted host's token
        let env = |var: &str| {
            (var == "REHYDRA_HTTP_AUTH_MANAGEMENT_AZURE_COM").then(|| "Bearer arm".to_string())
        };
        assert_eq!(
            EnvCredentials::lookup("management.azure.com", env).as_deref(),
            Some("Bearer arm")
        );
        assert_eq!(EnvCredentials::lookup("management-azure.com", env), None);
        assert_eq!(EnvCredentials::lookup("management_azure.com", env), None);
    }

    #[test]
    fn collector_says_how_many_log_lines_it_dropped() {
        use host::Events as _;
        let c = Collector::default();
        for i in 0..LOG_MAX + 5 {
            c.log("p", host::LogLevel::Info, &format!("line {i}"));
        }
        let lines = c.lines();
        assert_eq!(lines.len(), LOG_MAX + 1);
        assert!(
            lines[LOG_MAX].starts_with("5 further plugin log lines were dropped"),
            "{}",
            lines[LOG_MAX]
        );
        let quiet = Collector::default();
        quiet.log("p", host::LogLevel::Info, "one");
        assert_eq!(quiet.lines().len(), 1);
    }
}
