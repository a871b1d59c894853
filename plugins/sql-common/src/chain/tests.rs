//! Unit tests on constructed histories; fixtures and properties in submodules.

use super::*;

mod fixtures;
mod props;

// ---- constructed histories ----

fn b(id: &str, kind: Kind, first: Lsn, last: Lsn, finish: i64) -> Backup {
    Backup {
        id: id.into(),
        kind,
        first_lsn: first,
        last_lsn: last,
        checkpoint_lsn: first,
        database_backup_lsn: 0,
        differential_base_lsn: None,
        fork: Some("a".into()),
        first_fork: Some("a".into()),
        start: finish - 10,
        finish,
        copy_only: false,
        ours: true,
    }
}

fn diff(id: &str, base: Lsn, first: Lsn, last: Lsn, finish: i64) -> Backup {
    Backup {
        database_backup_lsn: base,
        ..b(id, Kind::Diff, first, last, finish)
    }
}

fn names(h: &[Backup], steps: &[usize]) -> Vec<String> {
    steps.iter().map(|&i| h[i].id.clone()).collect()
}

#[test]
fn foreign_full_and_foreign_logs_are_problems_and_limit_our_plans() {
    let foreign = |b: Backup| Backup { ours: false, ..b };
    let h = vec![
        b("F1", Kind::Full, 100, 110, 1000),
        b("L1", Kind::Log, 90, 150, 2000),
        foreign(b("G0", Kind::Full, 50, 60, 500)), // before our full: harmless
        diff("D1", 100, 160, 170, 2500),
        b("L2", Kind::Log, 150, 200, 3000),
        foreign(b("G", Kind::Full, 210, 220, 3500)),
        b("L3", Kind::Log, 200, 250, 4000),
        diff("D2", 210, 260, 270, 4500),
        foreign(b("L4", Kind::Log, 250, 300, 5000)),
        b("L5", Kind::Log, 300, 350, 6000),
        foreign(Backup {
            copy_only: true,
            ..b("C", Kind::Log, 300, 320, 5500)
        }), // harmless
    ];
    let found = problems(&h);
    assert_eq!(found.len(), 2, "{found:?}");
    let Problem::ForeignFull {
        full,
        our_latest,
        affected,
    } = &found[0]
    else {
        panic!("{found:?}")
    };
    assert_eq!(
        (full.id.as_str(), our_latest.as_ref().map(|o| o.id.as_str())),
        ("G", Some("F1"))
    );
    assert_eq!(
        affected.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["D2"]
    );
    assert!(found[0].describe().contains("COPY_ONLY") && found[0].describe().contains("D2"));
    assert!(matches!(&found[1], Problem::ForeignLogs { first, count: 1, .. } if first.id == "L4"));
    // Ours only: F1+D1 and logs up to the foreign log.
    let p = plan(&h, None, true).expect("ours");
    assert_eq!(
        (names(&h, &p.steps), p.reaches),
        (
            vec!["F1", "D1", "L2", "L3"]
                .into_iter()
                .map(String::from)
                .collect(),
            4000
        )
    );
    assert!(
        matches!(plan(&h, Some(5500), true), Err(Unreachable::TooLate { latest, .. }) if latest.id == "L3")
    );
    // Everything: the foreign full and our diff on it.
    assert_eq!(
        names(&h, &plan(&h, None, false).expect("all").steps),
        ["G", "D2", "L4", "L5"]
    );
    assert_eq!(
        plan(&h, Some(4200), false).expect("all"),
        Plan {
            steps: vec![5, 6, 8],
            stop_at: Some(4200),
            reaches: 6000
        }
    );
}

