//! Reading ahead while restoring: the content map is walked ahead of the writer and the
//! chunks of the next [`AHEAD`] bytes are fetched by [`READERS`] threads, in batches that
//! may span several small files. On an object store each request waits its round trip;
//! with several in flight a restore is bound by bandwidth, not by latency. Steps come out
//! in map order, so the writer sees exactly what it would without reading ahead.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::{Receiver, Sender};

use super::Walker;
use super::fetch::fetch_extents;
use crate::contentmap::{Extent, MapEvent, Node, NodeKind};
use crate::error::{Error, Result};
use crate::index::ChunkIndex;
use crate::repository::Repository;

/// Chunks per fetch: about 4 MiB at the 16 KiB average.
const BATCH_CHUNKS: usize = 256;
/// Data bytes per fetch at most (a batch of large disk chunks stops here).
const BATCH_BYTES: u64 = 4 << 20;
/// Bytes held ahead of the writer — data fetched or on its way, plus what queued nodes and
/// extents cost to keep ([`weight`]) — the memory read-ahead costs. Checked per extent, so
/// at most one chunk beyond it.
const AHEAD: u64 = 16 << 20;
/// What an extent or a node costs to keep queued, beyond its data (a hostile map of
/// millions of one-byte holes or huge link targets must not fill memory).
const ENTRY: u64 = 64;
/// Fetches in flight at once.
const READERS: usize = 4;
/// Steps queued at most (a tree of empty files moves no data but still takes memory).
const QUEUED: usize = 8192;

/// What the writer does next.
pub(super) enum Step {
    /// A node starts; `dest` is where it goes, `None` when it is outside the selection.
    Node(Node, Option<Vec<String>>),
    /// More of the current node: extents and their data (`None` for holes).
    Data(Vec<Extent>, Vec<Option<Vec<u8>>>),
}

type Fetched = Result<Vec<Option<Vec<u8>>>>;
type Job = (Vec<Extent>, Sender<Fetched>);

/// Queued for the writer, in map order.
enum Queued {
    Node(Node, Option<Vec<String>>),
    /// The next `len` extents of the front batch.
    Data(usize),
    /// The map ended in an error here.
    Fail(Error),
}

/// Extents fetched together.
struct Batch {
    ext: Vec<Extent>,
    bytes: u64,
    /// Extents already handed to the writer.
    taken: usize,
    pending: Option<Receiver<Fetched>>,
    data: Option<std::vec::IntoIter<Option<Vec<u8>>>>,
    /// Sent to a reader; no more extents join it.
    sealed: bool,
}

/// Map events in, [`Step`]s out, with the data of the next few MiB already on its way.
pub(super) struct ReadAhead<'w, I> {
    events: I,
    walker: Walker<'w>,
    queue: VecDeque<Queued>,
    batches: VecDeque<Batch>,
    jobs: Option<Sender<Job>>,
    stop: Arc<AtomicBool>,
    /// Bytes held ahead: data and [`ENTRY`] per extent in `batches`, and queued nodes.
    ahead: u64,
    /// The rest of a map line not queued yet (the budget ran out in its middle).
    line: std::vec::IntoIter<Extent>,
    /// The current node's extents are written (a selected file).
    wanted: bool,
    done: bool,
}

