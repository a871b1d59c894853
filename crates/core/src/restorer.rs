//! Restore: bring a restore point (or part of it) back to files.
//!
//! Planning comes first: the content map is read once to list what will be written and
//! to find conflicts; nothing is touched when a target exists and overwriting was not
//! allowed. Files are written under a temporary name beside the target and renamed into
//! place only when complete and verified, so a failed restore never leaves a half file
//! under a real name. Every chunk is authenticated and its hash checked before it is
//! written; zero runs become holes.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::contentmap::{Extent, MapEvent, MapReader, Node, NodeKind};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::manifest::{Item, ItemKind, Snapshot};
use crate::progress::{Cancel, Progress};
use crate::repository::Repository;

/// Reads the concatenated chunks of a content map.
pub struct ChunkStream<'a> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    ids: std::slice::Iter<'a, Id>,
    buf: Vec<u8>,
    pos: usize,
}

impl<'a> ChunkStream<'a> {
    /// A reader over `ids`.
    pub fn new(repo: &'a Repository, index: &'a ChunkIndex, ids: &'a [Id]) -> Self {
        Self {
            repo,
            index,
            ids: ids.iter(),
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            let Some(id) = self.ids.next() else {
                return Ok(0);
            };
            self.buf = self
                .repo
                .read_chunk(self.index, id)
                .map_err(std::io::Error::other)?;
            self.pos = 0;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The content map of an item as events.
pub fn read_map<'a>(
    repo: &'a Repository,
    index: &'a ChunkIndex,
    item: &'a Item,
) -> MapReader<BufReader<ChunkStream<'a>>> {
    MapReader::new(
        BufReader::with_capacity(256 * 1024, ChunkStream::new(repo, index, &item.map)),
        format!("content map of item `{}`", item.name),
    )
}

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

/// What a restore did (or, for a dry run, would do).
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
}

/// Which item(s) of a snapshot to restore.
fn select_items<'s>(snap: &'s Snapshot, name: Option<&str>) -> Result<Vec<&'s Item>> {
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

/// Target of a node given the selection; `None` when it is not selected.
fn node_target(base: &Path, node_path: &str, subpath: Option<&str>) -> Option<PathBuf> {
    let rel = match subpath
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty())
    {
        None => node_path.to_string(),
        Some(sp) => {
            if node_path != sp && !node_path.starts_with(&format!("{sp}/")) {
                return None;
            }
            let parent_len = sp.rfind('/').map(|i| i + 1).unwrap_or(0);
            node_path[parent_len..].to_string()
        }
    };
    let mut p = base.to_path_buf();
    for comp in rel.split('/').filter(|c| !c.is_empty()) {
        if comp == ".." || comp == "." {
            return None; // never write outside the target
        }
        p.push(comp);
    }
    Some(p)
}

