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
        let uid = self.user.as_deref().and_then(ids::user).unwrap_or(self.uid);
        let gid = self
            .group
            .as_deref()
            .and_then(ids::group)
            .unwrap_or(self.gid);
        (uid, gid)
    }
}

/// Ids of user and group names on this machine. A restore gives thousands of files the
/// same few owners: each name is looked up (`/etc/passwd`, `/etc/group`, NSS) once per
/// [`ids::FRESH`], not once per file, and a name added since is seen after that.
#[cfg(unix)]
mod ids {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    pub(super) const FRESH: Duration = Duration::from_secs(30);
    /// Names kept (a hostile restore point may name a new one per file).
    const MAX_NAMES: usize = 4096;
    /// Longer names are no user's or group's here (`LOGIN_NAME_MAX` is 256): the
    /// recorded id is used, and nothing is looked up or kept.
    const MAX_NAME_BYTES: usize = 256;

    #[derive(Default)]
    struct Known {
        since: Option<Instant>,
        users: HashMap<String, Option<u32>>,
        groups: HashMap<String, Option<u32>>,
    }

    static KNOWN: Mutex<Option<Known>> = Mutex::new(None);

    fn known() -> std::sync::MutexGuard<'static, Option<Known>> {
        KNOWN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn id(name: &str, users: bool) -> Option<u32> {
        if name.len() > MAX_NAME_BYTES {
            return None;
        }
        {
            let mut guard = known();
            let known = guard.get_or_insert_with(Known::default);
            if known.since.is_none_or(|t| t.elapsed() > FRESH) {
                *known = Known::default();
            }
            let map = if users { &known.users } else { &known.groups };
            if let Some(id) = map.get(name) {
                return *id;
            }
        }
        // looked up without the lock: a slow directory (LDAP, sssd) stalls no other restore
        let found = if users {
            nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
        } else {
            nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
        };
        let mut guard = known();
        let known = guard.get_or_insert_with(Known::default);
        if known.users.len() + known.groups.len() >= MAX_NAMES {
            *known = Known::default();
        }
        known.since.get_or_insert_with(Instant::now);
        let map = if users {
            &mut known.users
        } else {
            &mut known.groups
        };
        map.insert(name.to_string(), found);
        found
    }

    pub(super) fn user(name: &str) -> Option<u32> {
        id(name, true)
    }

    pub(super) fn group(name: &str) -> Option<u32> {
        id(name, false)
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

#[cfg(all(test, unix))]
mod tests {
    use super::Owner;

    #[test]
    fn recorded_names_win_over_recorded_ids_and_unknown_names_keep_the_ids() {
        let o = |user: &str, group: &str| Owner {
            uid: 4242,
            gid: 4343,
            user: Some(user.into()),
            group: Some(group.into()),
        };
        let root = nix::unistd::Group::from_gid(0.into())
            .unwrap()
            .unwrap()
            .name;
        for _ in 0..2 {
            // the second time from what the first looked up
            assert_eq!(o("root", &root).ids_here(), (0, 0));
            assert_eq!(
                o("no-such-user-here", "no-such-group-here").ids_here(),
                (4242, 4343)
            );
        }
    }
}
