//! File-level access to a virtual disk without restoring it: partition tables
//! ([`partitions`]), then NTFS (the `ntfs` crate) or ext2/3/4 (the `ext4-view` crate),
//! read-only, through random access to the disk. Used on restore points (only the chunks
//! needed are fetched) and on any [`DiskImage`].
//!
//! [`with_volume`] opens the file system of one partition and hands a [`Volume`] to a
//! closure: list a folder, stat a path, copy a file out. [`restore_path`] copies a file or
//! a folder tree out with modification times, crash-safe (temporary name, fsync, rename),
//! never through a link and never over an existing file unless asked.
//!
//! A guest's file system is hostile input: names that cannot be one path component are
//! skipped (the listing marks them), NTFS paths may use `\` as a separator but ext4
//! names may contain it (it is then an ordinary character), folders that loop and trees
//! deeper than [`MAX_DEPTH`] are cut off.

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
    /// The entry's identity, when the file system gives one: the NTFS file record number
    /// (exact); for ext4, whose reader keeps inode numbers to itself, a hash of the
    /// inode's times, mode and owner (it tells folders apart, but two may share it).
    #[serde(skip)]
    pub id: Option<u64>,
    /// [`Entry::restore_note`], filled in for listings shown to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Entry {
    /// How a restore on this system writes this entry's name, when not as it is:
    /// `restored as …` (escaped for Windows) or `cannot be restored: …` (see
    /// `rehydra_target::names`). Listings show it, so what they show is what a restore does.
    pub fn restore_note(&self) -> Option<String> {
        match rehydra_target::names::component(&self.name) {
            Ok(n) if n == self.name => None,
            Ok(n) => Some(format!("restored as `{n}`")),
            Err(why) => Some(format!("cannot be restored: {why}")),
        }
    }
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
    /// Whether [`Entry::id`] names one file exactly (NTFS file record numbers), so that a
    /// folder met twice is a loop; otherwise ids only describe the entry.
    fn exact_ids(&self) -> bool;
    /// The [`folder_identity`] of what the folder `path`'s own parent entry (`..`)
    /// names, where the file system keeps one: in a sound tree, the folder `path` was
    /// found in.
    ///
    /// # Errors
    /// As [`Volume::list`].
    fn parent_id(&mut self, path: &str) -> Result<Option<u64>>;
}

/// A folder's identity where the file system gives no exact one: its own entry's id
/// (a hash of its metadata) and the names it holds. One folder always has one identity;
/// two folders share it only if they hold the same names with the same metadata.
pub fn folder_identity<'a>(id: u64, names: impl Iterator<Item = &'a str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    for n in names {
        n.hash(&mut h);
    }
    h.finish()
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
    /// Entries skipped (devices, reparse points, names that cannot be written, folders
    /// met twice).
    pub skipped: u64,
    /// Why entries were skipped (the first [`MAX_WARNINGS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Warnings kept in a [`FileRestoreSummary`] (the count of skipped entries is exact).
pub const MAX_WARNINGS: usize = 100;
/// Deepest folder nesting restored from a guest's file system.
pub const MAX_DEPTH: usize = 256;
/// Most entries one file-level restore visits (a hostile file system whose folders
/// loop back on themselves stops here with an error, not a full disk).
pub const MAX_ENTRIES: u64 = 20_000_000;

fn join(path: &str, name: &str) -> String {
    format!("{}/{name}", path.trim_end_matches('/'))
}

/// One entry met by [`walk`].
struct Visit<'a> {
    /// Path in the volume.
    src: &'a str,
    /// Names below the target (as written on this system).
    dest: &'a [String],
    entry: &'a Entry,
}

