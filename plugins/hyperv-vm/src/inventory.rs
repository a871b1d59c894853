//! The per-node inventory: one PowerShell script, its JSON parsed here.

use rehydra_plugin_sdk::prelude::*;
use serde::Deserialize;

/// The inventory script: one JSON array of VMs with what protection needs. `@(...)` and
/// `-AsArray` are avoided (Windows PowerShell 5.1 lacks the latter), so a node with one VM
/// yields a single object: the parser takes both. The owner node comes from the
/// cluster (`Get-ClusterGroup`, the VM's cluster role); a VM outside the cluster has none.
/// Each disk's virtual and file size come from `Get-VHD` (none for a pass-through disk).
pub const INVENTORY: &str = r#"$ErrorActionPreference = 'Stop'
Get-VM | ForEach-Object {
  $vm = $_
  $sec = Get-VMSecurity -VM $vm -ErrorAction SilentlyContinue
  $owner = $null
  if ($vm.IsClustered) { try { $owner = (Get-ClusterGroup -Name $vm.Name -ErrorAction Stop).OwnerNode.Name } catch { } }
  [pscustomobject]@{
    Name = $vm.Name; Id = $vm.Id.ToString(); State = $vm.State.ToString(); Generation = $vm.Generation
    ProcessorCount = $vm.ProcessorCount; MemoryStartup = $vm.MemoryStartup; ComputerName = $vm.ComputerName
    OwnerNode = $owner; IsClustered = $vm.IsClustered; Path = $vm.Path
    HardDrives = @(Get-VMHardDiskDrive -VM $vm | ForEach-Object {
      $vhd = if ($_.Path) { Get-VHD -Path $_.Path -ErrorAction SilentlyContinue }
      [pscustomobject]@{ Path = $_.Path; ControllerType = [int]$_.ControllerType; ControllerNumber = $_.ControllerNumber
        ControllerLocation = $_.ControllerLocation; Size = $vhd.Size; FileSize = $vhd.FileSize } })
    NetworkAdapters = @(Get-VMNetworkAdapter -VM $vm | Select-Object Name, MacAddress, SwitchName, @{n='VlanId';e={$_.VlanSetting.AccessVlanId}})
    Checkpoints = @(Get-VMSnapshot -VM $vm).Count
    TpmEnabled = [bool]$sec.TpmEnabled
  }
} | ConvertTo-Json -Depth 4"#;

/// A VM as the inventory script describes it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Vm {
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub generation: u8,
    #[serde(default)]
    pub processor_count: u32,
    #[serde(default)]
    pub memory_startup: u64,
    #[serde(default)]
    pub computer_name: String,
    #[serde(default)]
    pub owner_node: Option<String>,
    #[serde(default)]
    pub is_clustered: bool,
    #[serde(default)]
    pub hard_drives: Vec<Drive>,
    #[serde(default)]
    pub network_adapters: Vec<Nic>,
    #[serde(default)]
    pub checkpoints: u32,
    #[serde(default)]
    pub tpm_enabled: bool,
}

/// A virtual hard disk drive (`Get-VMHardDiskDrive`).
#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Drive {
    pub path: String,
    #[serde(default)]
    pub controller_type: serde_json::Value,
    #[serde(default)]
    pub controller_number: u32,
    #[serde(default)]
    pub controller_location: u32,
    /// Virtual size in bytes (`Get-VHD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Bytes the file takes (`Get-VHD`): for a differencing disk, only its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

impl Drive {
    /// `IDE` or `SCSI`: PowerShell serialises the enum as 0/1 inside `Select-Object`, or
    /// as its name elsewhere.
    pub fn controller(&self) -> &'static str {
        match &self.controller_type {
            serde_json::Value::Number(n) if n.as_u64() == Some(0) => "IDE",
            serde_json::Value::String(s) if s.eq_ignore_ascii_case("ide") => "IDE",
            _ => "SCSI",
        }
    }
}

/// A network adapter (`Get-VMNetworkAdapter`).
#[derive(Deserialize, serde::Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub struct Nic {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mac_address: String,
    #[serde(default)]
    pub switch_name: Option<String>,
    #[serde(default)]
    pub vlan_id: Option<u32>,
}

/// Parse ConvertTo-Json output: an array, a single object, or nothing (no VMs).
pub fn parse_inventory(node: &str, out: &[u8]) -> Result<Vec<Vm>> {
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
