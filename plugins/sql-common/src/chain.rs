//! SQL Server backup chains: which backups restore a database to a moment, and
//! what in a backup history endangers that. Pure logic over msdb-like records.
//!
//! Rules, from Microsoft's `backupset` documentation and RESTORE-sequence docs,
//! checked against dbatools' Select-DbaBackupInformation / Test-DbaLsnChain:
//! * LSN ranges are half-open: `last_lsn` is "the log sequence number of the
//!   next log record after the backup set". After a full or differential the
//!   database needs log records from its `last_lsn` on.
//! * A log applies when `first_lsn <= current < last_lsn`; then `current =
//!   last_lsn`. So a log may start before a full (the full sits inside it), and
//!   one that merely ends at `current` is not needed. When several apply, the
//!   one reaching furthest: largest `last_lsn`, then latest finish (the same
//!   LSN later means an idle database), then earliest in history.
//! * A log with `first_lsn == last_lsn` holds no record: it is never restored
//!   and is never a gap. Starting at the current LSN it proves the database
//!   unchanged until it finished, so the chain reaches its finish without it.
//! * A differential D applies to full F iff F is not copy-only,
//!   `D.database_backup_lsn == F.checkpoint_lsn` and D does not precede F.
//!   Copy-only fulls are bases for logs only.
//! * A chain stays on its full's recovery fork: every backup in it whose fork
//!   GUIDs are known must carry that fork (a log spanning a fork breaks it).
//! * Moments: a full or full+differential restores to its own finish; a log
//!   restored after moments up to R covers (R, its finish], reached with STOPAT.
//! * Preference: among bases (full, or full+differential) whose chain reaches
//!   the moment, the one whose own moment is latest, i.e. needs the fewest logs;
//!   ties: larger last LSN, then without differential, then earlier in history.

use std::cmp::Reverse;
use std::fmt;

mod health;
mod walk;
pub use health::{Problem, problems};
use walk::{Chain, chains};

/// A log sequence number: numeric(25,0) in msdb, bigger than u64.
pub type Lsn = u128;

/// The type of a backup (msdb `backupset.type` D, I, L).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A full database backup.
    Full,
    /// A differential database backup.
    Diff,
    /// A transaction log backup.
    Log,
}

/// One backup set, as msdb's `backupset` (or Rehydra's repository) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// backup_set_uuid or our item name.
    pub id: String,
    /// Full, differential or log.
    pub kind: Kind,
    /// The first log record in the backup.
    pub first_lsn: Lsn,
    /// The next log record after the backup (exclusive end).
    pub last_lsn: Lsn,
    /// Where redo starts; for a full, what its differentials name as their base.
    pub checkpoint_lsn: Lsn,
    /// For a diff/log: the checkpoint LSN of the full it is based on.
    pub database_backup_lsn: Lsn,
    /// differential_base_lsn (informational).
    pub differential_base_lsn: Option<Lsn>,
    /// last_recovery_fork_guid (lower-case).
    pub fork: Option<String>,
    /// first_recovery_fork_guid.
    pub first_fork: Option<String>,
    /// When the backup started: Unix milliseconds, UTC.
    pub start: i64,
    /// When the backup finished: Unix milliseconds, UTC.
    pub finish: i64,
    /// Taken WITH COPY_ONLY.
    pub copy_only: bool,
    /// Taken by Rehydra (kept in its repository), else by someone else (msdb only).
    pub ours: bool,
}

impl Backup {
    /// A log backup holding no log record (`first_lsn == last_lsn`).
    pub fn is_empty_log(&self) -> bool {
        self.kind == Kind::Log && self.first_lsn == self.last_lsn
    }
    fn chain_fork(&self) -> Option<&str> {
        self.fork.as_deref().or(self.first_fork.as_deref())
    }
    /// Whether every known fork GUID of this backup is `fork` (any, if unknown).
    fn on_fork(&self, fork: Option<&str>) -> bool {
        let mine = self.first_fork.iter().chain(&self.fork);
        fork.is_none_or(|f| mine.into_iter().all(|g| g.eq_ignore_ascii_case(f)))
    }
}

