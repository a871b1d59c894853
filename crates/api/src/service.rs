//! The always-on service's single-instance lock: one `rehydra service` per catalog (per
//! machine and user), held as an OS file lock on `service.lock` next to the catalog, so
//! it goes away with the process however it ends. The file names the process that holds
//! it and the repository it serves; the app and `rehydra service --status` read it to
//! say whether a service runs.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
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
}

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

fn open(ctx: &Context) -> Result<(PathBuf, File)> {
    let path = lock_path(ctx)?;
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)
            .map_err(|e| ApiError::new(Code::Io, format!("{}: {e}", d.display())))?;
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| ApiError::new(Code::Io, format!("{}: {e}", path.display())))?;
    Ok((path, f))
}

/// Take the lock for a service serving `repository`.
///
/// # Errors
/// [`Code::Locked`] when a service already runs (naming its process and repository).
pub fn acquire(ctx: &Context, repository: &str) -> Result<ServiceLock> {
    let (path, mut f) = open(ctx)?;
    if let Err(e) = f.try_lock() {
        let held = match e {
            std::fs::TryLockError::WouldBlock => read_info(&mut f).map_or_else(String::new, |i| {
                format!(" (process {}, for {})", i.pid, i.repository)
            }),
            std::fs::TryLockError::Error(e) => {
                return Err(ApiError::new(Code::Io, format!("{}: {e}", path.display())));
            }
        };
        return Err(ApiError::new(
            Code::Locked,
            format!(
                "a Rehydra service already runs on this machine{held}: stop it first (only one runs per catalog, {})",
                path.display()
            ),
        ));
    }
    let info = serde_json::json!({ "pid": std::process::id(), "repository": repository });
    let w = (|| {
        f.set_len(0)?;
        f.rewind()?;
        f.write_all(info.to_string().as_bytes())?;
        f.sync_all()
    })();
    w.map_err(|e| ApiError::new(Code::Io, format!("{}: {e}", path.display())))?;
    Ok(ServiceLock { _file: f })
}

fn read_info(f: &mut File) -> Option<ServiceInfo> {
    let mut s = String::new();
    f.rewind().ok()?;
    f.take(4096).read_to_string(&mut s).ok()?;
    let v: serde_json::Value = serde_json::from_str(&s).ok()?;
    Some(ServiceInfo {
        pid: u32::try_from(v["pid"].as_u64()?).ok()?,
        repository: v["repository"].as_str()?.to_string(),
    })
}

/// The service running for this catalog, if one does.
///
/// # Errors
/// The lock file cannot be opened.
pub fn running(ctx: &Context) -> Result<Option<ServiceInfo>> {
    let (_, mut f) = open(ctx)?;
    match f.try_lock_shared() {
        // nobody holds it: no service (the shared lock goes with `f`)
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            Ok(Some(read_info(&mut f).unwrap_or(ServiceInfo {
                pid: 0,
                repository: String::new(),
            })))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(ApiError::new(Code::Io, e.to_string())),
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
                repository: "/srv/repo".into()
            })
        );
        drop(lock);
        assert_eq!(running(&ctx).unwrap(), None);
        let no_catalog = Context::default();
        assert_eq!(
            acquire(&no_catalog, "x").unwrap_err().code,
            Code::InvalidInput
        );
    }
}
