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
use serde_json::Value;

/// One JSON object; every part that a module may lack is wrapped so that it is left out
/// rather than failing the rest. Lists are made arrays inside the object (`@(...)`):
/// PowerShell unrolls a one-item list into the item itself in a pipeline.
pub const FACTS: &str = r#"$ErrorActionPreference = 'Stop'
$os = Get-CimInstance Win32_OperatingSystem
$hci = try { Get-AzureStackHCI -ErrorAction Stop } catch { $null }
$cluster = try { (Get-Cluster -ErrorAction Stop).Name } catch { $null }
$nodes = try { Get-ClusterNode -ErrorAction Stop | ForEach-Object { [pscustomobject]@{ Name = $_.Name; State = $_.State.ToString() } } } catch { $null }
$volumes = try { Get-ClusterSharedVolume -ErrorAction Stop | ForEach-Object { $i = $_.SharedVolumeInfo | Select-Object -First 1; [pscustomobject]@{ Name = $_.Name; Path = $i.FriendlyVolumeName; Size = $i.Partition.Size; Free = $i.Partition.FreeSpace } } } catch { $null }
$pools = try { Get-StoragePool -IsPrimordial $false -ErrorAction Stop | ForEach-Object { [pscustomobject]@{ Name = $_.FriendlyName; Health = $_.HealthStatus.ToString(); Size = $_.Size; Allocated = $_.AllocatedSize } } } catch { $null }
[pscustomobject]@{
  Computer = $env:COMPUTERNAME; Os = $os.Caption; Version = $os.Version; Cluster = $cluster
  Registration = if ($hci) { $hci.RegistrationStatus.ToString() } else { $null }
  Connection = if ($hci) { $hci.ConnectionStatus.ToString() } else { $null }
  Nodes = @($nodes | Where-Object { $_ }); Volumes = @($volumes | Where-Object { $_ }); Pools = @($pools | Where-Object { $_ })
} | ConvertTo-Json -Depth 4"#;

/// What the facts script answers.
#[derive(Default)]
pub struct Facts {
    pub computer: Option<String>,
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
#[derive(Default)]
pub struct Node {
    pub name: String,
    pub state: String,
}

/// A cluster shared volume.
#[derive(Default)]
pub struct Volume {
    pub name: String,
    pub path: Option<String>,
    pub size: u64,
    pub free: u64,
}

/// A storage pool.
#[derive(Default)]
pub struct Pool {
    pub name: String,
    pub health: String,
    pub size: u64,
    pub allocated: u64,
}

/// Most parts of each kind kept (a cluster has at most 16 nodes; volumes and pools are few).
const MAX_PARTS: usize = 64;

/// A text field; anything else (a number, null) is no text.
fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(|s| s.chars().take(256).collect())
}

/// A size: a whole number, or a float PowerShell wrote for one; anything else is 0.
fn num(v: &Value, key: &str) -> u64 {
    match v.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .unwrap_or(0),
        _ => 0,
    }
}

/// A list as PowerShell may write it: an array, one object, or null.
fn list<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    match v.get(key) {
        Some(Value::Array(a)) => a.iter().filter(|x| x.is_object()).take(MAX_PARTS).collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => vec![],
    }
}

/// Parse the facts, each field on its own (one odd field leaves only itself out); `None`
/// (and a warning) when the answer is not a JSON object at all.
pub fn parse(node: &str, out: &[u8]) -> Option<Facts> {
    let text_ = String::from_utf8_lossy(out);
    let body = text_.trim().trim_start_matches('\u{feff}');
    let v: Value = match serde_json::from_str(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            rehydra_plugin_sdk::host::log(
                rehydra_plugin_sdk::host::Level::Warn,
                &format!(
                    "{node}: the cluster's facts could not be read (not the facts script's JSON object); VMs are listed without them"
                ),
            );
            return None;
        }
    };
    Some(Facts {
        computer: text(&v, "Computer"),
        os: text(&v, "Os"),
        version: text(&v, "Version"),
        cluster: text(&v, "Cluster"),
        registration: text(&v, "Registration"),
        connection: text(&v, "Connection"),
        nodes: list(&v, "Nodes")
            .into_iter()
            .filter_map(|n| {
                Some(Node {
                    name: text(n, "Name")?,
                    state: text(n, "State").unwrap_or_default(),
                })
            })
            .collect(),
        volumes: list(&v, "Volumes")
            .into_iter()
            .filter_map(|x| {
                Some(Volume {
                    name: text(x, "Name")?,
                    path: text(x, "Path"),
                    size: num(x, "Size"),
                    free: num(x, "Free"),
                })
            })
            .collect(),
        pools: list(&v, "Pools")
            .into_iter()
            .filter_map(|x| {
                Some(Pool {
                    name: text(x, "Name")?,
                    health: text(x, "Health").unwrap_or_default(),
                    size: num(x, "Size"),
                    allocated: num(x, "Allocated"),
                })
            })
            .collect(),
    })
}

