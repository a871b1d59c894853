//! Rehydra's use-cases: the one API that the CLI and the desktop app both call.
//!
//! Shells stay thin: they parse input, call a function here, and render the DTO it
//! returns. Everything here is synchronous; the catalog (async sqlx) runs on a small
//! private runtime.

pub mod assessment;
pub mod azure;
mod catalog_sync;
mod copy;
mod dto;
mod error;
mod files;
mod instant;
pub mod inventory;
pub mod keychain;
mod location;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod plugins;
pub mod policies;
pub mod schedule;
pub mod service;
pub mod wizard;

use std::path::PathBuf;
use std::sync::Arc;

pub use catalog_sync::CatalogHandle;
pub use copy::CopyOutcome;
pub use dto::{BackupOutcome, ItemDto, RestorePointDto, RestorePointFilter};
pub use error::{ApiError, Code, Hint, Result};
pub use files::DiskLocation;
pub use instant::NbdSummary;
pub use location::{StorageCheck, backend_for, check_storage};
pub use rehydra_catalog::{JobRun, JobStatus, RepositoryRow as KnownRepository};
pub use rehydra_core::ItemKind;
pub use rehydra_core::KdfParams;
pub use rehydra_core::archiver::{BackupOptions, ChangedRanges, Exclude, Source, SourceItem};
pub use rehydra_core::check::{CheckOptions, CheckReport};
pub use rehydra_core::diff::{DiffEntry, DiffReport};
pub use rehydra_core::disk::Format as DiskFormat;
pub use rehydra_core::prune::{PruneOptions, PruneReport};
pub use rehydra_core::restorer::{DiskOutput, RestoreOptions, RestoreSummary};
pub use rehydra_core::retention::{Decision, KeepPolicy};
pub use rehydra_core::stats::RepoStats;
pub use rehydra_core::{Cancel, NoProgress, Progress};
pub use rehydra_core::{InitOptions, KeyInfo};
pub use rehydra_fs::{
    Entry as FileEntry, EntryKind as FileEntryKind, FileRestoreSummary, Partition,
};
pub use rehydra_storage::Bandwidth;

use rehydra_core::{OpenOptions, Repository};

/// Compile a folder backup's exclude patterns (and the one-file-system choice).
///
/// # Errors
/// [`Code::InvalidInput`] naming a pattern that does not parse.
pub fn exclude(patterns: &[String], one_file_system: bool) -> Result<Exclude> {
    Ok(Exclude::new(patterns, one_file_system)?)
}

/// The engine's rule for item names, as the shells call it before reading anything.
///
/// # Errors
/// [`Code::InvalidInput`] naming the first bad name.
pub fn check_item_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<()> {
    Ok(rehydra_core::check_item_names(names)?)
}

/// Where local state lives (catalog, chunk-index cache).
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Catalog file; `None` disables the catalog.
    pub catalog: Option<PathBuf>,
    /// Cache folder; `None` uses a temporary one per run.
    pub cache_dir: Option<PathBuf>,
    /// The catalog, once opened (leave it `Default::default()`).
    pub catalog_handle: catalog_sync::CatalogHandle,
    /// Upload and download limits for every repository opened with this context.
    pub bandwidth: rehydra_storage::Bandwidth,
}

impl Context {
    /// The defaults: catalog in the user's data folder, cache in the user's cache folder.
    pub fn user_default() -> Self {
        Self {
            catalog: dirs::data_local_dir().map(|d| d.join("rehydra").join("catalog.db")),
            cache_dir: dirs::cache_dir().map(|d| d.join("rehydra")),
            catalog_handle: Default::default(),
            bandwidth: Default::default(),
        }
    }
}

/// An open repository plus the context around it.
pub struct Session {
    repo: Repository,
    ctx: Context,
    location: String,
}

/// Create a repository.
///
/// # Errors
/// The location holds a repository already or cannot be written.
pub fn init(ctx: &Context, location: &str, password: &[u8], opts: InitOptions) -> Result<Session> {
    let backend = location::create_backend(ctx, location)?;
    let repo = Repository::init(backend, password, opts, open_options(ctx))?;
    Ok(Session::opened(ctx, location, repo))
}

fn open_options(ctx: &Context) -> OpenOptions {
    OpenOptions {
        cache_dir: ctx.cache_dir.clone(),
    }
}

