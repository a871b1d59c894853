//! Hyper-V and Arc VMs on Azure Local: discovery, backup, restore as a Hyper-V VM, and
//! rehydration as an Arc VM on another cluster.
//!
//! Each cluster node is asked for its VMs with one PowerShell script (run by the host on
//! a granted command target), whose JSON this plugin parses; Azure Resource Manager is
//! then asked, per VM, whether it is an Arc VM (`virtualMachineInstances/default` under
//! `Microsoft.HybridCompute/machines/<name>`), which gives its custom location, NICs and
//! security profile.
//!
//! Backup (`backup.rs`) takes a production checkpoint on the VM's node, backs up the
//! checkpoint's (now frozen) disks through the engine's disk path — read on this machine
//! through a path map such as `C:\ClusterStorage\=/mnt/csv/` — stores the VM's
//! configuration as a document, and removes the checkpoint again whatever happened.
//! Restore (`restore.rs`) writes the disks as VHDX and creates the VM with a generated
//! script shown in the plan; with `mode=rehydrate` (`rehydrate.rs`) it makes a restored
//! Arc VM an Arc VM again through Azure Resource Manager.
use rehydra_plugin_sdk::prelude::*;
use rehydra_plugin_sdk::windows::powershell;

mod arm;
mod backup;
mod cluster;
mod inventory;
mod rct;
mod rehydrate;
mod restore;

use arm::Arm;
use inventory::{INVENTORY, parse_inventory};

fn rehydrating(req: &RestoreRequest) -> Result<bool> {
    match setting(&req.options, "mode").unwrap_or("vm") {
        "vm" => Ok(false),
        "rehydrate" => Ok(true),
        m => Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "mode={m}: choose mode=vm (restore as a Hyper-V VM, the default) or mode=rehydrate (make a restored Arc VM an Arc VM again)"
            ),
        )),
    }
}

fn finding(
    rule: &str,
    severity: Severity,
    asset: &Asset,
    title: &str,
    detail: String,
    recommendation: &str,
) -> Finding {
    Finding::new(
        rule,
        severity,
        Some(&asset.id),
        title,
        detail,
        recommendation,
    )
}

/// The entries of the `nodes` setting (default `local`).
fn node_entries(s: &[Property]) -> Vec<&str> {
    setting(s, "nodes")
        .unwrap_or("local")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}

struct HyperV;

impl Plugin for HyperV {
    fn describe() -> PluginInfo {
        rehydra_plugin_sdk::describe_from_manifest!()
    }

