//! Where restored files land: a target folder that nothing written through it can
//! escape.
//!
//! Every restore (the engine's, a file-level restore from inside a guest's disk, a
//! plugin's `restore-item`) writes through a [`TargetDir`]: a handle on the folder the
//! admin chose. Below it, every path component is opened relative to its parent handle
//! without following links (`openat` with `O_NOFOLLOW`; on Linux the kernel's
//! `RESOLVE_BENEATH` where it has it, through `cap-std`), so a folder that a user
//! replaced with a link, or a link the restore itself created a moment earlier, is
//! never written through: it is refused with an error naming it. Files are written
//! under an exclusive, randomly named temporary file ([`PendingFile`]), made durable,
//! given their owner, mode and time on the open handle, and renamed over the final name, which
//! replaces a file or a link but never writes into what a link points at. A tree is
//! written through a [`Cursor`], which decides how files and folders are made durable (a
//! sync of the file system per batch of files on Linux, a sync per file elsewhere) and
//! makes everything durable before the restore reports success.
//!
//! Owners are restored only when running as root and recorded in the backup; whenever
//! they are not, the set-user-ID and set-group-ID bits are cleared ([`Meta::mode_bits`]),
//! so a user's own setuid copy of a shell never comes back as root's.
//!
//! [`names`] decides which names can be written and how (the same rules for listing and
//! restoring).

mod cursor;
pub mod names;
mod owner;
mod sparse;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cap_fs_ext::{DirExt, FollowSymlinks, OpenOptionsFollowExt};
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

pub use cursor::{BATCH_BYTES, BATCH_FILES, BATCH_FOLDERS, Closed, Cursor, Syncs};
pub use owner::{NameCache, Owner, running_as_root};
pub use sparse::SparseWriter;

/// A target error.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// A path component is a link (or something else that is not a folder) where the
    /// restore needs a folder.
    #[error(
        "{path} is {what}, not a folder; a restore never writes through links. Remove it or choose another target"
    )]
    NotAFolder {
        /// The component.
        path: PathBuf,
        /// What it is (`a symbolic link`, `a file`, …).
        what: &'static str,
    },
    /// A name that cannot be written.
    #[error("`{name}` cannot be restored: {why}")]
    BadName {
        /// The name as found.
        name: String,
        /// Why.
        why: names::BadName,
    },
    /// An I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The cause.
        source: io::Error,
    },
}

impl TargetError {
    fn io(what: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, TargetError>;

/// What is at a name of the target (never following a link).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Nothing.
    Missing,
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link (or a Windows junction or other reparse point).
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

impl Existing {
    fn of(md: &cap_std::fs::Metadata) -> Self {
        let ft = md.file_type();
        if ft.is_symlink() {
            Self::Symlink
        } else if ft.is_dir() {
            Self::Dir
        } else if ft.is_file() {
            Self::File
        } else {
            Self::Other
        }
    }

    /// For messages: `a symbolic link`, `a file`, …
    pub fn describe(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::File => "a file",
            Self::Dir => "a folder",
            Self::Symlink => "a symbolic link",
            Self::Other => "a device, FIFO or socket",
        }
    }
}

/// Metadata applied to a restored file or folder.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Permission bits as recorded (`None`: leave the default).
    pub mode: Option<u32>,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: Option<i64>,
    /// Owner as recorded (applied only when running as root).
    pub owner: Option<Owner>,
}

impl Meta {
    /// The permission bits to set: as recorded, without set-user-ID and set-group-ID
    /// unless the owner is restored too.
    pub fn mode_bits(&self, owner_restored: bool) -> Option<u32> {
        let m = self.mode? & 0o7777;
        Some(if owner_restored { m } else { m & !0o6000 })
    }
}

/// An open folder of a restore target.
pub struct TargetDir {
    /// Shared by the handles [`TargetDir::try_clone`] makes: a pending file keeps its
    /// folder without a descriptor of its own.
    dir: Arc<Dir>,
    path: PathBuf,
}

impl TargetDir {
    /// Open the folder `path`, creating it and its parents when missing. `path` is the
    /// admin's choice: links in it are followed; nothing below it ever is.
    ///
    /// # Errors
    /// It cannot be created or opened, or it is not a folder.
    pub fn create(path: &Path) -> Result<Self> {
        Self::create_made(path).map(|(d, _)| d)
    }

