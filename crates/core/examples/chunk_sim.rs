//! Chunking simulation on the shared VHDX dataset: for each scheme, how many new bytes
//! (raw and zstd-3 compressed) the in-place change (vm1 → vm1-changed) and the second VM
//! (vm1 → vm2) add, and the average chunk size.
//!
//! `cargo run --release -p rehydra-core --example chunk_sim -- /tmp/rbench [scheme…]`
//! Schemes: aligned-8k aligned-16k aligned-32k aligned-64k fixed-64k fixed-1m cdc-16k cdc-64k cdc-1m

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;

use rayon::prelude::*;
use rehydra_core::internals::{AlignedChunker, ChunkerParams, Piece, StreamChunker};

fn params(avg: u32) -> ChunkerParams {
    ChunkerParams {
        min: (avg / 4).max(4096),
        avg,
        max: avg * 4,
    }
}

fn chunks(path: &str, scheme: &str) -> Vec<Vec<u8>> {
    let f = BufReader::with_capacity(8 << 20, File::open(path).expect("open"));
    let it: Box<dyn Iterator<Item = std::io::Result<Piece>>> = match scheme {
        "aligned-8k" => Box::new(AlignedChunker::new(f, params(8 << 10), 7)),
        "aligned-16k" => Box::new(AlignedChunker::new(f, params(16 << 10), 7)),
        "aligned-32k" => Box::new(AlignedChunker::new(f, params(32 << 10), 7)),
        "aligned-64k" => Box::new(AlignedChunker::new(f, params(64 << 10), 7)),
        "fixed-64k" => Box::new(AlignedChunker::new(
            f,
            ChunkerParams {
                min: 64 << 10,
                avg: 64 << 10,
                max: 64 << 10,
            },
            7,
        )),
        "fixed-1m" => Box::new(AlignedChunker::new(
            f,
            ChunkerParams {
                min: 1 << 20,
                avg: 1 << 20,
                max: 1 << 20,
            },
            7,
        )),
        "cdc-8k" => Box::new(StreamChunker::new(f, params(8 << 10), 7)),
        "cdc-16k" => Box::new(StreamChunker::new(f, params(16 << 10), 7)),
        "cdc-64k" => Box::new(StreamChunker::new(f, params(64 << 10), 7)),
        "cdc-1m" => Box::new(StreamChunker::new(f, params(1 << 20), 7)),
        other => panic!("unknown scheme {other}"),
    };
    it.filter_map(|p| match p.expect("read") {
        Piece::Data(d) => Some(d),
        Piece::Zero(_) => None,
    })
    .collect()
}

fn ids(c: &[Vec<u8>]) -> HashSet<[u8; 32]> {
    c.par_iter().map(|d| *blake3::hash(d).as_bytes()).collect()
}

fn added(base: &HashSet<[u8; 32]>, new: &[Vec<u8>]) -> (u64, u64) {
    let mut seen = HashSet::new();
    let fresh: Vec<&Vec<u8>> = new
        .iter()
        .filter(|d| {
            let h = *blake3::hash(d).as_bytes();
            !base.contains(&h) && seen.insert(h)
        })
        .collect();
    let raw: u64 = fresh.iter().map(|d| d.len() as u64).sum();
    let comp: u64 = fresh
        .par_iter()
        .map(|d| {
            zstd::bulk::compress(d, 3)
                .map(|c| c.len().min(d.len()) as u64)
                .unwrap_or(d.len() as u64)
        })
        .sum();
    (raw, comp)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "/tmp/rbench".into());
    let mut schemes: Vec<String> = args.collect();
    if schemes.is_empty() {
        schemes = [
            "aligned-8k",
            "aligned-16k",
            "aligned-32k",
            "aligned-64k",
            "fixed-64k",
            "fixed-1m",
            "cdc-16k",
            "cdc-64k",
            "cdc-1m",
        ]
        .map(String::from)
        .to_vec();
    }
    println!(
        "| scheme | avg chunk KiB | 1% in-place change: new MB raw / zstd | second VM: new MB raw / zstd |"
    );
    println!("|---|---|---|---|");
    for s in schemes {
        let v1 = chunks(&format!("{dir}/vm1.vhdx"), &s);
        let base = ids(&v1);
        let avg =
            v1.iter().map(|c| c.len()).sum::<usize>() as f64 / v1.len().max(1) as f64 / 1024.0;
        drop(v1);
        let (cr, cc) = added(&base, &chunks(&format!("{dir}/vm1-changed.vhdx"), &s));
        let (vr, vc) = added(&base, &chunks(&format!("{dir}/vm2.vhdx"), &s));
        println!(
            "| {s} | {avg:.1} | {:.1} / {:.1} | {:.1} / {:.1} |",
            cr as f64 / 1e6,
            cc as f64 / 1e6,
            vr as f64 / 1e6,
            vc as f64 / 1e6
        );
    }
}
