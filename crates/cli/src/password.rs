//! Where passwords come from: environment, file, or prompt.

use std::path::Path;

use anyhow::{Context, Result, bail};

fn from_file(p: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("reading password file {}", p.display()))?;
    Ok(text.lines().next().unwrap_or("").as_bytes().to_vec())
}

/// The first line a password command prints. The command runs through the system's
/// shell with no standard input; neither it (it may hold a token) nor what it prints is
/// repeated in an error.
fn from_command(cmd: &str) -> Result<Vec<u8>> {
    #[cfg(windows)]
    let mut c = {
        // cmd.exe takes its command line as is: `/S /C "…"` strips the outer quotes only,
        // so `"C:\Program Files\vault.exe" read "x"` keeps its own
        use std::os::windows::process::CommandExt as _;
        let mut c = std::process::Command::new("cmd");
        c.raw_arg("/S /C").raw_arg(format!("\"{cmd}\""));
        c
    };
    #[cfg(not(windows))]
    let mut c = {
        let mut c = std::process::Command::new("sh");
        c.args(["-c", cmd]);
        c
    };
    let out = c
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the password command")?;
    if !out.status.success() {
        bail!("the password command failed ({})", out.status);
    }
    let text =
        String::from_utf8(out.stdout).context("the password command printed no UTF-8 text")?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        bail!("the password command printed no password");
    }
    Ok(line.as_bytes().to_vec())
}

/// The password of the repository at `location`: --password-file, --password-command,
/// REHYDRA_PASSWORD, the one `key remember` kept in the OS keychain (none asked for when
/// `location` is empty), or a prompt.
pub fn current(file: Option<&Path>, command: Option<&str>, location: &str) -> Result<Vec<u8>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Some(c) = command {
        return from_command(c);
    }
    if let Ok(p) = std::env::var("REHYDRA_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if let Some(p) = rehydra_api::keychain::recall(location) {
        return Ok(p.to_vec());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "no password: set REHYDRA_PASSWORD, use --password-file or --password-command, or keep it in the OS keychain with `rehydra key remember` (no terminal to prompt on)"
        );
    }
    Ok(rpassword::prompt_password("repository password: ")?.into_bytes())
}

/// The password of a copy target (`rehydra copy --to`, policy copy targets).
pub fn copy_target(file: Option<&Path>) -> Result<Vec<u8>> {
    second_repository(file, "the copy target", "--to-password-file")
}

/// The password of a second repository (`what`, e.g. "the copy target"): `file`, else
/// REHYDRA_COPY_PASSWORD, else a prompt naming it. `flag` is the option that gives the file.
pub fn second_repository(file: Option<&Path>, what: &str, flag: &str) -> Result<Vec<u8>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Ok(p) = std::env::var("REHYDRA_COPY_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "no password for {what}: set REHYDRA_COPY_PASSWORD or use {flag} (no terminal to prompt on)"
        );
    }
    Ok(rpassword::prompt_password(format!("password of {what}: "))?.into_bytes())
}

/// A new password (init, key add, passwd): env, file, or a prompt typed twice.
pub fn new(file: Option<&Path>, fallback_file: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Ok(p) = std::env::var("REHYDRA_NEW_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if let Some(f) = fallback_file {
        return from_file(f);
    }
    if let Ok(p) = std::env::var("REHYDRA_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "no new password: set REHYDRA_NEW_PASSWORD or use a password file (no terminal to prompt on)"
        );
    }
    let a = rpassword::prompt_password("new password: ")?;
    let b = rpassword::prompt_password("new password again: ")?;
    if a != b {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(a.into_bytes())
}
