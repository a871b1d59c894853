//! Splitting data into chunks.
//!
//! Two chunkers, both producing [`Piece`]s (stored data or a run of zeros that is never
//! stored):
//!
//! - [`AlignedChunker`] for disk images: the image is cut into 4 KiB blocks at the disk's
//!   own offsets and a chunk boundary may fall only between blocks. Whether a block ends a
//!   chunk depends on that block's content alone (a keyed fingerprint), so boundaries are
//!   content-defined (two VMs holding the same file at different block offsets chunk it
//!   the same way) and an in-place write changes only the chunks it touches and, at most,
//!   where its neighbours end. All-zero blocks end a chunk and become holes.
//! - [`StreamChunker`] for files and streams: FastCDC (2020), with zero chunks turned
//!   into holes.
//!
//! The measurements that chose the parameters are in `docs/chunking.md`.

use std::io::Read;

/// Parameters shared by both chunkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerParams {
    /// Smallest chunk in bytes.
    pub min: u32,
    /// Target average chunk size in bytes.
    pub avg: u32,
    /// Largest chunk in bytes.
    pub max: u32,
}

impl Default for ChunkerParams {
    fn default() -> Self {
        Self {
            min: 4 * 1024,
            avg: 16 * 1024,
            max: 64 * 1024,
        }
    }
}

/// Block size of the aligned chunker: boundaries fall on multiples of this.
pub const BLOCK: usize = 4096;

/// What a chunker yields.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// Bytes to store.
    Data(Vec<u8>),
    /// A run of this many zero bytes (a hole; never stored).
    Zero(u64),
}

/// True when every byte is zero.
pub fn is_zero(buf: &[u8]) -> bool {
    let (head, rest) = buf.split_at(buf.len().min(16));
    head.iter().all(|&b| b == 0) && rest.iter().fold(0u8, |a, &b| a | b) == 0
}

/// Cheap keyed fingerprint of a block, sampling 64 words spread over it.
fn block_fingerprint(block: &[u8], seed: u64) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    let step = (block.len() / 64).max(8) & !7;
    let mut i = 0;
    while i + 8 <= block.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&block[i..i + 8]);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0xff51_afd7_ed55_8ccd)
            .rotate_left(29);
        i += step;
    }
    h ^= h >> 33;
    h.wrapping_mul(0xc4ce_b9fe_1a85_ec53) ^ (h >> 29)
}

/// Content-defined chunking restricted to 4 KiB-aligned boundaries (for disk images).
pub struct AlignedChunker<R> {
    reader: R,
    params: ChunkerParams,
    seed: u64,
    mask: u64,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    cur: Vec<u8>,
    zeros: u64,
    eof: bool,
}