/// Open a repository.
///
/// # Errors
/// Not a repository, wrong password, newer format.
pub fn open(ctx: &Context, location: &str, password: &[u8]) -> Result<Session> {
    let backend = backend_for(ctx, location)?;
    let repo = Repository::open(backend, password, open_options(ctx))?;
    Ok(Session::opened(ctx, location, repo))
}

impl Session {
    /// The session on a repository just opened or created at `location`, recorded among
    /// the recent repositories (best effort: the catalog is a cache).
    fn opened(ctx: &Context, location: &str, repo: Repository) -> Self {
        let s = Self {
            repo,
            ctx: ctx.clone(),
            location: location.to_string(),
        };
        s.catalog_touch();
        s
    }

    /// Announce a job that reads packs (restore, file-level access, instant recovery,
    /// a plugin's restore), like a backup: while the returned lock lives (it refreshes
    /// itself), no prune deletes a pack. Taken before the index is loaded. Best effort: a
    /// repository this process cannot write is read unannounced.
    pub(crate) fn reading(&self) -> Option<rehydra_core::Lock> {
        rehydra_core::Lock::backup(self.repo.backend().clone()).ok()
    }

    /// The engine repository (for advanced callers and tests).
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The location it was opened from.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Repository id.
    pub fn id(&self) -> String {
        self.repo.config().id.to_hex()
    }

