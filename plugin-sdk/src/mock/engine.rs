//! The `engine` imports, served by the mock: items are kept in memory (with their bytes,
//! so they can be restored), under the rules of the real host (`state/engine.rs`) and
//! engine (item names, what each verb may do, limits).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use rehydra_plugin_rules::{CapabilityKind, points};
// the largest document, and the largest item `read-document` returns
use rehydra_plugin_rules::files::SMALL_MAX;

use super::Verb;
use super::state::{Inner, OpenStream, Res, err, with};
use super::store::{self, Content, MockPoint, Node, StoredItem};
use crate::engine::{DiskFormat, DiskRange, Error, ItemInfo, ItemSummary, RestorePoint};
use crate::{ErrorCode, ItemKind};

/// Largest pushed stream.
const STREAM_MAX: u64 = 256 << 20;
/// Most bytes of one `write`.
const WRITE_CHUNK_MAX: usize = 4 << 20;
/// Most streams opened in one call.
const MAX_STREAMS: u32 = 32;
/// Most bytes pushed through streams in one call.
const SPOOL_MAX: u64 = 512 << 20;
/// The longest item name, in bytes.
const MAX_ITEM_NAME: usize = 4096;

/// What a plugin asked the engine to store; the path is checked and resolved.
enum Source {
    Tree(PathBuf),
    File(PathBuf),
    Range(PathBuf, u64, u64),
    Disk(PathBuf),
    DiskChanged(PathBuf, String, Vec<DiskRange>),
    Document(Vec<u8>),
    Pushed(Vec<u8>),
}

fn invalid(m: impl Into<String>) -> Error {
    err(ErrorCode::InvalidInput, m)
}

fn not_now(what: &str) -> Error {
    err(
        ErrorCode::Unsupported,
        format!("{what} is not available in this verb"),
    )
}

fn source_err(p: &Path, e: &std::io::Error) -> Error {
    err(
        ErrorCode::Failed,
        format!("backup source {}: {e}", p.display()),
    )
}

/// The bytes of a file that must not be a folder (`ingest-file`, `ingest-disk`).
fn read_file(p: &Path) -> Res<Vec<u8>> {
    let md = std::fs::metadata(p).map_err(|e| source_err(p, &e))?;
    if md.is_dir() {
        return Err(invalid(format!(
            "{} is a directory; back it up as a path, not as a file or disk",
            p.display()
        )));
    }
    std::fs::read(p).map_err(|e| source_err(p, &e))
}

