//! Unchanged files of a folder backup: the previous restore point's item of the same name
//! is read alongside the walk (both are in path order), and a file whose size,
//! modification time, status-change time and inode all match what that restore point
//! recorded takes its extents from there instead of being read again, as restic does.
//!
//! Only the map is streamed, one node at a time, so memory does not grow with the tree.
//! A previous map that cannot be read (damaged, or written by a hostile writer) only
//! costs speed: the rest of the tree is read in full, with a warning.

use std::io::BufReader;
use std::iter::Peekable;

use crate::contentmap::{ChunkStream, Extent, MapEvent, MapReader, Node, NodeKind, read_map};
use crate::index::ChunkIndex;
use crate::manifest::Item;
use crate::repository::Repository;

/// A cursor over the previous restore point's content map of one tree item.
pub(super) struct Previous<'a> {
    events: Peekable<MapReader<BufReader<ChunkStream<'a>>>>,
    index: &'a ChunkIndex,
    /// Why the previous map stopped being used (reported once).
    pub failed: Option<String>,
}

impl<'a> Previous<'a> {
    pub fn new(repo: &'a Repository, index: &'a ChunkIndex, item: &'a Item) -> Self {
        Self {
            events: read_map(repo, index, item).peekable(),
            index,
            failed: None,
        }
    }

    /// The extents of `now` (a regular file at `now.path`) when the previous restore point
    /// holds the same file unchanged and every chunk it names is still in the repository.
    pub fn unchanged(&mut self, now: &Node) -> Option<Vec<Extent>> {
        let (then, extents) = self.find(&now.path)?;
        let same = then.kind == NodeKind::File
            && now.kind == NodeKind::File
            && then.size == now.size
            && then.mtime_ns == now.mtime_ns
            && then.ctime_ns == now.ctime_ns
            && then.inode == now.inode
            // a source without status-change times (not Unix) is compared by size and time
            && (now.ctime_ns.is_some() || cfg!(not(unix)))
            && extents.iter().map(Extent::len).sum::<u64>() == now.size;
        if !same {
            return None;
        }
        for e in &extents {
            if let Extent::Data(id, _) = e {
                match self.index.contains(id) {
                    Ok(true) => {}
                    _ => return None,
                }
            }
        }
        Some(extents)
    }

    /// Move to `path` in the previous map: the node there and its extents, or `None` when
    /// the previous map has no such node (or is no longer usable).
    fn find(&mut self, path: &str) -> Option<(Node, Vec<Extent>)> {
        let want: Vec<&str> = split(path);
        loop {
            let order = match self.peek()? {
                MapEvent::Extents(_) => None,
                MapEvent::Node(n) => Some(split(&n.path).cmp(&want)),
            };
            let Some(order) = order else {
                self.events.next();
                continue;
            };
            match order {
                std::cmp::Ordering::Less => {
                    self.events.next();
                }
                std::cmp::Ordering::Greater => return None,
                std::cmp::Ordering::Equal => {
                    let Some(Ok(MapEvent::Node(node))) = self.events.next() else {
                        unreachable!("peeked a node");
                    };
                    let mut extents = Vec::new();
                    while let Some(MapEvent::Extents(_)) = self.peek() {
                        if let Some(Ok(MapEvent::Extents(x))) = self.events.next() {
                            extents.extend(x);
                        }
                    }
                    if self.failed.is_some() {
                        return None;
                    }
                    return Some((node, extents));
                }
            }
        }
    }

    /// The next event, or `None` at the end or once reading failed.
    fn peek(&mut self) -> Option<&MapEvent> {
        if self.failed.is_some() {
            return None;
        }
        match self.events.peek()? {
            Ok(_) => {}
            Err(_) => {
                let Some(Err(e)) = self.events.next() else {
                    unreachable!("peeked an error");
                };
                self.failed = Some(e.to_string());
                return None;
            }
        }
        match self.events.peek() {
            Some(Ok(ev)) => Some(ev),
            _ => None,
        }
    }
}

fn split(path: &str) -> Vec<&str> {
    if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    }
}

/// The item of `restore_point` a tree item named `name` continues, if any.
pub(super) fn item<'s>(
    restore_point: Option<&'s crate::manifest::RestorePoint>,
    name: &str,
) -> Option<&'s Item> {
    restore_point?
        .items
        .iter()
        .find(|i| i.name == name && i.kind == crate::manifest::ItemKind::Tree)
}

impl super::Run<'_, '_> {
    /// An item of restore point `since` to keep as it is: its kind, size and content map,
    /// once every chunk the map names is known to be in the repository.
    pub(super) fn carried(
        &mut self,
        since: &crate::Id,
        name: &str,
    ) -> crate::error::Result<(crate::manifest::ItemKind, u64, Vec<crate::Id>)> {
        use crate::error::{Error, ErrorKind};
        let snap = match &mut self.carried_from {
            Some((id, snap)) if id == since => &*snap,
            slot => {
                &slot
                    .insert((*since, self.repo.load_restore_point(since)?))
                    .1
            }
        };
        let item = snap.items.iter().find(|i| i.name == name).ok_or_else(|| {
            Error::new(
                ErrorKind::Missing,
                format!(
                    "restore point {} has no item `{name}` to keep",
                    since.short()
                ),
            )
        })?;
        for ev in read_map(self.repo, self.index, item) {
            let MapEvent::Extents(exts) = ev? else {
                continue;
            };
            for e in exts {
                if let Extent::Data(id, _) = e
                    && !self.index.contains(&id)?
                {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "restore point {} keeps item `{name}` in chunk {} that the repository no longer has; back it up again (and run check)",
                            since.short(),
                            id.short()
                        ),
                    ));
                }
            }
        }
        Ok((item.kind, item.size, item.map.clone()))
    }
}
