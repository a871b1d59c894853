//! The local chunk index: answers "is this chunk stored, and where" without holding the
//! whole repository's index in memory.
//!
//! Entries live in sorted runs of fixed 48-byte records on local disk (a derived cache
//! under the cache folder; deleting it costs a rebuild, never data). Each run keeps a
//! small in-memory fence table over the top bits of the id (about 64 records per bucket;
//! chunk ids are uniform hashes), so a lookup is one `pread` of a few KiB. New entries
//! collect in a bounded in-memory map and are merged into runs as it fills (runs are
//! merged like a binary counter, so total merge work is O(n log n)). Memory: fences cost
//! about 0.13 bytes per entry plus the bounded map (see `docs/repository-format.md`).

use std::collections::{BinaryHeap, HashMap};
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Location;
use crate::error::{Error, Result};
use crate::id::Id;

const REC: usize = 48;
/// Entries held in memory before they are written out as a run.
const SPILL: usize = 256 * 1024;
const FLAG_BIT: u32 = 1 << 31;

#[derive(Debug, Clone, Copy)]
struct Loc {
    pack: u32,
    offset: u32,
    length: u32,
    raw_flags: u32,
}

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

struct Run {
    path: PathBuf,
    file: File,
    n: u64,
    bits: u32,
    fence: Vec<u64>,
}

impl Run {
    fn fence_path(path: &std::path::Path) -> PathBuf {
        let mut p = path.as_os_str().to_owned();
        p.push(".fence");
        PathBuf::from(p)
    }

    fn open(path: PathBuf) -> std::io::Result<Run> {
        let file = File::open(&path)?;
        let n = file.metadata()?.len() / REC as u64;
        let bits = fence_bits(n);
        // the fence is saved beside the run, so opening a large cache reads a few MiB only
        if let Ok(bytes) = fs::read(Self::fence_path(&path))
            && bytes.len() == ((1usize << bits) + 1) * 8
        {
            let fence: Vec<u64> = bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
                .collect();
            if fence.last() == Some(&n) {
                return Ok(Run {
                    path,
                    file,
                    n,
                    bits,
                    fence,
                });
            }
        }
        // one pass to build the fence
        let mut fence = vec![0u64; (1usize << bits) + 1];
        let mut r = BufReader::with_capacity(1 << 20, File::open(&path)?);
        let mut rec = [0u8; REC];
        let mut next_bucket = 0usize;
        for i in 0..n {
            r.read_exact(&mut rec)?;
            let b = bucket(&rec[..32], bits);
            while next_bucket <= b {
                fence[next_bucket] = i;
                next_bucket += 1;
            }
        }
        while next_bucket < fence.len() {
            fence[next_bucket] = n;
            next_bucket += 1;
        }
        let bytes: Vec<u8> = fence.iter().flat_map(|v| v.to_le_bytes()).collect();
        fs::write(Self::fence_path(&path), bytes)?;
        Ok(Run {
            path,
            file,
            n,
            bits,
            fence,
        })
    }

    fn get(&self, id: &Id) -> std::io::Result<Option<Loc>> {
        let b = bucket(id.as_bytes(), self.bits);
        let (lo, hi) = (self.fence[b], self.fence[b + 1]);
        if lo == hi {
            return Ok(None);
        }
        let mut buf = vec![0u8; ((hi - lo) as usize) * REC];
        rehydra_disk::read_exact_at(&self.file, &mut buf, lo * REC as u64)?;
        let recs: Vec<&[u8]> = buf.chunks_exact(REC).collect();
        match recs.binary_search_by(|r| r[..32].cmp(id.as_bytes())) {
            Ok(i) => Ok(Some(decode_loc(recs[i]))),
            Err(_) => Ok(None),
        }
    }
}

fn fence_bits(n: u64) -> u32 {
    let buckets = (n / 64).max(1);
    (64 - buckets.leading_zeros()).clamp(1, 28)
}

fn bucket(id: &[u8], bits: u32) -> usize {
    let top = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    (top >> (32 - bits)) as usize
}

fn decode_loc(r: &[u8]) -> Loc {
    let v = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
    Loc {
        pack: v(32),
        offset: v(36),
        length: v(40),
        raw_flags: v(44),
    }
}

