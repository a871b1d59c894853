//! Facts about the cluster, from one node: the operating system and its version, the
//! Azure Local registration and Arc connection (`Get-AzureStackHCI`), the cluster's nodes
//! (`Get-ClusterNode`), its shared volumes with their free space
//! (`Get-ClusterSharedVolume`) and its storage pools (`Get-StoragePool`). They become
//! properties of the cluster asset, and `assess` judges them: volumes running out of
//! space, unhealthy pools, nodes whose VMs were not inventoried, a cluster not registered.
//!
//! A node without the failover-clustering or Azure Local modules answers with less; a
//! node that cannot answer at all leaves the facts out (with a warning), never the VMs.

use rehydra_plugin_sdk::prelude::*;
use serde::Deserialize;

/// One JSON object; every part that a module may lack is wrapped so that it is left out
/// rather than failing the rest.
pub const FACTS: &str = r#"$ErrorActionPreference = 'Stop'
$os = Get-CimInstance Win32_OperatingSystem
$hci = try { Get-AzureStackHCI -ErrorAction Stop } catch { $null }
$cluster = try { (Get-Cluster -ErrorAction Stop).Name } catch { $null }
$nodes = try { @(Get-ClusterNode -ErrorAction Stop | ForEach-Object { [pscustomobject]@{ Name = $_.Name; State = $_.State.ToString() } }) } catch { @() }
$volumes = try { @(Get-ClusterSharedVolume -ErrorAction Stop | ForEach-Object { $i = $_.SharedVolumeInfo | Select-Object -First 1; [pscustomobject]@{ Name = $_.Name; Path = $i.FriendlyVolumeName; Size = $i.Partition.Size; Free = $i.Partition.FreeSpace } }) } catch { @() }
$pools = try { @(Get-StoragePool -IsPrimordial $false -ErrorAction Stop | ForEach-Object { [pscustomobject]@{ Name = $_.FriendlyName; Health = $_.HealthStatus.ToString(); Size = $_.Size; Allocated = $_.AllocatedSize } }) } catch { @() }
[pscustomobject]@{
  Os = $os.Caption; Version = $os.Version; Cluster = $cluster
  Registration = if ($hci) { $hci.RegistrationStatus.ToString() } else { $null }
  Connection = if ($hci) { $hci.ConnectionStatus.ToString() } else { $null }
  Nodes = $nodes; Volumes = $volumes; Pools = $pools
} | ConvertTo-Json -Depth 4"#;

/// What the facts script answers.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Facts {
    pub os: Option<String>,
    pub version: Option<String>,
    pub cluster: Option<String>,
    pub registration: Option<String>,
    pub connection: Option<String>,
    pub nodes: Vec<Node>,
    pub volumes: Vec<Volume>,
    pub pools: Vec<Pool>,
}

/// A cluster node.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    pub name: String,
    pub state: String,
}

/// A cluster shared volume.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Volume {
    pub name: String,
    pub path: Option<String>,
    pub size: u64,
    pub free: u64,
}

/// A storage pool.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
pub struct Pool {
    pub name: String,
    pub health: String,
    pub size: u64,
    pub allocated: u64,
}

/// Most parts of each kind kept (a cluster has at most 16 nodes; volumes and pools are few).
const MAX_PARTS: usize = 64;

/// Parse the facts; `None` (and a warning) when the answer is not the script's.
pub fn parse(node: &str, out: &[u8]) -> Option<Facts> {
    let text = String::from_utf8_lossy(out);
    let text = text.trim().trim_start_matches('\u{feff}');
    match serde_json::from_str::<Facts>(text) {
        Ok(mut f) => {
            f.nodes.truncate(MAX_PARTS);
            f.volumes.truncate(MAX_PARTS);
            f.pools.truncate(MAX_PARTS);
            Some(f)
        }
        Err(e) => {
            rehydra_plugin_sdk::host::log(
                rehydra_plugin_sdk::host::Level::Warn,
                &format!(
                    "{node}: the cluster's facts could not be read ({e}); VMs are listed without them"
                ),
            );
            None
        }
    }
}

const GIB: u64 = 1 << 30;

