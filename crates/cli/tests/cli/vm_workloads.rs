//! End to end through the `rehydra` binary: the VM workload plugins (`hyperv-vm`,
//! `tvm-keys`, `cluster-files`) against stand-in cluster nodes (`support/fake_node.py` as
//! `pwsh`: Hyper-V and MOC cmdlets answering in their JSON shapes, with state) and an ARM
//! replay server that checks every PUT against the official examples. Disks are real
//! VHDX files made by qemu-img; restored disks are compared with qemu-img.
//!
//! Discover, back up two VMs (an Arc VM and a Trusted launch VM), restore the Arc VM to
//! another cluster's path, rehydrate it as an Arc VM (refused while the Connected Machine
//! agent is in the guest; resumed after an injected ARM failure), restore the TVM and
//! import its key (the import precedes the start; a failed import blocks the start).

mod cluster_files;
mod incremental;
mod rehydrate;
mod tvm;

use std::path::Path;
use std::process::Command;

use crate::support::{self, Arm, Cli, Node, json_out};
use serde_json::{Value, json};

const SUB: &str = "fd3c3665-1729-4b7b-9a38-238e83b0f98b";
const ARC_ID: &str = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";
const TVM_ID: &str = "7c6b5a49-3827-4165-9e0d-1f2a3b4c5d6e";

fn vm(name: &str, id: &str, tpm: bool, mac: &str) -> Value {
    let path = format!("C:\\ClusterStorage\\Volume1\\{name}");
    json!({
        "Name": name, "Id": id.to_ascii_uppercase(), "State": "Running", "Generation": 2,
        "ProcessorCount": 2, "MemoryStartup": 4294967296u64, "ComputerName": "HV01", "OwnerNode": "HV01",
        "IsClustered": true, "Path": path, "ConfigurationLocation": path,
        "HardDrives": [{ "Path": format!("{path}\\Virtual Hard Disks\\{name}.vhdx"), "ControllerType": 1, "ControllerNumber": 0, "ControllerLocation": 0 }],
        "NetworkAdapters": [{ "Name": "Network Adapter", "MacAddress": mac, "SwitchName": "ConvergedSwitch(compute)", "VlanId": 0 }],
        "Checkpoints": 0, "TpmEnabled": tpm
    })
}

