//! Phase of `vm_workloads_end_to_end`: the Arc VM restored on cluster B rehydrated into
//! Azure (plan, a failing NIC, the rerun that completes, idempotence, fresh tokens).

use super::*;

pub(super) fn as_arc_vm_on_cluster_b(
    cli: &Cli,
    journal: &Path,
    node_b: &Node,
    arm: &Arm,
    arc_vmi: &str,
    arm_set: &str,
    arc_snap: &str,
) {
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
            arc_vmi.to_string(),
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
}
