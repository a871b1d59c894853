//! Folders in object storage a plugin may read through the `files` capability:
//! `s3://BUCKET/PREFIX` (S3 and compatible stores) and `azure://CONTAINER/PREFIX` (Azure
//! Blob), the schemes of repository locations. What another tool keeps in a bucket (a
//! Velero backup) is read there, without copying it out first.
//!
//! An object path is checked before any request: the scheme, a bucket or container name,
//! and a key of plain segments (no empty, `.` or `..` segment, no backslash, control
//! character, `?`, `#` or `%`), so a key never means two things and never climbs out of
//! the granted prefix. Object storage is read-only for plugins.

use crate::grants::{PATH_MAX_BYTES, PATH_MAX_DEPTH};

/// Longest key, in bytes.
pub const KEY_MAX_BYTES: usize = 1024;

/// A checked object path: a bucket (or container) and a key under it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectPath {
    /// `s3` or `azure` (`az://` is read as `azure://`).
    pub scheme: &'static str,
    /// The bucket or container.
    pub bucket: String,
    /// The key, without a leading or trailing `/` (empty: the bucket's top).
    pub key: String,
}

/// The schemes, as written and as kept.
const SCHEMES: [(&str, &str); 3] = [("s3", "s3"), ("azure", "azure"), ("az", "azure")];

impl ObjectPath {
    /// True if `path` is written as an object-store URL (`s3://`, `azure://`, `az://`),
    /// whether or not it is a valid one: such a path is never read from the disk.
    pub fn is_url(path: &str) -> bool {
        path.split_once("://")
            .is_some_and(|(scheme, _)| SCHEMES.iter().any(|(s, _)| scheme.eq_ignore_ascii_case(s)))
    }

    /// Parse and check `path`.
    ///
    /// # Errors
    /// What is wrong with it, naming it.
    pub fn parse(path: &str) -> Result<Self, String> {
        let shown = crate::grants::shown(path);
        let bad = |why: &str| {
            Err(format!(
                "`{shown}` is not an object-storage folder or file: {why} (write s3://BUCKET/PREFIX or azure://CONTAINER/PREFIX)"
            ))
        };
        if path.len() > PATH_MAX_BYTES {
            return bad(&format!("longer than {PATH_MAX_BYTES} bytes"));
        }
        let Some((scheme, rest)) = path.split_once("://") else {
            return bad("no scheme");
        };
        let Some(&(_, scheme)) = SCHEMES.iter().find(|(s, _)| scheme.eq_ignore_ascii_case(s))
        else {
            return bad("an unknown scheme");
        };
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !bucket_ok {
            return bad(
                "the bucket or container must be 3 to 63 lower-case letters, digits, `-` or `.`",
            );
        }
        let key = key.strip_suffix('/').unwrap_or(key);
        if key.len() > KEY_MAX_BYTES {
            // S3's limit, and Azure Blob's in characters: the store would refuse it
            return bad(&format!("a key longer than {KEY_MAX_BYTES} bytes"));
        }
        if !key.is_empty() {
            let segments: Vec<&str> = key.split('/').collect();
            if segments.len() > PATH_MAX_DEPTH {
                return bad(&format!("deeper than {PATH_MAX_DEPTH} segments"));
            }
            for s in segments {
                if s.is_empty() || s == "." || s == ".." {
                    return bad("an empty, `.` or `..` segment");
                }
                if s.chars()
                    .any(|c| c.is_control() || matches!(c, '\\' | '?' | '#' | '%'))
                {
                    return bad("a control character, `\\`, `?`, `#` or `%` in a segment");
                }
            }
        }
        Ok(Self {
            scheme,
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// `scheme://bucket`: the store the host connects to.
    pub fn store(&self) -> String {
        format!("{}://{}", self.scheme, self.bucket)
    }

    /// The path as a URL, normalised (`azure://`, no trailing `/`).
    pub fn url(&self) -> String {
        if self.key.is_empty() {
            self.store()
        } else {
            format!("{}/{}", self.store(), self.key)
        }
    }

    /// The folder holding this path (the bucket's top for a top-level key, and itself).
    pub fn parent(&self) -> Self {
        Self {
            key: self
                .key
                .rsplit_once('/')
                .map(|(p, _)| p.to_string())
                .unwrap_or_default(),
            ..self.clone()
        }
    }

    /// True if this path is `root` or lies under it (whole segments: `a/bc` is not
    /// under `a/b`).
    pub fn within(&self, root: &Self) -> bool {
        self.scheme == root.scheme
            && self.bucket == root.bucket
            && (root.key.is_empty()
                || self.key == root.key
                || self
                    .key
                    .strip_prefix(&root.key)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_paths_are_checked_and_compared_by_segments() {
        let p = ObjectPath::parse("s3://velero-bucket/aks/backups/nightly-1/").unwrap();
        assert_eq!(p.url(), "s3://velero-bucket/aks/backups/nightly-1");
        assert_eq!(p.store(), "s3://velero-bucket");
        assert_eq!(p.parent().url(), "s3://velero-bucket/aks/backups");
        assert_eq!(
            p.parent().parent().parent().parent().url(),
            "s3://velero-bucket"
        );
        let az = ObjectPath::parse("AZ://velero/backups").unwrap();
        assert_eq!(az.url(), "azure://velero/backups");
        assert!(ObjectPath::is_url("Azure://x/y") && ObjectPath::is_url("s3://"));
        assert!(!ObjectPath::is_url("/srv/s3://x") && !ObjectPath::is_url("https://a/b"));
        let root = ObjectPath::parse("s3://velero-bucket/aks").unwrap();
        assert!(p.within(&root) && root.within(&root));
        assert!(
            !ObjectPath::parse("s3://velero-bucket/aksx/b")
                .unwrap()
                .within(&root)
        );
        assert!(
            !ObjectPath::parse("azure://velero-bucket/aks/b")
                .unwrap()
                .within(&root)
        );
        assert!(
            !ObjectPath::parse("s3://other-bucket/aks/b")
                .unwrap()
                .within(&root)
        );
        assert!(p.within(&ObjectPath::parse("s3://velero-bucket").unwrap()));
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Bucket/x",
            "s3://-bucket/x",
            "s3://bucket/a//b",
            "s3://bucket/a/../b",
            "s3://bucket/./b",
            "s3://bucket/a\\b",
            "s3://bucket/a?b",
            "s3://bucket/a#b",
            "s3://bucket/a%2f..",
            "s3://bucket/a\nb",
            &*format!("s3://bucket/{}", "k".repeat(1025)),
            "s3://user@bucket/a",
            "gs://bucket/a",
            "bucket/a",
        ] {
            let e = ObjectPath::parse(bad).unwrap_err();
            assert!(e.contains("not an object-storage"), "{bad}: {e}");
        }
    }
}
