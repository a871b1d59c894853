//! A real Samba AD domain controller on loopback for one test: provisioned fresh
//! (`samba-tool domain provision` with the DNS partitions, the DNS server itself off),
//! with an LDAPS certificate from a test CA that names 127.0.0.1, started in the
//! foreground and stopped with its process group. Domain controllers listen on fixed
//! ports, so tests that start one take a lock file and run one at a time.

use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rehydra_test_support::run;

pub const REALM: &str = "TEST.LAN";
pub const BASE: &str = "DC=test,DC=lan";
pub const ADMIN: &str = "Administrator@test.lan";
pub const PASSWORD: &str = "Rehydra-Test-1!";

pub struct Dc {
    pub dir: tempfile::TempDir,
    child: Child,
    _lock: File,
}

fn lock() -> File {
    let f = File::create(std::env::temp_dir().join("rehydra-samba-dc.lock")).unwrap();
    f.lock().unwrap();
    f
}

impl Dc {
    /// Provision and start a domain controller; with `recycle_bin` the Recycle Bin is
    /// enabled (locally, through `ldbmodify` on `sam.ldb`, the only way Samba allows).
    pub fn start(recycle_bin: bool) -> Self {
        Self::start_with(recycle_bin, &[])
    }

    /// [`Self::start`] with more `[global]` options in smb.conf.
    pub fn start_with(recycle_bin: bool, global: &[&str]) -> Self {
        let lock = lock();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        run(Command::new("samba-tool")
            .args([
                "domain",
                "provision",
                "--realm",
                REALM,
                "--domain",
                "TEST",
                "--server-role",
                "dc",
                "--dns-backend",
                "SAMBA_INTERNAL",
                "--host-name",
                "dc1",
                "--adminpass",
                PASSWORD,
                "--use-rfc2307",
                "--targetdir",
            ])
            .arg(d)
            .args([
                "--option=interfaces=127.0.0.1",
                "--option=bind interfaces only=yes",
            ]));
        super::certificates(&d.join("tls"), "dc1.test.lan");
        let conf = d.join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        let mut extra = format!(
            "[global]\n\ttls enabled = yes\n\ttls keyfile = {0}/tls/srv.key\n\ttls certfile = {0}/tls/srv.pem\n\ttls cafile = {0}/tls/ca.pem\n\tpid directory = {0}/run\n\tlog file = {0}/log.%m\n",
            d.display()
        );
        for o in global {
            extra.push_str(&format!("\t{o}\n"));
        }
        let text = text
            .replacen("[global]\n", &extra, 1)
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("server services") {
                    "\tserver services = -dns"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&conf, text).unwrap();
        std::fs::create_dir_all(d.join("run")).unwrap();
        if recycle_bin {
            let ldif = d.join("recycle-bin.ldif");
            std::fs::write(&ldif, format!("dn:\nchangetype: modify\nadd: enableOptionalFeature\nenableOptionalFeature: CN=Partitions,CN=Configuration,{BASE}:766ddcd8-acd0-445e-f3b9-a7f9b6744f2a\n")).unwrap();
            run(Command::new("ldbmodify")
                .arg("-H")
                .arg(d.join("private/sam.ldb"))
                .arg(&ldif));
        }
        let child = spawn(&conf, d);
        let dc = Self {
            dir,
            child,
            _lock: lock,
        };
        dc.wait_for_ldaps();
        dc
    }

    /// Stop this DC and start one from `conf` (a restored DC) on the same address.
    pub fn restart_with(&mut self, conf: &Path) {
        self.stop();
        self.child = spawn(conf, self.dir.path());
        self.wait_for_ldaps();
    }

    /// `rehydra plugins directory add 127.0.0.1` for this DC, bound as the administrator
    /// (the password in a private file); with `with_ca` the test CA is trusted.
    pub fn configure(&self, cli: &super::Cli, with_ca: bool) -> std::process::Output {
        let pw = cli.dir.path().join("bind-password");
        std::fs::write(&pw, PASSWORD).unwrap();
        std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let ca = self.ca();
        let mut args = vec![
            "plugins",
            "directory",
            "add",
            "127.0.0.1",
            "--bind",
            ADMIN,
            "--password-file",
            pw.to_str().unwrap(),
        ];
        if with_ca {
            args.extend(["--ca-file", ca.to_str().unwrap()]);
        }
        cli.run(None, &args)
    }

