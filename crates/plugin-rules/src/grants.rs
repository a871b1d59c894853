//! Capabilities and grants: what a grant (`kind[:scope]`) allows, and the checks every
//! capability call goes through.
//!
//! Everything is denied by default. A grant is `kind[:scope]`:
//!
//! | grant | allows |
//! |---|---|
//! | `engine` | storing into / reading from the repository of the current job |
//! | `files:/srv/data` | reading under `/srv/data` (symlinks resolved first) |
//! | `files:s3://velero/backups` | reading the objects under that prefix (`azure://CONTAINER/PREFIX` for Azure Blob; never writing) |
//! | `files-write:/restore` | writing under `/restore` |
//! | `http:management.azure.com` | requests to that host on the scheme's default port (`*.vault.azure.net` for subdomains, `host:8443` for another port) |
//! | `command:qemu-img` | running `qemu-img` on this machine (`command:pwsh@hv01` for a target) |
//! | `ldap:dc1.contoso.local` | searching and changing that directory, as the account the admin configured for it |
//! | `sql:sql01.contoso.local` | running T-SQL on that SQL Server instance, as the login the admin configured for it |

use std::path::{Component, Path, PathBuf};

use crate::objects::ObjectPath;

/// Longest path a plugin may name, in bytes; checked before anything touches the disk.
pub const PATH_MAX_BYTES: usize = 4096;
/// Most components a path a plugin names may have.
pub const PATH_MAX_DEPTH: usize = 128;

/// A kind of capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "kebab-case"))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum CapabilityKind {
    /// The backup engine.
    Engine,
    /// Read files under roots.
    Files,
    /// Write files under roots.
    FilesWrite,
    /// HTTP(S) to hosts.
    Http,
    /// Commands / PowerShell on targets.
    Command,
    /// LDAP directories the admin configured.
    Ldap,
    /// SQL Server instances the admin configured.
    Sql,
}

impl CapabilityKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::Engine,
        Self::Files,
        Self::FilesWrite,
        Self::Http,
        Self::Command,
        Self::Ldap,
        Self::Sql,
    ];

    /// Name as written in grants and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Engine => "engine",
            Self::Files => "files",
            Self::FilesWrite => "files-write",
            Self::Http => "http",
            Self::Command => "command",
            Self::Ldap => "ldap",
            Self::Sql => "sql",
        }
    }

    /// What it lets a plugin do, for the consent screen.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Engine => "store data in and read data from the repository of the job",
            Self::Files => "read files and folders",
            Self::FilesWrite => "create and replace files and folders",
            Self::Http => "send web requests (the host adds your credentials)",
            Self::Command => "run programs or PowerShell",
            Self::Ldap => "read and change directories (the host binds with your account)",
            Self::Sql => "run T-SQL on SQL Server instances (the host signs in with your login)",
        }
    }

    /// A grant of this kind, as an example for messages.
    fn example(self) -> &'static str {
        match self {
            Self::Files => "files:/srv/data",
            Self::FilesWrite => "files-write:/srv/restore",
            Self::Http => "http:management.azure.com",
            Self::Command => "command:qemu-img",
            Self::Ldap => "ldap:dc1.contoso.local",
            Self::Sql => "sql:sql01.contoso.local",
            Self::Engine => "engine",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// A grant that cannot be parsed: unknown kind, missing or malformed scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidGrant(pub String);

/// One capability granted to a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Grant {
    /// Kind.
    pub kind: CapabilityKind,
    /// Scope: a root folder, a host name, `program[@target]`; empty for `engine`.
    pub scope: String,
}

