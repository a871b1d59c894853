//! Import a Velero backup as a restore point, so the history kept with Velero is not lost
//! when a cluster moves to Rehydra.
//!
//! Velero keeps each backup in its bucket as `backups/<name>/velero-backup.json` (the
//! Backup resource: its spec, and `status.phase` / `startTimestamp`) next to
//! `<name>.tar.gz`, a gzip-compressed tar file holding
//! `resources/<resource[.group]>/namespaces/<namespace>/<name>.json` and
//! `resources/<resource[.group]>/cluster/<name>.json` ([`crate::tarball`] reads it). The
//! objects go through the same rules as a backup read
//! from a cluster ([`crate::objects::keep`], [`crate::objects::clean`]), so the restore
//! is the same plan.
//!
//! The tarball is read through the `files` capability (at most 16 MiB), from the bucket
//! itself (`s3://BUCKET/PREFIX/backups/<name>`, `azure://CONTAINER/…`: the host reads
//! the objects with its own credentials) or from a folder the backup was copied to or
//! mounted at. Nothing is written anywhere but the repository.

use rehydra_plugin_sdk::files;
use rehydra_plugin_sdk::host;
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::rest::{shown, text};
use serde_json::Value;

use crate::api::{ApiResource, SKIPPED, is_version};
use crate::index::{Index, Source};
use crate::objects::{clean, is_name, keep};
use crate::settings::{self, Scope};
use crate::tarball::invalid;

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
        let what = format!("reading the Velero backup `{}`", shown(path, 200));
        let message = match e.code {
            ErrorCode::InvalidInput if e.message.contains("more than") => format!(
                "{what}: {} (a tarball is read whole, at most 16 MiB)",
                e.message
            ),
            _ => format!("{what}: {}", e.message),
        };
        Error::new(e.code, message)
    })
}

/// When `folder` is Velero's bucket (or its `backups/` folder) rather than one backup's
/// folder: the error that says so, naming the backups there.
fn bucket(folder: &str) -> Option<Error> {
    for dir in [format!("{folder}/backups"), folder.to_string()] {
        let Ok(entries) = files::list_dir(&dir) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .into_iter()
            .filter(|e| e.kind == files::EntryKind::Directory && is_name(&e.name))
            .map(|e| e.name)
            .collect();
        if names.is_empty() {
            continue;
        }
        names.sort();
        let shown_names: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
        return Some(invalid(format!(
            "`{}` holds no velero-backup.json but {} backup folder(s) ({}{}): import one backup a run, velero={}/{}",
            shown(folder, 200),
            names.len(),
            shown_names.join(", "),
            if names.len() > 5 { ", …" } else { "" },
            shown(&dir, 200),
            names[0]
        )));
    }
    None
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
        let raw = read(&format!("{folder}/velero-backup.json")).map_err(|e| {
            if e.code == ErrorCode::NotFound {
                bucket(folder).unwrap_or(e)
            } else {
                e
            }
        })?;
        let doc: Value = serde_json::from_slice(&raw)
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
    let objects = crate::tarball::objects(&read(&tar_path)?, |key| !SKIPPED.contains(&key))?;
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
        if !is_version(version) {
            warnings.push(format!("{key}/{name}: a malformed apiVersion; left out"));
            continue;
        }
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
        // (the name inside was checked to be the file's)
        let claim = (t.group.is_empty() && kind == "PersistentVolumeClaim")
            .then(|| crate::backup::claim(&obj, ns.as_deref().unwrap_or_default()));
        if !crate::backup::store(&mut ix, &t, obj, &mut warnings)? {
            continue;
        }
        if t.group.is_empty() && kind == "Namespace" {
            ix.namespaces.push(name.clone());
        }
        ix.claims.extend(claim);
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
    ix.namespaces
        .retain(|n| rehydra_plugin_sdk::kube::is_label(n));
    ix.namespaces.sort();
    ix.namespaces.dedup();
    // what a restore reads back must pass the same check
    ix.check()?;
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
    use rehydra_plugin_sdk::mock::{MockHost, Verb, backup_request};

    use super::*;

    #[test]
    fn a_bucket_folder_is_named_with_the_backups_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        for b in ["nightly-20261101", "nightly-20261102"] {
            std::fs::create_dir_all(dir.path().join("backups").join(b)).unwrap();
        }
        let host = MockHost::new().grant_files(dir.path());
        let folder = dir.path().display().to_string();
        let req = backup_request("aks-a", &[]);
        let e = host
            .run(Verb::Backup, || import(&req, &folder))
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(
            e.message
                .contains("2 backup folder(s) (nightly-20261101, nightly-20261102)")
                && e.message
                    .contains(&format!("velero={folder}/backups/nightly-20261101")),
            "{}",
            e.message
        );
        // an empty folder is only missing its velero-backup.json
        let empty = tempfile::tempdir().unwrap();
        let host = MockHost::new().grant_files(empty.path());
        let folder = empty.path().display().to_string();
        let e = host
            .run(Verb::Backup, || import(&req, &folder))
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::NotFound, "{}", e.message);
    }

    #[test]
    fn a_bucket_is_read_under_its_grant_and_named_with_its_backups() {
        let dir = tempfile::tempdir().unwrap();
        for b in ["nightly-20261101", "nightly-20261102"] {
            std::fs::create_dir_all(dir.path().join("aks/backups").join(b)).unwrap();
        }
        let req = backup_request("aks-a", &[]);
        let host = MockHost::new()
            .bucket("s3://velero", dir.path())
            .grant("files:s3://velero/aks");
        let e = host
            .run(Verb::Backup, || import(&req, "s3://velero/aks"))
            .err()
            .unwrap();
        assert!(
            e.message.contains("2 backup folder(s)")
                && e.message
                    .contains("velero=s3://velero/aks/backups/nightly-20261101"),
            "{}",
            e.message
        );
        // outside the granted prefix: denied, as the host denies it
        let e = host
            .run(Verb::Backup, || import(&req, "s3://velero/other/b1"))
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::Denied, "{}", e.message);
    }
}
