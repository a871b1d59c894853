//! Locks and presence files under `locks/`.
//!
//! Backups never wait for or block each other: each writes a *presence* file while it
//! runs (so prune knows not to delete packs it may be using). So does every other long
//! operation that reads packs (copy, check, NBD serving, restores through the API). Prune
//! takes the one *exclusive* lock.
//!
//! A held [`Lock`] keeps itself fresh: a background thread rewrites it every
//! [`REFRESH_EVERY`] (a new file, then the old one removed: backends never overwrite) for
//! as long as the holder lives, whatever the holder is busy with; dropping the lock stops
//! and joins that thread and removes the file. No caller refreshes by hand.
//!
//! A lock is *stale* ([`LockInfo::is_stale_at`]) when:
//! - it was written on this host and its process is gone. The process is named by its pid
//!   *and* its start time (seconds since the Unix epoch as the OS reports it, read with the
//!   `sysinfo` crate on Linux, Windows and macOS), so a pid reused by another process does
//!   not keep a dead holder's lock alive. A process of this host that is alive is never
//!   stale, whatever the lock's age (a machine that slept for hours, a clock moved forward).
//!   Where the OS cannot tell (an unsupported platform), age decides;
//! - it was written on another host and not refreshed for [`STALE_AFTER`].
//!
//! Stale locks are ignored and removed by the next prune.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, FileKind};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// A lock from another host not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// Holders refresh their lock this often (from a background thread).
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// Kind of lock.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// A running backup or other long reader of packs (shared; blocks nobody).
    Backup,
    /// Prune (exclusive).
    Prune,
}

/// Contents of a lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LockInfo {
    /// Kind.
    pub kind: LockKind,
    /// Host.
    pub hostname: String,
    /// Process id.
    pub pid: u32,
    /// When the process `pid` started, in seconds since the Unix epoch as its host's OS
    /// reports it; with `pid` it names the process even after the pid is reused. `None`
    /// when the OS could not tell, and in locks written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_started: Option<u64>,
    /// Which process table `pid` belongs to: this boot of this machine and its PID
    /// namespace (Linux: the boot id and `/proc/self/ns/pid`; elsewhere the boot time),
    /// so that a container or a cloned machine with the same host name never judges this
    /// holder by its own processes. `None` in locks written before this field existed;
    /// such locks are judged by age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<String>,
    /// When the holder started.
    pub started: DateTime<Utc>,
    /// When it was last refreshed.
    pub refreshed: DateTime<Utc>,
}

/// What this host can tell about a lock holder's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The process runs.
    Alive,
    /// The process is gone (or its pid now belongs to another process).
    Dead,
    /// This platform cannot tell; the lock's age decides.
    Unknown,
}

/// This machine's host name.
pub fn hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Start time (seconds since the Unix epoch) and state of process `pid` on this host;
/// `Err(())` when this platform cannot tell, `Ok(None)` when no such process runs.
fn process_start(pid: u32) -> std::result::Result<Option<(u64, bool)>, ()> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};
    // an unsupported platform has no `System`
    let mut sys = System::new().map_err(|_| ())?;
    let pid = Pid::from_u32(pid);
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        true,
        ProcessRefreshKind::nothing(),
    );
    Ok(sys.process(pid).map(|p| {
        let gone = matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead);
        (p.start_time(), gone)
    }))
}

/// This process table's identity (see [`LockInfo::processes`]).
pub fn process_table() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        Some(format!("{} {}", boot.trim(), ns.display()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        Some(format!("boot {}", sysinfo::System::boot_time().ok()?))
    }
}

/// This process's start time, recorded in its locks.
fn own_start() -> Option<u64> {
    match process_start(std::process::id()) {
        Ok(Some((t, _))) if t > 0 => Some(t),
        _ => None,
    }
}

/// Whether the process `pid` that started at `started` (see
/// [`LockInfo::process_started`]) still runs on this host.
pub fn process_liveness(pid: u32, started: Option<u64>) -> Liveness {
    match process_start(pid) {
        Err(()) => Liveness::Unknown,
        Ok(None) | Ok(Some((_, true))) => Liveness::Dead,
        // a start time of 0: the OS did not let us read it (another user's process on
        // Windows); the pid runs, so do not take the lock away from it
        Ok(Some((now_started, false))) => match started {
            Some(t) if now_started != 0 && now_started.abs_diff(t) > 1 => Liveness::Dead,
            _ => Liveness::Alive,
        },
    }
}

