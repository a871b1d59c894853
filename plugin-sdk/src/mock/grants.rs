//! Grants as the host reads them (`kind[:scope]`) and the checks every capability call
//! goes through: the same rules as `crates/plugin-host/src/policy.rs`.

use std::path::{Component, Path, PathBuf};

/// Longest path a plugin may name, in bytes.
pub(crate) const PATH_MAX_BYTES: usize = 4096;
/// Most components a path a plugin names may have.
pub(crate) const PATH_MAX_DEPTH: usize = 128;

/// A kind of capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Engine,
    Files,
    FilesWrite,
    Http,
    Command,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Engine => "engine",
            Self::Files => "files",
            Self::FilesWrite => "files-write",
            Self::Http => "http",
            Self::Command => "command",
        }
    }
}

/// One grant: a kind and its normalised scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) kind: Kind,
    pub(crate) scope: String,
}

impl Grant {
    /// Parse `kind[:scope]` as `rehydra plugins grant` does.
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        let (kind, scope) = spec.split_once(':').unwrap_or((spec, ""));
        let kind = match kind {
            "engine" => Kind::Engine,
            "files" => Kind::Files,
            "files-write" => Kind::FilesWrite,
            "http" => Kind::Http,
            "command" => Kind::Command,
            _ => {
                return Err(format!(
                    "unknown capability `{kind}` in `{spec}`; use engine, files:<folder>, files-write:<folder>, http:<host>, command:<program>[@<target>]"
                ));
            }
        };
        let scope = match kind {
            Kind::Engine if scope.is_empty() => String::new(),
            Kind::Engine => return Err("`engine` takes no scope".into()),
            _ if scope.is_empty() => return Err(format!("`{}` needs a scope", kind.name())),
            Kind::Files | Kind::FilesWrite => {
                let p = Path::new(scope);
                if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
                    return Err(format!(
                        "folder `{scope}` must be an absolute path without `..`"
                    ));
                }
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.to_path_buf())
                    .to_string_lossy()
                    .into_owned()
            }
            Kind::Http => {
                let h = scope.to_ascii_lowercase();
                let bare = h.strip_prefix("*.").unwrap_or(&h);
                let ok_chars = bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b':');
                if bare.is_empty() || !ok_chars {
                    return Err(format!("`{scope}` is not a host name"));
                }
                if let Some((_, port)) = bare.split_once(':')
                    && port.parse::<u16>().is_err()
                {
                    return Err(format!("`{scope}`: the port must be a number"));
                }
                h
            }
            Kind::Command => {
                let (prog, target) = scope.split_once('@').unwrap_or((scope, "local"));
                if prog.is_empty() || prog.contains(['/', '\\']) || target.is_empty() {
                    return Err(format!(
                        "`{scope}` must be a program name (no path) with an optional @target"
                    ));
                }
                format!("{prog}@{target}")
            }
        };
        Ok(Self { kind, scope })
    }
}

/// The grants of the plugin under test.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grants(pub(crate) Vec<Grant>);

impl Grants {
    pub(crate) fn has(&self, kind: Kind) -> bool {
        self.0.iter().any(|g| g.kind == kind)
    }

    /// The resolved path if `path` lies under a granted root of `kind` (a `files-write`
    /// root also allows reading); the reason otherwise.
    pub(crate) fn path(&self, kind: Kind, path: &str) -> Result<PathBuf, String> {
        if path.len() > PATH_MAX_BYTES {
            let mut end = 120;
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            return Err(format!(
                "path `{}…` is too long ({} bytes; at most {PATH_MAX_BYTES})",
                &path[..end],
                path.len()
            ));
        }
        let p = Path::new(path);
        if p.components().nth(PATH_MAX_DEPTH).is_some() {
            return Err(format!(
                "path `{path}` is too deep (more than {PATH_MAX_DEPTH} components)"
            ));
        }
        if !p.is_absolute() {
            return Err(format!("`{path}` is not an absolute path"));
        }
        let counts =
            |g: &&Grant| g.kind == kind || (kind == Kind::Files && g.kind == Kind::FilesWrite);
        let name = kind.name();
        if !self.0.iter().any(|g| counts(&g)) {
            return Err(format!(
                "`{path}` is outside the folders granted for `{name}` (nothing is granted; grant with: rehydra plugins grant <plugin> {name}:<folder>)"
            ));
        }
        let resolved = resolve(p).ok_or_else(|| format!("`{path}` cannot be resolved"))?;
        if self
            .0
            .iter()
            .filter(counts)
            .any(|g| resolved.starts_with(Path::new(&g.scope)))
        {
            Ok(resolved)
        } else {
            Err(format!(
                "`{path}` is outside the folders granted for `{name}` (grant with: rehydra plugins grant <plugin> {name}:<folder>)"
            ))
        }
    }

    /// True if requests to `host` on `port` are granted (a grant without a port allows the
    /// scheme's default port only; `*.domain` allows its subdomains).
    pub(crate) fn host(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.iter().filter(|g| g.kind == Kind::Http).any(|g| {
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

    /// True if `program` on `target` is granted.
    pub(crate) fn command(&self, program: &str, target: &str) -> bool {
        let want = format!("{program}@{target}");
        self.0
            .iter()
            .any(|g| g.kind == Kind::Command && g.scope == want)
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
