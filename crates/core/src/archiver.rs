//! Backup: read sources, chunk them, store chunks, write content maps and the manifest.

use std::fs::{self, File};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbeam_channel::bounded;

use crate::chunker::{AlignedChunker, ChunkerParams, Piece, StreamChunker};
use crate::contentmap::{Extent, MapWriter, Node, NodeKind};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::lock::Lock;
use crate::manifest::{Item, ItemKind, MANIFEST_VERSION, PluginRef, RestorePoint, Summary};
use crate::progress::{Cancel, Progress};
use crate::repository::Repository;
use crate::writer::ChunkWriter;

mod disk;
mod exclude;
mod previous;
mod tree;

pub use exclude::Exclude;

/// What to back up as one item.
pub enum Source {
    /// A directory tree (or a single file, kept with its metadata).
    Path(PathBuf),
    /// One file read as a byte stream (FastCDC).
    File(PathBuf),
    /// A disk image: its *virtual* disk is read (only allocated blocks, for VHDX) through
    /// the aligned chunker. `format` is usually `Auto`; `Raw` keeps a container file as is.
    Disk {
        /// Image file.
        path: PathBuf,
        /// Format (auto-detected by default).
        format: rehydra_disk::Format,
    },
    /// Any reader as a named stream (stdin, a spooled plugin stream).
    Reader(Box<dyn Read + Send>),
    /// `length` bytes of a file from `offset`, as a stream.
    Range {
        /// File.
        path: PathBuf,
        /// Start.
        offset: u64,
        /// Length.
        length: u64,
    },
    /// A small metadata document (kept out of full restores).
    Document(Vec<u8>),
    /// A disk image of which only `changes` are read; everything else is taken from an
    /// earlier restore point of the same disk (changed-range hints, e.g. Hyper-V
    /// Resilient Change Tracking).
    DiskChanged {
        /// Image file.
        path: PathBuf,
        /// Format (auto-detected by default).
        format: rehydra_disk::Format,
        /// What changed since when.
        changes: ChangedRanges,
    },
    /// An item of an earlier restore point, kept as it is (its content map is shared;
    /// every chunk it names is checked to be in the repository first).
    Carried {
        /// The earlier restore point.
        since: Id,
        /// Its item.
        item: String,
    },
}

/// Ranges of a disk that changed since an earlier restore point.
///
/// The caller vouches for the ranges: bytes outside them are not read and are taken
/// from `since`. A wrong list gives a wrong restore point, so only a change tracker
/// should produce one (a full backup without hints reads everything).
#[derive(Debug, Clone)]
pub struct ChangedRanges {
    /// The earlier restore point.
    pub since: Id,
    /// Its disk item holding the same disk.
    pub item: String,
    /// Changed `(offset, length)` byte ranges of the virtual disk, in any order.
    pub ranges: Vec<(u64, u64)>,
}

/// One source and the item name it is stored under.
pub struct SourceItem {
    /// Item name (unique in the restore point).
    pub name: String,
    /// The source.
    pub source: Source,
}

/// Options for [`backup`].
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Workload (`files`, `disk` …).
    pub workload: String,
    /// Asset id.
    pub asset: String,
    /// Plugin that drives the backup.
    pub plugin: PluginRef,
    /// Consistency level.
    pub consistency: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Host name recorded (defaults to this machine's).
    pub hostname: Option<String>,
    /// Folders every file a disk image refers to (differencing parents, qcow2 backing
    /// files) must lie in, after resolving links: a plugin's read grants, so that an
    /// image it names cannot make the engine read other files. `None`: no limit (the
    /// admin's own command line).
    pub confine: Option<Vec<PathBuf>>,
    /// Read every file of a folder item, even those the previous restore point of the
    /// same asset holds unchanged (restic's `--force`).
    pub read_all: bool,
    /// What folder items leave out (patterns, one file system).
    pub exclude: Exclude,
}

