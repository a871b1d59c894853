//! Copying restore points to another repository (`rehydra copy`, policy copy targets).

use serde::Serialize;

use crate::dto::{RestorePointDto, RestorePointFilter};
use crate::error::{ApiError, Code, Result};
use crate::{Cancel, Progress, Session};

/// One restore point copied (or found already copied).
#[derive(Debug, Clone, Serialize)]
pub struct CopyOutcome {
    /// Id of the restore point in the source repository.
    pub source: String,
    /// The copy in the target repository.
    pub copy: RestorePointDto,
    /// The target held it already; nothing was written.
    pub already_copied: bool,
    /// Chunks read from the source.
    pub chunks_read: u64,
    /// Chunks reused from the previous copy of the same asset without reading them.
    pub chunks_reused: u64,
    /// Chunks new to the target.
    pub new_chunks: u64,
    /// Bytes written to the target's packs.
    pub stored_bytes: u64,
}

impl Session {
    /// Copy the restore points named by `specs` (ids, prefixes or `latest`, within
    /// `filter`), or every restore point matching `filter` when `specs` is empty, into
    /// `target`. Restore points already there are skipped. Oldest first, so each copy
    /// can reuse the one before.
    ///
    /// # Errors
    /// Same repository, unknown restore point, damaged source data, target storage
    /// failure, cancelled. Copies finished before the error stay committed.
    pub fn copy_to(
        &self,
        target: &Session,
        specs: &[String],
        filter: &RestorePointFilter,
        progress: &dyn Progress,
        cancel: &Cancel,
    ) -> Result<Vec<CopyOutcome>> {
        let mut ids = Vec::new();
        if specs.is_empty() {
            for d in self.restore_points(filter)? {
                ids.push((d.time, rehydra_core::Id::parse(&d.id)?));
            }
        } else {
            for s in specs {
                let (id, snap) = self.resolve(s, filter)?;
                ids.push((snap.time, id));
            }
        }
        ids.sort();
        ids.dedup();
        if ids.is_empty() {
            return Err(ApiError::new(
                Code::Missing,
                "no restore point matches; nothing to copy",
            ));
        }
        let mut out = Vec::with_capacity(ids.len());
        for (_, id) in ids {
            let run = self.catalog_start("copy");
            match rehydra_core::copy::copy_restore_point(
                self.repository(),
                &id,
                target.repository(),
                progress,
                cancel,
            ) {
                Ok(r) => {
                    let copy = RestorePointDto::from_core(&r.id, &r.restore_point);
                    let _ = target.catalog_put(&copy);
                    let line = if r.already_copied {
                        format!(
                            "{} already in {} as {}",
                            id.short(),
                            target.location(),
                            copy.short_id
                        )
                    } else {
                        format!(
                            "{} copied to {} as {}: {} chunks read and verified, {} reused from the previous copy, {} new, {} stored",
                            id.short(),
                            target.location(),
                            copy.short_id,
                            r.chunks_read,
                            r.chunks_reused,
                            r.new_chunks,
                            crate::human_bytes(r.stored_bytes)
                        )
                    };
                    self.catalog_finish(
                        run,
                        rehydra_catalog::JobStatus::Succeeded,
                        &format!("to {}", target.location()),
                        Some(&id.to_hex()),
                        r.restore_point.summary.bytes,
                        &[line],
                    );
                    out.push(CopyOutcome {
                        source: id.to_hex(),
                        copy,
                        already_copied: r.already_copied,
                        chunks_read: r.chunks_read,
                        chunks_reused: r.chunks_reused,
                        new_chunks: r.new_chunks,
                        stored_bytes: r.stored_bytes,
                    });
                }
                Err(e) => {
                    let e = ApiError::from(e);
                    self.catalog_failed(run, &e, Some(&id.to_hex()), &[]);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
}
