//! Hyper-V resilient change tracking (RCT): after a backup the production checkpoint is
//! turned into a *reference point* instead of being deleted; the next backup asks the
//! node which byte ranges of each disk changed since that reference point
//! (`Msvm_ImageManagementService.GetVirtualDiskChanges`) and has the engine read only
//! those (`ingest-disk-changed`), taking the rest from the previous restore point.
//!
//! The WMI classes and methods are Microsoft's documented Hyper-V v2 provider
//! (`root/virtualization/v2`). Anything unexpected — no previous restore point, a
//! different disk layout or size, an RCT error — falls back to reading the whole disk,
//! with a warning: a hint that may be wrong is never used.

use rehydra_plugin_sdk::windows::{powershell, ps_quote};
use serde::{Deserialize, Serialize};

use crate::inventory::Drive;

/// What `vm.json` records for the next backup.
#[derive(Serialize, Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct Rct {
    /// `Msvm_VirtualSystemReferencePoint.InstanceID`.
    pub reference_point: String,
    /// One RCT id per disk, in the order of the backup's disks (`disk-<i>`).
    pub disks: Vec<RctDisk>,
}

/// One disk's change-tracking id at the reference point.
#[derive(Serialize, Deserialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct RctDisk {
    /// Controller slot (`SCSI 0:1`): the same disk in the next backup.
    pub slot: String,
    pub rct_id: String,
}

/// The slot a disk sits in.
pub fn slot(d: &Drive) -> String {
    format!(
        "{} {}:{}",
        d.controller(),
        d.controller_number,
        d.controller_location
    )
}

/// Changed ranges of one disk since `rct_id`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Changes {
    pub size: u64,
    #[serde(default)]
    pub offsets: Vec<u64>,
    #[serde(default)]
    pub lengths: Vec<u64>,
}

impl Changes {
    /// `(offset, length)` pairs; `None` when the arrays disagree.
    pub fn ranges(&self) -> Option<Vec<(u64, u64)>> {
        (self.offsets.len() == self.lengths.len()).then(|| {
            self.offsets
                .iter()
                .copied()
                .zip(self.lengths.iter().copied())
                .collect()
        })
    }
}

