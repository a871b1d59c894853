//! The walking engine: which logs continue a chain, and what each chain reaches.

use super::{Backup, Kind, Lsn};
use std::cmp::Reverse;

fn same_fork(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a.is_none() && b.is_none(),
    }
}

fn diff_applies(full: &Backup, diff: &Backup) -> bool {
    full.kind == Kind::Full
        && !full.copy_only
        && diff.kind == Kind::Diff
        && diff.database_backup_lsn == full.checkpoint_lsn
        && diff.last_lsn >= full.last_lsn
        && diff.finish >= full.finish
        && diff.on_fork(full.chain_fork())
}

/// A base and everything its log chain reaches: the moments `from..=end`.
pub(super) struct Chain {
    pub(super) full: usize,
    pub(super) diff: Option<usize>,
    pub(super) from: i64,
    /// The rest of the walk from the base.
    pub(super) tail: Tail,
}

/// What a walk reaches from some point on: its latest moment `end` (first
/// reached by `end_at`) and the LSN where it stops.
#[derive(Clone, Copy)]
pub(super) struct Tail {
    pub(super) end: i64,
    pub(super) end_at: usize,
    pub(super) stuck: Lsn,
}

impl Tail {
    /// Continues `self` (earlier in the walk) with `later`.
    fn then(self, later: Tail) -> Tail {
        let (end, end_at) = if later.end > self.end {
            (later.end, later.end_at)
        } else {
            (self.end, self.end_at)
        };
        Tail {
            end,
            end_at,
            ..later
        }
    }
}

impl Chain {
    pub(super) fn top(&self) -> usize {
        self.diff.unwrap_or(self.full)
    }
    pub(super) fn covers(&self, t: i64) -> bool {
        self.from <= t && t <= self.tail.end
    }
    pub(super) fn key(
        &self,
        h: &[Backup],
    ) -> (i64, Lsn, bool, Reverse<usize>, Reverse<Option<usize>>) {
        let top = self.top();
        (
            self.from,
            h[top].last_lsn,
            self.diff.is_none(),
            Reverse(self.full),
            Reverse(self.diff),
        )
    }
}

/// The logs a chain on one recovery fork may use: those whose known forks
/// are all that fork.
struct Fork<'a> {
    fork: Option<&'a str>,
    /// Logs with records by (first_lsn, index), and at each position the best
    /// of them so far: largest last_lsn, then latest finish (the same LSN later
    /// means an idle database), then earliest in history.
    logs: Vec<usize>,
    best: Vec<usize>,
    /// Empty logs by (first_lsn, finish, index).
    empty: Vec<usize>,
    /// What the walk reaches after restoring each log (by history index), once known.
    tails: Vec<Option<Tail>>,
}

impl Fork<'_> {
    /// The log to restore when the database is at `lsn`.
    fn next(&self, h: &[Backup], lsn: Lsn) -> Option<usize> {
        let k = self.logs.partition_point(|&l| h[l].first_lsn <= lsn);
        let best = *self.best.get(k.checked_sub(1)?)?;
        (h[best].last_lsn > lsn).then_some(best)
    }
    /// The empty logs starting at `lsn`, by finish.
    fn idle(&self, h: &[Backup], lsn: Lsn) -> &[usize] {
        let lo = self.empty.partition_point(|&e| h[e].first_lsn < lsn);
        let hi = self.empty.partition_point(|&e| h[e].first_lsn <= lsn);
        &self.empty[lo..hi]
    }
    /// What a walk reaches from `lsn`, just after `at` (finished at its moment).
    fn here(&self, h: &[Backup], at: usize, lsn: Lsn) -> Tail {
        // The first of the latest, as a walk meets them.
        let idle = self.idle(h, lsn).iter().rev().max_by_key(|&&e| h[e].finish);
        let end_at = idle
            .copied()
            .filter(|&e| h[e].finish > h[at].finish)
            .unwrap_or(at);
        Tail {
            end: h[end_at].finish,
            end_at,
            stuck: lsn,
        }
    }
    /// What a walk reaches from `lsn` on, after `at`; each log's tail is computed once.
    fn tail(&mut self, h: &[Backup], at: usize, lsn: Lsn) -> Tail {
        let (mut path, mut known, mut now) = (Vec::new(), None, lsn);
        while let Some(l) = self.next(h, now) {
            if let Some(t) = self.tails[l] {
                known = Some(t);
                break;
            }
            path.push(l);
            now = h[l].last_lsn;
        }
        for &l in path.iter().rev() {
            let here = self.here(h, l, h[l].last_lsn);
            let t = known.map_or(here, |k| here.then(k));
            (self.tails[l], known) = (Some(t), Some(t));
        }
        let here = self.here(h, at, lsn);
        known.map_or(here, |k| here.then(k))
    }
}

