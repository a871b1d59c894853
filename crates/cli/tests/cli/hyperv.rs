//! The `hyperv-vm` plugin through the `rehydra` binary: PowerShell inventory from a node
//! (a stand-in `pwsh` that prints fixture JSON shaped like the real cmdlets' output) and
//! Azure Resource Manager answered by a local replay server from the official
//! `VirtualMachineInstances_Get` example.

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::support::{self, Cli, root};

/// A folder with a `pwsh` that prints `fixture` for the inventory script (or fails).
fn fake_pwsh(dir: &Path, fixture: Option<&str>) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let body = match fixture {
        Some(f) => format!("#!/bin/sh\ncase \"$4\" in *Get-VMHardDiskDrive*) cat '{}' ;; *) echo unexpected script >&2; exit 3 ;; esac\n", root().join("tests/fixtures/hyperv").join(f).display()),
        None => "#!/bin/sh\necho 'Get-VM : You do not have the required permission to complete this task.' >&2\nexit 1\n".to_string(),
    };
    std::fs::write(bin.join("pwsh"), body).unwrap();
    std::fs::set_permissions(
        bin.join("pwsh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    bin
}

/// Serves ARM GETs: `machines/<arc_vm>/…/virtualMachineInstances/default` from the official
/// example, anything else 404 as ARM answers. Records (path, authorization) per request.
fn arm_replay(arc_vm: &'static str) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("tests/fixtures/arm/VirtualMachineInstances_Get.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let body = example["responses"]["200"]["body"].to_string();
    let nic_example: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            root()
                .join("tests/fixtures/arm/NetworkInterfaces__CreateOrUpdate_CreateFromLocal.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let nic = nic_example["responses"]["200"]["body"].to_string();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let (path, auth) = support::read_head(&mut BufReader::new(c.try_clone().unwrap()));
            // the plugin reads Arc VMs and their NICs with the GA api-version
            let want = format!(
                "/providers/Microsoft.HybridCompute/machines/{arc_vm}/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default?api-version=2024-01-01"
            );
            let (status, b) = if path.ends_with(&want) {
                ("200 OK", body.clone())
            } else if path.ends_with("/providers/Microsoft.AzureStackHCI/networkInterfaces/test-nic?api-version=2024-01-01") {
                ("200 OK", nic.clone())
            } else {
                ("404 Not Found", r#"{"error":{"code":"ResourceNotFound","message":"The Resource was not found."}}"#.to_string())
            };
            s2.lock().unwrap().push((path, auth));
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{b}",
                b.len()
            );
            let _ = c.read(&mut [0u8; 1]);
        }
    });
    (base, seen)
}

