//! Bridge from the synchronous API to the async catalog.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rehydra_catalog::{Catalog, CatalogError, JobStatus, RestorePointRow};

use crate::dto::RestorePointDto;
use crate::error::{ApiError, Code, Result};
use crate::{Context, Session};

/// The catalog of a [`Context`], opened once (its runtime, connection pool and migration
/// check) on first use and shared by the context's clones.
#[derive(Clone, Default)]
pub struct CatalogHandle(Arc<Mutex<Option<Arc<Opened>>>>);

impl std::fmt::Debug for CatalogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogHandle")
    }
}

struct Opened {
    path: PathBuf,
    /// Which file was opened: a catalog deleted or replaced meanwhile is opened again.
    file: Option<FileId>,
    catalog: Catalog,
    /// One worker: the catalog's I/O is small and the callers are synchronous.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        let Some(rt) = self.rt.take() else { return };
        // Outside async code (a command of the CLI ending, the app closing a repository's
        // context) the connections are closed before going on: SQLite folds its
        // write-ahead log into the file, and no connection thread is still writing when
        // the process ends. (Wine kills a process with SIGKILL when its threads outlive
        // its exit by half a second; a catalog checkpoint under load did.) Inside async
        // code dropping never blocks: the connections close as they are dropped.
        if tokio::runtime::Handle::try_current().is_err() {
            let catalog = self.catalog.clone();
            rt.block_on(async move {
                let _ = tokio::time::timeout(CLOSE_WAIT, catalog.close()).await;
            });
            // and its worker thread is joined: nothing of the catalog outlives it
            rt.shutdown_timeout(CLOSE_WAIT);
        } else {
            rt.shutdown_background();
        }
    }
}

/// How long dropping a catalog waits for its connections to close.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl CatalogHandle {
    /// The open catalog at `path` (opened now if it is not, or if the context's catalog
    /// path changed since).
    fn get(&self, path: &Path) -> Result<Arc<Opened>> {
        let mut slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(o) = slot
            .as_ref()
            .filter(|o| o.path == path && o.file.is_some() && o.file == file_id(path))
        {
            return Ok(o.clone());
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rehydra-catalog")
            .enable_all()
            .build()
            .map_err(|e| ApiError::new(Code::Io, format!("starting the catalog runtime: {e}")))?;
        let catalog = rt
            .block_on(Catalog::open(path))
            .map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
        let o = Arc::new(Opened {
            path: path.to_path_buf(),
            file: file_id(path),
            catalog,
            rt: Some(rt),
        });
        *slot = Some(o.clone());
        Ok(o)
    }
}

/// What identifies the catalog file on disk.
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(path: &Path) -> Option<FileId> {
    let m = std::fs::metadata(path).ok()?;
    let created = m
        .created()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some((created.as_secs(), u64::from(created.subsec_nanos())))
}

/// Run `f` against the catalog of `ctx`.
pub(crate) fn with_catalog<T, F, Fut>(ctx: &Context, f: F) -> Result<T>
where
    F: FnOnce(Catalog) -> Fut,
    Fut: Future<Output = std::result::Result<T, CatalogError>>,
{
    let Some(path) = &ctx.catalog else {
        return Err(ApiError::new(
            Code::InvalidInput,
            "no catalog is configured",
        ));
    };
    let o = ctx.catalog_handle.get(path)?;
    let rt =
        o.rt.as_ref()
            .expect("the runtime lives as long as the handle");
    rt.block_on(f(o.catalog.clone()))
        .map_err(|e| ApiError::new(Code::Io, e.to_string()))
}

fn row(repo: &str, d: &RestorePointDto) -> RestorePointRow {
    RestorePointRow {
        id: d.id.clone(),
        repository_id: repo.to_string(),
        time: d.time.to_rfc3339(),
        workload: d.workload.clone(),
        asset: d.asset.clone(),
        plugin_id: d.plugin_id.clone(),
        plugin_version: d.plugin_version.clone(),
        consistency: d.consistency.clone(),
        hostname: d.hostname.clone(),
        parent: d.parent.clone(),
        tags: serde_json::to_string(&d.tags).unwrap_or_default(),
        items: serde_json::to_string(&d.items).unwrap_or_default(),
        bytes: i64::try_from(d.bytes).unwrap_or(i64::MAX),
        new_bytes: i64::try_from(d.new_bytes).unwrap_or(i64::MAX),
        stored_bytes: i64::try_from(d.stored_bytes).unwrap_or(i64::MAX),
    }
}

