//! The operators' door on Linux: a Unix socket, mode 0660, of the operators' group.
//! Connecting needs write access to it, so the kernel lets in the service's account, root
//! and the group's members only; the peer's credentials name who connected, and tell the
//! client that root (or its own account) answers.

use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::{ASKED_BY_OPERATOR, Deadline, Slot, WAIT, converse};
use crate::error::{ApiError, Code, Result};

/// Where the door is unless `REHYDRA_SERVICE_SOCKET` says otherwise (the systemd unit's
/// runtime folder).
pub(super) const DEFAULT: &str = "/run/rehydra/operators.sock";

/// The open door: the socket is removed when it is dropped (if it is still ours).
#[derive(Debug)]
pub struct Door {
    listener: Option<UnixListener>,
    path: PathBuf,
    /// The socket's device and inode.
    ours: (u64, u64),
}

fn io(path: &Path, e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(Code::Io, format!("{}: {e}", path.display()))
}

/// `group`'s id.
fn group_id(group: &str) -> Result<nix::unistd::Gid> {
    // glibc says "not found" in several ways (getgrnam(3))
    use nix::errno::Errno;
    let found = match nix::unistd::Group::from_name(group) {
        Err(Errno::ENOENT | Errno::ESRCH | Errno::EBADF | Errno::EPERM) => Ok(None),
        other => other,
    }
    .map_err(|e| ApiError::new(Code::Io, format!("looking up group {group}: {e}")))?;
    found.map(|g| g.gid).ok_or_else(|| {
        ApiError::new(
            Code::InvalidInput,
            format!(
                "--operators {group}: this machine has no such group (make it with `groupadd --system {group}` and add the operators to it)"
            ),
        )
    })
}

/// The socket's folder must be the service's (or root's): whoever else may write it could
/// swap the socket for their own.
fn folder_is_ours(dir: &Path) -> Result<()> {
    let m = std::fs::symlink_metadata(dir).map_err(|e| io(dir, &e))?;
    let me = nix::unistd::Uid::effective().as_raw();
    // (a sticky folder such as /tmp is not enough: others may put a socket or a file at
    // the path while the service is down)
    if !m.is_dir() || (m.uid() != 0 && m.uid() != me) || m.mode() & 0o022 != 0 {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "{}: the operators' socket belongs in a folder only the service's account writes (owned by it or root, not writable by others): the systemd unit's /run/rehydra, or set REHYDRA_SERVICE_SOCKET to one",
                dir.display()
            ),
        ));
    }
    Ok(())
}

impl Door {
    /// Open the door at [`super::endpoint`] for the members of `group`.
    ///
    /// # Errors
    /// No such group; a folder others may write; something else than a socket is there (a
    /// link or a file: never replaced); another service answers there; the socket cannot
    /// be made.
    pub fn open(group: &str) -> Result<Self> {
        let gid = group_id(group)?;
        let path = super::endpoint();
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .ok_or_else(|| io(&path, &"not a path to a socket"))?;
        std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
        folder_is_ours(dir)?;
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
            std::fs::rename(&staged, &path)?;
            std::fs::symlink_metadata(&path)
        })();
        let m = placed.map_err(|e| io(&path, &e))?;
        Ok(Self {
            listener: Some(listener),
            path,
            ours: (m.dev(), m.ino()),
        })
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answer each connection with `handle` (given the asker's name) on a thread of its
    /// own, up to eight at once (past that one is closed unread), each given 10 s in all
    /// to send its line and take the answer, for as long as the process runs; the socket
    /// goes when `self` is dropped.
    pub fn serve<F>(&mut self, handle: F)
    where
        F: Fn(&super::Ask, &str) -> Result<serde_json::Value> + Send + Sync + 'static,
    {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let handle = Arc::new(handle);
        let busy = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let Some(slot) = Slot::take(&busy) else {
                    continue;
                };
                let handle = Arc::clone(&handle);
                std::thread::spawn(move || {
                    let _slot = slot;
                    let timed = Timed {
                        stream: &stream,
                        deadline: Deadline::asking(),
                    };
                    if let Err(e) = converse(timed, &|t| asker(t.stream), &*handle) {
                        tracing::warn!("an operator's connection: {e}");
                    }
                });
            }
        });
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        // only our own socket: another may have taken the place meanwhile
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.ours) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A connection whose reads and writes wait only until its [`Deadline`]s.
struct Timed<'a> {
    stream: &'a UnixStream,
    deadline: Deadline,
}

impl std::io::Read for Timed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(self.deadline.read()?))?;
        std::io::Read::read(&mut &*self.stream, buf)
    }
}

impl std::io::Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream
            .set_write_timeout(Some(self.deadline.write()?))?;
        std::io::Write::write(&mut &*self.stream, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Who connected, as the kernel says: `operator NAME (uid N) on HOST`.
fn asker(stream: &UnixStream) -> Option<String> {
    let host = crate::service::requests::this_host();
    let c =
        nix::sys::socket::getsockopt(stream, nix::sys::socket::sockopt::PeerCredentials).ok()?;
    let uid = nix::unistd::Uid::from_raw(c.uid());
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or_else(|| "?".into(), |u| u.name);
    Some(format!("{ASKED_BY_OPERATOR}{name} (uid {uid}) on {host}"))
}

/// Connect to the door at `path`, saying why not with the fix; what answers must run as
/// root or as this account (a service of one's own), nobody else.
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
    let peer = nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::PeerCredentials)
        .map_err(|e| io(path, &e))?
        .uid();
    if peer != 0 && peer != nix::unistd::Uid::effective().as_raw() {
        return Err(ApiError::new(
            Code::InvalidInput,
            format!(
                "what answers at {} runs as uid {peer}, neither root nor you: it is not the machine's Rehydra service; tell an administrator",
                path.display()
            ),
        ));
    }
    let _ = s.set_read_timeout(Some(WAIT));
    let _ = s.set_write_timeout(Some(WAIT));
    Ok(s)
}
