//! `rehydra key`: the repository's key slots.

use anyhow::Result;
use rehydra_api::{self as api, KdfParams, keychain};

use crate::args::{Cli, KeyCommand};
use crate::commands::*;
use crate::output::json;
use crate::password;

pub(crate) fn run(cli: &Cli, k: &KeyCommand) -> Result<i32> {
    match k {
        KeyCommand::Remember => return remember(cli),
        KeyCommand::Forget => return forget(cli),
        _ => {}
    }
    let mut s = open(cli)?;
    let kdf = KdfParams::default();
    match k {
        KeyCommand::List => {
            let keys = s.keys()?;
            if cli.json {
                json(&keys)?;
            } else {
                for k in keys {
                    println!(
                        "{} {:<8} {:<20} {} {}",
                        if k.current { "*" } else { " " },
                        &k.id[..8],
                        k.hostname,
                        k.created,
                        k.label
                    );
                }
            }
        }
        KeyCommand::Add {
            label,
            new_password_file,
        } => {
            let pw = password::new(new_password_file.as_deref(), None)?;
            let id = s.add_key(&pw, kdf, label)?;
            done(cli, "added key slot", &id)?;
        }
        KeyCommand::Remove { id } => {
            let id = s.remove_key(id)?;
            done(cli, "removed key slot", &id)?;
        }
        KeyCommand::Passwd { new_password_file } => {
            let pw = password::new(new_password_file.as_deref(), None)?;
            let id = s.change_password(&pw, kdf)?;
            done(cli, "password changed; new key slot", &id)?;
            match keychain::replace(&cli.repo, &pw) {
                Ok(true) => eprintln!("the password kept in the OS keychain is the new one"),
                Ok(false) => {}
                Err(e) => eprintln!(
                    "note: the OS keychain could not be asked ({}): if you kept the old password with `rehydra key remember`, run `rehydra key forget`, then `rehydra key remember` with the new one",
                    e.message
                ),
            }
        }
        KeyCommand::Remember | KeyCommand::Forget => unreachable!("handled above"),
    }
    Ok(0)
}

/// `key remember`: the password, checked against the repository, kept in the keychain.
fn remember(cli: &Cli) -> Result<i32> {
    keychain::check(&cli.repo)?;
    let ctx = context(cli);
    api::backend_for(&ctx, &cli.repo)?;
    // never the password kept already: the one given now (or typed) replaces it
    let pw = password::current(
        cli.password_file.as_deref(),
        cli.password_command.as_deref(),
        "",
    )?;
    drop(api::open(&ctx, &cli.repo, &pw)?);
    keychain::remember(&cli.repo, &pw)?;
    said(
        cli,
        true,
        &format!(
            "the password of {} is kept in the OS keychain (entry {}/{}); commands on it with no other password source use it, `rehydra key forget` removes it",
            cli.repo,
            keychain::SERVICE,
            cli.repo
        ),
    )
}

/// `key forget`.
fn forget(cli: &Cli) -> Result<i32> {
    let removed = keychain::forget(&cli.repo)?;
    said(
        cli,
        removed,
        &if removed {
            format!(
                "the password of {} was removed from the OS keychain",
                cli.repo
            )
        } else {
            format!("no password of {} was kept in the OS keychain", cli.repo)
        },
    )
}

/// The outcome of `remember`/`forget`: whether an entry was written or removed.
fn said(cli: &Cli, changed: bool, text: &str) -> Result<i32> {
    if cli.json {
        json(&serde_json::json!({ "repository": cli.repo, "changed": changed }))?;
    } else {
        println!("{text}");
    }
    Ok(0)
}
