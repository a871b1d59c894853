//! The mock's repository: restore points and their items' contents, held in memory, and
//! how an item is read from and restored to the local filesystem (the rules of the
//! engine's restorer for one item, `crates/core/src/restorer.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::state::{Res, err};
use crate::{ErrorCode, ItemInfo, ItemKind, RestorePoint};

/// One entry of a tree item.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// An entry of a tree item: its path below the tree's root (empty for the root).
#[derive(Clone, Debug)]
pub(crate) struct TreeNode {
    pub(crate) path: Vec<String>,
    pub(crate) node: Node,
    pub(crate) mode: Option<u32>,
    pub(crate) modified: Option<SystemTime>,
}

/// What an item holds.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// A folder tree (or one file with its metadata), parents before children.
    Tree(Vec<TreeNode>),
    /// A stream, a document or a disk's virtual bytes.
    Bytes(Vec<u8>),
}

/// An item and its content.
#[derive(Clone, Debug)]
pub(crate) struct StoredItem {
    pub(crate) info: ItemInfo,
    pub(crate) content: Content,
}

impl StoredItem {
    pub(crate) fn bytes(name: &str, kind: ItemKind, bytes: Vec<u8>) -> Self {
        Self {
            info: ItemInfo {
                name: name.into(),
                kind,
                size: bytes.len() as u64,
            },
            content: Content::Bytes(bytes),
        }
    }

    pub(crate) fn tree(name: &str, nodes: Vec<TreeNode>) -> Self {
        let size = nodes
            .iter()
            .map(|n| match &n.node {
                Node::File(b) => b.len() as u64,
                _ => 0,
            })
            .sum();
        Self {
            info: ItemInfo {
                name: name.into(),
                kind: ItemKind::Tree,
                size,
            },
            content: Content::Tree(nodes),
        }
    }
}

/// Ids of restore points and temporary names, unique in the process.
pub(crate) fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A restore point the mock holds: the record plugins see and the contents of its items.
///
/// Backups run through [`super::MockHost::backup`] add one when the plugin succeeds; a
/// test adds its own with [`super::MockHost::with_point`], for instance to be the
/// `previous` restore point of an incremental backup, or the one a restore reads.
#[derive(Clone, Debug)]
pub struct MockPoint {
    pub(crate) record: RestorePoint,
    pub(crate) items: Vec<StoredItem>,
}

impl MockPoint {
    /// An empty restore point of asset `asset` made now, consistency `crash`. Its workload
    /// and plugin are left empty: the mock reads them as the plugin under test's own.
    pub fn new(asset: &str) -> Self {
        Self {
            record: RestorePoint {
                id: format!("{:064x}", unique()),
                time: rfc3339(SystemTime::now()),
                workload: String::new(),
                asset: asset.into(),
                plugin_id: String::new(),
                plugin_version: String::new(),
                consistency: "crash".into(),
                items: Vec::new(),
                tags: Vec::new(),
            },
            items: Vec::new(),
        }
    }

    /// Set the workload.
    #[must_use]
    pub fn workload(mut self, workload: &str) -> Self {
        self.record.workload = workload.into();
        self
    }

    /// Set the plugin that made it.
    #[must_use]
    pub fn plugin(mut self, id: &str, version: &str) -> Self {
        self.record.plugin_id = id.into();
        self.record.plugin_version = version.into();
        self
    }

    /// Set the consistency (`crash`, `application` …).
    #[must_use]
    pub fn consistency(mut self, consistency: &str) -> Self {
        self.record.consistency = consistency.into();
        self
    }

    /// Set the time it was made (RFC 3339, in UTC as the host gives it).
    #[must_use]
    pub fn time(mut self, rfc3339: &str) -> Self {
        self.record.time = rfc3339.into();
        self
    }

    /// Add a tag.
    #[must_use]
    pub fn tag(mut self, tag: &str) -> Self {
        self.record.tags.push(tag.into());
        self
    }

    /// Add a document item.
    ///
    /// # Panics
    /// The name is already used in this restore point.
    #[must_use]
    pub fn document(self, name: &str, body: impl Into<Vec<u8>>) -> Self {
        self.push(StoredItem::bytes(name, ItemKind::Document, body.into()))
    }

    /// Add a stream item.
    ///
    /// # Panics
    /// The name is already used in this restore point.
    #[must_use]
    pub fn stream(self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.push(StoredItem::bytes(name, ItemKind::Stream, bytes.into()))
    }

    /// Add a disk item holding `bytes` as its virtual disk.
    ///
    /// # Panics
    /// The name is already used in this restore point.
    #[must_use]
    pub fn disk(self, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.push(StoredItem::bytes(name, ItemKind::Disk, bytes.into()))
    }

