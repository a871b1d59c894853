//! File-level access to a virtual disk without restoring it: partition tables
//! ([`partitions`]), then NTFS (the `ntfs` crate) or ext2/3/4 (the `ext4-view` crate),
//! read-only, through random access to the disk. Used on restore points (only the chunks
//! needed are fetched) and on any [`DiskImage`].
//!
//! [`with_volume`] opens the file system of one partition and hands a [`Volume`] to a
//! closure: list a folder, stat a path, copy a file out. [`restore_path`] copies a file or
//! a folder tree out with modification times, crash-safe (temporary name, fsync, rename)
//! and never over an existing file unless asked.

pub mod partitions;
mod volumes;

use std::io::Write;
use std::path::Path;

use rehydra_disk::DiskImage;

pub use partitions::{Partition, partitions};
pub use volumes::with_volume;

/// A file-level error.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// Damaged partition table or file system.
    #[error("{0}")]
    Malformed(String),
    /// No such file, folder or partition.
    #[error("{0}")]
    NotFound(String),
    /// A file system or feature this build does not read.
    #[error("{0}")]
    Unsupported(String),
    /// The restore target exists.
    #[error("{0}")]
    Exists(String),
    /// Reading the disk or writing the target failed.
    #[error("{0}")]
    Io(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, FsError>;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Folder.
    Dir,
    /// Symbolic link (ext4).
    Symlink,
    /// Anything else (devices, sockets, reparse points).
    Other,
}

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    /// Name within its folder.
    pub name: String,
    /// Kind.
    pub kind: EntryKind,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
}

/// A mounted (read-only) file system.
pub trait Volume {
    /// File system name (`ntfs`, `ext4`).
    fn kind(&self) -> &'static str;
    /// Entries of the folder `path` (`/` separated, from the volume root), sorted by name.
    ///
    /// # Errors
    /// Not found, not a folder, damaged file system.
    fn list(&mut self, path: &str) -> Result<Vec<Entry>>;
    /// The entry at `path`.
    ///
    /// # Errors
    /// As [`Volume::list`].
    fn stat(&mut self, path: &str) -> Result<Entry>;
    /// Copy the file `path` into `out`; returns the bytes copied.
    ///
    /// # Errors
    /// Not a file, damaged file system, write failure.
    fn read(&mut self, path: &str, out: &mut dyn Write) -> Result<u64>;
    /// Target of the symbolic link `path`.
    ///
    /// # Errors
    /// Not a link.
    fn read_link(&mut self, path: &str) -> Result<String>;
}

/// What [`restore_path`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FileRestoreSummary {
    /// Files written.
    pub files: u64,
    /// Folders created.
    pub dirs: u64,
    /// Symbolic links created.
    pub symlinks: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Entries skipped (devices, reparse points).
    pub skipped: u64,
}

fn join(path: &str, name: &str) -> String {
    format!("{}/{name}", path.trim_end_matches('/'))
}