#[test]
fn fork_change_breaks_the_chain() {
    let mut span = b("L2", Kind::Log, 150, 200, 3000);
    span.fork = Some("B".into());
    let on_b = |b: Backup| Backup {
        fork: Some("b".into()),
        first_fork: Some("b".into()),
        ..b
    };
    let h = vec![
        Backup {
            fork: Some("A".into()),
            ..b("F", Kind::Full, 100, 110, 1000)
        }, // GUID case does not matter
        b("L1", Kind::Log, 100, 150, 2000),
        span,
        on_b(b("F2", Kind::Full, 205, 210, 3500)),
        on_b(diff("Db", 100, 215, 220, 3600)), // based on F's checkpoint, but on the new fork
        on_b(b("L3", Kind::Log, 200, 250, 4000)),
    ];
    let found = problems(&h);
    assert!(
        matches!(&found[..], [Problem::ForkChange { before, after, .. }] if before.id == "L1" && after.id == "L2"),
        "{found:?}"
    );
    assert_eq!(
        names(&h, &plan(&h, Some(2000), false).expect("fork a").steps),
        ["F", "L1"]
    );
    assert!(matches!(
        plan(&h, Some(2500), false),
        Err(Unreachable::InGap { .. })
    ));
    assert_eq!(
        names(&h, &plan(&h, None, false).expect("fork b").steps),
        ["F2", "L3"]
    );
    assert_eq!(
        names(&h, &plan(&h, Some(3600), false).expect("fork b").steps),
        ["F2", "L3"]
    );
}

#[test]
fn a_log_chain_starting_after_an_old_full_is_not_a_gap_but_a_lost_log_is() {
    let mut h = vec![
        b("F0", Kind::Full, 10, 20, 500),
        b("F1", Kind::Full, 100, 110, 1000),
        b("L1", Kind::Log, 100, 150, 2000),
    ];
    assert_eq!(problems(&h), vec![]);
    h.remove(1); // nothing re-anchors L1 now: it can never be restored
    assert!(
        matches!(&problems(&h)[..], [Problem::LogGap { before, after, .. }] if before.id == "F0" && after.id == "L1")
    );
}

#[test]
fn a_gap_is_named_from_the_last_restorable_moment() {
    let h = vec![
        b("F", Kind::Full, 100, 110, 1000),
        b("L1", Kind::Log, 100, 150, 2000),
        b("E", Kind::Log, 150, 150, 2500), // idle until 2500
        b("L3", Kind::Log, 160, 200, 4000),
    ];
    let found = problems(&h);
    assert!(
        matches!(&found[..], [Problem::LogGap { before, after, from: 150, to: 160 }] if before.id == "E" && after.id == "L3"),
        "{found:?}"
    );
    assert_eq!(restorable_ranges(&h, false), [(1000, 2500)]);
}

#[test]
fn differentials_need_a_real_full() {
    let co = Backup {
        copy_only: true,
        ..b("CO", Kind::Full, 205, 210, 2500)
    };
    let h = vec![
        b("F1", Kind::Full, 100, 110, 1000),
        b("L1", Kind::Log, 100, 200, 2000),
        co,
        diff("D1", 100, 215, 220, 2800),
        diff("DC", 205, 225, 230, 2900),
        b("L2", Kind::Log, 200, 300, 4000),
    ];
    let found = problems(&h);
    assert!(
        matches!(&found[..], [Problem::DiffWithoutFull { diff, base: 205 }] if diff.id == "DC"),
        "{found:?}"
    );
    // Fewest logs: F1+D1 (2800) beats the later-started copy-only full (2500).
    let p = plan(&h, Some(3000), false).expect("reachable");
    assert_eq!(
        (names(&h, &p.steps), p.stop_at),
        (vec!["F1".to_string(), "D1".into(), "L2".into()], Some(3000))
    );
    assert_eq!(
        names(&h, &plan(&h, Some(2600), false).expect("copy-only").steps),
        ["CO", "L2"]
    );
}

#[test]
fn the_base_with_the_latest_moment_wins_even_against_a_larger_lsn() {
    // A clock or LSN oddity: F2 finished later but ends at a smaller LSN than F1.
    let h = vec![
        b("F1", Kind::Full, 100, 130, 1000),
        b("F2", Kind::Full, 100, 120, 1500),
        b("L", Kind::Log, 100, 200, 3000),
    ];
    assert_eq!(
        names(&h, &plan(&h, Some(2000), false).expect("reachable").steps),
        ["F2", "L"]
    );
}