/// The facts as `node` answers them; `None` (and a warning) when it cannot.
pub fn read(node: &str) -> Option<Facts> {
    match rehydra_plugin_sdk::windows::powershell(node, FACTS, "the cluster's facts") {
        Ok(out) => parse(node, &out),
        Err(e) => {
            warn(&format!(
                "{node}: the cluster's facts could not be read: {e}"
            ));
            None
        }
    }
}

fn warn(m: &str) {
    rehydra_plugin_sdk::host::log(rehydra_plugin_sdk::host::Level::Warn, m);
}

/// The command targets to inventory for the `nodes` setting's `entries`, each with
/// whether the cluster (not the admin) listed it. An entry is a command target as written,
/// except `<cluster>/*`: every node that cluster target's facts list, as `<cluster>/<node>`
/// (the host reaches such a node only when it is pinned on the cluster target; the admin
/// grants the cluster, not each node). `known` holds the facts already read
/// from one target; a cluster that lists no node stands for itself alone.
pub fn nodes(entries: &[&str], known: Option<(&str, &Facts)>) -> Vec<(String, bool)> {
    // one machine once: `hv01` and `hci-a/HV01.corp` are the same node (the first wins)
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut add = |n: String, listed: bool| {
        if !out.iter().any(|(o, _)| short_name(o) == short_name(&n)) {
            out.push((n, listed));
        }
    };
    for e in entries {
        let Some(c) = e.strip_suffix("/*") else {
            add((*e).to_string(), false);
            continue;
        };
        let read;
        let facts = match known {
            Some((k, f)) if k == c => Some(f),
            _ => {
                read = self::read(c);
                read.as_ref()
            }
        };
        match facts.filter(|f| !f.nodes.is_empty()) {
            Some(f) => {
                // only host names: the host reaches no other (and refuses them anyway)
                for n in f.nodes.iter().filter(|n| host_name(&n.name)) {
                    add(format!("{c}/{}", n.name), true);
                }
            }
            None => {
                warn(&format!(
                    "{c}: the cluster listed no nodes (is it a cluster target? rehydra plugins target add {c} … --cluster); only {c} itself is inventoried"
                ));
                add(c.to_string(), false);
            }
        }
    }
    out
}

/// A node's name as compared: of `<cluster>/<node>` the node, of a host name its first
/// label (`HV01.corp` is `hv01`), an address whole.
fn short_name(n: &str) -> String {
    let n = n.rsplit('/').next().unwrap_or(n);
    if n.parse::<std::net::IpAddr>().is_ok() {
        return n.to_string();
    }
    n.split('.').next().unwrap_or(n).to_ascii_lowercase()
}

/// Whether `n` can be a node's host name (letters, digits, `-`, `.`; not starting with
/// `-` or `.`).
fn host_name(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(['-', '.'])
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
}

/// The finding for a node the cluster listed whose VMs could not be listed.
pub fn not_swept(node: &Asset) -> Option<Finding> {
    let why = get(node, "not-swept")?;
    Some(Finding::new(
        "hyperv.node-not-swept",
        Severity::High,
        Some(&node.id),
        format!("Cluster node {} did not list its VMs", node.name),
        format!("{}: {why}", node.id.trim_start_matches("node/")),
        "bring the node back or let Rehydra reach it over SSH (its host key in the known-hosts file, the key authorised), then assess again: its VMs are unknown",
    ))
}

const GIB: u64 = 1 << 30;

