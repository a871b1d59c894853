//! Restore as a Hyper-V VM, to the original location or to another cluster / path:
//! disks first (dynamic VHDX), then the VM, created by a generated PowerShell script that
//! the plan shows before anything runs. An existing VM is only replaced with consent.

use rehydra_plugin_sdk::windows::{join, map_path, powershell, ps_quote};
use rehydra_plugin_sdk::{engine, files, prelude::*};
use serde::Deserialize;
use serde_json::Value;

use crate::inventory::{Drive, Nic};

/// `vm.json`, as the backup wrote it.
#[derive(Deserialize)]
pub struct Saved {
    pub vm: Config,
    #[serde(default)]
    pub node: String,
    #[serde(default)]
    pub disks: Vec<Drive>,
    #[serde(default)]
    pub arc: Value,
}

/// The VM's configuration at backup time.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    pub name: String,
    pub id: String,
    #[serde(default = "two")]
    pub generation: u8,
    #[serde(default)]
    pub processor_count: u32,
    #[serde(default)]
    pub memory_startup: u64,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub tpm_enabled: bool,
    #[serde(default)]
    pub secure_boot: bool,
    #[serde(default)]
    pub network_adapters: Vec<Nic>,
}

fn two() -> u8 {
    2
}

impl Saved {
    /// Read `vm.json` from the restore point being restored.
    pub fn load() -> Result<Self> {
        let raw = engine::read_document("vm.json")?;
        serde_json::from_slice(&raw).map_err(|e| {
            Error::new(
                ErrorCode::Failed,
                format!("vm.json in the restore point is not what this plugin wrote ({e})"),
            )
        })
    }

    /// A Trusted launch VM: its guest state is sealed by a key kept outside the VM.
    pub fn trusted_launch(&self) -> bool {
        let sec = self.arc.pointer("/resource/properties/securityProfile");
        self.vm.tpm_enabled
            || sec
                .and_then(|s| s.get("securityType"))
                .and_then(Value::as_str)
                == Some("TrustedLaunch")
            || sec
                .and_then(|s| s.get("enableTPM"))
                .and_then(Value::as_bool)
                == Some(true)
    }
}

/// One disk of the restored VM.
pub struct Placed {
    /// The restore point's item (`disk-0` …).
    pub item: String,
    /// Its path on the node.
    pub win: String,
    /// The same file as this machine writes it (through `path-map`).
    pub local: String,
    pub drive: Drive,
}

/// Where everything goes.
pub struct Layout {
    pub node: String,
    pub name: String,
    /// `New-VM -Path` (the VM's folder is `<folder>\<name>`).
    pub folder: String,
    pub disks: Vec<Placed>,
    pub original: bool,
}

/// `...\web01_2C1F…5E.avhdx` → `web01.vhdx`: the restored disk is the merged chain.
fn disk_file_name(path: &str) -> String {
    let file = path.rsplit(['\\', '/']).next().unwrap_or(path);
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let stem = match stem.rsplit_once('_') {
        Some((base, guid))
            if guid.len() == 36 && guid.chars().filter(|c| *c == '-').count() == 4 =>
        {
            base
        }
        _ => stem,
    };
    format!("{stem}.vhdx")
}

fn parent(path: &str) -> &str {
    path.trim_end_matches('\\')
        .rsplit_once('\\')
        .map_or(path, |(p, _)| p)
}

impl Layout {
    /// Target `""` or `original`: the VM's own folders; otherwise a folder on the target
    /// node, the VM going to `<target>\<name>` and its disks to `Virtual Hard Disks` in it.
    pub fn new(req: &RestoreRequest, saved: &Saved) -> Result<Self> {
        let opt = |n| setting(&req.options, n);
        let node = opt("node").map(String::from).unwrap_or_else(|| {
            if saved.node.is_empty() {
                "local".into()
            } else {
                saved.node.clone()
            }
        });
        let name = opt("vm-name").unwrap_or(&saved.vm.name).to_string();
        let target = req.target.trim();
        let original = target.is_empty() || target.eq_ignore_ascii_case("original");
        let folder = if original {
            parent(&saved.vm.path).to_string()
        } else {
            target.to_string()
        };
        let map = opt("path-map").unwrap_or("");
        let mut disks: Vec<Placed> = Vec::new();
        for (i, d) in saved.disks.iter().enumerate() {
            let dir = if original {
                parent(&d.path).to_string()
            } else {
                join(&join(&folder, &name), "Virtual Hard Disks")
            };
            let mut file = disk_file_name(&d.path);
            if disks
                .iter()
                .any(|p| p.win.eq_ignore_ascii_case(&join(&dir, &file)))
            {
                file = format!("{}-{i}.vhdx", file.trim_end_matches(".vhdx"));
            }
            let win = join(&dir, &file);
            disks.push(Placed {
                item: format!("disk-{i}"),
                local: map_path(map, &win)?,
                win,
                drive: d.clone(),
            });
        }
        Ok(Self {
            node,
            name,
            folder,
            disks,
            original,
        })
    }
}

