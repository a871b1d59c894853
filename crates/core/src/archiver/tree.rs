//! Folder items: the tree walked in path order, each file read or, when unchanged since
//! the previous restore point, taken from it (`previous.rs`).

use std::fs::{self, File};
use std::path::Path;

use super::{Run, SMALL_FILE, previous};
use crate::contentmap::{MapWriter, NodeKind};
use crate::error::{Error, Result};

impl Run<'_, '_> {
    /// Walk the entry at `rel`; `true` when the patterns left it out.
    pub(super) fn walk(
        &mut self,
        root: &Path,
        rel: &str,
        map: &mut MapWriter<File>,
        prev: &mut Option<previous::Previous<'_>>,
    ) -> Result<bool> {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let md = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                if rel.is_empty() {
                    return Err(Error::io(format!("backup source {}", path.display()), e));
                }
                if !self.exclude.excludes(rel, &path, false) {
                    self.warnings.push(format!("{}: {e}", path.display()));
                }
                return Ok(false);
            }
        };
        if !rel.is_empty() && self.exclude.excludes(rel, &path, md.is_dir()) {
            self.summary.excluded += 1;
            return Ok(true);
        }
        let mut node = self.node_of(rel, &md);
        let ft = md.file_type();
        if ft.is_symlink() {
            node.kind = NodeKind::Symlink;
            node.target = fs::read_link(&path)
                .ok()
                .map(|t| t.to_string_lossy().into_owned());
            map.node(node).map_err(|e| Error::io("content map", e))?;
        } else if ft.is_dir() {
            node.kind = NodeKind::Dir;
            map.node(node).map_err(|e| Error::io("content map", e))?;
            self.summary.dirs += 1;
            if self.exclude.one_file_system && !rel.is_empty() && other_device(root, &md) {
                // the mount point is kept (empty), as restic does; what is mounted there is not
                return Ok(false);
            }
            let mut names: Vec<std::ffi::OsString> = match fs::read_dir(&path) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.file_name())).collect(),
                Err(e) => {
                    self.warnings.push(format!("{}: {e}", path.display()));
                    return Ok(false);
                }
            };
            names.sort();
            let (listed, mut left_out) = (names.len(), 0);
            for n in names {
                let child = match n.to_str() {
                    Some(s) => {
                        if rel.is_empty() {
                            s.to_string()
                        } else {
                            format!("{rel}/{s}")
                        }
                    }
                    None => {
                        self.warnings.push(format!(
                            "{}: file name is not UTF-8; skipped",
                            path.join(&n).display()
                        ));
                        continue;
                    }
                };
                if self.walk(root, &child, map, prev)? {
                    left_out += 1;
                }
            }
            if rel.is_empty() && listed > 0 && left_out == listed {
                // `*/` or a stray pattern: say so rather than save an empty folder quietly
                self.warnings.push(format!(
                    "every entry of {} was excluded by the patterns ({}): the restore point holds the empty folder",
                    path.display(),
                    self.exclude.patterns().join(", ")
                ));
            }
        } else if ft.is_file() {
            if let Some(extents) = prev.as_mut().and_then(|p| p.unchanged(&node)) {
                map.node(node).map_err(|e| Error::io("content map", e))?;
                for e in extents {
                    self.copy_extent(e, map)?;
                }
                self.summary.files += 1;
                self.summary.bytes += md.len();
                self.summary.unchanged_files += 1;
                self.summary.unchanged_bytes += md.len();
                return Ok(false);
            }
            self.progress.message(&path.display().to_string());
            match File::open(&path) {
                Ok(f) => {
                    map.node(node).map_err(|e| Error::io("content map", e))?;
                    // a file that grew past the limit since it was listed is read whole below
                    let n = if md.len() <= SMALL_FILE {
                        let mut f = f;
                        let n = self.feed_small(&mut f, map)?;
                        if n > SMALL_FILE {
                            n + self.feed(f, false, map)?
                        } else {
                            n
                        }
                    } else {
                        self.feed(f, false, map)?
                    };
                    self.summary.files += 1;
                    self.summary.bytes += n;
                    if n != md.len() {
                        self.warnings.push(format!(
                            "{}: size changed while reading ({} → {n} bytes)",
                            path.display(),
                            md.len()
                        ));
                    }
                }
                Err(e) => self.warnings.push(format!("{}: {e}", path.display())),
            }
        } else {
            self.warnings.push(format!(
                "{}: special file (device, fifo or socket) skipped",
                path.display()
            ));
        }
        Ok(false)
    }
}

/// Whether a folder lies on another device than the item's root (Unix; never elsewhere).
fn other_device(root: &Path, md: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        fs::symlink_metadata(root).is_ok_and(|r| r.dev() != md.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = (root, md);
        false
    }
}
