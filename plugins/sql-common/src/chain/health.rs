//! Health checks over a whole backup history: what loses, or will lose,
//! restorable moments, worded for a DBA.

use super::walk::Logs;
use super::{Backup, BackupRef, Kind, Lsn, fmt_time};
use std::collections::HashSet;

/// Something in the history that loses restorable moments or will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No log backup covers LSNs `from..to`: the chain stops at `before`, and
    /// `after` is the next log backup.
    #[allow(missing_docs)]
    LogGap {
        before: BackupRef,
        after: BackupRef,
        from: Lsn,
        to: Lsn,
    },
    /// The recovery fork changed (a restore or revert) between `before` and
    /// `after`, from fork `from` to fork `to`.
    #[allow(missing_docs)]
    ForkChange {
        before: BackupRef,
        after: BackupRef,
        from: String,
        to: String,
    },
    /// A differential whose full backup (checkpoint LSN `base`) is not in the history.
    #[allow(missing_docs)]
    DiffWithoutFull { diff: BackupRef, base: Lsn },
    /// A non-copy-only `full` taken by someone else after `our_latest` full: it
    /// is the base of our next differentials (`affected`: ours already on it).
    #[allow(missing_docs)]
    ForeignFull {
        full: BackupRef,
        our_latest: Option<BackupRef>,
        affected: Vec<BackupRef>,
    },
    /// `count` non-copy-only log backups taken by someone else inside our
    /// chain, the `first` and `last` of them by time.
    #[allow(missing_docs)]
    ForeignLogs {
        first: BackupRef,
        last: BackupRef,
        count: usize,
    },
}

impl Problem {
    fn when(&self) -> i64 {
        match self {
            Problem::LogGap { after: b, .. }
            | Problem::ForkChange { after: b, .. }
            | Problem::DiffWithoutFull { diff: b, .. }
            | Problem::ForeignFull { full: b, .. }
            | Problem::ForeignLogs { first: b, .. } => b.finish,
        }
    }

    /// The assessment rule that reports it.
    pub fn rule(&self) -> &'static str {
        match self {
            Problem::LogGap { .. } => "sql.log-gap",
            Problem::ForkChange { .. } => "sql.fork",
            Problem::DiffWithoutFull { .. } => "sql.diff-without-full",
            Problem::ForeignFull { .. } => "sql.foreign-full",
            Problem::ForeignLogs { .. } => "sql.foreign-logs",
        }
    }

    /// What happened, what it costs, and what to do, for a DBA.
    pub fn describe(&self) -> String {
        match self {
            Problem::LogGap {
                before,
                after,
                from,
                to,
            } => format!(
                "The log chain is broken between {before} and {after}: no log backup covers LSN \
                 {from} to {to}. Moments between {} and {} cannot be restored, and later ones \
                 only from a full backup taken after the break. Take a full backup now; then find \
                 the missing log backup or what broke the chain (a switch to SIMPLE recovery, or \
                 a log backup deleted from history).",
                fmt_time(before.finish),
                fmt_time(after.finish)
            ),
            Problem::ForkChange {
                before,
                after,
                from,
                to,
            } => format!(
                "The database changed recovery fork between {before} and {after} (fork {from} \
                 to {to}), usually because it was restored or reverted. Backups from before the \
                 change cannot be combined with log backups after it. Take a full backup now so \
                 that moments after {} can be restored.",
                fmt_time(after.finish)
            ),
            Problem::DiffWithoutFull { diff, base } => format!(
                "{diff} is based on the full backup with checkpoint LSN {base}, which is not in \
                 the backup history, so it cannot be restored. Take a full backup; if another \
                 tool took that full, find its file and have that tool use COPY_ONLY."
            ),
            Problem::ForeignFull {
                full,
                our_latest,
                affected,
            } => {
                let ours = match our_latest {
                    Some(o) => format!("after Rehydra's latest full, {o}"),
                    None => "and Rehydra holds no full backup".to_string(),
                };
                let hit = if affected.is_empty() {
                    "Rehydra's next differential backups will".to_string()
                } else {
                    let list: Vec<String> = affected.iter().map(|a| a.to_string()).collect();
                    format!(
                        "Rehydra's {} already do and its next ones will",
                        list.join(", ")
                    )
                };
                format!(
                    "{full} was taken outside Rehydra without COPY_ONLY, {ours}. SQL Server bases \
                     every later differential on it, so {hit} need that file to restore. Take a \
                     full backup with Rehydra now, and ask whoever took {} to use COPY_ONLY.",
                    full.id
                )
            }
            Problem::ForeignLogs { first, last, count } => format!(
                "{count} log backup(s) were taken outside Rehydra, from {first} to {last}. Each \
                 one empties the transaction log, so Rehydra's own backups cannot restore to any \
                 moment after {} without those files. Stop those log backups or make them \
                 COPY_ONLY, then take a full backup with Rehydra.",
                fmt_time(first.finish)
            ),
        }
    }
}