/// Open a disk image, confined to `roots` when given.
fn open_disk(
    path: &Path,
    format: rehydra_disk::Format,
    roots: Option<&[PathBuf]>,
) -> rehydra_disk::Result<Box<dyn rehydra_disk::DiskImage>> {
    let confine = |p: &Path| -> std::result::Result<PathBuf, String> {
        let roots = roots.unwrap_or_default();
        let real = fs::canonicalize(p).map_err(|e| format!("cannot be resolved ({e})"))?;
        if roots.iter().any(|r| real.starts_with(r)) {
            Ok(real)
        } else {
            Err(format!(
                "{} is outside the folders the plugin may read",
                real.display()
            ))
        }
    };
    let opts = rehydra_disk::OpenOptions {
        confine: roots.map(|_| &confine as rehydra_disk::Confine<'_>),
    };
    rehydra_disk::open_with(path, format, &opts)
}

/// The plugin id recorded for restore points the engine made itself (folders, files,
/// streams, disk images), as opposed to a workload plugin.
pub const BUILTIN: &str = "builtin";

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            workload: "files".into(),
            asset: String::new(),
            plugin: PluginRef {
                id: BUILTIN.into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            consistency: "crash".into(),
            tags: Vec::new(),
            hostname: None,
            confine: None,
            read_all: false,
            exclude: Exclude::default(),
        }
    }
}

/// Result of a backup.
#[derive(Debug)]
pub struct BackupResult {
    /// New restore point id.
    pub id: Id,
    /// Its manifest.
    pub restore_point: RestorePoint,
    /// Files that could not be read (the restore point is incomplete when non-empty).
    pub warnings: Vec<String>,
}

const BATCH_BYTES: usize = 2 << 20;
/// Files up to this size are chunked on the walking thread (see `Run::feed_small`).
const SMALL_FILE: u64 = 1 << 20;
const BATCH_PIECES: usize = 1024;

struct Run<'a, 'p> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    writer: ChunkWriter<'a>,
    params: ChunkerParams,
    seed: u64,
    progress: &'p dyn Progress,
    cancel: &'p Cancel,
    summary: Summary,
    warnings: Vec<String>,
    /// Presence for the whole session (a plugin's whole call), kept fresh by its own thread.
    lock: Lock,
    /// Unallocated disk extents recorded as holes without reading them.
    hole_bytes: u64,
    /// Items stored so far.
    items: Vec<Item>,
    /// Time of the restore point.
    time: chrono::DateTime<chrono::Utc>,
    /// Owner names by id, looked up once per backup.
    names: rehydra_target::NameCache,
    /// See [`BackupOptions::confine`].
    confine: Option<Vec<PathBuf>>,
    /// See [`BackupOptions::exclude`].
    exclude: Exclude,
    /// The previous restore point of the same asset and workload, whose folder items let
    /// unchanged files go unread (`None` with [`BackupOptions::read_all`]).
    previous: Option<RestorePoint>,
    /// The restore point items are carried forward from, loaded once for every item kept
    /// (a chain of a thousand backups decrypts one manifest, not a thousand).
    carried_from: Option<(crate::Id, RestorePoint)>,
}

