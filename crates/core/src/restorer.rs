//! Restore: bring a restore point (or part of it) back to files.
//!
//! A restore is planned, then executed ([`plan`] → [`RestorePlan`] → [`execute`];
//! [`restore`] does both). Planning reads each item's content map once, checks it as a
//! repository written by another host must be checked ([`TreeCheck`]: names, order, no
//! path through a link or a file), finds where each node goes and what is already there,
//! and totals the bytes; it touches nothing. Execution reads the maps again (checking
//! them again) and refuses to start when targets exist and overwriting was not allowed.
//!
//! Everything is written through a [`TargetDir`]: below the target the admin chose, no
//! link is ever followed, including a folder the admin's user replaced with a link and a
//! link the restore itself just created. Files are written under an exclusive random
//! temporary name, verified chunk by chunk, synced, given their mode, time and (as root)
//! owner on the open handle, then renamed into place; folders that received files are
//! synced before the restore reports success. A failed restore never leaves a half file
//! under a real name. Zero runs become holes.

mod fetch;
mod fileout;
mod readahead;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rehydra_target::names::{self, System};
use rehydra_target::{Cursor, Existing, TargetDir};
use serde::Serialize;

pub use crate::contentmap::{ChunkStream, read_map};
use crate::contentmap::{MapEvent, Node, NodeKind, TreeCheck};
use crate::error::{Error, ErrorKind, Result};
use crate::index::ChunkIndex;
use crate::manifest::{Item, ItemKind, RestorePoint};
use crate::progress::{Cancel, Progress};
use crate::repository::Repository;
use fileout::FileOut;
use readahead::{ReadAhead, Step};

/// Options for [`restore`].
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Replace existing files.
    pub overwrite: bool,
    /// Restore only this item (by name); all items when `None`.
    pub item: Option<String>,
    /// Restore only this path inside a tree item (and what is below it).
    pub subpath: Option<String>,
    /// Only plan: report what would be written.
    pub dry_run: bool,
    /// Container for disk items: the raw virtual disk (default), a dynamic VHDX or a
    /// dynamic VHD.
    pub disk_format: DiskOutput,
    /// Write a disk item into an existing file or block device (at least the disk's
    /// size) instead of creating a new file; needs `overwrite` as well. Holes are
    /// written as zeros, since the target holds old data.
    pub in_place: bool,
}

/// What a disk item is restored as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DiskOutput {
    /// The raw virtual disk (holes stay sparse).
    #[default]
    Raw,
    /// A dynamic VHDX with 32 MiB blocks, only written blocks allocated.
    Vhdx,
    /// A dynamic VHD with 2 MiB blocks, only written blocks allocated.
    Vhd,
}

/// What a restore did (or, for a plan, would do).
#[derive(Debug, Default, Clone, Serialize)]
pub struct RestoreSummary {
    /// Files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Logical bytes restored.
    pub bytes: u64,
    /// Bytes left as holes.
    pub hole_bytes: u64,
    /// Targets that already existed (replaced only with overwrite).
    pub conflicts: Vec<String>,
    /// What was not restored as recorded, and why (links on a system that cannot make
    /// them, folder metadata that could not be applied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Where an item's nodes go: `anchor` (the admin's folder, links in it followed), then
/// `prefix` (names below it, never followed), then the node's own path.
#[derive(Debug, Clone)]
struct Placement {
    anchor: PathBuf,
    prefix: Vec<String>,
}

/// A checked restore, ready to [`execute`].
pub struct RestorePlan {
    index: ChunkIndex,
    items: Vec<(Item, Placement)>,
    target: PathBuf,
    opts: RestoreOptions,
    summary: RestoreSummary,
}

impl RestorePlan {
    /// What the restore will write (`bytes`, `files`…) and what exists already.
    pub fn summary(&self) -> &RestoreSummary {
        &self.summary
    }
}

/// Which item(s) of a restore point to restore.
fn select_items<'s>(snap: &'s RestorePoint, name: Option<&str>) -> Result<Vec<&'s Item>> {
    match name {
        Some(n) => snap
            .items
            .iter()
            .find(|i| i.name == n)
            .map(|i| vec![i])
            .ok_or_else(|| {
                let names: Vec<&str> = snap.items.iter().map(|i| i.name.as_str()).collect();
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the restore point has no item `{n}`; its items are: {}",
                        names.join(", ")
                    ),
                )
            }),
        None => Ok(snap
            .items
            .iter()
            .filter(|i| i.kind != ItemKind::Document)
            .collect()),
    }
}

