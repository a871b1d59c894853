//! The folders of the path being written, kept open while a tree is restored depth
//! first (each file costs one `openat` in its folder, and no more handles are open than
//! the tree is deep), and the durability of what is written through them.
//!
//! Durability, and what a crash leaves: a file's name appears only once its bytes and
//! metadata are on disk, and the restore reports success only once every name it made
//! is. Two ways to get there:
//! - **One sync of the file system per batch** (Linux 5.17 and later, a target on ext4,
//!   XFS, Btrfs, F2FS or tmpfs, and folders on the target's own file system): files are
//!   written under their temporary names without a sync each; every [`BATCH_FILES`]
//!   files, [`BATCH_BYTES`] bytes or [`BATCH_FOLDERS`] folders (each waiting file stays
//!   open, and keeps its folder open), one `syncfs` makes them all durable, then each is
//!   given its metadata and renamed into place; [`Cursor::close`] renames the last batch and syncs once more, which makes
//!   the renames, new folders, links and folder metadata durable. A sync per file costs
//!   about a millisecond on a virtual disk, which made a tree of small files restore
//!   slower than restic. `syncfs` reports write-back errors only from Linux 5.8, and the
//!   file system's own errors only from 5.17; on FUSE (ntfs-3g, sshfs) and network file
//!   systems it does not reach the server or the device as `fsync` does.
//! - **A sync per file** otherwise (Windows, older kernels, other file systems, a folder
//!   on another file system mounted below the target, or when a first `syncfs` at the
//!   start fails): the file is synced, then renamed, and each folder that received
//!   entries, or took metadata, is synced.
//!
//! Temporary files are created readable by their owner only, and keep that mode (and
//! the restoring account as owner, no set-ID bit) until they are renamed; a crash
//! between a batch's sync and its renames leaves up to a batch of them, named
//! `.<name>.rehydra-<random>`, which a later restore does not remove. After such a
//! crash a file already renamed may also still have that mode: its metadata is made
//! durable by the final sync.

use crate::{Meta, PendingFile, Result, TargetDir, TargetError};

/// Files renamed into place per sync of the file system (each stays open until then).
pub const BATCH_FILES: usize = 256;
/// Bytes written per sync of the file system.
pub const BATCH_BYTES: u64 = 256 << 20;
/// Folders holding the files of one batch (their handles stay open until it is placed).
pub const BATCH_FOLDERS: usize = 128;

/// See the module documentation.
pub struct Cursor {
    root: TargetDir,
    root_dirty: bool,
    root_made: bool,
    stack: Vec<Entry>,
    /// `None`: a sync per file.
    batch: Option<Batch>,
    /// Folder metadata, applied at [`Cursor::close`] once every entry is in place.
    folder_meta: Vec<(Vec<String>, Meta)>,
    syncs: Syncs,
}

/// A folder on the path.
struct Entry {
    name: String,
    dir: TargetDir,
    /// Received an entry that the batch's final sync does not cover.
    dirty: bool,
    /// Made by this cursor.
    made: bool,
    /// On the target's own file system (what it receives is covered by the batch's sync).
    batched: bool,
}

/// Files written, waiting for one sync of the file system.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct Batch {
    /// A readable handle on the target, opened (and synced once) before anything was
    /// written: `syncfs` reports every write-back error since, through it.
    fs: std::fs::File,
    /// The target's file system.
    dev: u64,
    files: Vec<Waiting>,
    bytes: u64,
    /// Folders the files are in (a tree is written folder by folder).
    folders: usize,
}

/// A file of a batch: written, not yet synced, its metadata not yet applied.
struct Waiting {
    file: std::fs::File,
    pending: PendingFile,
    meta: Meta,
    replace: bool,
}

