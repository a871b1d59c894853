//! Fetching the chunks of a run of extents: one ranged read per neighbourhood of a pack,
//! then decryption and verification in parallel.

use crate::contentmap::Extent;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::repository::Repository;

/// Fetch the data of `ext` in order (`None` for holes): reads are coalesced per pack
/// (neighbouring chunks in one request, as packs are written in backup order), then
/// decrypted, decompressed and verified in parallel.
pub(crate) fn fetch_extents(
    repo: &Repository,
    index: &ChunkIndex,
    ext: &[Extent],
) -> Result<Vec<Option<Vec<u8>>>> {
    use crate::index::Location;
    // resolve and de-duplicate
    let mut wanted: Vec<(Id, Location)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in ext {
        if let Extent::Data(id, _) = e
            && seen.insert(*id)
        {
            let loc = index.get(id)?.ok_or_else(|| Error::new(ErrorKind::Missing, format!("chunk {} is not in any index: the repository is damaged; run `rehydra check`", id.short())))?;
            wanted.push((*id, loc));
        }
    }
    wanted.sort_by_key(|a| (a.1.pack, a.1.offset));
    // coalesce into ranges: same pack, gap below 256 KiB, at most 8 MiB per read
    let mut ranges: Vec<(usize, usize)> = Vec::new(); // [start, end) into `wanted`
    let mut i = 0;
    while i < wanted.len() {
        let mut j = i + 1;
        let start = u64::from(wanted[i].1.offset);
        let mut end = start + u64::from(wanted[i].1.length);
        while j < wanted.len() && wanted[j].1.pack == wanted[i].1.pack {
            let (o, l) = (u64::from(wanted[j].1.offset), u64::from(wanted[j].1.length));
            if o < end || o > end + (256 << 10) || o + l - start > 8 << 20 {
                break;
            }
            end = o + l;
            j += 1;
        }
        ranges.push((i, j));
        i = j;
    }
    // read the ranges (in parallel), then open every chunk in parallel
    let read = |&(a, b): &(usize, usize)| {
        let first = &wanted[a].1;
        let start = u64::from(first.offset);
        let end = u64::from(wanted[b - 1].1.offset) + u64::from(wanted[b - 1].1.length);
        repo.backend()
            .read_range(
                crate::backend::FileKind::Pack,
                &first.pack.to_hex(),
                start,
                (end - start) as u32,
            )
            .map_err(Error::from)
    };
    let bufs: Vec<Result<Vec<u8>>> = crate::par::map_ref(&ranges, read);
    let bufs: Vec<Vec<u8>> = bufs.into_iter().collect::<Result<_>>()?;
    let jobs: Vec<(usize, usize)> = ranges
        .iter()
        .enumerate()
        .flat_map(|(r, &(a, b))| (a..b).map(move |k| (r, k)))
        .collect();
    let open = |&(r, k): &(usize, usize)| {
        let (id, l) = &wanted[k];
        let off = (u64::from(l.offset) - u64::from(wanted[ranges[r].0].1.offset)) as usize;
        let sealed = &bufs[r][off..off + l.length as usize];
        crate::pack::open_chunk(repo.keys(), id, sealed, l.raw_len, l.flags, &l.pack)
            .map(|d| (*id, d))
    };
    let decoded: Vec<Result<(Id, Vec<u8>)>> = crate::par::map_ref(&jobs, open);
    drop(bufs);
    let mut by_id: std::collections::HashMap<Id, Vec<u8>> =
        std::collections::HashMap::with_capacity(wanted.len());
    for r in decoded {
        let (id, d) = r?;
        by_id.insert(id, d);
    }
    // hand out in order; a chunk used twice in the batch is cloned for its later uses
    let mut uses: std::collections::HashMap<Id, usize> = std::collections::HashMap::new();
    for e in ext {
        if let Extent::Data(id, _) = e {
            *uses.entry(*id).or_default() += 1;
        }
    }
    let mut out = Vec::with_capacity(ext.len());
    for e in ext {
        match e {
            Extent::Zero(_) => out.push(None),
            Extent::Data(id, len) => {
                let n = uses.get_mut(id).expect("counted");
                *n -= 1;
                let d = if *n == 0 {
                    by_id.remove(id)
                } else {
                    by_id.get(id).cloned()
                }
                .expect("fetched");
                if d.len() != *len as usize {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        format!(
                            "chunk {} holds {} bytes but the content map says {len}: the repository was written by a damaged or hostile writer",
                            id.short(),
                            d.len()
                        ),
                    ));
                }
                out.push(Some(d));
            }
        }
    }
    Ok(out)
}