/// Everything in the whole history (ours and others') that loses restorable
/// moments, in order of time.
pub fn problems(history: &[Backup]) -> Vec<Problem> {
    let h = history;
    let r = |i| BackupRef::new(h, i);
    let mut out = Vec::new();

    // Gaps: walk from every full; where a walk stops while later logs of its
    // fork exist, the chain is broken, if it was live (a log before the stop)
    // or nothing later re-anchors the logs after it (no full at or past them).
    let mut logs = Logs::new(h, |_| true);
    let mut gaps: Vec<(usize, usize, Lsn, Lsn)> = Vec::new();
    for f in (0..h.len()).filter(|&f| h[f].kind == Kind::Full) {
        let c = logs.chain(f, None).tail;
        let fork = h[f].chain_fork();
        let on = |b: &Backup| b.kind == Kind::Log && b.on_fork(fork);
        let next = (0..h.len())
            .filter(|&i| on(&h[i]) && h[i].last_lsn > c.stuck)
            .min_by_key(|&i| (h[i].first_lsn, h[i].finish, i));
        let Some(next) = next else { continue };
        let to = h[next].first_lsn;
        let live = h
            .iter()
            .any(|b| on(b) && !b.is_empty_log() && b.last_lsn <= c.stuck);
        let anchored = h
            .iter()
            .any(|b| b.kind == Kind::Full && b.on_fork(fork) && b.last_lsn >= to);
        if !live && anchored {
            continue;
        }
        match gaps.iter_mut().find(|g| g.1 == next) {
            Some(g) if g.2 <= c.stuck => {}
            Some(g) => *g = (c.end_at, next, c.stuck, to),
            None => gaps.push((c.end_at, next, c.stuck, to)),
        }
    }
    for (before, after, from, to) in gaps {
        out.push(Problem::LogGap {
            before: r(before),
            after: r(after),
            from,
            to,
        });
    }

    // Fork changes, in order of time.
    let mut timed: Vec<usize> = (0..h.len())
        .filter(|&i| h[i].chain_fork().is_some())
        .collect();
    timed.sort_by_key(|&i| (h[i].finish, i));
    for w in timed.windows(2) {
        if let (Some(a), Some(b)) = (h[w[0]].chain_fork(), h[w[1]].chain_fork())
            && !a.eq_ignore_ascii_case(b)
        {
            out.push(Problem::ForkChange {
                before: r(w[0]),
                after: r(w[1]),
                from: a.into(),
                to: b.into(),
            });
        }
    }

    // Differentials whose full is missing.
    let real_full = |b: &Backup| b.kind == Kind::Full && !b.copy_only;
    let bases: HashSet<Lsn> = h
        .iter()
        .filter(|b| real_full(b))
        .map(|b| b.checkpoint_lsn)
        .collect();
    for (d, diff) in h.iter().enumerate().filter(|(_, b)| b.kind == Kind::Diff) {
        if !bases.contains(&diff.database_backup_lsn) {
            out.push(Problem::DiffWithoutFull {
                diff: r(d),
                base: diff.database_backup_lsn,
            });
        }
    }

    // Foreign fulls after our latest full (when we take backups at all).
    let our_latest = (0..h.len())
        .filter(|&i| h[i].ours && real_full(&h[i]))
        .max_by_key(|&i| (h[i].finish, i));
    if h.iter().any(|b| b.ours) {
        for g in (0..h.len()).filter(|&i| !h[i].ours && real_full(&h[i])) {
            if our_latest.is_some_and(|o| h[o].finish >= h[g].finish) {
                continue;
            }
            let affected = (0..h.len())
                .filter(|&d| {
                    h[d].ours
                        && h[d].kind == Kind::Diff
                        && h[d].database_backup_lsn == h[g].checkpoint_lsn
                })
                .map(r)
                .collect();
            out.push(Problem::ForeignFull {
                full: r(g),
                our_latest: our_latest.map(r),
                affected,
            });
        }
    }

    // Foreign log backups inside our chains (after one of our fulls).
    let our_fulls: Vec<&Backup> = h
        .iter()
        .filter(|b| b.ours && b.kind == Kind::Full)
        .collect();
    let mut foreign: Vec<usize> = (0..h.len())
        .filter(|&i| {
            let l = &h[i];
            let after = |f: &&Backup| f.last_lsn < l.last_lsn && l.on_fork(f.chain_fork());
            let theirs = !l.ours && l.kind == Kind::Log && !l.copy_only && !l.is_empty_log();
            theirs && our_fulls.iter().any(after)
        })
        .collect();
    foreign.sort_by_key(|&i| (h[i].finish, i));
    if let (Some(&first), Some(&last)) = (foreign.first(), foreign.last()) {
        out.push(Problem::ForeignLogs {
            first: r(first),
            last: r(last),
            count: foreign.len(),
        });
    }

    out.sort_by_key(Problem::when);
    out
}