fn invalid(m: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, m)
}

/// Whether `item` is a folder tree (a tree item whose root node is a folder); a tree
/// item of one backed-up file is placed like a stream.
fn is_folder(repo: &Repository, index: &ChunkIndex, item: &Item) -> Result<bool> {
    if item.kind != ItemKind::Tree {
        return Ok(false);
    }
    match read_map(repo, index, item).next() {
        Some(Ok(MapEvent::Node(n))) => Ok(n.kind == NodeKind::Dir),
        Some(Err(e)) => Err(e),
        _ => Ok(true),
    }
}

/// Where `item` goes in `target`.
fn place(target: &Path, item: &Item, folder: bool, multi: bool) -> Result<Placement> {
    if multi {
        let folder = names::item_folder(&item.name).map_err(|why| {
            invalid(format!(
                "item `{}` cannot be restored beside the others ({why})",
                item.name
            ))
            .with_hint(crate::Hint::OneItem)
        })?;
        return Ok(Placement {
            anchor: target.to_path_buf(),
            prefix: vec![folder],
        });
    }
    if folder {
        return Ok(Placement {
            anchor: target.to_path_buf(),
            prefix: Vec::new(),
        });
    }
    if target.is_dir() {
        // into the folder, under the item's own file name (item names are often paths,
        // from Windows or Unix)
        let last = item.name.rsplit(['/', '\\']).next().unwrap_or_default();
        let name =
            names::component(last).map_or_else(|_| "restored".to_string(), |c| c.into_owned());
        return Ok(Placement {
            anchor: target.to_path_buf(),
            prefix: vec![name],
        });
    }
    let name = target.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        invalid(format!(
            "restore target {} has no usable file name",
            target.display()
        ))
    })?;
    let parent = target.parent().filter(|p| !p.as_os_str().is_empty());
    Ok(Placement {
        anchor: parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        prefix: vec![name.to_string()],
    })
}

/// The selected sub-path as components.
fn subpath(opts: &RestoreOptions) -> Result<Vec<String>> {
    let Some(sp) = opts.subpath.as_deref() else {
        return Ok(Vec::new());
    };
    sp.split('/')
        .filter(|c| !c.is_empty())
        .map(|c| {
            names::check(c)
                .map(|()| c.to_string())
                .map_err(|why| invalid(format!("path `{sp}` cannot be selected: it has {why}")))
        })
        .collect()
}

/// Reads an item's nodes, checked, with the names they are written under.
struct Walker<'a> {
    item: &'a Item,
    place: &'a Placement,
    sub: &'a [String],
    check: TreeCheck,
    siblings: Siblings,
    seen: bool,
    matched: bool,
}

impl<'a> Walker<'a> {
    fn new(item: &'a Item, place: &'a Placement, sub: &'a [String]) -> Self {
        Self {
            item,
            place,
            sub,
            check: TreeCheck::default(),
            siblings: Siblings::default(),
            seen: false,
            matched: false,
        }
    }

    /// The target names of `n` below the anchor, or `None` when it is not selected.
    fn dest(&mut self, n: &Node) -> Result<Option<Vec<String>>> {
        let what = format!("content map of item `{}`", self.item.name);
        let rel: Vec<String> = if self.item.kind == ItemKind::Tree {
            let comps = self.check.next(n, &what)?;
            match select(&comps, self.sub) {
                Some(r) => r.to_vec(),
                None => return Ok(None),
            }
        } else {
            if self.seen || !n.path.is_empty() || n.kind != NodeKind::File {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    format!(
                        "{what}: a stream or disk holds exactly one file node; the repository was written by a damaged or hostile writer"
                    ),
                ));
            }
            Vec::new()
        };
        self.seen = true;
        self.matched = true;
        let mut dest = self.place.prefix.clone();
        for c in &rel {
            dest.push(
                names::component(c)
                    .map_err(|why| invalid(format!("{what}: `{c}` cannot be restored: {why}")))?
                    .into_owned(),
            );
        }
        self.siblings.add(&dest)?;
        Ok(Some(dest))
    }
}

/// `comps` relative to the parent of the selected `sub` path (so the selection itself is
/// restored by its own name), or `None` when outside the selection.
fn select<'c>(comps: &'c [String], sub: &[String]) -> Option<&'c [String]> {
    if sub.is_empty() {
        return Some(comps);
    }
    comps.starts_with(sub).then(|| &comps[sub.len() - 1..])
}

