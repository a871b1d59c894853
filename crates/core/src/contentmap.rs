//! Content maps: what an item holds, as a stream of JSON lines stored in ordinary chunks.
//!
//! ```text
//! {"n":{"path":"etc/hosts","type":"file","mode":420,"mtime_ns":…,"size":…}}   a node
//! {"x":[["<chunk id hex>",16384],[null,4096],…]}                               extents of the last node
//! ```
//! A node's extents follow it in order (at most 1024 per line). `null` marks a run of
//! zeros (a hole, never stored). Paths are relative, `/`-separated, UTF-8; a name that is
//! not UTF-8 is stored hex-encoded in `path_hex` instead.

use std::io::{BufRead, BufWriter, Write};

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// Node types.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Regular file (or a stream, or a disk image).
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
}

/// One entry of a content map.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
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
}

impl Node {
    /// The path as bytes.
    pub fn path_bytes(&self) -> Vec<u8> {
        match &self.path_hex {
            Some(h) => hex::decode(h).unwrap_or_default(),
            None => self.path.as_bytes().to_vec(),
        }
    }
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
            match self.input.read_line(&mut self.line) {
                Ok(0) => return None,
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
            target: None,
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
}
