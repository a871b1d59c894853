//! Prune: delete what no restore point uses, with a two-phase delete that is safe while
//! backups run.
//!
//! Phase 1 (under the exclusive lock) finds unused and partly used packs, copies the
//! still-used chunks of partly used packs into new packs, rewrites the index entries of
//! packs that stay, and records a *deletion plan* under `prune/`: packs and index files to
//! delete. Nothing is deleted in phase 1.
//!
//! Phase 2 executes plans, immediately when no backup is running, otherwise at the next
//! prune. [`prune`] runs both; [`plan`] and [`execute`] run them one at a time. Backups
//! (and every other long reader of packs) announce themselves (`locks/`) *before* loading
//! the index, and save their manifest *before* removing their presence file, so per plan:
//! 1. with a live backup, plans wait (that backup may reference a chunk the plan deletes);
//! 2. every restore point saved since phase 1 read the manifests (a backup that started
//!    after that, deduplicated against a chunk the plan deletes and has finished) is read
//!    now, its content maps included, and its chunks count as used. Its chunks are still
//!    found: the plan's index files are not deleted yet;
//! 3. planned packs that a restore point now needs, or that a surviving index names, are
//!    taken out of the plan (and re-indexed when needed);
//! 4. the plan's index files are deleted, then backups are checked again, then the
//!    manifests: if a backup started meanwhile, or a restore point was saved that step 2
//!    did not read (a backup that loaded the index before the deletion and ended), the
//!    plan's packs are re-indexed and kept for a later prune. A backup that starts after
//!    this check loads an index without the plan's packs;
//! 5. only then are the packs deleted, and the plan last.
//!
//! A prune killed at any point leaves only extra files, never a missing one.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::backend::FileKind;
use crate::chunker::Piece;
use crate::contentmap::read_map;
use crate::contentmap::{Extent, MapEvent};
use crate::crypto::aad;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;
use crate::index::{self, ChunkIndex, Location};
use crate::lock::{Lock, live_backups};
use crate::manifest::RestorePoint;
use crate::pack;
use crate::progress::Progress;
use crate::repository::Repository;
use crate::writer::ChunkWriter;

/// Options for [`prune`].
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Repack a pack when more than this percentage of its bytes is unused.
    pub repack_threshold_percent: u32,
    /// Only report what would be done.
    pub dry_run: bool,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            repack_threshold_percent: 30,
            dry_run: false,
        }
    }
}

/// What prune did.
#[derive(Debug, Default, Serialize)]
pub struct PruneReport {
    /// Packs examined.
    pub packs: usize,
    /// Packs wholly unused (planned for deletion).
    pub unused_packs: usize,
    /// Packs repacked.
    pub repacked_packs: usize,
    /// Chunks copied while repacking.
    pub repacked_chunks: u64,
    /// Packs left by interrupted backups.
    pub orphan_packs: usize,
    /// Bytes planned for deletion.
    pub planned_bytes: u64,
    /// Packs deleted in this run.
    pub deleted_packs: usize,
    /// Index files deleted in this run.
    pub deleted_index_files: usize,
    /// Bytes freed in this run.
    pub freed_bytes: u64,
    /// Plans waiting for running backups to end.
    pub deferred_plans: usize,
    /// Temporary leftovers removed.
    pub leftovers_removed: usize,
    /// Notes for the user.
    pub notes: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Plan {
    created: chrono::DateTime<chrono::Utc>,
    packs: Vec<Id>,
    index_files: Vec<String>,
}

struct Inventory {
    /// pack -> entries
    packs: HashMap<Id, Vec<(Id, Location)>>,
    /// index file -> packs it names
    files: HashMap<String, HashSet<Id>>,
    sizes: HashMap<Id, u64>,
}

fn inventory(repo: &Repository) -> Result<Inventory> {
    let mut inv = Inventory {
        packs: HashMap::new(),
        files: HashMap::new(),
        sizes: HashMap::new(),
    };
    for f in repo.backend().list(FileKind::Index)? {
        let bytes = repo.backend().read(FileKind::Index, &f.name)?;
        let entries = index::decode(repo.keys(), &f.name, &bytes)?;
        let mut named = HashSet::new();
        for (id, loc) in entries {
            named.insert(loc.pack);
            let list = inv.packs.entry(loc.pack).or_default();
            if !list.iter().any(|(i, _)| *i == id) {
                list.push((id, loc));
            }
        }
        inv.files.insert(f.name, named);
    }
    for f in repo.backend().list(FileKind::Pack)? {
        if let Ok(id) = Id::parse(&f.name) {
            inv.sizes.insert(id, f.size);
        }
    }
    Ok(inv)
}

/// Chunks used by every restore point, and the restore points read.
fn used_chunks(repo: &Repository, index: &ChunkIndex) -> Result<(HashSet<Id>, HashSet<Id>)> {
    let (snaps, bad) = repo.restore_points()?;
    if let Some((id, e)) = bad.first() {
        return Err(unreadable(id, e));
    }
    let mut used = HashSet::new();
    for (_, s) in &snaps {
        account(repo, index, s, &mut used)?;
    }
    Ok((used, snaps.into_iter().map(|(id, _)| id).collect()))
}

fn unreadable(id: &Id, e: &Error) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!(
            "refusing to prune: restore point {} cannot be read ({e})",
            id.short()
        ),
    )
    .with_hint(crate::Hint::Check)
}

