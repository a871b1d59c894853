//! Rehydration: an Arc VM restored to another Azure Local cluster is a plain Hyper-V VM;
//! this makes it an Arc VM again through Azure Resource Manager. The plan checks the
//! prerequisites first (no Connected Machine agent in the guest, target custom location,
//! storage container and logical networks exist, the local VM is there and off), then
//! creates the machine, `virtualHardDisks` from the restored local VHDX
//! (`createFromLocal`), `networkInterfaces` on the target's logical networks, and the
//! `virtualMachineInstances` resource with the original hardware and security profile.
//!
//! Every resource carries the tag `rehydra-rehydration = <restore point id>`, so a run
//! after a failure recognises what it already made (skips what provisioned, re-puts what
//! did not) and never takes over a resource it did not make. Every ARM request and
//! response is logged and kept in a journal file in the target folder.

use rehydra_plugin_sdk::windows::{powershell, ps_quote};
use rehydra_plugin_sdk::{files, prelude::*};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::arm::{
    self, Arm, CUSTOM_LOCATION_API, LNET_API, MACHINES_API, NIC_CREATE_API, NIC_GET_API,
    STORAGE_CONTAINER_API, VHD_CREATE_API, VHD_GET_API, VMI_API, provisioning,
};
use crate::restore::Saved;

const TAG: &str = "rehydra-rehydration";

/// The restored VM as the target node has it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Local {
    #[serde(default)]
    exists: bool,
    #[serde(default)]
    state: String,
    #[serde(default)]
    disks: Vec<String>,
    #[serde(default)]
    nics: usize,
    /// Where the Connected Machine agent was found in the guest, if anywhere.
    #[serde(default)]
    agent: Option<String>,
    /// How many guest volumes could be inspected for the agent.
    #[serde(default)]
    volumes_checked: u32,
}

fn local_vm(node: &str, name: &str) -> Result<Local> {
    let script = format!(
        r#"$ErrorActionPreference = 'Stop'
$vm = Get-VM -Name {n} -ErrorAction SilentlyContinue
if (-not $vm) {{ '{{"Exists": false}}'; return }}
$disks = @(Get-VMHardDiskDrive -VM $vm | ForEach-Object {{ $_.Path }})
$agent = $null; $checked = 0
if ($vm.State -eq 'Off' -and $disks.Count -gt 0) {{
  $m = Mount-VHD -Path $disks[0] -ReadOnly -Passthru
  try {{
    foreach ($v in @($m | Get-Disk | Get-Partition | Get-Volume | Where-Object DriveLetter)) {{
      $checked++
      $p = "$($v.DriveLetter):\Program Files\AzureConnectedMachineAgent"
      if (Test-Path $p) {{ $agent = $p }}
    }}
  }} finally {{ Dismount-VHD -Path $disks[0] }}
}}
[pscustomobject]@{{ Exists = $true; State = $vm.State.ToString(); Disks = $disks; Nics = @(Get-VMNetworkAdapter -VM $vm).Count; Agent = $agent; VolumesChecked = $checked }} | ConvertTo-Json -Depth 3"#,
        n = ps_quote(name)
    );
    let out = powershell(node, &script, &format!("inspecting the restored VM {name}"))?;
    serde_json::from_slice(&out).map_err(|e| {
        Error::new(
            ErrorCode::Failed,
            format!("node {node}: the VM query answered unexpected JSON ({e})"),
        )
    })
}

/// One ARM resource the rehydration puts.
struct Put {
    step: String,
    title: String,
    id: String,
    /// API version of the PUT.
    api: &'static str,
    /// API version of the GET that checks what exists (GA where the PUT needs a preview).
    get_api: &'static str,
    body: Value,
    /// Already provisioned by an earlier run: skipped.
    done: bool,
}

