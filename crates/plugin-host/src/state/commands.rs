//! The `command` capability: programs and PowerShell, here or on a target over SSH. A
//! command is killed when the call runs out of time or is cancelled.

use std::io::Read;
use std::time::Duration;

use super::{Res, State, blocking, err, io_err, stop_err};
use crate::bindings::rehydra::plugin::commands;
use crate::bindings::wit;
use crate::dto::ErrorCode;
use crate::error::{PluginError, Result};
use crate::limits::Budget;
use crate::policy::CapabilityKind;
use crate::targets::{CLUSTER_NODES, Target, cluster_nodes};

/// Output kept per stream of a command.
pub(super) const OUTPUT_MAX: u64 = 16 << 20;

impl State {
    /// Check the grant for `program` on `target` and say where it runs: `None` for this
    /// machine, the configured target otherwise. `<cluster>/<node>` is a node of a
    /// cluster target, reached only when it is among the cluster's pinned nodes.
    fn command_check(&mut self, target: &str, program: &str) -> Res<Option<Target>> {
        self.enter()?;
        let allowed = if self.grants.command(program, target) {
            Ok(())
        } else {
            let grant = target.split_once('/').map_or(target, |(c, _)| c);
            Err(format!(
                "`{program}` on `{target}` is not granted (rehydra plugins grant {} command:{program}@{grant})",
                self.plugin
            ))
        };
        let what = format!("{program}@{target}");
        self.check(CapabilityKind::Command, &what, allowed)?;
        if target == "local" {
            return Ok(None);
        }
        let (name, node) = match target.split_once('/') {
            Some((c, n)) => (c, Some(n)),
            None => (target, None),
        };
        let Some(t) = self.targets.iter().find(|t| t.name == name).cloned() else {
            return Err(err(
                ErrorCode::NotFound,
                format!(
                    "command target `{name}` is not configured (rehydra plugins target add {name} --ssh <user@host>)"
                ),
            ));
        };
        let Some(node) = node else {
            return Ok(Some(t));
        };
        match t.member(node) {
            Ok(m) => Ok(Some(m)),
            Err(reason) => {
                self.audit(CapabilityKind::Command, &what, false, &reason);
                Err(err(ErrorCode::Denied, format!("denied: {reason}")))
            }
        }
    }
}