/// What [`Cursor::close`] leaves to the caller.
#[derive(Debug)]
pub struct Closed {
    /// Folders whose metadata could not be applied, with why (each is in place).
    pub unapplied: Vec<(Vec<String>, TargetError)>,
    /// The syncs asked for (the first `syncfs` that tries the file system aside).
    pub syncs: Syncs,
}

/// How many syncs a cursor asked for (tests and benchmarks read them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Syncs {
    /// Of one file.
    pub files: u64,
    /// Of one folder.
    pub folders: u64,
    /// Of the whole file system.
    pub file_systems: u64,
}

impl Cursor {
    /// A cursor at `root`; `root_made` says whether the caller just created it.
    ///
    /// # Errors
    /// The target cannot be opened for syncing.
    pub fn new(root: TargetDir, root_made: bool) -> Result<Self> {
        let batch = Batch::at(&root)?;
        Ok(Self::with(root, root_made, batch))
    }

    /// A cursor that syncs each file (what [`Cursor::new`] falls back to).
    pub fn syncing_each_file(root: TargetDir, root_made: bool) -> Self {
        Self::with(root, root_made, None)
    }

    fn with(root: TargetDir, root_made: bool, batch: Option<Batch>) -> Self {
        Self {
            root,
            root_dirty: false,
            root_made,
            stack: Vec::new(),
            batch,
            folder_meta: Vec::new(),
            syncs: Syncs::default(),
        }
    }

    /// Whether the current folder was made by this restore (only such folders, or
    /// existing ones with the admin's consent, take the metadata of the restore point).
    pub fn made(&self) -> bool {
        self.stack.last().map_or(self.root_made, |e| e.made)
    }

    /// The syncs asked for so far.
    pub fn syncs(&self) -> Syncs {
        self.syncs
    }

    /// Whether files on the target's own file system are made durable a batch at a time.
    pub fn batches(&self) -> bool {
        self.batch.is_some()
    }

    /// The folder at `comps` below the root, created as needed, never through a link;
    /// folders left on the way are synced if they received entries a sync of the whole
    /// file system does not cover.
    ///
    /// # Errors
    /// A component is a link or not a folder; creating or syncing failed.
    pub fn cd<S: AsRef<str>>(&mut self, comps: &[S]) -> Result<&TargetDir> {
        let common = self
            .stack
            .iter()
            .zip(comps)
            .take_while(|(e, c)| e.name == c.as_ref())
            .count();
        while self.stack.len() > common {
            let e = self.stack.pop().expect("non-empty");
            if e.dirty {
                e.dir.sync()?;
                self.syncs.folders += 1;
            }
        }
        for c in &comps[common..] {
            let parent = self.stack.last().map_or(&self.root, |e| &e.dir);
            let (dir, made) = parent
                .child_made(c.as_ref(), true)?
                .expect("created when missing");
            if made {
                self.mark_dirty(); // the parent received a folder
            }
            let batched = self.batch.as_ref().is_some_and(|b| b.holds(&dir));
            self.stack.push(Entry {
                name: c.as_ref().to_string(),
                dir,
                dirty: false,
                made,
                batched,
            });
        }
        Ok(self.current())
    }

    fn current(&self) -> &TargetDir {
        self.stack.last().map_or(&self.root, |e| &e.dir)
    }

    /// Note that an entry was created in the current folder (a link); it is made durable
    /// by the final sync, or by a sync of the folder.
    pub fn mark_dirty(&mut self) {
        match self.stack.last_mut() {
            Some(e) => e.dirty |= !e.batched,
            None => self.root_dirty |= self.batch.is_none(),
        }
    }