fn qemu(args: &[&str], file: &Path, tail: &[&str]) {
    let o = Command::new(args[0])
        .args(&args[1..])
        .arg(file)
        .args(tail)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn restore_point_id(v: &Value) -> String {
    let s = v.get("restore_point").unwrap_or(v);
    s["id"].as_str().unwrap().to_string()
}

fn err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
#[allow(clippy::too_many_lines)]
fn vm_workloads_end_to_end() {
    let cli = Cli::new(&["hyperv-vm", "tvm-keys"]);
    cli.init_repo();
    let d = cli.dir.path().to_path_buf();
    let csv_a = d.join("csvA");
    let csv_b = d.join("csvB");
    let journal = d.join("journal");
    for p in [&csv_b, &journal] {
        std::fs::create_dir_all(p).unwrap();
    }
    // cluster A: the two VMs' disks (real VHDX) and the TVM's guest state file
    let mut sources = Vec::new();
    for (name, pattern) in [("arc01", "0x61"), ("tvm01", "0x74")] {
        let dir = csv_a.join(format!("Volume1/{name}/Virtual Hard Disks"));
        std::fs::create_dir_all(&dir).unwrap();
        let disk = dir.join(format!("{name}.vhdx"));
        qemu(&["qemu-img", "create", "-q", "-f", "vhdx"], &disk, &["24M"]);
        let w = format!("write -q -P {pattern} 2M 3M");
        qemu(&["qemu-io", "-f", "vhdx", "-c", &w], &disk, &[]);
        sources.push(disk);
    }
    // the TVM runs on a checkpoint: its disk is a differencing AVHDX over the VHDX,
    // written by the disk-image layer (cross-checked with libvhdi in crates/disk/tests)
    let tvm_child_name = "tvm01_6B1F0E4B-7A3D-4D51-9E6B-0C1A2B3C4D5E.avhdx";
    let tvm_child = sources[1].with_file_name(tvm_child_name);
    let mut w = rehydra_disk::vhdx_write::VhdxWriter::differencing(
        std::fs::File::create(&tvm_child).unwrap(),
        &tvm_child,
        &sources[1],
        r".\tvm01.vhdx",
        1 << 20,
    )
    .unwrap();
    let mut tvm_expect = vec![0u8; 24 << 20];
    tvm_expect[2 << 20..5 << 20].fill(0x74);
    for (off, len, byte) in [
        (4u64 << 20, 65536usize, 0x75u8),
        (8 << 20, 4096, 0x76),
        (3 << 20, 512, 0x77),
    ] {
        let data = vec![byte; len];
        w.write_at(off, &data).unwrap();
        tvm_expect[off as usize..off as usize + len].copy_from_slice(&data);
    }
    w.finish().unwrap().sync_all().unwrap();
    let vmgs_dir = csv_a.join("Volume1/tvm01/Virtual Machines");
    std::fs::create_dir_all(&vmgs_dir).unwrap();
    let vmgs: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(
        vmgs_dir.join(format!("{}.vmgs", TVM_ID.to_ascii_uppercase())),
        &vmgs,
    )
    .unwrap();
    // a running VM has its runtime state file too
    std::fs::write(
        vmgs_dir.join(format!("{}.VMRS", TVM_ID.to_ascii_uppercase())),
        vec![7u8; 65536],
    )
    .unwrap();

    let mut tvm_vm = vm("tvm01", TVM_ID, true, "00155D0A0C02");
    tvm_vm["HardDrives"][0]["Path"] = json!(format!(
        "C:\\ClusterStorage\\Volume1\\tvm01\\Virtual Hard Disks\\{tvm_child_name}"
    ));
    let node_a = Node::new(
        &d.join("clusterA"),
        &json!({
            "vms": [vm("arc01", ARC_ID, false, "00155D0A0C01"), tvm_vm],
            "switches": ["ConvergedSwitch(compute)"],
            "keys": [TVM_ID],
        }),
    );
    let node_b = Node::new(
        &d.join("clusterB"),
        &json!({
            "vms": [], "switches": ["ConvergedSwitch(compute)"], "keys": [],
        }),
    );

    // ARM: arc01 is an Arc VM (the official GET example, served at its machine), its NIC
    // is the official NIC example on logical network test-lnet
    let arm = Arm::start();
    let arc_vmi = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-a/providers/Microsoft.HybridCompute/machines/arc01/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default"
    );
    let mut v =
        support::fixture("arm/VirtualMachineInstances_Get.json")["responses"]["200"]["body"]
            .clone();
    v["id"] = json!(arc_vmi);
    v["properties"]["provisioningState"] = json!("Succeeded");
    arm.put_resource(&arc_vmi, v);
    let nic =
        support::fixture("arm/NetworkInterfaces__CreateOrUpdate_CreateFromLocal.json")["responses"]
            ["200"]["body"]
            .clone();
    let nic_id = nic["id"].as_str().unwrap().to_string();
    arm.put_resource(&nic_id, nic);

    let map_a = format!("path-map=C:\\ClusterStorage\\={}/", csv_a.display());
    let map_b = format!("path-map=C:\\ClusterStorage\\={}/", csv_b.display());
    let arm_set = format!("arm={}", arm.base);
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "hyperv-vm",
            "engine",
            "command:powershell@local",
            &format!("http:{}", arm.base.trim_start_matches("http://")),
            &format!("files-write:{}", csv_a.display()),
            &format!("files-write:{}", csv_b.display()),
            &format!("files-write:{}", journal.display()),
        ],
    );
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "tvm-keys",
            "engine",
            "command:powershell@local",
            &format!("files:{}", csv_a.display()),
            &format!("files-write:{}", csv_b.display()),
        ],
    );

    // ---- discover
    let assets = json_out(&cli.run(
        Some(&node_a.bin),
        &[
            "--json",
            "plugins",
            "run",
            "hyperv-vm",
            "discover",
            "--set",
            "cluster=hci-a",
            "--set",
            "nodes=local",
            "--set",
            &format!("subscription={SUB}"),
            "--set",
            "resource-group=rg-a",
            "--set",
            &arm_set,
        ],
    ));
    let flags = |name: &str| -> Vec<String> {
        let a = assets
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap();
        a["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        flags("arc01").contains(&"arc-managed".to_string()),
        "{assets}"
    );
    // the tree: subscription / cluster / node / VM
    let by_id = |id: &str| {
        assets
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {assets}"))
            .clone()
    };
    assert_eq!(
        by_id(&format!("subscription/{SUB}"))["kind"],
        "subscription"
    );
    assert_eq!(
        by_id(&format!("subscription/{SUB}"))["parent"],
        serde_json::Value::Null
    );
    assert_eq!(
        by_id("cluster/hci-a")["parent"],
        format!("subscription/{SUB}")
    );
    assert_eq!(by_id("node/local")["parent"], "cluster/hci-a");
    assert!(
        flags("tvm01").contains(&"trusted-launch".to_string()),
        "{assets}"
    );
    assert!(!flags("tvm01").contains(&"arc-managed".to_string()));
    let tvms = json_out(&cli.run(
        Some(&node_a.bin),
        &["--json", "plugins", "run", "tvm-keys", "discover"],
    ));
    assert_eq!(tvms.as_array().unwrap().len(), 1, "{tvms}");
    assert_eq!(tvms[0]["id"], TVM_ID);

    // ---- back up both VMs, and the TVM's key
    let backup = |id: &str| {
        restore_point_id(&json_out(&cli.run(
            Some(&node_a.bin),
            &[
                "--json",
                "plugins",
                "run",
                "hyperv-vm",
                "backup",
                "--asset",
                id,
                "--set",
                "node=local",
                "--set",
                &map_a,
                "--set",
                &arm_set,
                "--set",
                &format!("subscription={SUB}"),
                "--set",
                "resource-group=rg-a",
            ],
        )))
    };
    let arc_snap = backup(ARC_ID);
    let tvm_snap = backup(TVM_ID);
    let key_backup = |extra: &[&str]| {
        let mut a = vec![
            "--json",
            "plugins",
            "run",
            "tvm-keys",
            "backup",
            "--asset",
            TVM_ID,
            "--set",
            "key-vault=vmkv",
            "--set",
            "group=hci",
            "--set",
            &map_a,
        ];
        a.extend(extra);
        cli.run(Some(&node_a.bin), &a)
    };
    // an export that is not wrapped is refused: no key in the clear ever reaches the repository
    node_a.edit(|s| s["export_clear"] = json!(true));
    let o = key_backup(&[]);
    assert!(!o.status.success());
    assert!(err(&o).contains("not wrapped"), "{}", err(&o));
    node_a.edit(|s| s["export_clear"] = json!(false));
    let key_snap = restore_point_id(&json_out(&key_backup(&[])));
    let log_a = node_a.log();
    assert!(
        log_a
            .iter()
            .any(|l| l == "new-wrapping-key rehydra-backup-wrap"),
        "{log_a:?}"
    );
    let verify = json_out(&cli.run(
        None,
        &["--json", "plugins", "run", "tvm-keys", "verify", &key_snap],
    ));
    assert_eq!(verify["ok"], true, "{verify}");

    // ---- the inventory joins discovery with the restore points: risk badges
    let inv = json_out(&cli.run(
        Some(&node_a.bin),
        &[
            "--json",
            "inventory",
            "--discover",
            "hyperv-vm",
            "--set",
            "nodes=local",
            "--set",
            &format!("subscription={SUB}"),
            "--set",
            "resource-group=rg-a",
            "--set",
            &arm_set,
        ],
    ));
    let risks = |id: &str| -> Vec<String> {
        let a = inv
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("{id} not in {inv}"));
        a["risks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        risks(ARC_ID).contains(&"needs-rehydration".to_string()),
        "{inv}"
    );
    assert!(
        !risks(TVM_ID).contains(&"tvm-key-missing".to_string()),
        "the TVM's key is backed up: {inv}"
    );
    assert!(
        risks(TVM_ID).contains(&"never-test-restored".to_string()),
        "{inv}"
    );

    // ---- restore the Arc VM to another cluster's path, as a Hyper-V VM
    let target = "C:\\ClusterStorage\\Volume9\\restored";
    let restore = |node: &Node, extra: &[&str]| {
        let mut a = vec![
            "--json",
            "plugins",
            "run",
            "hyperv-vm",
            "restore",
            &arc_snap,
            "--target",
            target,
            "--set",
            "node=local",
            "--set",
            &map_b,
        ];
        a.extend(extra);
        cli.run(Some(&node.bin), &a)
    };
    let plan = json_out(&restore(&node_b, &["--plan-only"]));
    let script = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "create-vm")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(script.contains("New-VM -Name 'arc01' -Generation 2 -MemoryStartupBytes 4294967296 -Path 'C:\\ClusterStorage\\Volume9\\restored' -NoVHD"), "{script}");
    assert!(
        script.contains("-StaticMacAddress '00155D0A0C01'")
            && script.contains("-SwitchName 'ConvergedSwitch(compute)'"),
        "{script}"
    );
    assert!(
        script.contains(
            "-Path 'C:\\ClusterStorage\\Volume9\\restored\\arc01\\Virtual Hard Disks\\arc01.vhdx'"
        ),
        "{script}"
    );
    assert!(
        plan["report"].is_null() && node_b.state()["vms"].as_array().unwrap().is_empty(),
        "plan only touches nothing"
    );
    let out = json_out(&restore(&node_b, &[]));
    assert!(out["report"]["bytes"].as_u64().unwrap() > 0);
    let restored_disk = csv_b.join("Volume9/restored/arc01/Virtual Hard Disks/arc01.vhdx");
    let o = Command::new("qemu-img")
        .args(["compare", "-q", "-f", "vhdx", "-F", "vhdx"])
        .arg(&restored_disk)
        .arg(&sources[0])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "restored VHDX differs: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new("qemu-img")
        .args(["check", "-q", "-f", "vhdx"])
        .arg(&restored_disk)
        .output()
        .unwrap();
    assert!(o.status.success());
    let st = node_b.state();
    assert_eq!(st["vms"][0]["Name"], "arc01");
    assert_eq!(
        st["vms"][0]["HardDrives"][0]["Path"],
        "C:\\ClusterStorage\\Volume9\\restored\\arc01\\Virtual Hard Disks\\arc01.vhdx"
    );
    // the same restore again: the VM exists now, and the disk file too → refused, nothing touched
    node_b.clear_log();
    let o = restore(&node_b, &[]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("already exists on local") && err(&o).contains("replace-vm=true"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("overwrite=true"), "{}", err(&o));
    assert!(
        !node_b
            .log()
            .iter()
            .any(|l| l.starts_with("new-vm") || l.starts_with("remove-vm")),
        "{:?}",
        node_b.log()
    );

    // ---- restore to the original location on cluster A: the VM is still there, so only
    // with consent (replace-vm, overwrite); new MAC addresses on request
    node_a.clear_log();
    let original = |extra: &[&str]| {
        let mut a = vec![
            "--json",
            "plugins",
            "run",
            "hyperv-vm",
            "restore",
            &arc_snap,
            "--target",
            "original",
            "--set",
            "node=local",
            "--set",
            &map_a,
        ];
        a.extend(extra);
        cli.run(Some(&node_a.bin), &a)
    };
    let o = original(&[]);
    assert!(
        !o.status.success() && err(&o).contains("replace-vm=true"),
        "{}",
        err(&o)
    );
    assert!(
        node_a.log().iter().all(|l| l.starts_with("probe")),
        "{:?}",
        node_a.log()
    );
    let out = json_out(&original(&[
        "--set",
        "replace-vm=true",
        "--set",
        "overwrite=true",
        "--set",
        "mac=new",
    ]));
    let script = out["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "create-vm")
        .unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !script.contains("StaticMacAddress")
            && script.contains("-Path 'C:\\ClusterStorage\\Volume1'"),
        "{script}"
    );
    assert!(
        script.contains("'C:\\ClusterStorage\\Volume1\\arc01\\Virtual Hard Disks\\arc01.vhdx'"),
        "{script}"
    );
    let log = node_a.log();
    let pos = |p: &str| {
        log.iter()
            .position(|l| l.starts_with(p))
            .unwrap_or_else(|| panic!("{p} not in {log:?}"))
    };
    assert!(pos("remove-vm arc01") < pos("new-vm arc01"), "{log:?}");
    assert!(
        out["plan"]["warnings"]
            .to_string()
            .contains("new MAC addresses")
    );
    let o = Command::new("qemu-img")
        .args(["compare", "-q", "-f", "vhdx", "-F", "vhdx"])
        .arg(&sources[0])
        .arg(&restored_disk)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the disk restored in place equals the backup"
    );
    // verify and assess
    let v = json_out(&cli.run(
        None,
        &["--json", "plugins", "run", "hyperv-vm", "verify", &tvm_snap],
    ));
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["findings"].to_string().contains("tvm-keys restore point"),
        "{v}"
    );
    let findings = json_out(&cli.run(
        Some(&node_a.bin),
        &[
            "--json",
            "plugins",
            "run",
            "hyperv-vm",
            "assess",
            "--set",
            "nodes=local",
            "--set",
            &format!("subscription={SUB}"),
            "--set",
            "resource-group=rg-a",
            "--set",
            &arm_set,
        ],
    ));
    let rules: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"hyperv.tvm-key") && rules.contains(&"hyperv.arc-rehydration"),
        "{findings}"
    );

    rehydrate::as_arc_vm_on_cluster_b(&cli, &journal, &node_b, &arm, &arc_vmi, &arm_set, &arc_snap);
    tvm::restored_off_with_its_key_imported(
        &cli,
        &d,
        &csv_b,
        &node_b,
        &map_b,
        &tvm_snap,
        &key_snap,
        target,
        (&tvm_expect, &vmgs),
    );
}
