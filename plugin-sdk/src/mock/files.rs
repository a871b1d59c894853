//! The `files` imports, served from the local filesystem under the granted roots (the
//! rules of the real host's `state/files.rs`).

use std::io::Read;

use super::grants::Kind;
use super::state::{Res, err, io_err, with};
use super::store;
use crate::ErrorCode;
use crate::files::{Entry, EntryKind, Error};

/// Largest file `read-file` returns.
const SMALL_MAX: u64 = 16 << 20;
/// Most entries `list-dir` returns.
const LIST_MAX: usize = 100_000;

fn entry(name: String, md: &std::fs::Metadata) -> Entry {
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
    Entry {
        name,
        kind,
        size: md.len(),
        modified,
    }
}

/// Status of a path under a `files` (or `files-write`) root.
///
/// # Errors
/// `denied` (not granted, outside the roots, relative, too long), `not-found`, `failed`.
pub fn stat(path: &str) -> Result<Entry, Error> {
    let p = with(|s| -> Res<_> {
        s.enter()?;
        s.path(Kind::Files, path)
    })?;
    let md = std::fs::symlink_metadata(&p).map_err(|e| io_err(path, &e))?;
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(entry(name, &md))
}

/// Entries of a folder, sorted by name.
///
/// # Errors
/// As [`stat`]; `invalid-input` over 100 000 entries.
pub fn list_dir(path: &str) -> Result<Vec<Entry>, Error> {
    let p = with(|s| -> Res<_> {
        s.enter()?;
        s.path(Kind::Files, path)
    })?;
    let mut out = Vec::new();
    for e in std::fs::read_dir(&p).map_err(|e| io_err(path, &e))? {
        let e = e.map_err(|e| io_err(path, &e))?;
        let md = e
            .metadata()
            .map_err(|err| io_err(&e.path().to_string_lossy(), &err))?;
        out.push(entry(e.file_name().to_string_lossy().into_owned(), &md));
        if out.len() > LIST_MAX {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("{path} has more than {LIST_MAX} entries"),
            ));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Contents of a small file.
///
/// # Errors
/// As [`stat`]; `invalid-input` over 16 MiB.
pub fn read_file(path: &str) -> Result<Vec<u8>, Error> {
    let p = with(|s| -> Res<_> {
        s.enter()?;
        s.path(Kind::Files, path)
    })?;
    let f = std::fs::File::open(&p).map_err(|e| io_err(path, &e))?;
    let mut buf = Vec::new();
    f.take(SMALL_MAX + 1)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, &e))?;
    if buf.len() as u64 > SMALL_MAX {
        return Err(err(
            ErrorCode::InvalidInput,
            format!("{path} is larger than 16 MiB; ask the engine to ingest it instead"),
        ));
    }
    Ok(buf)
}

/// Write a small file crash-safely under a `files-write` root; an existing file is
/// replaced only with `overwrite`.
///
/// # Errors
/// As [`stat`]; `invalid-input` when the file exists and `overwrite` is false,
/// `not-found` when its folder does not exist.
pub fn write_file(path: &str, contents: &[u8], overwrite: bool) -> Result<(), Error> {
    let p = with(|s| -> Res<_> {
        s.enter()?;
        let p = s.path(Kind::FilesWrite, path)?;
        if !overwrite && std::fs::symlink_metadata(&p).is_ok() {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("{path} exists; pass overwrite to replace it"),
            ));
        }
        s.audit(
            Kind::FilesWrite,
            path,
            true,
            &format!("{} bytes", contents.len()),
        );
        Ok(p)
    })?;
    store::write_file(&p, contents, None).map_err(|e| io_err(path, &e))
}