type Visitor<'v> =
    dyn FnMut(&mut dyn Volume, Visit<'_>, &mut FileRestoreSummary) -> Result<()> + 'v;

/// Depth-first walk of `path` (its own entry `top` first, then each folder's entries in
/// name order), with the target names of every entry. Entries whose names cannot be
/// written, folders that loop back (met twice by identity, or, where the file system
/// gives no identity, holding exactly what an enclosing folder holds) and anything past
/// [`MAX_DEPTH`] are skipped with a warning; more than [`MAX_ENTRIES`] is an error.
fn walk(
    vol: &mut dyn Volume,
    path: &str,
    top: &Entry,
    s: &mut FileRestoreSummary,
    visit: &mut Visitor<'_>,
) -> Result<()> {
    let name = if top.name.is_empty() {
        "volume"
    } else {
        top.name.as_str()
    };
    let name = rehydra_target::names::component(name)
        .map_err(|why| FsError::Unsupported(format!("`{name}` cannot be restored: {why}")))?;
    let mut w = Walk {
        count: 0,
        ids: std::collections::HashSet::new(),
    };
    w.entry(vol, path, &[name.into_owned()], top, None, s, visit)
}

struct Walk {
    count: u64,
    /// Exact identities of the folders entered.
    ids: std::collections::HashSet<u64>,
}

impl Walk {
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        vol: &mut dyn Volume,
        src: &str,
        dest: &[String],
        e: &Entry,
        parent: Option<u64>,
        s: &mut FileRestoreSummary,
        visit: &mut Visitor<'_>,
    ) -> Result<()> {
        self.count += 1;
        if self.count > MAX_ENTRIES {
            return Err(FsError::Malformed(format!(
                "more than {MAX_ENTRIES} entries: the file system is damaged (folders that loop) or the selection is too large; restore a smaller folder"
            )));
        }
        let children = if e.kind == EntryKind::Dir && dest.len() < MAX_DEPTH {
            if let Some(why) = self.loops(vol, src, e, parent)? {
                skip(s, format!("{src}: {why} (the file system loops); skipped"));
                return Ok(());
            }
            Some(vol.list(src)?)
        } else {
            None
        };
        visit(
            vol,
            Visit {
                src,
                dest,
                entry: e,
            },
            s,
        )?;
        if e.kind != EntryKind::Dir {
            return Ok(());
        }
        let Some(children) = children else {
            skip(
                s,
                format!("{src}: deeper than {MAX_DEPTH} folders; its contents are skipped"),
            );
            return Ok(());
        };
        // what the children's `..` must name
        let here =
            e.id.map(|id| folder_identity(id, children.iter().map(|c| c.name.as_str())));
        for child in &children {
            match rehydra_target::names::component(&child.name) {
                Ok(n) => {
                    let mut d = dest.to_vec();
                    d.push(n.into_owned());
                    self.entry(vol, &join(src, &child.name), &d, child, here, s, visit)?;
                }
                Err(why) => skip(
                    s,
                    format!(
                        "{src}: an entry named {:?} cannot be restored: {why}",
                        child.name
                    ),
                ),
            }
        }
        Ok(())
    }

    /// Why the folder `e` at `src`, found in `parent`, is a way back into the tree, if it
    /// is: with exact ids, a folder met before; otherwise a folder whose own parent entry
    /// does not name the folder it was found in (a directory entry linking to a folder
    /// elsewhere: ext4 keeps `..`, the reader keeps inode numbers to itself).
    fn loops(
        &mut self,
        vol: &mut dyn Volume,
        src: &str,
        e: &Entry,
        parent: Option<u64>,
    ) -> Result<Option<&'static str>> {
        if vol.exact_ids() {
            return Ok(e
                .id
                .is_some_and(|id| !self.ids.insert(id))
                .then_some("this folder was met before"));
        }
        let Some(expected) = parent else {
            return Ok(None);
        };
        Ok(match vol.parent_id(src)? {
            Some(found) if found != expected => Some("its parent entry names another folder"),
            _ => None,
        })
    }
}

fn skip(s: &mut FileRestoreSummary, why: String) {
    s.skipped += 1;
    if s.warnings.len() < MAX_WARNINGS {
        s.warnings.push(why);
    }
}

fn target_err(e: rehydra_target::TargetError) -> FsError {
    match e {
        rehydra_target::TargetError::Io { ref source, .. }
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            FsError::Exists(format!(
                "{e}; nothing more was written. Choose another target, or pass --overwrite"
            ))
        }
        e => FsError::Io(e.to_string()),
    }
}