impl LockInfo {
    /// True when the holder is gone (see the module documentation).
    pub fn is_stale(&self) -> bool {
        self.is_stale_at(
            Utc::now(),
            &hostname(),
            process_table().as_deref(),
            process_liveness,
        )
    }

    /// True when the holder is gone, judged at `now` on host `this_host` with process
    /// table `table` (see [`LockInfo::processes`]), whose processes
    /// `liveness(pid, process_started)` describes. A pure function of its inputs.
    ///
    /// Only a lock of this very process table is judged by its process; any other by
    /// age: stale when not refreshed for [`STALE_AFTER`], and also when its refresh time
    /// lies more than [`STALE_AFTER`] in the future (a forged lock, or a clock so wrong
    /// that its holder's other writes cannot be trusted either), so that no lock file
    /// blocks prune forever.
    pub fn is_stale_at(
        &self,
        now: DateTime<Utc>,
        this_host: &str,
        table: Option<&str>,
        liveness: impl Fn(u32, Option<u64>) -> Liveness,
    ) -> bool {
        if self.hostname == this_host && table.is_some() && self.processes.as_deref() == table {
            match liveness(self.pid, self.process_started) {
                Liveness::Alive => return false,
                Liveness::Dead => return true,
                Liveness::Unknown => {}
            }
        }
        let age = now.signed_duration_since(self.refreshed);
        let limit = chrono::Duration::from_std(STALE_AFTER).expect("30 minutes");
        age > limit || age < -limit
    }
}

/// How a held lock keeps itself fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// Rewrite the lock this often ([`REFRESH_EVERY`] by default; tests use less).
    pub refresh_every: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            refresh_every: REFRESH_EVERY,
        }
    }
}

/// The lock file as it is now (its name changes with every refresh).
struct Current {
    name: String,
    info: LockInfo,
}

/// What the holder and its refresher thread share.
struct Held {
    backend: Arc<dyn Backend>,
    current: Mutex<Current>,
}