    /// Add a tree item read from `path` (a folder, or one file), as `ingest-path` reads it.
    ///
    /// # Errors
    /// `path` cannot be read.
    ///
    /// # Panics
    /// The name is already used in this restore point.
    pub fn tree(self, name: &str, path: impl AsRef<Path>) -> std::io::Result<Self> {
        let nodes = read_tree(path.as_ref(), &mut Vec::new())?;
        Ok(self.push(StoredItem::tree(name, nodes)))
    }

    /// The restore point as plugins see it.
    pub fn record(&self) -> RestorePoint {
        let mut r = self.record.clone();
        r.items = self.items.iter().map(|i| i.info.clone()).collect();
        r
    }

    fn push(mut self, item: StoredItem) -> Self {
        assert!(
            !self.items.iter().any(|i| i.info.name == item.info.name),
            "item name `{}` is used twice in one restore point",
            item.info.name
        );
        self.items.push(item);
        self
    }

    pub(crate) fn item(&self, name: &str) -> Option<&StoredItem> {
        self.items.iter().find(|i| i.info.name == name)
    }
}

/// `t` as RFC 3339 UTC with seconds.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    crate::time::rfc3339(secs)
}

fn metadata_of(md: &std::fs::Metadata) -> (Option<u32>, Option<SystemTime>) {
    #[cfg(unix)]
    let mode = Some(std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777);
    #[cfg(not(unix))]
    let mode = None;
    (mode, md.modified().ok())
}

/// Read `root` as a tree item: folders, files (their bytes) and links (not followed),
/// children sorted by name. What cannot be read inside the tree is a warning.
pub(crate) fn read_tree(root: &Path, warnings: &mut Vec<String>) -> std::io::Result<Vec<TreeNode>> {
    let md = std::fs::symlink_metadata(root)?;
    let mut out = Vec::new();
    if md.is_dir() {
        std::fs::read_dir(root)?;
    } else if md.is_file() {
        std::fs::File::open(root)?;
    }
    read_node(root, Vec::new(), &md, &mut out, warnings);
    Ok(out)
}

fn read_node(
    p: &Path,
    path: Vec<String>,
    md: &std::fs::Metadata,
    out: &mut Vec<TreeNode>,
    warnings: &mut Vec<String>,
) {
    let (mode, modified) = metadata_of(md);
    let ft = md.file_type();
    let node = if ft.is_symlink() {
        match std::fs::read_link(p) {
            Ok(t) => Node::Symlink(t.to_string_lossy().into_owned()),
            Err(e) => return warnings.push(format!("{}: {e}; skipped", p.display())),
        }
    } else if ft.is_dir() {
        Node::Dir
    } else if ft.is_file() {
        match std::fs::read(p) {
            Ok(b) => Node::File(b),
            Err(e) => return warnings.push(format!("{}: {e}; skipped", p.display())),
        }
    } else {
        return warnings.push(format!(
            "{}: not a file, folder or link; skipped",
            p.display()
        ));
    };
    let dir = matches!(node, Node::Dir);
    out.push(TreeNode {
        path: path.clone(),
        node,
        mode,
        modified,
    });
    if !dir {
        return;
    }
    let entries = match std::fs::read_dir(p) {
        Ok(rd) => rd.collect::<std::io::Result<Vec<_>>>(),
        Err(e) => Err(e),
    };
    let mut entries = match entries {
        Ok(e) => e,
        Err(e) => return warnings.push(format!("{}: {e}; its contents were skipped", p.display())),
    };
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for e in entries {
        let child = e.path();
        match std::fs::symlink_metadata(&child) {
            Ok(md) => {
                let mut sub = path.clone();
                sub.push(e.file_name().to_string_lossy().into_owned());
                read_node(&child, sub, &md, out, warnings);
            }
            Err(err) => warnings.push(format!("{}: {err}; skipped", child.display())),
        }
    }
}

fn invalid(m: impl Into<String>) -> crate::Error {
    err(ErrorCode::InvalidInput, m)
}

fn failed(what: &Path, e: &std::io::Error) -> crate::Error {
    err(ErrorCode::Failed, format!("{}: {e}", what.display()))
}

/// A name usable as one path component here.
fn component(name: &str) -> Option<&str> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']);
    #[cfg(windows)]
    let bad = bad || name.contains(['\\', ':', '*', '?', '"', '<', '>', '|']);
    (!bad).then_some(name)
}

/// What is at a path, links not followed.
fn existing(p: &Path, follow: bool) -> Option<std::fs::FileType> {
    let md = if follow {
        std::fs::metadata(p)
    } else {
        std::fs::symlink_metadata(p)
    };
    md.ok().map(|m| m.file_type())
}

fn describe(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a link"
    } else if ft.is_file() {
        "a file"
    } else {
        "a special file"
    }
}

