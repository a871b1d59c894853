//! The always-on service's single-instance lock: one `rehydra service` per catalog (per
//! machine and user), held as an OS file lock on `service.lock` next to the catalog, so
//! it goes away with the process however it ends. `service.json` beside it names the
//! process and the repository it serves (a separate file: Windows does not let others
//! read a locked range); the app and `rehydra service --status` read both to say whether
//! a service runs. Neither is followed if it is a symbolic link.

pub mod operators;
pub mod requests;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;

use crate::Context;
use crate::error::{ApiError, Code, Result};

/// A running service, as its lock file says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
pub struct ServiceInfo {
    /// Its process id.
    pub pid: u32,
    /// The repository whose due policies it runs.
    pub repository: String,
    /// Whether it takes runs handed to it ([`requests`]); a service of an older version
    /// does not, and a run handed to it would wait forever.
    pub takes_requests: bool,
}

/// What `service.json` says a service takes: runs handed to it, in this form.
const REQUESTS: u64 = 1;

/// The lock, held until dropped (or the process ends).
#[derive(Debug)]
pub struct ServiceLock {
    _file: File,
}

fn lock_path(ctx: &Context) -> Result<PathBuf> {
    let catalog = ctx.catalog.as_ref().ok_or_else(|| {
        ApiError::new(
            Code::InvalidInput,
            "the service keeps its state in the catalog: run it without --no-catalog",
        )
    })?;
    Ok(catalog.with_file_name("service.lock"))
}

fn io(path: &std::path::Path, e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(Code::Io, format!("{}: {e}", path.display()))
}

/// Refuse a symbolic link where our own file belongs (it would lock, or truncate,
/// whatever it points to).
fn not_a_link(path: &std::path::Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "{} is a symbolic link, not Rehydra's own file: remove it",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Take the lock for a service serving `repository`.
///
/// # Errors
/// [`Code::Locked`] when a service already runs (naming its process and repository).
pub fn acquire(ctx: &Context, repository: &str) -> Result<ServiceLock> {
    let path = lock_path(ctx)?;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| io(d, &e))?;
    }
    not_a_link(&path)?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io(&path, &e))?;
    // a status query holds a shared lock for an instant: try for a second
    let mut tries = 0;
    loop {
        match f.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) if tries < 10 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let held = read_info(&path).map_or_else(String::new, |i| {
                    format!(" (process {}, for {})", i.pid, i.repository)
                });
                return Err(ApiError::new(
                    Code::Locked,
                    format!(
                        "a Rehydra service already runs on this machine{held}: stop it first (only one runs per catalog, {})",
                        path.display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path, &e)),
        }
    }
    let info = serde_json::json!({ "pid": std::process::id(), "repository": repository, "requests": REQUESTS });
    let json = path.with_file_name("service.json");
    not_a_link(&json)?;
    let tmp = path.with_file_name(format!("service.json.{}.tmp", std::process::id()));
    let w = (|| {
        let mut t = File::create(&tmp)?;
        t.write_all(info.to_string().as_bytes())?;
        t.sync_all()?;
        std::fs::rename(&tmp, &json)
    })();
    w.map_err(|e| io(&json, &e))?;
    Ok(ServiceLock { _file: f })
}

fn read_info(lock: &std::path::Path) -> Option<ServiceInfo> {
    let json = lock.with_file_name("service.json");
    if std::fs::symlink_metadata(&json)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let mut s = String::new();
    File::open(&json)
        .ok()?
        .take(4096)
        .read_to_string(&mut s)
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    Some(ServiceInfo {
        pid: u32::try_from(v["pid"].as_u64()?).ok()?,
        repository: v["repository"].as_str()?.to_string(),
        takes_requests: v["requests"].as_u64() == Some(REQUESTS),
    })
}

/// The service running for this catalog, if one does. Creates nothing.
///
/// # Errors
/// The lock file exists but cannot be opened.
pub fn running(ctx: &Context) -> Result<Option<ServiceInfo>> {
    let path = lock_path(ctx)?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    not_a_link(&path)?;
    let f = File::open(&path).map_err(|e| io(&path, &e))?;
    match f.try_lock_shared() {
        // nobody holds it: no service (the shared lock goes with `f`)
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            Ok(Some(read_info(&path).unwrap_or(ServiceInfo {
                pid: 0,
                repository: String::new(),
                takes_requests: false,
            })))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(io(&path, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_service_per_catalog_and_others_see_it() {
        let d = tempfile::tempdir().unwrap();
        let ctx = Context {
            catalog: Some(d.path().join("catalog.db")),
            ..Context::default()
        };
        assert_eq!(running(&ctx).unwrap(), None);
        let lock = acquire(&ctx, "/srv/repo").unwrap();
        let e = acquire(&ctx, "/srv/other").unwrap_err();
        assert_eq!(e.code, Code::Locked);
        assert!(
            e.message
                .contains(&format!("process {}", std::process::id())),
            "{}",
            e.message
        );
        assert_eq!(
            running(&ctx).unwrap(),
            Some(ServiceInfo {
                pid: std::process::id(),
                repository: "/srv/repo".into(),
                takes_requests: true,
            })
        );
        drop(lock);
        assert_eq!(running(&ctx).unwrap(), None);
        // a link where the lock belongs is refused, and what it points to is untouched
        #[cfg(unix)]
        {
            std::fs::remove_file(d.path().join("service.lock")).unwrap();
            std::fs::write(d.path().join("precious"), "keep").unwrap();
            std::os::unix::fs::symlink(d.path().join("precious"), d.path().join("service.lock"))
                .unwrap();
            assert!(
                acquire(&ctx, "/srv/repo")
                    .unwrap_err()
                    .message
                    .contains("symbolic link")
            );
            assert_eq!(
                std::fs::read_to_string(d.path().join("precious")).unwrap(),
                "keep"
            );
        }
        // a status query creates nothing
        let fresh = tempfile::tempdir().unwrap();
        let ctx2 = Context {
            catalog: Some(fresh.path().join("catalog.db")),
            ..Context::default()
        };
        assert_eq!(running(&ctx2).unwrap(), None);
        assert_eq!(std::fs::read_dir(fresh.path()).unwrap().count(), 0);
        let no_catalog = Context::default();
        assert_eq!(
            acquire(&no_catalog, "x").unwrap_err().code,
            Code::InvalidInput
        );
    }
}