/// Item names of one restore point: 1 to 4096 bytes, no control characters, unique.
fn check_name(name: &str, items: &[StoredItem]) -> Res<()> {
    if name.is_empty() || name.len() > MAX_ITEM_NAME {
        return Err(invalid(format!(
            "item name of {} bytes: an item name has 1 to {MAX_ITEM_NAME}",
            name.len()
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(format!(
            "item name {name:?} holds a control character; name items with printable text"
        )));
    }
    if items.iter().any(|i| i.info.name == name) {
        return Err(invalid(format!(
            "item name `{name}` is used twice in one restore point; give each item its own name"
        )));
    }
    Ok(())
}

fn content_hash(b: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    b.hash(&mut h);
    h.finish()
}

/// A small item (document or stream of at most 16 MiB) of `point`.
fn read_small(point: &MockPoint, name: &str) -> Res<Vec<u8>> {
    let item = point.item(name).ok_or_else(|| {
        err(
            ErrorCode::NotFound,
            format!("the restore point has no item `{name}`"),
        )
    })?;
    match &item.content {
        Content::Bytes(b)
            if matches!(item.info.kind, ItemKind::Document | ItemKind::Stream)
                && b.len() as u64 <= SMALL_MAX =>
        {
            Ok(b.clone())
        }
        _ => Err(invalid(format!(
            "item `{name}` is not a document or stream of at most {SMALL_MAX} bytes; restore it instead"
        ))),
    }
}

impl Inner {
    /// The newest restore point of the asset being backed up, of this workload and plugin.
    fn previous_point(&self) -> Option<&MockPoint> {
        let call = self.call.as_ref()?;
        let p = self.points.iter().rev().find(|p| {
            p.record.asset == call.asset
                && (p.record.workload.is_empty() || p.record.workload == call.workload)
        })?;
        (p.record.plugin_id.is_empty() || p.record.plugin_id == call.plugin).then_some(p)
    }

    /// The restore point a restore, plan or verify reads.
    fn in_hand(&self) -> Res<&MockPoint> {
        let id = self
            .call
            .as_ref()
            .and_then(|c| c.point.clone())
            .unwrap_or_default();
        self.points
            .iter()
            .find(|p| p.record.id == id)
            .ok_or_else(|| {
                err(
                    ErrorCode::Failed,
                    format!(
                        "the mock holds no restore point `{id}`; add it with MockHost::with_point"
                    ),
                )
            })
    }

    /// `spec` read and counted under the host's rules (`rehydra_plugin_rules::points`).
    fn named(&mut self, spec: &str) -> Res<String> {
        let call = self.call.as_mut().expect("a verb is running");
        Ok(call.named.name(spec)?)
    }

    /// Another point of the asset, workload and plugin of the one in hand, by what
    /// [`Self::named`] made of the plugin's `spec`, as the host finds it for `find-point`.
    fn other_point(&self, want: &str, spec: &str) -> Res<&MockPoint> {
        let hand = self.in_hand()?;
        // a point's empty workload or plugin is the plugin under test's own
        let call = self.call.as_ref().expect("a verb is running");
        let own = |v: &'_ str, mine: &str| {
            if v.is_empty() {
                mine.to_string()
            } else {
                v.to_string()
            }
        };
        let of = |p: &MockPoint| {
            (
                own(&p.record.workload, &call.workload),
                own(&p.record.plugin_id, &call.plugin),
            )
        };
        let mut found: Vec<&MockPoint> = self
            .points
            .iter()
            .filter(|p| {
                p.record.asset == hand.record.asset
                    && of(p) == of(hand)
                    && points::matches(want, &p.record.id)
            })
            .collect();
        if want == "latest" {
            // the newest by time, as the host orders its points (the last added of equals)
            found = found
                .iter()
                .max_by(|a, b| a.record.time.cmp(&b.record.time))
                .into_iter()
                .copied()
                .collect();
        }
        Ok(points::the_one(found, spec, &hand.record.asset)?)
    }

    /// Store `source` as item `name` of the backup in progress.
    fn store(&mut self, name: &str, source: Source) -> Res<ItemSummary> {
        if self.verb() != Some(Verb::Backup) {
            return Err(not_now("storing"));
        }
        if let Source::DiskChanged(..) = source
            && self.previous_point().is_none()
        {
            return Err(err(
                ErrorCode::NotFound,
                "there is no previous restore point of this asset to take unchanged data from; ingest the whole disk",
            ));
        }
        check_name(name, &self.pending)?;
        let item = match source {
            Source::Tree(p) => {
                let nodes = store::read_tree(&p, &mut self.record.warnings)
                    .map_err(|e| source_err(&p, &e))?;
                StoredItem::tree(name, nodes)
            }
            Source::File(p) => StoredItem::bytes(name, ItemKind::Stream, read_file(&p)?),
            Source::Disk(p) => StoredItem::bytes(name, ItemKind::Disk, read_file(&p)?),
            Source::Range(p, offset, length) => {
                let b = read_file(&p)?;
                let end = offset.checked_add(length).filter(|e| *e <= b.len() as u64);
                let Some(end) = end else {
                    return Err(invalid(format!(
                        "range {offset}+{length} lies beyond the end of {} ({} bytes)",
                        p.display(),
                        b.len()
                    )));
                };
                #[allow(clippy::cast_possible_truncation)]
                let range = b[offset as usize..end as usize].to_vec();
                StoredItem::bytes(name, ItemKind::Stream, range)
            }
            Source::DiskChanged(p, since, ranges) => {
                let now = read_file(&p)?;
                let base = self.previous_point().and_then(|prev| prev.item(&since));
                let base = match base {
                    Some(StoredItem {
                        info,
                        content: Content::Bytes(b),
                    }) if info.kind == ItemKind::Disk => b.clone(),
                    _ => {
                        return Err(invalid(format!(
                            "`{since}` is not a disk of the previous restore point"
                        )));
                    }
                };
                if base.len() != now.len() {
                    return Err(invalid(format!(
                        "{} is {} bytes, `{since}` was {}: the disk was resized; ingest the whole disk",
                        p.display(),
                        now.len(),
                        base.len()
                    )));
                }
                let mut disk = base;
                for r in &ranges {
                    if r.offset >= now.len() as u64 && r.length > 0 {
                        return Err(invalid(format!(
                            "changed range {}+{} starts beyond the end of {} ({} bytes)",
                            r.offset,
                            r.length,
                            p.display(),
                            now.len()
                        )));
                    }
                    #[allow(clippy::cast_possible_truncation)]
                    let (start, end) = (
                        r.offset.min(now.len() as u64) as usize,
                        r.offset.saturating_add(r.length).min(now.len() as u64) as usize,
                    );
                    disk[start..end].copy_from_slice(&now[start..end]);
                }
                StoredItem::bytes(name, ItemKind::Disk, disk)
            }
            Source::Document(b) => StoredItem::bytes(name, ItemKind::Document, b),
            Source::Pushed(b) => StoredItem::bytes(name, ItemKind::Stream, b),
        };
        let mut new_bytes = 0;
        let mut count = |b: &[u8]| {
            if self.seen.insert(content_hash(b)) {
                new_bytes += b.len() as u64;
            }
        };
        match &item.content {
            Content::Bytes(b) => count(b),
            Content::Tree(nodes) => nodes.iter().for_each(|n| {
                if let Node::File(b) = &n.node {
                    count(b);
                }
            }),
        }
        let summary = ItemSummary {
            name: item.info.name.clone(),
            kind: item.info.kind,
            size: item.info.size,
            new_bytes,
        };
        self.pending.push(item);
        Ok(summary)
    }
}

fn ingest(item: &str, path: &str, make: impl FnOnce(PathBuf) -> Source) -> Res<ItemSummary> {
    with(|s| {
        s.enter()?;
        let p = s.path(CapabilityKind::Files, path)?;
        s.engine(item)?;
        s.store(item, make(p))
    })
}

/// Back up a folder tree (or one file with its metadata). Needs `engine` and `files`
/// read access to `path`; only during `backup`.
///
/// # Errors
/// As the WIT says: `denied`, `unsupported` outside `backup`, `invalid-input` (item
/// name), `failed` (a missing or unreadable source).
pub fn ingest_path(item: &str, path: &str) -> Result<ItemSummary, Error> {
    ingest(item, path, Source::Tree)
}

/// Back up one file as a stream.
///
/// # Errors
/// As [`ingest_path`]; `invalid-input` for a folder.
pub fn ingest_file(item: &str, path: &str) -> Result<ItemSummary, Error> {
    ingest(item, path, Source::File)
}

/// Back up `length` bytes of a file from `offset`.
///
/// # Errors
/// As [`ingest_file`]; `invalid-input` for a range past the end.
pub fn ingest_range(
    item: &str,
    path: &str,
    offset: u64,
    length: u64,
) -> Result<ItemSummary, Error> {
    ingest(item, path, |p| Source::Range(p, offset, length))
}

/// Back up a disk image. The mock stores the image file's bytes as the virtual disk (it
/// does not decode VHDX or VHD).
///
/// # Errors
/// As [`ingest_file`].
pub fn ingest_disk(item: &str, path: &str, format: DiskFormat) -> Result<ItemSummary, Error> {
    let _ = format;
    ingest(item, path, Source::Disk)
}

/// Back up a disk image reading only the `changed` byte ranges; everything else comes
/// from disk item `since_item` of the previous restore point.
///
/// # Errors
/// As [`ingest_disk`]; `not-found` without a previous restore point; `invalid-input`
/// when `since_item` is not a disk of it, the disk was resized, or a range starts past
/// its end.
pub fn ingest_disk_changed(
    item: &str,
    path: &str,
    format: DiskFormat,
    since_item: &str,
    changed: &[DiskRange],
) -> Result<ItemSummary, Error> {
    let _ = format;
    ingest(item, path, |p| {
        Source::DiskChanged(p, since_item.into(), changed.to_vec())
    })
}

/// The newest restore point of the asset being backed up, of this workload, if any.
/// Only during `backup`.
///
/// # Errors
/// `denied` without `engine`, `unsupported` outside `backup`.
pub fn previous() -> Result<Option<RestorePoint>, Error> {
    with(|s| {
        if s.engine("previous")? != Verb::Backup {
            return Err(not_now("the previous restore point"));
        }
        let call = s.call.as_ref().expect("a verb is running");
        Ok(s.previous_point().map(|p| {
            let mut r = p.record();
            if r.workload.is_empty() {
                r.workload.clone_from(&call.workload);
            }
            if r.plugin_id.is_empty() {
                r.plugin_id.clone_from(&call.plugin);
                r.plugin_version.clone_from(&call.version);
            }
            r
        }))
    })
}

/// Read a document (or a stream of at most 16 MiB) of the previous restore point.
///
/// # Errors
/// `not-found` (no previous point, no such item), `invalid-input` (not a document or
/// stream, or too big), `unsupported` outside `backup`.
pub fn read_previous_document(item: &str) -> Result<Vec<u8>, Error> {
    with(|s| {
        if s.engine(item)? != Verb::Backup {
            return Err(not_now("the previous restore point"));
        }
        let prev = s.previous_point().ok_or_else(|| {
            err(
                ErrorCode::NotFound,
                "there is no previous restore point of this asset",
            )
        })?;
        read_small(prev, item)
    })
}

/// Keep item `since_item` of the previous restore point as `item`, without reading it
/// again. Only during `backup`.
///
/// # Errors
/// `denied` without `engine`, `unsupported` outside `backup`, `not-found` without a
/// previous restore point or that item, `invalid-input` for a used name.
pub fn carry_forward(item: &str, since_item: &str) -> Result<ItemSummary, Error> {
    with(|s| {
        s.enter()?;
        s.engine(item)?;
        if s.verb() != Some(Verb::Backup) {
            return Err(not_now("storing"));
        }
        let old = s
            .previous_point()
            .and_then(|p| p.item(since_item))
            .cloned()
            .ok_or_else(|| {
                err(
                    ErrorCode::NotFound,
                    format!("the previous restore point has no item `{since_item}` to keep"),
                )
            })?;
        check_name(item, &s.pending)?;
        let mut kept = old;
        kept.info.name = item.into();
        let summary = ItemSummary {
            name: item.into(),
            kind: kept.info.kind,
            size: kept.info.size,
            new_bytes: 0,
        };
        s.pending.push(kept);
        Ok(summary)
    })
}

/// Store a metadata document (at most 16 MiB).
///
/// # Errors
/// As [`ingest_path`]; `invalid-input` over 16 MiB.
pub fn put_document(item: &str, body: &[u8]) -> Result<ItemSummary, Error> {
    with(|s| {
        s.enter()?;
        if body.len() as u64 > SMALL_MAX {
            return Err(invalid(format!(
                "document `{item}` is larger than 16 MiB; use ingest-file or a stream"
            )));
        }
        s.engine(item)?;
        s.store(item, Source::Document(body.to_vec()))
    })
}

/// Start a pushed stream item (at most 32 per call); the name is checked at `finish`.
///
/// # Errors
/// `denied` without `engine`, `unsupported` where there is no engine, `invalid-input`
/// past 32 streams.
pub fn open_stream(item: &str) -> Result<StreamWriter, Error> {
    with(|s| {
        s.engine(item)?;
        let call = s.call.as_mut().expect("a verb is running");
        if call.streams_opened >= MAX_STREAMS {
            return Err(invalid(format!(
                "at most {MAX_STREAMS} streams may be opened in one call"
            )));
        }
        call.streams_opened += 1;
        // unique in the process: a writer dropped late never touches another call's stream
        let id = store::unique();
        s.streams.insert(
            id,
            OpenStream {
                item: item.into(),
                bytes: Vec::new(),
                finished: false,
            },
        );
        Ok(StreamWriter { id })
    })
}

/// Items of the restore point being planned, restored or verified.
///
/// # Errors
/// `unsupported` during `backup`.
pub fn items() -> Result<Vec<ItemInfo>, Error> {
    with(|s| {
        if s.engine("items")? == Verb::Backup {
            return Err(not_now("reading items"));
        }
        Ok(s.in_hand()?.record().items)
    })
}

/// Read a document (or a stream of at most 16 MiB) of that restore point.
///
/// # Errors
/// `not-found` (no such item), `invalid-input` (not a document or stream, or too big),
/// `unsupported` during `backup`.
pub fn read_document(item: &str) -> Result<Vec<u8>, Error> {
    with(|s| {
        if s.engine(item)? == Verb::Backup {
            return Err(not_now("reading items"));
        }
        read_small(s.in_hand()?, item)
    })
}

/// Another restore point of the asset, workload and plugin of the one in hand, by id, a
/// unique prefix of one (at least 4 hex digits) or `latest`.
///
/// # Errors
/// `not-found` (no such point of this asset, an ambiguous prefix), `invalid-input` (not an
/// id), `unsupported` during `backup`.
pub fn find_point(id: &str) -> Result<RestorePoint, Error> {
    with(|s| {
        if s.engine("find-point")? == Verb::Backup {
            return Err(not_now("another restore point"));
        }
        let want = s.named(id)?;
        let call = s.call.as_ref().expect("a verb is running");
        let mut r = s.other_point(&want, id)?.record();
        if r.workload.is_empty() {
            r.workload.clone_from(&call.workload);
        }
        if r.plugin_id.is_empty() {
            r.plugin_id.clone_from(&call.plugin);
            r.plugin_version.clone_from(&call.version);
        }
        Ok(r)
    })
}

/// Read a document (or a stream of at most 16 MiB) of a point [`find_point`] finds.
///
/// # Errors
/// As [`find_point`] and [`read_document`].
pub fn read_point_document(point: &str, item: &str) -> Result<Vec<u8>, Error> {
    with(|s| {
        if s.engine(item)? == Verb::Backup {
            return Err(not_now("another restore point"));
        }
        let want = s.named(point)?;
        read_small(s.other_point(&want, point)?, item)
    })
}

/// Restore an item to `target` (needs `files-write` access to it); only during
/// `restore`. A tree is merged into an existing folder; without `overwrite` any file or
/// link the item also has refuses the whole call before anything is written.
///
/// # Errors
/// `denied`, `unsupported` outside `restore`, `invalid-input` (unknown item, conflicts,
/// a non-disk item to `.vhdx`/`.vhd`), `failed` (I/O).
pub fn restore_item(item: &str, target: &str, overwrite: bool) -> Result<u64, Error> {
    with(|s| {
        s.enter()?;
        let p = s.path(CapabilityKind::FilesWrite, target)?;
        let verb = s.engine(item)?;
        s.audit(
            CapabilityKind::FilesWrite,
            target,
            true,
            &format!("restore item {item}"),
        );
        match verb {
            Verb::Restore => {}
            Verb::Backup => return Err(not_now("restoring")),
            _ => return Err(not_now("restoring an item (only `restore` writes)")),
        }
        let point = s.in_hand()?;
        let stored = point.item(item).ok_or_else(|| {
            let names: Vec<&str> = point.items.iter().map(|i| i.info.name.as_str()).collect();
            invalid(format!(
                "the restore point has no item `{item}`; its items are: {}",
                names.join(", ")
            ))
        })?;
        let stored = stored.clone();
        store::restore(&stored, &p, overwrite, &mut s.record.warnings)
    })
}

/// A stream pushed by the plugin (at most 256 MiB; 512 MiB for all streams of a call).
#[derive(Debug)]
pub struct StreamWriter {
    id: u64,
}

impl StreamWriter {
    /// Append bytes (at most 4 MiB per call).
    ///
    /// # Errors
    /// `invalid-input` over a limit or after `finish`.
    pub fn write(&self, bytes: &[u8]) -> Result<(), Error> {
        with(|s| {
            s.enter()?;
            if bytes.len() > WRITE_CHUNK_MAX {
                return Err(invalid("at most 4 MiB per write"));
            }
            let n = bytes.len() as u64;
            let spooled = s.call.as_ref().map_or(0, |c| c.spooled);
            if spooled + n > SPOOL_MAX {
                return Err(invalid(format!(
                    "more than {} MiB spooled through streams in one call; write the data to a file and use ingest-file",
                    SPOOL_MAX >> 20
                )));
            }
            let st = s
                .streams
                .get_mut(&self.id)
                .ok_or_else(|| err(ErrorCode::Failed, "unknown stream (from another call)"))?;
            if st.bytes.len() as u64 + n > STREAM_MAX {
                return Err(invalid(format!(
                    "stream `{}` is larger than 256 MiB; write it to a file and use ingest-file",
                    st.item
                )));
            }
            if st.finished {
                return Err(invalid("stream already finished"));
            }
            st.bytes.extend_from_slice(bytes);
            if let Some(c) = s.call.as_mut() {
                c.spooled += n;
            }
            Ok(())
        })
    }

    /// Store the stream as an item.
    ///
    /// # Errors
    /// `denied` without `engine`, `unsupported` outside `backup`, `invalid-input` for a
    /// bad or used item name or a second `finish`.
    pub fn finish(&self) -> Result<ItemSummary, Error> {
        with(|s| {
            s.enter()?;
            let st = s
                .streams
                .get_mut(&self.id)
                .ok_or_else(|| err(ErrorCode::Failed, "unknown stream (from another call)"))?;
            if st.finished {
                return Err(invalid("stream already finished"));
            }
            st.finished = true;
            let (item, bytes) = (st.item.clone(), std::mem::take(&mut st.bytes));
            s.engine(&item)?;
            s.store(&item, Source::Pushed(bytes))
        })
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        super::state::try_with(|s| {
            s.streams.remove(&self.id);
        });
    }
}
