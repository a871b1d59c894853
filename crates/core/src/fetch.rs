//! Reading many chunks at once: neighbouring chunks of a pack are fetched in one ranged
//! read (packs are written in backup order, so a file's chunks mostly sit together), the
//! reads run in parallel, then every chunk is decrypted, decompressed and verified in
//! parallel. On an object store this turns thousands of requests into a few.

use std::collections::HashMap;

use crate::backend::FileKind;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::{ChunkIndex, Location};
use crate::repository::Repository;

/// Chunks further apart than this in a pack are read separately: reading the gap would
/// cost more than another request on a local disk.
const MAX_GAP: u64 = 256 << 10;
/// The most one ranged read asks for.
const MAX_READ: u64 = 8 << 20;

/// A ranged read of one pack covering `wanted[start..end]`.
struct Read {
    start: usize,
    end: usize,
}

impl Repository {
    /// Read the chunks `ids` (duplicates allowed), each verified as
    /// [`Repository::read_chunk`] does, with coalesced parallel reads.
    ///
    /// # Errors
    /// [`ErrorKind::Missing`] when no index knows a chunk; [`ErrorKind::Corrupt`] on any
    /// mismatch; the backend's error when a read fails.
    pub fn read_chunks(&self, index: &ChunkIndex, ids: &[Id]) -> Result<HashMap<Id, Vec<u8>>> {
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        let wanted = ids
            .iter()
            .filter(|id| seen.insert(**id))
            .map(|id| Ok((*id, locate(index, id)?)))
            .collect::<Result<_>>()?;
        self.read_located(wanted)
    }

    /// As [`Repository::read_chunks`], for chunks already located (each once).
    pub(crate) fn read_located(
        &self,
        mut wanted: Vec<(Id, Location)>,
    ) -> Result<HashMap<Id, Vec<u8>>> {
        wanted.sort_by_key(|a| (a.1.pack, a.1.offset));
        let reads = coalesce(&wanted);
        let fetch = |r: &Read| {
            let (first, last) = (&wanted[r.start].1, &wanted[r.end - 1].1);
            let start = u64::from(first.offset);
            let end = u64::from(last.offset) + u64::from(last.length);
            self.backend()
                .read_range(FileKind::Pack, &first.pack.to_hex(), start, (end - start) as u32)
                .map_err(Error::from)
        };
        let bufs: Vec<Vec<u8>> = crate::par::map_ref(&reads, fetch)
            .into_iter()
            .collect::<Result<_>>()?;
        let jobs: Vec<(usize, usize)> = reads
            .iter()
            .enumerate()
            .flat_map(|(r, read)| (read.start..read.end).map(move |k| (r, k)))
            .collect();
        let open = |&(r, k): &(usize, usize)| {
            let (id, l) = &wanted[k];
            let off = (u64::from(l.offset) - u64::from(wanted[reads[r].start].1.offset)) as usize;
            let sealed = &bufs[r][off..off + l.length as usize];
            crate::pack::open_chunk(self.keys(), id, sealed, l.raw_len, l.flags, &l.pack)
                .map(|d| (*id, d))
        };
        crate::par::map_ref(&jobs, open).into_iter().collect()
    }
}

/// Where `id` is stored, or the error that says the repository lacks it.
pub(crate) fn locate(index: &ChunkIndex, id: &Id) -> Result<Location> {
    index.get(id)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Missing,
            format!(
                "chunk {} is not in any index: the repository is damaged",
                id.short()
            ),
        )
        .with_hint(crate::Hint::Check)
    })
}

/// Group `wanted` (sorted by pack and offset) into reads: same pack, gaps below
/// [`MAX_GAP`], at most [`MAX_READ`] bytes each.
fn coalesce(wanted: &[(Id, Location)]) -> Vec<Read> {
    let mut reads = Vec::new();
    let mut i = 0;
    while i < wanted.len() {
        let first = &wanted[i].1;
        let start = u64::from(first.offset);
        let mut end = start + u64::from(first.length);
        let mut j = i + 1;
        while let Some((_, l)) = wanted.get(j) {
            let (o, len) = (u64::from(l.offset), u64::from(l.length));
            if l.pack != first.pack || o < end || o > end + MAX_GAP || o + len - start > MAX_READ {
                break;
            }
            end = o + len;
            j += 1;
        }
        reads.push(Read { start: i, end: j });
        i = j;
    }
    reads
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(pack: u8, offset: u32, length: u32) -> (Id, Location) {
        let mut id = [pack; 32];
        id[..4].copy_from_slice(&offset.to_le_bytes());
        let (id, pack) = (Id(id), Id([pack; 32]));
        (id, Location { pack, offset, length, raw_len: length, flags: 0 })
    }

    fn spans(w: &[(Id, Location)]) -> Vec<(usize, usize)> {
        coalesce(w).iter().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn neighbours_in_a_pack_share_a_read_and_gaps_or_other_packs_split_it() {
        let mut w = vec![at(1, 0, 100), at(1, 100, 100), at(1, 200 + (256 << 10), 10)];
        assert_eq!(spans(&w), vec![(0, 3)], "a gap of exactly MAX_GAP is read through");
        w.push(at(1, 300 + (512 << 10), 10));
        assert_eq!(spans(&w), vec![(0, 3), (3, 4)], "a longer gap starts a new read");
        let mut other = vec![at(1, 0, 100)];
        other.push(at(2, 100, 100));
        other.sort_by_key(|a| (a.1.pack, a.1.offset));
        assert_eq!(spans(&other).len(), 2, "another pack is another read");
    }

    #[test]
    fn a_read_never_exceeds_its_cap_nor_overlaps() {
        let big = 3 << 20;
        let w = vec![at(1, 0, big), at(1, big, big), at(1, 2 * big, big)];
        assert_eq!(spans(&w), vec![(0, 2), (2, 3)], "8 MiB cap");
        let overlapping = vec![at(1, 0, 100), at(1, 50, 100)];
        assert_eq!(spans(&overlapping), vec![(0, 1), (1, 2)], "a hostile index's overlap");
    }
}
