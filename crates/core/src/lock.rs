//! Locks and presence files under `locks/`.
//!
//! Backups never wait for or block each other: each writes a *presence* file while it
//! runs (so prune knows not to delete packs it may be using). Prune takes the one
//! *exclusive* lock. A lock is stale when it was not refreshed for [`STALE_AFTER`] or when
//! its process is gone on this host; stale locks are ignored and removed.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, FileKind};
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// Holders refresh their lock at least this often.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// Kind of lock.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// A running backup (shared; blocks nobody).
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
    /// When the holder started.
    pub started: chrono::DateTime<chrono::Utc>,
    /// When it was last refreshed.
    pub refreshed: chrono::DateTime<chrono::Utc>,
}

/// This machine's host name.
pub fn hostname() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true // no cheap safe check: rely on age
    }
}

impl LockInfo {
    /// True when the holder is gone.
    pub fn is_stale(&self) -> bool {
        let age = chrono::Utc::now().signed_duration_since(self.refreshed);
        if age.to_std().map(|a| a > STALE_AFTER).unwrap_or(false) {
            return true;
        }
        self.hostname == hostname() && !pid_alive(self.pid)
    }
}

/// A held lock; removed on drop.
pub struct Lock {
    backend: Arc<dyn Backend>,
    name: String,
    info: LockInfo,
    last_refresh: std::time::Instant,
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
    fn write(backend: Arc<dyn Backend>, kind: LockKind) -> Result<Self> {
        let now = chrono::Utc::now();
        let info = LockInfo {
            kind,
            hostname: hostname(),
            pid: std::process::id(),
            started: now,
            refreshed: now,
        };
        let name = Id::random().to_hex();
        backend.create(
            FileKind::Lock,
            &name,
            &serde_json::to_vec(&info).expect("lock serializes"),
        )?;
        Ok(Self {
            backend,
            name,
            info,
            last_refresh: std::time::Instant::now(),
        })
    }

    /// Announce a running backup.
    ///
    /// # Errors
    /// Writing the presence file failed.
    pub fn backup(backend: Arc<dyn Backend>) -> Result<Self> {
        Self::write(backend, LockKind::Backup)
    }

    /// Take the exclusive lock; fails if another live prune holds it.
    ///
    /// # Errors
    /// [`ErrorKind::Locked`] when another prune runs.
    pub fn exclusive(backend: Arc<dyn Backend>) -> Result<Self> {
        let busy = |l: &LockInfo| {
            Error::new(
                ErrorKind::Locked,
                format!(
                    "repository is locked by a prune on {} (pid {}) since {}; wait for it to finish (a lock from a crashed process becomes stale after {} minutes)",
                    l.hostname,
                    l.pid,
                    l.started.format("%Y-%m-%d %H:%M:%S UTC"),
                    STALE_AFTER.as_secs() / 60
                ),
            )
        };
        for (name, l) in list_locks(backend.as_ref())? {
            if l.is_stale() {
                backend.remove(FileKind::Lock, &name)?;
            } else if l.kind == LockKind::Prune {
                return Err(busy(&l));
            }
        }
        let me = Self::write(backend.clone(), LockKind::Prune)?;
        // two prunes that raced past the check: the one with the smaller name wins
        for (name, l) in list_locks(backend.as_ref())? {
            if l.kind == LockKind::Prune && name != me.name && !l.is_stale() && name < me.name {
                return Err(busy(&l));
            }
        }
        Ok(me)
    }

    /// When this holder started.
    pub fn started(&self) -> chrono::DateTime<chrono::Utc> {
        self.info.started
    }

    /// Rewrite the lock with a new time if [`REFRESH_EVERY`] has passed.
    ///
    /// # Errors
    /// Writing failed.
    pub fn refresh(&mut self) -> Result<()> {
        if self.last_refresh.elapsed() < REFRESH_EVERY {
            return Ok(());
        }
        self.info.refreshed = chrono::Utc::now();
        let new_name = Id::random().to_hex();
        self.backend.create(
            FileKind::Lock,
            &new_name,
            &serde_json::to_vec(&self.info).expect("lock serializes"),
        )?;
        let old = std::mem::replace(&mut self.name, new_name);
        self.backend.remove(FileKind::Lock, &old)?;
        self.last_refresh = std::time::Instant::now();
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.backend.remove(FileKind::Lock, &self.name);
    }
}

/// Live backups (non-stale presence files) other than `except`.
///
/// # Errors
/// Listing failed.
pub fn live_backups(backend: &dyn Backend) -> Result<Vec<LockInfo>> {
    Ok(list_locks(backend)?
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.kind == LockKind::Backup && !l.is_stale())
        .collect())
}
