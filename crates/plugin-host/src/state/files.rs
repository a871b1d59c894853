//! The `files` and `files-write` capabilities: the checks and reads of
//! `rehydra_plugin_rules::files`, and crash-safe writes; reads of object storage
//! (`s3://…`, `azure://…`) through the caller's [`ObjectStores`].

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rehydra_plugin_rules::files as rules;

use super::{Res, SMALL_MAX, State, blocking, io_err};
use crate::bindings::rehydra::plugin::files;
use crate::policy::CapabilityKind;
use crate::{ObjectPath, ObjectStores};

impl State {
    /// The checked object path of a read of object storage (`s3://…`, `azure://…`), and
    /// the stores that read it; audited, as a request over the network is, and denied
    /// outside the grants.
    fn object(&mut self, path: &str, what: &str) -> Res<(ObjectPath, Arc<dyn ObjectStores>)> {
        match self.grants.object(path) {
            Ok(p) => {
                // a request over the network, as `http` audits its requests
                self.audit(CapabilityKind::Files, &p.url(), true, what);
                Ok((p, self.object_stores.clone()))
            }
            Err(reason) => {
                let reason = reason.replace("<plugin>", &self.plugin);
                self.check(CapabilityKind::Files, path, Err(reason))?;
                unreachable!("check returns Err for Err")
            }
        }
    }
}

impl files::Host for State {
    fn stat(&mut self, path: String) -> Res<files::Entry> {
        self.enter()?;
        if ObjectPath::is_url(&path) {
            let (p, stores) = self.object(&path, "stat")?;
            return blocking(|| Ok(stores.stat(&p)?.into()));
        }
        let p = self.path(CapabilityKind::Files, &path)?;
        blocking(|| Ok(rules::stat(&p, &path)?.into()))
    }
    fn list_dir(&mut self, path: String) -> Res<Vec<files::Entry>> {
        self.enter()?;
        if ObjectPath::is_url(&path) {
            let (p, stores) = self.object(&path, "list")?;
            let budget = self.budget.clone();
            let mut tick = || {
                budget
                    .check()
                    .map_err(|stop| super::stop_err(stop, &budget))
            };
            let list = blocking(|| stores.list(&p, &mut tick))?;
            return Ok(list.into_iter().map(files::Entry::from).collect());
        }
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
        if ObjectPath::is_url(&path) {
            let (p, stores) = self.object(&path, "read")?;
            return blocking(|| Ok(stores.read(&p, SMALL_MAX)?));
        }
        let p = self.path(CapabilityKind::Files, &path)?;
        blocking(|| Ok(rules::read_small(&p, &path)?))
    }
    fn write_file(&mut self, path: String, contents: Vec<u8>, overwrite: bool) -> Res<()> {
        self.enter()?;
        if ObjectPath::is_url(&path) {
            self.check(
                CapabilityKind::FilesWrite,
                &path,
                Err("object storage is read-only for plugins".into()),
            )?;
        }
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