/// A stretch of a chain: `at` covers the moments (previous `to`, `to`].
struct Seg {
    at: usize,
    /// Restored (a log with records), or only proof of an idle database.
    step: bool,
    to: i64,
}

/// The usable logs of a history, per recovery fork of its fulls.
pub(super) struct Logs<'a> {
    h: &'a [Backup],
    forks: Vec<Fork<'a>>,
}

impl<'a> Logs<'a> {
    pub(super) fn new(h: &'a [Backup], usable: impl Fn(&Backup) -> bool) -> Self {
        let mut forks: Vec<Fork<'a>> = Vec::new();
        for fork in h
            .iter()
            .filter(|b| b.kind == Kind::Full)
            .map(Backup::chain_fork)
        {
            if forks.iter().any(|f| same_fork(f.fork, fork)) {
                continue;
            }
            let on = |i: &usize| h[*i].kind == Kind::Log && usable(&h[*i]) && h[*i].on_fork(fork);
            let (mut empty, mut logs): (Vec<usize>, Vec<usize>) =
                (0..h.len()).filter(on).partition(|&i| h[i].is_empty_log());
            logs.sort_by_key(|&i| (h[i].first_lsn, i));
            empty.sort_by_key(|&i| (h[i].first_lsn, h[i].finish, i));
            let rank = |i: usize| (h[i].last_lsn, h[i].finish, Reverse(i));
            let best = logs
                .iter()
                .scan(None, |b: &mut Option<usize>, &l| {
                    *b = Some(b.filter(|&b| rank(b) > rank(l)).unwrap_or(l));
                    *b
                })
                .collect();
            let tails = vec![None; h.len()];
            forks.push(Fork {
                fork,
                logs,
                best,
                empty,
                tails,
            });
        }
        Logs { h, forks }
    }

    fn fork(&self, full: usize) -> Option<usize> {
        let fork = self.h[full].chain_fork();
        self.forks.iter().position(|f| same_fork(f.fork, fork))
    }

    /// The chain from a full, or a full and a differential on it.
    pub(super) fn chain(&mut self, full: usize, diff: Option<usize>) -> Chain {
        let h = self.h;
        let top = diff.unwrap_or(full);
        let tail = match self.fork(full) {
            Some(f) => self.forks[f].tail(h, top, h[top].last_lsn),
            None => Tail {
                end: h[top].finish,
                end_at: top,
                stuck: h[top].last_lsn,
            },
        };
        Chain {
            full,
            diff,
            from: h[top].finish,
            tail,
        }
    }

    /// Walks `c`'s chain, showing each stretch to `visit` until it returns false.
    fn walk(&self, c: &Chain, mut visit: impl FnMut(&Seg) -> bool) {
        let (h, top) = (self.h, c.top());
        let Some(fork) = self.fork(c.full).map(|f| &self.forks[f]) else {
            return;
        };
        let (mut lsn, mut reach) = (h[top].last_lsn, h[top].finish);
        loop {
            for &e in fork.idle(h, lsn) {
                if h[e].finish > reach {
                    reach = h[e].finish;
                    if !visit(&Seg {
                        at: e,
                        step: false,
                        to: reach,
                    }) {
                        return;
                    }
                }
            }
            let Some(l) = fork.next(h, lsn) else { return };
            (lsn, reach) = (h[l].last_lsn, reach.max(h[l].finish));
            if !visit(&Seg {
                at: l,
                step: true,
                to: reach,
            }) {
                return;
            }
        }
    }

    /// The steps restoring `c`'s chain to `t` (which it covers), and the STOPAT.
    pub(super) fn steps_to(&self, c: &Chain, t: i64) -> (Vec<usize>, Option<i64>) {
        let mut steps: Vec<usize> = std::iter::once(c.full).chain(c.diff).collect();
        let mut stop = None;
        if t > c.from {
            self.walk(c, |seg| {
                if seg.step {
                    steps.push(seg.at);
                }
                if seg.to >= t {
                    stop = (seg.step && t < seg.to).then_some(t);
                }
                seg.to < t
            });
        }
        (steps, stop)
    }
}

pub(super) fn chains(h: &[Backup], only_ours: bool) -> (Logs<'_>, Vec<Chain>) {
    let usable = |b: &Backup| !only_ours || b.ours;
    let mut logs = Logs::new(h, usable);
    let mut out = Vec::new();
    for (f, full) in h
        .iter()
        .enumerate()
        .filter(|(_, b)| b.kind == Kind::Full && usable(b))
    {
        out.push(logs.chain(f, None));
        for (d, _) in h
            .iter()
            .enumerate()
            .filter(|(_, d)| usable(d) && diff_applies(full, d))
        {
            out.push(logs.chain(f, Some(d)));
        }
    }
    (logs, out)
}
