//! What a folder backup leaves out: glob patterns and staying on one file system.
//!
//! A pattern without `/` matches a file or folder name at any depth (`*.tmp`,
//! `node_modules`); one with `/` matches the path from the backed-up folder (`logs/*.log`,
//! `build/**/cache`; a leading `/` is the folder itself). `*` and `?` stay inside one
//! name, `**` spans folders, `[abc]` and `{a,b}` work as in a shell. An excluded folder
//! is not entered. On Windows names match case-insensitively, as NTFS does. Lines of an
//! exclude file that are empty or start with `#` are ignored.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, ErrorKind, Result};

/// Compiled exclusions.
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    patterns: Vec<String>,
    /// Patterns without `/`, matched against a name.
    names: Option<GlobSet>,
    /// Patterns with `/`, matched against the path from the item's root.
    paths: Option<GlobSet>,
    /// Do not enter folders on another device than the item's root (Unix).
    pub one_file_system: bool,
}

fn glob(p: &str) -> Result<Glob> {
    GlobBuilder::new(p)
        .literal_separator(true)
        .case_insensitive(cfg!(windows))
        .backslash_escape(!cfg!(windows))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("exclude pattern `{p}`: {e}"),
            )
        })
}

impl Exclude {
    /// Compile `patterns` (exclude-file lines allowed: blanks and `#` comments skipped).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the pattern that does not parse.
    pub fn new(patterns: &[String], one_file_system: bool) -> Result<Self> {
        let mut kept = Vec::new();
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        let (mut any_name, mut any_path) = (false, false);
        for raw in patterns {
            let p = raw.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let p = p.replace('\\', if cfg!(windows) { "/" } else { "\\" });
            if p.trim_end_matches('/').contains('/') {
                paths.add(glob(p.trim_start_matches('/').trim_end_matches('/'))?);
                any_path = true;
            } else {
                names.add(glob(p.trim_end_matches('/'))?);
                any_name = true;
            }
            kept.push(raw.trim().to_string());
        }
        let build = |b: GlobSetBuilder, any: bool| -> Result<Option<GlobSet>> {
            any.then(|| {
                b.build().map_err(|e| {
                    Error::new(ErrorKind::InvalidInput, format!("exclude patterns: {e}"))
                })
            })
            .transpose()
        };
        Ok(Self {
            patterns: kept,
            names: build(names, any_name)?,
            paths: build(paths, any_path)?,
            one_file_system,
        })
    }

    /// The patterns in force.
    #[must_use]
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether `rel` (a path from the item's root, `/`-separated, not empty) is left out.
    #[must_use]
    pub fn excludes(&self, rel: &str) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.names.as_ref().is_some_and(|s| s.is_match(name))
            || self.paths.as_ref().is_some_and(|s| s.is_match(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str]) -> Exclude {
        Exclude::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>(), false).unwrap()
    }

    #[test]
    fn names_match_at_any_depth_and_paths_from_the_root() {
        let e = ex(&[
            "*.tmp",
            "node_modules",
            "logs/*.log",
            "/build/**/cache",
            "# a comment",
            "",
        ]);
        assert_eq!(e.patterns().len(), 4);
        assert!(e.excludes("a.tmp") && e.excludes("deep/down/b.tmp"));
        assert!(e.excludes("web/node_modules") && !e.excludes("web/node_modules_x"));
        assert!(e.excludes("logs/app.log"));
        assert!(!e.excludes("logs/old/app.log"), "* stays inside one name");
        assert!(
            !e.excludes("other/logs/app.log"),
            "a path pattern is anchored"
        );
        assert!(e.excludes("build/x/y/cache") && e.excludes("build/cache"));
        assert!(!e.excludes("src/main.rs"));
        assert!(!Exclude::default().excludes("anything"));
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let e = Exclude::new(&["ok".into(), "a[".into()], false).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("`a[`"), "{e}");
    }
}