impl Held {
    fn current(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write the lock anew with the time now, then remove the previous file.
    fn refresh(&self) -> Result<()> {
        let mut cur = self.current();
        let mut info = cur.info.clone();
        info.refreshed = Utc::now();
        let name = Id::random().to_hex();
        self.backend.create(FileKind::Lock, &name, &encode(&info))?;
        let old = std::mem::replace(&mut cur.name, name);
        cur.info = info;
        Ok(self.backend.remove(FileKind::Lock, &old)?)
    }
}

fn encode(info: &LockInfo) -> Vec<u8> {
    serde_json::to_vec(info).expect("lock serializes")
}

/// A held lock, kept fresh by a background thread; removed on drop.
pub struct Lock {
    held: Arc<Held>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

/// All lock files, with their names. Unreadable ones are skipped.
///
/// # Errors
/// Listing failed.
pub fn list_locks(backend: &dyn Backend) -> Result<Vec<(String, LockInfo)>> {
    let mut out = Vec::new();
    for f in backend.list(FileKind::Lock)? {
        if let Ok(bytes) = backend.read(FileKind::Lock, &f.name)
            && let Ok(info) = serde_json::from_slice::<LockInfo>(&bytes)
        {
            out.push((f.name, info));
        }
    }
    Ok(out)
}

impl Lock {
    fn write(backend: Arc<dyn Backend>, kind: LockKind, opts: LockOptions) -> Result<Self> {
        let now = Utc::now();
        let info = LockInfo {
            kind,
            hostname: hostname(),
            pid: std::process::id(),
            process_started: own_start(),
            processes: process_table(),
            started: now,
            refreshed: now,
        };
        let name = Id::random().to_hex();
        backend.create(FileKind::Lock, &name, &encode(&info))?;
        let held = Arc::new(Held {
            backend,
            current: Mutex::new(Current { name, info }),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let h = held.clone();
        let refresher = std::thread::Builder::new()
            .name("rehydra-lock".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(opts.refresh_every)
                {
                    // a failed write is retried at the next tick; the old file stays
                    let _ = h.refresh();
                }
            });
        let mut lock = Self {
            held,
            stop: Some(stop),
            refresher: None,
        };
        lock.refresher =
            Some(refresher.map_err(|e| Error::io("starting the lock refresher thread", e))?);
        Ok(lock)
    }

    /// Announce a running backup (or another long reader of packs).
    ///
    /// # Errors
    /// Writing the presence file failed.
    pub fn backup(backend: Arc<dyn Backend>) -> Result<Self> {
        Self::backup_with(backend, LockOptions::default())
    }

    /// [`Lock::backup`] with explicit options.
    ///
    /// # Errors
    /// Writing the presence file failed.
    pub fn backup_with(backend: Arc<dyn Backend>, opts: LockOptions) -> Result<Self> {
        Self::write(backend, LockKind::Backup, opts)
    }

    /// Take the exclusive lock; fails if another live prune holds it.
    ///
    /// # Errors
    /// [`ErrorKind::Locked`] when another prune runs.
    pub fn exclusive(backend: Arc<dyn Backend>) -> Result<Self> {
        Self::exclusive_with(backend, LockOptions::default())
    }

    /// [`Lock::exclusive`] with explicit options.
    ///
    /// # Errors
    /// [`ErrorKind::Locked`] when another prune runs.
    pub fn exclusive_with(backend: Arc<dyn Backend>, opts: LockOptions) -> Result<Self> {
        for (name, l) in list_locks(backend.as_ref())? {
            if l.is_stale() {
                backend.remove(FileKind::Lock, &name)?;
            } else if l.kind == LockKind::Prune {
                return Err(busy(&l));
            }
        }
        let me = Self::write(backend.clone(), LockKind::Prune, opts)?;
        // two prunes that raced past the check: the one that started first wins, then the
        // smaller name (names change on refresh, start times do not)
        let mine = me.info();
        let my_name = me.held.current().name.clone();
        for (name, l) in list_locks(backend.as_ref())? {
            if l.kind == LockKind::Prune
                && name != my_name
                && !l.is_stale()
                && (l.started, &name) < (mine.started, &my_name)
            {
                return Err(busy(&l));
            }
        }
        Ok(me)
    }

    /// When this holder started.
    pub fn started(&self) -> DateTime<Utc> {
        self.held.current().info.started
    }

    /// The lock as last written.
    pub fn info(&self) -> LockInfo {
        self.held.current().info.clone()
    }
}

fn busy(l: &LockInfo) -> Error {
    Error::new(
        ErrorKind::Locked,
        format!(
            "repository is locked by a prune on {} (pid {}) since {}; wait for it to finish (a lock from a crashed process is ignored once its process is gone, or {} minutes after its last refresh when it ran on another machine)",
            l.hostname,
            l.pid,
            l.started.format("%Y-%m-%d %H:%M:%S UTC"),
            STALE_AFTER.as_secs() / 60
        ),
    )
}

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        let name = self.held.current().name.clone();
        let _ = self.held.backend.remove(FileKind::Lock, &name);
    }
}

/// Live backups (non-stale presence files).
///
/// # Errors
/// Listing failed.
pub fn live_backups(backend: &dyn Backend) -> Result<Vec<LockInfo>> {
    live_backups_at(backend, Utc::now())
}

/// Live backups as judged at `now` (a moved clock, in tests).
///
/// # Errors
/// Listing failed.
pub fn live_backups_at(backend: &dyn Backend, now: DateTime<Utc>) -> Result<Vec<LockInfo>> {
    let (host, table) = (hostname(), process_table());
    Ok(list_locks(backend)?
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| {
            l.kind == LockKind::Backup
                && !l.is_stale_at(now, &host, table.as_deref(), process_liveness)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::LocalBackend;

    fn backend(dir: &std::path::Path) -> Arc<dyn Backend> {
        let b = LocalBackend::new(dir);
        b.create_layout().unwrap();
        Arc::new(b)
    }

    fn hours(h: i64) -> chrono::Duration {
        chrono::Duration::hours(h)
    }

    #[test]
    fn lock_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Lock>();
        check::<Arc<dyn Backend>>();
    }

    #[test]
    fn live_holder_on_this_host_is_never_stale_whatever_its_age() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::backup(backend(dir.path())).unwrap();
        let info = lock.info();
        let later = Utc::now() + hours(2);
        let t = process_table();
        assert!(!info.is_stale_at(later, &hostname(), t.as_deref(), process_liveness));
        assert!(!info.is_stale_at(
            later + hours(100),
            &hostname(),
            t.as_deref(),
            process_liveness
        ));
    }

    #[test]
    fn lock_of_a_dead_process_on_this_host_is_stale_at_once() {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let now = Utc::now();
        let info = LockInfo {
            kind: LockKind::Backup,
            hostname: hostname(),
            pid,
            process_started: None,
            processes: process_table(),
            started: now,
            refreshed: now,
        };
        assert!(info.is_stale_at(
            now,
            &hostname(),
            process_table().as_deref(),
            process_liveness
        ));
    }

    #[test]
    fn a_reused_pid_is_not_taken_for_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = Lock::backup(backend(dir.path())).unwrap();
        let mut info = lock.info();
        // this process's pid, but a process that started at another time
        info.process_started = Some(info.process_started.map_or(1, |t| t - 1000));
        assert!(info.is_stale_at(
            Utc::now(),
            &hostname(),
            process_table().as_deref(),
            process_liveness
        ));
    }

