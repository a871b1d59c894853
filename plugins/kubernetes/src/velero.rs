//! Import a Velero backup as a restore point, so the history kept with Velero is not lost
//! when a cluster moves to Rehydra.
//!
//! Velero keeps each backup in its bucket as `backups/<name>/velero-backup.json` (the
//! Backup resource: its spec, and `status.phase` / `startTimestamp`) next to
//! `<name>.tar.gz`, a gzip-compressed tar file holding
//! `resources/<resource[.group]>/namespaces/<namespace>/<name>.json` and
//! `resources/<resource[.group]>/cluster/<name>.json`; since format 1.1 the same files
//! also sit under `resources/<type>/<version>-preferredversion/…`, which is preferred
//! here when both are present. The objects go through the same rules as a backup read
//! from a cluster ([`crate::objects::keep`], [`crate::objects::clean`]), so the restore
//! is the same plan.
//!
//! The tarball is read through the `files` capability (at most 16 MiB): copy the
//! backup's folder out of the bucket (or mount it) first. It is another system's file:
//! paths are checked, every entry and the whole are bounded, and nothing is written
//! anywhere but the repository.

use std::collections::BTreeMap;
use std::io::Read;

use rehydra_plugin_sdk::files;
use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::kube::{is_label, is_subdomain};
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{shown, text};
use serde_json::Value;

use crate::api::{ApiResource, SKIPPED};
use crate::index::{Index, Source};
use crate::objects::{clean, is_name, keep};
use crate::settings::{self, Scope};

/// One entry's bytes at the most.
const ENTRY_MAX: u64 = 16 << 20;
/// All entries' bytes at the most.
const TOTAL_MAX: u64 = 1 << 30;
/// Entries at the most.
const ENTRIES_MAX: usize = 500_000;

fn invalid(m: String) -> Error {
    Error::new(ErrorCode::InvalidInput, m)
}

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
    let type_ok = !resource.is_empty()
        && resource
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && (group.is_empty() || is_subdomain(group));
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