fn props(a: &serde_json::Value) -> std::collections::HashMap<String, String> {
    a["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn flags(a: &serde_json::Value) -> Vec<String> {
    a["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn hyperv_discovery_reads_the_nodes_and_asks_arm_which_vms_are_arc_vms() {
    let cli = Cli::new(&["hyperv-vm"]);
    let (arm, seen) = arm_replay("web01");
    let settings = [
        "--set",
        "cluster=hci-prod",
        "--set",
        "nodes=local",
        "--set",
        "subscription=fd3c3665-1729-4b7b-9a38-238e83b0f98b",
        "--set",
        "resource-group=testrg",
    ];
    let arm_set = format!("arm={arm}");
    // a grant without a port is for the default port only; the replay listens elsewhere
    let arm_grant = format!("http:{}", arm.trim_start_matches("http://"));
    let discover = |bin: &Path| {
        let mut args = vec![
            "--json",
            "plugins",
            "run",
            "hyperv-vm",
            "discover",
            "--set",
            arm_set.as_str(),
        ];
        args.extend(settings);
        cli.cmd(Some(bin)).args(&args).output().unwrap()
    };
    // nothing granted: PowerShell is denied and the admin is told which grant is missing
    let bin = fake_pwsh(&cli.dir.path().join("two"), Some("two-vms.json"));
    // settings are checked against what the plugin declares, before it runs
    let o = cli
        .cmd(Some(&bin))
        .args([
            "plugins",
            "run",
            "hyperv-vm",
            "discover",
            "--set",
            "node-list=x",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("`node-list` is not a discovery setting") && err.contains("nodes"),
        "{err}"
    );
    let o = cli
        .cmd(None)
        .args(["plugins", "info", "hyperv-vm"])
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&o.stdout);
    assert!(
        info.contains("path-map") && info.contains("vm|rehydrate"),
        "{info}"
    );
    let o = discover(&bin);
    assert_eq!(o.status.code(), Some(18));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("command:powershell@local"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "hyperv-vm",
            "command:powershell@local",
            &arm_grant,
        ],
    );

    let o = discover(&bin);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let assets: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let by_name = |n: &str| {
        assets
            .iter()
            .find(|a| a["name"] == n)
            .unwrap_or_else(|| panic!("no {n} in {assets:?}"))
    };
    assert_eq!(by_name("hci-prod")["kind"], "cluster");
    assert_eq!(by_name("local")["parent"], "cluster/hci-prod");
    let web = by_name("web01");
    assert_eq!(web["parent"], "node/local");
    assert_eq!(web["id"], "8e3a5c0b-9c1b-4c4e-a3d9-2f7d1b6a4e10");
    let mut f = flags(web);
    f.sort();
    assert_eq!(
        f,
        [
            "arc-managed",
            "clustered",
            "has-checkpoints",
            "trusted-launch"
        ]
    );
    let p = props(web);
    assert_eq!(
        p["arc-resource-id"],
        "/subscriptions/fd3c3665-1729-4b7b-9a38-238e83b0f98b/resourceGroups/testrg/providers/Microsoft.HybridCompute/machines/DemoVM/providers/Microsoft.AzureStackHCI/virtualMachineInstances/default"
    );
    assert!(p["custom-location"].ends_with("/customLocations/dogfood-location"));
    assert!(p["arc-nics"].ends_with("/networkInterfaces/test-nic"));
    assert_eq!(
        (
            p["generation"].as_str(),
            p["cpu"].as_str(),
            p["memory-mib"].as_str(),
            p["owner-node"].as_str()
        ),
        ("2", "4", "8192", "HV02"),
        "the owner node is the cluster's (Get-ClusterGroup), not the host the VM reports"
    );
    assert!(
        p["disk.0"].ends_with(".avhdx (1 0:0)")
            && p["nic.0"] == "Network Adapter 00155D0A0B01 on ConvergedSwitch(compute), VLAN 120",
        "{p:?}"
    );
    let sql = by_name("sql01");
    assert!(
        flags(sql).is_empty(),
        "a local, untracked, TPM-less VM: {:?}",
        flags(sql)
    );
    assert_eq!(props(sql)["arc-resource-id"], "");
    assert_eq!(
        props(sql)["owner-node"],
        "HV01",
        "outside the cluster: its host"
    );
    assert!(props(sql)["nic.0"].ends_with("on (not connected)"));
    // every ARM call carried the host's credential; the plugin never saw it
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert!(
        calls.iter().all(|(_, auth)| auth == "Bearer test-token"),
        "{calls:?}"
    );

    // a node with one VM: ConvertTo-Json gives an object, not an array
    let one = fake_pwsh(&cli.dir.path().join("one"), Some("one-vm.json"));
    let o = discover(&one);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let assets: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(assets.iter().any(|a| a["name"] == "dc01"
        && props(a)["disk.0"].starts_with("C:\\ClusterStorage\\Volume2\\dc01\\dc01.vhdx")));
    // a failing inventory names the node and PowerShell's message
    let bad = fake_pwsh(&cli.dir.path().join("bad"), None);
    let o = discover(&bad);
    assert_eq!(o.status.code(), Some(18));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("node local") && err.contains("required permission"),
        "{err}"
    );
}

