//! Command targets: the machines other than this one on which a plugin may run granted
//! commands (`command:<program>@<target>`).
//!
//! A target is configured by the admin, never by a plugin: the plugin names a target,
//! the host looks up how to reach it. The transport is OpenSSH (the remoting transport
//! PowerShell 7 supports on Windows and Linux); the identity file and known-hosts file
//! stay on the host, so a plugin never sees a credential. Commands run without a shell
//! on the plugin's side; on the target side every argument is quoted for that target's
//! shell, and PowerShell scripts travel as `-EncodedCommand` (base64 of UTF-16LE), so no
//! argument can inject a second command.
//!
//! A target marked as a **cluster** is one node of a failover cluster, through which the
//! cluster's other nodes are reached: a plugin names them `<target>/<node>`, the grant on
//! the target covers them, and the host reaches only the nodes pinned on the target (see
//! [`Target::member`]), which `Get-ClusterNode` listed when the admin added or refreshed
//! it. The admin grants the cluster, not each node by hand; and the list is never read
//! while a plugin runs, because a plugin that may run PowerShell on the cluster could
//! make that answer say anything.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{PluginError, Result};

/// The shell that runs commands on a target (what `sshd` starts there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, ts_rs::TS)]
#[serde(rename_all = "kebab-case")]
pub enum RemoteShell {
    /// Windows OpenSSH (`cmd.exe` as the default shell): programs are started through
    /// PowerShell with quoted arguments.
    #[default]
    Windows,
    /// A POSIX shell (Linux nodes, test machines): arguments are single-quoted.
    Posix,
}

/// How to reach one command target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Name plugins use (`hv01`); `local` is reserved for this machine.
    pub name: String,
    /// SSH destination, `[user@]host`.
    pub ssh: String,
    /// SSH port (default 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key used for this target (default: the user's SSH configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<PathBuf>,
    /// Known-hosts file to check the target's host key against (default: the user's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// The target's shell.
    #[serde(default)]
    pub shell: RemoteShell,
    /// PowerShell executable on the target (`pwsh`, or `powershell` for Windows
    /// PowerShell 5.1).
    #[serde(default = "default_pwsh")]
    pub powershell: String,
    /// This is one node of a failover cluster: its `nodes` are reached as `<name>/<node>`
    /// with the user written in `ssh` and the same port, key, known-hosts file, shell and
    /// PowerShell.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster: bool,
    /// A cluster's nodes, pinned when the admin added or refreshed it (what
    /// `Get-ClusterNode` listed then, or the names the admin gave).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
}

/// What the host runs on a cluster target, at the admin's command, to learn its nodes:
/// their names, one per line.
pub(crate) const CLUSTER_NODES: &str =
    "Get-ClusterNode -ErrorAction Stop | ForEach-Object { $_.Name }";

/// Most nodes of a cluster (Azure Local has at most 16).
const CLUSTER_NODES_MAX: usize = 64;

/// Whether `n` can be a cluster node's host name: letters, digits, `-` and `.`, not
/// starting with `-` or `.` (so it can never reach `ssh` as an option).
fn host_name(n: &str) -> bool {
    (1..=253).contains(&n.len())
        && !n.starts_with(['-', '.'])
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
}

fn default_pwsh() -> String {
    "pwsh".into()
}