/// What the target node already has.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Target {
    #[serde(default)]
    existing: Vec<Existing>,
    #[serde(default)]
    switches: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Existing {
    id: String,
    #[serde(default)]
    state: String,
}

fn probe(node: &str, name: &str) -> Result<Target> {
    let script = format!(
        "$ErrorActionPreference = 'Stop'\n[pscustomobject]@{{ Existing = @(Get-VM -Name {} -ErrorAction SilentlyContinue | ForEach-Object {{ [pscustomobject]@{{ Id = $_.Id.ToString(); State = $_.State.ToString() }} }}); Switches = @(Get-VMSwitch | ForEach-Object {{ $_.Name }}) }} | ConvertTo-Json -Depth 3",
        ps_quote(name)
    );
    let out = powershell(node, &script, "reading the target's VMs and switches")?;
    serde_json::from_slice(&out).map_err(|e| {
        Error::new(
            ErrorCode::Failed,
            format!("node {node}: the VM/switch query answered unexpected JSON ({e})"),
        )
    })
}

/// `old=new;...` → the switch a NIC connects to on the target.
fn switch_for(map: &str, old: Option<&str>) -> Option<String> {
    let old = old?;
    for pair in map.split(';') {
        if let Some((from, to)) = pair.split_once('=')
            && from.trim().eq_ignore_ascii_case(old)
        {
            return Some(to.trim().to_string());
        }
    }
    Some(old.to_string())
}

/// The NICs as they will be created: name, switch (if it exists), MAC (if kept), VLAN.
fn nics(
    req: &RestoreRequest,
    saved: &Saved,
    t: &Target,
    warnings: &mut Vec<String>,
) -> Vec<(Nic, bool)> {
    let map = setting(&req.options, "switch-map").unwrap_or("");
    saved
        .vm
        .network_adapters
        .iter()
        .map(|n| {
            let mut n = n.clone();
            n.switch_name = switch_for(map, n.switch_name.as_deref());
            let present = n
                .switch_name
                .as_deref()
                .is_some_and(|s| t.switches.iter().any(|x| x.eq_ignore_ascii_case(s)));
            if let (Some(s), false) = (&n.switch_name, present) {
                warnings.push(format!(
                    "switch `{s}` does not exist on the target node: NIC `{}` is created unconnected (map it with switch-map=`{s}=<switch>`)",
                    n.name
                ));
            }
            (n, present)
        })
        .collect()
}

/// The generated PowerShell that creates the VM (shown in the plan, run as shown).
fn create_script(saved: &Saved, l: &Layout, nics: &[(Nic, bool)], keep_mac: bool) -> String {
    let vm = &saved.vm;
    let mut s = vec![
        "$ErrorActionPreference = 'Stop'".to_string(),
        format!(
            "$vm = New-VM -Name {} -Generation {} -MemoryStartupBytes {} -Path {} -NoVHD",
            ps_quote(&l.name),
            vm.generation,
            vm.memory_startup.max(32 << 20),
            ps_quote(&l.folder)
        ),
        format!(
            "Set-VMProcessor -VM $vm -Count {}",
            vm.processor_count.max(1)
        ),
        "Get-VMNetworkAdapter -VM $vm | Remove-VMNetworkAdapter".into(),
    ];
    for d in &l.disks {
        let ctl = d.drive.controller();
        if ctl == "SCSI" && d.drive.controller_number > 0 {
            s.push(format!(
                "while (@(Get-VMScsiController -VM $vm).Count -le {}) {{ Add-VMScsiController -VM $vm }}",
                d.drive.controller_number
            ));
        }
        s.push(format!(
            "Add-VMHardDiskDrive -VM $vm -ControllerType {ctl} -ControllerNumber {} -ControllerLocation {} -Path {}",
            d.drive.controller_number,
            d.drive.controller_location,
            ps_quote(&d.win)
        ));
    }
    for (n, present) in nics {
        let mut line = format!("Add-VMNetworkAdapter -VM $vm -Name {}", ps_quote(&n.name));
        if let (Some(sw), true) = (&n.switch_name, present) {
            line += &format!(" -SwitchName {}", ps_quote(sw));
        }
        if keep_mac && !n.mac_address.is_empty() {
            line += &format!(" -StaticMacAddress {}", ps_quote(&n.mac_address));
        }
        s.push(line);
        if let Some(v) = n.vlan_id.filter(|v| *v != 0) {
            s.push(format!(
                "Get-VMNetworkAdapter -VM $vm -Name {} | Set-VMNetworkAdapterVlan -Access -VlanId {v}",
                ps_quote(&n.name)
            ));
        }
    }
    if vm.generation == 2 {
        s.push(format!(
            "Set-VMFirmware -VM $vm -EnableSecureBoot {} -FirstBootDevice (Get-VMHardDiskDrive -VM $vm | Select-Object -First 1)",
            if vm.secure_boot { "On" } else { "Off" }
        ));
    }
    if vm.tpm_enabled {
        s.push("Set-VMKeyProtector -VM $vm -NewLocalKeyProtector".into());
        s.push("Enable-VMTPM -VM $vm".into());
    }
    s.push("[pscustomobject]@{ Id = $vm.Id.ToString() } | ConvertTo-Json".into());
    s.join("\n")
}

