//! Backup: production checkpoint, frozen disks through the engine, configuration
//! document with the Arc identity, checkpoint removed whatever happened.

use rehydra_plugin_sdk::windows::{clip, map_path, ps_quote};
use rehydra_plugin_sdk::{commands, engine, prelude::*};
use serde::Deserialize;

use crate::arm::{self, Arm};
use crate::inventory::Drive;
use crate::rct::{self, Rct};

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

/// The previous restore point and the RCT state its `vm.json` recorded, if any.
fn previous_rct() -> Result<Option<(RestorePoint, Rct)>> {
    let Some(rp) = engine::previous()? else {
        rehydra_plugin_sdk::host::info(
            "no earlier restore point of this VM: every disk is read whole",
        );
        return Ok(None);
    };
    let doc: serde_json::Value =
        serde_json::from_slice(&engine::read_previous_document("vm.json")?)
            .unwrap_or(serde_json::Value::Null);
    match doc.get("rct").cloned().map(serde_json::from_value::<Rct>) {
        Some(Ok(r)) => Ok(Some((rp, r))),
        _ => {
            rehydra_plugin_sdk::host::info(&format!(
                "restore point {} has no change-tracking reference: every disk is read whole",
                rp.id
            ));
            Ok(None)
        }
    }
}

/// Changed ranges of checkpoint disk `d` (backed up as `item`) since the previous restore
/// point, or `None` (read it whole) with the reason in `warnings`.
fn hint(
    node: &str,
    prev: &(RestorePoint, Rct),
    item: &str,
    d: &Drive,
    warnings: &mut Vec<String>,
) -> Option<Vec<DiskRange>> {
    let (rp, r) = prev;
    let old = rp
        .items
        .iter()
        .find(|x| x.name == item && x.kind == ItemKind::Disk)?;
    let Some(id) = r.disks.iter().find(|x| x.slot == rct::slot(d)) else {
        warnings.push(format!(
            "{} ({}) is new since the last backup: read whole",
            d.path,
            rct::slot(d)
        ));
        return None;
    };
    match rct::changes(node, &d.path, &id.rct_id) {
        Ok(c) if c.size != old.size => {
            warnings.push(format!(
                "{} changed size since the last backup: read whole",
                d.path
            ));
            None
        }
        Ok(c) => match c.ranges() {
            Some(ranges) => {
                let bytes: u64 = ranges.iter().map(|r| r.1).sum();
                rehydra_plugin_sdk::host::info(&format!(
                    "{}: {} changed ranges, {bytes} bytes, since restore point {}",
                    d.path,
                    ranges.len(),
                    rp.id
                ));
                Some(
                    ranges
                        .into_iter()
                        .map(|(offset, length)| DiskRange { offset, length })
                        .collect(),
                )
            }
            None => {
                warnings.push(format!(
                    "the changed blocks of {} did not add up: read whole",
                    d.path
                ));
                None
            }
        },
        Err(e) => {
            warnings.push(format!(
                "changed blocks of {} unavailable ({}): read whole",
                d.path, e.message
            ));
            None
        }
    }
}

/// Options: `node` (the command target the VM runs on; default `local`), `path-map`
/// (how this machine reaches the node's disk paths), `rct=true` (keep a reference point
/// and read only changed blocks next time), and for Arc VMs `subscription`,
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
    let use_rct = flag(&req.options, "rct");
    let prev = if use_rct { previous_rct()? } else { None };
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
    // from here on the checkpoint exists: it is removed whatever the backup does (unless
    // it became the RCT reference point for the next backup)
    let mut converted = false;
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
        let mut warnings = Vec::new();
        for (i, d) in cp.disks.iter().enumerate() {
            let item = format!("disk-{i}");
            let local = map_path(map, &d.path)?;
            match prev
                .as_ref()
                .and_then(|p| hint(node, p, &item, d, &mut warnings))
            {
                Some(ranges) => engine::ingest_disk_changed(
                    &item,
                    &local,
                    engine::DiskFormat::Auto,
                    &item,
                    &ranges,
                )?,
                None => engine::ingest_disk(&item, &local, engine::DiskFormat::Auto)?,
            };
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
        let rct = if use_rct {
            let keep = prev
                .as_ref()
                .map(|p| p.1.reference_point.as_str())
                .unwrap_or("");
            match rct::convert(node, vm_id, &cp.checkpoint, keep, &cp.disks) {
                Ok(r) => {
                    converted = true;
                    Some(r)
                }
                Err(e) => {
                    warnings.push(format!(
                        "no change tracking for the next backup, it reads every disk whole: {}",
                        e.message
                    ));
                    None
                }
            }
        } else {
            None
        };
        let doc = serde_json::json!({
            "vm": cp.config, "node": node, "checkpoint": cp.checkpoint, "disks": cp.disks, "arc": arc, "rct": rct,
        });
        engine::put_document("vm.json", doc.to_string().as_bytes())?;
        Ok(warnings)
    })();
    if converted {
        return result.map(|warnings| BackupReport {
            consistency: "application".into(),
            warnings,
        });
    }
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