    /// Settings: `cluster` (name shown as the tree's root), `nodes` (comma-separated
    /// command targets; `local` for this machine; `<target>/*` for every node a cluster
    /// target lists, see [`cluster::nodes`]), and for the Arc lookup `subscription`,
    /// `resource-group` and optionally `arm` (default `https://management.azure.com`).
    /// With a subscription the tree's root is the subscription (`subscription-name` to
    /// show a name instead of the id), then the cluster, its nodes and their VMs.
    fn discover(s: Vec<Property>) -> Result<Vec<Asset>> {
        let cluster = setting(&s, "cluster").unwrap_or("cluster").to_string();
        let entries = node_entries(&s);
        let arm = match (setting(&s, "subscription"), setting(&s, "resource-group")) {
            (Some(sub), Some(rg)) => Some((sub, rg)),
            _ => None,
        };
        let mut client = Arm::new(setting(&s, "arm"));
        let empty = ProtectionFlags::empty();
        let mut out = Vec::new();
        // the tree's top level: the Azure subscription the cluster is registered in
        let subscription = arm.map(|(sub, _)| format!("subscription/{sub}"));
        if let (Some(id), Some((sub, rg))) = (&subscription, arm) {
            out.push(Asset {
                kind: "subscription".into(),
                id: id.clone(),
                name: setting(&s, "subscription-name").unwrap_or(sub).to_string(),
                parent: None,
                properties: vec![
                    property("subscription-id", sub.to_string()),
                    property("resource-group", rg.to_string()),
                ],
                flags: empty,
            });
        }
        // the cluster's facts, from the first node; without them the VMs are still listed
        let first = entries.first().map(|e| e.strip_suffix("/*").unwrap_or(e));
        let facts = first.and_then(cluster::read);
        let nodes = cluster::nodes(&entries, first.zip(facts.as_ref()));
        out.push(Asset {
            kind: "cluster".into(),
            id: format!("cluster/{cluster}"),
            name: cluster.clone(),
            parent: subscription,
            properties: facts.as_ref().map(cluster::properties).unwrap_or_default(),
            flags: ProtectionFlags::CLUSTERED,
        });
        let mut seen = std::collections::HashSet::new();
        for (node, listed) in &nodes {
            let node = node.as_str();
            let node_id = format!("node/{node}");
            let mut node_asset = Asset {
                kind: "node".into(),
                id: node_id.clone(),
                name: node.rsplit('/').next().unwrap_or(node).to_string(),
                parent: Some(format!("cluster/{cluster}")),
                properties: vec![],
                flags: empty,
            };
            // a node the cluster listed (not the admin) that cannot answer leaves out its
            // VMs, said as a property the assessment turns into a finding
            let inv = match powershell(node, INVENTORY, "the inventory script") {
                Ok(inv) => inv,
                Err(e) if *listed => {
                    rehydra_plugin_sdk::host::log(
                        rehydra_plugin_sdk::host::Level::Warn,
                        &format!("{node}: its VMs could not be listed: {e}"),
                    );
                    node_asset.properties.push(property(
                        "not-swept",
                        e.to_string().chars().take(512).collect::<String>(),
                    ));
                    out.push(node_asset);
                    continue;
                }
                Err(e) => return Err(e),
            };
            out.push(node_asset);
            for vm in parse_inventory(node, &inv)? {
                // a node named twice (`hv01` and `hci-a/HV01`) lists its VMs once
                if !seen.insert(vm.id.to_ascii_lowercase()) {
                    continue;
                }
                let mut flags = empty;
                let mut p = vec![
                    property("state", vm.state.clone()),
                    property("generation", vm.generation.to_string()),
                    property("cpu", vm.processor_count.to_string()),
                    property("memory-mib", (vm.memory_startup >> 20).to_string()),
                    property(
                        "owner-node",
                        vm.owner_node
                            .clone()
                            .filter(|o| !o.is_empty())
                            .or_else(|| Some(vm.computer_name.clone()).filter(|c| !c.is_empty()))
                            .unwrap_or_else(|| node.to_string()),
                    ),
                    property("checkpoints", vm.checkpoints.to_string()),
                ];
                for (i, d) in vm.hard_drives.iter().enumerate() {
                    let ctl = d
                        .controller_type
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| d.controller_type.to_string());
                    p.push(property(
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
                    p.push(property(
                        &format!("nic.{i}"),
                        format!(
                            "{} {} on {}{vlan}",
                            n.name,
                            n.mac_address,
                            n.switch_name.as_deref().unwrap_or("(not connected)")
                        ),
                    ));
                }
                // what a first full backup reads (allocated), and what the disks may grow to
                let sized: Vec<&inventory::Drive> =
                    vm.hard_drives.iter().filter(|d| d.size.is_some()).collect();
                if !sized.is_empty() {
                    let mib = |f: fn(&inventory::Drive) -> Option<u64>| {
                        (sized.iter().filter_map(|d| f(d)).sum::<u64>() >> 20).to_string()
                    };
                    // a differencing disk's file holds only its own blocks, and a full
                    // backup reads the whole chain: its virtual size is the bound taken
                    p.push(property(
                        "size-mib",
                        mib(|d| {
                            if d.path.to_ascii_lowercase().ends_with(".avhdx") {
                                d.size
                            } else {
                                d.file_size.or(d.size)
                            }
                        }),
                    ));
                    p.push(property("provisioned-mib", mib(|d| d.size)));
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
                if let Some((sub, rg)) = arm {
                    match arm::lookup(&mut client, sub, rg, &vm.name)? {
                        Some(a) => {
                            flags |= ProtectionFlags::ARC_MANAGED;
                            // Trusted launch: the security type says so; without it, a vTPM
                            // (whose guest state key must then be protected) counts
                            if a.security_type == "TrustedLaunch"
                                || (a.security_type.is_empty() && a.tpm)
                            {
                                flags |= ProtectionFlags::TRUSTED_LAUNCH;
                            }
                            p.push(property("arc-resource-id", a.id));
                            p.push(property("custom-location", a.custom_location));
                            p.push(property("arc-nics", a.nics.join(" ")));
                            if !a.security_type.is_empty() {
                                p.push(property("security-type", a.security_type));
                            }
                        }
                        None => p.push(property("arc-resource-id", "")),
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

    fn assess(assets: Vec<Asset>, _settings: Vec<Property>) -> Result<Vec<Finding>> {
        let mut out = Vec::new();
        // the nodes discovery asked, by the names it gave them (`node/<name>`)
        let swept: Vec<&str> = assets
            .iter()
            .filter(|a| a.kind == "node")
            .map(|a| a.id.strip_prefix("node/").unwrap_or(&a.id))
            .collect();
        for a in assets.iter().filter(|a| a.kind == "cluster") {
            out.extend(cluster::assess(a, &swept));
        }
        for a in assets.iter().filter(|a| a.kind == "node") {
            out.extend(cluster::not_swept(a));
        }
        for a in assets.iter().filter(|a| a.kind == "vm") {
            if a.flags.contains(ProtectionFlags::TRUSTED_LAUNCH) {
                out.push(finding("hyperv.tvm-key", Severity::High, a, "Trusted launch VM: its guest state key needs its own backup",
                    format!("{} seals its guest state (vTPM, BitLocker keys) with a key kept by the cluster, not in the VM's files", a.name),
                    "protect it with the tvm-keys plugin as well; a restore without that key cannot boot the VM"));
            }
            if a.flags.contains(ProtectionFlags::ARC_MANAGED) {
                out.push(finding("hyperv.arc-rehydration", Severity::Medium, a, "Arc VM: a restore elsewhere loses Arc management",
                    format!("{} restored to another cluster comes back as a plain Hyper-V VM", a.name),
                    "back it up with subscription/resource-group set so its Arc identity is recorded, and plan a rehydration (restore --set mode=rehydrate)"));
            }
            if a.flags.contains(ProtectionFlags::HAS_CHECKPOINTS) {
                out.push(finding("hyperv.checkpoints", Severity::Low, a, "VM runs on checkpoint (differencing) disks",
                    format!("{} has checkpoints; long chains slow the VM and every backup reads through them", a.name),
                    "merge checkpoints that are no longer needed"));
            }
        }
        Ok(out)
    }

    fn backup(req: BackupRequest) -> Result<BackupReport> {
        backup::backup(&req)
    }

    /// Options (restore as a VM): `node`, `path-map`, `vm-name`, `mac=keep|new`,
    /// `switch-map`, `replace-vm=true`, `overwrite=true`, `start=true`; target = a folder
    /// on the node, or empty / `original`. With `mode=rehydrate`: see `rehydrate.rs`.
    fn plan_restore(req: RestoreRequest) -> Result<RestorePlan> {
        Ok(if rehydrating(&req)? {
            rehydrate::plan(&req)?.plan
        } else {
            restore::plan(&req)?.plan
        })
    }

    fn restore(req: RestoreRequest) -> Result<RestoreReport> {
        if rehydrating(&req)? {
            rehydrate::execute(rehydrate::plan(&req)?)
        } else {
            restore::execute(&req, restore::plan(&req)?)
        }
    }

    /// The configuration document reads, every disk it lists is in the restore point.
    fn verify(req: RestoreRequest) -> Result<VerifyReport> {
        let mut findings = Vec::new();
        let saved = match restore::Saved::load() {
            Ok(s) => Some(s),
            Err(e) => {
                findings.push(Finding {
                    rule: "hyperv.config".into(),
                    severity: Severity::Critical,
                    asset: Some(req.restore_point.asset.clone()),
                    title: "VM configuration unreadable".into(),
                    detail: e.message,
                    recommendation: "back the VM up again".into(),
                });
                None
            }
        };
        if let Some(s) = &saved {
            let items = rehydra_plugin_sdk::engine::items()?;
            for i in 0..s.disks.len() {
                if !items
                    .iter()
                    .any(|it| it.name == format!("disk-{i}") && it.kind == ItemKind::Disk)
                {
                    findings.push(Finding {
                        rule: "hyperv.disk-missing".into(),
                        severity: Severity::Critical,
                        asset: Some(req.restore_point.asset.clone()),
                        title: format!("disk-{i} missing"),
                        detail: format!("{} is listed in vm.json but not stored", s.disks[i].path),
                        recommendation: "back the VM up again".into(),
                    });
                }
            }
            if s.trusted_launch() {
                findings.push(Finding {
                    rule: "hyperv.tvm-key".into(),
                    severity: Severity::High,
                    asset: Some(req.restore_point.asset.clone()),
                    title: "Trusted launch VM: not restorable on its own".into(),
                    detail: "this restore point holds the VM's disks and configuration, not its guest state protection key: the VM boots only after the key from its tvm-keys restore point is imported".into(),
                    recommendation: "keep a tvm-keys restore point of this VM next to this one, and verify it too".into(),
                });
            }
        }
        let ok = !findings.iter().any(|f| f.severity == Severity::Critical);
        Ok(VerifyReport { ok, findings })
    }
}

rehydra_plugin_sdk::export_plugin!(HyperV);