/// The objects of a Velero tarball, by place (the preferred version where both are).
///
/// # Errors
/// `invalid-input` when it is not a gzip tar, or breaks a bound or the layout.
pub fn objects(
    tarball: &[u8],
) -> Result<BTreeMap<(String, Option<String>, String), (bool, Value)>> {
    let gz = flate2::read::GzDecoder::new(tarball);
    let mut archive = tar::Archive::new(gz);
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
        let Some(p) = place(&path)? else { continue };
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

/// The Backup resource of `velero-backup.json`: name, start time and phase.
fn backup_info(doc: &Value) -> Result<(String, String, String)> {
    if doc["kind"] != "Backup"
        || doc["apiVersion"]
            .as_str()
            .is_none_or(|v| !v.starts_with("velero.io/"))
    {
        return Err(invalid(
            "velero-backup.json is not a Velero Backup resource".into(),
        ));
    }
    let name = text(&doc["metadata"]["name"], 253)
        .filter(|n| is_name(n))
        .ok_or_else(|| invalid("velero-backup.json names no backup".into()))?;
    let started = text(&doc["status"]["startTimestamp"], 40).unwrap_or_default();
    let phase = text(&doc["status"]["phase"], 40).unwrap_or("Unknown");
    Ok((name.to_string(), started.to_string(), phase.to_string()))
}

/// Read a file through the `files` capability, saying which.
fn read(path: &str) -> Result<Vec<u8>> {
    files::read_file(path).map_err(|e| {
        Error::new(
            e.code,
            format!("reading the Velero backup `{}`: {} (grant its folder: rehydra plugins grant kubernetes files:<folder>)", shown(path, 200), e.message),
        )
    })
}

/// `backup` with `velero=<folder or .tar.gz>`.
pub fn import(req: &BackupRequest, path: &str) -> Result<BackupReport> {
    let Scope::Cluster(cluster) = settings::scope(&req.asset.id)? else {
        return Err(invalid(format!(
            "a Velero backup is imported as a restore point of a cluster: give --asset <cluster>, not `{}`",
            req.asset.id
        )));
    };
    let (tar_path, info) = if path.ends_with(".tar.gz") {
        (path.to_string(), None)
    } else {
        let folder = path.trim_end_matches('/');
        let doc: Value = serde_json::from_slice(&read(&format!("{folder}/velero-backup.json"))?)
            .map_err(|e| invalid(format!("velero-backup.json is not JSON: {e}")))?;
        let info = backup_info(&doc)?;
        (format!("{folder}/{}.tar.gz", info.0), Some(info))
    };
    let mut warnings = Vec::new();
    let info = info.unwrap_or_else(|| {
        let stem = tar_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".tar.gz");
        (stem.to_string(), String::new(), "Unknown".into())
    });
    match info.2.as_str() {
        "Completed" => {}
        "PartiallyFailed" | "Unknown" => warnings.push(format!(
            "Velero backup {} is {} (as Velero recorded it): some objects may be missing",
            info.0, info.2
        )),
        other => {
            return Err(invalid(format!(
                "Velero backup {} is {other}: import a Completed (or PartiallyFailed) one",
                info.0
            )));
        }
    }
    let objects = objects(&read(&tar_path)?)?;
    let mut ix = Index::new(Source {
        kind: "velero".into(),
        cluster,
        velero: Some(info.clone()),
        ..Source::default()
    });
    let total = objects.len() as u64;
    let mut skipped = 0;
    for (n, ((key, ns, name), (_, obj))) in objects.into_iter().enumerate() {
        host::progress(n as u64, total, &key);
        if SKIPPED.contains(&key.as_str()) || !keep(&obj) {
            skipped += 1;
            continue;
        }
        let (resource, group) = key.split_once('.').unwrap_or((&key, ""));
        let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_string();
        let version = match api_version.rsplit_once('/') {
            Some((g, v)) if g == group => v,
            None if group.is_empty() => api_version.as_str(),
            _ => {
                warnings.push(format!(
                    "{key}/{name}: its apiVersion `{}` is not of the group its folder names; left out",
                    shown(&api_version, 80)
                ));
                continue;
            }
        };
        let kind = text(&obj["kind"], 63)
            .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or_default()
            .to_string();
        if kind.is_empty()
            || version.is_empty()
            || obj["metadata"]["name"].as_str() != Some(name.as_str())
        {
            warnings.push(format!(
                "{key}/{name}: no kind or version, or another name inside; left out"
            ));
            continue;
        }
        let t = ApiResource {
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
            kind: kind.clone(),
            namespaced: ns.is_some(),
        };
        if let Some(known) = ix.type_of(&key)
            && known != &t
        {
            warnings.push(format!(
                "{key}/{name}: a second version or kind of {key}; left out"
            ));
            continue;
        }
        if let Some(ns) = &ns
            && obj["metadata"]["namespace"].as_str() != Some(ns.as_str())
        {
            warnings.push(format!(
                "{key}/{name}: its namespace is not the folder's; left out"
            ));
            continue;
        }
        let obj = clean(obj, &t.api_version(), &kind);
        if t.group.is_empty() && kind == "Namespace" {
            ix.namespaces.push(name.clone());
        }
        if t.group.is_empty() && kind == "PersistentVolumeClaim" {
            ix.claims.push(crate::index::Claim {
                namespace: ns.clone().unwrap_or_default(),
                name: name.clone(),
                storage_class: text(&obj["spec"]["storageClassName"], 253).map(str::to_string),
                size: text(&obj["spec"]["resources"]["requests"]["storage"], 40)
                    .map(str::to_string),
                data: false,
            });
        }
        crate::backup::store(&mut ix, &t, obj)?;
    }
    // namespaces whose Namespace object Velero did not keep (an include-namespaces backup
    // keeps it; a label-selected one may not)
    for e in &ix.objects {
        if let Some(ns) = &e.namespace
            && !ix.namespaces.contains(ns)
        {
            ix.namespaces.push(ns.clone());
        }
    }
    ix.namespaces.sort();
    ix.namespaces.dedup();
    ix.store()?;
    warnings.push(format!(
        "imported Velero backup {}{}: {} objects ({skipped} made by controllers or the cluster left out); its volume snapshots and pod volume backups stay in Velero's storage, so claims restore without their data",
        info.0,
        if info.1.is_empty() { String::new() } else { format!(" taken {}", info.1) },
        ix.objects.len()
    ));
    Ok(BackupReport {
        consistency: "crash".into(),
        warnings,
    })
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
        assert_eq!(
            place("resources/persistentvolumes/v1-preferredversion/cluster/pv-1.json")
                .unwrap()
                .unwrap()
                .preferred,
            true
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
        let o = objects(&t).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o.values().next().unwrap().1["data"]["v"], "preferred");
        assert!(
            objects(&tarball(&[], true))
                .unwrap_err()
                .message
                .contains("link")
        );
        assert!(objects(b"not gzip").is_err());
    }
}
