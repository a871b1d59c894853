//! Which names can be written, and how a name from a backup is written on this system.
//!
//! A name from a backup (a content-map path component, a file name inside a guest's
//! disk) is hostile input. It is *refused* when it can never be one path component
//! anywhere (empty, `.`, `..`, containing `/` or NUL, longer than 255 bytes) and
//! otherwise written as it is, except on Windows, where characters Windows does not
//! allow in a name (`< > : " / \ | ? *` and control characters), a trailing dot or
//! space and the reserved device names (`CON`, `NUL`, `COM1`, `LPT1.txt`, …) are
//! percent-escaped (`a:b` → `a%3Ab`, `con.txt` → `%63on.txt`). `%` itself is always
//! escaped there, so two different names never become the same file name; names that
//! differ only in case still meet on Windows, which is why restores also check that
//! no two entries land on one target.
//!
//! Listing and restoring use the same function, so what a listing shows is what a
//! restore writes.

use std::borrow::Cow;

/// Why a name cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadName {
    /// The empty name.
    #[error("an empty name")]
    Empty,
    /// `.` or `..`.
    #[error("a name that means the folder itself or its parent (`.` or `..`)")]
    Dots,
    /// Contains `/` (the separator of every path we write).
    #[error("a name containing `/`")]
    Separator,
    /// Contains a NUL byte.
    #[error("a name containing a NUL byte")]
    Nul,
    /// Longer than 255 bytes.
    #[error("a name longer than 255 bytes")]
    TooLong,
}

/// The system whose naming rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// Linux, macOS and other Unix systems: any bytes but `/` and NUL.
    Unix,
    /// Windows (NTFS, ReFS, SMB shares served by Windows).
    Windows,
}

impl System {
    /// The system this program runs on.
    pub const fn host() -> Self {
        if cfg!(windows) {
            Self::Windows
        } else {
            Self::Unix
        }
    }
}

const RESERVED: [&str; 32] = [
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// Check `name` as one path component; the reason when it can never be one.
///
/// # Errors
/// See [`BadName`].
pub fn check(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        Err(BadName::Empty)
    } else if name == "." || name == ".." {
        Err(BadName::Dots)
    } else if name.contains('/') {
        Err(BadName::Separator)
    } else if name.contains('\0') {
        Err(BadName::Nul)
    } else if name.len() > 255 {
        Err(BadName::TooLong)
    } else {
        Ok(())
    }
}

/// `name` as it is written on this system (see the module documentation).
///
/// # Errors
/// A name that can never be one component.
pub fn component(name: &str) -> Result<Cow<'_, str>, BadName> {
    component_on(name, System::host())
}

/// `name` as it is written on `system`.
///
/// # Errors
/// A name that can never be one component.
pub fn component_on(name: &str, system: System) -> Result<Cow<'_, str>, BadName> {
    check(name)?;
    if system == System::Unix {
        return Ok(Cow::Borrowed(name));
    }
    let stem = name.split('.').next().unwrap_or("").trim_end_matches(' ');
    let reserved = RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem));
    let last = name.chars().count() - 1;
    let needs = |i: usize, c: char| {
        c < ' '
            || matches!(
                c,
                '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' | '%'
            )
            || (i == 0 && reserved)
            || (i == last && (c == '.' || c == ' '))
    };
    if !name.chars().enumerate().any(|(i, c)| needs(i, c)) {
        return Ok(Cow::Borrowed(name));
    }
    let mut out = String::with_capacity(name.len() + 8);
    for (i, c) in name.chars().enumerate() {
        if needs(i, c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    Ok(Cow::Owned(out))
}

/// The key under which two written names are the same file on `system` (Windows
/// compares names without regard to case).
pub fn collision_key(written: &str, system: System) -> String {
    match system {
        System::Unix => written.to_string(),
        // NTFS compares through its upcase table: each character's simple (one to one)
        // uppercase, so `ſ` meets `s` and `µ` meets `μ`, but `ß` stays `ß`
        System::Windows => written
            .chars()
            .map(|c| {
                let mut up = c.to_uppercase();
                match (up.next(), up.next()) {
                    (Some(u), None) => u,
                    _ => c,
                }
            })
            .collect(),
    }
}

/// One folder name for an item of a restore point when several items are restored side
/// by side. Item names are often paths (`/srv/data`, `C:\VMs\a.vhdx`), so separators and
/// drive colons become `_`; a name that leaves nothing usable is refused.
///
/// # Errors
/// The item name maps to no usable folder name (empty, `.`, `..`).
pub fn item_folder(item: &str) -> Result<String, BadName> {
    let flat: String = item
        .chars()
        .map(|c| {
            if matches!(c, '/' | '\\' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let flat = flat.trim_matches('_');
    Ok(component(flat)?.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_everywhere() {
        for (n, why) in [
            ("", BadName::Empty),
            (".", BadName::Dots),
            ("..", BadName::Dots),
            ("a/b", BadName::Separator),
            ("a\0b", BadName::Nul),
        ] {
            assert_eq!(component_on(n, System::Unix), Err(why), "{n:?}");
            assert_eq!(component_on(n, System::Windows), Err(why), "{n:?}");
        }
        assert_eq!(check(&"x".repeat(256)), Err(BadName::TooLong));
    }

    #[test]
    fn unix_writes_names_as_they_are() {
        for n in ["a\\b", "c:d", "CON", "x.", "100%", "..."] {
            assert_eq!(component_on(n, System::Unix).unwrap(), n);
        }
    }

    #[test]
    fn windows_escapes_what_it_cannot_hold() {
        let w = |n| component_on(n, System::Windows).unwrap().into_owned();
        assert_eq!(w("a\\b"), "a%5Cb");
        assert_eq!(w("c:d"), "c%3Ad");
        assert_eq!(w("con"), "%63on");
        assert_eq!(w("LPT1.txt"), "%4CPT1.txt");
        assert_eq!(w("console"), "console");
        assert_eq!(w("x."), "x%2E");
        assert_eq!(w("x "), "x%20");
        assert_eq!(w("100%"), "100%25");
        assert_eq!(w("plain.txt"), "plain.txt");
        assert_eq!(w("é?"), "é%3F");
        // injective: the escaped form of one name is never another name written as is
        assert_ne!(w("a:b"), w("a%3Ab"));
    }

    #[test]
    fn windows_names_meet_as_ntfs_compares_them() {
        let k = |n| collision_key(n, System::Windows);
        for (a, b) in [
            ("Ab", "aB"),
            ("ſ", "s"),
            ("ı", "I"),
            ("µ", "μ"),
            ("ς", "σ"),
            ("ϐ", "β"),
        ] {
            assert_eq!(k(a), k(b), "{a} {b}");
        }
        assert_ne!(k("ß"), k("ss"));
        assert_ne!(
            collision_key("Ab", System::Unix),
            collision_key("aB", System::Unix)
        );
        let w = |n| component_on(n, System::Windows).unwrap().into_owned();
        for n in ["COM0", "lpt¹", "CONIN$", "conout$.log"] {
            assert!(w(n).starts_with('%'), "{n} → {}", w(n));
        }
    }

    #[test]
    fn item_folders() {
        assert_eq!(item_folder("/srv/data").unwrap(), "srv_data");
        assert_eq!(item_folder("C:\\VMs\\a.vhdx").unwrap(), "C__VMs_a.vhdx");
        assert_eq!(item_folder(".."), Err(BadName::Dots));
        assert_eq!(item_folder("/"), Err(BadName::Empty));
        assert_eq!(item_folder("/../"), Err(BadName::Dots));
    }
}
