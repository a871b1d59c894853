//! The fixture playing a hostile plugin: blocking waits, endless denied or granted host
//! calls, huge paths, stream floods, header and port tricks. Each must end at the
//! plugin's limits (the fixture asks for 5 s and 32 MiB) with the host unharmed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::*;
use rehydra_plugin_host::*;

/// Accepts everything and stores nothing.
struct NullEngine;
impl EngineCapability for NullEngine {
    fn ingest(&mut self, item: &str, _source: Ingest) -> Result<ItemSummary, HostError> {
        Ok(ItemSummary {
            name: item.into(),
            kind: ItemKind::Stream,
            size: 0,
            new_bytes: 0,
        })
    }
    fn previous(&mut self) -> Result<Option<RestorePointInfo>, HostError> {
        Ok(None)
    }
    fn read_previous(&mut self, _item: &str, _max: u64) -> Result<Vec<u8>, HostError> {
        Ok(vec![])
    }
    fn items(&mut self) -> Result<Vec<ItemInfo>, HostError> {
        Ok(vec![])
    }
    fn read_item(&mut self, _item: &str, _max: u64) -> Result<Vec<u8>, HostError> {
        Ok(vec![])
    }
    fn find_point(&mut self, _id: &str) -> Result<RestorePointInfo, HostError> {
        Err(HostError::new(ErrorCode::NotFound, "no other point"))
    }
    fn read_point_item(&mut self, _p: &str, _item: &str, _max: u64) -> Result<Vec<u8>, HostError> {
        Err(HostError::new(ErrorCode::NotFound, "no other point"))
    }
    fn restore_item(
        &mut self,
        _item: &str,
        _target: &Path,
        _overwrite: bool,
    ) -> Result<u64, HostError> {
        Ok(0)
    }
}

fn is_timeout(r: &Result<Vec<Asset>, PluginError>) -> bool {
    matches!(r, Err(PluginError::Timeout { secs: 5, .. }))
}

#[test]
fn a_blocking_wasi_sleep_is_stopped_at_the_limit() {
    let h = host(false);
    let p = fixture(&h);
    let t = Instant::now();
    let r = h.discover(
        &p,
        Invocation::new(Grants::default()),
        &props(&[("mode", "sleep"), ("secs", "20")]),
    );
    let took = t.elapsed();
    assert!(
        is_timeout(&r) && took < Duration::from_secs(8),
        "ran {took:?} with a 5 s limit: {r:?}"
    );
    // the host carries on
    assert_eq!(
        h.describe(&p, Invocation::new(Grants::default()))
            .unwrap()
            .id,
        "fixture"
    );
}

#[test]
fn a_blocking_wasi_sleep_is_cancellable() {
    let h = host(false);
    let p = fixture(&h);
    let inv = Invocation::new(Grants::default());
    let cancel = inv.cancel.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        cancel.store(true, Ordering::Relaxed);
    });
    let t = Instant::now();
    let r = h.discover(&p, inv, &props(&[("mode", "sleep"), ("secs", "4")]));
    let took = t.elapsed();
    setter.join().unwrap();
    assert!(
        matches!(
            r,
            Err(PluginError::Failed {
                code: ErrorCode::Cancelled,
                ..
            })
        ) && took < Duration::from_secs(2),
        "cancelled after 0.5 s, ran {took:?}: {r:?}"
    );
}

#[test]
fn endless_denied_calls_are_stopped_and_their_audit_is_capped() {
    let h = host(false);
    let p = fixture(&h);
    let audit = Arc::new(Audit::default());
    let mut inv = Invocation::new(Grants::default());
    inv.events = audit.clone();
    let t = Instant::now();
    let r = h.discover(&p, inv, &props(&[("mode", "deny-loop"), ("secs", "20")]));
    let took = t.elapsed();
    let events = audit.0.lock().unwrap();
    assert!(
        is_timeout(&r) && took < Duration::from_secs(8),
        "ran {took:?} with a 5 s limit, {} audit events: {r:?}",
        events.len()
    );
    assert!(
        events.len() <= 101,
        "{} audit events for one call",
        events.len()
    );
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| !e.allowed && e.capability == "files" && e.target == "/etc/passwd")
    );
    let last = events.last().unwrap();
    assert!(
        !last.allowed
            && last.detail.contains("further denials")
            && last.detail.contains("not recorded"),
        "one summary event closes the call: {last:?}"
    );
}