    /// The environment a process needs to use this DC's KDC with MIT Kerberos: a
    /// krb5.conf naming it (no DNS lookups, host names taken as given) and a ticket cache
    /// of its own, which with `ticket` holds the administrator's ticket (kinit).
    pub fn kerberos(&self, ticket: bool) -> [(&'static str, PathBuf); 2] {
        let d = self.dir.path();
        let conf = d.join("krb5.conf");
        std::fs::write(
            &conf,
            format!(
                "[libdefaults]\n\tdefault_realm = {REALM}\n\tdns_lookup_kdc = false\n\tdns_lookup_realm = false\n\trdns = false\n\tdns_canonicalize_hostname = false\n[realms]\n\t{REALM} = {{\n\t\tkdc = 127.0.0.1\n\t}}\n"
            ),
        )
        .unwrap();
        let cache = d.join(if ticket { "ccache" } else { "ccache-empty" });
        let env = [("KRB5_CONFIG", conf), ("KRB5CCNAME", cache)];
        if ticket {
            let mut kinit = Command::new("kinit")
                .arg(ADMIN.replace("test.lan", REALM))
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::io::Write::write_all(
                kinit.stdin.as_mut().unwrap(),
                format!("{PASSWORD}\n").as_bytes(),
            )
            .unwrap();
            let o = kinit.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "kinit: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        env
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    fn wait_for_ldaps(&self) {
        let t = Instant::now();
        loop {
            let ok = self
                .ldap("ldapsearch", &["-b", "", "-s", "base", "dnsHostName"])
                .status
                .success();
            if ok {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "samba did not answer LDAPS within 60 s: {}",
                std::fs::read_to_string(self.dir.path().join("samba.out")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// An OpenLDAP client tool against the DC over LDAPS, bound as the administrator.
    pub fn ldap(&self, tool: &str, args: &[&str]) -> std::process::Output {
        Command::new(tool)
            .env("LDAPTLS_CACERT", self.ca())
            .args(["-H", "ldaps://127.0.0.1", "-x", "-D", ADMIN, "-w", PASSWORD])
            .args(args)
            .output()
            .unwrap()
    }

    /// Apply LDIF changes (`ldapmodify -a`).
    pub fn apply(&self, ldif: &str) {
        let f = self.dir.path().join("change.ldif");
        std::fs::write(&f, ldif).unwrap();
        let o = self.ldap("ldapmodify", &["-a", "-f", f.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "{ldif}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `samba-tool dsacl <args>` on this DC's database (`set` adds ACEs, `get` prints the
    /// object's descriptor as SDDL); its output.
    pub fn dsacl(&self, args: &[&str]) -> String {
        let o = Command::new("samba-tool")
            .arg("dsacl")
            .args(args)
            .arg("-H")
            .arg(self.dir.path().join("private/sam.ldb"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Attributes of the objects `filter` finds, as `ldapsearch` prints them (LDIF).
    pub fn search(&self, filter: &str, attrs: &[&str]) -> String {
        let mut a = vec!["-LLL", "-o", "ldif-wrap=no", "-b", BASE, filter];
        a.extend(attrs);
        let o = self.ldap("ldapsearch", &a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Dc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Samba in the foreground with `conf`, in its own process group, its output in `dir`.
fn spawn(conf: &Path, dir: &Path) -> Child {
    Command::new("samba")
        .arg("-s")
        .arg(conf)
        .args(["-i", "--no-process-group"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(File::create(dir.join("samba.out")).unwrap())
        .spawn()
        .expect("samba starts (scripts/setup.sh installs samba-ad-dc)")
}

impl Dc {
    /// Stop the DC's process group: TERM, then KILL after 10 s.
    fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        let _ = self.child.wait();
    }
}
