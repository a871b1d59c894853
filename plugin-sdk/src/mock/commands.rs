//! The `commands` imports, answered by the test's stand-ins for programs, under the real
//! host's checks (`state/commands.rs`): `command:<program>@<target>` granted, and the
//! target configured.

use rehydra_plugin_rules::CapabilityKind;

use super::Command;
use super::state::{Res, err, with};
use crate::ErrorCode;
use crate::commands::{Error, Output};

/// Output kept per stream of a command.
const OUTPUT_MAX: usize = 16 << 20;

fn call(cmd: Command, detail: &str) -> Res<Output> {
    let (target, program) = (cmd.target.as_str(), cmd.program.as_str());
    let handler = with(|s| {
        s.enter()?;
        let scope = format!("{program}@{target}");
        if !s.grants.command(program, target) {
            let reason = format!(
                "`{program}` on `{target}` is not granted (rehydra plugins grant <plugin> command:{scope})"
            );
            return Err(s.deny(CapabilityKind::Command, &scope, &reason));
        }
        if target != "local" && !s.targets.iter().any(|t| t == target) {
            return Err(err(
                ErrorCode::NotFound,
                format!(
                    "command target `{target}` is not configured (rehydra plugins target add {target} --ssh <user@host>; in a test: MockHost::target)"
                ),
            ));
        }
        s.audit(CapabilityKind::Command, &scope, true, detail);
        s.record.commands.push(cmd.clone());
        Ok(s.commands.get(program).cloned())
    })?;
    let Some(handler) = handler else {
        return Err(if cmd.script.is_some() && target == "local" {
            err(
                ErrorCode::Unsupported,
                "PowerShell 7 (pwsh) is not installed on this machine (in a test: MockHost::on_command(\"powershell\", …))",
            )
        } else {
            err(
                ErrorCode::NotFound,
                format!(
                    "starting {program}: no such program (in a test: MockHost::on_command(\"{program}\", …))"
                ),
            )
        });
    };
    let mut out = (handler.borrow_mut())(&cmd)?;
    out.stdout.truncate(OUTPUT_MAX);
    out.stderr.truncate(OUTPUT_MAX);
    Ok(out)
}

/// Run `program` with `args` on `target` (`local` for this machine); needs
/// `command:<program>@<target>`. The test's stand-in registered for `program` answers.
///
/// # Errors
/// `denied` (not granted), `not-found` (an unknown target, or no stand-in for the
/// program), or what the stand-in returns.
pub fn run(target: &str, program: &str, args: &[String]) -> Result<Output, Error> {
    program_call(target, program, args, None)
}

/// [`run`] within `timeout_secs` seconds; the stand-in sees the limit in
/// [`Command::timeout_secs`] and answers as the command would (the host's answer past
/// it: `failed`, "… timed out after N s and was stopped").
///
/// # Errors
/// As [`run`].
pub fn run_within(
    target: &str,
    program: &str,
    args: &[String],
    timeout_secs: u32,
) -> Result<Output, Error> {
    program_call(target, program, args, Some(timeout_secs.max(1)))
}

/// `run` and `run-within`, as the stand-in sees them.
fn program_call(
    target: &str,
    program: &str,
    args: &[String],
    timeout_secs: Option<u32>,
) -> Result<Output, Error> {
    let cmd = Command {
        target: target.into(),
        program: program.into(),
        args: args.to_vec(),
        script: None,
        timeout_secs,
    };
    call(cmd, &args.join(" "))
}

/// Run a PowerShell script on `target`; needs `command:powershell@<target>`. The test's
/// stand-in registered for `powershell` answers (it sees the script in
/// [`Command::script`]).
///
/// # Errors
/// As [`run`]; `unsupported` on `local` without a stand-in (no `pwsh`).
pub fn powershell(target: &str, script: &str) -> Result<Output, Error> {
    let cmd = Command {
        target: target.into(),
        program: "powershell".into(),
        args: Vec::new(),
        script: Some(script.into()),
        timeout_secs: None,
    };
    call(cmd, "script")
}
