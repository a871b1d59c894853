//! What a folder backup leaves out: glob patterns and staying on one file system.
//!
//! A pattern without `/` matches a file or folder name at any depth (`*.tmp`,
//! `node_modules`); one with `/` matches the path from the backed-up folder (`logs/*.log`,
//! `build/**/cache`) or the whole path as restic writes it (`/srv/data/cache`,
//! `C:\data\cache`). A trailing `/` matches folders only (`cache/`, `*/` every folder). `*`
//! and `?` stay inside one name, `**` spans folders, `[abc]` and `{a,b}` work as in a
//! shell (a `{…}` holding a `/` makes the whole pattern a path pattern). A leading `./` is
//! dropped; `.` and `..` parts are refused. An excluded folder is not entered. On Windows
//! names match case-insensitively (any script, as NTFS does). `?` and `[…]` match one
//! byte, so they match an ASCII character only (`*` matches any name). Lines of an
//! exclude file that are empty or start with `#` are ignored, and so is a byte-order mark.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, ErrorKind, Result};

/// One kind of pattern (names or paths), compiled, with which of them match folders only.
#[derive(Debug, Clone, Default)]
struct Set {
    globs: Option<GlobSet>,
    dir_only: Vec<bool>,
}

impl Set {
    fn matches(&self, s: &str, is_dir: bool) -> bool {
        self.globs.as_ref().is_some_and(|g| {
            g.matches(s)
                .into_iter()
                .any(|i| is_dir || !self.dir_only[i])
        })
    }
}

/// Compiled exclusions.
#[derive(Debug, Clone, Default)]
pub struct Exclude {
    patterns: Vec<String>,
    names: Set,
    paths: Set,
    fold_case: bool,
    /// Do not enter folders on another device than the item's root (Unix).
    pub one_file_system: bool,
}

fn bad(p: &str, why: &dyn std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("exclude pattern `{p}`: {why}"),
    )
}

impl Exclude {
    /// Compile `patterns` (exclude-file lines allowed: blanks and `#` comments skipped).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming the pattern that does not parse.
    pub fn new(patterns: &[String], one_file_system: bool) -> Result<Self> {
        Self::build(patterns, one_file_system, cfg!(windows))
    }

    fn build(patterns: &[String], one_file_system: bool, fold_case: bool) -> Result<Self> {
        let mut kept = Vec::new();
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        let (mut name_dirs, mut path_dirs) = (Vec::new(), Vec::new());
        for raw in patterns {
            let shown = raw.trim_start_matches('\u{feff}').trim();
            if shown.is_empty() || shown.starts_with('#') {
                continue;
            }
            let mut p = if cfg!(windows) {
                shown.replace('\\', "/")
            } else {
                shown.to_string()
            };
            while let Some(rest) = p.strip_prefix("./") {
                p = rest.to_string();
            }
            let dir_only = p.ends_with('/');
            let p = p.trim_end_matches('/');
            let anchored = p.contains('/');
            let p = p.trim_start_matches('/');
            if p.is_empty() {
                return Err(bad(shown, &"it would leave out everything"));
            }
            if p.split('/').any(|c| c == "." || c == "..") {
                return Err(bad(shown, &"`.` and `..` are not allowed in a pattern"));
            }
            let p = if fold_case {
                p.to_lowercase()
            } else {
                p.to_string()
            };
            let g = GlobBuilder::new(&p)
                .literal_separator(true)
                .backslash_escape(!cfg!(windows))
                .build()
                .map_err(|e| bad(shown, &e))?;
            if anchored {
                paths.add(g);
                path_dirs.push(dir_only);
            } else {
                names.add(g);
                name_dirs.push(dir_only);
            }
            kept.push(shown.to_string());
        }
        let set = |b: GlobSetBuilder, dir_only: Vec<bool>| -> Result<Set> {
            Ok(Set {
                globs: if dir_only.is_empty() {
                    None
                } else {
                    Some(b.build().map_err(|e| bad("…", &e))?)
                },
                dir_only,
            })
        };
        Ok(Self {
            patterns: kept,
            names: set(names, name_dirs)?,
            paths: set(paths, path_dirs)?,
            fold_case,
            one_file_system,
        })
    }