/// Restore `snap` (id `snap_id`) into `target`.
///
/// A single stream or disk item is written to `target` as a file (or inside it, when
/// `target` is an existing directory); tree items are written below `target`; with several
/// items, each goes to its own folder named after the item.
///
/// # Errors
/// [`ErrorKind::TargetExists`] before anything is written; [`ErrorKind::Corrupt`] when any
/// chunk fails verification (the partial file is removed).
pub fn restore(
    repo: &Repository,
    snap: &Snapshot,
    target: &Path,
    opts: &RestoreOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<RestoreSummary> {
    let (index, _) = repo.load_index()?;
    let items = select_items(snap, opts.item.as_deref())?;
    let multi = items.len() > 1;
    let base_for = |item: &Item| -> PathBuf {
        if multi {
            let safe: String = item
                .name
                .chars()
                .map(|c| {
                    if c == '/' || c == '\\' || c == ':' {
                        '_'
                    } else {
                        c
                    }
                })
                .collect();
            target.join(safe.trim_matches('_'))
        } else {
            target.to_path_buf()
        }
    };
    if opts.disk_format != DiskOutput::Raw {
        if let Some(i) = items.iter().find(|i| i.kind != ItemKind::Disk) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "item `{}` is not a disk image: only disk items can be restored as {:?}",
                    i.name, opts.disk_format
                ),
            ));
        }
    }
    // plan: conflicts and totals
    let mut summary = RestoreSummary::default();
    let mut total = 0u64;
    for item in &items {
        let base = base_for(item);
        for ev in read_map(repo, &index, item) {
            if let MapEvent::Node(n) = ev? {
                let dest = match item.kind {
                    ItemKind::Tree => match node_target(&base, &n.path, opts.subpath.as_deref()) {
                        Some(d) => d,
                        None => continue,
                    },
                    _ => single_target(&base, item),
                };
                if n.kind == NodeKind::File {
                    total += n.size;
                }
                if opts.in_place {
                    check_in_place(item, &dest, n.size, opts.overwrite)?;
                    summary.conflicts.push(dest.display().to_string());
                    continue;
                }
                if n.kind != NodeKind::Dir {
                    if let Ok(md) = fs::symlink_metadata(&dest) {
                        if !(md.is_file() || md.is_symlink()) {
                            // a device, FIFO or socket (or a folder where a file goes): the
                            // rename-into-place used for files would replace the node itself
                            return Err(Error::new(
                                ErrorKind::InvalidInput,
                                format!(
                                    "restore target {} exists and is not a regular file (a device, FIFO, socket or folder); to write a disk onto a block device pass --overwrite --in-place",
                                    dest.display()
                                ),
                            ));
                        }
                        summary.conflicts.push(dest.display().to_string());
                    }
                }
            }
        }
    }
    if !summary.conflicts.is_empty() && !opts.overwrite {
        let first: Vec<&String> = summary.conflicts.iter().take(3).collect();
        return Err(Error::new(
            ErrorKind::TargetExists,
            format!(
                "{} restore target(s) already exist ({}{}); nothing was written. Choose an empty target, or pass --overwrite to replace them",
                summary.conflicts.len(),
                first
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if summary.conflicts.len() > 3 {
                    ", …"
                } else {
                    ""
                }
            ),
        ));
    }
    if opts.dry_run {
        summary.bytes = total;
        return Ok(summary);
    }
    progress.start("restore", total);
    for item in items {
        let base = base_for(item);
        let mut dirs: Vec<(PathBuf, Node)> = Vec::new();
        let mut current: Option<FileOut> = None;
        for ev in read_map(repo, &index, item) {
            if cancel.is_cancelled() {
                if let Some(f) = current.take() {
                    f.abort();
                }
                return Err(Error::new(
                    ErrorKind::Cancelled,
                    "restore cancelled; the file being written was removed",
                ));
            }
            match ev? {
                MapEvent::Node(n) => {
                    if let Some(f) = current.take() {
                        f.finish(&mut summary)?;
                    }
                    let dest = match item.kind {
                        ItemKind::Tree => {
                            match node_target(&base, &n.path, opts.subpath.as_deref()) {
                                Some(d) => d,
                                None => continue,
                            }
                        }
                        _ => single_target(&base, item),
                    };
                    match n.kind {
                        NodeKind::Dir => {
                            fs::create_dir_all(&dest).map_err(|e| {
                                Error::io(format!("creating {}", dest.display()), e)
                            })?;
                            summary.dirs += 1;
                            dirs.push((dest, n));
                        }
                        NodeKind::Symlink => {
                            restore_symlink(&dest, &n, opts.overwrite)?;
                            summary.symlinks += 1;
                        }
                        NodeKind::File if opts.in_place => {
                            current = Some(FileOut::in_place(dest, n)?)
                        }
                        NodeKind::File => {
                            current = Some(FileOut::create(dest, n, opts.disk_format)?)
                        }
                    }
                }
                MapEvent::Extents(ext) => {
                    if let Some(f) = current.as_mut()
                        && let Err(e) = f.write_extents(repo, &index, &ext, progress)
                    {
                        if let Some(f) = current.take() {
                            f.abort();
                        }
                        return Err(e);
                    }
                }
            }
        }
        if let Some(f) = current.take() {
            f.finish(&mut summary)?;
        }
        // directory times last, deepest first, so writing children does not change them
        for (d, n) in dirs.iter().rev() {
            set_meta(d, n);
        }
    }
    progress.finish();
    Ok(summary)
}