    /// Back up sources as one restore point; the catalog records it.
    ///
    /// # Errors
    /// Source unreadable, storage failure, cancelled.
    pub fn backup(
        &self,
        items: Vec<SourceItem>,
        opts: &BackupOptions,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<BackupOutcome> {
        let run = self.catalog_start("backup");
        let r = rehydra_core::archiver::backup(&self.repo, items, opts, progress, cancel);
        match r {
            Ok(res) => {
                let dto = RestorePointDto::from_core(&res.id, &res.restore_point);
                let mut warnings = res.warnings;
                if let Err(e) = self.catalog_put(&dto) {
                    warnings.push(format!("catalog not updated: {e}"));
                }
                let status = if warnings.is_empty() {
                    rehydra_catalog::JobStatus::Succeeded
                } else {
                    rehydra_catalog::JobStatus::SucceededWithWarnings
                };
                let mut log = vec![summary_line(&dto)];
                log.extend(warnings.iter().map(|w| format!("warning: {w}")));
                self.catalog_finish(
                    run,
                    status,
                    &warnings.join("; "),
                    Some(&dto.id),
                    res.restore_point.summary.bytes,
                    &log,
                );
                Ok(BackupOutcome {
                    restore_point: dto,
                    warnings,
                })
            }
            Err(e) => {
                let e = ApiError::from(e);
                self.catalog_failed(run, &e, None, &[]);
                Err(e)
            }
        }
    }

    /// Back up one folder (or file) as the `files` workload; the asset is its path.
    ///
    /// # Errors
    /// As [`Session::backup`].
    pub fn backup_folder(
        &self,
        path: &str,
        tags: Vec<String>,
        exclude: Exclude,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<BackupOutcome> {
        let opts = BackupOptions {
            workload: "files".into(),
            asset: path.to_string(),
            tags,
            exclude,
            ..BackupOptions::default()
        };
        let items = vec![SourceItem {
            name: path.to_string(),
            source: Source::Path(path.into()),
        }];
        self.backup(items, &opts, progress, cancel)
    }

    /// Restore points, oldest first, filtered; refreshes the catalog in passing.
    ///
    /// # Errors
    /// Listing failed.
    pub fn restore_points(&self, filter: &RestorePointFilter) -> Result<Vec<RestorePointDto>> {
        let (all, _bad) = self.repo.restore_points()?;
        let dtos: Vec<RestorePointDto> = all
            .iter()
            .map(|(id, s)| RestorePointDto::from_core(id, s))
            .collect();
        let _ = self.catalog_replace(&dtos);
        Ok(dtos.into_iter().filter(|d| filter.matches(d)).collect())
    }

    /// Resolve `spec` (id prefix or `latest`, optionally within a filter).
    ///
    /// # Errors
    /// No or ambiguous match.
    pub fn resolve(
        &self,
        spec: &str,
        filter: &RestorePointFilter,
    ) -> Result<(rehydra_core::Id, rehydra_core::RestorePoint)> {
        Ok(self.repo.find_restore_point(spec, |s| {
            filter.matches(&RestorePointDto::from_core(&rehydra_core::Id::default(), s))
        })?)
    }

    /// Restore a restore point.
    ///
    /// # Errors
    /// Target exists (without overwrite), corrupt data, cancelled.
    pub fn restore(
        &self,
        spec: &str,
        filter: &RestorePointFilter,
        target: &std::path::Path,
        opts: &RestoreOptions,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<RestoreSummary> {
        let (id, snap) = self.resolve(spec, filter)?;
        let run = if opts.dry_run {
            None
        } else {
            self.catalog_start("restore")
        };
        let presence = self.reading();
        let r = rehydra_core::restorer::restore(&self.repo, &snap, target, opts, progress, cancel)
            .map_err(ApiError::from);
        drop(presence);
        match &r {
            Ok(s) => self.catalog_finish(
                run,
                rehydra_catalog::JobStatus::Succeeded,
                &target.display().to_string(),
                Some(&id.to_hex()),
                s.bytes,
                &[format!(
                    "restored {} of {} to {} ({} files, {} folders); every chunk verified",
                    human_bytes(s.bytes),
                    id.short(),
                    target.display(),
                    s.files,
                    s.dirs
                )],
            ),
            Err(e) => self.catalog_failed(run, e, Some(&id.to_hex()), &[]),
        }
        r
    }

    /// Compare two restore points.
    ///
    /// # Errors
    /// Unknown ids or unreadable data.
    pub fn diff(&self, a: &str, b: &str) -> Result<DiffReport> {
        let filter = RestorePointFilter::default();
        let (ida, sa) = self.resolve(a, &filter)?;
        let (idb, sb) = self.resolve(b, &filter)?;
        Ok(rehydra_core::diff::diff(
            self.repository(),
            (&ida, &sa),
            (&idb, &sb),
        )?)
    }

    /// Check the repository.
    ///
    /// # Errors
    /// The repository cannot be listed.
    pub fn check(&self, opts: &CheckOptions, progress: &dyn Progress) -> Result<CheckReport> {
        let run = self.catalog_start("check");
        let r = rehydra_core::check::check(&self.repo, opts, progress)?;
        let mut log: Vec<String> = r.errors.iter().map(|e| format!("error: {e}")).collect();
        if r.ok() {
            log.push(format!(
                "no problem found{}",
                if opts.read_data {
                    " (all data read)"
                } else {
                    " (structure)"
                }
            ));
        }
        self.catalog_finish(
            run,
            if r.ok() {
                rehydra_catalog::JobStatus::Succeeded
            } else {
                rehydra_catalog::JobStatus::Failed
            },
            &r.errors.join("; "),
            None,
            0,
            &log,
        );
        Ok(r)
    }

    /// Apply a retention policy; with `dry_run`, only report.
    ///
    /// # Errors
    /// Empty policy, listing or delete failure.
    pub fn forget(
        &self,
        policy: &KeepPolicy,
        filter: &RestorePointFilter,
        dry_run: bool,
    ) -> Result<Vec<Decision>> {
        if policy.is_empty() {
            return Err(ApiError::new(
                Code::InvalidInput,
                "no retention rule given: use --keep-last, --keep-daily … or --keep-within (forget never removes everything by default)",
            ));
        }
        let (all, _) = self.repo.restore_points()?;
        let selected: Vec<(rehydra_core::Id, rehydra_core::RestorePoint)> = all
            .into_iter()
            .filter(|(id, s)| filter.matches(&RestorePointDto::from_core(id, s)))
            .collect();
        let decisions = rehydra_core::retention::apply(&selected, policy, chrono::Utc::now());
        if !dry_run {
            for d in decisions.iter().filter(|d| !d.keep) {
                self.repo
                    .remove_restore_point(&rehydra_core::Id::parse(&d.id)?)?;
            }
            let _ = self.restore_points(&RestorePointFilter::default());
        }
        Ok(decisions)
    }

    /// Remove unused data.
    ///
    /// # Errors
    /// Locked, damaged repository, storage failure.
    pub fn prune(&self, opts: &PruneOptions, progress: &dyn Progress) -> Result<PruneReport> {
        let run = self.catalog_start("prune");
        let r = rehydra_core::prune::prune(&self.repo, opts, progress).map_err(ApiError::from);
        match &r {
            Ok(p) => self.catalog_finish(
                run,
                rehydra_catalog::JobStatus::Succeeded,
                &format!("{} packs deleted", p.deleted_packs),
                None,
                p.freed_bytes,
                &[],
            ),
            Err(e) => self.catalog_failed(run, e, None, &[]),
        }
        r
    }

    /// Key slots.
    ///
    /// # Errors
    /// Listing failed.
    pub fn keys(&self) -> Result<Vec<KeyInfo>> {
        Ok(self.repo.list_keys()?)
    }

    /// Add a key slot.
    ///
    /// # Errors
    /// Write failure.
    pub fn add_key(&self, password: &[u8], kdf: KdfParams, label: &str) -> Result<String> {
        Ok(self.repo.add_key(password, kdf, label)?)
    }

    /// Remove a key slot.
    ///
    /// # Errors
    /// Unknown or current slot.
    pub fn remove_key(&self, prefix: &str) -> Result<String> {
        Ok(self.repo.remove_key(prefix)?)
    }

    /// Change the current slot's password.
    ///
    /// # Errors
    /// Write failure.
    pub fn change_password(&mut self, password: &[u8], kdf: KdfParams) -> Result<String> {
        Ok(self.repo.change_password(password, kdf)?)
    }

    /// Repository statistics.
    ///
    /// # Errors
    /// Listing failed.
    pub fn stats(&self) -> Result<RepoStats> {
        Ok(rehydra_core::stats::stats(self.repository())?)
    }

    /// Recreate this repository's catalog rows from the repository.
    ///
    /// # Errors
    /// No catalog configured, or database failure.
    pub fn catalog_rebuild(&self) -> Result<usize> {
        if self.ctx.catalog.is_none() {
            return Err(ApiError::new(
                Code::InvalidInput,
                "no catalog is configured (--no-catalog was given)",
            ));
        }
        let (all, _) = self.repo.restore_points()?;
        let dtos: Vec<RestorePointDto> = all
            .iter()
            .map(|(id, s)| RestorePointDto::from_core(id, s))
            .collect();
        self.catalog_replace(&dtos)?;
        Ok(dtos.len())
    }

    /// Restore points as the catalog has them (no repository access).
    ///
    /// # Errors
    /// No catalog or database failure.
    pub fn catalog_restore_points(&self) -> Result<Vec<rehydra_catalog::RestorePointRow>> {
        catalog_sync::with_catalog(&self.ctx, |c| {
            let id = self.id();
            async move { c.restore_points(&id, None).await }
        })
    }

    /// Job history.
    ///
    /// # Errors
    /// No catalog or database failure.
    pub fn catalog_runs(&self, limit: i64) -> Result<Vec<JobRun>> {
        job_runs(&self.ctx, limit)
    }
}

/// The repositories this catalog has seen (created, opened or used for a job), the
/// most recent first, at the location each was last opened from: the app's and `catalog
/// repositories`' "recent repositories".
///
/// # Errors
/// No catalog or database failure.
pub fn known_repositories(ctx: &Context, limit: i64) -> Result<Vec<KnownRepository>> {
    catalog_sync::with_catalog(ctx, |c| async move { c.repositories(limit).await })
}

/// Job history without opening a repository.
///
/// # Errors
/// No catalog or database failure.
pub fn job_runs(ctx: &Context, limit: i64) -> Result<Vec<JobRun>> {
    catalog_sync::with_catalog(ctx, |c| async move { c.runs(limit).await })
}

/// The log of one job run (from the catalog), in order.
///
/// # Errors
/// No catalog, or it cannot be read.
pub fn job_log(ctx: &Context, run: i64) -> Result<Vec<String>> {
    catalog_sync::with_catalog(ctx, |c| async move { c.job_log(run).await })
}

/// One line describing a restore point made.
pub(crate) fn summary_line(d: &RestorePointDto) -> String {
    format!(
        "restore point {} of {} ({}): {}, {} new, {} stored, {:.1} s",
        d.short_id,
        d.asset,
        d.workload,
        d.read_summary(),
        human_bytes(d.new_bytes),
        human_bytes(d.stored_bytes),
        d.seconds
    )
}

/// Bytes for people (binary units).
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Shared reference-counted backend, for callers that build their own.
pub type SharedBackend = Arc<dyn rehydra_core::backend::Backend>;