    /// The patterns in force, as given.
    #[must_use]
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Whether the entry at `rel` (from the item's root, `/`-separated, not empty), whose
    /// whole path is `abs`, is left out.
    #[must_use]
    pub fn excludes(&self, rel: &str, abs: &std::path::Path, is_dir: bool) -> bool {
        if self.names.globs.is_none() && self.paths.globs.is_none() {
            return false;
        }
        let fold = |s: &str| {
            if self.fold_case {
                s.to_lowercase()
            } else {
                s.to_string()
            }
        };
        let name = fold(rel.rsplit('/').next().unwrap_or(rel));
        if self.names.matches(&name, is_dir) {
            return true;
        }
        if self.paths.globs.is_none() {
            return false;
        }
        // the whole path, as a pattern names it: `/` separators, no leading `/` or `\\?\`
        let mut whole = abs.to_string_lossy().into_owned();
        if cfg!(windows) {
            whole = whole.trim_start_matches(r"\\?\").replace('\\', "/");
        }
        let whole = fold(whole.trim_start_matches('/'));
        self.paths.matches(&fold(rel), is_dir) || self.paths.matches(&whole, is_dir)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn ex(p: &[&str]) -> Exclude {
        Exclude::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>(), false).unwrap()
    }

    fn file(e: &Exclude, rel: &str) -> bool {
        e.excludes(rel, &Path::new("/srv/data").join(rel), false)
    }

    fn dir(e: &Exclude, rel: &str) -> bool {
        e.excludes(rel, &Path::new("/srv/data").join(rel), true)
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
        assert!(file(&e, "a.tmp") && file(&e, "deep/down/b.tmp"));
        assert!(dir(&e, "web/node_modules") && !dir(&e, "web/node_modules_x"));
        assert!(file(&e, "logs/app.log"));
        assert!(!file(&e, "logs/old/app.log"), "* stays inside one name");
        assert!(
            !file(&e, "other/logs/app.log"),
            "a path pattern is anchored"
        );
        assert!(dir(&e, "build/x/y/cache") && dir(&e, "build/cache"));
        assert!(!file(&e, "src/main.rs"));
        assert!(!Exclude::default().excludes("x", Path::new("/x"), false));
    }

    #[test]
    fn trailing_slash_means_folders_only_and_whole_paths_work_as_in_restic() {
        let e = ex(&["cache/", "*/", "./tmp", "/srv/data/secret", "\u{feff}*.bak"]);
        assert!(
            dir(&e, "a/cache") && !file(&e, "a/cache"),
            "cache/ is folders only"
        );
        assert!(dir(&e, "anything"), "*/ is every folder");
        assert!(!file(&e, "plain.txt"), "…and no file");
        assert!(file(&e, "tmp") && dir(&e, "tmp"), "a leading ./ is dropped");
        assert!(file(&e, "secret"), "a whole path, as restic writes it");
        assert!(file(&e, "x.bak"), "a byte-order mark is ignored");
    }

    #[test]
    fn case_folding_covers_every_script() {
        let p = ["Ä*".to_string(), "RÉSUMÉ.TXT".to_string()];
        let e = Exclude::build(&p, false, true).unwrap();
        assert!(file(&e, "äb") && file(&e, "résumé.txt") && file(&e, "Résumé.txt"));
        let exact = Exclude::build(&p, false, false).unwrap();
        assert!(!file(&exact, "äb") && !file(&exact, "résumé.txt"));
    }

    #[test]
    fn bad_patterns_are_named() {
        for (p, why) in [
            ("a[", "`a[`"),
            ("/", "everything"),
            ("../x", "`.` and `..`"),
            ("a/./b", "`.` and `..`"),
        ] {
            let e = Exclude::new(&["ok".into(), p.into()], false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains(why), "{p}: {e}");
        }
    }
}