impl Run<'_, '_> {
    /// The node of a file or folder: kind, mode, time, size and owner from `md`.
    fn node_of(&mut self, rel: &str, md: &fs::Metadata) -> Node {
        let n = node_from_metadata(rel, md);
        #[cfg(unix)]
        {
            let o = rehydra_target::Owner::of(md, &mut self.names);
            Node {
                uid: Some(o.uid),
                gid: Some(o.gid),
                user: o.user,
                group: o.group,
                ..n
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self.names;
            n
        }
    }

    /// Chunk a small file (at most [`SMALL_FILE`] bytes) on this thread and store its
    /// pieces; extents go to `map`. A helper thread per file costs more than the file.
    fn feed_small<R: Read>(&mut self, reader: R, map: &mut MapWriter<File>) -> Result<u64> {
        let pieces = StreamChunker::new(reader.take(SMALL_FILE + 1), self.params, self.seed)
            .collect::<std::io::Result<Vec<Piece>>>()
            .map_err(|e| Error::io("reading source", e))?;
        self.store(pieces, map)
    }

    /// Store one batch of pieces (unless the backup was cancelled); extents go to `map`.
    /// Returns the bytes stored.
    fn store(&mut self, pieces: Vec<Piece>, map: &mut MapWriter<File>) -> Result<u64> {
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        let mut total = 0;
        for e in self.writer.write(pieces)? {
            total += e.len();
            self.progress.inc(e.len());
            map.extent(e)
                .map_err(|e| Error::io("writing content map", e))?;
        }
        Ok(total)
    }

    /// Chunk `reader` on a helper thread and store the pieces; extents go to `map`.
    fn feed<R: Read + Send>(
        &mut self,
        reader: R,
        aligned: bool,
        map: &mut MapWriter<File>,
    ) -> Result<u64> {
        let (params, seed) = (self.params, self.seed);
        let mut total = 0u64;
        std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = bounded::<std::io::Result<Vec<Piece>>>(1);
            let producer = s.spawn(move || {
                let mut batch = Vec::new();
                let mut bytes = 0usize;
                let it: Box<dyn Iterator<Item = std::io::Result<Piece>>> = if aligned {
                    Box::new(AlignedChunker::new(reader, params, seed))
                } else {
                    Box::new(StreamChunker::new(reader, params, seed))
                };
                for p in it {
                    match p {
                        Ok(p) => {
                            bytes += match &p {
                                Piece::Data(d) => d.len(),
                                Piece::Zero(_) => 64,
                            };
                            batch.push(p);
                            if bytes >= BATCH_BYTES || batch.len() >= BATCH_PIECES {
                                if tx.send(Ok(std::mem::take(&mut batch))).is_err() {
                                    return;
                                }
                                bytes = 0;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
                if !batch.is_empty() {
                    let _ = tx.send(Ok(batch));
                }
            });
            for batch in rx.iter() {
                let batch = batch.map_err(|e| Error::io("reading source", e))?;
                total += self.store(batch, map)?;
            }
            drop(rx);
            let _ = producer.join();
            Ok(())
        })?;
        Ok(total)
    }

    /// Store a finished content map file and return its chunk ids.
    fn store_map(&mut self, file: File) -> Result<Vec<Id>> {
        store_map(&mut self.writer, file, self.params, self.seed)
    }

    fn stream_file(
        &mut self,
        path: &Path,
        aligned: bool,
        map: &mut MapWriter<File>,
    ) -> Result<u64> {
        let f = File::open(path)
            .map_err(|e| Error::io(format!("backup source {}", path.display()), e))?;
        let md = f
            .metadata()
            .map_err(|e| Error::io(format!("backup source {}", path.display()), e))?;
        if md.is_dir() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} is a directory; back it up as a path, not as a file or disk",
                    path.display()
                ),
            ));
        }
        let node = self.node_of("", &md);
        map.node(node).map_err(|e| Error::io("content map", e))?;
        self.progress.message(&path.display().to_string());
        let n = self.feed(f, aligned, map)?;
        self.summary.files += 1;
        self.summary.bytes += n;
        Ok(n)
    }
}

/// The error of a cancelled backup.
fn cancelled() -> Error {
    Error::new(
        ErrorKind::Cancelled,
        "backup cancelled; nothing was committed (stored packs are cleaned up by prune)",
    )
}