/// Everything an in-place restore needs before a byte is written: a disk item, an
/// existing regular file or block device big enough, and consent.
fn check_in_place(item: &Item, dest: &Path, size: u64, overwrite: bool) -> Result<()> {
    let bad = |m: String| Err(Error::new(ErrorKind::InvalidInput, m));
    if item.kind != ItemKind::Disk {
        return bad(format!(
            "item `{}` is not a disk image: only disks are restored in place",
            item.name
        ));
    }
    let md = match fs::metadata(dest) {
        Ok(m) => m,
        Err(_) => {
            return bad(format!(
                "--in-place needs an existing file or block device at {}",
                dest.display()
            ));
        }
    };
    #[cfg(unix)]
    let block = std::os::unix::fs::FileTypeExt::is_block_device(&md.file_type());
    #[cfg(not(unix))]
    let block = false;
    if !md.is_file() && !block {
        return bad(format!(
            "{} is neither a regular file nor a block device",
            dest.display()
        ));
    }
    if block {
        let mut f =
            File::open(dest).map_err(|e| Error::io(format!("opening {}", dest.display()), e))?;
        let have = f
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(format!("sizing {}", dest.display()), e))?;
        if have < size {
            return bad(format!(
                "{} holds {have} bytes, the disk needs {size}",
                dest.display()
            ));
        }
    }
    if !overwrite {
        return Err(Error::new(
            ErrorKind::TargetExists,
            format!(
                "restoring in place overwrites everything on {}; nothing was written. Pass --overwrite with --in-place to do it",
                dest.display()
            ),
        ));
    }
    Ok(())
}

fn single_target(base: &Path, item: &Item) -> PathBuf {
    if base.is_dir() {
        let name = Path::new(&item.name)
            .file_name()
            .map(|s| s.to_os_string())
            .unwrap_or_else(|| "restored".into());
        base.join(name)
    } else {
        base.to_path_buf()
    }
}

fn restore_symlink(dest: &Path, n: &Node, overwrite: bool) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
    }
    if overwrite && fs::symlink_metadata(dest).is_ok() {
        fs::remove_file(dest).map_err(|e| Error::io(format!("replacing {}", dest.display()), e))?;
    }
    #[cfg(unix)]
    {
        let t = n.target.clone().unwrap_or_default();
        std::os::unix::fs::symlink(&t, dest)
            .map_err(|e| Error::io(format!("creating symlink {}", dest.display()), e))?;
    }
    #[cfg(not(unix))]
    {
        let _ = n;
    }
    Ok(())
}

fn set_meta(path: &Path, n: &Node) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if n.mode != 0 {
            let _ = fs::set_permissions(path, fs::Permissions::from_mode(n.mode));
        }
    }
    let t = filetime::FileTime::from_unix_time(
        n.mtime_ns.div_euclid(1_000_000_000),
        n.mtime_ns.rem_euclid(1_000_000_000) as u32,
    );
    let _ = filetime::set_file_mtime(path, t);
}

