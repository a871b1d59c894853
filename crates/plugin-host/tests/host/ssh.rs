//! Granted commands on remote targets over SSH (a real sshd on loopback).

use rehydra_test_support::sshd::Sshd;

use super::*;

/// A loopback sshd whose `pwsh` prints the script it was sent, except the host's question
/// for a cluster's nodes, which it answers with `nodes` (and counts in `asked`), and
/// `where`, which it answers with the address it was reached at.
fn start(listen: &[&str], nodes: &str) -> Sshd {
    let sshd = Sshd::start(listen);
    let pwsh = sshd.dir().join("fake-pwsh");
    let dir = sshd.dir().display();
    std::fs::write(
        &pwsh,
        format!(
            "#!/bin/sh\n# stands in for pwsh on the target: prints the script it was sent\n[ \"$1 $2 $3\" = \"-NoProfile -NonInteractive -EncodedCommand\" ] || {{ echo \"unexpected: $*\" >&2; exit 2; }}\nscript=$(printf %s \"$4\" | base64 -d | iconv -f UTF-16LE -t UTF-8)\ncase \"$script\" in Get-ClusterNode*) echo asked >> {dir}/asked; printf '{nodes}' ;; where) set -- $SSH_CONNECTION; printf %s \"$3\" ;; *) printf '%s' \"$script\" ;; esac\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pwsh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    sshd
}

/// A target reaching `sshd` at 127.0.0.1 as this machine's user.
fn target(sshd: &Sshd, name: &str) -> Target {
    Target {
        name: name.into(),
        ssh: Sshd::destination("127.0.0.1"),
        port: Some(sshd.port),
        identity: Some(sshd.client_key()),
        known_hosts: Some(sshd.known_hosts()),
        shell: RemoteShell::Posix,
        powershell: sshd.dir().join("fake-pwsh").display().to_string(),
        cluster: false,
        nodes: Vec::new(),
    }
}

#[test]
fn granted_commands_run_on_remote_targets_over_ssh() {
    let sshd = start(&["127.0.0.1"], "");
    let h = host(false);
    let p = fixture(&h);
    let inv = |g: &[&str], t: Vec<Target>| {
        let mut i = Invocation::new(grants(g));
        i.targets = t;
        i
    };
    let lab = || vec![target(&sshd, "lab")];
    // arguments arrive intact: nothing a plugin passes is interpreted by the remote shell
    let argv = "[%s]\na b\nit's $(id) `id` ;|& *\n";
    let out = h
        .discover(
            &p,
            inv(&["command:printf@lab"], lab()),
            &props(&[
                ("mode", "command"),
                ("program", "printf"),
                ("argv", argv),
                ("target", "lab"),
            ]),
        )
        .unwrap();
    assert_eq!(out[0].name, "[a b][it's $(id) `id` ;|& *][]");
    let out = h
        .discover(
            &p,
            inv(&["command:false@lab"], lab()),
            &props(&[("mode", "command"), ("program", "false"), ("target", "lab")]),
        )
        .unwrap();
    assert!(
        out[0]
            .properties
            .iter()
            .any(|p| p.name == "status" && p.value == "1"),
        "the remote exit status reaches the plugin"
    );
    // PowerShell scripts travel encoded, byte for byte
    let script = "Get-VM | Select-Object Name, State | ConvertTo-Json # it's ünïcode; $x = \"q\"";
    let out = h
        .discover(
            &p,
            inv(&["command:powershell@lab"], lab()),
            &props(&[
                ("mode", "powershell"),
                ("script", script),
                ("target", "lab"),
            ]),
        )
        .unwrap();
    assert_eq!(out[0].name, script);
    // a grant for one program on one target allows only that
    let e = h
        .discover(
            &p,
            inv(&["command:printf@lab"], lab()),
            &props(&[("mode", "command"), ("program", "id"), ("target", "lab")]),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("`id` on `lab` is not granted"),
        "{e}"
    );
    let e = h
        .discover(
            &p,
            inv(&["command:printf@lab"], lab()),
            &props(&[
                ("mode", "command"),
                ("program", "printf"),
                ("argv", "x"),
                ("target", "local"),
            ]),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("`printf` on `local` is not granted"),
        "{e}"
    );
    // an unknown host key is refused, never accepted silently
    let mut wrong = target(&sshd, "lab");
    let empty = sshd.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    wrong.known_hosts = Some(empty);
    let e = h
        .discover(
            &p,
            inv(&["command:printf@lab"], vec![wrong]),
            &props(&[
                ("mode", "command"),
                ("program", "printf"),
                ("argv", "x"),
                ("target", "lab"),
            ]),
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            PluginError::Failed {
                code: ErrorCode::Unavailable,
                ..
            }
        ) && e.to_string().contains("could not be reached over SSH"),
        "{e}"
    );
    // an unreachable target names itself
    let mut gone = target(&sshd, "lab");
    gone.port = Some(
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    );
    let e = h
        .discover(
            &p,
            inv(&["command:printf@lab"], vec![gone]),
            &props(&[
                ("mode", "command"),
                ("program", "printf"),
                ("argv", "x"),
                ("target", "lab"),
            ]),
        )
        .unwrap_err();
    assert!(e.to_string().contains("command target `lab`"), "{e}");
}

#[test]
fn the_grant_on_a_cluster_reaches_its_pinned_nodes_and_no_other() {
    // a cluster of two nodes, 127.0.0.1 (the one configured) and 127.0.0.2; the answer
    // also carries a name that would be an ssh option
    let sshd = start(
        &["127.0.0.1", "127.0.0.2"],
        "127.0.0.1\\r\\n127.0.0.2\\n-oProxyCommand=id\\n",
    );
    let h = host(false);
    let p = fixture(&h);
    let mut hci = target(&sshd, "hci");
    hci.cluster = true;
    // the admin adds it: the host asks the cluster once, and pins what is a host name
    let (nodes, left_out) = hci.ask_cluster_nodes().unwrap();
    assert_eq!(nodes, ["127.0.0.1", "127.0.0.2"]);
    assert_eq!(
        left_out,
        ["-oProxyCommand=id"],
        "said, not dropped silently"
    );
    hci.nodes = nodes;
    let run = |t: &Target, on: &str| {
        let mut i = Invocation::new(grants(&["command:powershell@hci"]));
        i.targets = vec![t.clone()];
        h.discover(
            &p,
            i,
            &props(&[("mode", "powershell"), ("script", "where"), ("target", on)]),
        )
    };
    // the cluster itself and the node it lists are reached with the one grant
    for (on, at) in [
        ("hci", "127.0.0.1"),
        ("hci/127.0.0.2", "127.0.0.2"),
        ("hci/127.0.0.1", "127.0.0.1"),
    ] {
        assert_eq!(run(&hci, on).unwrap()[0].name, at, "{on}");
    }
    // a node not pinned, or a name that is not a host, is refused; while plugins run the
    // cluster is never asked again (a plugin allowed PowerShell there could make its
    // answer name any host)
    for on in ["hci/127.0.0.3", "hci/-oProxyCommand=id", "hci/127.0.0.2 -v"] {
        let e = run(&hci, on).unwrap_err();
        assert!(
            e.to_string().contains("is not a node of cluster `hci`"),
            "{on}: {e}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(sshd.dir().join("asked")).unwrap(),
        "asked\n",
        "the cluster was asked once, by the admin"
    );
    // a target not marked as a cluster has no nodes to reach
    let e = run(&target(&sshd, "hci"), "hci/127.0.0.2").unwrap_err();
    assert!(e.to_string().contains("is not a cluster"), "{e}");
    // and the grant on one cluster does not reach another
    let mut other = hci.clone();
    other.name = "hci2".into();
    let e = run(&other, "hci2/127.0.0.2").unwrap_err();
    assert!(e.to_string().contains("is not granted"), "{e}");
}