impl Target {
    /// Check the fields an admin typed.
    ///
    /// # Errors
    /// [`PluginError::Invalid`] naming the field and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(PluginError::Invalid(m));
        if self.name == "local"
            || self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return bad(format!(
                "target name `{}` must be letters, digits, `-`, `_` or `.`, and not `local`",
                self.name
            ));
        }
        if self.ssh.is_empty()
            || self.ssh.starts_with('-')
            || self
                .ssh
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return bad(format!(
                "ssh destination `{}` must be `[user@]host` without spaces and not start with `-`",
                self.ssh
            ));
        }
        if self.powershell.is_empty()
            || self
                .powershell
                .chars()
                .any(|c| c.is_whitespace() || "'\"`;&|<>$".contains(c))
        {
            return bad(format!(
                "PowerShell program `{}` must be a plain program name or path",
                self.powershell
            ));
        }
        if !self.cluster && !self.nodes.is_empty() {
            return bad(format!(
                "target `{}` has nodes but is not a cluster",
                self.name
            ));
        }
        if self.cluster && self.known_hosts.is_none() {
            return bad(format!(
                "cluster target `{}` needs a known-hosts file of its own (--known-hosts) holding its nodes' host keys: it bounds which hosts a node name can reach",
                self.name
            ));
        }
        if self.nodes.len() > CLUSTER_NODES_MAX {
            return bad(format!("a cluster has at most {CLUSTER_NODES_MAX} nodes"));
        }
        if let Some(n) = self.nodes.iter().find(|n| !host_name(n)) {
            return bad(format!(
                "node `{n}` must be a host name: letters, digits, `-` and `.`, not starting with `-` or `.`"
            ));
        }
        for p in [&self.identity, &self.known_hosts].into_iter().flatten() {
            if !p.is_absolute() {
                return bad(format!("{} must be an absolute path", p.display()));
            }
        }
        Ok(())
    }

    /// The node `node` of this cluster target, when it is among the pinned `nodes` (names
    /// compare without case, as Windows does), reached at the pinned spelling.
    ///
    /// # Errors
    /// Why not (the reason a denial names) when this target is not a cluster or `node`
    /// is not among its nodes.
    pub fn member(&self, node: &str) -> std::result::Result<Target, String> {
        if !self.cluster {
            return Err(format!(
                "command target `{}` is not a cluster, so `{}/{node}` names nothing (rehydra plugins target add {} … --cluster)",
                self.name, self.name, self.name
            ));
        }
        let Some(found) = self.nodes.iter().find(|m| m.eq_ignore_ascii_case(node)) else {
            return Err(format!(
                "`{node}` is not a node of cluster `{}` (its nodes were pinned when it was added; if the cluster changed: rehydra plugins target refresh {})",
                self.name, self.name
            ));
        };
        let user = self.ssh.rsplit_once('@').map(|(u, _)| u);
        Ok(Target {
            name: format!("{}/{found}", self.name),
            ssh: match user {
                Some(u) => format!("{u}@{found}"),
                None => found.clone(),
            },
            cluster: false,
            nodes: Vec::new(),
            ..self.clone()
        })
    }

    /// The `ssh` arguments (without the remote command) for this target. Options given
    /// here override the user's SSH configuration: no password prompts, no agent or X11
    /// forwarding, host keys must be known.
    #[must_use]
    pub fn ssh_args(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "ForwardAgent=no",
            "-o",
            "ForwardX11=no",
            "-o",
            "ClearAllForwardings=yes",
            "-o",
            "LogLevel=ERROR",
        ]
        .map(String::from)
        .to_vec();
        if let Some(p) = self.port {
            a.extend(["-p".into(), p.to_string()]);
        }
        if let Some(i) = &self.identity {
            a.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-i".into(),
                i.display().to_string(),
            ]);
        }
        if let Some(k) = &self.known_hosts {
            a.extend(["-o".into(), format!("UserKnownHostsFile={}", k.display())]);
        }
        a.extend(["--".into(), self.ssh.clone()]);
        a
    }

    /// The command line the target's shell runs for `program args…`.
    #[must_use]
    pub fn program_line(&self, program: &str, args: &[String]) -> String {
        match self.shell {
            RemoteShell::Posix => std::iter::once(program)
                .chain(args.iter().map(String::as_str))
                .map(posix_quote)
                .collect::<Vec<_>>()
                .join(" "),
            RemoteShell::Windows => {
                let call = std::iter::once(program)
                    .chain(args.iter().map(String::as_str))
                    .map(ps_quote)
                    .collect::<Vec<_>>()
                    .join(" ");
                self.powershell_line(&format!("& {call}; exit $LASTEXITCODE"))
            }
        }
    }

    /// The command line the target's shell runs for a PowerShell `script`.
    #[must_use]
    pub fn powershell_line(&self, script: &str) -> String {
        format!(
            "{} -NoProfile -NonInteractive -EncodedCommand {}",
            self.powershell,
            encode_command(script)
        )
    }
}