impl Session {
    pub(crate) fn catalog_touch(&self) {
        if self.ctx.catalog.is_some() {
            let (id, loc) = (self.id(), crate::location::recorded(&self.location));
            let _ = with_catalog(&self.ctx, |c| async move {
                c.upsert_repository(&id, &loc).await
            });
        }
    }

    pub(crate) fn catalog_put(&self, d: &RestorePointDto) -> Result<()> {
        if self.ctx.catalog.is_none() {
            return Ok(());
        }
        let (id, loc, r) = (
            self.id(),
            crate::location::recorded(&self.location),
            row(&self.id(), d),
        );
        with_catalog(&self.ctx, |c| async move {
            c.upsert_repository(&id, &loc).await?;
            c.put_restore_point(&r).await
        })
    }

    pub(crate) fn catalog_replace(&self, all: &[RestorePointDto]) -> Result<()> {
        if self.ctx.catalog.is_none() {
            return Ok(());
        }
        let (id, loc) = (self.id(), crate::location::recorded(&self.location));
        let rows: Vec<RestorePointRow> = all.iter().map(|d| row(&id, d)).collect();
        with_catalog(&self.ctx, |c| async move {
            c.upsert_repository(&id, &loc).await?;
            c.replace_restore_points(&id, &rows).await
        })
    }

    pub(crate) fn catalog_start(&self, kind: &str) -> Option<i64> {
        self.ctx.catalog.as_ref()?;
        let (id, loc, kind) = (
            self.id(),
            crate::location::recorded(&self.location),
            kind.to_string(),
        );
        let k = kind.clone();
        let run = with_catalog(&self.ctx, |c| async move {
            c.upsert_repository(&id, &loc).await?;
            c.start_run(Some(&id), &k).await
        })
        .ok()?;
        tracing::info!(job = run, kind = %kind, repository = %self.location, "job started");
        Some(run)
    }

    /// End a job run: its log lines, then status, message, restore point and bytes.
    pub(crate) fn catalog_finish(
        &self,
        run: Option<i64>,
        status: JobStatus,
        message: &str,
        rp: Option<&str>,
        bytes: u64,
        log: &[String],
    ) {
        self.catalog_log(run, log);
        if let Some(run) = run {
            let rp_field = rp.unwrap_or("");
            match status {
                JobStatus::Failed => {
                    tracing::error!(job = run, status = %status, "job finished: {message}");
                }
                JobStatus::SucceededWithWarnings | JobStatus::Cancelled => tracing::warn!(
                    job = run, status = %status, restore_point = rp_field, bytes, "job finished: {message}"
                ),
                _ => tracing::info!(
                    job = run, status = %status, restore_point = rp_field, bytes, "job finished: {message}"
                ),
            }
            let (message, rp) = (message.to_string(), rp.map(str::to_string));
            let _ = with_catalog(&self.ctx, |c| async move {
                c.finish_run(run, status, &message, rp.as_deref(), bytes)
                    .await
            });
        }
    }

    /// End a job run that failed (or was cancelled): `log`, then the error as its last line.
    pub(crate) fn catalog_failed(
        &self,
        run: Option<i64>,
        e: &crate::ApiError,
        rp: Option<&str>,
        log: &[String],
    ) {
        let mut lines = log.to_vec();
        lines.push(format!("error: {}", e.message));
        let status = if e.code == crate::Code::Cancelled {
            JobStatus::Cancelled
        } else {
            JobStatus::Failed
        };
        self.catalog_finish(run, status, &e.message, rp, 0, &lines);
    }

    /// Append lines to a job run's log (best effort: the catalog is a cache).
    fn catalog_log(&self, run: Option<i64>, lines: &[String]) {
        if let (Some(run), false) = (run, lines.is_empty()) {
            for l in lines {
                tracing::info!(job = run, "{l}");
            }
            let lines = lines.to_vec();
            let _ = with_catalog(
                &self.ctx,
                |c| async move { c.append_job_log(run, &lines).await },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_catalog_per_context_opened_again_when_its_file_goes() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("catalog.db");
        let ctx = Context {
            catalog: Some(db.clone()),
            ..Context::default()
        };
        let a = ctx.catalog_handle.get(&db).unwrap();
        // every call and every clone of the context shares one runtime, pool and migration
        assert!(Arc::ptr_eq(
            &a,
            &ctx.clone().catalog_handle.get(&db).unwrap()
        ));
        with_catalog(&ctx, |c| async move { c.runs(1).await }).unwrap();
        assert!(Arc::ptr_eq(&a, &ctx.catalog_handle.get(&db).unwrap()));
        // deleted under a running app: a fresh catalog, as before the handle was kept
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let b = ctx.catalog_handle.get(&db).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(db.exists());
        drop((a, b));
    }
}