impl Target {
    /// Ask this cluster target for its nodes (`Get-ClusterNode`), at the admin's command
    /// (`rehydra plugins target add … --cluster`, `… target refresh`), within a minute:
    /// the host names it lists, and the lines left out (not host names).
    ///
    /// # Errors
    /// [`PluginError::Invalid`] when the target cannot be reached, does not answer, or
    /// lists no host name.
    pub fn ask_cluster_nodes(&self) -> Result<(Vec<String>, Vec<String>)> {
        let budget = Budget::new(Duration::from_secs(60), Default::default());
        let out = run_remote(self, &self.powershell_line(CLUSTER_NODES), &budget, None)
            .map_err(|e| PluginError::Invalid(e.message))?;
        if out.status != 0 {
            return Err(PluginError::Invalid(format!(
                "cluster `{}` ({}) did not list its nodes (Get-ClusterNode exited {}): {}",
                self.name,
                self.ssh,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (nodes, left_out) = cluster_nodes(&out.stdout);
        if nodes.is_empty() {
            return Err(PluginError::Invalid(format!(
                "cluster `{}` ({}) listed no node by a host name{}: is it a failover cluster's node?",
                self.name,
                self.ssh,
                if left_out.is_empty() {
                    String::new()
                } else {
                    format!(" (left out: {})", left_out.join(", "))
                }
            )));
        }
        Ok((nodes, left_out))
    }
}

impl State {
    /// `run` and `run-within`: `limit`, the command's own time limit.
    fn run_program(
        &mut self,
        target: &str,
        program: &str,
        args: &[String],
        limit: Option<Duration>,
    ) -> Res<commands::Output> {
        let remote = self.command_check(target, program)?;
        self.audit(
            CapabilityKind::Command,
            &format!("{program}@{target}"),
            true,
            &args.join(" "),
        );
        let budget = self.budget.clone();
        blocking(|| match remote {
            None => run_command(program, args, &budget, limit),
            Some(t) => run_remote(&t, &t.program_line(program, args), &budget, limit),
        })
    }
}

impl commands::Host for State {
    fn run(&mut self, target: String, program: String, args: Vec<String>) -> Res<commands::Output> {
        self.run_program(&target, &program, &args, None)
    }
    fn run_within(
        &mut self,
        target: String,
        program: String,
        args: Vec<String>,
        timeout_secs: u32,
    ) -> Res<commands::Output> {
        let limit = Duration::from_secs(u64::from(timeout_secs.max(1)));
        self.run_program(&target, &program, &args, Some(limit))
    }
    fn powershell(&mut self, target: String, script: String) -> Res<commands::Output> {
        let remote = self.command_check(&target, "powershell")?;
        self.audit(
            CapabilityKind::Command,
            &format!("powershell@{target}"),
            true,
            "script",
        );
        let budget = self.budget.clone();
        blocking(|| run_powershell(remote.as_ref(), &script, &budget, None, Given::default()))
    }
}

/// Run PowerShell `command` here (PowerShell 7, `pwsh`; not installed is `unsupported`)
/// or on `remote` (its PowerShell, as `-EncodedCommand`), with what it is `given`.
pub(super) fn run_powershell(
    remote: Option<&Target>,
    command: &str,
    budget: &Budget,
    limit: Option<Duration>,
    given: Given<'_>,
) -> Res<commands::Output> {
    let Some(t) = remote else {
        let args = ["-NoProfile", "-NonInteractive", "-Command", command].map(String::from);
        return match run_command_with("pwsh", &args, budget, limit, given) {
            Err(e) if e.code == wit::ErrorCode::NotFound => Err(err(
                ErrorCode::Unsupported,
                "PowerShell 7 (pwsh) is not installed on this machine",
            )),
            r => r,
        };
    };
    run_remote_with(t, &t.powershell_line(command), budget, limit, given)
}

/// Run `line` on `target` over SSH. Exit status 255 is ssh's own failure (unreachable,
/// host key unknown, authentication refused) and is reported as the target being
/// unavailable, with ssh's message.
fn run_remote(
    target: &Target,
    line: &str,
    budget: &Budget,
    limit: Option<Duration>,
) -> Res<commands::Output> {
    run_remote_with(target, line, budget, limit, Given::default())
}

/// [`run_remote`] with what the command is `given` (its standard input reaches the
/// remote command).
fn run_remote_with(
    target: &Target,
    line: &str,
    budget: &Budget,
    limit: Option<Duration>,
    given: Given<'_>,
) -> Res<commands::Output> {
    let mut args = target.ssh_args();
    args.push(line.to_string());
    let given = Given { env: &[], ..given };
    let out = run_command_with("ssh", &args, budget, limit, given).map_err(|e| {
        if budget.stopped().is_some() || e.message.contains(TIMED_OUT) {
            return e;
        }
        err(
            ErrorCode::Unavailable,
            format!(
                "command target `{}` ({}): {}",
                target.name, target.ssh, e.message
            ),
        )
    })?;
    if out.status == 255 {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(err(
            ErrorCode::Unavailable,
            format!(
                "command target `{}` ({}) could not be reached over SSH: {why}",
                target.name, target.ssh
            ),
        ));
    }
    Ok(out)
}

/// What a command keeps of this process's environment besides `PATH`: what Windows
/// programs (ssh.exe among them) need to start and find the user's profile, and the SSH
/// agent, so agent-held keys reach targets. No credential of Rehydra's is among them.
const KEPT_ENV: &[&str] = &["SystemRoot", "USERPROFILE", "SSH_AUTH_SOCK"];

/// What a command past its own time limit is said to have done.
const TIMED_OUT: &str = "timed out after";

/// What a command is given besides its arguments: bytes on its standard input (none: it
/// reads nothing), and variables of this process's environment it keeps besides
/// [`KEPT_ENV`] (the host's own commands only, never a plugin's).
#[derive(Default, Clone, Copy)]
pub(super) struct Given<'a> {
    pub(super) stdin: Option<&'a [u8]>,
    pub(super) env: &'a [&'a str],
}

/// Run a program without a shell and with a clean environment (no secrets inherited),
/// killing it (and its process group) when the call runs out of time or is cancelled, or
/// past `limit`; output is capped at 16 MiB per stream.
fn run_command(
    program: &str,
    args: &[String],
    budget: &Budget,
    limit: Option<Duration>,
) -> Res<commands::Output> {
    run_command_with(program, args, budget, limit, Given::default())
}

/// [`run_command`] with what the command is `given`.
fn run_command_with(
    program: &str,
    args: &[String],
    budget: &Budget,
    limit: Option<Duration>,
    given: Given<'_>,
) -> Res<commands::Output> {
    let started = std::time::Instant::now();
    let mut cmd = std::process::Command::new(program);
    // its own process group, so that what it starts ends with it (see `end_group`)
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("LANG", "C")
        .envs(
            KEPT_ENV
                .iter()
                .chain(given.env)
                .filter_map(|k| Some((k, std::env::var_os(k)?))),
        )
        .stdin(if given.stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| io_err(&format!("starting {program}"), &e))?;
    // written on a thread of its own, so a command that does not read cannot hold the call
    // (its pipe closes when it ends or is killed)
    if let (Some(bytes), Some(mut stdin)) = (given.stdin, child.stdin.take()) {
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, &bytes);
        });
    }
    let reader = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(OUTPUT_MAX).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let errs = reader(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    loop {
        if exited(&mut child).map_err(|e| io_err(program, &e))? {
            break;
        }
        // the call's limit or cancel first, then the command's own limit
        let stopped = match budget.check() {
            Err(stop) => Some(stop_err(stop, budget).into()),
            Ok(()) => limit.filter(|l| started.elapsed() >= *l).map(|l| {
                err(
                    ErrorCode::Failed,
                    format!("{program} {TIMED_OUT} {} s and was stopped", l.as_secs()),
                )
            }),
        };
        if let Some(e) = stopped {
            end_group(&child);
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // nothing a plugin's command started outlives the call (nor keeps its output open);
    // the command is not reaped yet, so its group id cannot have been given to another
    #[cfg(target_os = "linux")]
    end_group(&child);
    let status = child.wait().map_err(|e| io_err(program, &e))?;
    Ok(commands::Output {
        status: status.code().unwrap_or(-1),
        stdout: out.join().unwrap_or_default(),
        stderr: errs.join().unwrap_or_default(),
    })
}

/// Whether the command has ended, without reaping it where the system allows (so its
/// process group id stays its own until [`end_group`] has run).
fn exited(child: &mut std::process::Child) -> std::io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(
            Id::Pid(nix::unistd::Pid::from_raw(child.id() as i32)),
            flags,
        ) {
            Ok(WaitStatus::StillAlive) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(std::io::Error::from(e)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // elsewhere `try_wait` reaps; `end_group` then finds the group gone or empty
        child.try_wait().map(|s| s.is_some())
    }
}

/// Kill the process group the command leads (its children and theirs). On Windows only
/// the command itself is stopped (job objects would be the equivalent; not done yet).
fn end_group(child: &std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    #[cfg(not(unix))]
    let _ = child;
}