/// The facts as properties of the cluster asset.
pub fn properties(f: &Facts) -> Vec<Property> {
    let mut p = Vec::new();
    let mut put = |n: String, v: String| p.push(property(&n, v));
    for (n, v) in [
        ("computer", &f.computer),
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

/// Findings about a cluster asset's facts. `swept` holds the nodes asked for their VMs,
/// as discovery named them: a command target (`local`, `hv01`) or `<cluster>/<node>`.
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
    // the nodes asked: `local` is the node that answered the facts (its computer name)
    let short = short_name;
    let asked: Vec<String> = swept
        .iter()
        .map(|n| match (*n, get(a, "computer")) {
            ("local", Some(c)) => short(c),
            _ => short(n),
        })
        .collect();
    let missing: Vec<&str> = (0..MAX_PARTS)
        .map_while(|i| get(a, &format!("cluster-node.{i}")))
        .map(|n| n.split(" (").next().unwrap_or(n))
        .filter(|n| !asked.contains(&short(n)))
        .collect();
    // without the computer name, `local` may be any one of them
    let unknown_local = swept.contains(&"local") && get(a, "computer").is_none();
    if missing.len() > usize::from(unknown_local) {
        out.push(f(
            "hyperv.nodes-not-listed",
            Severity::Medium,
            format!(
                "{} cluster node(s) were not asked for their VMs",
                missing.len() - usize::from(unknown_local)
            ),
            format!(
                "{} has nodes {} that the nodes setting leaves out",
                a.name,
                missing.join(", ")
            ),
            "mark the node you reach as a cluster (rehydra plugins target add <name> … --cluster) and set nodes=<name>/*, so that every node the cluster lists is asked under the one grant",
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
    fn what_powershell_really_writes_is_read_part_by_part() {
        // one pool arrives as an object, no volumes as null, an offline volume's size as
        // null, a float for a size, a node without a name
        let f = parse(
            "hv01",
            br#"{"Computer": "HV01", "Nodes": [{"Name": "HV01", "State": "Up"}, {"State": "Up"}, 7],
                 "Volumes": [{"Name": "CSV1", "Size": null, "Free": -1}, {"Name": "CSV2", "Size": 1.5e12, "Free": 1e10}],
                 "Pools": {"Name": "SU1", "Health": "Healthy", "Size": 10}}"#,
        )
        .unwrap();
        assert_eq!(f.computer.as_deref(), Some("HV01"));
        assert_eq!(f.nodes.len(), 1);
        assert_eq!((f.volumes[0].size, f.volumes[0].free), (0, 0));
        assert_eq!(f.volumes[1].size, 1_500_000_000_000);
        assert_eq!(f.pools.len(), 1, "one pool as an object");
        let f = parse(
            "hv01",
            br#"{"Pools": null, "Volumes": null, "Nodes": null}"#,
        )
        .unwrap();
        assert!(f.pools.is_empty() && f.volumes.is_empty() && f.nodes.is_empty());
    }

    #[test]
    fn local_is_the_node_that_answered() {
        let a = cluster(vec![
            property("computer", "HV01"),
            property("cluster-node.0", "HV01 (Up)"),
            property("cluster-node.1", "hv02.contoso.local (Up)"),
        ]);
        let rules = |swept: &[&str]| {
            assess(&a, swept)
                .into_iter()
                .filter(|f| f.rule == "hyperv.nodes-not-listed")
                .map(|f| f.title)
                .collect::<Vec<_>>()
        };
        assert!(
            rules(&["local", "hv02"]).is_empty(),
            "local is HV01, hv02 by its short name"
        );
        assert_eq!(
            rules(&["local"]),
            ["1 cluster node(s) were not asked for their VMs"]
        );
        assert_eq!(
            rules(&["hv02.contoso.local"]),
            ["1 cluster node(s) were not asked for their VMs"]
        );
    }

    #[test]
    fn a_cluster_entry_stands_for_every_node_it_lists() {
        let f = parse("hci-a", ANSWER.as_bytes()).unwrap();
        assert_eq!(
            nodes(
                &[
                    "hv01",
                    "hci-a/*",
                    "hv09",
                    "hci-a/hv02",
                    "10.0.0.1",
                    "10.0.0.2"
                ],
                Some(("hci-a", &f))
            ),
            [
                ("hv01".to_string(), false),
                ("hci-a/HV02".to_string(), true),
                ("hv09".to_string(), false),
                ("10.0.0.1".to_string(), false),
                ("10.0.0.2".to_string(), false),
            ],
            "each node once (an address whole), the admin's own entries as written"
        );
        let a = cluster(properties(&f));
        let missing = |swept: &[&str]| {
            assess(&a, swept)
                .into_iter()
                .filter(|f| f.rule == "hyperv.nodes-not-listed")
                .map(|f| f.detail)
                .collect::<Vec<_>>()
        };
        assert!(missing(&["hci-a/HV01", "hci-a/HV02"]).is_empty());
        assert_eq!(
            missing(&["hci-a/HV01"]),
            ["hci-a has nodes HV02 that the nodes setting leaves out"]
        );
        // a listed node that did not answer is a finding of its own
        let mut node = cluster(vec![property("not-swept", "unreachable")]);
        node.kind = "node".into();
        node.id = "node/hci-a/HV02".into();
        node.name = "HV02".into();
        let f = not_swept(&node).unwrap();
        assert_eq!(
            (f.rule.as_str(), f.severity),
            ("hyperv.node-not-swept", Severity::High)
        );
        assert!(
            f.detail.starts_with("hci-a/HV02: unreachable"),
            "{}",
            f.detail
        );
        node.properties.clear();
        assert!(not_swept(&node).is_none());
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
