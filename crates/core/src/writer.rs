//! The write path: chunks in, deduplicated, compressed, sealed, packed and indexed.
//!
//! Hashing, compression and sealing run in parallel on the rayon pool, one batch at a
//! time; the packer is sequential; a dedicated thread stores finished packs and, after
//! the packs they describe are durable, the index files. A crash at any point leaves
//! only whole files: packs without an index (removed later by prune) and, never, an index
//! naming a pack that is not there.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, bounded};

use crate::backend::{Backend, FileKind};
use crate::chunker::Piece;
use crate::contentmap::Extent;
use crate::crypto::Keys;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::{self, ChunkIndex, Location};
use crate::pack::{PackBuilder, PackEntry, SealedChunk, seal_chunk};
use crate::repository::Repository;

/// Packs per index file.
const PACKS_PER_INDEX: usize = 8;

/// Counters of what was written.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriteStats {
    /// New chunks.
    pub new_chunks: u64,
    /// Their plaintext bytes.
    pub new_bytes: u64,
    /// Sealed bytes written to packs.
    pub stored_bytes: u64,
    /// Packs written.
    pub packs: u64,
    /// Zero bytes seen (holes).
    pub zero_bytes: u64,
}

type PackJob = (Id, Vec<u8>, Vec<PackEntry>);

/// Stores chunks into a repository.
pub struct ChunkWriter<'a> {
    keys: &'a Keys,
    index: &'a ChunkIndex,
    session: HashSet<Id>,
    pack: PackBuilder,
    pack_target: usize,
    zstd_level: i32,
    tx: Option<Sender<PackJob>>,
    spare: crossbeam_channel::Receiver<Vec<u8>>,
    thread: Option<JoinHandle<Result<Vec<String>>>>,
    stats: WriteStats,
}

fn store_thread(
    backend: Arc<dyn Backend>,
    keys_master: Arc<Keys>,
    rx: crossbeam_channel::Receiver<PackJob>,
    spare: Sender<Vec<u8>>,
) -> Result<Vec<String>> {
    let mut pending: Vec<(Id, Location)> = Vec::new();
    let mut packs_pending = 0;
    let mut written = Vec::new();
    let flush = |pending: &mut Vec<(Id, Location)>, written: &mut Vec<String>| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let name = Id::random().to_hex();
        backend.create(
            FileKind::Index,
            &name,
            &index::encode(&keys_master, pending),
        )?;
        pending.clear();
        written.push(name);
        Ok(())
    };
    for (pack_id, bytes, entries) in rx {
        backend.create(FileKind::Pack, &pack_id.to_hex(), &bytes)?;
        let _ = spare.try_send(bytes); // hand the buffer back for the next pack
        pending.extend(entries.into_iter().map(|e| {
            (
                e.id,
                Location {
                    pack: pack_id,
                    offset: e.offset,
                    length: e.length,
                    raw_len: e.raw_len,
                    flags: e.flags,
                },
            )
        }));
        packs_pending += 1;
        if packs_pending >= PACKS_PER_INDEX {
            flush(&mut pending, &mut written)?;
            packs_pending = 0;
        }
    }
    flush(&mut pending, &mut written)?;
    Ok(written)
}

impl<'a> ChunkWriter<'a> {
    /// A writer into `repo`, deduplicating against `index`.
    pub fn new(repo: &'a Repository, index: &'a ChunkIndex) -> Self {
        let (tx, rx) = bounded::<PackJob>(0); // rendezvous: one pack built, one being stored
        let (spare_tx, spare_rx) = bounded::<Vec<u8>>(1);
        let backend = repo.backend().clone();
        // the store thread needs its own handle to the keys for sealing index files
        let keys = Arc::new(repo.keys().clone());
        let thread = std::thread::Builder::new()
            .name("rehydra-store".into())
            .spawn(move || store_thread(backend, keys, rx, spare_tx))
            .expect("spawning the store thread");
        let target = repo.config().pack_size as usize;
        Self {
            keys: repo.keys(),
            index,
            session: HashSet::new(),
            pack: PackBuilder::new(target),
            pack_target: target,
            zstd_level: repo.config().zstd_level,
            tx: Some(tx),
            spare: spare_rx,
            thread: Some(thread),
            stats: WriteStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    fn store_failed(&mut self) -> Error {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => Error::new(ErrorKind::Io, "the pack store thread panicked"),
            _ => Error::new(ErrorKind::Io, "the pack store thread stopped"),
        }
    }

    fn flush_pack(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let buf = self.spare.try_recv().unwrap_or_default();
        let full = std::mem::replace(
            &mut self.pack,
            PackBuilder::with_buffer(buf, self.pack_target),
        );
        let (bytes, entries) = full.finish(self.keys);
        self.stats.stored_bytes += bytes.len() as u64;
        self.stats.packs += 1;
        let tx = self.tx.as_ref().expect("writer not finished");
        if tx.send((Id::random(), bytes, entries)).is_err() {
            return Err(self.store_failed());
        }
        Ok(())
    }

    /// Store a batch of pieces; returns their extents in order.
    ///
    /// # Errors
    /// Index lookup or storage failure.
    pub fn write(&mut self, pieces: Vec<Piece>) -> Result<Vec<Extent>> {
        let keys = self.keys;
        let index = self.index;
        let session = &self.session;
        let level = self.zstd_level;
        let prepare = |p: Piece| -> Result<(Extent, Option<SealedChunk>)> {
            match p {
                Piece::Zero(n) => Ok((Extent::Zero(n), None)),
                Piece::Data(d) => {
                    let id = keys.chunk_id(&d);
                    let ext = Extent::Data(id, d.len() as u32);
                    if session.contains(&id) || index.contains(&id)? {
                        Ok((ext, None))
                    } else {
                        Ok((ext, Some(seal_chunk(keys, id, &d, level))))
                    }
                }
            }
        };
        let prepared: Vec<Result<(Extent, Option<SealedChunk>)>> = crate::par::map(pieces, prepare);
        let mut out = Vec::with_capacity(prepared.len());
        for r in prepared {
            let (ext, sealed) = r?;
            match ext {
                Extent::Zero(n) => self.stats.zero_bytes += n,
                Extent::Data(id, len) => {
                    if let Some(s) = sealed
                        && self.session.insert(id)
                    {
                        self.stats.new_chunks += 1;
                        self.stats.new_bytes += u64::from(len);
                        self.pack.add(s);
                        if self.pack.len() >= self.pack_target {
                            self.flush_pack()?;
                        }
                    }
                }
            }
            out.push(ext);
        }
        Ok(out)
    }

    /// Store the last pack, wait until every pack and index file is durable.
    /// Returns the index files written.
    ///
    /// # Errors
    /// Storage failure.
    pub fn finish(mut self) -> Result<(Vec<String>, WriteStats)> {
        self.flush_pack()?;
        self.tx = None;
        let names = match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r?,
            _ => return Err(Error::new(ErrorKind::Io, "the pack store thread panicked")),
        };
        Ok((names, self.stats))
    }
}

impl Drop for ChunkWriter<'_> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
