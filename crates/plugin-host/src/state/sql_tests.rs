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
fn logins_compare_as_windows_does() {
    assert!(same_login("TEST\\svc-rehydra", "test\\SVC-Rehydra", false));
    assert!(!same_login("OTHER\\svc", "TEST\\svc", false));
    assert!(!same_login("TEST\\svc", "TEST\\svc2", false));
    assert!(
        !same_login("svc", "svc", false),
        "no domain is no Windows login"
    );
    // a realm's full name: only where the ticket was got in that realm
    assert!(!same_login("TEST\\alice", "test.lan\\alice", false));
    assert!(same_login("TEST\\alice", "test.lan\\alice", true));
    assert!(!same_login("TEST\\bob", "test.lan\\alice", true));
    assert!(!same_login("OTHER\\alice", "TEST\\alice", true));
}