/// Everything a restore will do, computed and checked; touches nothing.
pub struct Planned {
    pub plan: RestorePlan,
    layout: Layout,
    script: String,
    replace: bool,
    start: bool,
    saved_id: String,
}

/// Compute the plan (reads the restore point's `vm.json` and asks the target node what
/// it has; writes nothing).
pub fn plan(req: &RestoreRequest) -> Result<Planned> {
    let saved = Saved::load()?;
    let l = Layout::new(req, &saved)?;
    let t = probe(&l.node, &l.name)?;
    let mut warnings = Vec::new();
    let mut blockers = Vec::new();
    let replace = flag(&req.options, "replace-vm");
    let overwrite = flag(&req.options, "overwrite");
    let start = flag(&req.options, "start");
    let keep_mac = match setting(&req.options, "mac").unwrap_or("keep") {
        "keep" => true,
        "new" => false,
        other => {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("mac={other}: choose mac=keep (the original addresses) or mac=new"),
            ));
        }
    };
    let nics = nics(req, &saved, &t, &mut warnings);
    let mut steps = vec![Step {
        id: "check".into(),
        title: format!("Check node {}", l.node),
        detail: format!(
            "VM name `{}`: {}; switches: {}",
            l.name,
            if t.existing.is_empty() {
                "free".to_string()
            } else {
                format!("taken by {} VM(s)", t.existing.len())
            },
            t.switches.join(", ")
        ),
        depends_on: vec![],
    }];
    let mut last = "check".to_string();
    if !t.existing.is_empty() {
        let ids: Vec<String> = t
            .existing
            .iter()
            .map(|e| format!("{} ({})", e.id, e.state))
            .collect();
        if replace {
            steps.push(Step {
                id: "remove-vm".into(),
                title: format!("Remove the existing VM {}", l.name),
                detail: format!(
                    "Stop-VM -TurnOff and Remove-VM on {}: {} (its disk files stay unless a restored disk replaces them)",
                    l.node,
                    ids.join(", ")
                ),
                depends_on: vec![last.clone()],
            });
            last = "remove-vm".into();
        } else {
            blockers.push(format!(
                "a VM named `{}` already exists on {} ({}); restore under another name with vm-name=…, or replace it with replace-vm=true",
                l.name,
                l.node,
                ids.join(", ")
            ));
        }
    }
    let items = engine::items()?;
    let mut disk_steps = Vec::new();
    for d in &l.disks {
        let size = items
            .iter()
            .find(|i| i.name == d.item)
            .map_or(0, |i| i.size);
        if files::stat(&d.local).is_ok() && !overwrite {
            blockers.push(format!(
                "{} already exists; restore to another target folder, or replace the file with overwrite=true",
                d.win
            ));
        }
        let id = format!("restore:{}", d.item);
        steps.push(Step {
            id: id.clone(),
            title: format!("Restore {} as a dynamic VHDX", d.item),
            detail: format!("{size} bytes to {} (written here as {})", d.win, d.local),
            depends_on: vec![last.clone()],
        });
        disk_steps.push(id);
    }
    let script = create_script(&saved, &l, &nics, keep_mac);
    steps.push(Step {
        id: "create-vm".into(),
        title: format!("Create VM {} on {}", l.name, l.node),
        detail: script.clone(),
        depends_on: if disk_steps.is_empty() {
            vec![last]
        } else {
            disk_steps
        },
    });
    let tvm = saved.trusted_launch();
    if tvm {
        warnings.push(format!(
            "{} is a Trusted launch VM: it is created switched off. Import its guest state protection key first (rehydra plugins run tvm-keys restore <its tvm-keys restore point> --set vm-id=<the new VM's id> --set start=true), which starts it only after the import succeeded",
            l.name
        ));
        if start {
            blockers.push(
                "start=true is refused for a Trusted launch VM: started before its key is imported, it generates a new key and its guest state (vTPM, BitLocker) is lost; let the tvm-keys restore start it"
                    .into(),
            );
        }
    } else if start {
        steps.push(Step {
            id: "start-vm".into(),
            title: format!("Start VM {}", l.name),
            detail: "Start-VM".into(),
            depends_on: vec!["create-vm".into()],
        });
    }
    if keep_mac && !l.original && !nics.is_empty() {
        warnings.push(
            "the original MAC addresses are kept: if the original VM still runs on the same network, choose mac=new"
                .into(),
        );
    }
    if !keep_mac {
        warnings.push(
            "new MAC addresses: software licences bound to a MAC address, DHCP reservations and NIC names in the guest may need attention"
                .into(),
        );
    }
    if !saved.arc.is_null() && !l.original {
        warnings.push(format!(
            "{} was an Arc VM: restored here it is a plain Hyper-V VM; make it an Arc VM again with mode=rehydrate",
            saved.vm.name
        ));
    }
    Ok(Planned {
        plan: RestorePlan {
            steps,
            warnings,
            blockers,
        },
        layout: l,
        script,
        replace,
        start: start && !tvm,
        saved_id: saved.vm.id.clone(),
    })
}

