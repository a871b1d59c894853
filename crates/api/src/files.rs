//! File-level restore: partitions, folders and files inside a restore point's disk,
//! read through random access to its chunks (only what is needed is fetched).

use std::path::Path;

use rehydra_core::RestorePointDisk;
use rehydra_fs::{Entry, FileRestoreSummary, FsError, Partition};

use crate::error::{ApiError, Code, Result};
use crate::instant::choose_disk;
use crate::{RestorePointFilter, Session};

fn fs_err(e: FsError) -> ApiError {
    let code = match e {
        FsError::NotFound(_) | FsError::Unsupported(_) => Code::InvalidInput,
        FsError::Malformed(_) => Code::Corrupt,
        FsError::Exists(_) => Code::TargetExists,
        FsError::Io(_) => Code::Io,
    };
    ApiError::new(code, e.to_string())
}

/// Where to look: a restore point, one of its disks, one partition.
#[derive(Debug, Clone, Default)]
pub struct DiskLocation {
    /// Restore point (id prefix or `latest`).
    pub restore_point: String,
    /// Filter for `latest`.
    pub filter: RestorePointFilter,
    /// Disk item (needed when there are several).
    pub item: Option<String>,
    /// Partition number (needed when several hold a file system; 0 = whole disk).
    pub partition: Option<u32>,
}

impl Session {
    /// Run `f` on the chosen disk of a restore point.
    fn with_disk<T>(
        &self,
        at: &DiskLocation,
        f: impl FnOnce(&mut RestorePointDisk<'_>) -> Result<T>,
    ) -> Result<T> {
        let (_, snap) = self.resolve(&at.restore_point, &at.filter)?;
        let item = choose_disk(&snap, &at.restore_point, at.item.as_deref())?;
        let _presence = self.reading();
        let (index, _) = self.repo.load_index()?;
        let mut disk = RestorePointDisk::open(&self.repo, &index, item)?;
        f(&mut disk)
    }

    /// Partitions of a restore point's disk, with the file system found in each.
    ///
    /// # Errors
    /// No such restore point or disk; a damaged partition table.
    pub fn disk_partitions(&self, at: &DiskLocation) -> Result<Vec<Partition>> {
        self.with_disk(at, |d| rehydra_fs::partitions(d).map_err(fs_err))
    }

    fn with_volume<T>(
        &self,
        at: &DiskLocation,
        f: impl FnOnce(&mut dyn rehydra_fs::Volume) -> rehydra_fs::Result<T>,
    ) -> Result<T> {
        self.with_disk(at, |d| {
            let parts = rehydra_fs::partitions(d).map_err(fs_err)?;
            let part = match at.partition {
                Some(n) => parts.iter().find(|p| p.number == n),
                None => {
                    let with_fs: Vec<&Partition> = parts.iter().filter(|p| !p.filesystem.is_empty()).collect();
                    if with_fs.len() == 1 { Some(with_fs[0]) } else { None }
                }
            };
            let Some(part) = part.cloned() else {
                let list: Vec<String> = parts.iter().map(|p| format!("{} ({})", p.number, if p.filesystem.is_empty() { "no file system" } else { &p.filesystem })).collect();
                return Err(ApiError::new(
                    Code::InvalidInput,
                    if list.is_empty() { "the disk has no partition with a file system this build reads (NTFS, ext2/3/4)".to_string() } else { format!("choose a partition with --partition: {}", list.join(", ")) },
                ));
            };
            rehydra_fs::with_volume(d, &part, f).map_err(fs_err)
        })
    }

    /// Entries of the folder `path` (or the entry itself, for a file) inside the disk.
    ///
    /// # Errors
    /// No such restore point, disk, partition or path; an unreadable file system.
    pub fn list_files(&self, at: &DiskLocation, path: &str) -> Result<Vec<Entry>> {
        let mut entries = self.with_volume(at, |v| {
            let e = v.stat(path)?;
            if e.kind == rehydra_fs::EntryKind::Dir {
                v.list(path)
            } else {
                Ok(vec![e])
            }
        })?;
        for e in &mut entries {
            e.note = e.restore_note();
        }
        Ok(entries)
    }

    /// Copy the file or folder `path` from inside the disk into the folder `target`,
    /// with modification times; never over an existing file unless `overwrite`.
    ///
    /// # Errors
    /// As [`Session::list_files`]; a conflict without `overwrite`; write failures.
    pub fn restore_files(
        &self,
        at: &DiskLocation,
        path: &str,
        target: &Path,
        overwrite: bool,
    ) -> Result<FileRestoreSummary> {
        self.with_volume(at, |v| rehydra_fs::restore_path(v, path, target, overwrite))
    }
}