/// Fetch the data of `ext` in order (`None` for holes): reads are coalesced per pack
/// (neighbouring chunks in one request, as packs are written in backup order), then
/// decrypted, decompressed and verified in parallel.
pub(crate) fn fetch_extents(
    repo: &Repository,
    index: &ChunkIndex,
    ext: &[Extent],
) -> Result<Vec<Option<Vec<u8>>>> {
    use crate::index::Location;
    // resolve and de-duplicate
    let mut wanted: Vec<(Id, Location)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in ext {
        if let Extent::Data(id, _) = e
            && seen.insert(*id)
        {
            let loc = index.get(id)?.ok_or_else(|| Error::new(ErrorKind::Missing, format!("chunk {} is not in any index: the repository is damaged; run `rehydra check`", id.short())))?;
            wanted.push((*id, loc));
        }
    }
    wanted.sort_by_key(|a| (a.1.pack, a.1.offset));
    // coalesce into ranges: same pack, gap below 256 KiB, at most 8 MiB per read
    let mut ranges: Vec<(usize, usize)> = Vec::new(); // [start, end) into `wanted`
    let mut i = 0;
    while i < wanted.len() {
        let mut j = i + 1;
        let start = u64::from(wanted[i].1.offset);
        let mut end = start + u64::from(wanted[i].1.length);
        while j < wanted.len() && wanted[j].1.pack == wanted[i].1.pack {
            let (o, l) = (u64::from(wanted[j].1.offset), u64::from(wanted[j].1.length));
            if o < end || o > end + (256 << 10) || o + l - start > 8 << 20 {
                break;
            }
            end = o + l;
            j += 1;
        }
        ranges.push((i, j));
        i = j;
    }
    // read the ranges (in parallel), then open every chunk in parallel
    let bufs: Vec<Result<Vec<u8>>> = ranges
        .par_iter()
        .map(|&(a, b)| {
            let first = &wanted[a].1;
            let start = u64::from(first.offset);
            let end = u64::from(wanted[b - 1].1.offset) + u64::from(wanted[b - 1].1.length);
            repo.backend().read_range(
                crate::backend::FileKind::Pack,
                &first.pack.to_hex(),
                start,
                (end - start) as u32,
            )
        })
        .collect();
    let bufs: Vec<Vec<u8>> = bufs.into_iter().collect::<Result<_>>()?;
    let jobs: Vec<(usize, usize)> = ranges
        .iter()
        .enumerate()
        .flat_map(|(r, &(a, b))| (a..b).map(move |k| (r, k)))
        .collect();
    let decoded: Vec<Result<(Id, Vec<u8>)>> = jobs
        .par_iter()
        .map(|&(r, k)| {
            let (id, l) = &wanted[k];
            let off = (u64::from(l.offset) - u64::from(wanted[ranges[r].0].1.offset)) as usize;
            let sealed = &bufs[r][off..off + l.length as usize];
            crate::pack::open_chunk(repo.keys(), id, sealed, l.raw_len, l.flags, &l.pack)
                .map(|d| (*id, d))
        })
        .collect();
    drop(bufs);
    let mut by_id: std::collections::HashMap<Id, Vec<u8>> =
        std::collections::HashMap::with_capacity(wanted.len());
    for r in decoded {
        let (id, d) = r?;
        by_id.insert(id, d);
    }
    // hand out in order; a chunk used twice in the batch is cloned for its later uses
    let mut uses: std::collections::HashMap<Id, usize> = std::collections::HashMap::new();
    for e in ext {
        if let Extent::Data(id, _) = e {
            *uses.entry(*id).or_default() += 1;
        }
    }
    let mut out = Vec::with_capacity(ext.len());
    for e in ext {
        match e {
            Extent::Zero(_) => out.push(None),
            Extent::Data(id, _) => {
                let n = uses.get_mut(id).expect("counted");
                *n -= 1;
                let d = if *n == 0 {
                    by_id.remove(id)
                } else {
                    by_id.get(id).cloned()
                };
                out.push(Some(d.expect("fetched")));
            }
        }
    }
    Ok(out)
}

/// A file being restored: a writer thread owns the file, the caller fetches.
struct FileOut {
    dest: PathBuf,
    tmp: PathBuf,
    node: Node,
    pos: u64,
    holes: u64,
    tx: Option<crossbeam_channel::Sender<Vec<(u64, Option<Vec<u8>>)>>>,
    writer: Option<std::thread::JoinHandle<std::io::Result<File>>>,
    /// The file is a VHDX or VHD container: its length is not the virtual size.
    container: bool,
    /// Writing into an existing file or device (`tmp` is `dest`): never removed, never
    /// renamed.
    in_place: bool,
}

