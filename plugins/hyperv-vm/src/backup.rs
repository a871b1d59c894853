//! Backup: production checkpoint, frozen disks through the engine, configuration
//! document with the Arc identity, checkpoint removed whatever happened.

use rehydra_plugin_sdk::windows::{clip, map_path, ps_quote};
use rehydra_plugin_sdk::{commands, engine, prelude::*};
use serde::Deserialize;

use crate::arm::{self, Arm};
use crate::inventory::Drive;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Checkpointed {
    checkpoint: String,
    disks: Vec<Drive>,
    config: serde_json::Value,
}

/// The checkpoint script: production checkpoint, its disks, and the VM's configuration
/// (hardware, firmware, vTPM, NICs) as a restore needs it.
fn checkpoint_script(id: &str, name: &str) -> String {
    format!(
        r#"$ErrorActionPreference = 'Stop'
$vm = Get-VM -Id {id}
Set-VM -VM $vm -CheckpointType ProductionOnly
$cp = Checkpoint-VM -VM $vm -SnapshotName {name} -Passthru
$sec = Get-VMSecurity -VM $vm -ErrorAction SilentlyContinue
$fw = if ($vm.Generation -eq 2) {{ Get-VMFirmware -VM $vm }} else {{ $null }}
[pscustomobject]@{{
  Checkpoint = $cp.Id.ToString()
  Disks = @(Get-VMHardDiskDrive -VMSnapshot $cp | Select-Object Path, ControllerType, ControllerNumber, ControllerLocation)
  Config = [pscustomobject]@{{
    Name = $vm.Name; Id = $vm.Id.ToString(); Generation = $vm.Generation; ProcessorCount = $vm.ProcessorCount
    MemoryStartup = $vm.MemoryStartup; Path = $vm.Path; Version = $vm.Version
    TpmEnabled = [bool]$sec.TpmEnabled; SecureBoot = ($fw.SecureBoot -eq 'On')
    NetworkAdapters = @(Get-VMNetworkAdapter -VM $vm | Select-Object Name, MacAddress, SwitchName, @{{n='VlanId';e={{$_.VlanSetting.AccessVlanId}}}})
  }}
}} | ConvertTo-Json -Depth 4"#,
        id = ps_quote(id),
        name = ps_quote(name)
    )
}

/// Options: `node` (the command target the VM runs on; default `local`), `path-map`
/// (how this machine reaches the node's disk paths), and for Arc VMs `subscription`,
/// `resource-group`, optionally `arm`: the VM's Arc identity is then recorded.
pub fn backup(req: &BackupRequest) -> Result<BackupReport> {
    let node = setting(&req.options, "node").unwrap_or("local");
    let map = setting(&req.options, "path-map").unwrap_or("");
    let vm_id = &req.asset.id;
    let name = format!(
        "rehydra-{}",
        vm_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect::<String>()
    );
    let r = commands::powershell(node, &checkpoint_script(vm_id, &name))?;
    if r.status != 0 {
        return Err(Error::new(
            ErrorCode::Failed,
            format!(
                "node {node}: the production checkpoint of VM {vm_id} failed (exit {}): {}",
                r.status,
                clip(&String::from_utf8_lossy(&r.stderr), 400)
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
        rehydra_plugin_sdk::host::info(&format!(
            "checkpoint {} of VM {vm_id} on {node}",
            cp.checkpoint
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
            (Some(sub), Some(rg), Some(vm)) => {
                arm::identity(&mut Arm::new(setting(&req.options, "arm")), sub, rg, vm)?
            }
            _ => serde_json::Value::Null,
        };
        let doc = serde_json::json!({
            "vm": cp.config, "node": node, "checkpoint": cp.checkpoint, "disks": cp.disks, "arc": arc,
        });
        engine::put_document("vm.json", doc.to_string().as_bytes())?;
        Ok(vec![])
    })();
    let remove = format!(
        "$ErrorActionPreference = 'Stop'\nGet-VM -Id {} | Get-VMSnapshot -Name {} | Remove-VMSnapshot",
        ps_quote(vm_id),
        ps_quote(&name)
    );
    let removal_problem = match commands::powershell(node, &remove) {
        Ok(o) if o.status == 0 => None,
        Ok(o) => Some(clip(&String::from_utf8_lossy(&o.stderr), 300)),
        Err(e) => Some(e.message),
    };
    match (result, removal_problem) {
        (Ok(warnings), None) => Ok(BackupReport {
            consistency: "application".into(),
            warnings,
        }),
        (Ok(_), Some(why)) => Err(Error::new(
            ErrorCode::Failed,
            format!(
                "the backup of VM {vm_id} was taken but its checkpoint {name} could not be removed on {node} ({why}); remove it in Hyper-V Manager, then back up again"
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