/// Copy the file or folder `path` of `vol` into the folder `target` (which is created),
/// keeping modification times. Conflicts are found before anything is written (a first
/// walk), then a second walk writes: every name below `target` is opened without
/// following links, files go to exclusive temporary files that are synced and renamed,
/// links from the guest are created but never written through, an existing file is
/// replaced only with `overwrite`. Modes and owners from the guest are not applied: the
/// files belong to whoever restores them.
///
/// # Errors
/// Not found, a conflict without `overwrite`, a link or file in the target where a
/// folder must go, damaged file system, write failure.
pub fn restore_path(
    vol: &mut dyn Volume,
    path: &str,
    target: &Path,
    overwrite: bool,
) -> Result<FileRestoreSummary> {
    let top = vol.stat(path)?;
    let (root, root_made) = rehydra_target::TargetDir::create_made(target).map_err(target_err)?;
    // plan: every conflict before any write
    let mut plan = FileRestoreSummary::default();
    let mut conflict: Option<String> = None;
    walk(vol, path, &top, &mut plan, &mut |_, v, _| {
        let refs: Vec<&str> = v.dest.iter().map(String::as_str).collect();
        let existing = root.existing_at(&refs).map_err(target_err)?;
        use rehydra_target::Existing as X;
        match (v.entry.kind, existing) {
            (_, X::Missing) | (EntryKind::Dir, X::Dir) | (EntryKind::Other, _) => Ok(()),
            (EntryKind::Dir, what) => Err(FsError::Exists(format!(
                "{} is {} where the restore has a folder; nothing was written. Remove it or choose another target",
                target.join(v.dest.join("/")).display(),
                what.describe()
            ))),
            (_, X::File | X::Symlink) => {
                conflict.get_or_insert_with(|| target.join(v.dest.join("/")).display().to_string());
                Ok(())
            }
            (_, what) => Err(FsError::Exists(format!(
                "{} is {} where the restore has a file; nothing was written",
                target.join(v.dest.join("/")).display(),
                what.describe()
            ))),
        }
    })?;
    if let (Some(c), false) = (&conflict, overwrite) {
        return Err(FsError::Exists(format!(
            "{c} exists; nothing was written. Choose another target, or pass --overwrite"
        )));
    }
    let mut cursor = rehydra_target::Cursor::new(root, root_made).map_err(target_err)?;
    let mut s = FileRestoreSummary::default();
    walk(vol, path, &top, &mut s, &mut |vol, v, s| {
        let meta = rehydra_target::Meta {
            mtime_ns: Some(v.entry.mtime_ns),
            ..rehydra_target::Meta::default()
        };
        let (name, parent) = v.dest.split_last().expect("never empty");
        match v.entry.kind {
            EntryKind::Dir => {
                cursor.cd(v.dest).map_err(target_err)?;
                s.dirs += 1;
                // a folder that was there keeps its time unless replacing was allowed
                if cursor.made() || overwrite {
                    cursor.folder_meta_later(v.dest.to_vec(), meta);
                }
            }
            EntryKind::File => {
                let dir = cursor.cd(parent).map_err(target_err)?;
                // a guest's file system records no Unix mode: the system's default
                let (f, pending) = dir.create_file(name, false).map_err(target_err)?;
                // zero blocks stay holes: a guest's sparse file costs no space here
                let mut w = rehydra_target::SparseWriter::new(f);
                let n = vol.read(v.src, &mut w)?; // on error `pending` drops: the temporary file goes
                let f = w
                    .finish()
                    .map_err(|e| FsError::Io(format!("{}: {e}", pending.path().display())))?;
                cursor
                    .commit(f, pending, &meta, overwrite)
                    .map_err(target_err)?;
                s.files += 1;
                s.bytes += n;
            }
            EntryKind::Symlink if cfg!(unix) => {
                let t = vol.read_link(v.src)?;
                let dir = cursor.cd(parent).map_err(target_err)?;
                dir.symlink(name, &t, overwrite, None).map_err(target_err)?;
                cursor.mark_dirty();
                s.symlinks += 1;
            }
            EntryKind::Symlink | EntryKind::Other => {
                skip(s, format!("{}: not a file or folder; skipped", v.src))
            }
        }
        Ok(())
    })?;
    // files in place, then folder times (best effort, deepest first), all durable
    cursor.close().map_err(target_err)?;
    Ok(s)
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