#[test]
fn time_in_granted_commands_counts_against_the_limit() {
    let h = host(false);
    let p = fixture(&h);
    let t = Instant::now();
    let r = h.discover(
        &p,
        Invocation::new(grants(&["command:sleep"])),
        &props(&[
            ("mode", "command-loop"),
            ("program", "sleep"),
            ("args", "1"),
            ("count", "10"),
        ]),
    );
    let took = t.elapsed();
    assert!(
        is_timeout(&r) && took < Duration::from_secs(7),
        "ran {took:?} with a 5 s limit: {r:?}"
    );
    // one command longer than what is left is killed when the limit is reached
    let t = Instant::now();
    let r = h.discover(
        &p,
        Invocation::new(grants(&["command:sleep"])),
        &props(&[
            ("mode", "command-loop"),
            ("program", "sleep"),
            ("args", "30"),
            ("count", "1"),
        ]),
    );
    let took = t.elapsed();
    assert!(
        is_timeout(&r) && took < Duration::from_secs(7),
        "ran {took:?} with a 5 s limit: {r:?}"
    );
}

#[test]
fn a_command_past_its_own_limit_is_stopped_with_what_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let (r, took, pidfile) = a_command_with_a_child(dir.path(), Some("1"));
    let e = r.unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::Failed,
                ..
            }
        ) && e.to_string().contains("sh timed out after 1 s")
            && took < Duration::from_secs(4),
        "ran {took:?} (the call's own limit is 5 s): {e}"
    );
    assert_gone(&pidfile);
    // within its limit, the answer is run's
    let h = host(false);
    let p = fixture(&h);
    let ok = h
        .discover(
            &p,
            Invocation::new(grants(&["command:echo"])),
            &props(&[
                ("mode", "command"),
                ("program", "echo"),
                ("args", "hi"),
                ("within", "5"),
            ]),
        )
        .unwrap();
    assert_eq!(ok[0].name.trim(), "hi");
}

#[test]
fn huge_paths_are_refused_before_they_are_resolved() {
    let h = host(false);
    let p = fixture(&h);
    let dir = tempfile::tempdir().unwrap();
    for g in [
        Grants::default(),
        grants(&[&format!("files:{}", dir.path().display())]),
    ] {
        let audit = Arc::new(Audit::default());
        let mut inv = Invocation::new(g);
        inv.events = audit.clone();
        let t = Instant::now();
        let r = h.discover(&p, inv, &props(&[("mode", "long-path"), ("len", "200000")]));
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "stat of a 200 kB path took {took:?}: {r:?}"
        );
        let a = r.unwrap();
        assert!(a[0].name.contains("denied"), "{}", a[0].name);
        let events = audit.0.lock().unwrap();
        assert_eq!(events.len(), 1);
        assert!(
            events[0].target.len() <= 1100,
            "audit targets are truncated ({} bytes)",
            events[0].target.len()
        );
    }
    // deep but short paths too
    let deep = format!("{}{}", dir.path().display(), "/a".repeat(300));
    let r = h
        .discover(
            &p,
            Invocation::new(grants(&[&format!("files:{}", dir.path().display())])),
            &props(&[("mode", "read"), ("path", &deep)]),
        )
        .unwrap_err();
    assert!(r.to_string().contains("deep"), "{r}");
}

fn spool(streams: &str, mib: &str) -> Result<Vec<Asset>, PluginError> {
    let h = host(false);
    let p = fixture(&h);
    let mut inv = Invocation::new(grants(&["engine"]));
    inv.engine = Some(Box::new(NullEngine));
    h.discover(
        &p,
        inv,
        &props(&[("mode", "spool"), ("streams", streams), ("mib", mib)]),
    )
}

