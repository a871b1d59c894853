//! Verify a repository: structure always, and with `read_data` every byte.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::backend::FileKind;
use crate::contentmap::read_map;
use crate::contentmap::{Extent, MapEvent};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::lock::Lock;
use crate::pack;
use crate::progress::Progress;
use crate::repository::Repository;

/// Options for [`check`].
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Decrypt and hash every chunk in the selected packs.
    pub read_data: bool,
    /// Read only part `n` of `m` (1-based) of the packs, by id order.
    pub subset: Option<(u32, u32)>,
}

/// What check found.
#[derive(Debug, Default, Serialize, ts_rs::TS)]
pub struct CheckReport {
    /// Problems that make data unrestorable.
    pub errors: Vec<String>,
    /// Problems that lose nothing (leftovers, duplicates).
    pub warnings: Vec<String>,
    /// Restore points that cannot be fully restored.
    pub damaged_restore_points: Vec<String>,
    /// Restore points checked.
    pub restore_points: usize,
    /// Packs listed.
    pub packs: usize,
    /// Packs whose data was read.
    pub packs_read: usize,
    /// Chunks verified by reading.
    pub chunks_read: u64,
}

impl CheckReport {
    /// True when nothing is damaged.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.damaged_restore_points.is_empty()
    }
}

/// Check the repository.
///
/// # Errors
/// Only when the repository cannot be listed at all; damage is reported in the report.
pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &dyn Progress,
) -> Result<CheckReport> {
    let mut r = CheckReport::default();
    // presence first, like a backup: a prune defers deleting packs and index files while
    // check reads them. Then manifests, index files, packs, each listed after what refers
    // to it, so what backups or a prune's repacking write meanwhile is never taken for
    // missing. A repository this process cannot write is checked unannounced.
    let _presence = match Lock::backup(repo.backend().clone()) {
        Ok(l) => Some(l),
        Err(e) => {
            r.warnings.push(format!(
                "check could not announce itself ({e}); a prune running meanwhile may show up as missing packs"
            ));
            None
        }
    };
    let (snaps, bad_snaps) = repo.restore_points()?;
    let (index, _) = repo.load_index()?;

    // packs named by the index, and which are missing
    let mut indexed_packs: HashMap<Id, Vec<(Id, crate::index::Location)>> = HashMap::new();
    for name in repo
        .backend()
        .list(FileKind::Index)?
        .into_iter()
        .map(|f| f.name)
    {
        // read every index file itself: the local cache may predate damage
        match repo
            .backend()
            .read(FileKind::Index, &name)
            .map_err(Error::from)
            .and_then(|b| crate::index::decode(repo.keys(), &name, &b))
        {
            Ok(entries) => {
                for (id, loc) in entries {
                    indexed_packs.entry(loc.pack).or_default().push((id, loc));
                }
            }
            Err(e) => r
                .errors
                .push(format!("index file {}: {e}", &name[..8.min(name.len())])),
        }
    }
    let packs: HashMap<Id, u64> = repo
        .backend()
        .list(FileKind::Pack)?
        .into_iter()
        .filter_map(|f| Id::parse(&f.name).ok().map(|id| (id, f.size)))
        .collect();
    r.packs = packs.len();
    let mut damaged_chunks: HashSet<Id> = HashSet::new();
    for (p, entries) in &indexed_packs {
        if !packs.contains_key(p) {
            r.errors.push(format!(
                "pack {} is named by the index but missing ({} chunks)",
                p.short(),
                entries.len()
            ));
            damaged_chunks.extend(entries.iter().map(|(id, _)| *id));
        }
    }
    let unindexed = packs
        .keys()
        .filter(|p| !indexed_packs.contains_key(*p))
        .count();
    if unindexed > 0 {
        r.warnings.push(format!("{unindexed} pack(s) are not named by any index (left by an interrupted backup or prune, or written by a backup still running); a prune removes them"));
    }

    if opts.read_data {
        let mut ids: Vec<&Id> = indexed_packs
            .keys()
            .filter(|p| packs.contains_key(*p))
            .collect();
        ids.sort();
        if let Some((n, m)) = opts.subset {
            ids = ids
                .into_iter()
                .enumerate()
                .filter(|(i, _)| (*i as u32 % m) + 1 == n)
                .map(|(_, p)| p)
                .collect();
        }
        let total: u64 = ids.iter().map(|p| packs[*p]).sum();
        progress.start("read data", total);
        let results: Vec<(Id, Vec<String>, Vec<Id>, u64)> = ids
            .par_iter()
            .map(|p| {
                let (errs, bad, n) = verify_pack(repo, p, &indexed_packs[*p]);
                progress.inc(packs[*p]);
                (**p, errs, bad, n)
            })
            .collect();
        progress.finish();
        for (_, errs, bad, n) in results {
            r.packs_read += 1;
            r.chunks_read += n;
            r.errors.extend(errs);
            damaged_chunks.extend(bad);
        }
    }

    for (id, e) in bad_snaps {
        r.errors.push(format!("restore point {}: {e}", id.short()));
        r.damaged_restore_points.push(id.to_hex());
    }
    r.restore_points = snaps.len();
    for (sid, snap) in &snaps {
        let mut problems = Vec::new();
        'items: for item in &snap.items {
            for mid in &item.map {
                if damaged_chunks.contains(mid) || !index.contains(mid)? {
                    problems.push(format!("content map of `{}` is damaged", item.name));
                    continue 'items;
                }
            }
            for ev in read_map(repo, &index, item) {
                match ev {
                    Ok(MapEvent::Extents(xs)) => {
                        for x in xs {
                            if let Extent::Data(cid, _) = x {
                                if damaged_chunks.contains(&cid) {
                                    problems.push(format!(
                                        "chunk {} of `{}` is damaged",
                                        cid.short(),
                                        item.name
                                    ));
                                } else if !index.contains(&cid)? {
                                    problems.push(format!(
                                        "chunk {} of `{}` is missing",
                                        cid.short(),
                                        item.name
                                    ));
                                }
                            }
                        }
                    }
                    Ok(MapEvent::Node(_)) => {}
                    Err(e) => {
                        problems.push(format!("content map of `{}`: {e}", item.name));
                        break;
                    }
                }
            }
        }
        if !problems.is_empty() {
            let shown: Vec<String> = problems.iter().take(5).cloned().collect();
            r.errors.push(format!(
                "restore point {} ({} {}): {}{}",
                sid.short(),
                snap.workload,
                snap.asset,
                shown.join("; "),
                if problems.len() > 5 {
                    format!("; and {} more", problems.len() - 5)
                } else {
                    String::new()
                }
            ));
            r.damaged_restore_points.push(sid.to_hex());
        }
    }
    Ok(r)
}