/// A `pwsh` that answers the checkpoint script with `answer`, logs every script it runs
/// (checkpoint / remove) to `log`, and fails the removal when `fail_remove`.
fn fake_node(dir: &Path, answer: &Path, log: &Path, fail_remove: bool) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let remove = if fail_remove {
        "echo 'Remove-VMSnapshot : The operation failed.' >&2; exit 1"
    } else {
        "true"
    };
    let body = format!(
        "#!/bin/sh\ncase \"$4\" in\n *Checkpoint-VM*ProductionOnly*|*ProductionOnly*Checkpoint-VM*) echo checkpoint >> '{log}'; cat '{answer}' ;;\n *Remove-VMSnapshot*) echo remove >> '{log}'; {remove} ;;\n *) echo \"unexpected: $4\" >&2; exit 3 ;;\nesac\n",
        log = log.display(),
        answer = answer.display()
    );
    std::fs::write(bin.join("pwsh"), body).unwrap();
    std::fs::set_permissions(
        bin.join("pwsh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    bin
}

#[test]
fn hyperv_backup_takes_a_production_checkpoint_stores_its_disks_and_always_removes_it() {
    let cli = Cli::new(&["hyperv-vm"]);
    let d = cli.dir.path();
    let repo = d.join("repo");
    let with_repo = |bin: Option<&Path>, args: &[&str]| {
        let mut c = cli.cmd(bin);
        c.env("REHYDRA_REPOSITORY", &repo)
            .env("REHYDRA_PASSWORD", "pw")
            .env("REHYDRA_CACHE_DIR", d.join("cache"));
        c.args(args).output().unwrap()
    };
    assert!(
        with_repo(
            None,
            &["init", "--kdf-memory-kib", "1024", "--kdf-iterations", "1"]
        )
        .status
        .success()
    );
    // the cluster volume as this machine mounts it
    let vmdir = d.join("csv/Volume1/web01");
    std::fs::create_dir_all(&vmdir).unwrap();
    let disk = vmdir.join("web01.vhdx");
    let run = |c: &mut Command| assert!(c.output().unwrap().status.success(), "{c:?}");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vhdx"])
        .arg(&disk)
        .arg("16M"));
    run(Command::new("qemu-io")
        .args(["-f", "vhdx", "-c", "write -q -P 0x61 1M 2M"])
        .arg(&disk));
    let answer = d.join("answer.json");
    std::fs::write(&answer, serde_json::json!({
        "Checkpoint": "5F0E9D8C-7B6A-4958-8372-615243342516",
        "Disks": [{ "Path": "C:\\ClusterStorage\\Volume1\\web01\\web01.vhdx", "ControllerType": 1, "ControllerNumber": 0, "ControllerLocation": 0 }],
        "Config": { "Name": "web01", "Id": "8e3a5c0b-9c1b-4c4e-a3d9-2f7d1b6a4e10", "Generation": 2, "ProcessorCount": 4, "MemoryStartup": 8589934592u64, "Path": "C:\\ClusterStorage\\Volume1\\web01", "Version": "12.0" }
    }).to_string()).unwrap();
    let log = d.join("calls.log");
    let map = format!("path-map=C:\\ClusterStorage\\={}/csv/", d.display());
    let (arm, seen) = arm_replay("web01");
    let arm_grant = format!("http:{}", arm.trim_start_matches("http://"));
    let arm = format!("arm={arm}");
    let backup = |bin: &Path| {
        with_repo(
            Some(bin),
            &[
                "--json",
                "plugins",
                "run",
                "hyperv-vm",
                "backup",
                "--asset",
                "8e3a5c0b-9c1b-4c4e-a3d9-2f7d1b6a4e10",
                "--set",
                "node=local",
                "--set",
                &map,
                "--set",
                &arm,
                "--set",
                "subscription=fd3c3665-1729-4b7b-9a38-238e83b0f98b",
                "--set",
                "resource-group=testrg",
            ],
        )
    };
    cli.ok(
        None,
        &[
            "plugins",
            "grant",
            "hyperv-vm",
            "engine",
            &format!("files:{}", d.join("csv").display()),
            "command:powershell@local",
            &arm_grant,
        ],
    );

    let ok_node = fake_node(&d.join("ok"), &answer, &log, false);
    let o = backup(&ok_node);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "checkpoint\nremove\n"
    );
    let snap: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let snap = if snap.get("restore_point").is_some() {
        snap["restore_point"].clone()
    } else {
        snap
    };
    assert_eq!(snap["consistency"], "application");
    let items: Vec<&str> = snap["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(items, ["disk-0", "vm.json"]);
    // the disk item is the VM's virtual disk: restored, qemu-img finds it identical
    let out = d.join("restored.raw");
    let r = with_repo(
        None,
        &[
            "restore",
            "latest",
            "--item",
            "disk-0",
            "--target",
            out.to_str().unwrap(),
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    run(Command::new("qemu-img")
        .args(["compare", "-q", "-f", "raw", "-F", "vhdx"])
        .arg(&out)
        .arg(&disk));
    // the VM's Arc identity is in the restore point: resource, custom location, logical networks
    let doc = d.join("vm.json");
    assert!(
        with_repo(
            None,
            &[
                "restore",
                "latest",
                "--item",
                "vm.json",
                "--target",
                doc.to_str().unwrap()
            ]
        )
        .status
        .success()
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&doc).unwrap()).unwrap();
    assert_eq!(doc["vm"]["Name"], "web01");
    assert!(
        doc["arc"]["customLocation"]
            .as_str()
            .unwrap()
            .ends_with("/customLocations/dogfood-location")
    );
    assert_eq!(
        doc["arc"]["networkInterfaces"][0]["logicalNetworks"][0],
        "/subscriptions/a95612cb-f1fa-4daa-a4fd-272844fa512c/resourceGroups/dogfoodarc/providers/Microsoft.AzureStackHCI/logicalNetworks/test-lnet"
    );
    assert_eq!(
        doc["arc"]["resource"]["type"],
        "Microsoft.AzureStackHCI/virtualMachineInstances"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, a)| a == "Bearer test-token")
    );

    // the disk cannot be read: nothing is committed, and the checkpoint is still removed
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(&disk).unwrap();
    let o = backup(&ok_node);
    assert!(!o.status.success());
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "checkpoint\nremove\n",
        "the checkpoint is removed after a failure too"
    );
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&with_repo(None, &["--json", "restore-points"]).stdout).unwrap();
    assert_eq!(list.len(), 1, "a failed VM backup commits no restore point");

    // a checkpoint that cannot be removed is reported, never silently left behind
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "vhdx"])
        .arg(&disk)
        .arg("16M"));
    let stuck = fake_node(&d.join("stuck"), &answer, &log, true);
    let o = backup(&stuck);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("could not be removed")
            && err.contains("Remove-VMSnapshot : The operation failed"),
        "{err}"
    );
}