impl<'w, I: Iterator<Item = Result<MapEvent>>> ReadAhead<'w, I> {
    /// Start [`READERS`] reader threads in `scope`; they end when this is dropped, and a
    /// read of theirs held to a bandwidth limit stops waiting then or once `cancel` is set.
    pub(super) fn new<'s, 'e>(
        scope: &'s std::thread::Scope<'s, 'e>,
        repo: &'e Repository,
        index: &'e ChunkIndex,
        events: I,
        walker: Walker<'w>,
        cancel: &Arc<AtomicBool>,
    ) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..READERS {
            let (rx, stop, cancel) = (rx.clone(), stop.clone(), cancel.clone());
            scope.spawn(move || {
                let _stop = crate::backend::heed_cancel(stop.clone());
                let _cancel = crate::backend::heed_cancel(cancel.clone());
                for (ext, reply) in rx {
                    if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    // the writer may have gone: nothing is waiting then
                    let _ = reply.send(fetch_extents(repo, index, &ext));
                }
            });
        }
        Self {
            events,
            walker,
            queue: VecDeque::new(),
            batches: VecDeque::new(),
            jobs: Some(tx),
            stop,
            ahead: 0,
            line: Vec::new().into_iter(),
            wanted: false,
            done: false,
        }
    }

    /// The next step, `None` at the end of the map.
    pub(super) fn next_step(&mut self) -> Option<Result<Step>> {
        self.fill();
        match self.queue.pop_front()? {
            Queued::Node(n, dest) => {
                self.ahead -= node_weight(&n);
                Some(Ok(Step::Node(n, dest)))
            }
            Queued::Fail(e) => Some(Err(e)),
            Queued::Data(len) => Some(self.take(len)),
        }
    }

    /// Once the writer has taken a batch's worth, walk the map until [`AHEAD`] bytes are
    /// on their way, [`QUEUED`] steps wait, or it ends; then send the open batch off. (Not
    /// refilling after every step keeps batches full when files are small.)
    fn fill(&mut self) {
        let low = self.ahead + BATCH_BYTES <= AHEAD && self.queue.len() <= QUEUED / 2;
        if self.done || !low {
            return;
        }
        while !self.done && self.ahead < AHEAD && self.queue.len() < QUEUED {
            if let Some(e) = self.line.next() {
                self.push(e);
                continue;
            }
            let Some(ev) = self.events.next() else {
                self.done = true;
                break;
            };
            let r = ev.and_then(|ev| match ev {
                MapEvent::Node(n) => {
                    let dest = self.walker.dest(&n)?;
                    self.wanted = dest.is_some() && n.kind == NodeKind::File;
                    self.ahead += node_weight(&n);
                    self.queue.push_back(Queued::Node(n, dest));
                    Ok(())
                }
                MapEvent::Extents(ext) if self.wanted => {
                    self.line = ext.into_iter();
                    Ok(())
                }
                MapEvent::Extents(_) => Ok(()),
            });
            if let Err(e) = r {
                self.queue.push_back(Queued::Fail(e));
                self.done = true;
            }
        }
        self.seal_last();
    }

    /// Add an extent of the current node to the open batch.
    fn push(&mut self, e: Extent) {
        let open = self.batches.back().is_some_and(|b| !b.sealed);
        if !open {
            self.batches.push_back(Batch {
                ext: Vec::with_capacity(BATCH_CHUNKS),
                bytes: 0,
                taken: 0,
                pending: None,
                data: None,
                sealed: false,
            });
            // a new batch: a new run of this node's extents
            self.queue.push_back(Queued::Data(0));
        } else if !matches!(self.queue.back(), Some(Queued::Data(_))) {
            self.queue.push_back(Queued::Data(0));
        }
        let Some(Queued::Data(len)) = self.queue.back_mut() else {
            unreachable!("pushed above")
        };
        *len += 1;
        let b = self.batches.back_mut().expect("pushed above");
        let bytes = ENTRY
            + match e {
                Extent::Data(_, l) => u64::from(l),
                Extent::Zero(_) => 0,
            };
        b.ext.push(e);
        b.bytes += bytes;
        self.ahead += bytes;
        if b.ext.len() >= BATCH_CHUNKS || b.bytes >= BATCH_BYTES {
            self.seal_last();
        }
    }

    /// Send the open batch to a reader.
    fn seal_last(&mut self) {
        let Some(b) = self.batches.back_mut().filter(|b| !b.sealed) else {
            return;
        };
        b.sealed = true;
        let (tx, rx) = crossbeam_channel::bounded(1);
        let job = (b.ext.clone(), tx);
        if self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok()) {
            b.pending = Some(rx);
        }
    }

    /// The next `len` extents of the front batch, with their data. (Every batch is sealed
    /// by the time the writer reaches it: each `fill` that queues extents seals its last.)
    fn take(&mut self, len: usize) -> Result<Step> {
        let b = self
            .batches
            .front_mut()
            .expect("data is queued with its batch");
        if b.data.is_none() {
            let fetched = b
                .pending
                .take()
                .and_then(|rx| rx.recv().ok())
                .unwrap_or_else(|| Err(Error::new(crate::ErrorKind::Io, "restore reader stopped")));
            b.data = Some(fetched?.into_iter());
        }
        let ext = b.ext[b.taken..b.taken + len].to_vec();
        let data: Vec<_> = b.data.as_mut().expect("set above").take(len).collect();
        b.taken += len;
        if b.taken == b.ext.len() {
            self.ahead -= b.bytes;
            self.batches.pop_front();
        }
        Ok(Step::Data(ext, data))
    }
}

impl<I> Drop for ReadAhead<'_, I> {
    fn drop(&mut self) {
        // readers finish the fetch in hand and skip the queued ones
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
    }
}

/// What a queued node costs to keep: its strings (a link target or owner name from a
/// hostile map may be megabytes) and a fixed part.
fn node_weight(n: &Node) -> u64 {
    let text = [&n.target, &n.user, &n.group, &n.path_hex]
        .iter()
        .map(|s| s.as_ref().map_or(0, String::len))
        .sum::<usize>()
        + n.path.len();
    ENTRY + text as u64
}
