//! The cluster-files workload: node folders kept, the whole cluster storage refused.

use super::*;

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
