//! The `files` and `files-write` capabilities.

use std::io::{Read, Write};
use std::path::Path;

use super::{Res, SMALL_MAX, State, blocking, err, io_err};
use crate::bindings::rehydra::plugin::files;
use crate::dto::ErrorCode;
use crate::policy::CapabilityKind;

const LIST_MAX: usize = 100_000;

fn entry(name: String, md: &std::fs::Metadata) -> files::Entry {
    let kind = if md.is_symlink() {
        files::EntryKind::Symlink
    } else if md.is_dir() {
        files::EntryKind::Directory
    } else if md.is_file() {
        files::EntryKind::File
    } else {
        files::EntryKind::Other
    };
    let modified = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    files::Entry {
        name,
        kind,
        size: md.len(),
        modified,
    }
}

impl files::Host for State {
    fn stat(&mut self, path: String) -> Res<files::Entry> {
        self.enter()?;
        let p = self.path(CapabilityKind::Files, &path)?;
        blocking(|| {
            let md = std::fs::symlink_metadata(&p).map_err(|e| io_err(&path, &e))?;
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(entry(name, &md))
        })
    }
    fn list_dir(&mut self, path: String) -> Res<Vec<files::Entry>> {
        self.enter()?;
        let p = self.path(CapabilityKind::Files, &path)?;
        let budget = self.budget.clone();
        blocking(|| {
            let mut out = Vec::new();
            for e in std::fs::read_dir(&p).map_err(|e| io_err(&path, &e))? {
                let e = e.map_err(|e| io_err(&path, &e))?;
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
                if out.len() % 1024 == 0 {
                    budget
                        .check()
                        .map_err(|stop| super::stop_err(stop, &budget))?;
                }
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
    }
    fn read_file(&mut self, path: String) -> Res<Vec<u8>> {
        self.enter()?;
        let p = self.path(CapabilityKind::Files, &path)?;
        blocking(|| {
            let f = std::fs::File::open(&p).map_err(|e| io_err(&path, &e))?;
            let mut buf = Vec::new();
            f.take(SMALL_MAX + 1)
                .read_to_end(&mut buf)
                .map_err(|e| io_err(&path, &e))?;
            if buf.len() as u64 > SMALL_MAX {
                return Err(err(
                    ErrorCode::InvalidInput,
                    format!("{path} is larger than 16 MiB; ask the engine to ingest it instead"),
                ));
            }
            Ok(buf)
        })
    }
    fn write_file(&mut self, path: String, contents: Vec<u8>, overwrite: bool) -> Res<()> {
        self.enter()?;
        let p = self.path(CapabilityKind::FilesWrite, &path)?;
        if !overwrite && std::fs::symlink_metadata(&p).is_ok() {
            return Err(err(
                ErrorCode::InvalidInput,
                format!("{path} exists; pass overwrite to replace it"),
            ));
        }
        self.audit(
            CapabilityKind::FilesWrite,
            &path,
            true,
            &format!("{} bytes", contents.len()),
        );
        blocking(|| write_atomic(&p, &contents).map_err(|e| io_err(&path, &e)))
    }
}

/// Write through a temporary file in the same folder, fsync, rename, fsync the folder.
fn write_atomic(p: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = p
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(p).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}