/// Add the chunks `snap` uses (content maps and data) to `used`.
fn account(
    repo: &Repository,
    index: &ChunkIndex,
    snap: &RestorePoint,
    used: &mut HashSet<Id>,
) -> Result<()> {
    for item in &snap.items {
        used.extend(item.map.iter().copied());
        for ev in read_map(repo, index, item) {
            if let MapEvent::Extents(xs) =
                ev.map_err(|e| Error::new(e.kind(), format!("refusing to prune: {e}")))?
            {
                used.extend(xs.into_iter().filter_map(|x| match x {
                    Extent::Data(id, _) => Some(id),
                    Extent::Zero(_) => None,
                }));
            }
        }
    }
    Ok(())
}

/// Entries of a pack read from its own header (for packs no index names).
fn header_entries(repo: &Repository, p: &Id, size: u64) -> Result<Vec<(Id, Location)>> {
    let trailer: [u8; 4] = repo
        .backend()
        .read_range(FileKind::Pack, &p.to_hex(), size.saturating_sub(4), 4)?
        .try_into()
        .map_err(|_| Error::corrupt(format!("pack {}", p.short())))?;
    let (off, len) = pack::header_range(size, trailer, p)?;
    let sealed = repo
        .backend()
        .read_range(FileKind::Pack, &p.to_hex(), off, len)?;
    Ok(pack::parse_header(repo.keys(), &sealed, off, p)?
        .into_iter()
        .map(|e| {
            (
                e.id,
                Location {
                    pack: *p,
                    offset: e.offset,
                    length: e.length,
                    raw_len: e.raw_len,
                    flags: e.flags,
                },
            )
        })
        .collect())
}

/// Phase 1 of a prune, done: the deletion plan is written (unless it was a dry run) and
/// the exclusive lock is held until [`execute`] consumes this.
pub struct Planned {
    _lock: Lock,
    report: PruneReport,
    dry_run: bool,
    /// Chunks used by the restore points phase 1 read.
    used: HashSet<Id>,
    /// The restore points phase 1 read.
    seen: HashSet<Id>,
}

impl Planned {
    /// What phase 1 found and planned.
    pub fn report(&self) -> &PruneReport {
        &self.report
    }
}

/// Run prune: [`plan`] then [`execute`].
///
/// # Errors
/// [`ErrorKind::Locked`] when another prune runs; [`ErrorKind::Corrupt`] when the
/// repository is damaged (prune refuses to decide on incomplete information).
pub fn prune(
    repo: &Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    execute(repo, plan(repo, opts, progress)?, progress)
}

