//! Bridge from the synchronous API to the async catalog.

use std::future::Future;

use rehydra_catalog::{Catalog, CatalogError, RestorePointRow};

use crate::dto::SnapshotDto;
use crate::error::{ApiError, Code, Result};
use crate::{Context, Session};

fn rt() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ApiError::new(Code::Io, format!("starting the catalog runtime: {e}")))
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
    let rt = rt()?;
    rt.block_on(async {
        let c = Catalog::open(path)
            .await
            .map_err(|e| ApiError::new(Code::Io, e.to_string()))?;
        let r = f(c.clone())
            .await
            .map_err(|e| ApiError::new(Code::Io, e.to_string()));
        c.close().await;
        r
    })
}

fn row(repo: &str, d: &SnapshotDto) -> RestorePointRow {
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
            let (id, loc) = (self.id(), self.location.clone());
            let _ = with_catalog(&self.ctx, |c| async move {
                c.upsert_repository(&id, &loc).await
            });
        }
    }

    pub(crate) fn catalog_put(&self, d: &SnapshotDto) -> Result<()> {
        if self.ctx.catalog.is_none() {
            return Ok(());
        }
        let (id, loc, r) = (self.id(), self.location.clone(), row(&self.id(), d));
        with_catalog(&self.ctx, |c| async move {
            c.upsert_repository(&id, &loc).await?;
            c.put_restore_point(&r).await
        })
    }

    pub(crate) fn catalog_replace(&self, all: &[SnapshotDto]) -> Result<()> {
        if self.ctx.catalog.is_none() {
            return Ok(());
        }
        let (id, loc) = (self.id(), self.location.clone());
        let rows: Vec<RestorePointRow> = all.iter().map(|d| row(&id, d)).collect();
        with_catalog(&self.ctx, |c| async move {
            c.upsert_repository(&id, &loc).await?;
            c.replace_restore_points(&id, &rows).await
        })
    }

    pub(crate) fn catalog_start(&self, kind: &str) -> Option<i64> {
        self.ctx.catalog.as_ref()?;
        let (id, loc, kind) = (self.id(), self.location.clone(), kind.to_string());
        with_catalog(&self.ctx, |c| async move {
            c.upsert_repository(&id, &loc).await?;
            c.start_run(Some(&id), &kind).await
        })
        .ok()
    }

    /// End a job run: its log lines, then status, message, restore point and bytes.
    pub(crate) fn catalog_finish(
        &self,
        run: Option<i64>,
        status: &str,
        message: &str,
        rp: Option<&str>,
        bytes: u64,
        log: &[String],
    ) {
        self.catalog_log(run, log);
        if let Some(run) = run {
            let (status, message, rp) = (
                status.to_string(),
                message.to_string(),
                rp.map(str::to_string),
            );
            let _ = with_catalog(&self.ctx, |c| async move {
                c.finish_run(run, &status, &message, rp.as_deref(), bytes)
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
            "cancelled"
        } else {
            "failed"
        };
        self.catalog_finish(run, status, &e.message, rp, 0, &lines);
    }

    /// Append lines to a job run's log (best effort: the catalog is a cache).
    fn catalog_log(&self, run: Option<i64>, lines: &[String]) {
        if let (Some(run), false) = (run, lines.is_empty()) {
            let lines = lines.to_vec();
            let _ = with_catalog(
                &self.ctx,
                |c| async move { c.append_job_log(run, &lines).await },
            );
        }
    }
}