/// Names already used in each folder on the current path: two entries must never land
/// on one target (Windows escapes some names and ignores case). Bounded by the fan-out
/// along one path, not by the tree's size.
#[derive(Default)]
struct Siblings {
    levels: Vec<(Vec<String>, HashSet<String>)>,
}

impl Siblings {
    fn add(&mut self, dest: &[String]) -> Result<()> {
        let Some((name, parent)) = dest.split_last() else {
            return Ok(());
        };
        while self
            .levels
            .last()
            .is_some_and(|(d, _)| !parent.starts_with(d))
        {
            self.levels.pop();
        }
        if self
            .levels
            .last()
            .is_none_or(|(d, _)| d.as_slice() != parent)
        {
            self.levels.push((parent.to_vec(), HashSet::new()));
        }
        let key = names::collision_key(name, System::host());
        let set = &mut self.levels.last_mut().expect("pushed").1;
        if !set.insert(key) {
            return Err(invalid(format!(
                "two entries of the restore point would be written as `{}` (this system does not tell their names apart); restore them separately",
                dest.join("/")
            )));
        }
        Ok(())
    }
}

fn show(anchor: &Path, dest: &[String]) -> String {
    let mut p = anchor.to_path_buf();
    p.extend(dest);
    p.display().to_string()
}

/// Plan restoring `snap` into `target`: which items, where each node goes, conflicts and
/// totals. Touches nothing.
///
/// A single stream or disk item is written to `target` as a file (or inside it, when
/// `target` is an existing folder); tree items are written below `target`; with several
/// items, each goes to its own folder named after the item.
///
/// # Errors
/// A damaged or hostile content map ([`ErrorKind::Corrupt`]); a link, file or device
/// where a folder or file must go; options that do not fit the items.
pub fn plan(
    repo: &Repository,
    snap: &RestorePoint,
    target: &Path,
    opts: &RestoreOptions,
) -> Result<RestorePlan> {
    let (index, _) = repo.load_index()?;
    let items = select_items(snap, opts.item.as_deref())?;
    let multi = items.len() > 1;
    if opts.disk_format != DiskOutput::Raw
        && let Some(i) = items.iter().find(|i| i.kind != ItemKind::Disk)
    {
        return Err(invalid(format!(
            "item `{}` is not a disk image: only disk items can be restored as {:?}",
            i.name, opts.disk_format
        )));
    }
    if opts.in_place && multi {
        return Err(invalid("an in-place restore writes one disk").with_hint(crate::Hint::OneItem));
    }
    let sub = subpath(opts)?;
    let mut summary = RestoreSummary::default();
    let mut placed = Vec::new();
    let mut folders = HashSet::new();
    for item in items {
        let place = place(target, item, is_folder(repo, &index, item)?, multi)?;
        if multi && !folders.insert(names::collision_key(&place.prefix[0], System::host())) {
            return Err(invalid(format!(
                "two items would be restored into `{}`",
                place.prefix[0]
            ))
            .with_hint(crate::Hint::OneItem));
        }
        let run = ItemRun {
            repo,
            index: &index,
            item,
            place: &place,
            sub: &sub,
            target,
            opts,
        };
        plan_item(&run, &mut summary)?;
        placed.push((item.clone(), place));
    }
    Ok(RestorePlan {
        index,
        items: placed,
        target: target.to_path_buf(),
        opts: opts.clone(),
        summary,
    })
}

/// One item and where it goes, with what planning and restoring it read.
#[derive(Clone, Copy)]
struct ItemRun<'a> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    item: &'a Item,
    place: &'a Placement,
    sub: &'a [String],
    target: &'a Path,
    opts: &'a RestoreOptions,
}

