//! Cluster command targets end to end: the admin adds one node of a cluster as a
//! cluster target and grants it once, and the assessment's sweep (`nodes=<target>/*`)
//! reaches every node the cluster lists, over a real sshd on loopback addresses.

use rehydra_test_support::sshd::Sshd;
use serde_json::{Value, json};

use crate::assessment::{SQL, TVM, ids, text, vm};
use crate::support::{Cli, Node};

/// The admin configures one node of a cluster as a cluster target (whose nodes are asked
/// for and pinned then) and grants it once; the sweep (`nodes=hci-a/*`) asks every node
/// over SSH. The cluster is
/// three stand-in nodes on loopback addresses (`Get-ClusterNode` names them by address):
/// two answer through one sshd, the third is down.
#[test]
fn the_admin_grants_the_cluster_and_the_sweep_reaches_every_node() {
    let cli = Cli::new(&["hyperv-vm"]);
    let d = cli.dir.path().to_path_buf();
    let sshd = Sshd::start(&["127.0.0.1", "127.0.0.2"]);
    let listed = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let facts = json!({
        "Computer": "127.0.0.1", "Os": "Microsoft Azure Stack HCI", "Version": "10.0.25398", "Cluster": "hci-a",
        "Registration": "Registered", "Connection": "Connected",
        "Nodes": listed.iter().map(|n| json!({"Name": n, "State": "Up"})).collect::<Vec<_>>(),
    });
    let first = Node::new(
        &d.join("node-127.0.0.1"),
        &json!({"vms": [vm("tvm01", TVM, true, 64, 20)], "switches": [], "keys": [], "facts": facts}),
    );
    let second = Node::new(
        &d.join("node-127.0.0.2"),
        &json!({"vms": [vm("sql01", SQL, false, 128, 40)], "switches": [], "keys": [], "facts": facts}),
    );
    // one PowerShell for the whole cluster, as on real nodes: each answers with its own state
    let pwsh = d.join("pwsh-by-address");
    std::fs::write(
        &pwsh,
        format!(
            "#!/bin/sh\nat=$(printf %s \"$SSH_CONNECTION\" | cut -d' ' -f3)\nexec {}/node-$at/pwsh \"$@\"\n",
            d.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pwsh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut add = vec![
        "plugins".to_string(),
        "target".into(),
        "add".into(),
        "hci-a".into(),
    ];
    add.extend(sshd.target_args("127.0.0.1", &pwsh));
    add.push("--cluster".into());
    let t = cli.ok(None, &add.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        t.contains("nodes 127.0.0.1, 127.0.0.2, 127.0.0.3, as hci-a/<node>"),
        "the cluster was asked for its nodes, which are pinned: {t}"
    );
    cli.ok(
        None,
        &["plugins", "grant", "hyperv-vm", "command:powershell@hci-a"],
    );
    let o = cli
        .cmd(None)
        .env_remove("REHYDRA_REPOSITORY")
        .args([
            "assess",
            "--json",
            "--plugin",
            "hyperv-vm",
            "--set",
            "hyperv-vm:cluster=hci-a",
            "--set",
            "hyperv-vm:nodes=hci-a/*",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let a: Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows: Vec<&str> = a["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    for want in [TVM, SQL] {
        assert!(rows.contains(&want), "{want}: {rows:?}");
    }
    let found = ids(&a);
    assert!(
        found.contains(&"hyperv.node-not-swept:node/hci-a/127.0.0.3".to_string()),
        "the node that is down is a finding: {found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|f| f.starts_with("hyperv.nodes-not-listed")),
        "every node was asked: {found:?}"
    );
    // the cluster was asked for its nodes once, when the admin added it (never while a
    // plugin runs), and each node listed its own VMs
    assert_eq!(
        first
            .calls()
            .iter()
            .filter(|c| c.as_str() == "cluster-nodes")
            .count(),
        1,
        "{:?}",
        first.calls()
    );
    for n in [&first, &second] {
        assert!(
            n.calls().contains(&"inventory".to_string()),
            "{:?}",
            n.calls()
        );
    }
    assert!(!second.calls().contains(&"cluster-facts".to_string()));
    // one grant on the cluster is all there is: a node it does not list stays out of reach
    let o = cli
        .cmd(None)
        .args([
            "plugins",
            "run",
            "hyperv-vm",
            "discover",
            "--set",
            "nodes=hci-a/127.0.0.9",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).contains("`127.0.0.9` is not a node of cluster `hci-a`"),
        "{}",
        text(&o)
    );
    // the cluster changes: 127.0.0.3 leaves, 127.0.0.4 joins. A refresh unpins the node
    // that left at once, and shows the new one without pinning it until told to
    let mut st = first.state();
    st["facts"]["Nodes"] = json!([
        {"Name": "127.0.0.1", "State": "Up"}, {"Name": "127.0.0.2", "State": "Up"},
        {"Name": "127.0.0.4", "State": "Up"}
    ]);
    first.set_state(&st);
    let o = cli
        .cmd(None)
        .args(["plugins", "target", "refresh", "hci-a"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(
        t.contains("no longer lists 127.0.0.3: unpinned")
            && t.contains("now lists new nodes 127.0.0.4: nothing new was pinned")
            && t.contains("refresh hci-a --yes"),
        "{t}"
    );
    let pinned = |cli: &Cli| {
        let l: Value =
            serde_json::from_str(&cli.ok(None, &["--json", "plugins", "target", "list"])).unwrap();
        l[0]["nodes"].clone()
    };
    assert_eq!(pinned(&cli), json!(["127.0.0.1", "127.0.0.2"]));
    let t = cli.ok(None, &["plugins", "target", "refresh", "hci-a", "--yes"]);
    assert!(
        t.contains("nodes 127.0.0.1, 127.0.0.2, 127.0.0.4 (pinned)"),
        "{t}"
    );
    assert_eq!(pinned(&cli), json!(["127.0.0.1", "127.0.0.2", "127.0.0.4"]));
}
