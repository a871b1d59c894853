//! The data of a run of extents, in order, from one batched read of its chunks.

use crate::contentmap::Extent;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::ChunkIndex;
use crate::repository::Repository;

/// The data of `ext` in order (`None` for holes), each chunk's length checked against the
/// content map; chunks are read with [`Repository::read_chunks`].
pub(crate) fn fetch_extents(
    repo: &Repository,
    index: &ChunkIndex,
    ext: &[Extent],
) -> Result<Vec<Option<Vec<u8>>>> {
    let ids: Vec<Id> = ext
        .iter()
        .filter_map(|e| match e {
            Extent::Data(id, _) => Some(*id),
            Extent::Zero(_) => None,
        })
        .collect();
    let mut by_id = repo.read_chunks(index, &ids)?;
    // hand out in order; a chunk used twice in the batch is cloned for its earlier uses
    let mut uses: std::collections::HashMap<Id, usize> = std::collections::HashMap::new();
    for id in &ids {
        *uses.entry(*id).or_default() += 1;
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
