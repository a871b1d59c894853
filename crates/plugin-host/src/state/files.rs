//! The `files` and `files-write` capabilities: the checks and reads of
//! `rehydra_plugin_rules::files`, and crash-safe writes.

use std::io::Write;
use std::path::Path;

use rehydra_plugin_rules::files as rules;

use super::{Res, State, blocking, io_err};
use crate::bindings::rehydra::plugin::files;
use crate::policy::CapabilityKind;

impl files::Host for State {
    fn stat(&mut self, path: String) -> Res<files::Entry> {
        self.enter()?;
        let p = self.path(CapabilityKind::Files, &path)?;
        blocking(|| Ok(rules::stat(&p, &path)?.into()))
    }
    fn list_dir(&mut self, path: String) -> Res<Vec<files::Entry>> {
        self.enter()?;
        let p = self.path(CapabilityKind::Files, &path)?;
        let budget = self.budget.clone();
        blocking(|| {
            let tick = || {
                budget
                    .check()
                    .map_err(|stop| super::stop_err(stop, &budget))
            };
            let list = rules::list_dir(&p, &path, tick)?;
            Ok(list.into_iter().map(files::Entry::from).collect())
        })
    }
    fn read_file(&mut self, path: String) -> Res<Vec<u8>> {
        self.enter()?;
        let p = self.path(CapabilityKind::Files, &path)?;
        blocking(|| Ok(rules::read_small(&p, &path)?))
    }
    fn write_file(&mut self, path: String, contents: Vec<u8>, overwrite: bool) -> Res<()> {
        self.enter()?;
        self.writable(CapabilityKind::FilesWrite, &path, "writing a file")?;
        let p = self.path(CapabilityKind::FilesWrite, &path)?;
        rules::may_write(&p, &path, overwrite)?;
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