    /// As [`TargetDir::create`], also saying whether the folder was made now (a folder
    /// that existed keeps its owner and mode: a restore never rewrites the admin's).
    ///
    /// # Errors
    /// As [`TargetDir::create`].
    pub fn create_made(path: &Path) -> Result<(Self, bool)> {
        let made = !path.exists();
        std::fs::create_dir_all(path)
            .map_err(|e| TargetError::io(format!("creating {}", path.display()), e))?;
        Ok((Self::open(path)?, made))
    }

    /// Open the existing folder `path`.
    ///
    /// # Errors
    /// It cannot be opened, or it is not a folder.
    pub fn open(path: &Path) -> Result<Self> {
        let dir = Dir::open_ambient_dir(path, ambient_authority())
            .map_err(|e| TargetError::io(format!("opening {}", path.display()), e))?;
        Ok(Self {
            dir: Arc::new(dir),
            path: path.to_path_buf(),
        })
    }

    /// The folder's path (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn child_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// What is at `name` in this folder, without following it.
    ///
    /// # Errors
    /// An I/O failure other than "not found".
    pub fn existing(&self, name: &str) -> Result<Existing> {
        match self.dir.symlink_metadata(name) {
            Ok(md) => Ok(Existing::of(&md)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Existing::Missing),
            Err(e) => Err(TargetError::io(
                format!("inspecting {}", self.child_path(name).display()),
                e,
            )),
        }
    }

    /// What is at `rel` (names below this folder), never following a link; a component
    /// on the way that is not a real folder is an error naming it.
    ///
    /// # Errors
    /// As [`TargetDir::walk`].
    pub fn existing_at(&self, rel: &[&str]) -> Result<Existing> {
        let Some((last, parents)) = rel.split_last() else {
            return Ok(Existing::Dir);
        };
        match self.walk(parents, false)? {
            Some(d) => d.existing(last),
            None => Ok(Existing::Missing),
        }
    }

    /// The folder `name` of this folder, which must be a real folder (not a link).
    /// `None` when missing and `create` is off.
    ///
    /// # Errors
    /// A link or a file in its place; an I/O failure.
    pub fn child(&self, name: &str, create: bool) -> Result<Option<TargetDir>> {
        Ok(self.child_made(name, create)?.map(|(d, _)| d))
    }

