//! Property tests: `plan` against a brute-force reference that tries every base
//! and every path of logs, and every plan against an independent simulator.

use super::super::*;
use proptest::prelude::*;
use std::cmp::Reverse;

// ---- generator: the timeline of one database ----

#[derive(Debug, Clone)]
enum Ev {
    Work(u8),
    Idle(u8),
    Full { copy: bool },
    Diff,
    Log { drop: bool, copy: bool },
    Fork(u8),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        5 => (1u8..40).prop_map(Ev::Work),
        1 => (1u8..40).prop_map(Ev::Idle),
        1 => (0u8..4).prop_map(|c| Ev::Full { copy: c == 0 }),
        1 => Just(Ev::Diff),
        7 => (0u8..12, 0u8..7).prop_map(|(d, c)| Ev::Log { drop: d == 0, copy: c == 0 }),
        1 => (0u8..4).prop_map(|n| Ev::Fork(n * 10)),
    ]
}

/// Replays events on a simulated database, recording backups as msdb would.
/// Returns the history and whether a log was dropped or the fork changed.
fn build(events: &[Ev], forks_known: bool, ours: &[bool]) -> (Vec<Backup>, bool) {
    let floor: Lsn = 10u128.pow(22); // beyond u64
    let (mut lsn, mut time) = (floor + 1000, 1_500_000_000_000i64);
    let (mut chain_start, mut diff_base) = (None::<Lsn>, None::<Lsn>);
    let (mut fork, mut span_from, mut irregular) = (0u32, None::<u32>, false);
    let name = |n: u32| forks_known.then(|| format!("fork-{n}"));
    let mut h: Vec<Backup> = Vec::new();
    for (k, e) in events.iter().enumerate() {
        let start = time;
        let mut record = |kind: Kind,
                          first: Lsn,
                          last: Lsn,
                          dbl: Lsn,
                          copy: bool,
                          first_fork: u32,
                          time: &mut i64| {
            *time += if k % 5 == 0 { 0 } else { 100 };
            h.push(Backup {
                id: format!("b{k}"),
                kind,
                first_lsn: first,
                last_lsn: last,
                checkpoint_lsn: first,
                database_backup_lsn: dbl,
                differential_base_lsn: None,
                fork: name(fork),
                first_fork: name(first_fork),
                start,
                finish: *time,
                copy_only: copy,
                ours: ours[k % ours.len()],
            });
        };
        match *e {
            Ev::Work(n) => {
                lsn += Lsn::from(n);
                time += if n % 2 == 1 { 1000 * i64::from(n) } else { 0 };
            }
            Ev::Idle(n) => time += 60_000 * i64::from(n),
            Ev::Full { copy } => {
                let first = lsn - Lsn::from(k as u8 % 3);
                lsn += 2;
                record(
                    Kind::Full,
                    first,
                    lsn,
                    diff_base.unwrap_or(0),
                    copy,
                    fork,
                    &mut time,
                );
                if let Some(full) = h.last_mut() {
                    full.checkpoint_lsn = lsn - 2;
                }
                if !copy {
                    diff_base = Some(lsn - 2);
                    chain_start.get_or_insert(first);
                }
            }
            Ev::Diff => {
                if let Some(base) = diff_base {
                    lsn += 2;
                    record(Kind::Diff, lsn - 2, lsn, base, false, fork, &mut time);
                }
            }
            Ev::Log { drop, copy } => {
                if let Some(first) = chain_start {
                    let from_fork = if copy { span_from } else { span_from.take() };
                    record(
                        Kind::Log,
                        first,
                        lsn,
                        diff_base.unwrap_or(0),
                        copy,
                        from_fork.unwrap_or(fork),
                        &mut time,
                    );
                    if !copy {
                        chain_start = Some(lsn);
                    }
                    if drop && h.pop().is_some_and(|l| l.first_lsn != l.last_lsn && !copy) {
                        irregular = true;
                    }
                }
            }
            Ev::Fork(back) => {
                if forks_known && chain_start.is_some() {
                    // Restored to an earlier point and recovered: LSNs rewind, a new fork starts.
                    (span_from, diff_base, irregular) = (Some(fork), None, true);
                    fork += 1;
                    lsn = lsn.saturating_sub(Lsn::from(back)).max(floor);
                    chain_start = Some(lsn);
                    lsn += 1;
                    time += 1000;
                }
            }
        }
    }
    (h, irregular)
}

type Case = (Vec<Backup>, bool, Option<i64>, bool);

