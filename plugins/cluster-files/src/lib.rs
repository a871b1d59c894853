//! Azure Local node folders worth keeping: deployment logs, Arc agent logs, the CSV's
//! infrastructure folder. Configurable, and never the whole of `C:\ClusterStorage` (nor a
//! whole volume under it): those hold every VM's disks, which `hyperv-vm` protects.
//!
//! Assets: `node/<node>` (all its folders) and `<node>|<path>` (one folder). Folders are
//! read on this machine through `path-map` (for example `C:\=/mnt/hv01-c/`) and stored
//! as tree items named after their path without the drive (`MASLogs`,
//! `ProgramData/AzureConnectedMachineAgent/Log`).
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::windows::{map_path, powershell, ps_quote};
use rehydra_plugin_sdk::{engine, files};
use serde_json::Value;

/// The folders kept by default.
const DEFAULT_FOLDERS: &[&str] = &[
    r"C:\ProgramData\AzureConnectedMachineAgent\Log",
    r"C:\MASLogs",
    r"C:\Agents",
    r"C:\CloudContent",
    r"C:\CloudDeployment",
    r"C:\ClusterStorage\Infrastructure_1\ArcHci",
];

/// `C:\ClusterStorage`, or a whole volume under it: refused.
fn whole_cluster_storage(path: &str) -> bool {
    let p = path.replace('/', "\\").to_ascii_lowercase();
    let p = p.trim_end_matches('\\');
    let Some(rest) = p.strip_prefix(r"c:\clusterstorage") else {
        return false;
    };
    rest.is_empty()
        || (rest.starts_with('\\') && rest[1..].split('\\').filter(|s| !s.is_empty()).count() <= 1)
}

/// The folders: `folders` (`;`-separated) or the defaults; each checked.
fn folders(o: &[Property]) -> Result<Vec<String>> {
    let list: Vec<String> = match setting(o, "folders").filter(|f| !f.trim().is_empty()) {
        Some(f) => f
            .split(';')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => DEFAULT_FOLDERS.iter().map(|s| (*s).to_string()).collect(),
    };
    for f in &list {
        if whole_cluster_storage(f) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "{f} is (a whole volume of) C:\\ClusterStorage: it holds the VMs' disks, which the hyperv-vm plugin protects; name the folders inside it you need, such as C:\\ClusterStorage\\Infrastructure_1\\ArcHci"
                ),
            ));
        }
        if !(f.len() > 3 && f.as_bytes()[1] == b':' && f.as_bytes()[2] == b'\\') {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("`{f}` is not an absolute Windows path such as C:\\MASLogs"),
            ));
        }
    }
    Ok(list)
}

/// `C:\ProgramData\X\Log` → `ProgramData/X/Log`.
fn item_name(path: &str) -> String {
    path[3..].trim_end_matches('\\').replace('\\', "/")
}

fn existing(node: &str, list: &[String]) -> Result<Vec<(String, bool)>> {
    let quoted: Vec<String> = list.iter().map(|f| ps_quote(f)).collect();
    let out = powershell(
        node,
        &format!(
            "$ErrorActionPreference = 'Stop'\n@({}) | ForEach-Object {{ [pscustomobject]@{{ Path = $_; Exists = (Test-Path -LiteralPath $_ -PathType Container) }} }} | ConvertTo-Json",
            quoted.join(", ")
        ),
        "checking the folders",
    )?;
    let v: Value = serde_json::from_slice(&out).map_err(|e| {
        Error::new(
            ErrorCode::Failed,
            format!("node {node}: the folder check answered unexpected JSON ({e})"),
        )
    })?;
    let rows = if v.is_array() {
        v.as_array().cloned().unwrap_or_default()
    } else {
        vec![v]
    };
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("Path")?.as_str()?.to_string(),
                r.get("Exists").and_then(Value::as_bool).unwrap_or(false),
            ))
        })
        .collect())
}

struct ClusterFiles;

impl Plugin for ClusterFiles {
    fn describe() -> PluginInfo {
        rehydra_plugin_sdk::describe_from_manifest!()
    }