impl<R: Read> AlignedChunker<R> {
    /// A chunker over `reader`, whose offset 0 is the disk's offset 0.
    pub fn new(reader: R, params: ChunkerParams, seed: u64) -> Self {
        // After `min`, each block ends the chunk with probability 1/2^k; the expected size is
        // then about min + (2^k - 1) blocks, so pick 2^k nearest to avg - min + 1 blocks.
        let blocks = (params.avg as usize / BLOCK).max(1) as u64;
        let min_blocks = (params.min as usize / BLOCK).max(1) as u64;
        let extra = (blocks + 1)
            .saturating_sub(min_blocks)
            .max(1)
            .next_power_of_two();
        Self {
            reader,
            params,
            seed,
            mask: extra - 1,
            buf: vec![0u8; 1 << 20],
            pos: 0,
            len: 0,
            cur: Vec::with_capacity(params.max as usize),
            zeros: 0,
            eof: false,
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        // keep any partial block at the end
        self.buf.copy_within(self.pos..self.len, 0);
        self.len -= self.pos;
        self.pos = 0;
        while self.len < self.buf.len() {
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn take_cur(&mut self) -> Piece {
        let cap = self.params.max as usize;
        let mut data = std::mem::replace(&mut self.cur, Vec::with_capacity(cap));
        // a chunk is a quarter of the maximum on average: give the rest back (in place)
        data.shrink_to_fit();
        Piece::Data(data)
    }
}

impl<R: Read> Iterator for AlignedChunker<R> {
    type Item = std::io::Result<Piece>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.len - self.pos < BLOCK
                && !self.eof
                && let Err(e) = self.fill()
            {
                return Some(Err(e));
            }
            let avail = self.len - self.pos;
            if avail == 0 {
                if self.zeros > 0 {
                    return Some(Ok(Piece::Zero(std::mem::take(&mut self.zeros))));
                }
                if !self.cur.is_empty() {
                    return Some(Ok(self.take_cur()));
                }
                return None;
            }
            let n = avail.min(BLOCK);
            let block = &self.buf[self.pos..self.pos + n];
            if is_zero(block) {
                if !self.cur.is_empty() {
                    return Some(Ok(self.take_cur())); // block is re-examined next call
                }
                self.zeros += n as u64;
                self.pos += n;
                continue;
            }
            if self.zeros > 0 {
                return Some(Ok(Piece::Zero(std::mem::take(&mut self.zeros))));
            }
            let boundary = self.cur.len() + n >= self.params.min as usize
                && block_fingerprint(block, self.seed) & self.mask == 0;
            self.cur.extend_from_slice(block);
            self.pos += n;
            if boundary || self.cur.len() + BLOCK > self.params.max as usize {
                return Some(Ok(self.take_cur()));
            }
        }
    }
}

/// FastCDC over a stream, zero chunks turned into holes.
pub struct StreamChunker<R: Read> {
    inner: fastcdc::v2020::StreamCDC<R>,
}

impl<R: Read> StreamChunker<R> {
    /// A chunker over `reader`.
    pub fn new(reader: R, params: ChunkerParams, seed: u64) -> Self {
        let _ = seed; // FastCDC's gear table is fixed in this crate version; see docs/repository-format.md
        Self {
            inner: fastcdc::v2020::StreamCDC::new(reader, params.min, params.avg, params.max),
        }
    }
}

impl<R: Read> Iterator for StreamChunker<R> {
    type Item = std::io::Result<Piece>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.inner.next()? {
            Ok(c) if is_zero(&c.data) => Some(Ok(Piece::Zero(c.length as u64))),
            Ok(c) => Some(Ok(Piece::Data(c.data))),
            Err(fastcdc::v2020::Error::IoError(e)) => Some(Err(e)),
            Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<I: Iterator<Item = std::io::Result<Piece>>>(it: I) -> Vec<Piece> {
        it.map(|p| p.unwrap()).collect()
    }

    /// The data chunks (zero runs left out) the aligned chunker keyed by `seed` cuts.
    fn aligned_chunks(data: &[u8], seed: u64) -> Vec<Vec<u8>> {
        pieces(AlignedChunker::new(data, ChunkerParams::default(), seed))
            .into_iter()
            .filter_map(|p| match p {
                Piece::Data(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn aligned_reassembles_and_aligns() {
        let mut data = noise(1 << 20, 3);
        data[200_000..300_000].fill(0);
        let ps = pieces(AlignedChunker::new(&data[..], ChunkerParams::default(), 9));
        let mut out = Vec::new();
        for p in &ps {
            assert_eq!(out.len() % BLOCK, 0, "every boundary is block aligned");
            match p {
                Piece::Data(d) => {
                    assert!(d.len() <= 64 * 1024);
                    out.extend_from_slice(d)
                }
                Piece::Zero(n) => out.resize(out.len() + *n as usize, 0),
            }
        }
        assert_eq!(out, data);
        assert!(ps.iter().any(|p| matches!(p, Piece::Zero(_))));
    }

    #[test]
    fn aligned_in_place_change_touches_few_chunks() {
        let data = noise(4 << 20, 5);
        let mut changed = data.clone();
        changed[1 << 21..(1 << 21) + 65536].copy_from_slice(&noise(65536, 77));
        let a: std::collections::HashSet<Vec<u8>> =
            aligned_chunks(&data, 1).into_iter().collect();
        let new_bytes: usize = aligned_chunks(&changed, 1)
            .into_iter()
            .filter(|d| !a.contains(d))
            .map(|d| d.len())
            .sum();
        assert!(
            (65536..=65536 + 2 * 64 * 1024).contains(&new_bytes),
            "new bytes {new_bytes}"
        );
    }

    #[test]
    fn aligned_dedups_shifted_content() {
        // the same 1 MiB of content placed at two different block offsets
        let file = noise(1 << 20, 11);
        let mut d1 = noise(40 * BLOCK, 1);
        d1.extend_from_slice(&file);
        let mut d2 = noise(13 * BLOCK, 2);
        d2.extend_from_slice(&file);
        let set = |d: &[u8]| -> std::collections::HashSet<Vec<u8>> {
            aligned_chunks(d, 4).into_iter().collect()
        };
        let (s1, s2) = (set(&d1), set(&d2));
        let shared: usize = s1.intersection(&s2).map(|c| c.len()).sum();
        assert!(shared > (1 << 20) * 8 / 10, "shared {shared}");
    }

    #[test]
    fn stream_chunker_roundtrip_with_holes() {
        let mut data = noise(500_000, 8);
        data.extend(std::iter::repeat_n(0u8, 300_000));
        data.extend(noise(10_000, 9));
        let mut out = Vec::new();
        let mut holes = 0;
        for p in pieces(StreamChunker::new(&data[..], ChunkerParams::default(), 0)) {
            match p {
                Piece::Data(d) => out.extend_from_slice(&d),
                Piece::Zero(n) => {
                    holes += n;
                    out.resize(out.len() + n as usize, 0)
                }
            }
        }
        assert_eq!(out, data);
        assert!(holes >= 3 * 65536, "holes {holes}");
    }
}