/// Restore `item` to `target` (already checked against the write grants): a folder tree
/// *into* `target` (merged into an existing folder), anything else as the file `target`
/// or, when `target` is an existing folder, inside it under the last component of the
/// item's name. Conflicts (files and links the item also has) refuse the whole call
/// without `overwrite`, before anything is written. Returns the bytes written.
pub(crate) fn restore(
    item: &StoredItem,
    target: &Path,
    overwrite: bool,
    warnings: &mut Vec<String>,
) -> Res<u64> {
    let name = &item.info.name;
    let ext = target
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if let Some(e @ ("vhdx" | "vhd")) = ext.as_deref()
        && item.info.kind != ItemKind::Disk
    {
        return Err(invalid(format!(
            "item `{name}` is not a disk image: only disk items can be restored as .{e}"
        )));
    }
    let single;
    let nodes: &[TreeNode] = match &item.content {
        Content::Tree(ns) => ns,
        Content::Bytes(b) => {
            single = [TreeNode {
                path: Vec::new(),
                node: Node::File(b.clone()),
                mode: None,
                modified: None,
            }];
            &single
        }
    };
    let folder = matches!(nodes.first().map(|n| &n.node), Some(Node::Dir));
    let (anchor, prefix): (PathBuf, Option<String>) = if folder {
        (target.to_path_buf(), None)
    } else if target.is_dir() {
        let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
        let last = component(last).unwrap_or("restored");
        (target.to_path_buf(), Some(last.to_string()))
    } else {
        let file = target.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            invalid(format!(
                "restore target {} has no usable file name",
                target.display()
            ))
        })?;
        let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
        (
            parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            Some(file.to_string()),
        )
    };
    let dest = |rel: &[String]| {
        let mut p = anchor.clone();
        p.extend(prefix.iter());
        p.extend(rel.iter());
        p
    };
    // plan: nothing is written unless every node can go where it must
    let mut conflicts = Vec::new();
    for n in nodes {
        let (rel, p) = (&n.path, dest(&n.path));
        if let Some(c) = rel.iter().find(|c| component(c).is_none()) {
            return Err(invalid(format!(
                "item `{name}`: `{c}` cannot be restored on this system"
            )));
        }
        let here = existing(&p, rel.is_empty() && prefix.is_none());
        match (&n.node, here) {
            (_, None) => {}
            (Node::Dir, Some(ft)) if ft.is_dir() => {}
            (Node::Dir, Some(ft)) => {
                return Err(invalid(format!(
                    "{} is {} where the restore point has a folder; nothing was written. Remove it or choose another target",
                    p.display(),
                    describe(ft)
                )));
            }
            (_, Some(ft)) if ft.is_file() || ft.is_symlink() => conflicts.push(p),
            (_, Some(ft)) => {
                return Err(invalid(format!(
                    "restore target {} exists and is {}, not a regular file",
                    p.display(),
                    describe(ft)
                )));
            }
        }
    }
    if !conflicts.is_empty() && !overwrite {
        let first: Vec<String> = conflicts
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        return Err(invalid(format!(
            "{} restore target(s) already exist ({}{}); nothing was written",
            conflicts.len(),
            first.join(", "),
            if conflicts.len() > 3 { ", …" } else { "" }
        )));
    }
    std::fs::create_dir_all(&anchor).map_err(|e| failed(&anchor, &e))?;
    let mut bytes = 0;
    for n in nodes {
        let p = dest(&n.path);
        match &n.node {
            Node::Dir => match std::fs::create_dir(&p) {
                Ok(()) => {}
                Err(_) if p.is_dir() => {}
                Err(e) => return Err(failed(&p, &e)),
            },
            Node::File(b) => {
                write_file(&p, b, Some(n)).map_err(|e| failed(&p, &e))?;
                bytes += b.len() as u64;
            }
            Node::Symlink(t) => symlink(&p, t, warnings)?,
        }
    }
    Ok(bytes)
}

/// Write `p` through a fresh temporary file in the same folder, renamed into place (a
/// link already at `p` is replaced itself, never what it points to).
pub(crate) fn write_file(p: &Path, bytes: &[u8], meta: Option<&TreeNode>) -> std::io::Result<()> {
    let dir = p
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    let tmp = dir.join(format!(
        ".rehydra-mock-{}-{}.tmp",
        std::process::id(),
        unique()
    ));
    let result = (|| {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        std::io::Write::write_all(&mut &f, bytes)?;
        if let Some(t) = meta.and_then(|m| m.modified) {
            f.set_modified(t)?;
        }
        #[cfg(unix)]
        if let Some(mode) = meta.and_then(|m| m.mode) {
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        }
        f.sync_all()?;
        std::fs::rename(&tmp, p)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn symlink(p: &Path, target: &str, warnings: &mut Vec<String>) -> Res<()> {
    #[cfg(unix)]
    {
        let _ = warnings;
        if std::fs::symlink_metadata(p).is_ok() {
            std::fs::remove_file(p).map_err(|e| failed(p, &e))?;
        }
        std::os::unix::fs::symlink(target, p).map_err(|e| failed(p, &e))
    }
    #[cfg(not(unix))]
    {
        warnings.push(format!(
            "{}: symbolic link to `{target}` not created (this system needs a privilege for links)",
            p.display()
        ));
        Ok(())
    }
}