impl Grant {
    /// Parse `kind[:scope]`, normalising the scope (folders must be absolute).
    ///
    /// # Errors
    /// Unknown kind, missing or malformed scope.
    pub fn parse(spec: &str) -> Result<Self, InvalidGrant> {
        let invalid = |m: String| Err(InvalidGrant(m));
        let (kind, scope) = spec.split_once(':').unwrap_or((spec, ""));
        let Some(kind) = CapabilityKind::parse(kind) else {
            return invalid(format!(
                "unknown capability `{kind}` in `{spec}`; use engine, files:<folder>, files-write:<folder>, http:<host>, command:<program>[@<target>], ldap:<server>, sql:<server>"
            ));
        };
        let scope = match kind {
            CapabilityKind::Engine if scope.is_empty() => String::new(),
            CapabilityKind::Engine => return invalid("`engine` takes no scope".into()),
            _ if scope.is_empty() => {
                return invalid(format!(
                    "`{}` needs a scope, e.g. {}",
                    kind.name(),
                    kind.example()
                ));
            }
            CapabilityKind::FilesWrite if ObjectPath::is_url(scope) => {
                return invalid(format!(
                    "`{scope}`: object storage is read-only for plugins; grant files:{scope} to read it"
                ));
            }
            CapabilityKind::Files if ObjectPath::is_url(scope) => {
                ObjectPath::parse(scope).map_err(InvalidGrant)?.url()
            }
            CapabilityKind::Files | CapabilityKind::FilesWrite => {
                let p = Path::new(scope);
                if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
                    return invalid(format!(
                        "folder `{scope}` must be an absolute path without `..`"
                    ));
                }
                // canonical when it exists, so symlinked roots compare like the paths checked against them
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.to_path_buf())
                    .to_string_lossy()
                    .into_owned()
            }
            CapabilityKind::Http => {
                let h = scope.to_ascii_lowercase();
                let bare = h.strip_prefix("*.").unwrap_or(&h);
                let host_chars = bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':');
                if bare.is_empty() || !host_chars {
                    return invalid(format!(
                        "`{scope}` is not a host name (e.g. management.azure.com, *.vault.azure.net, 127.0.0.1:8080)"
                    ));
                }
                if let Some((_, port)) = bare.split_once(':')
                    && port.parse::<u16>().is_err()
                {
                    return invalid(format!(
                        "`{scope}`: the port must be a number (e.g. 127.0.0.1:8080)"
                    ));
                }
                h
            }
            CapabilityKind::Ldap | CapabilityKind::Sql => {
                let (name, port) = scope.split_once(':').unwrap_or((scope, "1"));
                let name_chars = name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if name.is_empty() || !name_chars || port.parse::<u16>().is_err() {
                    let what = if kind == CapabilityKind::Ldap {
                        "a directory server"
                    } else {
                        "a SQL Server instance"
                    };
                    return invalid(format!(
                        "`{scope}` is not {what} (a host name or address with an optional port, e.g. {})",
                        &kind.example()[kind.name().len() + 1..]
                    ));
                }
                scope.to_ascii_lowercase()
            }
            CapabilityKind::Command => {
                let (prog, target) = scope.split_once('@').unwrap_or((scope, "local"));
                if prog.is_empty() || prog.contains(['/', '\\']) || target.is_empty() {
                    return invalid(format!(
                        "`{scope}` must be a program name (no path) with an optional @target"
                    ));
                }
                format!("{prog}@{target}")
            }
        };
        Ok(Self { kind, scope })
    }

    /// `kind:scope` as the admin writes it.
    pub fn spec(&self) -> String {
        if self.scope.is_empty() {
            self.kind.name().to_string()
        } else {
            format!("{}:{}", self.kind.name(), self.scope)
        }
    }
}

/// The grants of one plugin, with the checks the capability calls use.
#[derive(Debug, Clone, Default)]
pub struct Grants(pub Vec<Grant>);

impl Grants {
    /// True if `kind` is granted at all.
    pub fn has(&self, kind: CapabilityKind) -> bool {
        self.0.iter().any(|g| g.kind == kind)
    }

    /// The folders the plugin may read (its `files` and `files-write` roots): every file
    /// the engine opens on its behalf, such as a disk image's parents, must lie in them.
    pub fn read_roots(&self) -> Vec<PathBuf> {
        self.0
            .iter()
            .filter(|g| matches!(g.kind, CapabilityKind::Files | CapabilityKind::FilesWrite))
            .filter(|g| !ObjectPath::is_url(&g.scope))
            .map(|g| PathBuf::from(&g.scope))
            .collect()
    }

    /// The resolved path if `path` lies under a granted root of `kind`; the reason
    /// otherwise.
    ///
    /// Paths longer than [`PATH_MAX_BYTES`] or deeper than [`PATH_MAX_DEPTH`], and any
    /// path when nothing of `kind` is granted, are refused before the disk is touched.
    /// Symlinks are resolved (for a path that does not exist yet, its nearest existing
    /// ancestor), so a link inside a root cannot lead outside it.
    pub fn path(&self, kind: CapabilityKind, path: &str) -> Result<PathBuf, String> {
        let shown = || shown(path);
        if path.len() > PATH_MAX_BYTES {
            return Err(format!(
                "path `{}` is too long ({} bytes; at most {PATH_MAX_BYTES})",
                shown(),
                path.len()
            ));
        }
        let p = Path::new(path);
        if p.components().nth(PATH_MAX_DEPTH).is_some() {
            return Err(format!(
                "path `{}` is too deep (more than {PATH_MAX_DEPTH} components)",
                shown()
            ));
        }
        if !p.is_absolute() {
            return Err(format!("`{path}` is not an absolute path"));
        }
        // a write grant includes reading (and checking) what is under it
        let counts = |g: &&Grant| {
            g.kind == kind
                || (kind == CapabilityKind::Files && g.kind == CapabilityKind::FilesWrite)
        };
        let name = kind.name();
        if !self.0.iter().any(|g| counts(&g)) {
            return Err(format!(
                "`{path}` is outside the folders granted for `{name}` (nothing is granted; grant with: rehydra plugins grant <plugin> {name}:<folder>)"
            ));
        }
        let resolved = resolve(p).ok_or_else(|| format!("`{path}` cannot be resolved"))?;
        let inside = self
            .0
            .iter()
            .filter(counts)
            .any(|g| resolved.starts_with(Path::new(&g.scope)));
        if inside {
            Ok(resolved)
        } else {
            Err(format!(
                "`{path}` is outside the folders granted for `{name}` (grant with: rehydra plugins grant <plugin> {name}:<folder>)"
            ))
        }
    }

