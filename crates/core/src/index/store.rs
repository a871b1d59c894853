//! The local chunk index: answers "is this chunk stored, and where" without holding the
//! whole repository's index in memory.
//!
//! Entries live in a [`RunMap`] of 48-byte records (id, pack number, offset, length, raw
//! length and flag) in a derived cache under the cache folder; deleting it costs a
//! rebuild, never data. Memory: fences cost about 0.13 bytes per entry plus the bounded
//! in-memory map (see `docs/repository-format.md`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Location;
use super::runs::RunMap;
use crate::error::{Error, Result};
use crate::id::Id;

const FLAG_BIT: u32 = 1 << 31;

/// Counts for `stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexStats {
    /// Entries in on-disk runs.
    pub on_disk: u64,
    /// Entries in memory.
    pub in_memory: u64,
    /// Number of runs.
    pub runs: usize,
    /// Bytes of memory used by fences.
    pub fence_bytes: u64,
}

/// A location as stored: the pack as a number in the pack table.
fn encode_loc(pack: u32, l: &Location) -> [u8; 16] {
    let raw_flags = l.raw_len | if l.flags != 0 { FLAG_BIT } else { 0 };
    let mut out = [0u8; 16];
    for (i, v) in [pack, l.offset, l.length, raw_flags].into_iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

/// What the cache folder records about itself.
#[derive(Serialize, Deserialize, Default)]
struct Meta {
    version: u32,
    /// Index files whose entries are all in `runs`.
    files: Vec<String>,
    runs: Vec<String>,
    packs: String,
}

/// The chunk index of one repository.
pub struct ChunkIndex {
    dir: PathBuf,
    packs: Vec<Id>,
    pack_nos: HashMap<Id, u32>,
    entries: RunMap<16>,
    /// Index files merged into runs.
    files_in_runs: Vec<String>,
    /// Index files whose entries are still in memory.
    files_in_mem: Vec<String>,
    /// Held for the life of the index: one process per cache folder; `None` for a
    /// temporary index, whose folder its [`RunMap`] owns.
    _lock: Option<File>,
}

fn cache_err(dir: &std::path::Path, e: std::io::Error) -> Error {
    Error::io(format!("chunk index cache {}", dir.display()), e)
}

impl ChunkIndex {
    /// Entries held in memory before they are written out as a run.
    pub(crate) const SPILL: usize = 256 * 1024;

    /// Open (or start) the cache in `dir`, kept for the next run. When another process of
    /// ours holds it, a [`ChunkIndex::temporary`] one is used instead.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|e| cache_err(&dir, e))?;
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(|e| cache_err(&dir, e))?;
        match f.try_lock() {
            Ok(()) => {}
            // another process of ours uses this cache: work from a private one instead
            Err(fs::TryLockError::WouldBlock) => return Self::temporary(Self::SPILL),
            Err(fs::TryLockError::Error(e)) => return Err(cache_err(&dir, e)),
        }
        let mut idx = Self::with(RunMap::new(dir.clone(), Self::SPILL), dir, Some(f));
        if let Err(e) = idx.load_meta() {
            // a damaged cache is rebuilt, never trusted
            let _ = e;
            idx.reset()?;
        }
        Ok(idx)
    }

    /// A private index, never saved, in a temporary folder of its own that goes with it,
    /// holding at most `spill_at` entries in memory.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn temporary(spill_at: usize) -> Result<Self> {
        let entries = RunMap::temporary(spill_at)
            .map_err(|e| Error::io("temporary folder for a chunk index", e))?;
        let dir = entries.dir().to_path_buf();
        Ok(Self::with(entries, dir, None))
    }

    fn with(entries: RunMap<16>, dir: PathBuf, lock: Option<File>) -> Self {
        Self {
            entries,
            dir,
            packs: Vec::new(),
            pack_nos: HashMap::new(),
            files_in_runs: Vec::new(),
            files_in_mem: Vec::new(),
            _lock: lock,
        }
    }

    /// True for a private index, removed with it ([`ChunkIndex::temporary`]).
    fn ephemeral(&self) -> bool {
        self._lock.is_none()
    }

    fn load_meta(&mut self) -> std::io::Result<()> {
        let Ok(text) = fs::read(self.dir.join("meta.json")) else {
            return Ok(());
        };
        let meta: Meta = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
        if meta.version != 1 {
            return Err(std::io::Error::other("cache version"));
        }
        let packs = fs::read(self.dir.join(&meta.packs))?;
        if packs.len() % 32 != 0 {
            return Err(std::io::Error::other("pack table"));
        }
        for c in packs.chunks_exact(32) {
            let id = Id(c.try_into().expect("32"));
            self.pack_nos.insert(id, self.packs.len() as u32);
            self.packs.push(id);
        }
        self.entries.open_runs(&meta.runs)?;
        self.files_in_runs = meta.files;
        Ok(())
    }

    /// Forget everything (for a rebuild).
    ///
    /// # Errors
    /// The folder cannot be cleaned.
    pub fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.packs.clear();
        self.pack_nos.clear();
        self.files_in_runs.clear();
        self.files_in_mem.clear();
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name() != "lock" {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Start loading many index files: runs are merged once, by [`ChunkIndex::compact`].
    pub fn begin_bulk(&mut self) {
        self.entries.begin_bulk();
    }

    /// Index files already included.
    pub fn known_files(&self) -> impl Iterator<Item = &String> {
        self.files_in_runs.iter().chain(self.files_in_mem.iter())
    }

    /// Number of entries (counting duplicates across runs).
    pub fn stats(&self) -> IndexStats {
        let (on_disk, in_memory, runs, fence_bytes) = self.entries.counts();
        IndexStats {
            on_disk,
            in_memory,
            runs,
            fence_bytes,
        }
    }

    fn pack_no(&mut self, pack: Id) -> u32 {
        if let Some(n) = self.pack_nos.get(&pack) {
            return *n;
        }
        let n = self.packs.len() as u32;
        self.packs.push(pack);
        self.pack_nos.insert(pack, n);
        n
    }

    /// Add the entries of index file `name`.
    ///
    /// # Errors
    /// Writing a run to the cache failed.
    pub fn add_file(&mut self, name: &str, entries: &[(Id, Location)]) -> Result<()> {
        let mut full = false;
        for (id, l) in entries {
            let pack = self.pack_no(l.pack);
            full |= self.entries.insert(*id, encode_loc(pack, l));
        }
        self.files_in_mem.push(name.to_string());
        if full {
            self.spill()?;
        }
        Ok(())
    }

    /// Look a chunk up.
    ///
    /// # Errors
    /// Reading the cache failed.
    pub fn get(&self, id: &Id) -> Result<Option<Location>> {
        let Some(r) = self.entries.get(id).map_err(|e| cache_err(&self.dir, e))? else {
            return Ok(None);
        };
        let v = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
        let raw_flags = v(12);
        Ok(Some(Location {
            pack: self.packs[v(0) as usize],
            offset: v(4),
            length: v(8),
            raw_len: raw_flags & !FLAG_BIT,
            flags: u8::from(raw_flags & FLAG_BIT != 0),
        }))
    }

    /// True when the chunk is stored.
    ///
    /// # Errors
    /// Reading the cache failed.
    pub fn contains(&self, id: &Id) -> Result<bool> {
        Ok(self.get(id)?.is_some())
    }

    /// Write the in-memory entries out as a run, merging runs as needed, and persist.
    ///
    /// # Errors
    /// Writing the cache failed.
    pub fn spill(&mut self) -> Result<()> {
        self.entries
            .spill()
            .map_err(|e| cache_err(&self.dir, e))?;
        self.files_in_runs.append(&mut self.files_in_mem);
        self.save_meta()
    }

    /// Merge every run into one (done after loading, so lookups cost one read).
    ///
    /// # Errors
    /// Writing the cache failed.
    pub fn compact(&mut self) -> Result<()> {
        self.entries
            .compact()
            .map_err(|e| cache_err(&self.dir, e))?;
        self.files_in_runs.append(&mut self.files_in_mem);
        self.save_meta()
    }

    fn save_meta(&self) -> Result<()> {
        if self.ephemeral() {
            return Ok(());
        }
        let io = |e| cache_err(&self.dir, e);
        let packs_name = format!("packs-{}", Id::random().short());
        let mut pb = Vec::with_capacity(self.packs.len() * 32);
        for p in &self.packs {
            pb.extend_from_slice(p.as_bytes());
        }
        fs::write(self.dir.join(&packs_name), pb).map_err(io)?;
        let meta = Meta {
            version: 1,
            files: self.files_in_runs.clone(),
            runs: self.entries.run_names(),
            packs: packs_name.clone(),
        };
        let tmp = self.dir.join("meta.json.tmp");
        fs::write(&tmp, serde_json::to_vec(&meta).expect("meta serializes")).map_err(io)?;
        fs::rename(&tmp, self.dir.join("meta.json")).map_err(io)?;
        // drop files no longer referenced
        if let Ok(rd) = fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                let keep = n == "meta.json"
                    || n == packs_name
                    || meta
                        .runs
                        .iter()
                        .any(|r| n == *r || n == format!("{r}.fence"));
                if !keep && (n.starts_with("run-") || n.starts_with("packs-")) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_across_spills_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut idx = ChunkIndex::open(path.clone()).unwrap();
        let pack = Id::random();
        let mut all = Vec::new();
        for f in 0..5 {
            let entries: Vec<(Id, Location)> = (0..(ChunkIndex::SPILL / 2 + 7))
                .map(|i| {
                    (
                        Id::random(),
                        Location {
                            pack,
                            offset: i as u32,
                            length: 10,
                            raw_len: 7,
                            flags: (i % 2) as u8,
                        },
                    )
                })
                .collect();
            idx.add_file(&format!("f{f}"), &entries).unwrap();
            all.extend(entries);
        }
        idx.spill().unwrap();
        for (id, l) in all.iter().step_by(997) {
            assert_eq!(idx.get(id).unwrap(), Some(*l));
        }
        assert_eq!(idx.get(&Id::random()).unwrap(), None);
        drop(idx);
        let mut idx = ChunkIndex::open(path).unwrap();
        assert_eq!(idx.known_files().count(), 5);
        // a second user of the same folder gets a private cache, not a shared one
        let other = ChunkIndex::open(dir.path().join("c")).unwrap();
        assert!(other.ephemeral() && other.known_files().count() == 0);
        drop(other);
        idx.compact().unwrap();
        assert_eq!(idx.stats().runs, 1);
        for (id, l) in all.iter().step_by(1009) {
            assert_eq!(idx.get(id).unwrap(), Some(*l));
        }
    }
}