/// Run a plan that has no blockers.
pub fn execute(req: &RestoreRequest, p: Planned) -> Result<RestoreReport> {
    p.plan.go_ahead()?;
    let l = &p.layout;
    if p.replace {
        powershell(
            &l.node,
            &format!(
                "$ErrorActionPreference = 'Stop'\n$old = Get-VM -Name {}\n$old | Stop-VM -TurnOff -Force\n$old | Remove-VM -Force",
                ps_quote(&l.name)
            ),
            &format!("removing the existing VM {}", l.name),
        )?;
    }
    let overwrite = flag(&req.options, "overwrite");
    let mut bytes = 0;
    let total = l.disks.len() as u64 + 1;
    for (i, d) in l.disks.iter().enumerate() {
        rehydra_plugin_sdk::host::progress(
            i as u64,
            total,
            &format!("restoring {} to {}", d.item, d.win),
        );
        bytes += engine::restore_item(&d.item, &d.local, overwrite)?;
    }
    rehydra_plugin_sdk::host::progress(total - 1, total, &format!("creating VM {}", l.name));
    let out = powershell(&l.node, &p.script, &format!("creating VM {}", l.name))?;
    let id = serde_json::from_slice::<Value>(&out)
        .ok()
        .and_then(|v| v.get("Id").and_then(Value::as_str).map(String::from))
        .unwrap_or_default();
    rehydra_plugin_sdk::host::info(&format!("created VM {} (id {id}) on {}", l.name, l.node));
    if p.start {
        powershell(
            &l.node,
            &format!(
                "$ErrorActionPreference = 'Stop'\nStart-VM -VM (Get-VM -Id {})",
                ps_quote(&id)
            ),
            &format!("starting VM {}", l.name),
        )?;
    }
    rehydra_plugin_sdk::host::progress(total, total, "done");
    let mut warnings = p.plan.warnings;
    let from = &p.saved_id;
    warnings.insert(
        0,
        format!(
            "created VM {} with id {id} on node {} (restored from VM {from})",
            l.name, l.node
        ),
    );
    Ok(RestoreReport { bytes, warnings })
}

#[cfg(test)]
mod tests {
    #[test]
    fn checkpoint_disks_are_named_after_their_base() {
        assert_eq!(
            super::disk_file_name(
                r"C:\CS\V1\web01\Virtual Hard Disks\web01_2C1F0E4B-7A3D-4D51-9E6B-0C1A2B3C4D5E.avhdx"
            ),
            "web01.vhdx"
        );
        assert_eq!(super::disk_file_name(r"D:\VMs\sql_01.vhd"), "sql_01.vhdx");
    }
}