/// A backup named in a [`Problem`] or [`Unreachable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRef {
    /// Index into the history given.
    pub index: usize,
    /// The backup's id.
    pub id: String,
    /// The backup's type.
    pub kind: Kind,
    /// When it finished (Unix milliseconds, UTC): the moment it stands for.
    pub finish: i64,
}

impl BackupRef {
    fn new(history: &[Backup], index: usize) -> Self {
        let b = &history[index];
        BackupRef {
            index,
            id: b.id.clone(),
            kind: b.kind,
            finish: b.finish,
        }
    }
}

impl fmt::Display for BackupRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Full => "full",
            Kind::Diff => "differential",
            Kind::Log => "log",
        };
        write!(
            f,
            "{kind} backup {} (finished {})",
            self.id,
            fmt_time(self.finish)
        )
    }
}

/// `2017-07-16 17:43:20 UTC` (with `.mmm` when the milliseconds are not 0); the date
/// itself is the SDK's (`time::rfc3339`).
pub fn fmt_time(ms: i64) -> String {
    let secs = rehydra_plugin_sdk::time::rfc3339(ms.div_euclid(1000));
    let milli = ms.rem_euclid(1000);
    let frac = if milli == 0 {
        String::new()
    } else {
        format!(".{milli:03}")
    };
    format!(
        "{}{frac} UTC",
        secs.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// A restore sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Indices into the history, in restore order: full, optional diff, logs.
    pub steps: Vec<usize>,
    /// STOPAT for the last step, which is then a log; `None`: restore every step whole.
    pub stop_at: Option<i64>,
    /// The latest moment the chosen chain can restore to.
    pub reaches: i64,
}

/// Why no chain reaches a moment, with the closest moments that are reachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// No full backup (held by Rehydra, when `only_ours`): nothing to start from.
    #[allow(missing_docs)]
    NoFull { only_ours: bool },
    /// `at` is before the first restorable moment, `earliest.finish`; the
    /// last one is `latest.finish`.
    #[allow(missing_docs)]
    TooEarly {
        at: i64,
        earliest: BackupRef,
        latest: BackupRef,
    },
    /// `at` is after the last restorable moment, `latest.finish`.
    #[allow(missing_docs)]
    TooLate {
        at: i64,
        earliest: BackupRef,
        latest: BackupRef,
    },
    /// `at` is inside a break: `before` ends the chain just before it, `after`
    /// starts the next one.
    #[allow(missing_docs)]
    InGap {
        at: i64,
        before: BackupRef,
        after: BackupRef,
        earliest: BackupRef,
        latest: BackupRef,
    },
}

impl Unreachable {
    /// The closest reachable moments before and after the one asked for.
    pub fn closest(&self) -> (Option<i64>, Option<i64>) {
        match self {
            Unreachable::NoFull { .. } => (None, None),
            Unreachable::TooEarly { earliest, .. } => (None, Some(earliest.finish)),
            Unreachable::TooLate { latest, .. } => (Some(latest.finish), None),
            Unreachable::InGap { before, after, .. } => (Some(before.finish), Some(after.finish)),
        }
    }