/// Where a restored file's bytes go: a plain file (holes by seeking) or a container writer.
enum Sink {
    Raw(std::io::BufWriter<File>),
    Vhdx(rehydra_disk::vhdx_write::VhdxWriter),
    Vhd(rehydra_disk::vhd_write::VhdWriter),
    /// An existing file or device: data and zeros at their offsets.
    InPlace(File),
}

fn write_loop(
    mut sink: Sink,
    rx: crossbeam_channel::Receiver<Vec<(u64, Option<Vec<u8>>)>>,
) -> std::io::Result<File> {
    let mut seek_needed = false;
    let mut pos = 0u64;
    for batch in rx {
        for (len, data) in batch {
            match (data, &mut sink) {
                (Some(bytes), Sink::Raw(w)) => {
                    if seek_needed {
                        w.seek(SeekFrom::Start(pos))?;
                        seek_needed = false;
                    }
                    w.write_all(&bytes)?;
                }
                (Some(bytes), Sink::Vhdx(w)) => {
                    w.write_at(pos, &bytes).map_err(std::io::Error::other)?
                }
                (Some(bytes), Sink::Vhd(w)) => {
                    w.write_at(pos, &bytes).map_err(std::io::Error::other)?
                }
                (Some(bytes), Sink::InPlace(f)) => rehydra_disk::write_all_at(f, &bytes, pos)?,
                (None, Sink::InPlace(f)) => {
                    // the target holds old data: a hole is written as zeros
                    let zeros = vec![0u8; len.min(1 << 20) as usize];
                    let mut at = 0;
                    while at < len {
                        let n = (len - at).min(zeros.len() as u64) as usize;
                        rehydra_disk::write_all_at(f, &zeros[..n], pos + at)?;
                        at += n as u64;
                    }
                }
                (None, _) => seek_needed = true,
            }
            pos += len;
        }
    }
    match sink {
        Sink::Raw(mut w) => {
            if seek_needed {
                w.seek(SeekFrom::Start(pos))?;
            }
            w.into_inner().map_err(|e| e.into_error())
        }
        Sink::Vhdx(w) => w.finish().map_err(std::io::Error::other),
        Sink::Vhd(w) => w.finish().map_err(std::io::Error::other),
        Sink::InPlace(f) => Ok(f),
    }
}

