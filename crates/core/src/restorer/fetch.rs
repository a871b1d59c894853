//! The data of a run of extents, in order, from one batched read of its chunks.

use crate::contentmap::Extent;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::repository::Repository;

/// The data of `ext` in order (`None` for holes), each chunk's length checked against the
/// content map; chunks are read with [`Repository::read_located`].
pub(crate) fn fetch_extents(
    repo: &Repository,
    index: &ChunkIndex,
    ext: &[Extent],
) -> Result<Vec<Option<Vec<u8>>>> {
    // each chunk located once, and the map's length checked against the index's before
    // anything is read: a map that understates its chunks must not make a batch read far
    // more than it says. A chunk used twice in the batch is cloned for its earlier uses.
    let mut wanted = Vec::with_capacity(ext.len());
    let mut uses: std::collections::HashMap<Id, usize> = std::collections::HashMap::new();
    for e in ext {
        if let Extent::Data(id, len) = e {
            let n = uses.entry(*id).or_default();
            *n += 1;
            if *n == 1 {
                let loc = crate::fetch::locate(index, id)?;
                if loc.raw_len != *len {
                    return Err(wrong_length(id, loc.raw_len as usize, *len));
                }
                wanted.push((*id, loc));
            }
        }
    }
    let mut by_id = repo.read_located(wanted)?;
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
                    return Err(wrong_length(id, d.len(), *len));
                }
                out.push(Some(d));
            }
        }
    }
    Ok(out)
}

fn wrong_length(id: &Id, holds: usize, said: u32) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "chunk {} holds {holds} bytes but the content map says {said}: the repository was written by a damaged or hostile writer",
            id.short()
        ),
    )
}