    #[test]
    fn lock_from_another_host_is_stale_only_by_age() {
        let now = Utc::now();
        let info = LockInfo {
            kind: LockKind::Backup,
            hostname: "elsewhere".into(),
            pid: 1,
            process_started: Some(1),
            processes: Some("boot-a ns-a".into()),
            started: now,
            refreshed: now,
        };
        let never = |_: u32, _: Option<u64>| -> Liveness { panic!("not this host's process") };
        let host = hostname();
        let fresh = now + chrono::Duration::minutes(29);
        let old = now + chrono::Duration::minutes(31);
        assert!(!info.is_stale_at(fresh, &host, Some("boot-a ns-a"), never));
        assert!(info.is_stale_at(old, &host, Some("boot-a ns-a"), never));
        // where this host cannot tell, its own locks age the same way
        let unknown = |_: u32, _: Option<u64>| Liveness::Unknown;
        let t = Some("boot-a ns-a");
        assert!(!info.is_stale_at(fresh, "elsewhere", t, unknown));
        assert!(info.is_stale_at(old, "elsewhere", t, unknown));
    }

    /// A container (or a cloned machine) with the same host name but its own process
    /// table: its holder is never judged by this table's processes, only by age.
    #[test]
    fn another_process_table_with_the_same_host_name_is_judged_by_age() {
        let now = Utc::now();
        let info = LockInfo {
            kind: LockKind::Backup,
            hostname: hostname(),
            pid: 1,
            process_started: Some(1),
            processes: Some("boot-x pid:[4026532999]".into()),
            started: now,
            refreshed: now,
        };
        let dead = |_: u32, _: Option<u64>| Liveness::Dead;
        let t = Some("boot-x pid:[4026531836]");
        assert!(
            !info.is_stale_at(now, &hostname(), t, dead),
            "not this table: age decides"
        );
        assert!(info.is_stale_at(now + hours(1), &hostname(), t, dead));
        // a lock written before the field existed is judged by age too
        let old = LockInfo {
            processes: None,
            ..info.clone()
        };
        assert!(!old.is_stale_at(now, &hostname(), t, dead));
    }

    /// A lock whose refresh time lies far in the future (forged, or a wild clock) does
    /// not block prune forever.
    #[test]
    fn a_lock_from_the_future_is_stale() {
        let now = Utc::now();
        let info = LockInfo {
            kind: LockKind::Prune,
            hostname: "elsewhere".into(),
            pid: 1,
            process_started: None,
            processes: None,
            started: now + hours(24 * 365 * 100),
            refreshed: now + hours(24 * 365 * 100),
        };
        let never = |_: u32, _: Option<u64>| -> Liveness { panic!("not this host's process") };
        assert!(info.is_stale_at(now, &hostname(), None, never));
        let skewed = LockInfo {
            refreshed: now + chrono::Duration::minutes(10),
            ..info
        };
        assert!(
            !skewed.is_stale_at(now, &hostname(), None, never),
            "a small skew is tolerated"
        );
    }

    #[test]
    fn a_held_lock_is_refreshed_by_its_own_thread_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path());
        let opts = LockOptions {
            refresh_every: Duration::from_millis(30),
        };
        let lock = Lock::backup_with(b.clone(), opts).unwrap();
        let first = list_locks(b.as_ref()).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let now = list_locks(b.as_ref()).unwrap();
        // a refresh writes the new file before it removes the old one
        assert!(now.len() <= 2, "old files are removed: {now:?}");
        assert!(now.iter().all(|(name, _)| *name != first[0].0), "{now:?}");
        assert!(now.iter().all(|(_, l)| l.refreshed > l.started), "{now:?}");
        assert!(lock.info().refreshed > first[0].1.refreshed);
        drop(lock);
        assert!(list_locks(b.as_ref()).unwrap().is_empty());
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            list_locks(b.as_ref()).unwrap().is_empty(),
            "refresher stopped"
        );
    }

    #[test]
    fn a_prune_two_hours_later_still_sees_the_running_backup() {
        let dir = tempfile::tempdir().unwrap();
        let b = backend(dir.path());
        let _backup = Lock::backup(b.clone()).unwrap();
        let later = Utc::now() + hours(2);
        assert_eq!(live_backups_at(b.as_ref(), later).unwrap().len(), 1);
    }
}
