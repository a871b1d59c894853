//! Phase of `vm_workloads_end_to_end`: the Trusted launch VM restored powered off, its key
//! imported before it starts, and the refusals on the way.

use super::*;

pub(super) fn restored_off_with_its_key_imported(
    cli: &Cli,
    d: &Path,
    csv_b: &Path,
    node_b: &Node,
    map_b: &str,
    tvm_snap: &str,
    key_snap: &str,
    target: &str,
    (tvm_expect, vmgs): (&[u8], &[u8]),
) {
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