impl Put {
    /// Create resource `id` with `body` (PUT with `api`, checked with `get_api`).
    fn new(
        step: String,
        title: String,
        id: &str,
        apis: (&'static str, &'static str),
        body: Value,
    ) -> Self {
        let (api, get_api) = apis;
        Self {
            step,
            title,
            id: id.to_string(),
            api,
            get_api,
            body,
            done: false,
        }
    }
}

/// The computed rehydration.
pub struct Planned {
    pub plan: RestorePlan,
    puts: Vec<Put>,
    delete: Vec<String>,
    arm: Arm,
    journal: String,
    restore_point: String,
}

/// `old=new;…` lookup of the target logical network for an original one (matched by
/// full id or by name), else the default `logical-network`.
fn lnet_for(req: &RestoreRequest, old: &str) -> Option<String> {
    let old_name = old.rsplit('/').next().unwrap_or(old);
    for pair in setting(&req.options, "lnet-map").unwrap_or("").split(';') {
        if let Some((from, to)) = pair.split_once('=')
            && (from.eq_ignore_ascii_case(old) || from.eq_ignore_ascii_case(old_name))
        {
            return Some(to.to_string());
        }
    }
    setting(&req.options, "logical-network").map(String::from)
}

/// Is `v` a resource this rehydration (restore point `snap`) made?
fn ours(v: &Value, snap: &str) -> bool {
    v.pointer(&format!("/tags/{TAG}")).and_then(Value::as_str) == Some(snap)
}

/// The original security profile `p` (over `out`, what the Hyper-V configuration says)
/// as the GA schema the VM instance is PUT with ([`VMI_API`]) knows it: `enableTPM`,
/// `uefiSettings.secureBootEnabled`, `securityType` (a restore point may hold a profile
/// read with a preview version, with more fields).
fn ga_security_profile(p: &Value, mut out: Value) -> Value {
    if let Some(v) = p.get("enableTPM").filter(|v| v.is_boolean()) {
        out["enableTPM"] = v.clone();
    }
    if let Some(v) = p
        .pointer("/uefiSettings/secureBootEnabled")
        .filter(|v| v.is_boolean())
    {
        out["uefiSettings"] = json!({ "secureBootEnabled": v });
    }
    if let Some(v) = p.get("securityType").filter(|v| v.is_string()) {
        out["securityType"] = v.clone();
    }
    out
}

