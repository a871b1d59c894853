use chrono::{TimeZone, Utc};
use rehydra_core::Id;
use rehydra_core::{PluginRef, RestorePoint, Summary};
use rehydra_core::retention::{KeepPolicy, apply};

fn snap(t: chrono::DateTime<Utc>, asset: &str) -> (Id, RestorePoint) {
    (
        Id::random(),
        RestorePoint {
            version: 1,
            id: None,
            time: t,
            workload: "files".into(),
            asset: asset.into(),
            plugin: PluginRef {
                id: "builtin".into(),
                version: "0".into(),
            },
            consistency: "crash".into(),
            hostname: "h".into(),
            items: vec![],
            parent: None,
            tags: vec![],
            summary: Summary::default(),
            copied_from: None,
        },
    )
}

#[test]
fn gfs_daily_weekly_monthly() {
    // one restore point every 6 hours for 120 days
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let snaps: Vec<_> = (0..480)
        .map(|i| snap(start + chrono::Duration::hours(6 * i), "a"))
        .collect();
    let now = start + chrono::Duration::days(120);
    let p = KeepPolicy {
        last: 2,
        daily: 7,
        weekly: 4,
        monthly: 3,
        ..Default::default()
    };
    let d = apply(&snaps, &p, now);
    let kept: Vec<_> = d.iter().filter(|x| x.keep).collect();
    // 2 last (both on the newest day, one also daily) + 7 daily (some overlap) + 4 weekly + 3 monthly, with overlaps
    assert!(kept.len() >= 10 && kept.len() <= 16, "kept {}", kept.len());
    assert!(
        kept.iter()
            .any(|x| x.reasons.contains(&"monthly".to_string())
                && x.time < start + chrono::Duration::days(70))
    );
    let newest = d.iter().max_by_key(|x| x.time).unwrap();
    assert!(newest.keep && newest.reasons.contains(&"last".to_string()));
}

#[test]
fn groups_are_independent_and_within_works() {
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    let mut snaps = Vec::new();
    for h in 0..10 {
        snaps.push(snap(now - chrono::Duration::hours(h * 10), "a"));
        snaps.push(snap(now - chrono::Duration::hours(h * 10), "b"));
    }
    let d = apply(
        &snaps,
        &KeepPolicy {
            last: 1,
            within: Some(chrono::Duration::hours(25)),
            ..Default::default()
        },
        now,
    );
    for g in ["files/a", "files/b"] {
        let kept = d.iter().filter(|x| x.group == g && x.keep).count();
        assert_eq!(kept, 3, "0h, 10h, 20h are within 25h");
    }
}