/// A history (shuffled, maybe with one backup recorded twice), whether it is
/// irregular, a moment near a backup's start or finish (or None), and only_ours.
fn case() -> impl Strategy<Value = Case> {
    let ours = prop::collection::vec(prop::bool::weighted(0.85), 1..8);
    let dup = prop::option::weighted(0.2, (any::<prop::sample::Index>(), any::<bool>()));
    let shuffle = prop::collection::vec(any::<u64>(), 1..40);
    let pick = (
        any::<prop::sample::Index>(),
        -1i64..=1,
        0u8..8,
        any::<bool>(),
    );
    (
        prop::collection::vec(ev(), 1..36),
        any::<bool>(),
        ours,
        dup,
        shuffle,
        pick,
    )
        .prop_map(
            |(mut events, forks, ours, dup, keys, (at, off, how, only_ours))| {
                events.splice(0..0, [Ev::Work(1), Ev::Full { copy: false }]);
                let (mut h, irregular) = build(&events, forks, &ours);
                if let (Some((i, theirs)), false) = (dup, h.is_empty()) {
                    let mut copy = h[i.index(h.len())].clone();
                    copy.id.push_str("-dup");
                    copy.ours = !theirs;
                    h.push(copy);
                }
                let mut order: Vec<usize> = (0..h.len()).collect();
                order.sort_by_key(|&i| (keys[i % keys.len()], i));
                let h: Vec<Backup> = order.into_iter().map(|i| h[i].clone()).collect();
                let moments: Vec<i64> = h.iter().flat_map(|b| [b.start, b.finish]).collect();
                let t = (how != 0 && !moments.is_empty())
                    .then(|| moments[at.index(moments.len())] + off);
                (h, irregular, t, only_ours)
            },
        )
}

// ---- reference: exhaustive search over bases and log paths ----

fn same_fork(fork: Option<&str>, b: &Backup) -> bool {
    let Some(f) = fork else { return true };
    [&b.first_fork, &b.fork]
        .into_iter()
        .flatten()
        .all(|g| g.to_lowercase() == f.to_lowercase())
}

fn full_fork(f: &Backup) -> Option<&str> {
    f.fork.as_deref().or(f.first_fork.as_deref())
}

/// Moments (lo, hi] reachable by restoring `logs` after a base.
#[derive(Debug)]
struct Way {
    logs: Vec<usize>,
    lo: i64,
    hi: i64,
    ends_with_log: bool,
}

struct Reference<'a> {
    h: &'a [Backup],
    only_ours: bool,
}