fn encode_rec(id: &Id, l: &Loc, out: &mut [u8]) {
    out[..32].copy_from_slice(id.as_bytes());
    for (i, v) in [l.pack, l.offset, l.length, l.raw_flags]
        .into_iter()
        .enumerate()
    {
        out[32 + i * 4..36 + i * 4].copy_from_slice(&v.to_le_bytes());
    }
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
    ephemeral: bool,
    packs: Vec<Id>,
    pack_nos: HashMap<Id, u32>,
    runs: Vec<Run>,
    mem: HashMap<Id, Loc>,
    /// Index files merged into runs.
    files_in_runs: Vec<String>,
    /// Index files whose entries are in `mem`.
    files_in_mem: Vec<String>,
    /// While loading many files: spill without merging, merge once in `compact`.
    bulk: bool,
    /// Held for the life of the index: one process per cache folder.
    _lock: Option<File>,
}

fn cache_err(dir: &std::path::Path, e: std::io::Error) -> Error {
    Error::io(format!("chunk index cache {}", dir.display()), e)
}

impl ChunkIndex {
    /// Open (or start) the cache in `dir`. With `ephemeral`, the folder is removed on drop.
    ///
    /// # Errors
    /// The folder cannot be created.
    pub fn open(dir: PathBuf, ephemeral: bool) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|e| cache_err(&dir, e))?;
        let lock = if ephemeral {
            None
        } else {
            let f = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("lock"))
                .map_err(|e| cache_err(&dir, e))?;
            match f.try_lock() {
                Ok(()) => Some(f),
                // another process of ours uses this cache: work from a private one instead
                Err(fs::TryLockError::WouldBlock) => {
                    let private = std::env::temp_dir()
                        .join(format!("rehydra-index-{}", Id::random().short()));
                    return Self::open(private, true);
                }
                Err(fs::TryLockError::Error(e)) => return Err(cache_err(&dir, e)),
            }
        };
        let mut idx = Self {
            dir,
            ephemeral,
            packs: Vec::new(),
            pack_nos: HashMap::new(),
            runs: Vec::new(),
            mem: HashMap::new(),
            files_in_runs: Vec::new(),
            files_in_mem: Vec::new(),
            bulk: false,
            _lock: lock,
        };
        if let Err(e) = idx.load_meta() {
            // a damaged cache is rebuilt, never trusted
            let _ = e;
            idx.reset()?;
        }
        Ok(idx)
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
        for r in &meta.runs {
            self.runs.push(Run::open(self.dir.join(r))?);
        }
        self.files_in_runs = meta.files;
        Ok(())
    }

    /// Forget everything (for a rebuild).
    ///
    /// # Errors
    /// The folder cannot be cleaned.
    pub fn reset(&mut self) -> Result<()> {
        self.runs.clear();
        self.mem.clear();
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
        self.bulk = true;
    }

    /// Index files already included.
    pub fn known_files(&self) -> impl Iterator<Item = &String> {
        self.files_in_runs.iter().chain(self.files_in_mem.iter())
    }

    /// Number of entries (counting duplicates across runs).
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            on_disk: self.runs.iter().map(|r| r.n).sum(),
            in_memory: self.mem.len() as u64,
            runs: self.runs.len(),
            fence_bytes: self.runs.iter().map(|r| r.fence.len() as u64 * 8).sum(),
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
        for (id, l) in entries {
            let pack = self.pack_no(l.pack);
            let raw_flags = l.raw_len | if l.flags != 0 { FLAG_BIT } else { 0 };
            self.mem.insert(
                *id,
                Loc {
                    pack,
                    offset: l.offset,
                    length: l.length,
                    raw_flags,
                },
            );
        }
        self.files_in_mem.push(name.to_string());
        if self.mem.len() >= SPILL {
            self.spill()?;
        }
        Ok(())
    }

    /// Look a chunk up.
    ///
    /// # Errors
    /// Reading the cache failed.
    pub fn get(&self, id: &Id) -> Result<Option<Location>> {
        let loc = match self.mem.get(id) {
            Some(l) => Some(*l),
            None => {
                let mut found = None;
                for r in self.runs.iter().rev() {
                    if let Some(l) = r.get(id).map_err(|e| cache_err(&r.path, e))? {
                        found = Some(l);
                        break;
                    }
                }
                found
            }
        };
        Ok(loc.map(|l| Location {
            pack: self.packs[l.pack as usize],
            offset: l.offset,
            length: l.length,
            raw_len: l.raw_flags & !FLAG_BIT,
            flags: u8::from(l.raw_flags & FLAG_BIT != 0),
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
        if self.mem.is_empty() {
            return self.save_meta();
        }
        let mut v: Vec<(Id, Loc)> = self.mem.drain().collect();
        v.sort_unstable_by_key(|a| a.0);
        let name = format!("run-{}", Id::random().short());
        let path = self.dir.join(&name);
        {
            let f = File::create(&path).map_err(|e| cache_err(&self.dir, e))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let mut rec = [0u8; REC];
            for (id, l) in &v {
                encode_rec(id, l, &mut rec);
                w.write_all(&rec).map_err(|e| cache_err(&self.dir, e))?;
            }
            w.flush().map_err(|e| cache_err(&self.dir, e))?;
        }
        drop(v);
        self.runs
            .push(Run::open(path).map_err(|e| cache_err(&self.dir, e))?);
        self.files_in_runs.append(&mut self.files_in_mem);
        // binary-counter merging: merge while the newest run is at least half the previous
        while !self.bulk
            && self.runs.len() >= 2
            && self.runs[self.runs.len() - 1].n * 2 >= self.runs[self.runs.len() - 2].n
        {
            let b = self.runs.pop().expect("two runs");
            let a = self.runs.pop().expect("two runs");
            let merged = self.merge(vec![a, b])?;
            self.runs.push(merged);
        }
        self.save_meta()
    }

    /// Merge every run into one (done after loading, so lookups cost one read).
    ///
    /// # Errors
    /// Writing the cache failed.
    pub fn compact(&mut self) -> Result<()> {
        self.spill()?;
        self.bulk = false;
        if self.runs.len() > 1 {
            let runs = std::mem::take(&mut self.runs);
            let merged = self.merge(runs)?;
            self.runs.push(merged);
            self.save_meta()?;
        }
        Ok(())
    }

    fn merge(&self, runs: Vec<Run>) -> Result<Run> {
        let name = format!("run-{}", Id::random().short());
        let path = self.dir.join(&name);
        let io = |e| cache_err(&self.dir, e);
        {
            // bounded read buffers: about 32 MiB in all, however many runs
            let cap = (32usize << 20)
                .checked_div(runs.len())
                .unwrap_or(0)
                .clamp(16 << 10, 256 << 10);
            let mut readers: Vec<BufReader<File>> = Vec::new();
            for r in &runs {
                readers.push(BufReader::with_capacity(
                    cap,
                    File::open(&r.path).map_err(io)?,
                ));
            }
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
            let mut heap = BinaryHeap::new();
            let mut left: Vec<u64> = runs.iter().map(|r| r.n).collect();
            let next = |i: usize,
                        readers: &mut Vec<BufReader<File>>,
                        left: &mut Vec<u64>|
             -> std::io::Result<Option<[u8; REC]>> {
                if left[i] == 0 {
                    return Ok(None);
                }
                left[i] -= 1;
                let mut rec = [0u8; REC];
                readers[i].read_exact(&mut rec)?;
                Ok(Some(rec))
            };
            for i in 0..runs.len() {
                if let Some(rec) = next(i, &mut readers, &mut left).map_err(io)? {
                    heap.push(std::cmp::Reverse((rec, i)));
                }
            }
            let mut last: Option<[u8; 32]> = None;
            while let Some(std::cmp::Reverse((rec, i))) = heap.pop() {
                let id: [u8; 32] = rec[..32].try_into().expect("32");
                if last != Some(id) {
                    w.write_all(&rec).map_err(io)?;
                    last = Some(id);
                }
                if let Some(r) = next(i, &mut readers, &mut left).map_err(io)? {
                    heap.push(std::cmp::Reverse((r, i)));
                }
            }
            w.flush().map_err(io)?;
        }
        for r in runs {
            let _ = fs::remove_file(&r.path);
            let _ = fs::remove_file(Run::fence_path(&r.path));
        }
        Run::open(path).map_err(io)
    }

    fn save_meta(&self) -> Result<()> {
        if self.ephemeral {
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
            runs: self
                .runs
                .iter()
                .map(|r| {
                    r.path
                        .file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
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

impl Drop for ChunkIndex {
    fn drop(&mut self) {
        if self.ephemeral {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_across_spills_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut idx = ChunkIndex::open(path.clone(), false).unwrap();
        let pack = Id::random();
        let mut all = Vec::new();
        for f in 0..5 {
            let entries: Vec<(Id, Location)> = (0..(SPILL / 2 + 7))
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
        let mut idx = ChunkIndex::open(path, false).unwrap();
        assert_eq!(idx.known_files().count(), 5);
        // a second user of the same folder gets a private cache, not a shared one
        let other = ChunkIndex::open(dir.path().join("c"), false).unwrap();
        assert!(other.ephemeral && other.known_files().count() == 0);
        drop(other);
        idx.compact().unwrap();
        assert_eq!(idx.stats().runs, 1);
        for (id, l) in all.iter().step_by(1009) {
            assert_eq!(idx.get(id).unwrap(), Some(*l));
        }
    }
}