/// The facts as properties of the cluster asset.
pub fn properties(f: &Facts) -> Vec<Property> {
    let mut p = Vec::new();
    let mut put = |n: String, v: String| p.push(property(&n, v));
    for (n, v) in [
        ("os", &f.os),
        ("os-version", &f.version),
        ("failover-cluster", &f.cluster),
        ("registration", &f.registration),
        ("arc-connection", &f.connection),
    ] {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            put(n.into(), v.to_string());
        }
    }
    for (i, n) in f.nodes.iter().enumerate() {
        put(
            format!("cluster-node.{i}"),
            format!("{} ({})", n.name, n.state),
        );
    }
    for (i, v) in f.volumes.iter().enumerate() {
        put(
            format!("volume.{i}.name"),
            v.path.clone().unwrap_or_else(|| v.name.clone()),
        );
        put(format!("volume.{i}.size-gib"), (v.size / GIB).to_string());
        put(format!("volume.{i}.free-gib"), (v.free / GIB).to_string());
    }
    for (i, s) in f.pools.iter().enumerate() {
        put(format!("pool.{i}.name"), s.name.clone());
        put(format!("pool.{i}.health"), s.health.clone());
        put(format!("pool.{i}.size-gib"), (s.size / GIB).to_string());
        put(
            format!("pool.{i}.allocated-gib"),
            (s.allocated / GIB).to_string(),
        );
    }
    p
}

fn get<'a>(a: &'a Asset, name: &str) -> Option<&'a str> {
    a.properties
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.value.as_str())
}

