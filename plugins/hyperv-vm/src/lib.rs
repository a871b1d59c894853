//! Hyper-V and Arc VMs on Azure Local: discovery and backup (this version).
//!
//! Each cluster node is asked for its VMs with one PowerShell script (run by the host on
//! a granted command target), whose JSON this plugin parses; Azure Resource Manager is
//! then asked, per VM, whether it is an Arc VM (`virtualMachineInstances/default` under
//! `Microsoft.HybridCompute/machines/<name>`), which gives its custom location, NICs and
//! security profile.
//!
//! Backup takes a production checkpoint on the VM's node, backs up the checkpoint's
//! (now frozen) disks through the engine's disk path — read on this machine through a
//! path map such as `C:\ClusterStorage\=/mnt/csv/` — stores the VM's configuration as a
//! document, and removes the checkpoint again whatever happened. Restore and rehydration
//! are not in this version: those verbs answer `unsupported`.
use rehydra_plugin_sdk::{commands, engine, export_plugin, http, prelude::*};
use serde::Deserialize;

/// The inventory script: one JSON array of VMs with what protection needs. `@(...)` and
/// `-AsArray` are avoided (Windows PowerShell 5.1 lacks the latter), so a node with one VM
/// yields a single object: the parser takes both.
const INVENTORY: &str = r#"$ErrorActionPreference = 'Stop'
Get-VM | ForEach-Object {
  $vm = $_
  $sec = Get-VMSecurity -VM $vm -ErrorAction SilentlyContinue
  [pscustomobject]@{
    Name = $vm.Name; Id = $vm.Id.ToString(); State = $vm.State.ToString(); Generation = $vm.Generation
    ProcessorCount = $vm.ProcessorCount; MemoryStartup = $vm.MemoryStartup; ComputerName = $vm.ComputerName
    IsClustered = $vm.IsClustered; Path = $vm.Path
    HardDrives = @(Get-VMHardDiskDrive -VM $vm | Select-Object Path, ControllerType, ControllerNumber, ControllerLocation)
    NetworkAdapters = @(Get-VMNetworkAdapter -VM $vm | Select-Object Name, MacAddress, SwitchName, @{n='VlanId';e={$_.VlanSetting.AccessVlanId}})
    Checkpoints = @(Get-VMSnapshot -VM $vm).Count
    TpmEnabled = [bool]$sec.TpmEnabled
  }
} | ConvertTo-Json -Depth 4"#;

const ARM_API: &str = "2025-06-01-preview";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Vm {
    name: String,
    id: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    generation: u8,
    #[serde(default)]
    processor_count: u32,
    #[serde(default)]
    memory_startup: u64,
    #[serde(default)]
    computer_name: String,
    #[serde(default)]
    is_clustered: bool,
    #[serde(default)]
    hard_drives: Vec<Drive>,
    #[serde(default)]
    network_adapters: Vec<Nic>,
    #[serde(default)]
    checkpoints: u32,
    #[serde(default)]
    tpm_enabled: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Drive {
    path: String,
    #[serde(default)]
    controller_type: serde_json::Value,
    #[serde(default)]
    controller_number: u32,
    #[serde(default)]
    controller_location: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Nic {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mac_address: String,
    #[serde(default)]
    switch_name: Option<String>,
    #[serde(default)]
    vlan_id: Option<u32>,
}

/// Parse ConvertTo-Json output: an array, a single object, or nothing (no VMs).
fn parse_inventory(node: &str, out: &[u8]) -> Result<Vec<Vm>> {
    let text = String::from_utf8_lossy(out);
    let text = text.trim().trim_start_matches('\u{feff}');
    if text.is_empty() {
        return Ok(vec![]);
    }
    let bad = |e: serde_json::Error| {
        Error::new(
            ErrorCode::Failed,
            format!("node {node}: the VM inventory is not the expected JSON ({e})"),
        )
    };
    if text.starts_with('[') {
        serde_json::from_str(text).map_err(bad)
    } else {
        serde_json::from_str::<Vm>(text)
            .map(|v| vec![v])
            .map_err(bad)
    }
}

/// What ARM knows about a VM: `None` when it is not an Arc VM.
struct Arc {
    id: String,
    custom_location: String,
    nics: Vec<String>,
    security_type: String,
    tpm: bool,
}

/// GET an ARM resource: `None` on 404.
fn arm_get(url: String, what: &str) -> Result<Option<serde_json::Value>> {
    let r = http::send(&http::Request {
        method: "GET".into(),
        url,
        headers: vec![("accept".into(), "application/json".into())],
        body: vec![],
    })?;
    if r.status == 404 {
        return Ok(None);
    }
    if r.status != 200 {
        let msg = String::from_utf8_lossy(&r.body)
            .chars()
            .take(300)
            .collect::<String>();
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "Azure Resource Manager answered {} for {what}: {msg}",
                r.status
            ),
        ));
    }
    serde_json::from_slice(&r.body).map(Some).map_err(|e| {
        Error::new(
            ErrorCode::Failed,
            format!("ARM response for {what} is not JSON: {e}"),
        )
    })
}

