//! Chunk-index scale benchmark: build a local index of N entries the way a repository
//! load does (index files of 64 Ki entries, bulk spill, one merge), then time lookups of
//! stored and absent ids and report peak memory.
//!
//! `cargo run --release -p rehydra-core --example index_scale -- [N] [DIR]`
//! (default N = 100_000_000, DIR = a temporary folder; needs ~N*48 bytes of disk, twice
//! during the final merge).

use std::time::Instant;

use rehydra_core::Id;
use rehydra_core::{ChunkIndex, Location};

fn id(i: u64) -> Id {
    Id(*blake3::hash(&i.to_le_bytes()).as_bytes())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn dir_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(100_000_000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf())
        .join("index");
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    let mut idx = ChunkIndex::open(dir.clone()).expect("open");
    idx.begin_bulk();
    let per_file = 64 * 1024u64;
    let mut i = 0u64;
    let mut file_no = 0u64;
    let pack_every = 1000u64; // ~1000 chunks per 16 MiB pack
    while i < n {
        let end = (i + per_file).min(n);
        let entries: Vec<(Id, Location)> = (i..end)
            .map(|k| {
                (
                    id(k),
                    Location {
                        pack: id(u64::MAX - k / pack_every),
                        offset: (k % pack_every) as u32 * 16_000,
                        length: 16_000,
                        raw_len: 16_384,
                        flags: 1,
                    },
                )
            })
            .collect();
        idx.add_file(&format!("{file_no:016x}"), &entries)
            .expect("add");
        i = end;
        file_no += 1;
    }
    idx.compact().expect("compact");
    let build = t.elapsed().as_secs_f64();
    let rss_build = peak_rss_mib();
    drop(idx);

    let t = Instant::now();
    let idx = ChunkIndex::open(dir.clone()).expect("reopen");
    let reopen = t.elapsed().as_secs_f64();
    let lookups = 1_000_000u64;
    let t = Instant::now();
    let mut found = 0u64;
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..lookups {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if idx.contains(&id(x % n)).expect("lookup") {
            found += 1;
        }
    }
    let hit = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut false_hits = 0u64;
    for k in 0..lookups {
        if idx.contains(&id(n + 1 + k)).expect("lookup") {
            false_hits += 1;
        }
    }
    let miss = t.elapsed().as_secs_f64();
    assert_eq!(found, lookups, "every stored id is found");
    assert_eq!(false_hits, 0, "no absent id is found");
    let st = idx.stats();
    println!(
        "| entries | build s | build peak RSS MiB | reopen s | lookup (stored) µs | lookup (absent) µs | cache on disk MiB | fences in RAM MiB | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {build:.1} | {rss_build:.0} | {reopen:.2} | {:.2} | {:.2} | {:.0} | {:.1} | {:.0} |",
        hit / lookups as f64 * 1e6,
        miss / lookups as f64 * 1e6,
        dir_size(&dir) as f64 / 1048576.0,
        st.fence_bytes as f64 / 1048576.0,
        peak_rss_mib()
    );
}