/// Compute and check the rehydration; reads ARM and the node, changes nothing.
pub fn plan(req: &RestoreRequest) -> Result<Planned> {
    let saved = Saved::load()?;
    let snap = req.restore_point.id.clone();
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    if saved.arc.is_null() {
        blockers.push(format!(
            "{} was not an Arc VM when it was backed up (or the backup had no subscription/resource-group settings): there is no Arc identity to rehydrate",
            saved.vm.name
        ));
    }
    let sub = require(&req.options, "subscription", "the target subscription id")?;
    let rg = require(&req.options, "resource-group", "the target resource group")?;
    let location = require(
        &req.options,
        "location",
        "the Azure region of the target cluster's resources",
    )?;
    let cl = require(
        &req.options,
        "custom-location",
        "resource id of the target cluster's custom location",
    )?;
    let container = require(
        &req.options,
        "storage-container",
        "resource id of the target storage container that holds the restored VHDX",
    )?;
    let node = setting(&req.options, "node").unwrap_or("local");
    let vm_name = setting(&req.options, "vm-name").unwrap_or(&saved.vm.name);
    let machine = setting(&req.options, "machine-name").unwrap_or(vm_name);
    let target = req.target.trim();
    if target.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "rehydration keeps a journal of every ARM call: give a folder for it as the restore target (needs files-write)",
        ));
    }
    let journal = format!(
        "{}/rehydrate-{machine}.journal.json",
        target.trim_end_matches('/')
    );
    let mut arm = Arm::new(setting(&req.options, "arm"));
    if let Some(s) = setting(&req.options, "poll-seconds") {
        arm.poll_seconds = s.parse().map_err(|_| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("poll-seconds={s} is not a number"),
            )
        })?;
    }

    // prerequisites
    let local = local_vm(node, vm_name)?;
    if !local.exists {
        blockers.push(format!(
            "no VM named `{vm_name}` on node {node}: restore it there first (hyperv-vm restore to the target cluster), or name it with vm-name=…"
        ));
    } else if local.state != "Off" {
        blockers.push(format!(
            "VM `{vm_name}` is {}: stop it before rehydration (its disks are registered and inspected while it is off)",
            local.state
        ));
    }
    if let Some(p) = &local.agent {
        blockers.push(format!(
            "the Azure Connected Machine agent is installed in the guest ({p}): an Arc VM on Azure Local must not run it; uninstall it (azcmagent disconnect, then remove the agent) and rehydrate again"
        ));
    } else if local.exists && local.state == "Off" && local.volumes_checked == 0 {
        warnings.push(
            "no guest volume could be inspected for the Azure Connected Machine agent; make sure it is not installed in the guest".into(),
        );
    }
    for (what, id, api) in [
        ("custom location", cl, CUSTOM_LOCATION_API),
        ("storage container", container, STORAGE_CONTAINER_API),
    ] {
        if arm.get(id, api)?.is_none() {
            blockers.push(format!("the target {what} {id} does not exist"));
        }
    }

    let tags = json!({ TAG: snap });
    let ext = json!({ "name": cl, "type": "CustomLocation" });
    let mut puts = Vec::new();
    let machine_id = arm::machine_id(sub, rg, machine);
    puts.push(Put::new(
        "machine".into(),
        format!("Create Arc machine {machine}"),
        &machine_id,
        (MACHINES_API, MACHINES_API),
        json!({ "location": location, "kind": "HCI", "identity": { "type": "SystemAssigned" }, "tags": tags }),
    ));
    let mut disk_ids = Vec::new();
    for (i, path) in local.disks.iter().enumerate() {
        let name = format!("{machine}-disk-{i}");
        let id = arm::hci_id(sub, rg, "virtualHardDisks", &name);
        puts.push(Put::new(
            format!("disk-{i}"),
            format!("Create virtual hard disk {name} from {path}"),
            &id,
            (VHD_CREATE_API, VHD_GET_API),
            json!({
                "extendedLocation": ext, "location": location, "tags": tags,
                "properties": { "createFromLocal": true, "containerId": container, "diskFileFormat": "vhdx", "dynamic": true,
                    "hyperVGeneration": if saved.vm.generation == 1 { "V1" } else { "V2" } },
            }),
        ));
        disk_ids.push(id);
    }
    let old_nics = saved
        .arc
        .get("networkInterfaces")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut nic_ids = Vec::new();
    for i in 0..local.nics.max(old_nics.len()) {
        let old_lnet = old_nics
            .get(i)
            .and_then(|n| n.pointer("/logicalNetworks/0"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some(lnet) = lnet_for(req, old_lnet) else {
            blockers.push(format!(
                "NIC {i} (was on {}) has no target logical network: give logical-network=<id> or lnet-map=<old>=<new id>",
                if old_lnet.is_empty() { "no logical network" } else { old_lnet }
            ));
            continue;
        };
        if arm.get(&lnet, LNET_API)?.is_none() {
            blockers.push(format!("the target logical network {lnet} does not exist"));
        }
        let name = format!("{machine}-nic-{i}");
        let id = arm::hci_id(sub, rg, "networkInterfaces", &name);
        puts.push(Put::new(
            format!("nic-{i}"),
            format!("Create network interface {name} on {}", lnet.rsplit('/').next().unwrap_or(&lnet)),
            &id,
            (NIC_CREATE_API, NIC_GET_API),
            json!({
                "extendedLocation": ext, "location": location, "tags": tags,
                "properties": { "createFromLocal": true, "ipConfigurations": [ { "name": format!("ipconfig-{i}"), "properties": { "subnet": { "id": lnet } } } ] },
            }),
        ));
        nic_ids.push(id);
    }
    if !nic_ids.is_empty() {
        warnings.push(
            "the VM gets new network interfaces and therefore new MAC addresses: software licences bound to a MAC address, DHCP reservations and static guest NIC settings may need attention"
                .into(),
        );
    }
    // hardware and security profile as the original Arc VM had them
    let old = saved
        .arc
        .pointer("/resource/properties")
        .cloned()
        .unwrap_or(Value::Null);
    let mut security = ga_security_profile(
        old.get("securityProfile").unwrap_or(&Value::Null),
        json!({ "enableTPM": saved.vm.tpm_enabled, "uefiSettings": { "secureBootEnabled": saved.vm.secure_boot } }),
    );
    if saved.trusted_launch() && security.get("securityType").is_none() {
        security["securityType"] = json!("TrustedLaunch");
    }
    let mut storage = json!({ "vmConfigStoragePathId": container });
    if let Some((os, data)) = disk_ids.split_first() {
        storage["osDisk"] = json!({ "id": os });
        if !data.is_empty() {
            storage["dataDisks"] = data.iter().map(|d| json!({ "id": d })).collect();
        }
    } else {
        blockers.push(format!("VM `{vm_name}` has no disks to register"));
    }
    let vmi = arm::vmi_id(sub, rg, machine);
    puts.push(Put::new(
        "vmi".into(),
        format!("Create the Arc VM instance of {machine}"),
        &vmi,
        (VMI_API, VMI_API),
        json!({
            "extendedLocation": ext,
            "properties": {
                "hardwareProfile": { "vmSize": "Custom", "processors": saved.vm.processor_count, "memoryMB": saved.vm.memory_startup >> 20 },
                "storageProfile": storage,
                "networkProfile": { "networkInterfaces": nic_ids.iter().map(|n| json!({ "id": n })).collect::<Vec<_>>() },
                "securityProfile": security,
            },
        }),
    ));

    // what exists already: ours (resume), or somebody else's (never taken over)
    for p in &mut puts {
        if let Some(v) = arm.get(&p.id, p.get_api)? {
            let mine = if p.step == "vmi" {
                v.pointer("/properties/storageProfile/osDisk/id")
                    .and_then(Value::as_str)
                    == disk_ids.first().map(String::as_str)
            } else {
                ours(&v, &snap)
            };
            if !mine {
                blockers.push(format!(
                    "{} already exists and was not made by this rehydration; choose another machine-name=… or remove it",
                    p.id
                ));
            } else if provisioning(&v) == "Succeeded" {
                p.done = true;
            }
        }
    }

    // the original resource, now stale
    let mut delete = Vec::new();
    let original = saved
        .arc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !original.is_empty() {
        let original_machine = original
            .split("/providers/Microsoft.AzureStackHCI/")
            .next()
            .unwrap_or_default()
            .to_string();
        let consent = flag(&req.options, "delete-original");
        if original_machine.eq_ignore_ascii_case(&machine_id) {
            if consent {
                blockers.push(
                    "delete-original=true names the very resource being rehydrated into; drop it"
                        .into(),
                );
            }
        } else if consent {
            delete = vec![original.clone(), original_machine];
        } else {
            warnings.push(format!(
                "the original Arc VM resource {original} is left as it is (it describes a VM that no longer runs there); delete it with delete-original=true"
            ));
        }
    }

    let mut steps = vec![Step {
        id: "prerequisites".into(),
        title: "Check prerequisites".into(),
        detail: format!(
            "VM `{vm_name}` on {node}: {}; Connected Machine agent in the guest: {}; custom location {cl}; storage container {container}",
            if local.exists {
                local.state.as_str()
            } else {
                "missing"
            },
            local
                .agent
                .as_deref()
                .unwrap_or(if local.volumes_checked > 0 {
                    "absent"
                } else {
                    "not inspected"
                })
        ),
        depends_on: vec![],
    }];
    for p in &puts {
        let depends_on = if p.step == "vmi" {
            puts.iter()
                .filter(|q| q.step != "vmi")
                .map(|q| q.step.clone())
                .collect()
        } else if p.step == "machine" {
            vec!["prerequisites".into()]
        } else {
            vec!["machine".into()]
        };
        steps.push(Step {
            id: p.step.clone(),
            title: p.title.clone(),
            detail: if p.done {
                format!("already done by an earlier run: {} provisioned", p.id)
            } else {
                format!("PUT {}?api-version={} {}", p.id, p.api, p.body)
            },
            depends_on,
        });
    }
    for (i, id) in delete.iter().enumerate() {
        steps.push(Step {
            id: format!("delete-original-{i}"),
            title: "Delete the original Arc resource (consented)".into(),
            detail: format!("DELETE {id}"),
            depends_on: vec!["vmi".into()],
        });
    }
    Ok(Planned {
        plan: RestorePlan {
            steps,
            warnings,
            blockers,
        },
        puts,
        delete,
        arm,
        journal,
        restore_point: snap,
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Append this run to the journal file (written crash-safely after every step).
fn save_journal(path: &str, earlier: &[Value], run: &Value) -> Result<()> {
    let mut runs = earlier.to_vec();
    runs.push(run.clone());
    let doc = json!({ "runs": runs });
    files::write_file(path, doc.to_string().as_bytes(), true)
}

/// Run the rehydration (the plan must have no blockers).
pub fn execute(mut p: Planned) -> Result<RestoreReport> {
    if !p.plan.blockers.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            p.plan.blockers.join("; "),
        ));
    }
    let earlier: Vec<Value> = files::read_file(&p.journal)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v.get("runs").and_then(Value::as_array).cloned())
        .unwrap_or_default();
    // the plan's own GETs are part of the record
    let mut run =
        json!({ "restorePoint": p.restore_point, "started": now(), "steps": [], "calls": [] });
    let total = (p.puts.len() + p.delete.len()) as u64;
    let mut outcome: Result<()> = Ok(());
    for (i, put) in p.puts.iter().enumerate() {
        rehydra_plugin_sdk::host::progress(i as u64, total, &put.title);
        let r = if put.done {
            Ok("skipped: done by an earlier run")
        } else {
            p.arm.put(&put.id, put.api, &put.body).map(|_| "done")
        };
        if let Some(s) = run["steps"].as_array_mut() {
            s.push(json!({ "step": put.step, "id": put.id, "result": r.as_ref().map_or_else(|e| e.message.clone(), |m| (*m).to_string()) }))
        }
        run["calls"] = Value::Array(p.arm.journal.clone());
        save_journal(&p.journal, &earlier, &run)?;
        if let Err(e) = r {
            outcome = Err(Error::new(
                e.code,
                format!(
                    "rehydration stopped at step {} ({}): {}; what was created stays and is recognised: run the same rehydration again to resume (journal: {})",
                    put.step, put.title, e.message, p.journal
                ),
            ));
            break;
        }
    }
    if outcome.is_ok() {
        for id in &p.delete {
            if let Err(e) = p.arm.delete(
                id,
                if id.contains("virtualMachineInstances") {
                    VMI_API
                } else {
                    MACHINES_API
                },
            ) {
                outcome = Err(e);
                break;
            }
        }
    }
    run["calls"] = Value::Array(p.arm.journal.clone());
    run["outcome"] = json!(
        outcome
            .as_ref()
            .map_or_else(|e| e.message.clone(), |()| "succeeded".into())
    );
    save_journal(&p.journal, &earlier, &run)?;
    outcome?;
    rehydra_plugin_sdk::host::progress(total, total, "rehydrated");
    Ok(RestoreReport {
        bytes: 0,
        warnings: p.plan.warnings,
    })
}