/// Phase 1: take the exclusive lock, find what no restore point uses, repack, re-index
/// and write the deletion plan. Nothing is deleted.
///
/// # Errors
/// As [`prune`].
pub fn plan(repo: &Repository, opts: &PruneOptions, progress: &dyn Progress) -> Result<Planned> {
    let lock = Lock::exclusive(repo.backend().clone())?;
    let mut rep = PruneReport::default();
    let (idx, bad) = repo.load_index()?;
    if let Some((name, e)) = bad.first() {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("refusing to prune: index file {name} is damaged ({e})"),
        )
        .with_hint(crate::Hint::Check));
    }
    progress.start("prune: finding used chunks", 0);
    let (used, seen) = used_chunks(repo, &idx)?;
    drop(idx);
    write_plan(repo, opts, progress, &used, &mut rep)?;
    Ok(Planned {
        _lock: lock,
        report: rep,
        dry_run: opts.dry_run,
        used,
        seen,
    })
}

/// Phase 2: execute every deletion plan (this run's and deferred ones) unless a backup
/// runs, then remove old temporary leftovers. Releases the exclusive lock.
///
/// # Errors
/// Storage failure, or a new restore point that cannot be read.
pub fn execute(
    repo: &Repository,
    planned: Planned,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let Planned {
        _lock,
        mut report,
        dry_run,
        mut used,
        mut seen,
    } = planned;
    if dry_run {
        return Ok(report);
    }
    execute_plans(repo, &mut used, &mut seen, &mut report)?;
    report.leftovers_removed = repo
        .backend()
        .clean_leftovers(std::time::Duration::from_secs(3600))?;
    progress.finish();
    Ok(report)
}

/// Find unused and partly used packs, repack, re-index survivors, write the plan.
fn write_plan(
    repo: &Repository,
    opts: &PruneOptions,
    progress: &dyn Progress,
    used: &HashSet<Id>,
    rep: &mut PruneReport,
) -> Result<()> {
    let mut inv = inventory(repo)?;
    rep.packs = inv.sizes.len();

    // packs no index names: left by interrupted backups (or a backup still running)
    let orphans: Vec<Id> = inv
        .sizes
        .keys()
        .filter(|p| !inv.packs.contains_key(*p))
        .copied()
        .collect();
    let mut plan_packs: Vec<Id> = Vec::new();
    let mut reindex: Vec<(Id, Location)> = Vec::new();
    for p in &orphans {
        match header_entries(repo, p, inv.sizes[p]) {
            Ok(entries) => {
                let needed: Vec<(Id, Location)> = entries
                    .iter()
                    .filter(|(id, _)| {
                        used.contains(id) && !inv.packs.values().flatten().any(|(i, _)| i == id)
                    })
                    .copied()
                    .collect();
                if needed.is_empty() {
                    plan_packs.push(*p);
                } else {
                    rep.notes.push(format!(
                        "pack {} held chunks a restore point uses but no index named; re-indexed",
                        p.short()
                    ));
                    reindex.extend(entries.iter().copied());
                    inv.packs.insert(*p, entries);
                }
            }
            Err(e) => {
                rep.notes.push(format!(
                    "pack {} is unreadable ({e}); left in place for `check`",
                    p.short()
                ));
            }
        }
    }
    rep.orphan_packs = plan_packs.len();

    // one canonical copy per used chunk: packs holding the most used chunks win, so the
    // duplicates that concurrent writers leave end up in packs that become unused
    let mut order: Vec<(usize, Id)> = inv
        .packs
        .iter()
        .filter(|(p, _)| inv.sizes.contains_key(*p))
        .map(|(p, e)| (e.iter().filter(|(id, _)| used.contains(id)).count(), *p))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut canonical: HashMap<Id, Id> = HashMap::new();
    for (_, p) in &order {
        for (id, _) in &inv.packs[p] {
            if used.contains(id) {
                canonical.entry(*id).or_insert(*p);
            }
        }
    }
    let mut repack: Vec<Id> = Vec::new();
    for (_, p) in &order {
        let entries = &inv.packs[p];
        let total: u64 = entries.iter().map(|(_, l)| u64::from(l.length)).sum();
        let used_bytes: u64 = entries
            .iter()
            .filter(|(id, _)| canonical.get(id) == Some(p))
            .map(|(_, l)| u64::from(l.length))
            .sum();
        if used_bytes == 0 {
            if !orphans.contains(p) {
                rep.unused_packs += 1;
                plan_packs.push(*p);
            }
        } else if (total - used_bytes) * 100 > total * u64::from(opts.repack_threshold_percent) {
            repack.push(*p);
        }
    }
    rep.repacked_packs = repack.len();
    if opts.dry_run {
        rep.planned_bytes = plan_packs
            .iter()
            .chain(repack.iter())
            .map(|p| inv.sizes.get(p).copied().unwrap_or(0))
            .sum();
        return Ok(());
    }

    // copy still-used chunks out of packs to repack (each chunk once)
    if !repack.is_empty() {
        let empty = ChunkIndex::temporary(ChunkIndex::SPILL)?;
        let mut w = ChunkWriter::new(repo, &empty);
        let mut copied = HashSet::new();
        progress.start("prune: repacking", 0);
        for p in &repack {
            for (id, loc) in &inv.packs[p] {
                if canonical.get(id) == Some(p) && copied.insert(*id) {
                    let data = repo.read_chunk_at(id, loc)?;
                    w.write(vec![Piece::Data(data)])?;
                    rep.repacked_chunks += 1;
                }
            }
            plan_packs.push(*p);
        }
        w.finish()?;
    }

    // index files naming a planned pack go too; their other entries are rewritten first
    let planned: HashSet<Id> = plan_packs.iter().copied().collect();
    let mut plan_files = Vec::new();
    for (f, named) in &inv.files {
        if named.iter().any(|p| planned.contains(p)) {
            plan_files.push(f.clone());
            for p in named.iter().filter(|p| !planned.contains(*p)) {
                if let Some(e) = inv.packs.get(p) {
                    reindex.extend(e.iter().copied());
                }
            }
        }
    }
    reindex.sort_by_key(|a| (a.1.pack, a.0));
    reindex.dedup_by(|a, b| a.0 == b.0 && a.1.pack == b.1.pack);
    for part in reindex.chunks(64 * 1024) {
        repo.backend().create(
            FileKind::Index,
            &Id::random().to_hex(),
            &index::encode(repo.keys(), part),
        )?;
    }
    rep.planned_bytes = plan_packs
        .iter()
        .map(|p| inv.sizes.get(p).copied().unwrap_or(0))
        .sum();
    if !plan_packs.is_empty() || !plan_files.is_empty() {
        let plan = Plan {
            created: chrono::Utc::now(),
            packs: plan_packs,
            index_files: plan_files,
        };
        let json = serde_json::to_vec(&plan).expect("plan serializes");
        repo.backend().create(
            FileKind::PrunePlan,
            &Id::random().to_hex(),
            &repo.keys().seal(aad::PRUNE_PLAN, &json),
        )?;
    }

    Ok(())
}

