//! Content maps: what an item holds, as a stream of JSON lines stored in ordinary chunks.
//!
//! ```text
//! {"n":{"path":"etc/hosts","type":"file","mode":420,"mtime_ns":…,"size":…}}   a node
//! {"x":[["<chunk id hex>",16384],[null,4096],…]}                               extents of the last node
//! ```
//! A node's extents follow it in order (at most 1024 per line). `null` marks a run of
//! zeros (a hole, never stored). Paths are relative, `/`-separated, UTF-8 (`path_hex`, a
//! hex form for names that are not UTF-8, is reserved: no writer produces it and readers
//! refuse it).
//!
//! A tree's nodes come depth first, each folder's entries sorted by name, so paths are
//! strictly increasing when compared component by component, and every node's parent is
//! a folder node met before it. Readers of a repository written by another host check
//! exactly that ([`TreeCheck`]): a map out of order, with a duplicate, or with a path
//! through a link or a file is refused before it can steer a restore.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::manifest::Item;
use crate::repository::Repository;

/// Node types.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Regular file (or a stream, or a disk image).
    #[default]
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
}

/// One entry of a content map.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Node {
    /// Relative path (`""` for the item's root).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Path bytes in hex when they are not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    pub kind: NodeKind,
    /// Unix permission bits (0 when unknown).
    #[serde(default)]
    pub mode: u32,
    /// Modification time, nanoseconds since the Unix epoch.
    #[serde(default)]
    pub mtime_ns: i64,
    /// Logical size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Owner's user id (Unix sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Owner's group id (Unix sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Owner's user name on the machine that was backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Owner's group name on the machine that was backed up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Status-change time (Unix `ctime`), nanoseconds since the Unix epoch. With the
    /// inode, size and `mtime_ns`, how the next backup knows a file did not change
    /// without reading it. Never restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime_ns: Option<i64>,
    /// Inode number (Unix sources). Never restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
}

impl Node {
    /// The recorded owner, when the backup recorded one.
    pub fn owner(&self) -> Option<rehydra_target::Owner> {
        Some(rehydra_target::Owner {
            uid: self.uid?,
            gid: self.gid?,
            user: self.user.clone(),
            group: self.group.clone(),
        })
    }

    /// Mode, time and owner as a restore applies them.
    pub fn meta(&self) -> rehydra_target::Meta {
        rehydra_target::Meta {
            mode: Some(self.mode),
            mtime_ns: Some(self.mtime_ns),
            owner: self.owner(),
        }
    }
}

/// Deepest folder nesting a tree may have (a hostile map cannot make a restore recurse or
/// hold handles without bound).
pub const MAX_DEPTH: usize = 256;

/// Checks the nodes of one tree item as they are read (see the module documentation):
/// valid names, strictly increasing paths, every parent a folder node already seen.
#[derive(Debug, Default)]
pub struct TreeCheck {
    /// Path of the previous node.
    prev: Option<Vec<String>>,
    /// Folders enclosing the previous node, outermost first.
    open: Vec<Vec<String>>,
    /// The root node was not a folder: nothing may follow it.
    closed: bool,
}

impl TreeCheck {
    /// Check `n`, the next node, and return its path components.
    ///
    /// # Errors
    /// [`ErrorKind::Corrupt`] naming the node: a reserved `path_hex`, a bad name, a path
    /// out of order or repeated, a parent that is not a folder node, too deep.
    pub fn next(&mut self, n: &Node, what: &str) -> Result<Vec<String>> {
        let bad = |why: String| {
            Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "{what}: node `{}` {why}; the repository was written by a damaged or hostile writer, nothing is restored from this item",
                    n.path
                ),
            ))
        };
        if n.path_hex.is_some() {
            return bad("has a hex-encoded path, which this build does not write or read".into());
        }
        if self.closed {
            return bad("follows a root that is not a folder".into());
        }
        let comps: Vec<String> = if n.path.is_empty() {
            Vec::new()
        } else {
            n.path.split('/').map(str::to_string).collect()
        };
        for c in &comps {
            if let Err(why) = rehydra_target::names::check(c) {
                return bad(format!("has {why}"));
            }
        }
        if comps.len() > MAX_DEPTH {
            return bad(format!("is nested deeper than {MAX_DEPTH} folders"));
        }
        match &self.prev {
            None if !comps.is_empty() => return bad("comes before the item's root".into()),
            None => {}
            Some(p) if comps <= *p => return bad("is out of order or repeated".into()),
            Some(_) => {}
        }
        if let Some((_, parent)) = comps.split_last() {
            while self.open.last().is_some_and(|d| !comps.starts_with(d)) {
                self.open.pop();
            }
            if self.open.last().map(Vec::as_slice) != Some(parent) {
                return bad("lies below a link, a file or a folder the map does not hold".into());
            }
        } else if n.kind != NodeKind::Dir {
            self.closed = true;
        }
        if n.kind == NodeKind::Dir {
            self.open.push(comps.clone());
        }
        self.prev = Some(comps.clone());
        Ok(comps)
    }
}

