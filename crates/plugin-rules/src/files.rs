//! The read side of the `files` capability, on a path the grants have already resolved:
//! what an entry reports, a folder's entries, a small file's bytes. Errors name the path
//! as the plugin wrote it.

use std::io::Read;
use std::path::Path;

use crate::error::{ErrorCode, HostError};

/// Largest small payload a plugin may read or write in one piece (`read-file`).
pub const SMALL_MAX: u64 = 16 << 20;
/// Most entries `list-dir` returns.
pub const LIST_MAX: usize = 100_000;
/// `list-dir` calls its tick after this many entries, and again after as many more.
pub const LIST_TICK: usize = 1024;

/// What an entry is (a link is not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else (device, socket, pipe).
    Other,
}

/// A file or folder as `stat` and `list-dir` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name (the last component).
    pub name: String,
    /// What it is.
    pub kind: EntryKind,
    /// Bytes.
    pub size: u64,
    /// Modified, in seconds since 1970 (0 when unknown or earlier).
    pub modified: i64,
}

impl Entry {
    /// The entry `name` with metadata `md` (from `symlink_metadata`, or a folder listing).
    pub fn new(name: String, md: &std::fs::Metadata) -> Self {
        let kind = if md.is_symlink() {
            EntryKind::Symlink
        } else if md.is_dir() {
            EntryKind::Directory
        } else if md.is_file() {
            EntryKind::File
        } else {
            EntryKind::Other
        };
        let modified = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Self {
            name,
            kind,
            size: md.len(),
            modified,
        }
    }
}

/// The entry at `p` (the plugin's `path`, resolved).
///
/// # Errors
/// The OS error, as [`HostError::io`].
pub fn stat(p: &Path, path: &str) -> Result<Entry, HostError> {
    let md = std::fs::symlink_metadata(p).map_err(|e| HostError::io(path, &e))?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Entry::new(name, &md))
}

/// The entries of the folder `p`, sorted by name; `tick` is called every [`LIST_TICK`]
/// entries (the host checks the call's time and cancel flag there).
///
/// # Errors
/// The OS error, as [`HostError::io`]; `invalid-input` over [`LIST_MAX`] entries; what
/// `tick` returns.
pub fn list_dir(
    p: &Path,
    path: &str,
    mut tick: impl FnMut() -> Result<(), HostError>,
) -> Result<Vec<Entry>, HostError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).map_err(|e| HostError::io(path, &e))? {
        let e = e.map_err(|e| HostError::io(path, &e))?;
        let md = e
            .metadata()
            .map_err(|err| HostError::io(&e.path().to_string_lossy(), &err))?;
        out.push(Entry::new(
            e.file_name().to_string_lossy().into_owned(),
            &md,
        ));
        if out.len() > LIST_MAX {
            return Err(HostError::new(
                ErrorCode::InvalidInput,
                format!("{path} has more than {LIST_MAX} entries"),
            ));
        }
        if out.len() % LIST_TICK == 0 {
            tick()?;
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The bytes of the file `p`, at most [`SMALL_MAX`].
///
/// # Errors
/// The OS error, as [`HostError::io`]; `invalid-input` when larger.
pub fn read_small(p: &Path, path: &str) -> Result<Vec<u8>, HostError> {
    let f = std::fs::File::open(p).map_err(|e| HostError::io(path, &e))?;
    let mut buf = Vec::new();
    f.take(SMALL_MAX + 1)
        .read_to_end(&mut buf)
        .map_err(|e| HostError::io(path, &e))?;
    if buf.len() as u64 > SMALL_MAX {
        return Err(HostError::new(
            ErrorCode::InvalidInput,
            format!("{path} is larger than 16 MiB; ask the engine to ingest it instead"),
        ));
    }
    Ok(buf)
}

/// Refuse to replace what exists at `p` unless `overwrite` is set.
///
/// # Errors
/// `invalid-input` when something exists at `p` and `overwrite` is false.
pub fn may_write(p: &Path, path: &str, overwrite: bool) -> Result<(), HostError> {
    if !overwrite && std::fs::symlink_metadata(p).is_ok() {
        return Err(HostError::new(
            ErrorCode::InvalidInput,
            format!("{path} exists; pass overwrite to replace it"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_listed_sorted_and_small_files_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b"), b"bee").unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        let mut ticks = 0;
        let list = list_dir(dir.path(), "/d", || {
            ticks += 1;
            Ok(())
        })
        .unwrap();
        let names: Vec<_> = list.iter().map(|e| (e.name.as_str(), e.kind)).collect();
        assert_eq!(names, [("a", EntryKind::Directory), ("b", EntryKind::File)]);
        assert_eq!(ticks, 0);
        let b = dir.path().join("b");
        assert_eq!(stat(&b, "/d/b").unwrap().size, 3);
        assert_eq!(read_small(&b, "/d/b").unwrap(), b"bee");
        assert_eq!(
            may_write(&b, "/d/b", false).unwrap_err().code,
            ErrorCode::InvalidInput
        );
        assert!(may_write(&b, "/d/b", true).is_ok());
        let gone = stat(&dir.path().join("c"), "/d/c").unwrap_err();
        assert_eq!(gone.code, ErrorCode::NotFound);
        assert!(gone.message.starts_with("/d/c: "), "{}", gone.message);
    }
}