/// Store a finished content map file through `writer` and return its chunk ids.
pub(crate) fn store_map(
    writer: &mut ChunkWriter<'_>,
    mut file: File,
    params: ChunkerParams,
    seed: u64,
) -> Result<Vec<Id>> {
    file.rewind().map_err(|e| Error::io("content map", e))?;
    let mut ids = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    let mut chunks = StreamChunker::new(file, params, seed).peekable();
    // in batches, so a large map (about 75 bytes per extent: 750 MB for a 10 TB disk at
    // 1 MiB chunks) is never held in memory whole
    while let Some(p) = chunks.next() {
        let p = p.map_err(|e| Error::io("reading content map", e))?;
        // a content map is JSON text and never all zero; store zero runs as data anyway
        let data = match p {
            Piece::Zero(n) => vec![0u8; n as usize],
            Piece::Data(d) => d,
        };
        bytes += data.len();
        batch.push(Piece::Data(data));
        if bytes >= BATCH_BYTES || batch.len() >= BATCH_PIECES || chunks.peek().is_none() {
            for e in writer.write(std::mem::take(&mut batch))? {
                if let Extent::Data(id, _) = e {
                    ids.push(id);
                }
            }
            bytes = 0;
        }
    }
    Ok(ids)
}

fn node_from_metadata(rel: &str, md: &fs::Metadata) -> Node {
    #[cfg(unix)]
    let mode = std::os::unix::fs::PermissionsExt::mode(&md.permissions()) & 0o7777;
    #[cfg(not(unix))]
    let mode = if md.permissions().readonly() {
        0o444
    } else {
        0o644
    };
    let mtime_ns = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    #[cfg(unix)]
    let (ctime_ns, inode) = {
        use std::os::unix::fs::MetadataExt;
        (
            Some(md.ctime().saturating_mul(1_000_000_000) + md.ctime_nsec()),
            Some(md.ino()),
        )
    };
    #[cfg(not(unix))]
    let (ctime_ns, inode) = (None, None);
    Node {
        path: rel.to_string(),
        path_hex: None,
        kind: NodeKind::File,
        mode,
        mtime_ns,
        size: md.len(),
        ctime_ns,
        inode,
        ..Node::default()
    }
}

/// What one added item stored.
#[derive(Debug, Clone)]
pub struct ItemReport {
    /// Item name.
    pub name: String,
    /// Kind.
    pub kind: ItemKind,
    /// Logical bytes.
    pub size: u64,
    /// Bytes new to the repository (plaintext).
    pub new_bytes: u64,
}

/// Receives items of a restore point being written (see [`backup_with`]).
pub trait ItemSink {
    /// Store one item now.
    ///
    /// # Errors
    /// Duplicate name, unreadable source, storage failure, cancelled.
    fn add(&mut self, item: SourceItem) -> Result<ItemReport>;
}

/// How the caller of [`backup_with`] ends the session.
#[derive(Debug, Clone, Default)]
pub struct Finish {
    /// Consistency reached, overriding [`BackupOptions::consistency`].
    pub consistency: Option<String>,
    /// Warnings to report with the result.
    pub warnings: Vec<String>,
}

/// Back up `items` into `repo` as one restore point.
///
/// # Errors
/// A source cannot be opened, storage fails, or the run was cancelled. Nothing is
/// committed unless the whole backup succeeds; packs already stored are removed by prune.
pub fn backup(
    repo: &Repository,
    items: Vec<SourceItem>,
    opts: &BackupOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
) -> Result<BackupResult> {
    if items.is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "nothing to back up")
            .with_hint(crate::Hint::Sources));
    }
    let mut total = 0u64;
    for it in &items {
        match &it.source {
            Source::Path(p) | Source::File(p) => total += dir_size(p),
            Source::Disk { path, format } | Source::DiskChanged { path, format, .. } => {
                total += open_disk(path, *format, opts.confine.as_deref())
                    .map(|i| i.virtual_size())
                    .unwrap_or(0)
            }
            Source::Range { length, .. } => total += length,
            Source::Reader(_) | Source::Document(_) | Source::Carried { .. } => {}
        }
    }
    progress.start("backup", total);
    backup_with(repo, opts, progress, cancel, |sink| {
        for it in items {
            sink.add(it)?;
        }
        Ok(Finish::default())
    })
}