/// Execute every plan under `prune/`, one at a time, each only while no backup runs.
fn execute_plans(
    repo: &Repository,
    used: &mut HashSet<Id>,
    seen: &mut HashSet<Id>,
    rep: &mut PruneReport,
) -> Result<()> {
    let backend = repo.backend();
    let plans = backend.list(FileKind::PrunePlan)?;
    for (i, f) in plans.iter().enumerate() {
        // live backups first, then the manifests: a backup saves its manifest before it
        // removes its presence file, so one that ended in between is seen as a manifest
        if !live_backups(backend.as_ref())?.is_empty() {
            rep.deferred_plans += plans.len() - i;
            rep.notes
                .push("a backup is running: deletion is deferred to the next prune".into());
            return Ok(());
        }
        account_new(repo, used, seen)?;
        if !execute_plan(repo, &f.name, used, seen, rep)? {
            rep.deferred_plans += plans.len() - i;
            return Ok(());
        }
    }
    Ok(())
}

/// Add the chunks of every restore point committed since phase 1 read them to `used`.
fn account_new(repo: &Repository, used: &mut HashSet<Id>, seen: &mut HashSet<Id>) -> Result<()> {
    let new = new_manifests(repo, seen)?;
    if new.is_empty() {
        return Ok(());
    }
    // the plan's index files still exist, so every chunk a new restore point uses is found
    let (index, _) = repo.load_index()?;
    for id in new {
        let snap = repo
            .load_restore_point(&id)
            .map_err(|e| unreadable(&id, &e))?;
        account(repo, &index, &snap, used)?;
        seen.insert(id);
    }
    Ok(())
}