impl FileOut {
    /// Write into the existing file or device `dest` (checked by `check_in_place`).
    fn in_place(dest: PathBuf, node: Node) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .open(&dest)
            .map_err(|e| Error::io(format!("opening {}", dest.display()), e))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let writer = std::thread::Builder::new()
            .name("rehydra-restore-write".into())
            .spawn(move || write_loop(Sink::InPlace(file), rx))
            .map_err(|e| Error::io("starting the restore writer", e))?;
        Ok(Self {
            tmp: dest.clone(),
            dest,
            node,
            pos: 0,
            holes: 0,
            tx: Some(tx),
            writer: Some(writer),
            container: false,
            in_place: true,
        })
    }

    fn create(dest: PathBuf, node: Node, format: DiskOutput) -> Result<Self> {
        let parent = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        fs::create_dir_all(&parent)
            .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        let name = dest
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.rehydra-{}", Id::random().short()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        let sink = match format {
            // 32 MiB blocks, as Hyper-V makes dynamic disks
            DiskOutput::Vhdx => {
                rehydra_disk::vhdx_write::VhdxWriter::new(file, &dest, node.size, 32 << 20)
                    .map(Sink::Vhdx)
            }
            DiskOutput::Vhd => {
                rehydra_disk::vhd_write::VhdWriter::new(file, &dest, node.size).map(Sink::Vhd)
            }
            DiskOutput::Raw => Ok(Sink::Raw(std::io::BufWriter::with_capacity(1 << 20, file))),
        };
        let sink = match sink {
            Ok(s) => s,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(Error::new(ErrorKind::InvalidInput, e.to_string()));
            }
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let writer = std::thread::Builder::new()
            .name("rehydra-restore-write".into())
            .spawn(move || write_loop(sink, rx))
            .map_err(|e| Error::io("starting the restore writer", e))?;
        Ok(Self {
            dest,
            tmp,
            node,
            pos: 0,
            holes: 0,
            tx: Some(tx),
            writer: Some(writer),
            container: format != DiskOutput::Raw,
            in_place: false,
        })
    }

    fn write_extents(
        &mut self,
        repo: &Repository,
        index: &ChunkIndex,
        ext: &[Extent],
        progress: &dyn Progress,
    ) -> Result<()> {
        // about 4 MiB per fetch keeps memory bounded (one batch fetching, one being written)
        for part in ext.chunks(256) {
            self.write_part(repo, index, part, progress)?;
        }
        Ok(())
    }

    fn write_part(
        &mut self,
        repo: &Repository,
        index: &ChunkIndex,
        ext: &[Extent],
        progress: &dyn Progress,
    ) -> Result<()> {
        let data = fetch_extents(repo, index, ext)?;
        let mut batch = Vec::with_capacity(ext.len());
        for (e, d) in ext.iter().zip(data) {
            if d.is_none() {
                self.holes += e.len();
            }
            self.pos += e.len();
            batch.push((e.len(), d));
        }
        let total: u64 = ext.iter().map(Extent::len).sum();
        let sent = self
            .tx
            .as_ref()
            .map(|tx| tx.send(batch).is_ok())
            .unwrap_or(false);
        if !sent {
            // the writer stopped: its error says why
            return Err(self
                .join_writer()
                .err()
                .unwrap_or_else(|| Error::new(ErrorKind::Io, "restore writer stopped")));
        }
        progress.inc(total);
        Ok(())
    }

    fn join_writer(&mut self) -> Result<File> {
        self.tx = None;
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(Ok(f))) => Ok(f),
            Some(Ok(Err(e))) => Err(Error::io(format!("writing {}", self.dest.display()), e)),
            _ => Err(Error::new(
                ErrorKind::Io,
                format!("writing {}: the writer thread failed", self.dest.display()),
            )),
        }
    }

    fn finish(mut self, summary: &mut RestoreSummary) -> Result<()> {
        let file = match self.join_writer() {
            Ok(f) => f,
            Err(e) => {
                if !self.in_place {
                    let _ = fs::remove_file(&self.tmp);
                }
                return Err(e);
            }
        };
        let io = |e| Error::io(format!("writing {}", self.dest.display()), e);
        if self.pos != self.node.size && self.node.size != 0 {
            let _ = fs::remove_file(&self.tmp);
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{}: restored {} bytes but the restore point records {}",
                    self.dest.display(),
                    self.pos,
                    self.node.size
                ),
            ));
        }
        if self.in_place {
            let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
            if is_file {
                file.set_len(self.pos).map_err(io)?;
            }
            file.sync_all().map_err(io)?;
            summary.files += 1;
            summary.bytes += self.pos;
            summary.hole_bytes += self.holes;
            return Ok(());
        }
        if !self.container {
            file.set_len(self.pos).map_err(io)?;
        }
        file.sync_all().map_err(io)?;
        drop(file);
        set_meta(&self.tmp, &self.node);
        fs::rename(&self.tmp, &self.dest)
            .map_err(|e| Error::io(format!("moving into {}", self.dest.display()), e))?;
        summary.files += 1;
        summary.bytes += self.pos;
        summary.hole_bytes += self.holes;
        Ok(())
    }

    fn abort(mut self) {
        let _ = self.join_writer();
        if !self.in_place {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