fn plan_item(run: &ItemRun<'_>, summary: &mut RestoreSummary) -> Result<()> {
    let (item, place, opts) = (run.item, run.place, run.opts);
    let anchor = if opts.in_place {
        None
    } else {
        match TargetDir::open(&place.anchor) {
            Ok(d) => Some(d),
            Err(_) if !place.anchor.exists() => None,
            Err(e) => return Err(e.into()),
        }
    };
    let mut walker = Walker::new(item, place, run.sub);
    for ev in read_map(run.repo, run.index, item) {
        let MapEvent::Node(n) = ev? else { continue };
        let Some(dest) = walker.dest(&n)? else {
            continue;
        };
        if n.kind == NodeKind::File {
            summary.bytes += recorded_size(item, &n);
            summary.files += 1;
        }
        if opts.in_place {
            check_in_place(item, run.target, recorded_size(item, &n), opts.overwrite)?;
            summary.conflicts.push(run.target.display().to_string());
            continue;
        }
        let refs: Vec<&str> = dest.iter().map(String::as_str).collect();
        let existing = match &anchor {
            Some(a) => a.existing_at(&refs)?,
            None => Existing::Missing,
        };
        match (n.kind, existing) {
            (NodeKind::Dir, Existing::Missing | Existing::Dir) | (_, Existing::Missing) => {}
            (NodeKind::Dir, what) => {
                return Err(invalid(format!(
                    "{} is {} where the restore point has a folder; nothing was written. Remove it or choose another target",
                    show(&place.anchor, &dest),
                    what.describe()
                )));
            }
            (_, Existing::File | Existing::Symlink) => {
                summary.conflicts.push(show(&place.anchor, &dest))
            }
            (_, what) => {
                // the rename into place would replace the node itself
                return Err(invalid(format!(
                    "restore target {} exists and is {}, not a regular file (a disk is written onto a block device in place)",
                    show(&place.anchor, &dest),
                    what.describe()
                ))
                .with_hint(crate::Hint::OverwriteInPlace));
            }
        }
    }
    if !walker.matched {
        return Err(invalid(match &opts.subpath {
            Some(sp) => format!("item `{}` has no path `{sp}`", item.name),
            None => format!("item `{}` holds nothing to restore", item.name),
        }));
    }
    Ok(())
}

