//! Helpers for plugins that manage Windows nodes: PowerShell quoting, running a script
//! on a command target and checking it, and mapping a node's paths to this machine's.

use crate::{Error, ErrorCode, Result, commands};

/// A PowerShell single-quoted string literal: safe for any value. PowerShell takes the
/// typographic single quotes (U+2018 to U+201B) for `'` too, so each of them is doubled
/// as well (a doubled quote stands for one of itself).
#[must_use]
pub fn ps_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}'..='\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Run `script` on `target` (needs `command:powershell@<target>`) and return its
/// standard output. A non-zero exit becomes an error naming the target, `what` was being
/// done, and PowerShell's own message.
///
/// # Errors
/// The call was denied or failed, or the script exited non-zero.
pub fn powershell(target: &str, script: &str, what: &str) -> Result<Vec<u8>> {
    let r = commands::powershell(target, script)?;
    if r.status != 0 {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "node {target}: {what} failed (exit {}): {}",
                r.status,
                clip(&String::from_utf8_lossy(&r.stderr), 400)
            ),
        ));
    }
    Ok(r.stdout)
}

/// The first `max` characters of `s`, trimmed.
#[must_use]
pub fn clip(s: &str, max: usize) -> String {
    s.trim().chars().take(max).collect()
}

/// `C:\ClusterStorage\Volume1\vm\disk.vhdx` → the same file as this machine reaches it,
/// through `map`: `prefix=replacement` pairs separated by `;`, first match wins, prefix
/// compared without regard to case; backslashes after the prefix become slashes. An
/// empty map returns the path unchanged.
///
/// # Errors
/// A malformed entry, or no entry covers `path` (the message suggests one).
pub fn map_path(map: &str, path: &str) -> Result<String> {
    if map.is_empty() {
        return Ok(path.to_string());
    }
    for pair in map.split(';').filter(|p| !p.is_empty()) {
        let (from, to) = pair.split_once('=').ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("path-map entry `{pair}` is not prefix=replacement"),
            )
        })?;
        if path.len() >= from.len()
            && path.is_char_boundary(from.len())
            && path[..from.len()].eq_ignore_ascii_case(from)
        {
            return Ok(format!("{to}{}", path[from.len()..].replace('\\', "/")));
        }
    }
    Err(Error::new(
        ErrorCode::InvalidInput,
        format!(
            "no path-map entry covers {path}; add one such as `{}=/mnt/...`",
            path.split('\\').take(2).collect::<Vec<_>>().join("\\")
        ),
    ))
}

/// Join Windows path parts with single backslashes.
#[must_use]
pub fn join(base: &str, rest: &str) -> String {
    format!(
        "{}\\{}",
        base.trim_end_matches(['\\', '/']),
        rest.trim_start_matches(['\\', '/'])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_mapping() {
        assert_eq!(ps_quote("it's"), "'it''s'");
        assert_eq!(
            ps_quote("a\u{2019}; x; \u{2019}"),
            "'a\u{2019}\u{2019}; x; \u{2019}\u{2019}'"
        );
        assert_eq!(
            map_path(
                r"c:\clusterstorage\=/mnt/csv/",
                r"C:\ClusterStorage\Volume1\a b\x.vhdx"
            )
            .unwrap(),
            "/mnt/csv/Volume1/a b/x.vhdx"
        );
        assert!(map_path(r"C:\ClusterStorage\=/m/", r"D:\x").is_err());
        assert!(map_path("nonsense", r"D:\x").is_err());
        assert_eq!(join(r"C:\a\", r"\b"), r"C:\a\b");
    }
}