impl Reference<'_> {
    fn usable(&self, i: usize) -> bool {
        !self.only_ours || self.h[i].ours
    }

    fn bases(&self) -> Vec<(usize, Option<usize>)> {
        let h = self.h;
        let mut out = Vec::new();
        for f in (0..h.len()).filter(|&f| h[f].kind == Kind::Full && self.usable(f)) {
            out.push((f, None));
            for d in (0..h.len()).filter(|&d| h[d].kind == Kind::Diff && self.usable(d)) {
                let (full, diff) = (&h[f], &h[d]);
                if !full.copy_only
                    && diff.database_backup_lsn == full.checkpoint_lsn
                    && diff.last_lsn >= full.last_lsn
                    && diff.finish >= full.finish
                    && same_fork(full_fork(full), diff)
                {
                    out.push((f, Some(d)));
                }
            }
        }
        out
    }

    fn ways(&self, (f, d): (usize, Option<usize>)) -> Vec<Way> {
        let top = &self.h[d.unwrap_or(f)];
        let mut out = vec![Way {
            logs: vec![],
            lo: top.finish - 1,
            hi: top.finish,
            ends_with_log: false,
        }];
        self.explore(
            full_fork(&self.h[f]),
            top.last_lsn,
            top.finish,
            &mut vec![],
            &mut out,
        );
        out
    }

    fn explore(
        &self,
        fork: Option<&str>,
        lsn: Lsn,
        reach: i64,
        path: &mut Vec<usize>,
        out: &mut Vec<Way>,
    ) {
        for i in (0..self.h.len()).filter(|&i| self.usable(i) && self.h[i].kind == Kind::Log) {
            let l = &self.h[i];
            if !same_fork(fork, l) {
                continue;
            }
            if l.first_lsn == l.last_lsn {
                if l.first_lsn == lsn {
                    out.push(Way {
                        logs: path.clone(),
                        lo: reach,
                        hi: reach.max(l.finish),
                        ends_with_log: false,
                    });
                }
            } else if l.first_lsn <= lsn && lsn < l.last_lsn {
                let hi = reach.max(l.finish);
                path.push(i);
                out.push(Way {
                    logs: path.clone(),
                    lo: reach,
                    hi,
                    ends_with_log: true,
                });
                self.explore(fork, l.last_lsn, hi, path, out);
                path.pop();
            }
        }
    }

    /// The plan by the documented preference: latest base moment, larger LSN,
    /// without diff, earlier in history; then fewest logs; then at each step the
    /// log reaching furthest (LSN, then finish), earlier in history.
    fn plan(&self, stop_at: Option<i64>) -> Result<Plan, (Option<i64>, Option<i64>)> {
        let h = self.h;
        let all: Vec<_> = self
            .bases()
            .into_iter()
            .map(|b| (b, self.ways(b)))
            .collect();
        let Some(latest) = all.iter().flat_map(|(_, ws)| ws.iter().map(|w| w.hi)).max() else {
            return Err((None, None));
        };
        let t = stop_at.unwrap_or(latest);
        type Rank = (
            (i64, Lsn, bool, Reverse<usize>, Reverse<Option<usize>>),
            Reverse<usize>,
            Vec<(Lsn, i64, Reverse<usize>)>,
        );
        let mut best: Option<(Rank, Plan)> = None;
        for ((f, d), ways) in &all {
            let top = &h[d.unwrap_or(*f)];
            let key = (
                top.finish,
                top.last_lsn,
                d.is_none(),
                Reverse(*f),
                Reverse(*d),
            );
            for w in ways.iter().filter(|w| w.lo < t && t <= w.hi) {
                let lex: Vec<_> = w
                    .logs
                    .iter()
                    .map(|&l| (h[l].last_lsn, h[l].finish, Reverse(l)))
                    .collect();
                let rank = (key, Reverse(w.logs.len()), lex);
                if best.as_ref().is_none_or(|(r, ..)| rank > *r) {
                    let steps = [*f]
                        .into_iter()
                        .chain(*d)
                        .chain(w.logs.iter().copied())
                        .collect();
                    let stop = (w.ends_with_log && t < w.hi).then_some(t);
                    let reaches = ways.iter().map(|w| w.hi).max().unwrap_or(top.finish);
                    best = Some((
                        rank,
                        Plan {
                            steps,
                            stop_at: stop,
                            reaches,
                        },
                    ));
                }
            }
        }
        best.map(|(_, p)| p).ok_or_else(|| {
            let his = all.iter().flat_map(|(_, ws)| ws.iter().map(|w| w.hi));
            let starts = all.iter().map(|((f, d), _)| h[d.unwrap_or(*f)].finish);
            (
                his.filter(|&hi| hi < t).max(),
                starts.filter(|&m| m > t).min(),
            )
        })
    }

    fn window(&self) -> Option<(i64, i64)> {
        let bases = self.bases();
        let earliest = bases
            .iter()
            .map(|&(f, d)| self.h[d.unwrap_or(f)].finish)
            .min()?;
        Some((
            earliest,
            bases
                .into_iter()
                .flat_map(|b| self.ways(b))
                .map(|w| w.hi)
                .max()?,
        ))
    }
}

// ---- simulator: is a plan a valid restore sequence that lands on `t`? ----

fn simulate(h: &[Backup], only_ours: bool, p: &Plan, t: i64) -> Result<(), String> {
    let usable = |i: usize| h.get(i).is_some_and(|b| !only_ours || b.ours);
    if !p.steps.iter().all(|&i| usable(i)) {
        return Err("a step is not usable".into());
    }
    let (&f, mut rest) = p.steps.split_first().ok_or("no step")?;
    let full = &h[f];
    if full.kind != Kind::Full {
        return Err("does not start with a full".into());
    }
    let fork = full_fork(full);
    let (mut lsn, mut reach) = (full.last_lsn, full.finish);
    if let Some((&d, tail)) = rest.split_first()
        && h[d].kind == Kind::Diff
    {
        let diff = &h[d];
        if full.copy_only
            || diff.database_backup_lsn != full.checkpoint_lsn
            || !same_fork(fork, diff)
        {
            return Err("differential not based on the full".into());
        }
        if diff.last_lsn < full.last_lsn || diff.finish < full.finish {
            return Err("differential precedes its full".into());
        }
        (lsn, reach, rest) = (diff.last_lsn, diff.finish, tail);
    }
    let mut before_last = reach;
    for &i in rest {
        let l = &h[i];
        if l.kind != Kind::Log || l.first_lsn == l.last_lsn || !same_fork(fork, l) {
            return Err(format!(
                "step {} is not a restorable log of the chain",
                l.id
            ));
        }
        if !(l.first_lsn <= lsn && lsn < l.last_lsn) {
            return Err(format!("log {} does not continue LSN {lsn}", l.id));
        }
        (before_last, reach, lsn) = (reach, reach.max(l.finish), l.last_lsn);
    }
    let ok = match p.stop_at {
        Some(s) => {
            s == t
                && !rest.is_empty()
                && before_last < s
                && rest.last().is_some_and(|&l| s < h[l].finish)
        }
        None => {
            let idle = |b: &Backup| {
                b.kind == Kind::Log
                    && b.first_lsn == lsn
                    && b.last_lsn == lsn
                    && same_fork(fork, b)
                    && b.finish >= t
            };
            t >= reach && (t == reach || (0..h.len()).any(|i| usable(i) && idle(&h[i])))
        }
    };
    if !ok || p.reaches < t {
        return Err(format!("does not land on {t}: {p:?}"));
    }
    Ok(())
}

