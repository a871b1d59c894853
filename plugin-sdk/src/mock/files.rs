//! The `files` imports, served from the local filesystem under the granted roots: the
//! checks and reads of `rehydra_plugin_rules::files`, which the real host applies too.
//! An `s3://…` or `azure://…` path is checked against the granted bucket prefixes as the
//! host checks it and read from the folder the test gave that bucket
//! ([`crate::mock::MockHost::bucket`]).

use rehydra_plugin_rules::CapabilityKind;
use rehydra_plugin_rules::files as rules;

use super::state::{Res, io_err, with};
use super::store;
use crate::files::{Entry, EntryKind, Error};

impl From<rules::Entry> for Entry {
    fn from(e: rules::Entry) -> Self {
        let kind = match e.kind {
            rules::EntryKind::File => EntryKind::File,
            rules::EntryKind::Directory => EntryKind::Directory,
            rules::EntryKind::Symlink => EntryKind::Symlink,
            rules::EntryKind::Other => EntryKind::Other,
        };
        Self {
            name: e.name,
            kind,
            size: e.size,
            modified: e.modified,
        }
    }
}

/// Status of a path under a `files` (or `files-write`) root.
///
/// # Errors
/// `denied` (not granted, outside the roots, relative, too long), `not-found`, `failed`.
pub fn stat(path: &str) -> Result<Entry, Error> {
    let p = with(|s| -> Res<_> {
        s.enter()?;
        s.file(path)
    })?;
    Ok(rules::stat(&p, path)?.into())
}

/// Entries of a folder, sorted by name.
///
/// # Errors
/// As [`stat`]; `invalid-input` over 100 000 entries.
pub fn list_dir(path: &str) -> Result<Vec<Entry>, Error> {
    let p = with(|s| -> Res<_> {
        s.enter()?;
        s.file(path)
    })?;
    let list = rules::list_dir(&p, path, || Ok(()))?;
    Ok(list.into_iter().map(Entry::from).collect())
}

/// Contents of a small file.
///
/// # Errors
/// As [`stat`]; `invalid-input` over 16 MiB.
pub fn read_file(path: &str) -> Result<Vec<u8>, Error> {
    let p = with(|s| -> Res<_> {
        s.enter()?;
        s.file(path)
    })?;
    Ok(rules::read_small(&p, path)?)
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
        s.object(CapabilityKind::FilesWrite, path)?;
        let p = s.path(CapabilityKind::FilesWrite, path)?;
        rules::may_write(&p, path, overwrite)?;
        s.audit(
            CapabilityKind::FilesWrite,
            path,
            true,
            &format!("{} bytes", contents.len()),
        );
        Ok(p)
    })?;
    store::write_file(&p, contents, None).map_err(|e| io_err(path, &e))
}
