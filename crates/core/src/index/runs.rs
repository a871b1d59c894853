//! A map from chunk id to a fixed-size value that keeps almost nothing in memory: sorted
//! runs of `32 + V`-byte records in a local folder, each with a small in-memory fence
//! table over the top bits of the id (about 64 records per bucket; chunk ids are uniform
//! hashes), so a lookup is one `pread` of a few KiB. New entries collect in a bounded
//! in-memory map and are written out as a run when it fills; runs are merged like a
//! binary counter, so total merge work is O(n log n). Memory: fences cost about 0.13
//! bytes per entry, plus the bounded map.
//!
//! The chunk index ([`super::ChunkIndex`]) is one; a backup's own record of what it wrote
//! and a copy's pairing of source and destination chunks are others.

use std::collections::{BinaryHeap, HashMap};
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::id::Id;

struct Run {
    path: PathBuf,
    file: File,
    n: u64,
    bits: u32,
    fence: Vec<u64>,
}

fn fence_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".fence");
    PathBuf::from(p)
}

impl Run {
    fn open(path: PathBuf, rec: usize) -> std::io::Result<Run> {
        let file = File::open(&path)?;
        let n = file.metadata()?.len() / rec as u64;
        let bits = fence_bits(n);
        // the fence is saved beside the run, so opening a large cache reads a few MiB only
        if let Ok(bytes) = fs::read(fence_path(&path))
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
        let mut buf = vec![0u8; rec];
        let mut next_bucket = 0usize;
        for i in 0..n {
            r.read_exact(&mut buf)?;
            let b = bucket(&buf[..32], bits);
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
        fs::write(fence_path(&path), bytes)?;
        Ok(Run {
            path,
            file,
            n,
            bits,
            fence,
        })
    }

    fn get<const V: usize>(&self, id: &Id) -> std::io::Result<Option<[u8; V]>> {
        let rec = 32 + V;
        let b = bucket(id.as_bytes(), self.bits);
        let (lo, hi) = (self.fence[b], self.fence[b + 1]);
        if lo == hi {
            return Ok(None);
        }
        let mut buf = vec![0u8; ((hi - lo) as usize) * rec];
        rehydra_disk::read_exact_at(&self.file, &mut buf, lo * rec as u64)?;
        let recs: Vec<&[u8]> = buf.chunks_exact(rec).collect();
        Ok(recs
            .binary_search_by(|r| r[..32].cmp(id.as_bytes()))
            .ok()
            .map(|i| recs[i][32..].try_into().expect("V bytes")))
    }

    fn name(&self) -> String {
        self.path
            .file_name()
            .expect("a run has a file name")
            .to_string_lossy()
            .into_owned()
    }

    fn remove(self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_file(fence_path(&self.path));
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

/// Chunk id → `V` bytes, in runs under one folder. Where the same id was inserted more
/// than once, the newest value wins.
pub(crate) struct RunMap<const V: usize> {
    dir: PathBuf,
    runs: Vec<Run>,
    mem: HashMap<Id, [u8; V]>,
    spill_at: usize,
    /// While loading many entries: spill without merging, merge once in `compact`.
    bulk: bool,
    /// The folder, when this map made it and removes it when dropped.
    _owned: Option<tempfile::TempDir>,
}

impl<const V: usize> RunMap<V> {
    const REC: usize = 32 + V;

    /// An empty map writing its runs under `dir` (which must exist), holding up to
    /// `spill_at` entries in memory.
    pub(crate) fn new(dir: PathBuf, spill_at: usize) -> Self {
        Self {
            dir,
            runs: Vec::new(),
            mem: HashMap::new(),
            spill_at,
            bulk: false,
            _owned: None,
        }
    }

    /// An empty map in a temporary folder of its own, removed with it.
    pub(crate) fn temporary(spill_at: usize) -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut map = Self::new(dir.path().to_path_buf(), spill_at);
        map._owned = Some(dir);
        Ok(map)
    }

    /// The folder the runs are written in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Take up runs written earlier under the same folder, oldest first.
    pub(crate) fn open_runs(&mut self, names: &[String]) -> std::io::Result<()> {
        for n in names {
            self.runs.push(Run::open(self.dir.join(n), Self::REC)?);
        }
        Ok(())
    }

    /// The run files, oldest first (each has a `.fence` beside it).
    pub(crate) fn run_names(&self) -> Vec<String> {
        self.runs.iter().map(Run::name).collect()
    }

    /// Forget every entry (the files are left to the owner).
    pub(crate) fn clear(&mut self) {
        self.runs.clear();
        self.mem.clear();
    }

    /// Spill without merging until [`RunMap::compact`].
    pub(crate) fn begin_bulk(&mut self) {
        self.bulk = true;
    }

    /// Add or replace an entry; true when the in-memory part is full and should be
    /// spilled.
    pub(crate) fn insert(&mut self, id: Id, value: [u8; V]) -> bool {
        self.mem.insert(id, value);
        self.mem.len() >= self.spill_at
    }

    /// The value of `id`, newest first.
    pub(crate) fn get(&self, id: &Id) -> std::io::Result<Option<[u8; V]>> {
        if let Some(v) = self.mem.get(id) {
            return Ok(Some(*v));
        }
        for r in self.runs.iter().rev() {
            if let Some(v) = r.get::<V>(id)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// (entries on disk, counting repeats across runs; entries in memory; runs; fence bytes)
    pub(crate) fn counts(&self) -> (u64, u64, usize, u64) {
        (
            self.runs.iter().map(|r| r.n).sum(),
            self.mem.len() as u64,
            self.runs.len(),
            self.runs.iter().map(|r| r.fence.len() as u64 * 8).sum(),
        )
    }

    /// Write the in-memory entries out as a run, merging runs as needed. False when there
    /// was nothing to write.
    pub(crate) fn spill(&mut self) -> std::io::Result<bool> {
        if self.mem.is_empty() {
            return Ok(false);
        }
        let mut v: Vec<(Id, [u8; V])> = self.mem.drain().collect();
        v.sort_unstable_by_key(|a| a.0);
        let path = self.dir.join(format!("run-{}", Id::random().short()));
        {
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            for (id, val) in &v {
                w.write_all(id.as_bytes())?;
                w.write_all(val)?;
            }
            w.flush()?;
        }
        drop(v);
        self.runs.push(Run::open(path, Self::REC)?);
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
        Ok(true)
    }

    /// Spill, then merge every run into one (so a lookup costs one read).
    pub(crate) fn compact(&mut self) -> std::io::Result<()> {
        self.spill()?;
        self.bulk = false;
        if self.runs.len() > 1 {
            let runs = std::mem::take(&mut self.runs);
            let merged = self.merge(runs)?;
            self.runs.push(merged);
        }
        Ok(())
    }

    /// One run from `runs` (oldest first); for an id in several, the newest record.
    fn merge(&self, runs: Vec<Run>) -> std::io::Result<Run> {
        let rec = Self::REC;
        let path = self.dir.join(format!("run-{}", Id::random().short()));
        {
            // bounded read buffers: about 32 MiB in all, however many runs
            let cap = (32usize << 20)
                .checked_div(runs.len())
                .unwrap_or(0)
                .clamp(16 << 10, 256 << 10);
            let mut readers = Vec::with_capacity(runs.len());
            for r in &runs {
                readers.push(BufReader::with_capacity(cap, File::open(&r.path)?));
            }
            let mut left: Vec<u64> = runs.iter().map(|r| r.n).collect();
            // each run's current record; the heap orders (id, age) with the newest run
            // youngest, so the first record popped for an id is the one kept
            let mut cur: Vec<Vec<u8>> = vec![vec![0u8; rec]; runs.len()];
            let mut next = |i: usize, cur: &mut [Vec<u8>]| -> std::io::Result<Option<[u8; 32]>> {
                if left[i] == 0 {
                    return Ok(None);
                }
                left[i] -= 1;
                readers[i].read_exact(&mut cur[i])?;
                Ok(Some(cur[i][..32].try_into().expect("32")))
            };
            let mut heap = BinaryHeap::new();
            let newest = runs.len();
            for i in 0..runs.len() {
                if let Some(id) = next(i, &mut cur)? {
                    heap.push(std::cmp::Reverse((id, newest - i)));
                }
            }
            let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            let mut last = None;
            while let Some(std::cmp::Reverse((id, age))) = heap.pop() {
                let i = newest - age;
                if last != Some(id) {
                    w.write_all(&cur[i])?;
                    last = Some(id);
                }
                if let Some(id) = next(i, &mut cur)? {
                    heap.push(std::cmp::Reverse((id, age)));
                }
            }
            w.flush()?;
        }
        for r in runs {
            r.remove();
        }
        Run::open(path, rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_value_wins_across_spills_merges_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = RunMap::<4>::new(dir.path().to_path_buf(), 1000);
        let ids: Vec<Id> = (0..5000).map(|_| Id::random()).collect();
        for (round, chunk) in [0u32, 1, 2].iter().zip([&ids[..], &ids[..2500], &ids[..10]]) {
            for id in chunk {
                if m.insert(*id, round.to_le_bytes()) {
                    m.spill().unwrap();
                }
            }
        }
        let expect = |i: usize| -> u32 {
            if i < 10 {
                2
            } else if i < 2500 {
                1
            } else {
                0
            }
        };
        let check = |m: &RunMap<4>| {
            for (i, id) in ids.iter().enumerate() {
                assert_eq!(m.get(id).unwrap(), Some(expect(i).to_le_bytes()), "{i}");
            }
            assert_eq!(m.get(&Id::random()).unwrap(), None);
        };
        check(&m);
        assert!(m.counts().2 >= 1 && m.counts().1 < 1000);
        m.compact().unwrap();
        assert_eq!(m.counts().2, 1);
        assert_eq!(m.counts().0, 5000, "one record per id after the merge");
        check(&m);
        // a merge leaves only the runs in use (and their fences)
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
