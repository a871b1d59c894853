//! The operators' door on Linux: a Unix socket, mode 0660, of the operators' group.
//! Connecting needs write access to it, so the kernel lets in the service's account, root
//! and the group's members only; the peer's credentials name who connected.

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::{WAIT, converse};
use crate::error::{ApiError, Code, Result};

/// Where the door is unless `REHYDRA_SERVICE_SOCKET` says otherwise (the systemd unit's
/// runtime folder).
pub(super) const DEFAULT: &str = "/run/rehydra/operators.sock";

/// The open door: the socket is removed when it is dropped.
#[derive(Debug)]
pub struct Door {
    listener: Option<UnixListener>,
    path: PathBuf,
}

fn io(path: &Path, e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(Code::Io, format!("{}: {e}", path.display()))
}

impl Door {
    /// Open the door at [`super::endpoint`] for the members of `group`.
    ///
    /// # Errors
    /// No such group; something else than a socket is there (a link or a file: never
    /// replaced); another service answers there; the socket cannot be made.
    pub fn open(group: &str) -> Result<Self> {
        // glibc says "not found" in several ways (getgrnam(3))
        use nix::errno::Errno;
        let gid = match nix::unistd::Group::from_name(group) {
            Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => Ok(None),
            other => other,
        }
        .map_err(|e| ApiError::new(Code::Io, format!("looking up group {group}: {e}")))?
        .ok_or_else(|| {
                ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "--operators {group}: this machine has no such group (make it with `groupadd --system {group}` and add the operators to it)"
                    ),
                )
            })?
            .gid;
        let path = super::endpoint();
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| io(&path, &"not a path to a socket"))?;
        std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
        if let Ok(m) = std::fs::symlink_metadata(&path) {
            if !m.file_type().is_socket() {
                return Err(ApiError::new(
                    Code::InvalidInput,
                    format!(
                        "{} is not a socket (a link or a file someone put there): remove it, then start the service",
                        path.display()
                    ),
                ));
            }
            if UnixStream::connect(&path).is_ok() {
                return Err(ApiError::new(
                    Code::Locked,
                    format!(
                        "another Rehydra service answers operators at {}: stop it, or give this one another REHYDRA_SERVICE_SOCKET",
                        path.display()
                    ),
                ));
            }
            // left by a service that was killed
            std::fs::remove_file(&path).map_err(|e| io(&path, &e))?;
        }
        // made with its rights and group in a folder of its own (0700, so nobody can swap
        // it for a link that the mode and owner changes would follow), then renamed into
        // place: it is never reachable with other rights than its own
        let private = tempfile::Builder::new()
            .prefix(".operators-")
            .tempdir_in(dir)
            .map_err(|e| io(dir, &e))?;
        let staged = private.path().join("operators.sock");
        let listener = UnixListener::bind(&staged).map_err(|e| io(&staged, &e))?;
        let placed = (|| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o660))?;
            std::os::unix::fs::chown(&staged, None, Some(gid.as_raw()))?;
            std::fs::rename(&staged, &path)
        })();
        placed.map_err(|e| io(&path, &e))?;
        Ok(Self {
            listener: Some(listener),
            path,
        })
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answer each connection with `handle` (given the asker's name), one at a time, on a
    /// thread of its own, for as long as the process runs; the socket goes when `self`
    /// is dropped.
    pub fn serve<F>(&mut self, handle: F)
    where
        F: Fn(&super::Ask, &str) -> Result<serde_json::Value> + Send + Sync + 'static,
    {
        let Some(listener) = self.listener.take() else {
            return;
        };
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(WAIT));
                let _ = stream.set_write_timeout(Some(WAIT));
                if let Err(e) = converse(stream, &asker, &handle) {
                    tracing::warn!("an operator's connection: {e}");
                }
            }
        });
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Who connected, as the kernel says: `operator NAME (uid N)`.
fn asker(stream: &UnixStream) -> String {
    let host = hostname::get().map_or_else(
        |_| "this machine".into(),
        |h| h.to_string_lossy().into_owned(),
    );
    match nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials) {
        Ok(c) => {
            let uid = nix::unistd::Uid::from_raw(c.uid());
            let name = nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map_or_else(|| "?".into(), |u| u.name);
            format!("operator {name} (uid {uid}) on {host}")
        }
        Err(_) => format!("an operator on {host}"),
    }
}

/// Connect to the door at `path`, saying why not with the fix.
pub(super) fn connect(path: &Path) -> Result<UnixStream> {
    let s = UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => ApiError::new(
            Code::InvalidInput,
            format!(
                "no Rehydra service answers operators at {}: it is not running, or was started without --operators GROUP (REHYDRA_SERVICE_OPERATORS in /etc/rehydra/env)",
                path.display()
            ),
        ),
        std::io::ErrorKind::PermissionDenied => {
            use std::os::unix::fs::MetadataExt as _;
            let group = std::fs::metadata(path)
                .ok()
                .and_then(|m| nix::unistd::Group::from_gid(m.gid().into()).ok().flatten())
                .map_or_else(|| "its group".into(), |g| g.name);
            ApiError::new(
                Code::InvalidInput,
                format!(
                    "you may not use {}: only members of {group} operate the service; ask an administrator to add you (then sign in again)",
                    path.display()
                ),
            )
        }
        _ => io(path, &e),
    })?;
    let _ = s.set_read_timeout(Some(WAIT));
    let _ = s.set_write_timeout(Some(WAIT));
    Ok(s)
}
