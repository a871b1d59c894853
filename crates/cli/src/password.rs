//! Where passwords come from: environment, file, or prompt.

use std::path::Path;

use anyhow::{Context, Result, bail};

fn from_file(p: &Path) -> Result<Vec<u8>> {
    let text = std::fs::read_to_string(p)
        .with_context(|| format!("reading password file {}", p.display()))?;
    Ok(text.lines().next().unwrap_or("").as_bytes().to_vec())
}

/// The repository password.
pub fn current(file: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Ok(p) = std::env::var("REHYDRA_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "no password: set REHYDRA_PASSWORD or use --password-file (no terminal to prompt on)"
        );
    }
    Ok(rpassword::prompt_password("repository password: ")?.into_bytes())
}

/// The password of a copy target (`rehydra copy --to`, policy copy targets).
pub fn copy_target(file: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(f) = file {
        return from_file(f);
    }
    if let Ok(p) = std::env::var("REHYDRA_COPY_PASSWORD") {
        return Ok(p.into_bytes());
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!(
            "no password for the copy target: set REHYDRA_COPY_PASSWORD or use --to-password-file (no terminal to prompt on)"
        );
    }
    Ok(rpassword::prompt_password("copy target password: ")?.into_bytes())
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
