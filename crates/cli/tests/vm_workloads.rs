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

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::{Arm, Cli, Node};

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

fn json_out(o: &std::process::Output) -> Value {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    serde_json::from_slice(&o.stdout).unwrap()
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

    // ---- rehydrate it as an Arc VM on cluster B
    let cl_b = "/subscriptions/fd3c3665-1729-4b7b-9a38-238e83b0f98b/resourceGroups/rg-b/providers/Microsoft.ExtendedLocation/customLocations/cluster-b";
    let sc_b = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.AzureStackHCI/storageContainers/volume9"
    );
    let lnet_b = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.AzureStackHCI/logicalNetworks/lnet-b"
    );
    arm.put_resource(cl_b, json!({ "id": cl_b, "name": "cluster-b", "type": "Microsoft.ExtendedLocation/customLocations" }));
    arm.put_resource(&sc_b, json!({ "id": sc_b, "name": "volume9", "type": "Microsoft.AzureStackHCI/storageContainers", "properties": { "path": "C:\\ClusterStorage\\Volume9", "provisioningState": "Succeeded" } }));
    let mut lnet =
        support::fixture("arm/PutLogicalNetwork.json")["responses"]["201"]["body"].clone();
    lnet["id"] = json!(lnet_b);
    arm.put_resource(&lnet_b, lnet);
    let (sub_set, cl_set, sc_set, lnet_set) = (
        format!("subscription={SUB}"),
        format!("custom-location={cl_b}"),
        format!("storage-container={sc_b}"),
        format!("lnet-map=test-lnet={lnet_b}"),
    );
    let rehydrate = |extra: &[&str]| {
        let mut a = vec![
            "--json",
            "plugins",
            "run",
            "hyperv-vm",
            "restore",
            &arc_snap,
            "--target",
            journal.to_str().unwrap(),
            "--set",
            "mode=rehydrate",
            "--set",
            "node=local",
            "--set",
            &arm_set,
            "--set",
            &sub_set,
            "--set",
            "resource-group=rg-b",
            "--set",
            "location=westeurope",
            "--set",
            &cl_set,
            "--set",
            &sc_set,
            "--set",
            &lnet_set,
            "--set",
            "poll-seconds=0",
        ];
        a.extend(extra);
        cli.run(Some(&node_b.bin), &a)
    };
    let puts = || {
        arm.calls()
            .into_iter()
            .filter(|c| c.method == "PUT")
            .collect::<Vec<_>>()
    };
    // the Connected Machine agent is still in the guest: refused before any ARM write
    node_b.edit(|s| s["agent_in_guest"] = json!("E:\\Program Files\\AzureConnectedMachineAgent"));
    let o = rehydrate(&[]);
    assert_eq!(
        o.status.code(),
        Some(19),
        "a blocked plan has its own exit code"
    );
    assert!(
        err(&o).contains("Connected Machine agent is installed in the guest"),
        "{}",
        err(&o)
    );
    assert!(puts().is_empty());
    node_b.edit(|s| s["agent_in_guest"] = Value::Null);
    // the plan: prerequisites, machine, disk, NIC, VM instance; MAC warning
    let plan = json_out(&rehydrate(&["--plan-only"]));
    let ids: Vec<&str> = plan["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["prerequisites", "machine", "disk-0", "nic-0", "vmi"],
        "{plan}"
    );
    assert!(
        plan["plan"]["warnings"]
            .to_string()
            .contains("new MAC addresses"),
        "{plan}"
    );
    // ARM fails the NIC on every try the host makes (it retries a PUT five times): the
    // run stops there, the journal records it
    arm.fail_put
        .lock()
        .unwrap()
        .extend(std::iter::repeat_n("/networkInterfaces/".to_string(), 5));
    let o = rehydrate(&[]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("stopped at step nic-0")
            && err(&o).contains("run the same rehydration again"),
        "{}",
        err(&o)
    );
    let j: Value = serde_json::from_slice(
        &std::fs::read(journal.join("rehydrate-arc01.journal.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(j["runs"].as_array().unwrap().len(), 1);
    assert!(
        j["runs"][0]["calls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["status"] == 500)
    );
    // run again: what was made is recognised and skipped, the rest completes
    let out = json_out(&rehydrate(&["--set", "delete-original=true"]));
    assert!(out["report"].is_object());
    // the job history keeps each run's log: the ARM requests and answers, never the token
    let runs = json_out(&cli.run(None, &["--json", "catalog", "runs", "--limit", "5"]));
    let restores: Vec<&Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "restore")
        .collect();
    let log_of = |r: &Value| -> String { cli.ok(None, &["catalog", "log", &r["id"].to_string()]) };
    let (done, failed) = (log_of(restores[0]), log_of(restores[1]));
    assert_eq!(restores[0]["status"], "succeeded");
    assert!(
        done.contains("ARM PUT") && done.contains("virtualMachineInstances/default"),
        "{done}"
    );
    assert!(
        failed.contains("ARM 500") && failed.contains("error:"),
        "{failed}"
    );
    assert!(
        !done.contains("test-token") && !failed.contains("test-token"),
        "no secret in logs"
    );
    let puts = puts();
    let count = |frag: &str| {
        puts.iter()
            .filter(|c| c.path.contains(frag) && c.status < 300)
            .count()
    };
    assert_eq!(
        count("/machines/arc01"),
        2,
        "machine once, VM instance once: {puts:?}"
    ); // machine + vmi paths both contain it
    assert_eq!(count("/virtualHardDisks/arc01-disk-0"), 1);
    assert_eq!(count("/networkInterfaces/arc01-nic-0"), 1);
    assert!(
        puts.iter().all(|c| c.status != 400),
        "every PUT matched the official shapes: {puts:?}"
    );
    assert!(arm.calls().iter().all(|c| c.auth == "Bearer test-token"));
    let vmi = arm.get(&format!("/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.HybridCompute/machines/arc01/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default")).unwrap();
    assert_eq!(
        vmi["properties"]["storageProfile"]["osDisk"]["id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.AzureStackHCI/virtualHardDisks/arc01-disk-0"
        )
    );
    assert_eq!(
        vmi["properties"]["networkProfile"]["networkInterfaces"][0]["id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.AzureStackHCI/networkInterfaces/arc01-nic-0"
        )
    );
    assert_eq!(vmi["properties"]["hardwareProfile"]["processors"], 2);
    assert_eq!(vmi["properties"]["hardwareProfile"]["memoryMB"], 4096);
    assert_eq!(vmi["extendedLocation"]["name"], cl_b);
    let nic = arm.get(&format!("/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.AzureStackHCI/networkInterfaces/arc01-nic-0")).unwrap();
    assert_eq!(
        nic["properties"]["ipConfigurations"][0]["properties"]["subnet"]["id"],
        lnet_b
    );
    let disk = arm.get(&format!("/subscriptions/{SUB}/resourceGroups/rg-b/providers/Microsoft.AzureStackHCI/virtualHardDisks/arc01-disk-0")).unwrap();
    assert_eq!(disk["properties"]["createFromLocal"], true);
    assert_eq!(disk["properties"]["containerId"], sc_b);
    // the stale original was deleted (consented), VM instance first
    let deletes: Vec<String> = arm
        .calls()
        .into_iter()
        .filter(|c| c.method == "DELETE")
        .map(|c| c.path)
        .collect();
    assert_eq!(
        deletes,
        [
            arc_vmi.clone(),
            arc_vmi
                .trim_end_matches(
                    "/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default"
                )
                .to_string()
        ]
    );
    assert!(arm.get(&arc_vmi).is_none());
    let j: Value = serde_json::from_slice(
        &std::fs::read(journal.join("rehydrate-arc01.journal.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(j["runs"].as_array().unwrap().len(), 2);
    assert_eq!(j["runs"][1]["outcome"], "succeeded");
    // idempotent: a third run changes nothing in Azure. Its tokens expire within a minute
    // of being handed out: each request of the one job gets a fresh one, nobody pastes it
    let before = arm.calls().iter().filter(|c| c.method != "GET").count();
    let calls_before = arm.calls().len();
    cli.short_lived_tokens(true);
    json_out(&rehydrate(&[]));
    cli.short_lived_tokens(false);
    assert_eq!(
        arm.calls().iter().filter(|c| c.method != "GET").count(),
        before,
        "a finished rehydration writes nothing again"
    );
    let tokens: std::collections::BTreeSet<String> = arm.calls()[calls_before..]
        .iter()
        .map(|c| c.auth.clone())
        .collect();
    assert!(
        tokens.len() >= 2 && tokens.iter().all(|t| t.starts_with("Bearer test-token-")),
        "expired tokens are replaced within the job: {tokens:?}"
    );

    // ---- the TVM: restored off, its key imported before it starts
    node_b.clear_log();
    let tvm_restore = |extra: &[&str]| {
        let mut a = vec![
            "--json",
            "plugins",
            "run",
            "hyperv-vm",
            "restore",
            &tvm_snap,
            "--target",
            target,
            "--set",
            "node=local",
            "--set",
            &map_b,
        ];
        a.extend(extra);
        cli.run(Some(&node_b.bin), &a)
    };
    let o = tvm_restore(&["--set", "start=true"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("start=true is refused for a Trusted launch VM"),
        "{}",
        err(&o)
    );
    let out = json_out(&tvm_restore(&[]));
    assert!(
        out["plan"]["warnings"]
            .to_string()
            .contains("Import its guest state protection key first"),
        "{out}"
    );
    let st = node_b.state();
    let new_tvm = st["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["Name"] == "tvm01")
        .unwrap()
        .clone();
    assert_eq!(new_tvm["State"], "Off");
    assert_eq!(new_tvm["TpmEnabled"], true);
    let new_id = new_tvm["Id"].as_str().unwrap().to_string();
    // the checkpoint chain came back as one merged VHDX, named after its base
    let merged = csv_b.join("Volume9/restored/tvm01/Virtual Hard Disks/tvm01.vhdx");
    let raw = d.join("tvm01-merged.raw");
    let o = Command::new("qemu-img")
        .args(["convert", "-f", "vhdx", "-O", "raw"])
        .arg(&merged)
        .arg(&raw)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(&raw).unwrap() == tvm_expect,
        "the restored TVM disk is the merged chain"
    );
    let vm_id_set = format!("vm-id={new_id}");
    let key_restore = |extra: &[&str]| {
        let mut a = vec![
            "--json",
            "plugins",
            "run",
            "tvm-keys",
            "restore",
            &key_snap,
            "--target",
            "-",
            "--set",
            "node=local",
            "--set",
            &vm_id_set,
            "--set",
            &map_b,
            "--set",
            "start=true",
        ];
        a.extend(extra);
        cli.run(Some(&node_b.bin), &a)
    };
    // the target's key vault lacks the wrapping key: refused with the reason
    let o = key_restore(&[]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("wrapping key rehydra-backup-wrap is not in key vault"),
        "{}",
        err(&o)
    );
    node_b.edit(|s| s["keys"] = json!(["rehydra-backup-wrap"]));
    // the import fails: the VM is not started, and the admin is told why
    node_b.edit(|s| s["fail_import"] = json!(true));
    node_b.clear_log();
    let o = key_restore(&["--set", "guest-state=replace"]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("the VM was NOT started") && err(&o).contains("Unwrap of the key failed"),
        "{}",
        err(&o)
    );
    assert!(
        !node_b.log().iter().any(|l| l.starts_with("start")),
        "{:?}",
        node_b.log()
    );
    assert_eq!(
        node_b.state()["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["Name"] == "tvm01")
            .unwrap()["State"],
        "Off"
    );
    // the import succeeds: key first, then the start
    node_b.edit(|s| s["fail_import"] = json!(false));
    node_b.clear_log();
    json_out(&key_restore(&["--set", "guest-state=replace"]));
    let log_b = node_b.log();
    let at = |prefix: &str| {
        log_b
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {log_b:?}"))
    };
    assert!(at("import-key") < at("start"), "{log_b:?}");
    assert_eq!(
        log_b[at("import-key")],
        format!("import-key {}", new_id.to_ascii_lowercase())
    );
    let placed = csv_b.join(format!(
        "Volume9/restored/tvm01/Virtual Machines/{}.vmgs",
        new_id.to_ascii_uppercase()
    ));
    assert_eq!(
        std::fs::read(&placed).unwrap(),
        vmgs,
        "the backed-up guest state is back"
    );
    // a key of that name exists now: another import is refused, and the recovery for a
    // VM started without its key (Remove-MocKey) is explained
    node_b.edit(|s| {
        for v in s["vms"].as_array_mut().unwrap() {
            v["State"] = json!("Off");
        }
    });
    let o = key_restore(&[]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("already exists in key vault") && err(&o).contains("Remove-MocKey"),
        "{}",
        err(&o)
    );
}

#[test]
fn cluster_files_keeps_the_node_folders_and_refuses_the_whole_cluster_storage() {
    let cli = Cli::new(&["cluster-files"]);
    cli.init_repo();
    let d = cli.dir.path().to_path_buf();
    // node hv01's C: drive as this machine reaches it
    let c = d.join("hv01-c");
    for (rel, body) in [
        ("MASLogs/deploy.log", "step 1 ok\n".repeat(500)),
        (
            "ProgramData/AzureConnectedMachineAgent/Log/himds.log",
            "connected\n".repeat(300),
        ),
        (
            "CloudDeployment/Logs/CloudDeployment.2026-11-20.log",
            "ecestore\n".repeat(800),
        ),
        (
            "ClusterStorage/Infrastructure_1/ArcHci/config.yaml",
            "moc: true\n".to_string(),
        ),
        (
            "ClusterStorage/Volume1/vm/disk.vhdx",
            "not for this plugin".to_string(),
        ),
    ] {
        let p = c.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let node = Node::new(
        &d.join("node"),
        &json!({ "vms": [], "keys": [], "paths": { "C:\\": format!("{}/", c.display()) } }),
    );
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "cluster-files",
            "engine",
            "command:powershell@local",
            &format!("files:{}", c.display()),
            &format!("files-write:{}", d.join("out").display()),
        ],
    );
    let assets = json_out(&cli.run(
        Some(&node.bin),
        &["--json", "plugins", "run", "cluster-files", "discover"],
    ));
    let exists: Vec<(String, String)> = assets
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "folder")
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_string(),
                a["properties"][0]["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(exists.len(), 6, "{assets}");
    assert!(
        exists.contains(&("C:\\MASLogs".into(), "true".into()))
            && exists.contains(&("C:\\Agents".into(), "false".into())),
        "{exists:?}"
    );
    // the whole C:\ClusterStorage, or a whole volume of it, is refused
    for bad in ["C:\\ClusterStorage", "C:\\ClusterStorage\\Volume1"] {
        let o = cli.run(
            Some(&node.bin),
            &[
                "plugins",
                "run",
                "cluster-files",
                "discover",
                "--set",
                &format!("folders={bad}"),
            ],
        );
        assert!(!o.status.success());
        assert!(err(&o).contains("hyperv-vm plugin protects"), "{}", err(&o));
    }
    let map = format!("path-map=C:\\={}/", c.display());
    let o = cli.run(
        Some(&node.bin),
        &[
            "--json",
            "plugins",
            "run",
            "cluster-files",
            "backup",
            "--asset",
            "node/local",
            "--set",
            &map,
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(3),
        "saved with warnings (missing folders): {}",
        err(&o)
    );
    let snap = restore_point_id(&serde_json::from_slice(&o.stdout).unwrap());
    let out = d.join("out");
    json_out(&cli.run(
        None,
        &[
            "--json",
            "plugins",
            "run",
            "cluster-files",
            "restore",
            &snap,
            "--target",
            out.to_str().unwrap(),
        ],
    ));
    for rel in [
        "MASLogs/deploy.log",
        "ProgramData/AzureConnectedMachineAgent/Log/himds.log",
        "CloudDeployment/Logs/CloudDeployment.2026-11-20.log",
        "ClusterStorage/Infrastructure_1/ArcHci/config.yaml",
    ] {
        assert_eq!(
            std::fs::read(out.join(rel)).unwrap(),
            std::fs::read(c.join(rel)).unwrap(),
            "{rel}"
        );
    }
    assert!(
        !out.join("ClusterStorage/Volume1").exists(),
        "VM disks are not this plugin's"
    );
    // restoring again over the same files is refused unless overwrite=true
    let o = cli.run(
        None,
        &[
            "plugins",
            "run",
            "cluster-files",
            "restore",
            &snap,
            "--target",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    json_out(&cli.run(
        None,
        &[
            "--json",
            "plugins",
            "run",
            "cluster-files",
            "restore",
            &snap,
            "--target",
            out.to_str().unwrap(),
            "--set",
            "overwrite=true",
        ],
    ));
}

#[test]
fn hyperv_incremental_backup_reads_only_the_blocks_rct_reports() {
    let cli = Cli::new(&["hyperv-vm"]);
    cli.init_repo();
    let d = cli.dir.path().to_path_buf();
    let csv = d.join("csv");
    let dir = csv.join("Volume1/arc01/Virtual Hard Disks");
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("arc01.vhdx");
    qemu(&["qemu-img", "create", "-q", "-f", "vhdx"], &disk, &["24M"]);
    qemu(
        &["qemu-io", "-f", "vhdx", "-c", "write -q -P 0x61 2M 3M"],
        &disk,
        &[],
    );
    let node = Node::new(
        &d.join("node"),
        &json!({
            "vms": [vm("arc01", ARC_ID, false, "00155D0A0C01")], "switches": [], "keys": [],
        }),
    );
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "hyperv-vm",
            "engine",
            "command:powershell@local",
            &format!("files:{}", csv.display()),
        ],
    );
    let map = format!("path-map=C:\\ClusterStorage\\={}/", csv.display());
    let backup = || {
        cli.run(
            Some(&node.bin),
            &[
                "--json",
                "plugins",
                "run",
                "hyperv-vm",
                "backup",
                "--asset",
                ARC_ID,
                "--set",
                "node=local",
                "--set",
                &map,
                "--set",
                "rct=true",
            ],
        )
    };
    let restored = |snap: &str, name: &str| {
        let out = d.join(name);
        cli.ok(
            None,
            &[
                "restore",
                snap,
                "--item",
                "disk-0",
                "--target",
                out.to_str().unwrap(),
            ],
        );
        std::fs::read(out).unwrap()
    };
    // first backup: whole disk, and the checkpoint becomes the RCT reference point
    let first = restore_point_id(&json_out(&backup()));
    let log = node.log();
    assert!(
        log.contains(&"reference-point arc01".to_string())
            && !log.iter().any(|l| l == "remove-checkpoint"),
        "{log:?}"
    );
    // two changes; RCT reports only the first (a 1 MiB write at 10 MiB)
    qemu(
        &["qemu-io", "-f", "vhdx", "-c", "write -q -P 0x62 10M 1M"],
        &disk,
        &[],
    );
    qemu(
        &["qemu-io", "-f", "vhdx", "-c", "write -q -P 0x63 20M 64k"],
        &disk,
        &[],
    );
    let win = "C:\\ClusterStorage\\Volume1\\arc01\\Virtual Hard Disks\\arc01.vhdx";
    node.edit(|s| s["rct"] = json!({ win: { "Size": 24u64 << 20, "Offsets": [10u64 << 20], "Lengths": [1u64 << 20] } }));
    node.clear_log();
    let second = restore_point_id(&json_out(&backup()));
    assert!(
        node.log().contains(&format!("rct-changes {win}")),
        "{:?}",
        node.log()
    );
    let img = restored(&second, "second.raw");
    assert!(
        img[10 << 20..11 << 20].iter().all(|b| *b == 0x62),
        "the reported change was read"
    );
    assert!(
        img[2 << 20..5 << 20].iter().all(|b| *b == 0x61),
        "unchanged data came from the first restore point"
    );
    assert!(
        img[20 << 20..(20 << 20) + 65536].iter().all(|b| *b == 0),
        "a change RCT did not report is not read: the hints were used"
    );
    assert_eq!(
        restored(&first, "first.raw")[10 << 20],
        0,
        "the first restore point is untouched"
    );
    // RCT fails: the disk is read whole, with a warning, and the restore point is complete
    node.edit(|s| s["rct_fail"] = json!(true));
    let o = backup();
    assert_eq!(
        o.status.code(),
        Some(3),
        "saved with a warning: {}",
        err(&o)
    );
    let warned = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        warned.contains("unavailable") && warned.contains("read whole"),
        "{warned}"
    );
    let third = restore_point_id(&serde_json::from_slice(&o.stdout).unwrap());
    let raw = d.join("third.raw");
    std::fs::write(&raw, restored(&third, "third-out.raw")).unwrap();
    let c = Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vhdx"])
        .arg(&raw)
        .arg(&disk)
        .output()
        .unwrap();
    assert!(c.status.success(), "a full read equals the disk");
}