/// Map chunks read at once: about 1 MiB at the 16 KiB average, one or two requests on an
/// object store instead of 64.
const MAP_BATCH: usize = 64;

/// Reads the concatenated chunks of a content map, [`MAP_BATCH`] chunks at a time.
pub struct ChunkStream<'a> {
    repo: &'a Repository,
    index: &'a ChunkIndex,
    ids: std::slice::Chunks<'a, Id>,
    /// Chunks read and not yet consumed, in order.
    ready: std::collections::VecDeque<Vec<u8>>,
    pos: usize,
}

impl<'a> ChunkStream<'a> {
    /// A reader over `ids`.
    pub fn new(repo: &'a Repository, index: &'a ChunkIndex, ids: &'a [Id]) -> Self {
        Self {
            repo,
            index,
            ids: ids.chunks(MAP_BATCH),
            ready: std::collections::VecDeque::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkStream<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.ready.front().is_none_or(|b| self.pos >= b.len()) {
            if self.ready.pop_front().is_none() {
                let Some(batch) = self.ids.next() else {
                    return Ok(0);
                };
                let mut got = self
                    .repo
                    .read_chunks(self.index, batch)
                    .map_err(std::io::Error::other)?;
                for (k, id) in batch.iter().enumerate() {
                    // a map may repeat a chunk: all but its last use in the batch copy it
                    let data = if batch[k + 1..].contains(id) {
                        got.get(id).cloned()
                    } else {
                        got.remove(id)
                    };
                    self.ready.push_back(data.expect("read_chunks returns every id"));
                }
            }
            self.pos = 0;
        }
        let buf = self.ready.front().expect("checked");
        let n = out.len().min(buf.len() - self.pos);
        out[..n].copy_from_slice(&buf[self.pos..self.pos + n]);
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

/// A piece of a node's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// A stored chunk of `len` bytes.
    Data(Id, u32),
    /// `len` zero bytes.
    Zero(u64),
}

impl Extent {
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Extent::Data(_, l) => u64::from(*l),
            Extent::Zero(l) => *l,
        }
    }

    /// True for an empty extent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<Node>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<Vec<(Option<Id>, u64)>>,
}

const EXTENTS_PER_LINE: usize = 1024;
/// Longest content map line a reader accepts (written lines are about 100 KiB at most):
/// a map from a hostile writer cannot make a reader hold more.
pub const MAX_LINE: u64 = 4 << 20;

/// Writes a content map.
pub struct MapWriter<W: Write> {
    out: BufWriter<W>,
    pending: Vec<(Option<Id>, u64)>,
}

impl<W: Write> MapWriter<W> {
    /// A writer into `out`.
    pub fn new(out: W) -> Self {
        Self {
            out: BufWriter::with_capacity(256 * 1024, out),
            pending: Vec::new(),
        }
    }

    fn line(&mut self, l: &Line) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, l)?;
        self.out.write_all(b"\n")
    }

    fn flush_extents(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            let x = std::mem::take(&mut self.pending);
            self.line(&Line {
                n: None,
                x: Some(x),
            })?;
        }
        Ok(())
    }

    /// Start a node.
    ///
    /// # Errors
    /// Write failure.
    pub fn node(&mut self, n: Node) -> std::io::Result<()> {
        self.flush_extents()?;
        self.line(&Line {
            n: Some(n),
            x: None,
        })
    }

    /// Append an extent to the current node (adjacent zero runs are merged).
    ///
    /// # Errors
    /// Write failure.
    pub fn extent(&mut self, e: Extent) -> std::io::Result<()> {
        match e {
            Extent::Zero(n) => {
                if let Some((None, prev)) = self.pending.last_mut() {
                    *prev += n;
                    return Ok(());
                }
                self.pending.push((None, n));
            }
            Extent::Data(id, n) => self.pending.push((Some(id), u64::from(n))),
        }
        if self.pending.len() >= EXTENTS_PER_LINE {
            self.flush_extents()?;
        }
        Ok(())
    }

    /// Finish and return the inner writer.
    ///
    /// # Errors
    /// Write failure.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.flush_extents()?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// What a content map reader yields.
#[derive(Debug, PartialEq, Eq)]
pub enum MapEvent {
    /// A node starts.
    Node(Node),
    /// More extents of the current node.
    Extents(Vec<Extent>),
}

/// Reads a content map line by line.
pub struct MapReader<R: BufRead> {
    input: R,
    line: String,
    what: String,
}

impl<R: BufRead> MapReader<R> {
    /// A reader; `what` names the map in errors.
    pub fn new(input: R, what: impl Into<String>) -> Self {
        Self {
            input,
            line: String::new(),
            what: what.into(),
        }
    }
}