/// Read one pack whole: header against index, every chunk decrypted and hashed.
fn verify_pack(
    repo: &Repository,
    p: &Id,
    indexed: &[(Id, crate::index::Location)],
) -> (Vec<String>, Vec<Id>, u64) {
    let all_bad = |msg: String| (vec![msg], indexed.iter().map(|(id, _)| *id).collect(), 0);
    let bytes = match repo.backend().read(FileKind::Pack, &p.to_hex()) {
        Ok(b) => b,
        Err(e) => return all_bad(format!("pack {}: {e}", p.short())),
    };
    let header = pack::header_range(
        bytes.len() as u64,
        bytes[bytes.len().saturating_sub(4)..]
            .try_into()
            .unwrap_or([0; 4]),
        p,
    )
    .and_then(|(off, len)| {
        pack::parse_header(
            repo.keys(),
            &bytes[off as usize..off as usize + len as usize],
            off,
            p,
        )
    });
    let mut errs = Vec::new();
    match header {
        Ok(h) => {
            let hs: HashSet<(Id, u32, u32)> =
                h.iter().map(|e| (e.id, e.offset, e.length)).collect();
            if indexed
                .iter()
                .any(|(id, l)| !hs.contains(&(*id, l.offset, l.length)))
            {
                errs.push(format!("pack {}: header and index disagree", p.short()));
            }
        }
        Err(e) => errs.push(format!("{e}")),
    }
    let mut bad = Vec::new();
    let mut n = 0;
    for (id, l) in indexed {
        n += 1;
        let end = l.offset as usize + l.length as usize;
        let ok = end <= bytes.len()
            && pack::open_chunk(
                repo.keys(),
                id,
                &bytes[l.offset as usize..end],
                l.raw_len,
                l.flags,
                p,
            )
            .is_ok();
        if !ok {
            bad.push(*id);
        }
    }
    if !bad.is_empty() {
        errs.push(format!(
            "pack {}: {} chunk(s) fail authentication or their hash",
            p.short(),
            bad.len()
        ));
    }
    (errs, bad, n)
}
