//! A real OpenSSH server on loopback for the tests of command targets: its own host key,
//! one authorised client key, and a known-hosts file naming it at each address it
//! listens on (the addresses of 127.0.0.0/8 stand in for the nodes of a cluster).

use std::path::{Path, PathBuf};

/// A running `sshd` (stopped when dropped).
pub struct Sshd {
    child: std::process::Child,
    /// The port it listens on, at every address.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Sshd {
    /// Start one listening on `addresses` (loopback addresses such as `127.0.0.1`).
    ///
    /// # Panics
    /// When OpenSSH is missing or the server does not come up within ten seconds.
    #[must_use]
    pub fn start(addresses: &[&str]) -> Self {
        let bin = Path::new("/usr/sbin/sshd");
        assert!(
            bin.exists(),
            "openssh-server is needed for the remote-target tests (scripts/setup.sh installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for k in ["host", "client"] {
            crate::run(
                std::process::Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(k)),
            );
        }
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen: String = addresses
            .iter()
            .map(|a| format!("ListenAddress {a}\n"))
            .collect();
        let config = format!(
            "Port {port}\n{listen}HostKey {d}/host\nPidFile none\nAuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nLogLevel ERROR\n",
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
        for a in addresses {
            while std::net::TcpStream::connect((*a, port)).is_err() {
                assert!(
                    start.elapsed().as_secs() < 10,
                    "sshd did not start: {}",
                    std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let host_pub = std::fs::read_to_string(d.join("host.pub")).unwrap();
        let mut f = host_pub.split_whitespace();
        let (kind, key) = (f.next().unwrap(), f.next().unwrap());
        let known: String = addresses
            .iter()
            .map(|a| format!("[{a}]:{port} {kind} {key}\n"))
            .collect();
        std::fs::write(d.join("known_hosts"), known).unwrap();
        Self { child, port, dir }
    }

    /// The server's folder (keys, configuration, log); tests may keep files of their own
    /// there.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The private key the server accepts.
    #[must_use]
    pub fn client_key(&self) -> PathBuf {
        self.dir().join("client")
    }

    /// A known-hosts file holding the server's host key at each of its addresses.
    #[must_use]
    pub fn known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    /// What `rehydra plugins target add NAME` is given to reach this server at
    /// `address` with a posix shell running `powershell` as its PowerShell.
    #[must_use]
    pub fn target_args(&self, address: &str, powershell: &Path) -> Vec<String> {
        [
            "--ssh",
            &Self::destination(address),
            "--port",
            &self.port.to_string(),
            "--identity",
            &self.client_key().display().to_string(),
            "--known-hosts",
            &self.known_hosts().display().to_string(),
            "--shell",
            "posix",
            "--powershell",
            &powershell.display().to_string(),
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// `user@address` for this machine's user.
    ///
    /// # Panics
    /// When `id` cannot run.
    #[must_use]
    pub fn destination(address: &str) -> String {
        let user = crate::run_text(std::process::Command::new("id").arg("-un"));
        format!("{}@{address}", user.trim())
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