impl<R: BufRead> Iterator for MapReader<R> {
    type Item = Result<MapEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line.clear();
            match (&mut self.input)
                .take(MAX_LINE + 1)
                .read_line(&mut self.line)
            {
                Ok(0) => return None,
                Ok(n) if n as u64 > MAX_LINE => {
                    return Some(Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "{}: a content map line is longer than {} MiB (this build writes lines of at most about 100 KiB)",
                            self.what,
                            MAX_LINE >> 20
                        ),
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
                        return Some(Err(Error::new(inner.kind(), inner.to_string())));
                    }
                    return Some(Err(Error::io(&self.what, e)));
                }
            }
            if self.line.trim().is_empty() {
                continue;
            }
            let parsed: Line = match serde_json::from_str(&self.line) {
                Ok(l) => l,
                Err(e) => {
                    return Some(Err(Error::new(
                        ErrorKind::Corrupt,
                        format!("{}: malformed content map line: {e}", self.what),
                    )));
                }
            };
            return Some(Ok(match (parsed.n, parsed.x) {
                (Some(n), None) => MapEvent::Node(n),
                (None, Some(x)) => MapEvent::Extents(
                    x.into_iter()
                        .map(|(id, len)| match id {
                            Some(id) => Extent::Data(id, len as u32),
                            None => Extent::Zero(len),
                        })
                        .collect(),
                ),
                _ => {
                    return Some(Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "{}: content map line is neither a node nor extents",
                            self.what
                        ),
                    )));
                }
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_roundtrip() {
        let mut w = MapWriter::new(Vec::new());
        let n = Node {
            path: "a/b".into(),
            path_hex: None,
            kind: NodeKind::File,
            mode: 0o644,
            mtime_ns: 5,
            size: 10,
            ..Node::default()
        };
        w.node(n.clone()).unwrap();
        let id = Id::random();
        w.extent(Extent::Data(id, 6)).unwrap();
        w.extent(Extent::Zero(2)).unwrap();
        w.extent(Extent::Zero(2)).unwrap();
        let bytes = w.finish().unwrap();
        let ev: Vec<MapEvent> = MapReader::new(&bytes[..], "t")
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(
            ev,
            vec![
                MapEvent::Node(n),
                MapEvent::Extents(vec![Extent::Data(id, 6), Extent::Zero(4)])
            ]
        );
        assert!(
            MapReader::new(&b"{\"q\":1}\n"[..], "t")
                .next()
                .unwrap()
                .is_err()
        );
    }

    fn node(path: &str, kind: NodeKind) -> Node {
        Node {
            path: path.into(),
            kind,
            ..Node::default()
        }
    }

    fn check(nodes: &[Node]) -> std::result::Result<(), String> {
        let mut c = TreeCheck::default();
        for n in nodes {
            c.next(n, "test map").map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    #[test]
    fn tree_check_accepts_what_the_archiver_writes() {
        use NodeKind::*;
        // depth first, names sorted: "a" < "a b" as names, so "a/b" comes before "a b"
        check(&[
            node("", Dir),
            node("a", Dir),
            node("a/b", File),
            node("a/c", Symlink),
            node("a b", File),
            node("z", Dir),
            node("z/y", Dir),
            node("z/y/x", File),
        ])
        .unwrap();
        check(&[node("", File)]).unwrap();
    }

    #[test]
    fn tree_check_refuses_hostile_maps() {
        use NodeKind::*;
        for (nodes, why) in [
            (
                vec![node("", Dir), node("a", Symlink), node("a/cron.d", Dir)],
                "below a link",
            ),
            (
                vec![node("", Dir), node("a", File), node("a/x", File)],
                "below a link",
            ),
            (
                vec![node("", Dir), node("b", File), node("a", File)],
                "out of order",
            ),
            (
                vec![node("", Dir), node("a", File), node("a", File)],
                "out of order",
            ),
            (vec![node("", Dir), node("x/y", File)], "below a link"),
            (vec![node("", Dir), node("..", Dir)], "`..`"),
            (vec![node("", Dir), node("a//b", File)], "empty name"),
            (vec![node("a", File)], "before the item's root"),
            (vec![node("", File), node("a", File)], "not a folder"),
            (
                vec![
                    node("", Dir),
                    node("a", Dir),
                    node("b", File),
                    node("a/c", File),
                ],
                "out of order",
            ),
        ] {
            let e = check(&nodes).unwrap_err();
            assert!(e.contains(why), "{e} (wanted {why})");
        }
        let mut hex = node("", Dir);
        hex.path_hex = Some("2e2e".into());
        assert!(check(&[hex]).unwrap_err().contains("hex"));
        let deep: Vec<Node> = std::iter::once(node("", Dir))
            .chain((1..=MAX_DEPTH + 1).map(|d| node(&vec!["d"; d].join("/"), Dir)))
            .collect();
        assert!(check(&deep).unwrap_err().contains("deeper"));
    }

    #[test]
    fn an_endless_line_is_refused_not_held() {
        let line = vec![b'x'; (MAX_LINE + 10) as usize];
        let e = MapReader::new(&line[..], "t").next().unwrap().unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }
}