    /// The checked object path if `path` (`s3://…`, `azure://…`) lies under a granted
    /// `files:` folder of object storage; the reason otherwise. Only reads: object
    /// storage is never written by a plugin.
    pub fn object(&self, path: &str) -> Result<ObjectPath, String> {
        let p = ObjectPath::parse(path)?;
        let inside = self
            .0
            .iter()
            .filter(|g| g.kind == CapabilityKind::Files && ObjectPath::is_url(&g.scope))
            .filter_map(|g| ObjectPath::parse(&g.scope).ok())
            .any(|root| p.within(&root));
        if inside {
            Ok(p)
        } else {
            Err(format!(
                "`{}` is outside the object-storage folders granted for `files` (grant its folder with: rehydra plugins grant <plugin> files:{})",
                shown(path),
                p.parent().url()
            ))
        }
    }

    /// True if requests to `host` on `port` are granted. A grant without a port allows
    /// only `default_port` (the scheme's: 443 for https, 80 for http); `host:8443` allows
    /// that port only; `*.domain` allows its subdomains.
    pub fn host(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.0
            .iter()
            .filter(|g| g.kind == CapabilityKind::Http)
            .any(|g| {
                let (pattern, granted_port) = match g.scope.rsplit_once(':') {
                    Some((h, p)) => match p.parse::<u16>() {
                        Ok(p) => (h, p),
                        Err(_) => return false,
                    },
                    None => (g.scope.as_str(), default_port),
                };
                granted_port == port
                    && (pattern == host
                        || pattern
                            .strip_prefix("*.")
                            .is_some_and(|d| host.ends_with(&format!(".{d}"))))
            })
    }

    /// True if the directory `server` (as the admin named it) is granted.
    pub fn directory(&self, server: &str) -> bool {
        let server = server.to_ascii_lowercase();
        self.0
            .iter()
            .any(|g| g.kind == CapabilityKind::Ldap && g.scope == server)
    }

    /// True if the SQL Server instance `server` (as the admin named it) is granted.
    pub fn sql_server(&self, server: &str) -> bool {
        let server = server.to_ascii_lowercase();
        self.0
            .iter()
            .any(|g| g.kind == CapabilityKind::Sql && g.scope == server)
    }

    /// True if `program` on `target` is granted. A node of a cluster target
    /// (`<cluster>/<node>`) is covered by the grant on its cluster: the admin grants the
    /// cluster, and the host checks that the cluster lists the node.
    pub fn command(&self, program: &str, target: &str) -> bool {
        let cluster = target
            .split_once('/')
            .map(|(c, _)| format!("{program}@{c}"));
        let want = format!("{program}@{target}");
        self.0.iter().any(|g| {
            g.kind == CapabilityKind::Command
                && (g.scope == want || cluster.as_ref().is_some_and(|c| g.scope == *c))
        })
    }
}

/// `path` for a message: its first 120 bytes (at a character boundary), `…` if cut.
pub(crate) fn shown(path: &str) -> String {
    let mut end = path.len().min(120);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    if end < path.len() {
        format!("{}…", &path[..end])
    } else {
        path.to_string()
    }
}

/// Canonical form of `p`; for a path that does not exist, the canonical nearest existing
/// ancestor joined with the rest (which may not contain `..`).
fn resolve(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return None;
    }
    let mut rest = Vec::new();
    let mut cur = p;
    loop {
        rest.push(cur.file_name()?.to_owned());
        cur = cur.parent()?;
        if let Ok(mut out) = std::fs::canonicalize(cur) {
            out.extend(rest.iter().rev());
            return Some(out);
        }
    }
}

#[cfg(test)]
mod tests;