    /// Complete a file made by [`TargetDir::create_file`]: once it is durable (now, or
    /// with its batch when its folder is on the target's file system), apply `meta` and
    /// rename it into place. With `replace`, an existing file or link of that name is
    /// replaced.
    ///
    /// # Errors
    /// Metadata, sync or rename failure (of this file or of its batch; the temporary
    /// files of a failed batch are removed).
    pub fn commit(
        &mut self,
        file: std::fs::File,
        pending: PendingFile,
        meta: &Meta,
        replace: bool,
    ) -> Result<()> {
        let Some(batch) = self.batch.as_mut().filter(|b| b.holds(&pending.dir)) else {
            let dir = pending.dir.try_clone()?;
            pending.commit(file, meta, replace)?;
            self.syncs.files += 1;
            if std::sync::Arc::ptr_eq(&dir.dir, &self.current().dir) {
                self.mark_dirty();
            } else {
                dir.sync()?;
                self.syncs.folders += 1;
            }
            return Ok(());
        };
        let len = file
            .metadata()
            .map_err(|e| TargetError::io(format!("writing {}", pending.path().display()), e))?
            .len();
        let same_folder = batch
            .files
            .last()
            .is_some_and(|w| std::sync::Arc::ptr_eq(&w.pending.dir.dir, &pending.dir.dir));
        if !same_folder {
            batch.folders += 1;
        }
        batch.files.push(Waiting {
            file,
            pending,
            meta: meta.clone(),
            replace,
        });
        batch.bytes = batch.bytes.saturating_add(len);
        if batch.files.len() >= BATCH_FILES
            || batch.bytes >= BATCH_BYTES
            || batch.folders >= BATCH_FOLDERS
        {
            self.flush()?;
        }
        Ok(())
    }

    /// Make the batch durable with one sync of the file system, then give each file its
    /// metadata and rename it into place (the final sync makes those durable).
    fn flush(&mut self) -> Result<()> {
        let Some(batch) = self.batch.as_mut() else {
            return Ok(());
        };
        if batch.files.is_empty() {
            return Ok(());
        }
        sync_file_system(&batch.fs, self.root.path())?;
        self.syncs.file_systems += 1;
        batch.bytes = 0;
        batch.folders = 0;
        for w in std::mem::take(&mut batch.files) {
            w.pending.apply(w.file, &w.meta)?;
            w.pending.place(w.replace)?;
        }
        Ok(())
    }

    /// Give the folder `rel` (below the root) `meta` when the cursor closes, after every
    /// entry is in place (renames into a folder change its time).
    pub fn folder_meta_later(&mut self, rel: Vec<String>, meta: Meta) {
        self.folder_meta.push((rel, meta));
    }

    /// Put every file in place, apply the folders' metadata (deepest first), and make it
    /// all durable.
    ///
    /// # Errors
    /// A sync or rename failed (the remaining temporary files are removed).
    pub fn close(mut self) -> Result<Closed> {
        self.flush()?;
        let mut unapplied = Vec::new();
        // deepest first; the folders on the way stay open for the next one, which is
        // most often a sibling or the parent
        let mut open: Vec<(String, TargetDir)> = Vec::new();
        for (rel, meta) in std::mem::take(&mut self.folder_meta).into_iter().rev() {
            let common = open
                .iter()
                .zip(&rel)
                .take_while(|((n, _), c)| n == *c)
                .count();
            open.truncate(common);
            let mut r = Ok(true);
            for c in &rel[common..] {
                let parent = open.last().map_or(&self.root, |e| &e.1);
                match parent.child(c, false) {
                    Ok(Some(d)) => open.push((c.clone(), d)),
                    // gone since: nothing to give metadata to
                    Ok(None) => r = Ok(false),
                    Err(e) => r = Err(e),
                }
                if !matches!(r, Ok(true)) {
                    break;
                }
            }
            let dir = open.last().map_or(&self.root, |e| &e.1);
            match r.and_then(|whole| {
                if whole {
                    dir.set_meta(&meta).map(|_| true)
                } else {
                    Ok(false)
                }
            }) {
                Ok(true) if !self.batch.as_ref().is_some_and(|b| b.holds(dir)) => {
                    dir.sync()?;
                    self.syncs.folders += 1;
                }
                Ok(_) => {}
                Err(e) => unapplied.push((rel, e)),
            }
        }
        drop(open);
        self.cd::<&str>(&[])?;
        match &self.batch {
            Some(b) => {
                sync_file_system(&b.fs, self.root.path())?;
                self.syncs.file_systems += 1;
            }
            None if self.root_dirty => {
                self.root.sync()?;
                self.syncs.folders += 1;
            }
            None => {}
        }
        Ok(Closed {
            unapplied,
            syncs: self.syncs,
        })
    }
}