// ---- hostile input ----

fn hostile() -> impl Strategy<Value = Vec<Backup>> {
    let lsn = || prop_oneof![0u128..6, Just(u128::MAX), Just(u128::MAX - 1)];
    let time = || prop_oneof![-3i64..3, Just(i64::MIN), Just(i64::MAX)];
    let fork = || prop::option::of(prop::sample::select(vec!["a", "A", "b"]));
    let one = (
        0u8..3,
        (lsn(), lsn(), lsn(), lsn()),
        (time(), time()),
        (fork(), fork()),
        any::<(bool, bool)>(),
        0u8..3,
    );
    prop::collection::vec(one, 0..12).prop_map(|rows| {
        rows.into_iter()
            .map(
                |(
                    k,
                    (first, last, ckpt, dbl),
                    (start, finish),
                    (ff, lf),
                    (copy_only, ours),
                    id,
                )| Backup {
                    id: format!("x{id}"),
                    kind: [Kind::Full, Kind::Diff, Kind::Log][usize::from(k)],
                    first_lsn: first,
                    last_lsn: last,
                    checkpoint_lsn: ckpt,
                    database_backup_lsn: dbl,
                    differential_base_lsn: None,
                    fork: lf.map(String::from),
                    first_fork: ff.map(String::from),
                    start,
                    finish,
                    copy_only,
                    ours,
                },
            )
            .collect()
    })
}

/// `plan`, the window and the ranges agree with the reference; plans simulate.
fn check(h: &[Backup], t: Option<i64>, only_ours: bool) -> Result<(), TestCaseError> {
    let reference = Reference { h, only_ours };
    let reachable = |at: i64| {
        restorable_ranges(h, only_ours)
            .iter()
            .any(|&(lo, hi)| lo <= at && at <= hi)
    };
    match (plan(h, t, only_ours), reference.plan(t)) {
        (Ok(p), Ok(want)) => {
            prop_assert_eq!(&p, &want);
            let at = t.unwrap_or(p.reaches);
            simulate(h, only_ours, &p, at).map_err(TestCaseError::fail)?;
            prop_assert!(reachable(at));
        }
        (Err(e), Err(closest)) => {
            prop_assert_eq!(e.closest(), closest);
            prop_assert!(!e.describe().is_empty());
            prop_assert!(t.is_none_or(|at| !reachable(at)));
        }
        (got, want) => prop_assert!(false, "plan {:?} but reference {:?}", got, want),
    }
    prop_assert_eq!(restorable_window(h, only_ours), reference.window());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn plan_matches_the_reference((h, irregular, t, only_ours) in case()) {
        check(&h, t, only_ours)?;
        let found = problems(&h);
        if !irregular {
            prop_assert!(found.iter().all(|p| !matches!(p, Problem::LogGap { .. } | Problem::ForkChange { .. })), "{:?}", found);
        }
    }

    /// Clocks that go back: with one log path (no copy-only logs, no
    /// duplicates), the greedy walk and the search must still agree.
    #[test]
    fn plan_matches_the_reference_with_clock_skew((h, _, t, only_ours) in case(), skew in prop::collection::vec(-3000i64..3000, 1..20)) {
        let h: Vec<Backup> = h
            .into_iter()
            .filter(|b| !(b.id.ends_with("-dup") || b.kind == Kind::Log && b.copy_only))
            .enumerate()
            .map(|(i, b)| Backup { finish: b.finish + skew[i % skew.len()], ..b })
            .collect();
        check(&h, t, only_ours)?;
    }

    #[test]
    fn hostile_input_never_panics_and_plans_stay_valid(h in hostile(), t in prop_oneof![-4i64..4, Just(i64::MIN), Just(i64::MAX)], only_ours: bool) {
        for p in problems(&h) {
            prop_assert!(!p.describe().is_empty());
        }
        let _ = (restorable_window(&h, only_ours), restorable_ranges(&h, only_ours));
        for stop in [Some(t), None] {
            match plan(&h, stop, only_ours) {
                Ok(p) => simulate(&h, only_ours, &p, stop.unwrap_or(p.reaches)).map_err(TestCaseError::fail)?,
                Err(e) => prop_assert!(!e.describe().is_empty()),
            }
        }
    }
}