/// Ask the node what changed on `path` since `rct_id` (the whole virtual disk, in as many
/// calls as the provider needs).
pub fn changes(node: &str, path: &str, rct_id: &str) -> rehydra_plugin_sdk::Result<Changes> {
    let script = format!(
        r#"$ErrorActionPreference = 'Stop'
$ims = Get-CimInstance -Namespace root/virtualization/v2 -ClassName Msvm_ImageManagementService
$path = {path}
$size = [UInt64](Get-VHD -Path $path).Size
$offs = New-Object System.Collections.Generic.List[UInt64]
$lens = New-Object System.Collections.Generic.List[UInt64]
$done = [UInt64]0
while ($done -lt $size) {{
  $r = Invoke-CimMethod -InputObject $ims -MethodName GetVirtualDiskChanges -Arguments @{{ Path = $path; LimitId = {rct}; ByteOffset = $done; ByteLength = ($size - $done) }}
  if ($r.ReturnValue -ne 0) {{ throw "GetVirtualDiskChanges returned $($r.ReturnValue)" }}
  if ($r.ChangedByteOffsets) {{ $offs.AddRange([UInt64[]]$r.ChangedByteOffsets); $lens.AddRange([UInt64[]]$r.ChangedByteLengths) }}
  if ($r.ProcessedByteLength -eq 0) {{ throw 'GetVirtualDiskChanges made no progress' }}
  $done += [UInt64]$r.ProcessedByteLength
}}
[pscustomobject]@{{ Size = $size; Offsets = @($offs); Lengths = @($lens) }} | ConvertTo-Json -Depth 3"#,
        path = ps_quote(path),
        rct = ps_quote(rct_id)
    );
    let out = powershell(
        node,
        &script,
        &format!("reading the changed blocks of {path}"),
    )?;
    serde_json::from_slice(&out).map_err(|e| {
        rehydra_plugin_sdk::Error::new(
            rehydra_plugin_sdk::ErrorCode::Failed,
            format!("node {node}: the RCT answer is not the expected JSON ({e})"),
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Converted {
    reference_point: String,
    #[serde(default)]
    rct_ids: Vec<String>,
}

/// Turn checkpoint `checkpoint` of VM `vm_id` into a reference point, and remove this
/// plugin's older reference points of the VM except `keep` (the one the previous restore
/// point refers to). Returns what the next backup needs.
pub fn convert(
    node: &str,
    vm_id: &str,
    checkpoint: &str,
    keep: &str,
    disks: &[Drive],
) -> rehydra_plugin_sdk::Result<Rct> {
    let script = format!(
        r#"$ErrorActionPreference = 'Stop'
$ns = 'root/virtualization/v2'
$svc = Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemSnapshotService
$cp = Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemSettingData -Filter "InstanceID = 'Microsoft:{cp}'"
$r = Invoke-CimMethod -InputObject $svc -MethodName ConvertToReferencePoint -Arguments @{{ AffectedSnapshot = $cp }}
if ($r.ReturnValue -eq 4096) {{
  $job = Get-CimInstance -InputObject $r.Job
  while ($job.JobState -in 3, 4) {{ Start-Sleep -Milliseconds 200; $job = Get-CimInstance -InputObject $job }}
  if ($job.JobState -ne 7) {{ throw "ConvertToReferencePoint failed: $($job.ErrorDescription)" }}
  $rp = Get-CimAssociatedInstance -InputObject $job -ResultClassName Msvm_VirtualSystemReferencePoint | Select-Object -First 1
}} elseif ($r.ReturnValue -eq 0) {{
  $rp = Get-CimInstance -InputObject $r.ResultingReferencePoint
}} else {{ throw "ConvertToReferencePoint returned $($r.ReturnValue)" }}
$vm = Get-CimInstance -Namespace $ns -ClassName Msvm_ComputerSystem -Filter "Name = '{vm}'"
$rpsvc = Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemReferencePointService
foreach ($o in @(Get-CimAssociatedInstance -InputObject $vm -ResultClassName Msvm_VirtualSystemReferencePoint)) {{
  if ($o.ElementName -like 'rehydra-*' -and $o.InstanceID -ne $rp.InstanceID -and $o.InstanceID -ne {keep}) {{
    Invoke-CimMethod -InputObject $rpsvc -MethodName DestroyReferencePoint -Arguments @{{ AffectedReferencePoint = $o }} | Out-Null
  }}
}}
[pscustomobject]@{{ ReferencePoint = $rp.InstanceID; RctIds = @($rp.ResilientChangeTrackingIdentifiers) }} | ConvertTo-Json"#,
        cp = checkpoint.replace('\'', ""),
        vm = vm_id.replace('\'', ""),
        keep = ps_quote(keep),
    );
    let out = powershell(
        node,
        &script,
        "turning the checkpoint into an RCT reference point",
    )?;
    let c: Converted = serde_json::from_slice(&out).map_err(|e| {
        rehydra_plugin_sdk::Error::new(
            rehydra_plugin_sdk::ErrorCode::Failed,
            format!("node {node}: the reference point answer is not the expected JSON ({e})"),
        )
    })?;
    if c.rct_ids.len() != disks.len() {
        return Err(rehydra_plugin_sdk::Error::new(
            rehydra_plugin_sdk::ErrorCode::Failed,
            format!(
                "the reference point lists {} change-tracking ids for {} disks",
                c.rct_ids.len(),
                disks.len()
            ),
        ));
    }
    Ok(Rct {
        reference_point: c.reference_point,
        disks: disks
            .iter()
            .zip(c.rct_ids)
            .map(|(d, rct_id)| RctDisk {
                slot: slot(d),
                rct_id,
            })
            .collect(),
    })
}