/// Copy the file or folder `path` of `vol` into the folder `target` (which is created),
/// keeping modification times. Files are written under a temporary name, synced and
/// renamed; an existing file is replaced only with `overwrite`, and conflicts are found
/// before anything is written.
///
/// # Errors
/// Not found, a conflict without `overwrite`, damaged file system, write failure.
pub fn restore_path(
    vol: &mut dyn Volume,
    path: &str,
    target: &Path,
    overwrite: bool,
) -> Result<FileRestoreSummary> {
    let top = vol.stat(path)?;
    // plan first: every conflict before any write
    let mut plan = Vec::new();
    collect(vol, path, &top, target, &mut plan)?;
    if !overwrite {
        if let Some((_, dest, _)) = plan
            .iter()
            .find(|(_, d, e)| e.kind != EntryKind::Dir && std::fs::symlink_metadata(d).is_ok())
        {
            return Err(FsError::Exists(format!(
                "{} exists; nothing was written. Choose another target, or pass --overwrite",
                dest.display()
            )));
        }
    }
    let io = |what: &Path, e: std::io::Error| FsError::Io(format!("{}: {e}", what.display()));
    let mut s = FileRestoreSummary::default();
    std::fs::create_dir_all(target).map_err(|e| io(target, e))?;
    let mut dirs = Vec::new();
    for (src, dest, e) in &plan {
        match e.kind {
            EntryKind::Dir => {
                std::fs::create_dir_all(dest).map_err(|x| io(dest, x))?;
                s.dirs += 1;
                dirs.push((dest.clone(), e.mtime_ns));
            }
            EntryKind::File => {
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let tmp = dest.with_file_name(format!(".{name}.rehydra-tmp"));
                let mut f = std::fs::File::options()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .map_err(|x| io(&tmp, x))?;
                let n = match vol.read(src, &mut f) {
                    Ok(n) => n,
                    Err(err) => {
                        drop(f);
                        let _ = std::fs::remove_file(&tmp);
                        return Err(err);
                    }
                };
                f.sync_all().map_err(|x| io(&tmp, x))?;
                drop(f);
                set_mtime(&tmp, e.mtime_ns);
                std::fs::rename(&tmp, dest).map_err(|x| io(dest, x))?;
                s.files += 1;
                s.bytes += n;
            }
            EntryKind::Symlink => {
                let t = vol.read_link(src)?;
                if overwrite {
                    let _ = std::fs::remove_file(dest);
                }
                #[cfg(unix)]
                std::os::unix::fs::symlink(&t, dest).map_err(|x| io(dest, x))?;
                s.symlinks += 1;
            }
            EntryKind::Other => s.skipped += 1,
        }
    }
    // folder times last, deepest first
    for (d, t) in dirs.iter().rev() {
        set_mtime(d, *t);
    }
    Ok(s)
}

fn set_mtime(p: &Path, ns: i64) {
    let t = filetime::FileTime::from_unix_time(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    );
    let _ = filetime::set_file_mtime(p, t);
}

type Plan = Vec<(String, std::path::PathBuf, Entry)>;

fn collect(
    vol: &mut dyn Volume,
    path: &str,
    e: &Entry,
    dest_dir: &Path,
    plan: &mut Plan,
) -> Result<()> {
    let name = if e.name.is_empty() {
        "volume".to_string()
    } else {
        e.name.clone()
    };
    if name.contains('/') || name == ".." || name == "." {
        return Err(FsError::Malformed(format!(
            "entry name `{name}` in {path} is not a plain name"
        )));
    }
    let dest = dest_dir.join(&name);
    plan.push((path.to_string(), dest.clone(), e.clone()));
    if e.kind == EntryKind::Dir {
        for child in vol.list(path)? {
            collect(vol, &join(path, &child.name), &child, &dest, plan)?;
        }
    }
    Ok(())
}

/// A [`std::io::Read`] + [`std::io::Seek`] window onto one partition of a disk.
pub struct PartReader<'a> {
    disk: &'a mut dyn DiskImage,
    start: u64,
    size: u64,
    pos: u64,
}

impl<'a> PartReader<'a> {
    /// The `size` bytes of `disk` from `start`.
    pub fn new(disk: &'a mut dyn DiskImage, start: u64, size: u64) -> Self {
        Self {
            disk,
            start,
            size,
            pos: 0,
        }
    }

    /// Read exactly at a partition offset.
    ///
    /// # Errors
    /// Past the partition's end, or a disk read failure.
    pub fn read_exact_at(&mut self, off: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if off
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.disk
            .read_at(self.start + off, buf)
            .map_err(std::io::Error::other)
    }
}

impl std::io::Read for PartReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (self.size.saturating_sub(self.pos)).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.disk
            .read_at(self.start + self.pos, &mut buf[..n])
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for PartReader<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            std::io::SeekFrom::Start(p) => Some(p),
            std::io::SeekFrom::End(d) => self.size.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}