/// The first Linux whose `syncfs` reports the file system's own failures, not only
/// write-back errors (those since 5.8).
#[cfg(target_os = "linux")]
const SYNCFS_SINCE: (u32, u32) = (5, 17);

/// File systems whose `syncfs` writes and waits for what `fsync` would, and reports
/// its own failures (`f_type` of `statfs`).
#[cfg(target_os = "linux")]
const SYNCFS_DURABLE: &[nix::sys::statfs::FsType] = &[
    nix::sys::statfs::EXT4_SUPER_MAGIC,
    nix::sys::statfs::XFS_SUPER_MAGIC,
    nix::sys::statfs::BTRFS_SUPER_MAGIC,
    nix::sys::statfs::F2FS_SUPER_MAGIC,
    nix::sys::statfs::TMPFS_MAGIC,
];

impl Batch {
    /// A batch for `root`, or `None` where each file must be synced on its own.
    ///
    /// # Errors
    /// The target cannot be opened or inspected.
    fn at(root: &TargetDir) -> Result<Option<Self>> {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt;
            if kernel_version_here().is_none_or(|v| v < SYNCFS_SINCE) {
                return Ok(None);
            }
            let fs = root.handle()?;
            let inspect = |e: std::io::Error| {
                TargetError::io(format!("inspecting {}", root.path().display()), e)
            };
            let kind = nix::sys::statfs::fstatfs(&fs).map_err(|e| inspect(e.into()))?;
            if !SYNCFS_DURABLE.contains(&kind.filesystem_type()) {
                return Ok(None);
            }
            // refused, or an error of someone else's written before: sync file by file
            if nix::unistd::syncfs(&fs).is_err() {
                return Ok(None);
            }
            let dev = fs.metadata().map_err(inspect)?.dev();
            Ok(Some(Self {
                fs,
                dev,
                files: Vec::new(),
                bytes: 0,
                folders: 0,
            }))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = root;
            Ok(None)
        }
    }

    /// Whether `dir` is on the target's file system (another one mounted below the
    /// target is synced file by file).
    fn holds(&self, dir: &TargetDir) -> bool {
        #[cfg(unix)]
        {
            use cap_fs_ext::MetadataExt;
            dir.dir.dir_metadata().is_ok_and(|m| m.dev() == self.dev)
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            false
        }
    }
}

/// `(major, minor)` of the running kernel.
#[cfg(target_os = "linux")]
fn kernel_version_here() -> Option<(u32, u32)> {
    static VERSION: std::sync::OnceLock<Option<(u32, u32)>> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        let u = nix::sys::utsname::uname().ok()?;
        kernel_version(&u.release().to_string_lossy())
    })
}

/// `(major, minor)` of a kernel release such as `6.1.0-27-amd64`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn sync_file_system(fs: &std::fs::File, root: &std::path::Path) -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        nix::unistd::syncfs(fs).map_err(|e| {
            TargetError::io(
                format!("syncing the file system of {}", root.display()),
                e.into(),
            )
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (fs, root);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::kernel_version;

    #[test]
    fn kernel_versions_are_read_from_releases() {
        assert_eq!(kernel_version("6.1.0-27-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.8.0"), Some((5, 8)));
        assert_eq!(kernel_version("6.18.44-fc-v1252"), Some((6, 18)));
        assert_eq!(kernel_version("4"), None);
        assert_eq!(kernel_version("weird"), None);
    }
}