/// Restore `snap` into `target` (see [`plan`] for where things go).
///
/// # Errors
/// [`ErrorKind::TargetExists`] before anything is written; [`ErrorKind::Corrupt`] when any
/// chunk fails verification (the partial file is removed); as [`plan`].
pub fn restore(
    repo: &Repository,
    snap: &RestorePoint,
    target: &Path,
    opts: &RestoreOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<RestoreSummary> {
    let p = plan(repo, snap, target, opts)?;
    if opts.dry_run {
        return Ok(p.summary);
    }
    execute(repo, p, progress, cancel)
}

/// Carry out a plan: refuse when targets exist and overwriting was not allowed, then
/// write every item, checking the content maps again as they are read.
///
/// # Errors
/// As [`restore`].
pub fn execute(
    repo: &Repository,
    plan: RestorePlan,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<RestoreSummary> {
    let RestorePlan {
        index,
        items,
        target,
        opts,
        summary: planned,
    } = plan;
    if !planned.conflicts.is_empty() && !opts.overwrite {
        let first: Vec<&str> = planned
            .conflicts
            .iter()
            .take(3)
            .map(String::as_str)
            .collect();
        return Err(Error::new(
            ErrorKind::TargetExists,
            format!(
                "{} restore target(s) already exist ({}{}); nothing was written",
                planned.conflicts.len(),
                first.join(", "),
                if planned.conflicts.len() > 3 {
                    ", …"
                } else {
                    ""
                }
            ),
        )
        .with_hint(crate::Hint::Overwrite));
    }
    let sub = subpath(&opts)?;
    let mut summary = RestoreSummary {
        conflicts: planned.conflicts,
        ..RestoreSummary::default()
    };
    progress.start("restore", planned.bytes);
    for (item, place) in &items {
        let run = ItemRun {
            repo,
            index: &index,
            item,
            place,
            sub: &sub,
            target: &target,
            opts: &opts,
        };
        restore_item(&run, &mut summary, progress, cancel)?;
    }
    progress.finish();
    Ok(summary)
}

fn restore_item(
    run: &ItemRun<'_>,
    summary: &mut RestoreSummary,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<()> {
    let ItemRun {
        repo,
        index,
        item,
        place,
        sub,
        target,
        opts,
    } = *run;
    let mut cursor = if opts.in_place {
        None
    } else {
        let (root, made) = TargetDir::create_made(&place.anchor)?;
        Some(Cursor::new(root, made)?)
    };
    let walker = Walker::new(item, place, sub);
    let mut current: Option<FileOut> = None;
    let result = std::thread::scope(|scope| -> Result<()> {
        let events = read_map(repo, index, item);
        let mut steps = ReadAhead::new(scope, repo, index, events, walker, &cancel.shared());
        while let Some(step) = steps.next_step() {
            if cancel.is_cancelled() {
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    "restore cancelled; files not yet complete were removed",
                ));
            }
            match step? {
                Step::Node(n, dest) => {
                    if let Some(f) = current.take() {
                        f.finish(summary, opts.overwrite, cursor.as_mut())?;
                    }
                    let Some(dest) = dest else {
                        continue;
                    };
                    let size = recorded_size(item, &n);
                    if opts.in_place {
                        check_in_place(item, target, size, opts.overwrite)?;
                        current = Some(FileOut::in_place(target.to_path_buf(), n, size)?);
                        continue;
                    }
                    let cursor = cursor.as_mut().expect("not in place");
                    match n.kind {
                        NodeKind::Dir => {
                            cursor.cd(&dest)?;
                            summary.dirs += 1;
                            // a folder that was there keeps its owner and mode, unless the
                            // admin consented to replacing; the target itself always does
                            if cursor.made() || (opts.overwrite && !dest.is_empty()) {
                                cursor.folder_meta_later(dest, n.meta());
                            }
                        }
                        NodeKind::Symlink => {
                            let (name, parent) = dest.split_last().expect("a link has a name");
                            let dir = cursor.cd(parent)?;
                            if cfg!(unix) {
                                dir.symlink(
                                    name,
                                    n.target.as_deref().unwrap_or_default(),
                                    opts.overwrite,
                                    n.owner().as_ref(),
                                )?;
                                summary.symlinks += 1;
                                cursor.mark_dirty();
                            } else {
                                summary.warnings.push(format!(
                                    "{}: symbolic link to `{}` not created (this system needs a privilege for links)",
                                    show(&place.anchor, &dest),
                                    n.target.as_deref().unwrap_or_default()
                                ));
                            }
                        }
                        NodeKind::File => {
                            let (name, parent) = dest.split_last().expect("a file has a name");
                            let dir = cursor.cd(parent)?;
                            current = Some(FileOut::create(dir, name, n, size, opts.disk_format)?);
                        }
                    }
                }
                Step::Data(ext, data) => {
                    if let Some(f) = current.as_mut() {
                        f.write(&ext, data, progress)?;
                    }
                }
            }
        }
        if let Some(f) = current.take() {
            f.finish(summary, opts.overwrite, cursor.as_mut())?;
        }
        Ok(())
    });
    if let Err(e) = result {
        if let Some(f) = current.take() {
            f.abort();
        }
        return Err(e);
    }
    let Some(cursor) = cursor else { return Ok(()) };
    // files in place, then folder metadata (deepest first), then all of it durable
    for (d, e) in cursor.close()?.unapplied {
        summary.warnings.push(format!(
            "{}: folder metadata not applied: {e}",
            show(&place.anchor, &d)
        ));
    }
    Ok(())
}

/// The bytes a file node must hold: its own size, except a stream pushed without a
/// known length, whose node says 0 and whose item holds the size.
fn recorded_size(item: &Item, n: &Node) -> u64 {
    if n.size == 0 && item.kind != ItemKind::Tree {
        item.size
    } else {
        n.size
    }
}

/// Everything an in-place restore needs before a byte is written: a disk item, an
/// existing regular file or block device big enough, and consent.
fn check_in_place(item: &Item, dest: &Path, size: u64, overwrite: bool) -> Result<()> {
    if item.kind != ItemKind::Disk {
        return Err(invalid(format!(
            "item `{}` is not a disk image: only disks are restored in place",
            item.name
        )));
    }
    // the target is the admin's explicit choice: links to it are followed
    let md = std::fs::metadata(dest).map_err(|_| {
        invalid(format!(
            "an in-place restore needs an existing file or block device at {}",
            dest.display()
        ))
    })?;
    let block = fileout::is_block_device(&md);
    if !md.is_file() && !block {
        return Err(invalid(format!(
            "{} is neither a regular file nor a block device",
            dest.display()
        )));
    }
    if block {
        let have = fileout::device_size(dest)?;
        if have < size {
            return Err(invalid(format!(
                "{} holds {have} bytes, the disk needs {size}",
                dest.display()
            )));
        }
    }
    if !overwrite {
        return Err(Error::new(
            ErrorKind::TargetExists,
            format!(
                "restoring in place overwrites everything on {}; nothing was written",
                dest.display()
            ),
        )
        .with_hint(crate::Hint::OverwriteInPlace));
    }
    Ok(())
}
