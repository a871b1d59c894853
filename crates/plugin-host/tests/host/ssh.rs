//! Granted commands on remote targets over SSH (a real sshd on loopback).

use super::*;

/// A real OpenSSH server on loopback, with its own host key and one authorised client key.
struct Sshd {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Self {
        let bin = Path::new("/usr/sbin/sshd");
        assert!(
            bin.exists(),
            "openssh-server is needed for the remote-target tests (scripts/setup.sh installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for k in ["host", "client"] {
            let st = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(k))
                .status()
                .unwrap();
            assert!(st.success());
        }
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile none\nAuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel ERROR\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        if is_root() {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let child = std::process::Command::new(bin)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed().as_secs() < 10,
                "sshd did not start: {}",
                std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let host_pub = std::fs::read_to_string(d.join("host.pub")).unwrap();
        let mut f = host_pub.split_whitespace();
        std::fs::write(
            d.join("known_hosts"),
            format!(
                "[127.0.0.1]:{port} {} {}\n",
                f.next().unwrap(),
                f.next().unwrap()
            ),
        )
        .unwrap();
        std::fs::write(d.join("fake-pwsh"), "#!/bin/sh\n# stands in for pwsh on the target: prints the script it was sent\n[ \"$1 $2 $3\" = \"-NoProfile -NonInteractive -EncodedCommand\" ] || { echo \"unexpected: $*\" >&2; exit 2; }\nprintf %s \"$4\" | base64 -d | iconv -f UTF-16LE -t UTF-8\n").unwrap();
        std::fs::set_permissions(
            d.join("fake-pwsh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Self { child, port, dir }
    }

    fn target(&self, name: &str) -> Target {
        let user = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let d = self.dir.path();
        Target {
            name: name.into(),
            ssh: format!("{}@127.0.0.1", String::from_utf8_lossy(&user.stdout).trim()),
            port: Some(self.port),
            identity: Some(d.join("client")),
            known_hosts: Some(d.join("known_hosts")),
            shell: RemoteShell::Posix,
            powershell: d.join("fake-pwsh").display().to_string(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

#[test]
fn granted_commands_run_on_remote_targets_over_ssh() {
    let sshd = Sshd::start();
    let h = host(false);
    let p = fixture(&h);
    let inv = |g: &[&str], t: Vec<Target>| {
        let mut i = Invocation::new(grants(g));
        i.targets = t;
        i
    };
    let lab = || vec![sshd.target("lab")];
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
    let mut wrong = sshd.target("lab");
    let empty = sshd.dir.path().join("empty_known_hosts");
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
    let mut gone = sshd.target("lab");
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