#[test]
fn pushed_streams_are_capped_per_call() {
    let r = spool("40", "0");
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("streams")),
        "40 streams opened in one call: {r:?}"
    );
    let r = spool("3", "200");
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("spooled")),
        "600 MiB spooled in one call: {r:?}"
    );
    // within the caps
    assert_eq!(spool("2", "8").unwrap()[0].name, (16u64 << 20).to_string());
}

#[test]
fn plugin_may_not_set_the_host_header() {
    let h = host(false);
    let p = fixture(&h);
    let (url, _srv) = server();
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let audit = Arc::new(Audit::default());
    let mut inv = Invocation::new(grants(&[&format!("http:127.0.0.1:{port}")]));
    inv.events = audit.clone();
    let r = h.discover(
        &p,
        inv,
        &props(&[("mode", "http"), ("url", &url), ("header", "Host")]),
    );
    assert!(
        matches!(
            r,
            Err(PluginError::Failed {
                code: ErrorCode::Denied,
                ..
            })
        ),
        "{r:?}"
    );
    let events = audit.0.lock().unwrap();
    assert!(
        events.len() == 1 && !events[0].allowed && events[0].detail.contains("Host"),
        "{events:?}"
    );
}

#[test]
fn a_grant_without_port_allows_only_the_default_port() {
    let h = host(false);
    let p = fixture(&h);
    let (url, srv) = server();
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let r = h.discover(
        &p,
        Invocation::new(grants(&["http:127.0.0.1"])),
        &props(&[("mode", "http"), ("url", &url)]),
    );
    assert!(
        matches!(
            r,
            Err(PluginError::Failed {
                code: ErrorCode::Denied,
                ..
            })
        ),
        "http:127.0.0.1 reached port {port}: {r:?}"
    );
    // with the port granted, it goes through
    let a = h
        .discover(
            &p,
            Invocation::new(grants(&[&format!("http:127.0.0.1:{port}")])),
            &props(&[("mode", "http"), ("url", &url)]),
        )
        .unwrap();
    srv.join().unwrap();
    assert_eq!(a[0].name, "anonymous");
}

/// A command that leaves children behind (a daemon started with `&`): when the call ends,
/// at its time limit or normally, they end with it.
#[test]
fn what_a_command_starts_ends_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (r, took, pidfile) = a_command_with_a_child(dir.path(), None);
    assert!(is_timeout(&r) && took < Duration::from_secs(8), "{r:?}");
    assert_gone(&pidfile);
}

/// Through the fixture, a shell that starts a background child (`sleep 300 &`, its pid
/// written to a file in `dir`) and waits for it, with the command's own limit `within`
/// (seconds) if given: the call's answer, how long it took, and the pid file.
fn a_command_with_a_child(
    dir: &Path,
    within: Option<&str>,
) -> (
    Result<Vec<Asset>, PluginError>,
    Duration,
    std::path::PathBuf,
) {
    let h = host(false);
    let p = fixture(&h);
    let pidfile = dir.join("child.pid");
    let script = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let argv = format!("-c\n{script}");
    let mut settings = vec![
        ("mode", "command"),
        ("program", "sh"),
        ("argv", argv.as_str()),
    ];
    settings.extend(within.map(|w| ("within", w)));
    let t = Instant::now();
    let r = h.discover(
        &p,
        Invocation::new(grants(&["command:sh"])),
        &props(&settings),
    );
    (r, t.elapsed(), pidfile)
}

/// The process whose pid `pidfile` holds (a command's background child) has ended (a
/// zombie waiting for init counts as ended).
fn assert_gone(pidfile: &std::path::Path) {
    let pid = std::fs::read_to_string(pidfile).unwrap().trim().to_string();
    std::thread::sleep(Duration::from_millis(200));
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the background child {pid} outlived its command");
}
