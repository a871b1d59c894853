//! Owners: recorded at backup (ids and names), restored only by root.

/// The owner of a file as recorded in a backup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// User name on the machine that was backed up, if it had one.
    pub user: Option<String>,
    /// Group name on the machine that was backed up, if it had one.
    pub group: Option<String>,
}

impl Owner {
    /// The owner of a file from its metadata (Unix), with names looked up on this
    /// machine through `names` (a cache the caller keeps for the whole backup).
    #[cfg(unix)]
    pub fn of(md: &std::fs::Metadata, names: &mut NameCache) -> Self {
        use std::os::unix::fs::MetadataExt;
        let (uid, gid) = (md.uid(), md.gid());
        Self {
            uid,
            gid,
            user: names.user(uid),
            group: names.group(gid),
        }
    }

    /// The ids to give a restored file on this machine: the recorded names when this
    /// machine knows them (as `tar` does), otherwise the recorded ids.
    #[cfg(unix)]
    fn ids_here(&self) -> (u32, u32) {
        use nix::unistd::{Group, User};
        let uid = self
            .user
            .as_deref()
            .and_then(|n| User::from_name(n).ok().flatten())
            .map_or(self.uid, |u| u.uid.as_raw());
        let gid = self
            .group
            .as_deref()
            .and_then(|n| Group::from_name(n).ok().flatten())
            .map_or(self.gid, |g| g.gid.as_raw());
        (uid, gid)
    }
}

/// User and group names by id, looked up once each.
#[derive(Debug, Default)]
pub struct NameCache {
    users: std::collections::HashMap<u32, Option<String>>,
    groups: std::collections::HashMap<u32, Option<String>>,
}

impl NameCache {
    /// The name of user `uid` on this machine.
    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                #[cfg(unix)]
                {
                    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                        .ok()
                        .flatten()
                        .map(|u| u.name)
                }
                #[cfg(not(unix))]
                {
                    let _ = uid;
                    None
                }
            })
            .clone()
    }

    /// The name of group `gid` on this machine.
    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                #[cfg(unix)]
                {
                    nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                        .ok()
                        .flatten()
                        .map(|g| g.name)
                }
                #[cfg(not(unix))]
                {
                    let _ = gid;
                    None
                }
            })
            .clone()
    }
}

/// True when this process may give files away (effective user id 0).
pub fn running_as_root() -> bool {
    #[cfg(unix)]
    {
        nix::unistd::geteuid().is_root()
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Give the open file `f` to `o`.
pub(crate) fn chown_file(f: &std::fs::File, o: &Owner) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let (uid, gid) = o.ids_here();
        std::os::unix::fs::fchown(f, Some(uid), Some(gid))
    }
    #[cfg(not(unix))]
    {
        let _ = (f, o);
        Ok(())
    }
}

/// Give the link `name` in `dir` (not what it points at) to `o`, when running as root.
#[cfg(unix)]
pub(crate) fn chown_link(dir: &cap_std::fs::Dir, name: &str, o: &Owner) -> std::io::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let (uid, gid) = o.ids_here();
    nix::unistd::fchownat(
        dir,
        name,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(std::io::Error::from)
}