/// Write one restore point whose items are produced by `produce` as it goes (a plugin
/// drives this). The manifest is saved only if `produce` succeeds and stored at least
/// one item; otherwise nothing is committed.
///
/// # Errors
/// `produce` failed, an item failed, storage failed, or nothing was stored.
pub fn backup_with(
    repo: &Repository,
    opts: &BackupOptions,
    progress: &dyn Progress,
    cancel: &Cancel,
    produce: impl FnOnce(&mut dyn ItemSink) -> Result<Finish>,
) -> Result<BackupResult> {
    let started = Instant::now();
    let time = chrono::Utc::now();
    // presence first, then the index: prune relies on this order. The presence refreshes
    // itself until dropped after the manifest is saved, however long `produce` takes.
    let lock = Lock::backup(repo.backend().clone())?;
    let (index, _bad) = repo.load_index()?;
    let previous = repo
        .restore_points()?
        .0
        .into_iter()
        .rev()
        .find(|(_, s)| s.asset == opts.asset && s.workload == opts.workload);
    let parent = previous.as_ref().map(|(id, _)| *id);
    let previous = previous.map(|(_, s)| s).filter(|_| !opts.read_all);
    let mut run = Run {
        repo,
        index: &index,
        writer: ChunkWriter::for_job(repo, &index, Some(cancel)),
        params: repo.config().chunker.into(),
        seed: repo.keys().cdc_seed(),
        progress,
        cancel,
        summary: Summary::default(),
        warnings: Vec::new(),
        lock,
        hole_bytes: 0,
        items: Vec::new(),
        time,
        names: rehydra_target::NameCache::default(),
        confine: opts.confine.clone(),
        exclude: opts.exclude.clone(),
        previous,
        carried_from: None,
    };
    let finish = produce(&mut run)?;
    if run.items.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "nothing was stored, so no restore point was written",
        ));
    }
    progress.finish();
    let Run {
        writer,
        mut summary,
        mut warnings,
        lock,
        hole_bytes,
        items: out_items,
        cancel,
        ..
    } = run;
    warnings.extend(finish.warnings);
    let finished = writer.finish();
    // the last packs may take long to store (a limited upload): a cancel that came
    // meanwhile is honoured, as the restore point is not saved yet (prune removes the packs)
    if cancel.is_cancelled() {
        return Err(cancelled());
    }
    let (_index_files, stats) = finished?;
    summary.new_chunks = stats.new_chunks;
    summary.new_bytes = stats.new_bytes;
    summary.stored_bytes = stats.stored_bytes;
    summary.packs = stats.packs;
    summary.zero_bytes = stats.zero_bytes + hole_bytes;
    summary.seconds = started.elapsed().as_secs_f64();
    let restore_point = RestorePoint {
        version: MANIFEST_VERSION,
        id: None,
        time,
        workload: opts.workload.clone(),
        asset: opts.asset.clone(),
        plugin: opts.plugin.clone(),
        consistency: finish
            .consistency
            .unwrap_or_else(|| opts.consistency.clone()),
        hostname: opts.hostname.clone().unwrap_or_else(crate::lock::hostname),
        items: out_items,
        parent,
        tags: opts.tags.clone(),
        summary,
        copied_from: None,
    };
    let id = repo.save_restore_point(&restore_point)?;
    drop(lock);
    Ok(BackupResult {
        id,
        restore_point,
        warnings,
    })
}