    /// Why, and the closest reachable moments, for a DBA.
    pub fn describe(&self) -> String {
        let window = |e: &BackupRef, l: &BackupRef| {
            format!(
                "Restorable moments lie between {} (from {e}) and {} (through {l}).",
                fmt_time(e.finish),
                fmt_time(l.finish)
            )
        };
        match self {
            Unreachable::NoFull { only_ours } => format!(
                "There is no full backup{} of this database, so nothing can be restored. Take a \
                 full backup.",
                if *only_ours { " held by Rehydra" } else { "" }
            ),
            Unreachable::TooEarly {
                at,
                earliest,
                latest,
            } => format!(
                "{} is before the oldest backup that can start a restore. {}",
                fmt_time(*at),
                window(earliest, latest)
            ),
            Unreachable::TooLate {
                at,
                earliest,
                latest,
            } => format!(
                "{} is after the latest restorable moment: the newest chain ends with {latest} \
                 and no later log backup continues it (see the reported problems). {}",
                fmt_time(*at),
                window(earliest, latest)
            ),
            Unreachable::InGap {
                at,
                before,
                after,
                earliest,
                latest,
            } => format!(
                "{} falls in a break of the backup chain. The closest restorable moments are {} \
                 (the chain ending with {before}) and {} (restoring {after}). {} Moments in \
                 between cannot be restored.",
                fmt_time(*at),
                fmt_time(before.finish),
                fmt_time(after.finish),
                window(earliest, latest)
            ),
        }
    }
}

/// The restore sequence reaching `stop_at` (or the latest reachable moment),
/// from backups held by Rehydra only when `only_ours`.
#[allow(clippy::result_large_err)] // once per restore; its BackupRefs name the backups for the DBA
pub fn plan(
    history: &[Backup],
    stop_at: Option<i64>,
    only_ours: bool,
) -> Result<Plan, Unreachable> {
    let (logs, all) = chains(history, only_ours);
    let Some(latest) = all.iter().map(|c| c.tail.end).max() else {
        return Err(Unreachable::NoFull { only_ours });
    };
    let t = stop_at.unwrap_or(latest);
    match all
        .iter()
        .filter(|c| c.covers(t))
        .max_by_key(|c| c.key(history))
    {
        Some(c) => {
            let (steps, stop_at) = logs.steps_to(c, t);
            Ok(Plan {
                steps,
                stop_at,
                reaches: c.tail.end,
            })
        }
        None => Err(unreachable(history, &all, t, only_ours)),
    }
}

fn unreachable(h: &[Backup], all: &[Chain], at: i64, only_ours: bool) -> Unreachable {
    let r = |i| BackupRef::new(h, i);
    let first = all.iter().min_by_key(|c| (c.from, c.top()));
    let last = all
        .iter()
        .max_by_key(|c| (c.tail.end, Reverse(c.tail.end_at)));
    let (Some(first), Some(last)) = (first, last) else {
        return Unreachable::NoFull { only_ours };
    };
    let (earliest, latest) = (r(first.top()), r(last.tail.end_at));
    let before = all
        .iter()
        .filter(|c| c.tail.end < at)
        .max_by_key(|c| (c.tail.end, Reverse(c.tail.end_at)));
    let after = all
        .iter()
        .filter(|c| c.from > at)
        .min_by_key(|c| (c.from, c.top()));
    match (before, after) {
        (Some(b), Some(a)) => Unreachable::InGap {
            at,
            before: r(b.tail.end_at),
            after: r(a.top()),
            earliest,
            latest,
        },
        (None, _) => Unreachable::TooEarly {
            at,
            earliest,
            latest,
        },
        (Some(_), None) => Unreachable::TooLate {
            at,
            earliest,
            latest,
        },
    }
}

/// The earliest and latest moments some chain reaches. Moments in between may
/// be unreachable: see [`restorable_ranges`].
pub fn restorable_window(history: &[Backup], only_ours: bool) -> Option<(i64, i64)> {
    let (_, all) = chains(history, only_ours);
    let from = all.iter().map(|c| c.from).min()?;
    Some((from, all.iter().map(|c| c.tail.end).max()?))
}

/// Every reachable moment, as sorted disjoint inclusive ranges.
pub fn restorable_ranges(history: &[Backup], only_ours: bool) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = chains(history, only_ours)
        .1
        .iter()
        .map(|c| (c.from, c.tail.end))
        .collect();
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (lo, hi) in spans {
        match out.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

#[cfg(test)]
mod tests;