    /// As [`TargetDir::child`], also saying whether this call created the folder.
    ///
    /// # Errors
    /// As [`TargetDir::child`].
    pub fn child_made(&self, name: &str, create: bool) -> Result<Option<(TargetDir, bool)>> {
        let path = self.child_path(name);
        match self.dir.open_dir_nofollow(name) {
            Ok(dir) => {
                let dir = Arc::new(dir);
                return Ok(Some((TargetDir { dir, path }, false)));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return match self.existing(name)? {
                    Existing::Dir | Existing::Missing => {
                        Err(TargetError::io(format!("opening {}", path.display()), e))
                    }
                    what => Err(TargetError::NotAFolder {
                        path,
                        what: what.describe(),
                    }),
                };
            }
        }
        if !create {
            return Ok(None);
        }
        let made = match self.dir.create_dir(name) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(TargetError::io(format!("creating {}", path.display()), e)),
        };
        // opened again without following: a link planted between the two calls is refused
        Ok(self.child_made(name, false)?.map(|(d, _)| (d, made)))
    }

    /// The folder at `rel` below this one, each component opened without following
    /// links and, with `create`, created when missing. `None` when a component is
    /// missing and `create` is off.
    ///
    /// # Errors
    /// A component is a link or not a folder ([`TargetError::NotAFolder`]); I/O failure.
    pub fn walk(&self, rel: &[&str], create: bool) -> Result<Option<TargetDir>> {
        let mut cur: Option<TargetDir> = None;
        for name in rel {
            let next = cur.as_ref().unwrap_or(self).child(name, create)?;
            match next {
                Some(d) => cur = Some(d),
                None => return Ok(None),
            }
        }
        match cur {
            Some(d) => Ok(Some(d)),
            None => self.try_clone().map(Some),
        }
    }

    /// A second handle on the same folder (the same descriptor, shared).
    ///
    /// # Errors
    /// None today; kept fallible for systems where a handle must be duplicated.
    pub fn try_clone(&self) -> Result<TargetDir> {
        Ok(TargetDir {
            dir: Arc::clone(&self.dir),
            path: self.path.clone(),
        })
    }

    /// A new file that will be called `name` once complete: created exclusively under a
    /// random temporary name in this folder (never following a link), mode `0600` when
    /// `mode_recorded` (its metadata will bring the mode), else the system's default.
    /// Write into the returned file, then [`PendingFile::commit`] or [`Cursor::commit`].
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create_file(
        &self,
        name: &str,
        mode_recorded: bool,
    ) -> Result<(std::fs::File, PendingFile)> {
        let mut opts = OpenOptions::new();
        opts.write(true).read(true).create_new(true);
        opts.follow(FollowSymlinks::No);
        // with a recorded mode to come, its owner's only until then: what is being
        // written, or was left by a crash, is no one else's to read; without one, the
        // system's default (0666 less the umask, or the folder's default ACL)
        #[cfg(unix)]
        if mode_recorded {
            cap_std::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        }
        // no mode bits elsewhere: the new file takes the folder's inherited ACL
        #[cfg(not(unix))]
        let _ = mode_recorded;
        for _ in 0..8 {
            let tmp = format!(
                ".{}.rehydra-{:016x}",
                truncate(name, 64),
                rand::random::<u64>()
            );
            match self.dir.open_with(&tmp, &opts) {
                Ok(f) => {
                    let pending = PendingFile {
                        dir: self.try_clone()?,
                        tmp,
                        name: name.to_string(),
                        done: false,
                    };
                    return Ok((f.into_std(), pending));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(TargetError::io(
                        format!("creating a temporary file in {}", self.path.display()),
                        e,
                    ));
                }
            }
        }
        Err(TargetError::io(
            format!("creating a temporary file in {}", self.path.display()),
            io::ErrorKind::AlreadyExists.into(),
        ))
    }

    /// Create the symbolic link `name` → `target` (the link is created, never followed);
    /// with `replace`, an existing file or link of that name is replaced atomically.
    /// On Windows links are not created (it needs a privilege admins rarely hold): the
    /// caller reports them as skipped.
    ///
    /// # Errors
    /// `name` exists and `replace` is off; a folder is in its place; I/O failure.
    #[cfg(unix)]
    pub fn symlink(
        &self,
        name: &str,
        target: &str,
        replace: bool,
        owner: Option<&Owner>,
    ) -> Result<()> {
        let path = self.child_path(name);
        self.may_take(name, replace, "creating the link")?;
        // made under a temporary name, then renamed over: never a moment without either
        let tmp = format!(
            ".{}.rehydra-{:016x}",
            truncate(name, 64),
            rand::random::<u64>()
        );
        self.dir
            .symlink_contents(target, &tmp)
            .map_err(|e| TargetError::io(format!("creating the link {}", path.display()), e))?;
        if let Some(o) = owner
            && let Err(e) = owner::chown_link(&self.dir, &tmp, o)
        {
            let _ = self.dir.remove_file(&tmp);
            return Err(TargetError::io(
                format!("setting the owner of {}", path.display()),
                e,
            ));
        }
        if let Err(e) = self.dir.rename(&tmp, &self.dir, name) {
            let _ = self.dir.remove_file(&tmp);
            return Err(TargetError::io(
                format!("creating the link {}", path.display()),
                e,
            ));
        }
        Ok(())
    }

    /// See the Unix version: links are not created on this system.
    ///
    /// # Errors
    /// Never.
    #[cfg(not(unix))]
    pub fn symlink(
        &self,
        _name: &str,
        _target: &str,
        _replace: bool,
        _owner: Option<&Owner>,
    ) -> Result<()> {
        Ok(())
    }

    /// Whether a new entry may take `name`: nothing is there, or (with `replace`) a file
    /// or a link, which is replaced, never written through; a folder, device, FIFO or
    /// socket never. `doing` names the act in the error ("moving into").
    fn may_take(&self, name: &str, replace: bool, doing: &str) -> Result<()> {
        let refused: io::Error = match self.existing(name)? {
            Existing::Missing => return Ok(()),
            what @ (Existing::Dir | Existing::Other) => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is in its place", what.describe()),
            ),
            Existing::File | Existing::Symlink if !replace => io::ErrorKind::AlreadyExists.into(),
            Existing::File | Existing::Symlink => return Ok(()),
        };
        Err(TargetError::io(
            format!("{doing} {}", self.child_path(name).display()),
            refused,
        ))
    }

    /// Apply owner, mode and modification time to this folder itself (best effort for
    /// the time, which some systems refuse on folder handles). Returns whether the owner
    /// was restored.
    ///
    /// # Errors
    /// Setting the owner or mode failed.
    pub fn set_meta(&self, meta: &Meta) -> Result<bool> {
        apply_meta(&self.handle()?, meta, &self.path)
    }

    /// The folder opened for reading (folder handles of `cap-std` are `O_PATH` on Linux,
    /// which can be neither synced nor given a mode); on Windows for its attributes, with
    /// the backup-semantics flag without which Windows opens no folder.
    fn handle(&self) -> Result<std::fs::File> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        #[cfg(windows)]
        {
            use cap_std::fs::OpenOptionsExt;
            const FILE_READ_ATTRIBUTES: u32 = 0x80;
            const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
            const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
            opts.access_mode(FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES)
                .custom_flags(FILE_FLAG_BACKUP_SEMANTICS);
        }
        self.dir
            .open_with(".", &opts)
            .map(cap_std::fs::File::into_std)
            .map_err(|e| TargetError::io(format!("opening {}", self.path.display()), e))
    }

    /// Make the entries of this folder durable (after renames into it).
    ///
    /// # Errors
    /// The sync failed.
    pub fn sync(&self) -> Result<()> {
        #[cfg(unix)]
        self.handle()?
            .sync_all()
            .map_err(|e| TargetError::io(format!("syncing {}", self.path.display()), e))?;
        Ok(())
    }
}