#[test]
fn of_two_logs_ending_at_the_same_lsn_the_later_one_reaches_further() {
    // Found by the property test: two copy-only logs, nothing logged between them.
    let co = |id, finish| Backup {
        copy_only: true,
        ..b(id, Kind::Log, 100, 124, finish)
    };
    let h = vec![
        b("F", Kind::Full, 100, 112, 4300),
        co("C1", 6800),
        co("C2", 6900),
    ];
    let p = plan(&h, None, false).expect("reachable");
    assert_eq!(
        (names(&h, &p.steps), p.reaches),
        (vec!["F".to_string(), "C2".into()], 6900)
    );
}

#[test]
fn a_clock_going_back_does_not_shorten_the_chain() {
    let h = vec![
        b("F", Kind::Full, 100, 110, 1000),
        b("L1", Kind::Log, 100, 150, 3000),
        b("L2", Kind::Log, 150, 200, 2000), // finished "before" L1
    ];
    assert_eq!(restorable_window(&h, false), Some((1000, 3000)));
    let p = plan(&h, Some(2500), false).expect("inside L1");
    assert_eq!(
        (names(&h, &p.steps), p.stop_at),
        (vec!["F".to_string(), "L1".into()], Some(2500))
    );
}

#[test]
fn simple_recovery_restores_only_to_backup_moments() {
    let h = vec![
        b("F1", Kind::Full, 100, 110, 1000),
        diff("D1", 100, 120, 130, 2000),
        b("F2", Kind::Full, 140, 150, 3000),
        diff("D2", 140, 160, 170, 4000),
    ];
    assert_eq!(problems(&h), vec![]);
    assert_eq!(plan(&h, Some(2000), true).expect("diff").steps, [0, 1]);
    assert_eq!(plan(&h, None, true).expect("latest").steps, [2, 3]);
    let err = plan(&h, Some(2500), true).expect_err("between backups");
    assert_eq!(err.closest(), (Some(2000), Some(3000)));
    assert!(
        matches!(&err, Unreachable::InGap { before, after, .. } if before.id == "D1" && after.id == "F2")
    );
    assert!(
        err.describe().contains("D1") && err.describe().contains("F2"),
        "{}",
        err.describe()
    );
    assert!(matches!(
        plan(&h, Some(500), true),
        Err(Unreachable::TooEarly { .. })
    ));
    assert!(matches!(
        plan(&h, Some(5000), true),
        Err(Unreachable::TooLate { .. })
    ));
    assert_eq!(restorable_window(&h, true), Some((1000, 4000)));
    assert_eq!(
        restorable_ranges(&h, true),
        [(1000, 1000), (2000, 2000), (3000, 3000), (4000, 4000)]
    );
}

#[test]
fn nothing_to_restore() {
    assert_eq!(
        plan(&[], None, false),
        Err(Unreachable::NoFull { only_ours: false })
    );
    assert_eq!(
        (restorable_window(&[], true), problems(&[])),
        (None, vec![])
    );
    let theirs = vec![Backup {
        ours: false,
        ..b("F", Kind::Full, 1, 2, 3)
    }];
    let err = plan(&theirs, Some(3), true).expect_err("not ours");
    assert!(err.describe().contains("held by Rehydra"));
    assert_eq!(
        names(&theirs, &plan(&theirs, Some(3), false).expect("any").steps),
        ["F"]
    );
}

#[test]
fn times_are_formatted_in_utc() {
    assert_eq!(fmt_time(1_500_227_000_000), "2017-07-16 17:43:20 UTC");
    assert_eq!(fmt_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
    assert_eq!(fmt_time(0), "1970-01-01 00:00:00 UTC");
    assert_eq!(fmt_time(-1), "1969-12-31 23:59:59.999 UTC");
    assert!(!fmt_time(i64::MIN).is_empty() && !fmt_time(i64::MAX).is_empty());
}