/// The Arc VM resource of the machine `vm`, if it is one.
fn arm_vm(base: &str, sub: &str, rg: &str, vm: &str) -> Result<Option<serde_json::Value>> {
    let url = format!(
        "{}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HybridCompute/machines/{vm}/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default?api-version={ARM_API}",
        base.trim_end_matches('/')
    );
    arm_get(url, &format!("VM {vm}"))
}

fn arm_lookup(base: &str, sub: &str, rg: &str, vm: &str) -> Result<Option<Arc>> {
    let Some(v) = arm_vm(base, sub, rg, vm)? else {
        return Ok(None);
    };
    let s = |p: &str| {
        v.pointer(p)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok(Some(Arc {
        id: s("/id"),
        custom_location: s("/extendedLocation/name"),
        nics: nic_ids(&v),
        security_type: s("/properties/securityProfile/securityType"),
        tpm: v
            .pointer("/properties/securityProfile/enableTPM")
            .and_then(|x| x.as_bool())
            .unwrap_or(false),
    }))
}

fn nic_ids(vmi: &serde_json::Value) -> Vec<String> {
    vmi.pointer("/properties/networkProfile/networkInterfaces")
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|n| n.get("id").and_then(|i| i.as_str()).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// What a rehydration elsewhere needs to know about an Arc VM: its resource, custom
/// location, and per NIC the logical networks it is attached to.
fn arc_identity(base: &str, sub: &str, rg: &str, vm: &str) -> Result<serde_json::Value> {
    let Some(v) = arm_vm(base, sub, rg, vm)? else {
        return Ok(serde_json::Value::Null);
    };
    let mut nics = Vec::new();
    for id in nic_ids(&v) {
        let url = format!("{}{id}?api-version={ARM_API}", base.trim_end_matches('/'));
        let nic =
            arm_get(url, &format!("network interface {id}"))?.unwrap_or(serde_json::Value::Null);
        let lnets: Vec<&str> = nic
            .pointer("/properties/ipConfigurations")
            .and_then(|x| x.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.pointer("/properties/subnet/id").and_then(|x| x.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        nics.push(
            serde_json::json!({ "id": id, "logicalNetworks": lnets, "found": !nic.is_null() }),
        );
    }
    Ok(serde_json::json!({
        "id": v.pointer("/id"),
        "customLocation": v.pointer("/extendedLocation/name"),
        "networkInterfaces": nics,
        "resource": v,
    }))
}

/// PowerShell single-quoted string.
fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `C:\ClusterStorage\Volume1\vm\disk.vhdx` → the same file as this machine sees it,
/// through `map` (`prefix=replacement` pairs separated by `;`, first match wins;
/// backslashes become slashes after a replacement).
fn map_path(map: &str, path: &str) -> Result<String> {
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
        if path.len() >= from.len() && path[..from.len()].eq_ignore_ascii_case(from) {
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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Checkpointed {
    checkpoint: String,
    disks: Vec<Drive>,
    config: serde_json::Value,
}

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property {
        name: name.into(),
        value: value.into(),
    }
}

struct HyperV;

impl Plugin for HyperV {
    fn describe() -> PluginInfo {
        rehydra_plugin_sdk::info(
            "hyperv-vm",
            "Hyper-V and Arc VMs",
            env!("CARGO_PKG_VERSION"),
            &["hyperv-vm"],
            "Discovers Azure Local / Hyper-V VMs, their disks and NICs, and which are Arc VMs or Trusted launch VMs",
        )
    }

    /// Settings: `cluster` (name shown as the tree's root), `nodes` (comma-separated
    /// command targets; `local` for this machine), and for the Arc lookup `subscription`,
    /// `resource-group` and optionally `arm` (default `https://management.azure.com`).
    fn discover(s: Vec<Property>) -> Result<Vec<Asset>> {
        let cluster = setting(&s, "cluster").unwrap_or("cluster").to_string();
        let nodes: Vec<&str> = setting(&s, "nodes")
            .unwrap_or("local")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .collect();
        let arm = match (setting(&s, "subscription"), setting(&s, "resource-group")) {
            (Some(sub), Some(rg)) => Some((
                setting(&s, "arm").unwrap_or("https://management.azure.com"),
                sub,
                rg,
            )),
            _ => None,
        };
        let empty = ProtectionFlags::empty();
        let mut out = vec![Asset {
            kind: "cluster".into(),
            id: format!("cluster/{cluster}"),
            name: cluster.clone(),
            parent: None,
            properties: vec![],
            flags: ProtectionFlags::CLUSTERED,
        }];
        for node in nodes {
            let r = commands::powershell(node, INVENTORY)?;
            if r.status != 0 {
                let why = String::from_utf8_lossy(&r.stderr)
                    .trim()
                    .chars()
                    .take(400)
                    .collect::<String>();
                return Err(Error::new(
                    ErrorCode::Failed,
                    format!(
                        "node {node}: the inventory script failed (exit {}): {why}",
                        r.status
                    ),
                ));
            }
            let node_id = format!("node/{node}");
            out.push(Asset {
                kind: "node".into(),
                id: node_id.clone(),
                name: node.to_string(),
                parent: Some(format!("cluster/{cluster}")),
                properties: vec![],
                flags: empty,
            });
            for vm in parse_inventory(node, &r.stdout)? {
                let mut flags = empty;
                let mut p = vec![
                    prop("state", vm.state.clone()),
                    prop("generation", vm.generation.to_string()),
                    prop("cpu", vm.processor_count.to_string()),
                    prop("memory-mib", (vm.memory_startup >> 20).to_string()),
                    prop(
                        "owner-node",
                        if vm.computer_name.is_empty() {
                            node.to_string()
                        } else {
                            vm.computer_name.clone()
                        },
                    ),
                    prop("checkpoints", vm.checkpoints.to_string()),
                ];
                for (i, d) in vm.hard_drives.iter().enumerate() {
                    let ctl = d
                        .controller_type
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| d.controller_type.to_string());
                    p.push(prop(
                        &format!("disk.{i}"),
                        format!(
                            "{} ({ctl} {}:{})",
                            d.path, d.controller_number, d.controller_location
                        ),
                    ));
                    if d.path.to_ascii_lowercase().ends_with(".avhdx") {
                        flags |= ProtectionFlags::HAS_CHECKPOINTS;
                    }
                }
                for (i, n) in vm.network_adapters.iter().enumerate() {
                    let vlan = n
                        .vlan_id
                        .filter(|v| *v != 0)
                        .map(|v| format!(", VLAN {v}"))
                        .unwrap_or_default();
                    p.push(prop(
                        &format!("nic.{i}"),
                        format!(
                            "{} {} on {}{vlan}",
                            n.name,
                            n.mac_address,
                            n.switch_name.as_deref().unwrap_or("(not connected)")
                        ),
                    ));
                }
                if vm.checkpoints > 0 {
                    flags |= ProtectionFlags::HAS_CHECKPOINTS;
                }
                if vm.is_clustered {
                    flags |= ProtectionFlags::CLUSTERED;
                }
                if vm.tpm_enabled {
                    flags |= ProtectionFlags::TRUSTED_LAUNCH;
                }
                if let Some((base, sub, rg)) = arm {
                    match arm_lookup(base, sub, rg, &vm.name)? {
                        Some(a) => {
                            flags |= ProtectionFlags::ARC_MANAGED;
                            // Trusted launch: the security type says so; without it, a vTPM
                            // (whose guest state key must then be protected) counts
                            if a.security_type == "TrustedLaunch"
                                || (a.security_type.is_empty() && a.tpm)
                            {
                                flags |= ProtectionFlags::TRUSTED_LAUNCH;
                            }
                            p.push(prop("arc-resource-id", a.id));
                            p.push(prop("custom-location", a.custom_location));
                            p.push(prop("arc-nics", a.nics.join(" ")));
                            if !a.security_type.is_empty() {
                                p.push(prop("security-type", a.security_type));
                            }
                        }
                        None => p.push(prop("arc-resource-id", "")),
                    }
                }
                out.push(Asset {
                    kind: "vm".into(),
                    id: vm.id.to_ascii_lowercase(),
                    name: vm.name,
                    parent: Some(node_id.clone()),
                    properties: p,
                    flags,
                });
            }
        }
        Ok(out)
    }

    /// Options: `node` (the command target the VM runs on; default `local`), `path-map`
    /// (how this machine reaches the node's disk paths), and for Arc VMs `subscription`,
    /// `resource-group`, optionally `arm`: the VM's Arc identity is then recorded.
    fn backup(req: BackupRequest) -> Result<BackupReport> {
        let node = setting(&req.options, "node").unwrap_or("local");
        let map = setting(&req.options, "path-map").unwrap_or("");
        let id = ps_quote(&req.asset.id);
        let name = format!(
            "rehydra-{}",
            req.asset
                .id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(8)
                .collect::<String>()
        );
        let take = format!(
            "$ErrorActionPreference = 'Stop'\n$vm = Get-VM -Id {id}\nSet-VM -VM $vm -CheckpointType ProductionOnly\n$cp = Checkpoint-VM -VM $vm -SnapshotName {n} -Passthru\n[pscustomobject]@{{ Checkpoint = $cp.Id.ToString(); Disks = @(Get-VMHardDiskDrive -VMSnapshot $cp | Select-Object Path, ControllerType, ControllerNumber, ControllerLocation); Config = ($vm | Select-Object Name, Id, Generation, ProcessorCount, MemoryStartup, Path, Version) }} | ConvertTo-Json -Depth 4",
            n = ps_quote(&name)
        );
        let r = commands::powershell(node, &take)?;
        if r.status != 0 {
            let why = String::from_utf8_lossy(&r.stderr)
                .trim()
                .chars()
                .take(400)
                .collect::<String>();
            return Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "node {node}: the production checkpoint of VM {} failed (exit {}): {why}",
                    req.asset.id, r.status
                ),
            ));
        }
        // from here on the checkpoint exists: it is removed whatever the backup does
        let result = (|| -> Result<Vec<String>> {
            let cp: Checkpointed = serde_json::from_slice(&r.stdout).map_err(|e| {
                Error::new(
                    ErrorCode::Failed,
                    format!("node {node}: the checkpoint answer is not the expected JSON ({e})"),
                )
            })?;
            host_log(&format!(
                "checkpoint {} of VM {} on {node}",
                cp.checkpoint, req.asset.id
            ));
            for (i, d) in cp.disks.iter().enumerate() {
                engine::ingest_disk(
                    &format!("disk-{i}"),
                    &map_path(map, &d.path)?,
                    engine::DiskFormat::Auto,
                )?;
            }
            // the Arc identity, so a restore elsewhere can rehydrate the VM
            let arc = match (
                setting(&req.options, "subscription"),
                setting(&req.options, "resource-group"),
                cp.config.get("Name").and_then(|n| n.as_str()),
            ) {
                (Some(sub), Some(rg), Some(name)) => arc_identity(
                    setting(&req.options, "arm").unwrap_or("https://management.azure.com"),
                    sub,
                    rg,
                    name,
                )?,
                _ => serde_json::Value::Null,
            };
            let doc = serde_json::json!({ "vm": cp.config, "node": node, "checkpoint": cp.checkpoint, "disks": cp.disks.iter().map(|d| &d.path).collect::<Vec<_>>(), "arc": arc });
            engine::put_document("vm.json", doc.to_string().as_bytes())?;
            Ok(vec![])
        })();
        let remove = format!(
            "$ErrorActionPreference = 'Stop'\nGet-VM -Id {id} | Get-VMSnapshot -Name {} | Remove-VMSnapshot",
            ps_quote(&name)
        );
        let removed = commands::powershell(node, &remove);
        let removal_problem = match &removed {
            Ok(o) if o.status == 0 => None,
            Ok(o) => Some(
                String::from_utf8_lossy(&o.stderr)
                    .trim()
                    .chars()
                    .take(300)
                    .collect::<String>(),
            ),
            Err(e) => Some(e.message.clone()),
        };
        match (result, removal_problem) {
            (Ok(warnings), None) => Ok(BackupReport {
                consistency: "application".into(),
                warnings,
            }),
            (Ok(_), Some(why)) => Err(Error::new(
                ErrorCode::Failed,
                format!(
                    "the backup of VM {} was taken but its checkpoint {name} could not be removed on {node} ({why}); remove it in Hyper-V Manager, then back up again",
                    req.asset.id
                ),
            )),
            (Err(e), None) => Err(e),
            (Err(e), Some(why)) => Err(Error::new(
                e.code,
                format!(
                    "{} — and the checkpoint {name} could not be removed on {node} ({why}); remove it in Hyper-V Manager",
                    e.message
                ),
            )),
        }
    }
}

fn host_log(msg: &str) {
    rehydra_plugin_sdk::host::log(rehydra_plugin_sdk::host::Level::Info, msg);
}

export_plugin!(HyperV);