/// Owner first (changing the owner clears set-ID bits), then the mode, then the time.
fn apply_meta(f: &std::fs::File, meta: &Meta, path: &Path) -> Result<bool> {
    let owned = match &meta.owner {
        Some(o) if running_as_root() => {
            owner::chown_file(f, o).map_err(|e| {
                TargetError::io(format!("setting the owner of {}", path.display()), e)
            })?;
            true
        }
        _ => false,
    };
    #[cfg(unix)]
    if let Some(bits) = meta.mode_bits(owned) {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(bits))
            .map_err(|e| TargetError::io(format!("setting the mode of {}", path.display()), e))?;
    }
    if let Some(ns) = meta.mtime_ns {
        let t = filetime::FileTime::from_unix_time(
            ns.div_euclid(1_000_000_000),
            ns.rem_euclid(1_000_000_000) as u32,
        );
        // folders on some systems refuse times through a read-only handle: best effort
        let _ = filetime::set_file_handle_times(f, None, Some(t));
    }
    Ok(owned)
}

fn truncate(name: &str, max: usize) -> &str {
    if name.len() <= max {
        return name;
    }
    let mut end = max;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// A file written under a temporary name, renamed to its real name by
/// [`PendingFile::commit`]; removed if dropped before that.
pub struct PendingFile {
    dir: TargetDir,
    tmp: String,
    name: String,
    done: bool,
}

impl PendingFile {
    /// The final path (for messages).
    pub fn path(&self) -> PathBuf {
        self.dir.child_path(&self.name)
    }

    /// Sync `file` (the one [`TargetDir::create_file`] returned), apply `meta`, and
    /// rename it to its real name. With `replace` an existing file or link of that name
    /// is replaced (the link itself, never what it points at); without it an existing
    /// entry is an error and the temporary file is removed. Returns whether the owner
    /// was restored.
    ///
    /// # Errors
    /// Sync, metadata or rename failure (the temporary file is removed).
    pub fn commit(self, file: std::fs::File, meta: &Meta, replace: bool) -> Result<bool> {
        file.sync_all()
            .map_err(|e| TargetError::io(format!("writing {}", self.path().display()), e))?;
        let owned = self.apply(file, meta)?;
        self.place(replace)?;
        Ok(owned)
    }

    /// Apply `meta` to the written `file` and close it; whether the owner was restored.
    fn apply(&self, file: std::fs::File, meta: &Meta) -> Result<bool> {
        apply_meta(&file, meta, &self.path())
    }

    /// Rename the (complete, durable) file to its real name; see [`PendingFile::commit`].
    fn place(mut self, replace: bool) -> Result<()> {
        let path = self.path();
        self.dir.may_take(&self.name, replace, "moving into")?;
        self.dir
            .dir
            .rename(&self.tmp, &self.dir.dir, &self.name)
            .map_err(|e| TargetError::io(format!("moving into {}", path.display()), e))?;
        self.done = true;
        Ok(())
    }

    /// Remove the temporary file.
    pub fn abort(mut self) {
        self.remove();
    }

    fn remove(&mut self) {
        if !self.done {
            let _ = self.dir.dir.remove_file(&self.tmp);
            self.done = true;
        }
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(test)]
mod tests;