/// Restore points not in `seen`.
fn new_manifests(repo: &Repository, seen: &HashSet<Id>) -> Result<Vec<Id>> {
    Ok(repo
        .backend()
        .list(FileKind::RestorePoint)?
        .into_iter()
        .filter_map(|f| Id::parse(&f.name).ok())
        .filter(|id| !seen.contains(id))
        .collect())
}

fn read_plan(repo: &Repository, name: &str) -> Result<Plan> {
    let sealed = repo.backend().read(FileKind::PrunePlan, name)?;
    let plain = repo
        .keys()
        .open(aad::PRUNE_PLAN, &sealed, &format!("prune plan {name}"))?;
    serde_json::from_slice(&plain)
        .map_err(|e| Error::new(ErrorKind::Corrupt, format!("prune plan {name}: {e}")))
}

/// The plan's packs sorted out: those to delete, and the entries of those a restore
/// point still needs (to re-index). Packs a surviving index names are neither.
fn sort_out(plan: &Plan, inv: &Inventory, used: &HashSet<Id>) -> (Vec<Id>, Vec<(Id, Location)>) {
    let doomed_files: HashSet<&String> = plan.index_files.iter().collect();
    let planned: HashSet<Id> = plan.packs.iter().copied().collect();
    // where each used chunk can be found outside the plan
    let mut available: HashSet<Id> = HashSet::new();
    for (file, named) in &inv.files {
        if doomed_files.contains(file) {
            continue;
        }
        for p in named.iter().filter(|p| !planned.contains(*p)) {
            available.extend(inv.packs.get(p).into_iter().flatten().map(|(id, _)| *id));
        }
    }
    let mut delete = Vec::new();
    let mut rescue = Vec::new();
    for p in &plan.packs {
        let named_elsewhere = inv
            .files
            .iter()
            .any(|(file, named)| !doomed_files.contains(file) && named.contains(p));
        let entries = inv.packs.get(p).cloned().unwrap_or_default();
        let needed = entries
            .iter()
            .any(|(id, _)| used.contains(id) && !available.contains(id));
        if named_elsewhere {
            continue;
        } else if needed {
            rescue.extend(entries);
        } else {
            delete.push(*p);
        }
    }
    (delete, rescue)
}

fn write_index(repo: &Repository, entries: &[(Id, Location)]) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    Ok(repo.backend().create(
        FileKind::Index,
        &Id::random().to_hex(),
        &index::encode(repo.keys(), entries),
    )?)
}

/// Execute one plan; false when it was deferred (its packs re-indexed and kept).
fn execute_plan(
    repo: &Repository,
    name: &str,
    used: &HashSet<Id>,
    seen: &HashSet<Id>,
    rep: &mut PruneReport,
) -> Result<bool> {
    let backend = repo.backend();
    let plan = read_plan(repo, name)?;
    let inv = inventory(repo)?;
    let (delete, rescue) = sort_out(&plan, &inv, used);
    if !rescue.is_empty() {
        write_index(repo, &rescue)?;
        rep.notes
            .push("some planned packs are used by a newer restore point and were kept".into());
    }
    for file in &plan.index_files {
        backend.remove(FileKind::Index, file)?;
        rep.deleted_index_files += 1;
    }
    // a backup that loaded the index before the deletion above is either still running
    // or has saved a manifest that phase 1 and `account_new` did not see
    let running = !live_backups(backend.as_ref())?.is_empty();
    if running || !new_manifests(repo, seen)?.is_empty() {
        let keep: Vec<(Id, Location)> = delete
            .iter()
            .flat_map(|p| inv.packs.get(p).cloned().unwrap_or_default())
            .collect();
        write_index(repo, &keep)?;
        rep.notes.push(if running {
            "a backup started during prune: pack deletion deferred".into()
        } else {
            "a restore point was saved during prune: pack deletion deferred".into()
        });
        return Ok(false);
    }
    for p in &delete {
        rep.freed_bytes += inv.sizes.get(p).copied().unwrap_or(0);
        backend.remove(FileKind::Pack, &p.to_hex())?;
        rep.deleted_packs += 1;
    }
    backend.remove(FileKind::PrunePlan, name)?;
    Ok(true)
}

#[cfg(test)]
mod tests;
