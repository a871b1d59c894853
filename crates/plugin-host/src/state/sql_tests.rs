//! Tests of the `sql` capability's own parts (see `sql.rs`).

use super::*;

#[test]
fn calls_given_up_on_count_until_they_end_and_no_more_than_sixteen_run() {
    // sixteen calls given up on at once (out of time), their threads still held
    let release = Arc::new(AtomicBool::new(false));
    let budget = Budget::new(Duration::from_secs(60), Default::default());
    let held = |release: Arc<AtomicBool>| {
        move |_| async move {
            while !release.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(())
        }
    };
    let not_connected = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..THREADS_MAX)
        .map(|_| {
            let (release, not_connected) = (release.clone(), not_connected.clone());
            let budget = Budget::new(Duration::from_secs(60), Default::default());
            std::thread::spawn(move || {
                apart(
                    &budget,
                    Duration::from_millis(300),
                    &not_connected,
                    held(release),
                )
            })
        })
        .collect();
    for h in handles {
        let e = h.join().unwrap().unwrap_err();
        assert!(e.message.contains("did not finish"), "{}", e.message);
    }
    // the seventeenth is refused while they end, and runs once they have
    let e = apart(&budget, Duration::from_secs(5), &not_connected, |_| async {
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(
        e.code,
        crate::bindings::wit::ErrorCode::Unavailable
    ));
    assert!(
        e.message.contains("16 SQL calls are still ending"),
        "{}",
        e.message
    );
    release.store(true, Ordering::SeqCst);
    let t = std::time::Instant::now();
    while THREADS.load(Ordering::SeqCst) > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the threads did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    apart(&budget, Duration::from_secs(5), &not_connected, |_| async {
        Ok(())
    })
    .unwrap();
}

#[test]
fn numerics_are_exact() {
    assert_eq!(
        decimal(Numeric::new_with_scale(17126658000000314200037, 0)),
        "17126658000000314200037"
    );
    assert_eq!(decimal(Numeric::new_with_scale(-1205, 2)), "-12.05");
    assert_eq!(decimal(Numeric::new_with_scale(5, 3)), "0.005");
}

#[test]
fn moments_read_as_sql_server_shows_them() {
    // 2026-11-30 is day 46,354 after 1900-01-01; 14:37:15.5 is 15,790,650 300ths,
    // and 119 300ths is .397 as SQL Server shows it (not .396)
    let dt = |f| {
        text(ColumnData::DateTime(Some(tiberius::time::DateTime::new(
            46_354, f,
        ))))
    };
    assert_eq!(dt(15_790_650).as_deref(), Some("2026-11-30T14:37:15.500"));
    assert_eq!(dt(119).as_deref(), Some("2026-11-30T00:00:00.397"));
    assert_eq!(dt(1).as_deref(), Some("2026-11-30T00:00:00.003"));
    // a hostile server's day count does not panic the host
    let far = text(ColumnData::DateTime(Some(tiberius::time::DateTime::new(
        i32::MAX,
        0,
    ))));
    assert!(far.is_some());
    let far = text(ColumnData::DateTime(Some(tiberius::time::DateTime::new(
        i32::MIN,
        0,
    ))));
    assert!(far.is_some());
    let t = Time::new(526_355_123_456, 7);
    assert_eq!(time(t).1, ".5123456");
    let d2 = DateTime2::new(Date::new(739_585), Time::new(52_635, 0));
    assert_eq!(datetime2(d2), "2025-12-01T14:37:15");
}