impl ItemSink for Run<'_, '_> {
    fn add(&mut self, it: SourceItem) -> Result<ItemReport> {
        crate::manifest::check_item_names(
            self.items
                .iter()
                .map(|i| i.name.as_str())
                .chain([it.name.as_str()]),
        )?;
        if self.cancel.is_cancelled() {
            return Err(cancelled());
        }
        if let Source::Carried { since, item } = &it.source {
            let (kind, size, map) = self.carried(since, item)?;
            self.items.push(Item {
                name: it.name.clone(),
                kind,
                size,
                map,
            });
            return Ok(ItemReport {
                name: it.name,
                kind,
                size,
                new_bytes: 0,
            });
        }
        let new_before = self.writer.stats().new_bytes;
        let tmp =
            tempfile::tempfile().map_err(|e| Error::io("creating a temporary content map", e))?;
        let mut map = MapWriter::new(tmp);
        let mtime = self.time.timestamp_nanos_opt().unwrap_or(0);
        let pushed =
            |run: &mut Self, r: Box<dyn Read + Send>, map: &mut MapWriter<File>| -> Result<u64> {
                map.node(Node {
                    path: String::new(),
                    path_hex: None,
                    kind: NodeKind::File,
                    mode: 0o600,
                    mtime_ns: mtime,
                    size: 0,
                    ..Node::default()
                })
                .map_err(|e| Error::io("content map", e))?;
                let n = run.feed(r, false, map)?;
                run.summary.files += 1;
                run.summary.bytes += n;
                Ok(n)
            };
        let (kind, size) = match it.source {
            Source::Path(p) => {
                let before = self.summary.bytes;
                let item = previous::item(self.previous.as_ref(), &it.name).cloned();
                let mut prev = item
                    .as_ref()
                    .map(|i| previous::Previous::new(self.repo, self.index, i));
                self.walk(&p, "", &mut map, &mut prev)?;
                if let Some(why) = prev.and_then(|p| p.failed) {
                    self.warnings.push(format!(
                        "the previous restore point's map of `{}` could not be read ({why}); every file after that point was read again",
                        it.name
                    ));
                }
                (ItemKind::Tree, self.summary.bytes - before)
            }
            Source::File(p) => (ItemKind::Stream, self.stream_file(&p, false, &mut map)?),
            Source::Disk { path, format } => (ItemKind::Disk, self.disk(&path, format, &mut map)?),
            Source::DiskChanged {
                path,
                format,
                changes,
            } => (
                ItemKind::Disk,
                self.disk_changed(&path, format, changes, &mut map)?,
            ),
            Source::Reader(r) => (ItemKind::Stream, pushed(self, r, &mut map)?),
            Source::Carried { .. } => unreachable!("carried items return above"),
            Source::Document(d) => (
                ItemKind::Document,
                pushed(self, Box::new(std::io::Cursor::new(d)), &mut map)?,
            ),
            Source::Range {
                path,
                offset,
                length,
            } => {
                let mut f = File::open(&path)
                    .map_err(|e| Error::io(format!("backup source {}", path.display()), e))?;
                let len = f
                    .metadata()
                    .map_err(|e| Error::io(format!("backup source {}", path.display()), e))?
                    .len();
                if offset.checked_add(length).is_none_or(|end| end > len) {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "range {offset}+{length} lies beyond the end of {} ({len} bytes)",
                            path.display()
                        ),
                    ));
                }
                f.seek(std::io::SeekFrom::Start(offset))
                    .map_err(|e| Error::io(format!("backup source {}", path.display()), e))?;
                (
                    ItemKind::Stream,
                    pushed(self, Box::new(f.take(length)), &mut map)?,
                )
            }
        };
        let file = map.finish().map_err(|e| Error::io("content map", e))?;
        let ids = self.store_map(file)?;
        self.items.push(Item {
            name: it.name.clone(),
            kind,
            size,
            map: ids,
        });
        Ok(ItemReport {
            name: it.name,
            kind,
            size,
            new_bytes: self.writer.stats().new_bytes - new_before,
        })
    }
}

fn dir_size(p: &Path) -> u64 {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

fn disk_error(e: rehydra_disk::DiskError) -> Error {
    match e {
        rehydra_disk::DiskError::Io { .. } => Error::new(ErrorKind::Io, e.to_string()),
        _ => Error::new(ErrorKind::InvalidInput, e.to_string()),
    }
}
