//! A Velero backup's tarball, read: `resources/<resource[.group]>/namespaces/<ns>/<name>.json`
//! and `resources/<resource[.group]>/cluster/<name>.json`, and since format 1.1 the same
//! files under `resources/<type>/<version>-preferredversion/…`, preferred when both are
//! present. It is another system's file: paths are checked, links and devices refused,
//! every entry and the whole bounded. Only the SDK and this crate's name rules are used,
//! so the fuzz targets compile this file as it is.

use std::collections::BTreeMap;
use std::io::Read;

use rehydra_plugin_sdk::kube::{is_label, is_subdomain};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::shown;
use serde_json::Value;

use crate::api::is_resource;
use crate::objects::is_name;

/// An `invalid-input` error.
pub fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidInput, m)
}

/// One entry's bytes at the most.
const ENTRY_MAX: u64 = 16 << 20;
/// All entries' bytes at the most.
const TOTAL_MAX: u64 = 256 << 20;
/// Entries at the most.
const ENTRIES_MAX: usize = 500_000;

/// Where a tar entry's object lives, from its path.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
pub struct Place {
    /// `resource[.group]`.
    pub key: String,
    pub namespace: Option<String>,
    pub name: String,
    /// Under `<version>-preferredversion/`.
    pub preferred: bool,
}