/// Findings about a cluster asset's facts. `swept` holds the nodes whose VMs were listed
/// (the `nodes` setting).
pub fn assess(a: &Asset, swept: &[&str]) -> Vec<Finding> {
    let mut out = Vec::new();
    let f = |rule: &str, sev: Severity, title: String, detail: String, fix: &str| {
        Finding::new(rule, sev, Some(&a.id), &title, detail, fix)
    };
    for i in 0..MAX_PARTS {
        let Some(name) = get(a, &format!("volume.{i}.name")) else {
            break;
        };
        let num = |k: &str| {
            get(a, &format!("volume.{i}.{k}"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let (size, free) = (num("size-gib"), num("free-gib"));
        if size == 0 {
            continue;
        }
        let pct = free.saturating_mul(100) / size;
        if pct < 15 {
            out.push(f(
                "hyperv.volume-space",
                if pct < 5 { Severity::High } else { Severity::Medium },
                format!("Cluster volume {name} is {}% free", pct),
                format!("{free} GiB free of {size} GiB on {}", a.name),
                "free space or extend the volume: checkpoints taken for backups need room, and a full volume pauses its VMs",
            ));
        }
    }
    for i in 0..MAX_PARTS {
        let Some(name) = get(a, &format!("pool.{i}.name")) else {
            break;
        };
        let health = get(a, &format!("pool.{i}.health")).unwrap_or("");
        if !health.eq_ignore_ascii_case("healthy") && !health.is_empty() {
            out.push(f(
                "hyperv.pool-health",
                Severity::High,
                format!("Storage pool {name} is {health}"),
                format!("Get-StoragePool reports {name} on {} as {health}", a.name),
                "repair the pool (Get-PhysicalDisk, Get-StorageJob) before relying on backups taken from it",
            ));
        }
    }
    let missing: Vec<&str> = (0..MAX_PARTS)
        .map_while(|i| get(a, &format!("cluster-node.{i}")))
        .map(|n| n.split(" (").next().unwrap_or(n))
        .filter(|n| !swept.iter().any(|s| s.eq_ignore_ascii_case(n)))
        .collect();
    // `local` is the node answering: it stands for itself, not for another one
    if !missing.is_empty() && !(swept == ["local"] && missing.len() <= 1) {
        out.push(f(
            "hyperv.nodes-not-listed",
            Severity::Medium,
            format!("{} cluster node(s) were not asked for their VMs", missing.len()),
            format!("{} has nodes {} that the nodes setting leaves out", a.name, missing.join(", ")),
            "add them to nodes= (each a command target the admin granted), so that every VM is found",
        ));
    }
    if let Some(r) = get(a, "registration").filter(|r| !r.eq_ignore_ascii_case("registered")) {
        out.push(f(
            "hyperv.not-registered",
            Severity::Medium,
            format!("Azure Local registration: {r}"),
            format!(
                "Get-AzureStackHCI on {} says RegistrationStatus {r}",
                a.name
            ),
            "register the cluster with Azure (it stops running VMs when registration lapses)",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"{"Os": "Microsoft Azure Stack HCI", "Version": "10.0.25398", "Cluster": "hci-a",
        "Registration": "NotYet", "Connection": null,
        "Nodes": [{"Name": "HV01", "State": "Up"}, {"Name": "HV02", "State": "Down"}],
        "Volumes": [{"Name": "CSV1", "Path": "C:\\ClusterStorage\\Volume1", "Size": 1099511627776, "Free": 21474836480},
                    {"Name": "CSV2", "Path": null, "Size": 1099511627776, "Free": 549755813888},
                    {"Name": "CSV3", "Size": 0, "Free": 0}],
        "Pools": [{"Name": "SU1", "Health": "Warning", "Size": 1, "Allocated": 1}, {"Name": "SU2", "Health": "Healthy"}]}"#;

    fn cluster(props: Vec<Property>) -> Asset {
        Asset {
            kind: "cluster".into(),
            id: "cluster/hci-a".into(),
            name: "hci-a".into(),
            parent: None,
            properties: props,
            flags: ProtectionFlags::CLUSTERED,
        }
    }

    fn rules(f: &[Finding]) -> Vec<(&str, Severity)> {
        f.iter().map(|f| (f.rule.as_str(), f.severity)).collect()
    }

    #[test]
    fn facts_become_properties_and_findings() {
        let f = parse("hv01", ANSWER.as_bytes()).unwrap();
        let a = cluster(properties(&f));
        let get = |n: &str| get(&a, n).map(str::to_string);
        assert_eq!(get("registration").as_deref(), Some("NotYet"));
        assert_eq!(get("arc-connection"), None, "a null is left out");
        assert_eq!(get("cluster-node.1").as_deref(), Some("HV02 (Down)"));
        assert_eq!(
            get("volume.0.name").as_deref(),
            Some("C:\\ClusterStorage\\Volume1")
        );
        assert_eq!(
            get("volume.1.name").as_deref(),
            Some("CSV2"),
            "no path: its name"
        );
        assert_eq!(get("volume.0.free-gib").as_deref(), Some("20"));
        let found = assess(&a, &["local"]);
        assert_eq!(
            rules(&found),
            [
                ("hyperv.volume-space", Severity::High),
                ("hyperv.pool-health", Severity::High),
                ("hyperv.nodes-not-listed", Severity::Medium),
                ("hyperv.not-registered", Severity::Medium),
            ],
            "a volume 1% free (not the half-free one, not the one of size 0), the pool in warning, two nodes while only `local` was asked"
        );
        // every node named: none missing; a cluster of one asked as `local`: none missing
        let found = assess(&a, &["hv01", "HV02"]);
        assert!(
            !rules(&found)
                .iter()
                .any(|(r, _)| *r == "hyperv.nodes-not-listed")
        );
        let mut one = properties(&f);
        one.retain(|p| p.name != "cluster-node.1");
        assert!(
            !rules(&assess(&cluster(one), &["local"]))
                .iter()
                .any(|(r, _)| *r == "hyperv.nodes-not-listed")
        );
    }

    #[test]
    fn a_volume_between_5_and_15_percent_free_is_medium() {
        let a = cluster(vec![
            property("volume.0.name", "V"),
            property("volume.0.size-gib", "1000".to_string()),
            property("volume.0.free-gib", "100".to_string()),
        ]);
        assert_eq!(
            rules(&assess(&a, &["local"])),
            [("hyperv.volume-space", Severity::Medium)]
        );
        let a = cluster(vec![
            property("volume.0.name", "V"),
            property("volume.0.size-gib", "x".to_string()),
        ]);
        assert!(
            assess(&a, &["local"]).is_empty(),
            "unreadable numbers are no finding"
        );
    }
}
