//! Capabilities, grants and trusted publishers: the data the admin controls.
//!
//! Everything is denied by default. A grant is `kind[:scope]`:
//!
//! | grant | allows |
//! |---|---|
//! | `engine` | storing into / reading from the repository of the current job |
//! | `files:/srv/data` | reading under `/srv/data` (symlinks resolved first) |
//! | `files-write:/restore` | writing under `/restore` |
//! | `http:management.azure.com` | requests to that host on the scheme's default port (`*.vault.azure.net` for subdomains, `host:8443` for another port) |
//! | `command:qemu-img` | running `qemu-img` on this machine (`command:pwsh@hv01` for a target) |
//! | `ldap:dc1.contoso.local` | searching and changing that directory, as the account the admin configured for it |

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::PluginError;

/// Longest path a plugin may name, in bytes; checked before anything touches the disk.
pub const PATH_MAX_BYTES: usize = 4096;
/// Most components a path a plugin names may have.
pub const PATH_MAX_DEPTH: usize = 128;

/// A kind of capability.
#[derive(
    Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord, ts_rs::TS,
)]
#[serde(rename_all = "kebab-case")]
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
}

impl CapabilityKind {
    /// Name as written in grants and manifests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Engine => "engine",
            Self::Files => "files",
            Self::FilesWrite => "files-write",
            Self::Http => "http",
            Self::Command => "command",
            Self::Ldap => "ldap",
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
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Engine,
            Self::Files,
            Self::FilesWrite,
            Self::Http,
            Self::Command,
            Self::Ldap,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

/// One capability granted to a plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    pub fn parse(spec: &str) -> Result<Self, PluginError> {
        let (kind, scope) = spec.split_once(':').map_or((spec, ""), |(k, s)| (k, s));
        let kind = CapabilityKind::parse(kind).ok_or_else(|| {
            PluginError::Invalid(format!("unknown capability `{kind}` in `{spec}`; use engine, files:<folder>, files-write:<folder>, http:<host>, command:<program>[@<target>], ldap:<server>"))
        })?;
        let scope = match kind {
            CapabilityKind::Engine if scope.is_empty() => String::new(),
            CapabilityKind::Engine => {
                return Err(PluginError::Invalid("`engine` takes no scope".into()));
            }
            _ if scope.is_empty() => {
                return Err(PluginError::Invalid(format!(
                    "`{}` needs a scope, e.g. {}",
                    kind.name(),
                    example(kind)
                )));
            }
            CapabilityKind::Files | CapabilityKind::FilesWrite => {
                let p = Path::new(scope);
                if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
                    return Err(PluginError::Invalid(format!(
                        "folder `{scope}` must be an absolute path without `..`"
                    )));
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
                if bare.is_empty()
                    || !bare
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':')
                {
                    return Err(PluginError::Invalid(format!(
                        "`{scope}` is not a host name (e.g. management.azure.com, *.vault.azure.net, 127.0.0.1:8080)"
                    )));
                }
                if let Some((_, port)) = bare.split_once(':')
                    && port.parse::<u16>().is_err()
                {
                    return Err(PluginError::Invalid(format!(
                        "`{scope}`: the port must be a number (e.g. 127.0.0.1:8080)"
                    )));
                }
                h
            }
            CapabilityKind::Ldap => {
                let (name, port) = scope.split_once(':').unwrap_or((scope, "636"));
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                    || port.parse::<u16>().is_err()
                {
                    return Err(PluginError::Invalid(format!(
                        "`{scope}` is not a directory server (a host name or address with an optional port, e.g. dc1.contoso.local)"
                    )));
                }
                scope.to_ascii_lowercase()
            }
            CapabilityKind::Command => {
                let (prog, target) = scope.split_once('@').unwrap_or((scope, "local"));
                if prog.is_empty() || prog.contains('/') || prog.contains('\\') || target.is_empty()
                {
                    return Err(PluginError::Invalid(format!(
                        "`{scope}` must be a program name (no path) with an optional @target"
                    )));
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

fn example(kind: CapabilityKind) -> &'static str {
    match kind {
        CapabilityKind::Files => "files:/srv/data",
        CapabilityKind::FilesWrite => "files-write:/srv/restore",
        CapabilityKind::Http => "http:management.azure.com",
        CapabilityKind::Command => "command:qemu-img",
        CapabilityKind::Ldap => "ldap:dc1.contoso.local",
        CapabilityKind::Engine => "engine",
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
            .map(|g| PathBuf::from(&g.scope))
            .collect()
    }

    /// The resolved path if `path` lies under a granted root of `kind`.
    ///
    /// Paths longer than [`PATH_MAX_BYTES`] or deeper than [`PATH_MAX_DEPTH`], and any
    /// path when nothing of `kind` is granted, are refused before the disk is touched.
    /// Symlinks are resolved (for a path that does not exist yet, its nearest existing
    /// ancestor), so a link inside a root cannot lead outside it.
    pub fn path(&self, kind: CapabilityKind, path: &str) -> Result<PathBuf, String> {
        let shown = || {
            let mut end = path.len().min(120);
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            if end < path.len() {
                format!("{}…", &path[..end])
            } else {
                path.to_string()
            }
        };
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
        if !self.0.iter().any(|g| counts(&g)) {
            return Err(format!(
                "`{path}` is outside the folders granted for `{}` (nothing is granted; grant with: rehydra plugins grant <plugin> {}:<folder>)",
                kind.name(),
                kind.name()
            ));
        }
        let resolved = resolve(p).ok_or_else(|| format!("`{path}` cannot be resolved"))?;
        let ok = self
            .0
            .iter()
            .filter(counts)
            .any(|g| resolved.starts_with(Path::new(&g.scope)));
        if ok {
            Ok(resolved)
        } else {
            Err(format!(
                "`{path}` is outside the folders granted for `{}` (grant with: rehydra plugins grant <plugin> {}:<folder>)",
                kind.name(),
                kind.name()
            ))
        }
    }

    /// True if requests to `host` on `port` are granted. A grant without a port allows
    /// only `default_port` (the scheme's: 443 for https, 80 for http); `host:8443` allows
    /// that port only.
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

    /// True if `program` on `target` is granted.
    pub fn command(&self, program: &str, target: &str) -> bool {
        let want = format!("{program}@{target}");
        self.0
            .iter()
            .any(|g| g.kind == CapabilityKind::Command && g.scope == want)
    }
}

/// Canonical form of `p`; for a path that does not exist, the canonical nearest existing
/// ancestor joined with the rest (which may not contain `..`).
fn resolve(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    let mut rest = Vec::new();
    let mut cur = p;
    loop {
        let name = cur.file_name()?;
        rest.push(name.to_owned());
        cur = cur.parent()?;
        if let Ok(c) = std::fs::canonicalize(cur) {
            if rest.iter().any(|n| n == "..")
                || p.components().any(|c| matches!(c, Component::ParentDir))
            {
                return None;
            }
            let mut out = c;
            for n in rest.iter().rev() {
                out.push(n);
            }
            return Some(out);
        }
    }
}

/// A publisher key the admin trusts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustedKey {
    /// Publisher name (as in plugin manifests).
    pub publisher: String,
    /// ed25519 public key, hex.
    pub key: String,
}

/// Parse a 32-byte ed25519 public key in hex.
///
/// # Errors
/// Not 64 hex digits or not a valid point.
pub fn parse_public_key(hex_key: &str) -> Result<ed25519_dalek::VerifyingKey, PluginError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            PluginError::Invalid(format!(
                "`{hex_key}` is not an ed25519 public key (64 hex digits)"
            ))
        })?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| PluginError::Invalid(format!("`{hex_key}` is not a valid ed25519 public key")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_check() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("in")).unwrap();
        std::fs::create_dir(root.join("out")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("out"), root.join("in/escape")).unwrap();
        let g = Grants(vec![
            Grant::parse(&format!("files:{}", root.join("in").display())).unwrap(),
            Grant::parse("http:*.vault.azure.net").unwrap(),
            Grant::parse("command:qemu-img").unwrap(),
        ]);
        assert!(
            g.path(
                CapabilityKind::Files,
                root.join("in/new/file").to_str().unwrap()
            )
            .is_ok()
        );
        assert!(
            g.path(CapabilityKind::Files, root.join("out").to_str().unwrap())
                .is_err()
        );
        assert!(
            g.path(
                CapabilityKind::Files,
                root.join("in/../out").to_str().unwrap()
            )
            .is_err()
        );
        #[cfg(unix)]
        assert!(
            g.path(
                CapabilityKind::Files,
                root.join("in/escape/x").to_str().unwrap()
            )
            .is_err()
        );
        assert!(
            g.path(
                CapabilityKind::FilesWrite,
                root.join("in").to_str().unwrap()
            )
            .is_err()
        );
        let w = Grants(vec![
            Grant::parse(&format!("files-write:{}", root.join("out").display())).unwrap(),
        ]);
        assert!(
            w.path(CapabilityKind::Files, root.join("out/x").to_str().unwrap())
                .is_ok(),
            "write implies read"
        );
        assert!(g.host("kv1.vault.azure.net", 443, 443));
        assert!(!g.host("vault.azure.net.evil.com", 443, 443));
        assert!(
            !g.host("kv1.vault.azure.net", 8443, 443),
            "no port: the default only"
        );
        let arm = Grants(vec![
            Grant::parse("http:management.azure.com").unwrap(),
            Grant::parse("http:127.0.0.1:8080").unwrap(),
        ]);
        assert!(arm.host("management.azure.com", 443, 443));
        assert!(arm.host("management.azure.com", 80, 80));
        assert!(!arm.host("management.azure.com", 8443, 443));
        assert!(!arm.host("management.azure.com", 443, 80));
        assert!(arm.host("127.0.0.1", 8080, 80) && arm.host("127.0.0.1", 8080, 443));
        assert!(!arm.host("127.0.0.1", 80, 80));
        // long and deep paths are refused before anything is resolved
        let long = format!("{}/{}", root.display(), "x".repeat(PATH_MAX_BYTES));
        assert!(
            w.path(CapabilityKind::Files, &long)
                .unwrap_err()
                .contains("too long")
        );
        let deep = format!(
            "{}{}",
            root.join("out").display(),
            "/a".repeat(PATH_MAX_DEPTH)
        );
        assert!(
            w.path(CapabilityKind::Files, &deep)
                .unwrap_err()
                .contains("too deep")
        );
        assert!(
            Grants::default()
                .path(CapabilityKind::Files, "/etc/passwd")
                .unwrap_err()
                .contains("nothing is granted")
        );
        assert!(g.command("qemu-img", "local"));
        assert!(!g.command("qemu-img", "hv01"));
        assert!(Grant::parse("http:host:x").is_err() && Grant::parse("http:a:1:2").is_err());
        assert!(Grant::parse("files:relative").is_err());
        assert!(Grant::parse("root").is_err());
        assert!(Grant::parse("command:/bin/sh").is_err());
        assert_eq!(Grant::parse("engine").unwrap().spec(), "engine");
    }
}
