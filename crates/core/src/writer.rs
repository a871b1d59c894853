//! The write path: chunks in, deduplicated, compressed, sealed, packed and indexed.
//!
//! Hashing, compression and sealing run in parallel on the rayon pool, one batch at a
//! time; the packer is sequential; a dedicated thread stores finished packs and, after
//! the packs they describe are durable, the index files. A crash at any point leaves
//! only whole files: packs without an index (removed later by prune) and, never, an index
//! naming a pack that is not there.
//!
//! Memory does not grow with the size of a backup: a chunk written by this backup is
//! remembered in a small in-memory set only until the index file naming it is durable;
//! then it moves to a private [`ChunkIndex`] in a temporary folder (runs on disk, as the
//! repository's own index), which answers "already written?" for the rest of the run.

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
/// Entries of durable chunks kept in memory before they are spilled to disk (about 2 MiB).
const WRITTEN_SPILL: usize = 32 * 1024;

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
/// An index file made durable by the store thread, with its entries.
type Durable = (String, Vec<(Id, Location)>);

/// Stores chunks into a repository.
pub struct ChunkWriter<'a> {
    keys: &'a Keys,
    index: &'a ChunkIndex,
    /// Written by this run, index file not yet durable.
    session: HashSet<Id>,
    /// Written by this run, index file durable (created at the first one).
    written: Option<ChunkIndex>,
    durable: crossbeam_channel::Receiver<Durable>,
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
    durable: Sender<Durable>,
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
        // the writer may be gone (finishing): then nobody needs the entries
        let _ = durable.send((name.clone(), std::mem::take(pending)));
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
        Self::for_job(repo, index, None)
    }

    /// [`Self::new`] for a job that may be cancelled: its packs held to a bandwidth limit
    /// stop waiting when it is ([`crate::backend::heed_cancel`]).
    pub fn for_job(
        repo: &'a Repository,
        index: &'a ChunkIndex,
        cancel: Option<&crate::progress::Cancel>,
    ) -> Self {
        let cancel = cancel.map(crate::progress::Cancel::shared);
        let (tx, rx) = bounded::<PackJob>(0); // rendezvous: one pack built, one being stored
        let (spare_tx, spare_rx) = bounded::<Vec<u8>>(1);
        let (durable_tx, durable_rx) = crossbeam_channel::unbounded::<Durable>();
        let backend = repo.backend().clone();
        // the store thread needs its own handle to the keys for sealing index files
        let keys = Arc::new(repo.keys().clone());
        let thread = std::thread::Builder::new()
            .name("rehydra-store".into())
            .spawn(move || {
                let _heeding = cancel.map(crate::backend::heed_cancel);
                store_thread(backend, keys, rx, spare_tx, durable_tx)
            })
            .expect("spawning the store thread");
        let target = repo.config().pack_size as usize;
        Self {
            keys: repo.keys(),
            index,
            session: HashSet::new(),
            written: None,
            durable: durable_rx,
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
        // Two pack buffers circulate: this one and the one the store thread writes. Once a
        // pack is in flight, wait for its buffer rather than allocate a third: handing the
        // next pack over would wait for that store anyway (a rendezvous).
        let buf = if self.stats.packs > 0 {
            self.spare.recv().unwrap_or_default()
        } else {
            Vec::new()
        };
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

    /// Move the chunks of index files made durable since the last call out of the
    /// in-memory set.
    fn settle(&mut self) -> Result<()> {
        while let Ok((name, entries)) = self.durable.try_recv() {
            let written = match &mut self.written {
                Some(w) => w,
                None => self.written.insert(ChunkIndex::temporary(WRITTEN_SPILL)?),
            };
            written.add_file(&name, &entries)?;
            for (id, _) in &entries {
                self.session.remove(id);
            }
        }
        Ok(())
    }

    /// True when the chunk is in the repository or written by this run.
    ///
    /// # Errors
    /// Index lookup failure.
    pub fn contains(&self, id: &Id) -> Result<bool> {
        Ok(self.session.contains(id)
            || self.index.contains(id)?
            || match &self.written {
                Some(w) => w.contains(id)?,
                None => false,
            })
    }

    /// Store a batch of pieces; returns their extents in order.
    ///
    /// # Errors
    /// Index lookup or storage failure.
    pub fn write(&mut self, pieces: Vec<Piece>) -> Result<Vec<Extent>> {
        self.settle()?;
        let keys = self.keys;
        let level = self.zstd_level;
        let this = &*self;
        let prepare = |p: Piece| -> Result<(Extent, Option<SealedChunk>)> {
            match p {
                Piece::Zero(n) => Ok((Extent::Zero(n), None)),
                Piece::Data(d) => {
                    let id = keys.chunk_id(&d);
                    let ext = Extent::Data(id, d.len() as u32);
                    if this.contains(&id)? {
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::RngCore;

    use super::*;
    use crate::backend::LocalBackend;
    use crate::keys::KdfParams;
    use crate::repository::{InitOptions, OpenOptions};

    /// A new repository on `backend` with packs of `pack_size` bytes.
    fn repo_on(backend: Arc<dyn Backend>, pack_size: u32) -> Repository {
        let opts = InitOptions {
            kdf: KdfParams::insecure_for_tests(),
            pack_size,
            ..InitOptions::default()
        };
        Repository::init(backend, b"pw", opts, OpenOptions::default()).unwrap()
    }

    #[test]
    fn chunks_written_earlier_in_a_run_are_not_written_again_once_their_index_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(LocalBackend::new(dir.path().join("repo")));
        backend.create_layout().unwrap();
        let repo = repo_on(backend, 1 << 16);
        let (index, _) = repo.load_index().unwrap();
        let mut w = ChunkWriter::new(&repo, &index);
        // 64 KiB packs of 4 KiB chunks: 16 chunks a pack, 128 an index file; 40 files' worth
        let chunks: Vec<Vec<u8>> = (0..5120)
            .map(|_| {
                let mut c = vec![0u8; 4096];
                rand::thread_rng().fill_bytes(&mut c);
                c
            })
            .collect();
        for batch in chunks.chunks(64) {
            w.write(batch.iter().cloned().map(Piece::Data).collect())
                .unwrap();
        }
        // every index file so far is durable once the store thread has caught up
        std::thread::sleep(std::time::Duration::from_millis(200));
        w.settle().unwrap();
        assert!(
            w.session.len() <= 3 * PACKS_PER_INDEX * 16,
            "{} chunks still held in memory",
            w.session.len()
        );
        assert!(w.written.is_some());
        for batch in chunks.chunks(64) {
            w.write(batch.iter().cloned().map(Piece::Data).collect())
                .unwrap();
        }
        let (files, stats) = w.finish().unwrap();
        assert_eq!(stats.new_chunks, 5120, "each chunk written once");
        assert!(files.len() >= 40);
        // and the repository holds each once
        let (index, _) = repo.load_index().unwrap();
        assert_eq!(index.stats().on_disk + index.stats().in_memory, 5120);
    }

    #[test]
    fn packs_held_to_a_bandwidth_limit_stop_waiting_when_the_job_is_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalBackend::new(dir.path().join("repo"));
        local.create_layout().unwrap();
        // 100 KB/s and 1 MiB packs: each pack waits 9.5 s for its turn
        let limits = crate::backend::Bandwidth {
            upload: std::num::NonZeroU64::new(100_000),
            download: None,
        };
        let repo = repo_on(
            Arc::new(crate::backend::Limited::new(local, limits)),
            1 << 20,
        );
        let (index, _) = repo.load_index().unwrap();
        let cancel = crate::progress::Cancel::default();
        let flag = cancel.shared();
        let mut w = ChunkWriter::for_job(&repo, &index, Some(&cancel));
        let start = std::time::Instant::now();
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        // two packs' worth: the second is handed over while the first waits
        let pieces = (0..512)
            .map(|_| {
                let mut c = vec![0u8; 4096];
                rand::thread_rng().fill_bytes(&mut c);
                Piece::Data(c)
            })
            .collect();
        let e = w
            .write(pieces)
            .and_then(|_| w.finish().map(|_| ()))
            .unwrap_err();
        canceller.join().unwrap();
        assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
        assert!(
            start.elapsed() < std::time::Duration::from_millis(3000),
            "{:?}: the cancel waited for the limit",
            start.elapsed()
        );
        let packs = repo.backend().list(FileKind::Pack).unwrap();
        assert!(packs.is_empty(), "no pack stored: {}", packs.len());
        assert!(
            repo.load_index().unwrap().0.stats().on_disk == 0,
            "nothing indexed"
        );
    }
}