    /// Settings: `nodes` (comma-separated command targets), `folders` (`;`-separated).
    fn discover(s: Vec<Property>) -> Result<Vec<Asset>> {
        let list = folders(&s)?;
        let mut out = Vec::new();
        for node in setting(&s, "nodes")
            .unwrap_or("local")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            out.push(Asset {
                kind: "node".into(),
                id: format!("node/{node}"),
                name: node.into(),
                parent: None,
                properties: vec![],
                flags: ProtectionFlags::empty(),
            });
            for (path, exists) in existing(node, &list)? {
                out.push(Asset {
                    kind: "folder".into(),
                    id: format!("{node}|{path}"),
                    name: path.clone(),
                    parent: Some(format!("node/{node}")),
                    properties: vec![Property {
                        name: "exists".into(),
                        value: exists.to_string(),
                    }],
                    flags: ProtectionFlags::empty(),
                });
            }
        }
        Ok(out)
    }

    /// Options: `path-map` (required unless the paths are readable as they are),
    /// `folders` for a node asset.
    fn backup(req: BackupRequest) -> Result<BackupReport> {
        let o = &req.options;
        let map = setting(o, "path-map").unwrap_or("");
        let id = &req.asset.id;
        let (node, list) = if let Some(node) = id.strip_prefix("node/") {
            (node.to_string(), folders(o)?)
        } else if let Some((node, path)) = id.split_once('|') {
            let one = vec![path.to_string()];
            folders(&[Property {
                name: "folders".into(),
                value: path.to_string(),
            }])?;
            (node.to_string(), one)
        } else {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("asset `{id}` is neither node/<node> nor <node>|<folder>; see `discover`"),
            ));
        };
        let mut warnings = Vec::new();
        let mut stored = 0;
        for path in &list {
            let local = map_path(map, path)?;
            if files::stat(&local).is_err() {
                warnings.push(format!(
                    "{path} (here {local}) does not exist on {node} or is not readable; skipped"
                ));
                continue;
            }
            engine::ingest_path(&item_name(path), &local)?;
            stored += 1;
        }
        if stored == 0 {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!(
                    "none of the folders of {id} could be read: {}",
                    warnings.join("; ")
                ),
            ));
        }
        Ok(BackupReport {
            consistency: "crash".into(),
            warnings,
        })
    }

    /// Every folder goes to `<target>/<its path without the drive>`; existing files are
    /// kept unless `overwrite=true`.
    fn restore(req: RestoreRequest) -> Result<RestoreReport> {
        let overwrite = flag(&req.options, "overwrite");
        let target = req.target.trim_end_matches('/');
        if target.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "give a target folder to restore the node folders into",
            ));
        }
        let mut bytes = 0;
        for i in engine::items()? {
            bytes += engine::restore_item(&i.name, &format!("{target}/{}", i.name), overwrite)?;
        }
        Ok(RestoreReport {
            bytes,
            warnings: vec![],
        })
    }

    fn verify(_req: RestoreRequest) -> Result<VerifyReport> {
        let items = engine::items()?;
        let findings = if items.is_empty() {
            vec![Finding {
                rule: "cluster-files.empty".into(),
                severity: Severity::Critical,
                asset: None,
                title: "no folders in the restore point".into(),
                detail: String::new(),
                recommendation: "back the node folders up again".into(),
            }]
        } else {
            vec![]
        };
        Ok(VerifyReport::of(findings))
    }
}

rehydra_plugin_sdk::export_plugin!(ClusterFiles);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_cluster_storage_is_refused() {
        assert!(whole_cluster_storage(r"C:\ClusterStorage"));
        assert!(whole_cluster_storage(r"c:\clusterstorage\"));
        assert!(whole_cluster_storage(r"C:\ClusterStorage\Volume1"));
        assert!(!whole_cluster_storage(
            r"C:\ClusterStorage\Infrastructure_1\ArcHci"
        ));
        assert!(!whole_cluster_storage(r"C:\MASLogs"));
        assert_eq!(
            item_name(r"C:\ProgramData\AzureConnectedMachineAgent\Log"),
            "ProgramData/AzureConnectedMachineAgent/Log"
        );
    }
}
