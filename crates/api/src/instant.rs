//! Instant recovery: a restore point's disk served over NBD before any restore.

use std::net::TcpListener;
use std::path::Path;

use rehydra_core::Cancel;
use rehydra_core::ItemKind;
use rehydra_core::RestorePointDisk;
use rehydra_core::disk::nbd::{self, Export, Overlay};
use serde::Serialize;

use crate::error::{ApiError, Code, Result};
use crate::{RestorePointFilter, Session};

/// What an NBD session served.
#[derive(Debug, Clone, Serialize)]
pub struct NbdSummary {
    /// Export name.
    pub export: String,
    /// The disk item served.
    pub item: String,
    /// Virtual size.
    pub size: u64,
    /// 4 KiB blocks written into the overlay (0 for read-only).
    pub written_blocks: usize,
}

/// The disk item named `item`, or the restore point's only disk.
pub(crate) fn choose_disk<'s>(
    snap: &'s rehydra_core::RestorePoint,
    spec: &str,
    item: Option<&str>,
) -> Result<&'s rehydra_core::Item> {
    let disks: Vec<_> = snap
        .items
        .iter()
        .filter(|i| i.kind == ItemKind::Disk)
        .collect();
    let chosen = match item {
        Some(name) => disks.iter().find(|i| i.name == name).copied(),
        None if disks.len() == 1 => Some(disks[0]),
        None => None,
    };
    chosen.ok_or_else(|| {
        let names: Vec<&str> = disks.iter().map(|i| i.name.as_str()).collect();
        ApiError::new(
            Code::InvalidInput,
            if names.is_empty() {
                format!("restore point {spec} holds no disk image")
            } else if let Some(i) = item {
                format!(
                    "restore point {spec} has no disk `{i}`; its disks: {}",
                    names.join(", ")
                )
            } else {
                format!("choose the disk with --item: {}", names.join(", "))
            },
        )
    })
}

impl Session {
    /// Why `p` cannot be an overlay file: it exists, or it lies inside the repository.
    pub(crate) fn overlay_problem(&self, p: &Path) -> Option<String> {
        if p.exists() {
            return Some(format!(
                "the overlay {} exists already; name a new file (an overlay is never reused or replaced)",
                p.display()
            ));
        }
        let repo = Path::new(&self.location);
        let parent = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        match (std::fs::canonicalize(repo), std::fs::canonicalize(parent)) {
            (Ok(r), Ok(d)) if d.starts_with(&r) => Some(format!(
                "the overlay {} must lie outside the repository",
                p.display()
            )),
            (_, Err(e)) => Some(format!(
                "the overlay's folder {} cannot be used: {e}",
                parent.display()
            )),
            _ => None,
        }
    }

    /// Serve the disk item `item` (or the restore point's only disk) of `spec` on
    /// `listener` as NBD export `export`, until `cancel`. With `overlay` (a new file
    /// outside the repository) the export is writable and every write lands there; the
    /// repository is only read.
    ///
    /// # Errors
    /// No such restore point or disk item; an overlay that exists or lies in the
    /// repository; the listener fails.
    pub fn serve_nbd(
        &self,
        spec: &str,
        filter: &RestorePointFilter,
        item: Option<&str>,
        listener: &TcpListener,
        export: &str,
        overlay: Option<&Path>,
        cancel: &Cancel,
    ) -> Result<NbdSummary> {
        let (_, snap) = self.resolve(spec, filter)?;
        let chosen = choose_disk(&snap, spec, item)?;
        let overlay = match overlay {
            Some(p) => {
                // an existing file is refused below by `Overlay::create` (TargetExists)
                if let Some(problem) = self.overlay_problem(p)
                    && !p.exists()
                {
                    return Err(ApiError::new(Code::InvalidInput, problem));
                }
                Some(Overlay::create(p, chosen.size).map_err(|e| {
                    ApiError::new(
                        if e.kind() == std::io::ErrorKind::AlreadyExists {
                            Code::TargetExists
                        } else {
                            Code::Io
                        },
                        format!("overlay {}: {e}", p.display()),
                    )
                })?)
            }
            None => None,
        };
        let _presence = self.reading();
        let (index, _) = self.repo.load_index()?;
        let mut disk = RestorePointDisk::open(&self.repo, &index, chosen)?;
        let mut ex = Export {
            name: export.to_string(),
            disk: &mut disk,
            overlay,
        };
        nbd::serve(listener, &mut ex, cancel.flag())
            .map_err(|e| ApiError::new(Code::Io, format!("NBD server: {e}")))?;
        Ok(NbdSummary {
            export: export.to_string(),
            item: chosen.name.clone(),
            size: chosen.size,
            written_blocks: ex.overlay.as_ref().map_or(0, Overlay::blocks),
        })
    }
}