/// A cluster's answer to [`CLUSTER_NODES`]: the host names in it (at most 64), and the
/// lines left out (not host names, or past the 64th), for the admin to see.
pub(crate) fn cluster_nodes(stdout: &[u8]) -> (Vec<String>, Vec<String>) {
    let (mut kept, mut left_out) = (Vec::new(), Vec::new());
    for n in String::from_utf8_lossy(stdout).lines().map(str::trim) {
        if n.is_empty() {
            continue;
        }
        if host_name(n) && kept.len() < CLUSTER_NODES_MAX {
            kept.push(n.to_string());
        } else if left_out.len() < CLUSTER_NODES_MAX {
            left_out.push(n.chars().take(80).collect());
        }
    }
    (kept, left_out)
}

/// `'…'` with embedded quotes closed, escaped and reopened.
fn posix_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A PowerShell single-quoted string (`'` doubled; PowerShell also treats the typographic
/// single quotes as quotes, so they are doubled as well).
fn ps_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// `-EncodedCommand` form: base64 of the script in UTF-16LE.
fn encode_command(script: &str) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shell: RemoteShell) -> Target {
        Target {
            name: "hv01".into(),
            ssh: "admin@hv01".into(),
            port: Some(2222),
            identity: None,
            known_hosts: None,
            shell,
            powershell: "pwsh".into(),
            cluster: false,
            nodes: Vec::new(),
        }
    }

    #[test]
    fn only_the_pinned_nodes_of_a_cluster_are_reached() {
        let mut c = t(RemoteShell::Windows);
        c.name = "hci-a".into();
        let (members, left_out) = cluster_nodes(
            b"HV01\r\nhv02.corp.contoso.com\n-oProxyCommand=sh\nbad name\n.hidden\n\nHV03;calc\n",
        );
        assert_eq!(members, ["HV01", "hv02.corp.contoso.com"]);
        assert_eq!(
            left_out,
            ["-oProxyCommand=sh", "bad name", ".hidden", "HV03;calc"]
        );
        let e = c.member("HV01").unwrap_err();
        assert!(e.to_string().contains("not a cluster"), "{e}");
        c.nodes = members;
        assert!(c.validate().is_err(), "nodes without being a cluster");
        c.cluster = true;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("known-hosts"),
            "a cluster needs a known-hosts file of its own"
        );
        c.known_hosts = Some("/etc/rehydra/hci-a_known_hosts".into());
        c.validate().unwrap();
        let m = c.member("hv01").unwrap();
        assert_eq!(
            (m.name.as_str(), m.ssh.as_str(), m.port, m.cluster),
            ("hci-a/HV01", "admin@HV01", Some(2222), false)
        );
        for other in ["HV03", "-oProxyCommand=sh", "hv02", "", "HV01/x"] {
            let e = c.member(other).unwrap_err();
            assert!(
                e.to_string().contains("is not a node of cluster `hci-a`"),
                "{other}: {e}"
            );
        }
        c.ssh = "hv01.corp".into();
        assert_eq!(c.member("HV01").unwrap().ssh, "HV01");
        c.nodes.push("-oProxyCommand=sh".into());
        assert!(
            c.validate().is_err(),
            "a pinned node that is not a host name"
        );
    }

    #[test]
    fn posix_arguments_cannot_escape_their_quotes() {
        let line = t(RemoteShell::Posix)
            .program_line("printf", &["%s|".into(), "it's $(id); rm -rf /".into()]);
        assert_eq!(line, r"'printf' '%s|' 'it'\''s $(id); rm -rf /'");
    }

    #[test]
    fn windows_programs_go_through_encoded_powershell() {
        let line = t(RemoteShell::Windows).program_line("Get-VM", &["it's".into()]);
        let b64 = line.rsplit(' ').next().unwrap();
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let u16s: Vec<u16> = raw
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(
            String::from_utf16(&u16s).unwrap(),
            "& 'Get-VM' 'it''s'; exit $LASTEXITCODE"
        );
        assert!(line.starts_with("pwsh -NoProfile -NonInteractive -EncodedCommand "));
    }

    #[test]
    fn bad_targets_are_refused() {
        let mut x = t(RemoteShell::Posix);
        x.ssh = "-oProxyCommand=sh".into();
        assert!(x.validate().is_err());
        let mut x = t(RemoteShell::Posix);
        x.name = "local".into();
        assert!(x.validate().is_err());
        let mut x = t(RemoteShell::Posix);
        x.identity = Some("key".into());
        assert!(x.validate().is_err());
        assert!(t(RemoteShell::Windows).validate().is_ok());
    }
}