/// Read a tar entry's path; `None` for what is not an object (`metadata/version`, other
/// versions of a type).
///
/// # Errors
/// `invalid-input` for a path under `resources/` that no Velero writes.
pub fn place(path: &str) -> Result<Option<Place>> {
    let Some(rest) = path.strip_prefix("resources/") else {
        return Ok(None);
    };
    if path.ends_with('/') {
        return Ok(None); // a folder entry
    }
    let bad = || {
        invalid(format!(
            "the Velero backup holds an unexpected path `{}`",
            shown(path, 160)
        ))
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (key, rest, preferred) = match parts.as_slice() {
        [key, v, rest @ ..] if v.ends_with("-preferredversion") => (*key, rest, true),
        // another version of the type (EnableAPIGroupVersions): the preferred one is used
        [_, v, ..] if *v != "namespaces" && *v != "cluster" => return Ok(None),
        [key, rest @ ..] => (*key, rest, false),
        [] => return Err(bad()),
    };
    let (resource, group) = key.split_once('.').unwrap_or((key, ""));
    let type_ok = is_resource(resource) && (group.is_empty() || is_subdomain(group));
    let file = |f: &str| {
        f.strip_suffix(".json")
            .filter(|n| is_name(n))
            .map(str::to_string)
    };
    let (namespace, name) = match rest {
        ["namespaces", ns, f] if is_label(ns) => (Some((*ns).to_string()), file(f)),
        ["cluster", f] => (None, file(f)),
        _ => return Err(bad()),
    };
    match name {
        Some(name) if type_ok => Ok(Some(Place {
            key: key.to_string(),
            namespace,
            name,
            preferred,
        })),
        _ => Err(bad()),
    }
}

/// The objects of a Velero tarball of the types `wanted` accepts (`resource[.group]`),
/// by place (the preferred version where both are).
///
/// # Errors
/// `invalid-input` when it is not a gzip tar, or breaks a bound or the layout.
pub fn objects(tarball: &[u8], wanted: impl Fn(&str) -> bool) -> Result<Objects> {
    objects_in(flate2::read::GzDecoder::new(tarball), wanted)
}

/// The objects of a Velero backup, by `(type, namespace, name)`, with whether each came
/// from the preferred-version folder.
pub type Objects = BTreeMap<(String, Option<String>, String), (bool, Value)>;

/// [`objects`] of an uncompressed tar stream.
///
/// # Errors
/// As [`objects`].
pub fn objects_in(tar: impl Read, wanted: impl Fn(&str) -> bool) -> Result<Objects> {
    let mut archive = tar::Archive::new(tar);
    let not_tar = |e: std::io::Error| {
        invalid(format!(
            "the Velero backup is not a gzip-compressed tar file: {e}"
        ))
    };
    let mut out = BTreeMap::new();
    let mut total = 0u64;
    for (i, entry) in archive.entries().map_err(not_tar)?.enumerate() {
        if i >= ENTRIES_MAX {
            return Err(invalid(format!(
                "the Velero backup has more than {ENTRIES_MAX} entries; refused"
            )));
        }
        let entry = entry.map_err(not_tar)?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Directory
        ) {
            return Err(invalid(
                "the Velero backup holds a link or device; refused".into(),
            ));
        }
        let path = entry
            .path()
            .map_err(not_tar)?
            .to_string_lossy()
            .into_owned();
        // what is not wanted (by type) is not even parsed
        let Some(p) = place(&path)?.filter(|p| wanted(&p.key)) else {
            continue;
        };
        let size = entry.header().size().map_err(not_tar)?;
        total += size;
        if size > ENTRY_MAX || total > TOTAL_MAX {
            return Err(invalid(format!(
                "the Velero backup's `{}` is over {} MiB, or the whole over {} MiB; refused",
                shown(&path, 160),
                ENTRY_MAX >> 20,
                TOTAL_MAX >> 20
            )));
        }
        let mut body = Vec::with_capacity(size as usize);
        entry
            .take(ENTRY_MAX)
            .read_to_end(&mut body)
            .map_err(not_tar)?;
        let obj: Value = serde_json::from_slice(&body).map_err(|e| {
            invalid(format!(
                "the Velero backup's `{}` is not JSON: {e}",
                shown(&path, 160)
            ))
        })?;
        let k = (p.key, p.namespace, p.name);
        match out.get(&k) {
            Some((true, _)) if !p.preferred => {}
            _ => {
                out.insert(k, (p.preferred, obj));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velero_paths_are_read_and_anything_else_refused() {
        assert_eq!(
            place("resources/deployments.apps/namespaces/shop/web.json").unwrap(),
            Some(Place {
                key: "deployments.apps".into(),
                namespace: Some("shop".into()),
                name: "web".into(),
                preferred: false
            })
        );
        assert!(
            place("resources/persistentvolumes/v1-preferredversion/cluster/pv-1.json")
                .unwrap()
                .unwrap()
                .preferred
        );
        assert_eq!(
            place("resources/horizontalpodautoscalers.autoscaling/v2beta1/namespaces/a/h.json")
                .unwrap(),
            None
        );
        assert_eq!(place("metadata/version").unwrap(), None);
        for bad in [
            "resources/configmaps/namespaces/../x.json",
            "resources/configmaps/namespaces/shop/../../x.json",
            "resources/configmaps/namespaces/Shop/x.json",
            "resources/configmaps/namespaces/shop/x.yaml",
            "resources/Config/namespaces/shop/x.json",
            "resources/configmaps/namespaces/shop/a/b.json",
        ] {
            assert!(place(bad).is_err(), "{bad}");
        }
    }

    fn tarball(entries: &[(&str, &[u8])], link: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, path, *body).unwrap();
        }
        if link {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(
                &mut h,
                "resources/configmaps/namespaces/shop/l.json",
                "/etc/passwd",
            )
            .unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn the_preferred_version_wins_and_links_are_refused() {
        let classic = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"shop"},"data":{"v":"classic"}}"#;
        let preferred = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"shop"},"data":{"v":"preferred"}}"#;
        let t = tarball(
            &[
                ("metadata/version", b"1.1.0"),
                (
                    "resources/configmaps/v1-preferredversion/namespaces/shop/c.json",
                    preferred,
                ),
                ("resources/configmaps/namespaces/shop/c.json", classic),
            ],
            false,
        );
        let o = objects(&t, |_| true).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o.values().next().unwrap().1["data"]["v"], "preferred");
        assert!(
            objects(&tarball(&[], true), |_| true)
                .unwrap_err()
                .message
                .contains("link")
        );
        assert!(objects(b"not gzip", |_| true).is_err());
    }
}
